import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  ExecutionDoesNotExist,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  MAX_CONSECUTIVE_POLL_ERRORS,
  type StartUpgradeDeps,
  executionName,
  main,
  parseArgs,
} from '../../scripts/start-upgrade-lib';

const ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:QuietUpgrade-Upgrade';
const NOW = new Date('2026-11-22T04:00:07.123Z');
const EXECUTION_NAME = 'ci-17-2-20261122T040007Z';
const EXECUTION_ARN = `arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:${EXECUTION_NAME}`;

const sfnMock = mockClient(SFNClient);

interface Harness {
  deps: StartUpgradeDeps;
  out: string[];
  err: string[];
  sleep: jest.Mock<Promise<void>, [number]>;
  regions: string[];
}

function harness(env: Record<string, string | undefined> = {}): Harness {
  const out: string[] = [];
  const err: string[] = [];
  const regions: string[] = [];
  const sleep = jest.fn<Promise<void>, [number]>(async () => undefined);
  let t = NOW.getTime();
  return {
    out,
    err,
    sleep,
    regions,
    deps: {
      client: (region) => {
        regions.push(region);
        return new SFNClient({ region });
      },
      sleep,
      // Each reading moves a minute on, so elapsed times in the progress lines are exact.
      now: () => {
        const d = new Date(t);
        t += 60_000;
        return d;
      },
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      env,
    },
  };
}

const described = (
  status: DescribeExecutionCommandOutput['status'],
  extra: Partial<DescribeExecutionCommandOutput> = {},
): DescribeExecutionCommandOutput => ({
  $metadata: {},
  executionArn: EXECUTION_ARN,
  stateMachineArn: ARN,
  status,
  startDate: NOW,
  ...extra,
});

const succeeded = (output: object) => described('SUCCEEDED', { output: JSON.stringify(output) });

/** Starts, then answers DescribeExecution with each response in turn. */
function execution(...responses: DescribeExecutionCommandOutput[]): void {
  sfnMock
    .on(StartExecutionCommand)
    .resolves({ $metadata: {}, executionArn: EXECUTION_ARN, startDate: NOW });
  const describe = sfnMock.on(DescribeExecutionCommand);
  for (const r of responses) describe.resolvesOnce(r);
}

const sentInput = (): unknown => {
  const call = sfnMock.commandCalls(StartExecutionCommand)[0];
  return JSON.parse(call?.args[0].input.input ?? 'null');
};

beforeEach(() => sfnMock.reset());

describe('argument errors', () => {
  it.each([
    [['--target-engine-version', '17'], '--target-engine-version', '"17"'],
    [['--target-engine-version', '17.2.1'], '--target-engine-version', '"17.2.1"'],
    [['--target-engine-version', '1234.1'], '--target-engine-version', '"1234.1"'],
    [['--target-engine-version', '17.2; rm -rf /'], '--target-engine-version', '"17.2; rm -rf /"'],
    [['--target-engine-version'], '--target-engine-version', 'got nothing'],
    [['--target-engine-version', '--dry-run'], '--target-engine-version', '"--dry-run"'],
    [['--poll-seconds', '0'], '--poll-seconds', '"0"'],
    [['--poll-seconds', '1.5'], '--poll-seconds', '"1.5"'],
    [['--poll-seconds', 'soon'], '--poll-seconds', '"soon"'],
    [['--dryrun'], 'unknown option', '"--dryrun"'],
    [['--dry-run=false'], 'unknown option', '"--dry-run=false"'],
    [['17.2'], 'unknown option', '"17.2"'],
    [
      ['--state-machine-arn', 'QuietUpgrade-Upgrade'],
      '--state-machine-arn',
      '"QuietUpgrade-Upgrade"',
    ],
    [
      ['--state-machine-arn', ARN.replace('stateMachine', 'execution')],
      '--state-machine-arn',
      JSON.stringify(ARN.replace('stateMachine', 'execution')),
    ],
  ])('%j exits 2 naming %s and showing %s, without calling AWS', async (argv, flag, shown) => {
    const h = harness();
    const code = await main(['--state-machine-arn', ARN, ...argv], h.deps);
    expect(code).toBe(2);
    expect(h.err[0]).toContain(flag);
    expect(h.err[0]).toContain(shown);
    expect(h.regions).toEqual([]);
    expect(sfnMock.calls()).toHaveLength(0);
    expect(h.out).toEqual([]);
  });

  it('needs the state machine from the flag or the environment', async () => {
    const h = harness();
    expect(await main(['--target-engine-version', '17.2'], h.deps)).toBe(2);
    expect(h.err[0]).toBe(
      'start-upgrade: --state-machine-arn (or UPGRADE_STATE_MACHINE_ARN) is required',
    );
    expect(sfnMock.calls()).toHaveLength(0);
  });

  it('names the environment variable when the ARN came from it', async () => {
    const h = harness({ UPGRADE_STATE_MACHINE_ARN: 'None' });
    expect(await main([], h.deps)).toBe(2);
    expect(h.err[0]).toContain('UPGRADE_STATE_MACHINE_ARN must be a state machine ARN');
    expect(h.err[0]).toContain('got: "None"');
    expect(sfnMock.calls()).toHaveLength(0);
  });
});

it('prints the usage and exits 0 for --help, without calling AWS', async () => {
  const h = harness();
  expect(await main(['--target-engine-version', '17.2', '--help'], h.deps)).toBe(0);
  expect(h.out[0]).toMatch(/^usage: npm run start-upgrade/);
  expect(h.regions).toEqual([]);
  expect(sfnMock.calls()).toHaveLength(0);
});

describe('parseArgs', () => {
  it('takes the region and partition from the ARN, so the client calls the right region', () => {
    const gov =
      'arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:QuietUpgrade-Upgrade';
    expect(parseArgs(['--state-machine-arn', gov], {})).toMatchObject({
      region: 'us-gov-west-1',
      partition: 'aws-us-gov',
    });
  });

  it('prefers the flag over UPGRADE_STATE_MACHINE_ARN', () => {
    const other = ARN.replace('eu-west-1', 'us-east-1');
    const args = parseArgs(['--state-machine-arn', other], { UPGRADE_STATE_MACHINE_ARN: ARN });
    expect(args.stateMachineArn).toBe(other);
    expect(args.region).toBe('us-east-1');
  });
});

describe('executionName', () => {
  const args = parseArgs(['--state-machine-arn', ARN, '--target-engine-version', '999.999'], {});

  it('is readable, dot-free and within the 80-character limit', () => {
    const name = executionName({ ...args, dryRun: true }, NOW);
    expect(name).toBe('ci-999-999-dry-run-20261122T040007Z');
    expect(name).toMatch(/^[A-Za-z0-9_-]{1,80}$/);
  });

  it('leaves out the target when none was given', () => {
    const { targetEngineVersion: _omitted, ...withoutTarget } = args;
    expect(executionName(withoutTarget, NOW)).toBe('ci-20261122T040007Z');
  });
});

describe('starting the upgrade', () => {
  it('sends exactly the fields asked for, with a readable name', async () => {
    execution(succeeded({ outcome: 'UPGRADED' }));
    const h = harness();
    await main(['--state-machine-arn', ARN, '--target-engine-version', '17.2'], h.deps);
    expect(sfnMock).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: ARN,
      name: EXECUTION_NAME,
    });
    // No dryRun/requireApproval keys: the deployed defaults apply to what was not asked.
    expect(sentInput()).toStrictEqual({ targetEngineVersion: '17.2' });
    expect(h.regions).toEqual(['eu-west-1']);
  });

  it('sends dryRun and requireApproval only when their flags are given', async () => {
    execution(succeeded({ outcome: 'DRY_RUN' }));
    const h = harness({ UPGRADE_STATE_MACHINE_ARN: ARN });
    await main(['--require-approval', '--target-engine-version', '17.2', '--dry-run'], h.deps);
    expect(sentInput()).toStrictEqual({
      targetEngineVersion: '17.2',
      dryRun: true,
      requireApproval: true,
    });
    expect(sfnMock).toHaveReceivedCommandWith(StartExecutionCommand, {
      name: 'ci-17-2-dry-run-20261122T040007Z',
    });
  });

  it('sends {} when nothing is asked, so every deployed default applies', async () => {
    execution(succeeded({ outcome: 'DRY_RUN' }));
    await main(['--state-machine-arn', ARN], harness().deps);
    expect(sentInput()).toStrictEqual({});
  });

  it('prints the console URL of the execution', async () => {
    execution(succeeded({ outcome: 'UPGRADED' }));
    const h = harness();
    await main(['--state-machine-arn', ARN], h.deps);
    expect(h.out).toContain(
      `console:   https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/${EXECUTION_ARN}`,
    );
  });

  it('exits 1 without polling when the execution cannot be started', async () => {
    sfnMock.on(StartExecutionCommand).rejects(new Error('User is not authorized'));
    const h = harness();
    expect(await main(['--state-machine-arn', ARN], h.deps)).toBe(1);
    expect(h.err[0]).toContain('could not start the upgrade: Error: User is not authorized');
    expect(sfnMock).toHaveReceivedCommandTimes(DescribeExecutionCommand, 0);
  });
});

describe('waiting for the outcome', () => {
  it('polls every 30 s while RUNNING and stops at the final status', async () => {
    execution(
      described('RUNNING'),
      described('RUNNING'),
      described('PENDING_REDRIVE'),
      succeeded({ outcome: 'UPGRADED' }),
      // Never reached: polling must stop at the first final status.
      described('RUNNING'),
    );
    const h = harness();
    const code = await main(['--state-machine-arn', ARN], h.deps);
    expect(code).toBe(0);
    expect(sfnMock).toHaveReceivedCommandTimes(DescribeExecutionCommand, 4);
    expect(sfnMock).toHaveReceivedCommandWith(DescribeExecutionCommand, {
      executionArn: EXECUTION_ARN,
    });
    expect(h.sleep.mock.calls).toEqual([[30_000], [30_000], [30_000], [30_000]]);
    expect(h.out.filter((l) => /after \d+ min$/.test(l))).toEqual([
      'RUNNING after 1 min',
      'RUNNING after 2 min',
      'PENDING_REDRIVE after 3 min',
    ]);
  });

  it('waits --poll-seconds between checks', async () => {
    execution(described('RUNNING'), succeeded({ outcome: 'DRY_RUN' }));
    const h = harness();
    await main(['--state-machine-arn', ARN, '--poll-seconds', '60'], h.deps);
    expect(h.sleep.mock.calls).toEqual([[60_000], [60_000]]);
  });

  it('rides out failed status checks, such as a run not yet visible', async () => {
    execution();
    sfnMock
      .on(DescribeExecutionCommand)
      .rejectsOnce(
        new ExecutionDoesNotExist({ message: 'Execution Does Not Exist', $metadata: {} }),
      )
      .rejectsOnce(new Error('socket hang up'))
      .resolvesOnce(succeeded({ outcome: 'UPGRADED' }));
    const h = harness();
    expect(await main(['--state-machine-arn', ARN], h.deps)).toBe(0);
    expect(h.err).toEqual([
      `start-upgrade: status check 1/${MAX_CONSECUTIVE_POLL_ERRORS} failed: ExecutionDoesNotExist: Execution Does Not Exist`,
      `start-upgrade: status check 2/${MAX_CONSECUTIVE_POLL_ERRORS} failed: Error: socket hang up`,
    ]);
  });

  it('gives up with 1 after too many failed checks in a row, saying the run goes on', async () => {
    execution();
    sfnMock.on(DescribeExecutionCommand).rejects(new Error('socket hang up'));
    const h = harness();
    expect(await main(['--state-machine-arn', ARN], h.deps)).toBe(1);
    expect(sfnMock).toHaveReceivedCommandTimes(
      DescribeExecutionCommand,
      MAX_CONSECUTIVE_POLL_ERRORS,
    );
    expect(h.err.at(-1)).toContain('lost track of the run; it goes on in AWS: https://');
  });
});

describe('outcomes', () => {
  const plan = { sourceIdentifier: 'platform-db', targetEngineVersion: '17.2', dryRun: false };
  it.each<[string, number, string, DescribeExecutionCommandOutput]>([
    [
      'UPGRADED',
      0,
      'the runbook switched over',
      succeeded({ outcome: 'UPGRADED', writer: { engineVersion: '17.2' }, backlog: {}, plan }),
    ],
    [
      'DRY_RUN',
      0,
      'preflight passed',
      succeeded({ outcome: 'DRY_RUN', plan: { ...plan, dryRun: true }, checks: [] }),
    ],
    [
      'ROLLED_BACK',
      1,
      'a SUCCEEDED run is not success',
      succeeded({
        outcome: 'ROLLED_BACK',
        failure: { Error: 'GreenFailedVerification', Cause: 'replica lag 900 s' },
        plan,
      }),
    ],
    [
      'NEEDS_OPERATOR',
      1,
      'a SUCCEEDED run is not success',
      succeeded({
        outcome: 'NEEDS_OPERATOR',
        failure: { Error: 'DeploymentNotDeleted', Cause: 'still there' },
        maintenance: { state: 'on' },
        blueGreen: {},
        plan,
      }),
    ],
    [
      'REJECTED',
      1,
      'FAILED with an InvalidInput.<field> error',
      described('FAILED', {
        error: 'InvalidInput.switchoverTimeoutSeconds',
        cause: 'switchoverTimeoutSeconds must be 30-3600, got: 5',
      }),
    ],
    [
      'REJECTED',
      1,
      'FAILED with PreflightFailed',
      described('FAILED', {
        error: 'PreflightFailed',
        cause: 'Preflight failed, nothing was changed: ["another upgrade is running"]',
      }),
    ],
    [
      'FAILED',
      1,
      'FAILED with any other error',
      described('FAILED', { error: 'States.Runtime', cause: 'boom' }),
    ],
    ['TIMED_OUT', 1, 'the machine timeout', described('TIMED_OUT')],
    ['ABORTED', 1, 'stopped by someone', described('ABORTED')],
    ['UNKNOWN', 1, 'an outcome it does not know', succeeded({ outcome: 'UPGRADED?' })],
    ['UNKNOWN', 1, 'output that is not JSON', described('SUCCEEDED', { output: 'not json' })],
  ])('reports %s and exits %i: %s', async (outcome, code, _why, final) => {
    execution(described('RUNNING'), final);
    const h = harness();
    expect(await main(['--state-machine-arn', ARN], h.deps)).toBe(code);
    expect(h.out).toContain(`outcome: ${outcome}`);
    expect(h.out).toContain(`status:  ${String(final.status)}`);
    if (final.error !== undefined) {
      expect(h.out).toContain(`error:   ${final.error}`);
      expect(h.out).toContain(`cause:   ${String(final.cause)}`);
    }
  });

  it('prints the output, pretty, so the plan and failure are in the job log', async () => {
    const output = {
      outcome: 'ROLLED_BACK',
      failure: { Error: 'SwitchoverFailed', Cause: 'timed out' },
      plan,
    };
    execution(succeeded(output));
    const h = harness();
    await main(['--state-machine-arn', ARN], h.deps);
    expect(h.out).toContain(JSON.stringify(output, null, 2));
  });
});
