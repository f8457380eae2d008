/**
 * The logic of `npm run start-upgrade`: start one run of the upgrade state machine, wait for
 * it to end, and turn its outcome into an exit status a CI job can act on.
 *
 * Everything with a side effect (the SFN client, sleeping, the clock, printing) comes in
 * through `StartUpgradeDeps`, so the tests drive it without AWS and without waiting.
 */
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  type ExecutionStatus,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';

export const USAGE = `usage: npm run start-upgrade -- [options]
  --state-machine-arn ARN        the upgrade state machine (default: $UPGRADE_STATE_MACHINE_ARN)
  --target-engine-version X.Y    the version green gets (default: the one deployed from cdk.json)
  --dry-run                      run preflight and print the plan; change nothing
  --require-approval             wait for send-task-success before pausing consumers
  --poll-seconds N               seconds between status checks, 5-3600 (default 30)
exit status: 0 UPGRADED or DRY_RUN; 1 ROLLED_BACK, NEEDS_OPERATOR, REJECTED, FAILED, TIMED_OUT,
ABORTED or no known outcome; 2 bad usage`;

export const DEFAULT_POLL_SECONDS = 30;
// The runbook's own fastest loop (the switchover) polls every 5 s; watching faster shows
// nothing new and spends the account's DescribeExecution token bucket, shared per region.
// https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
const MIN_POLL_SECONDS = 5;
const MAX_POLL_SECONDS = 3600;
/**
 * Consecutive failed status checks tolerated before giving up (5 min at the default rate).
 * DescribeExecution is eventually consistent, so a run just started can briefly be "not
 * found", and a network blip hours into a watch should not fail the job.
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
 */
export const MAX_CONSECUTIVE_POLL_ERRORS = 10;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface StartUpgradeArgs {
  stateMachineArn: string;
  /** Taken from the ARN: the client must call the region the machine lives in. */
  region: string;
  partition: string;
  targetEngineVersion?: string;
  dryRun: boolean;
  requireApproval: boolean;
  pollSeconds: number;
}

/** The runbook's input: only the fields asked for, so the rest keep their deployed defaults. */
export interface UpgradeInput {
  targetEngineVersion?: string;
  dryRun?: true;
  requireApproval?: true;
}

const TARGET_VERSION = /^\d{1,3}\.\d{1,3}$/;
const STATE_MACHINE_ARN =
  /^arn:(aws[a-z-]*):states:([a-z]{2,}(?:-[a-z]+)+-\d+):\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/;

const show = (value: string): string => JSON.stringify(value);

export function parseArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): StartUpgradeArgs {
  let arn: { value: string; from: string } | undefined;
  let targetEngineVersion: string | undefined;
  let dryRun = false;
  let requireApproval = false;
  let pollSeconds = DEFAULT_POLL_SECONDS;
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) throw new UsageError(`${flag} needs a value, got nothing`);
    if (v.startsWith('--')) throw new UsageError(`${flag} needs a value, got: ${show(v)}`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] ?? '';
    switch (flag) {
      case '--state-machine-arn':
        arn = { value: value(i++, flag), from: flag };
        break;
      case '--target-engine-version': {
        const v = value(i++, flag);
        if (!TARGET_VERSION.test(v)) {
          throw new UsageError(`${flag} must be MAJOR.MINOR like 17.2, got: ${show(v)}`);
        }
        targetEngineVersion = v;
        break;
      }
      case '--dry-run':
        dryRun = true;
        break;
      case '--require-approval':
        requireApproval = true;
        break;
      case '--poll-seconds': {
        const v = value(i++, flag);
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < MIN_POLL_SECONDS || n > MAX_POLL_SECONDS) {
          throw new UsageError(
            `${flag} must be a whole number of seconds ${MIN_POLL_SECONDS}-${MAX_POLL_SECONDS}, got: ${show(v)}`,
          );
        }
        pollSeconds = n;
        break;
      }
      default:
        // An unknown flag is refused, never ignored: "--dryrun" must not start a real upgrade.
        throw new UsageError(`unknown option ${show(flag)}`);
    }
  }
  const fromEnv = env.UPGRADE_STATE_MACHINE_ARN;
  if (arn === undefined && fromEnv !== undefined && fromEnv !== '') {
    arn = { value: fromEnv, from: 'UPGRADE_STATE_MACHINE_ARN' };
  }
  if (arn === undefined) {
    throw new UsageError('--state-machine-arn (or UPGRADE_STATE_MACHINE_ARN) is required');
  }
  const match = STATE_MACHINE_ARN.exec(arn.value);
  if (match === null) {
    throw new UsageError(
      `${arn.from} must be a state machine ARN (arn:aws:states:REGION:ACCOUNT:stateMachine:NAME), got: ${show(arn.value)}`,
    );
  }
  return {
    stateMachineArn: arn.value,
    partition: match[1] ?? 'aws',
    region: match[2] ?? '',
    ...(targetEngineVersion === undefined ? {} : { targetEngineVersion }),
    dryRun,
    requireApproval,
    pollSeconds,
  };
}

export function upgradeInput(args: StartUpgradeArgs): UpgradeInput {
  return {
    ...(args.targetEngineVersion === undefined
      ? {}
      : { targetEngineVersion: args.targetEngineVersion }),
    ...(args.dryRun ? { dryRun: true } : {}),
    ...(args.requireApproval ? { requireApproval: true } : {}),
  };
}

/**
 * `ci-17-2-20261122T040000Z`, or `ci-17-2-dry-run-…` for a dry run. Execution names are 1-80
 * characters; only 0-9, A-Z, a-z, - and _ keep CloudWatch logging working, so the dots go.
 * A name is unique per state machine for 90 days, hence the timestamp.
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html
 */
export function executionName(args: StartUpgradeArgs, now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  const parts = [
    'ci',
    ...(args.targetEngineVersion === undefined ? [] : [args.targetEngineVersion.replace('.', '-')]),
    ...(args.dryRun ? ['dry-run'] : []),
    stamp,
  ];
  return parts.join('-');
}

const CONSOLE_HOSTS: Record<string, (region: string) => string> = {
  aws: (region) => `${region}.console.aws.amazon.com`,
  'aws-cn': () => 'console.amazonaws.cn',
  'aws-us-gov': () => 'console.amazonaws-us-gov.com',
};

/** The execution's page in the Step Functions console, where operators follow the run. */
export function consoleUrl(args: StartUpgradeArgs, executionArn: string): string | undefined {
  const host = CONSOLE_HOSTS[args.partition];
  if (host === undefined) return undefined;
  return `https://${host(args.region)}/states/home?region=${args.region}#/v2/executions/details/${executionArn}`;
}

export type Outcome =
  | 'UPGRADED'
  | 'DRY_RUN'
  | 'ROLLED_BACK'
  | 'NEEDS_OPERATOR'
  | 'REJECTED'
  | 'FAILED'
  | 'TIMED_OUT'
  | 'ABORTED'
  | 'UNKNOWN';

/** What the operator should do next, from the README's outcome table. */
const NEXT_STEP: Record<Outcome, string> = {
  UPGRADED:
    'record the new version in cdk.json (README: After an upgrade); delete <id>-old1 after a final snapshot',
  DRY_RUN: 'preflight passed; the plan and checks are below. Nothing was changed.',
  ROLLED_BACK: 'the original database is the writer; read "failure", fix it, run again',
  NEEDS_OPERATOR:
    'a rollback step failed: check the deployment and writer in the RDS console, then follow the README (NEEDS_OPERATOR)',
  REJECTED: 'bad input or failed preflight; nothing was changed. Fix what the error says.',
  FAILED:
    'the run failed outside its own error handling; the watchdog inspects it. Read the error and the execution history.',
  TIMED_OUT: 'the run hit the state machine timeout; the watchdog inspects it. Read the history.',
  ABORTED: 'the run was stopped; the watchdog inspects it. Read the history.',
  UNKNOWN: 'the run succeeded without a known outcome in its output; read the execution history.',
};

/** The statuses that can still change: a redrive returns a run to RUNNING. */
const OPEN_STATUSES: ReadonlySet<ExecutionStatus | undefined> = new Set<
  ExecutionStatus | undefined
>(['RUNNING', 'PENDING_REDRIVE']);

/**
 * Fail states end a run FAILED with `error`/`cause` instead of an output. The runbook's
 * rejections (lib/constructs/upgrade-runbook.ts) use these error names: `InvalidInput` or
 * `InvalidInput.<field>` from "Validate input", `PreflightFailed` from preflight.
 */
function isRejection(error: string | undefined): boolean {
  return (
    error === 'PreflightFailed' || error === 'InvalidInput' || !!error?.startsWith('InvalidInput.')
  );
}

function parseOutput(output: string | undefined): Record<string, unknown> | undefined {
  if (output === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(output);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // Not JSON: reported below as UNKNOWN with the raw text.
  }
  return undefined;
}

const SUCCEEDED_OUTCOMES: ReadonlySet<unknown> = new Set([
  'UPGRADED',
  'DRY_RUN',
  'ROLLED_BACK',
  'NEEDS_OPERATOR',
]);

/** A finished execution's outcome: the runbook's own for SUCCEEDED, else from the status. */
export function outcomeOf(execution: DescribeExecutionCommandOutput): Outcome {
  switch (execution.status) {
    case 'SUCCEEDED': {
      const outcome = parseOutput(execution.output)?.outcome;
      return SUCCEEDED_OUTCOMES.has(outcome) ? (outcome as Outcome) : 'UNKNOWN';
    }
    case 'FAILED':
      return isRejection(execution.error) ? 'REJECTED' : 'FAILED';
    case 'TIMED_OUT':
      return 'TIMED_OUT';
    case 'ABORTED':
      return 'ABORTED';
    default:
      return 'UNKNOWN';
  }
}

export function exitCodeFor(outcome: Outcome): 0 | 1 {
  return outcome === 'UPGRADED' || outcome === 'DRY_RUN' ? 0 : 1;
}

export interface StartUpgradeDeps {
  /** Builds the client for the state machine's region; never called for bad usage. */
  client: (region: string) => SFNClient;
  sleep: (ms: number) => Promise<void>;
  now: () => Date;
  out: (line: string) => void;
  err: (line: string) => void;
  env: Readonly<Record<string, string | undefined>>;
}

const describeError = (e: unknown): string =>
  e instanceof Error ? `${e.name}: ${e.message}` : String(e);

function minutes(ms: number): string {
  const m = Math.floor(ms / 60_000);
  return m < 60 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/**
 * Polls until the run leaves RUNNING/PENDING_REDRIVE. Undefined when the status could not be
 * read MAX_CONSECUTIVE_POLL_ERRORS times in a row.
 */
async function waitForEnd(
  sfn: SFNClient,
  executionArn: string,
  pollSeconds: number,
  deps: StartUpgradeDeps,
): Promise<DescribeExecutionCommandOutput | undefined> {
  const startedAt = deps.now().getTime();
  let failures = 0;
  for (;;) {
    await deps.sleep(pollSeconds * 1000);
    let execution: DescribeExecutionCommandOutput;
    try {
      execution = await sfn.send(new DescribeExecutionCommand({ executionArn }));
    } catch (e) {
      failures += 1;
      deps.err(
        `start-upgrade: status check ${failures}/${MAX_CONSECUTIVE_POLL_ERRORS} failed: ${describeError(e)}`,
      );
      if (failures >= MAX_CONSECUTIVE_POLL_ERRORS) return undefined;
      continue;
    }
    failures = 0;
    if (!OPEN_STATUSES.has(execution.status)) return execution;
    deps.out(`${execution.status} after ${minutes(deps.now().getTime() - startedAt)}`);
  }
}

/** Runs the command line; resolves to the exit status. */
export async function main(argv: readonly string[], deps: StartUpgradeDeps): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    deps.out(USAGE);
    return 0;
  }
  let args: StartUpgradeArgs;
  try {
    args = parseArgs(argv, deps.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    deps.err(`start-upgrade: ${e.message}`);
    deps.err(USAGE);
    return 2;
  }

  const sfn = deps.client(args.region);
  const input = upgradeInput(args);
  const name = executionName(args, deps.now());
  let executionArn: string;
  try {
    const started = await sfn.send(
      new StartExecutionCommand({
        stateMachineArn: args.stateMachineArn,
        name,
        input: JSON.stringify(input),
      }),
    );
    if (started.executionArn === undefined) throw new Error('StartExecution returned no ARN');
    executionArn = started.executionArn;
  } catch (e) {
    deps.err(`start-upgrade: could not start the upgrade: ${describeError(e)}`);
    return 1;
  }
  const url = consoleUrl(args, executionArn);
  deps.out(`started ${name} with input ${JSON.stringify(input)}`);
  deps.out(`execution: ${executionArn}`);
  if (url !== undefined) deps.out(`console:   ${url}`);
  deps.out(
    'Stopping this command does not stop the upgrade; stop the execution itself to do that.',
  );

  const execution = await waitForEnd(sfn, executionArn, args.pollSeconds, deps);
  if (execution === undefined) {
    deps.err(`start-upgrade: lost track of the run; it goes on in AWS: ${url ?? executionArn}`);
    return 1;
  }
  const outcome = outcomeOf(execution);
  deps.out('');
  deps.out(`status:  ${execution.status ?? 'unknown'}`);
  deps.out(`outcome: ${outcome}`);
  deps.out(`next:    ${NEXT_STEP[outcome]}`);
  if (execution.error !== undefined) deps.out(`error:   ${execution.error}`);
  if (execution.cause !== undefined) deps.out(`cause:   ${execution.cause}`);
  if (execution.output !== undefined) {
    const parsed = parseOutput(execution.output);
    deps.out('output:');
    deps.out(parsed === undefined ? execution.output : JSON.stringify(parsed, null, 2));
  }
  if (url !== undefined) deps.out(`console: ${url}`);
  return exitCodeFor(outcome);
}
