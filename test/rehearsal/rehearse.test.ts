import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ASSUMPTIONS, listAssumptions, parseAssumption } from '../../rehearsal/assumptions';
import { exitCode, parseArgs } from '../../rehearsal/cli';
import { readDefinition } from '../../rehearsal/definition-file';
import {
  type RehearsalReport,
  SCENARIOS,
  UsageError,
  defaultApp,
  rehearse,
} from '../../rehearsal/rehearse';
import { refuseFalsyPassResults } from '../../rehearsal/run';
import { LIGHT_RATES } from '../../rehearsal/sweep';
import { app } from '../helpers/upgrade';
import { MUTANTS } from './mutants';

// As `npm run rehearse` runs it: the CLI bundled by the launcher.
const CLI = join(__dirname, '..', '..', 'rehearsal', 'launch.cjs');

function cli(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
}

describe('the default rehearsal', () => {
  let report: RehearsalReport;
  beforeAll(async () => {
    report = await rehearse({ app });
  });

  it('upgrades with over 40,000 writes, each applied once to the final writer', () => {
    expect(report).toMatchObject({
      outcome: 'UPGRADED',
      writer: { identifier: 'platform-db', engineVersion: app.defaults.targetEngineVersion },
      invariants: { ok: true, violations: [] },
    });
    expect(report.messages.produced).toBeGreaterThanOrEqual(40_000);
    // Counted from the final writer's rows, not from what the consumers reported.
    expect(report.messages.processed).toBe(report.messages.produced);
  });

  it('shows the page only around the switchover, and pauses the consumers a little longer', () => {
    expect(report.maintenance.seconds).toBeGreaterThan(report.switchoverSeconds);
    expect(report.maintenance.seconds).toBeLessThan(report.switchoverSeconds + 10);
    expect(report.consumers.pausedSeconds).toBeGreaterThan(report.maintenance.seconds);
    expect(report.pageViews.maintenancePage).toBeGreaterThan(0);
    expect(report.timeline[0]).toEqual({ t: 0, state: 'Validate input', event: 'task' });
    for (const e of report.timeline) expect(Object.keys(e).sort()).toEqual(['event', 'state', 't']);
  });
});

// Every scenario without faults, each ending as expected with every invariant holding:
// sweep.test.ts, whose plan is made of exactly those runs and fails on any that goes wrong.

describe('the app as synthesized is what is rehearsed', () => {
  it('deploys every function that takes a plan with the identifiers of the plan defaults', () => {
    const d = app.defaults;
    const expected = {
      engine: d.engine,
      sourceIdentifier: d.sourceIdentifier,
      sourceArn: d.sourceArn,
      currentEngineVersion: d.currentEngineVersion,
      targetEngineVersion: d.targetEngineVersion,
      targetParameterGroupName: d.targetParameterGroupName,
      listenerArn: d.listenerArn,
      maintenanceToggleFunction: d.maintenanceToggleFunction,
      mappings: d.mappings,
      queues: d.queues,
    };
    const takingPlans = [
      'preflight',
      'verify-green',
      'verify-writer',
      'restore-old-blue',
      'deletion-protection',
      'watchdog-inspect',
    ];
    for (const dir of takingPlans) {
      const f = app.functions.find((fn) => fn.dir === dir);
      expect({ dir, resources: JSON.parse(f?.environment.DEPLOYED_RESOURCES ?? 'null') }).toEqual({
        dir,
        resources: expected,
      });
    }
  });

  it('loses the poison if a mapping ignores the batch item failures its function reports', async () => {
    const ignoring = {
      ...app,
      mappings: app.mappings.map((m) => ({ ...m, reportBatchItemFailures: false })),
    };
    const r = await rehearse({ app: ignoring, scenario: 'poison', rates: LIGHT_RATES });
    expect(r.invariants.violations).toContain(
      'dlq-only-poison: 3 poison messages are not in a dead-letter queue',
    );
  });
});

describe('a restore whose delete is refused', () => {
  it('pages the operator with RDS’s answer when the deployment lost its tag but still exists', async () => {
    // The restore's delete is allowed only for a deployment with the execution tag; someone
    // removed it after the switchover, so RDS refuses the delete while the deployment exists.
    const report = await rehearse({
      app,
      scenario: 'bad-writer',
      rates: LIGHT_RATES,
      world: { deploymentUntaggedAfterSeconds: 1 },
    });
    expect(report.outcome).toBe('NEEDS_OPERATOR');
    expect(report.run.output?.failure).toEqual({
      Error: 'DeploymentNotDeleted',
      Cause: expect.stringMatching(
        /old blue was not restored\. .* RDS said: .*not authorized to perform: rds:DeleteBlueGreenDeployment/s,
      ) as unknown,
    });
    // Nothing restored: the failed writer keeps the name, and the page stays on.
    expect(report.writer.engineVersion).toBe(app.defaults.targetEngineVersion);
    expect(report.maintenance.on).toBe(true);
    // The one denial is the one the scenario provokes; every other invariant holds.
    expect(report.invariants.violations).toEqual([
      expect.stringMatching(/^iam: QuietUpgrade-Upgrade was denied rds:DeleteBlueGreenDeployment /),
    ]);
  });
});

describe('assumptions', () => {
  it('lists each assumption as NAME: VALUE|VALUE (default VALUE) why', () => {
    const lines = listAssumptions();
    expect(lines).toHaveLength(ASSUMPTIONS.length);
    for (const line of lines) {
      expect(line).toMatch(
        /^[a-z0-9-]+: [A-Za-z_-]+(\|[A-Za-z_-]+)+ \(default [A-Za-z_-]+\) .+https:\/\/docs\.aws\.amazon\.com\//,
      );
    }
  });

  it('takes NAME=VALUE and names what is wrong otherwise', () => {
    expect(parseAssumption('disabling-mapping-polls=no')).toEqual([
      'disabling-mapping-polls',
      'no',
    ]);
    expect(() => parseAssumption('polls=no')).toThrow('NAME one of disabling-mapping-polls');
    expect(() => parseAssumption('disabling-mapping-polls=maybe')).toThrow(
      '--assume disabling-mapping-polls takes yes or no, got: "maybe"',
    );
  });
});

describe('--definition', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rehearse-'));
  const asl = JSON.stringify(app.machines.upgrade.definition);

  it('accepts what --print-definition prints, unchanged', () => {
    expect(readDefinition(asl, app)).toEqual(app.machines.upgrade.definition);
  });

  const topicName = app.topics[0]?.split(':').at(-1) ?? '';
  /** The deployed definition: another account, CloudFormation's physical names. */
  const deployedAsl = () => {
    let deployed = asl.split('123456789012').join('111122223333');
    for (const f of app.functions) deployed = deployed.split(f.name).join(`${f.name}-AbCdEf123456`);
    for (const m of app.mappings)
      deployed = deployed.split(m.uuid).join([...m.uuid].reverse().join(''));
    return deployed.split(topicName).join(`${topicName}-Zx81KqAbCd`);
  };
  const described = (definition: string) =>
    JSON.stringify({
      stateMachineArn: 'arn:aws:states:eu-west-1:111122223333:stateMachine:QuietUpgrade-Upgrade',
      name: 'QuietUpgrade-Upgrade',
      definition,
    });
  type Defaults = { targetEngineVersion: string };
  const defaultsOf = (d: unknown) =>
    (d as { States: Record<string, { Parameters: { defaults: Defaults } }> }).States[
      'Validate input'
    ]?.Parameters.defaults as Defaults;

  it('accepts describe-state-machine output, mapping the account’s real names to the app’s', () => {
    expect(topicName).toContain('NotificationsTopic');
    expect(readDefinition(described(deployedAsl()), app)).toEqual(app.machines.upgrade.definition);
  });

  it('keeps the deployed plan’s own values: only names are mapped', () => {
    const deployed = JSON.parse(deployedAsl()) as unknown;
    defaultsOf(deployed).targetEngineVersion = '17.4';
    const read = readDefinition(described(JSON.stringify(deployed)), app);
    expect(defaultsOf(read).targetEngineVersion).toBe('17.4');
    const expected = JSON.parse(asl) as unknown;
    defaultsOf(expected).targetEngineVersion = '17.4';
    expect(read).toEqual(expected);
  });

  it('refuses a deployed definition that publishes to a topic the app does not have', () => {
    const other = deployedAsl().split(`${topicName}-Zx81KqAbCd`).join('someone-elses-topic');
    expect(() => readDefinition(described(other), app)).toThrow(
      "the definition publishes to arn:aws:sns:eu-west-1:111122223333:someone-elses-topic, which is none of the app's topics",
    );
  });

  it('refuses a definition that is not valid ASL, with the reason, exit 2', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, JSON.stringify({ StartAt: 'Nowhere', States: {} }));
    const r = cli('--definition', file);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('not a valid Amazon States Language definition');
  });

  it('exits 1 on a broken runbook, naming the invariant that caught it', () => {
    const mutant = MUTANTS.find((m) => m.name === 'consumers resumed before "Verify new writer"');
    const file = join(dir, 'mutant.json');
    writeFileSync(file, JSON.stringify(mutant?.definition?.(app.machines.upgrade.definition)));
    const light = Object.keys(LIGHT_RATES).flatMap((k) => ['--rate', `${k}=0.2/s`]);
    const r = cli('--definition', file, ...light, '--json');
    expect(r.status).toBe(1);
    const out = JSON.parse(r.stdout) as RehearsalReport;
    expect(out.invariants.violations.join('\n')).toContain('resume-after-verified-writer');
  });
});

describe('CLI contract', () => {
  it('rejects unknown scenario and state names with the list of known ones', async () => {
    await expect(rehearse({ app, scenario: 'sunny' })).rejects.toThrow(
      new UsageError(`unknown scenario "sunny"; known: ${Object.keys(SCENARIOS).join(', ')}`),
    );
    await expect(rehearse({ app, failAt: ['Make coffee'] })).rejects.toThrow(
      'unknown Task state "Make coffee"; the Task states are:\n  Validate input',
    );
  });

  it('parses its options and refuses malformed ones', () => {
    const args = parseArgs([
      '--rate',
      'clicks=30/s',
      '--fail-at',
      'Verify green',
      '--assume',
      'running-batches-on-disable=abandon',
    ]);
    expect(args).toMatchObject({
      options: { rates: { clicks: 30 }, failAt: ['Verify green'] },
      assumptions: { 'running-batches-on-disable': 'abandon' },
      action: 'rehearse',
    });
    expect(parseArgs(['--assume', 'stale-sessions=none', '--every-scenario'])).toMatchObject({
      assumptions: { 'stale-sessions': 'none' },
      action: 'every-scenario',
    });
    // The sweep picks its own scenarios, faults and traffic: a flag it would ignore is refused.
    expect(() =>
      parseArgs(['--sweep', '--scenario', 'happy', '--fail-at', 'Verify green']),
    ).toThrow('--sweep chooses its own runs; remove --scenario, --fail-at');
    expect(() => parseArgs(['--rate', 'clicks=3/s', '--every-scenario'])).toThrow(
      '--every-scenario chooses its own runs; remove --rate',
    );
    // One action per run: the second would replace the first without a word.
    expect(() => parseArgs(['--sweep', '--every-scenario'])).toThrow(
      '--sweep and --every-scenario cannot be combined; choose one',
    );
    expect(() => parseArgs(['--print-definition', '--list-states'])).toThrow(
      '--print-definition and --list-states cannot be combined',
    );
    expect(parseArgs(['--sweep', '--sweep']).action).toBe('sweep');
    expect(() => parseArgs(['--rate', 'clicks=fast'])).toThrow('--rate must be NAME=N/s');
    expect(() => parseArgs(['--switchover-seconds', '-5'])).toThrow('got: "-5"');
    expect(() => parseArgs(['--switchover-seconds', '0.5'])).toThrow('from 1 to 3600');
    expect(() => parseArgs(['--switchover-seconds', '3600.1'])).toThrow('got: "3600.1"');
    expect(parseArgs(['--switchover-seconds', '27.7']).options.switchoverSeconds).toBe(27.7);
    expect(parseArgs(['--switchover-seconds', '3600']).options.switchoverSeconds).toBe(3600);
    expect(parseArgs(['--switchover-seconds', '1']).options.switchoverSeconds).toBe(1);
    expect(() => parseArgs(['--assume', 'x=y'])).toThrow('--assume takes NAME=VALUE');
    expect(() => parseArgs(['--definition'])).toThrow('--definition needs a value');
    expect(() => parseArgs(['--frobnicate'])).toThrow('unknown option "--frobnicate"');
  });

  it('exits non-zero when an invariant is broken or the outcome is not the expected one', () => {
    const good = {
      outcome: 'UPGRADED',
      expected: 'UPGRADED',
      invariants: { ok: true, violations: [] },
    } as unknown as RehearsalReport;
    expect(exitCode(good, false)).toBe(0);
    expect(exitCode({ ...good, invariants: { ok: false, violations: ['x'] } }, false)).toBe(1);
    expect(exitCode({ ...good, outcome: 'ROLLED_BACK' }, false)).toBe(1);
    expect(exitCode({ ...good, outcome: 'ROLLED_BACK' }, true)).toBe(0);
  });

  it('prints one JSON object with --json, the assumptions with --list-assumptions, and exits 2 on an unknown scenario', () => {
    const ok = cli('--json', '--scenario', 'dry-run');
    expect(ok.status).toBe(0);
    const lines = ok.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      outcome: 'DRY_RUN',
      invariants: { ok: true },
    });
    const list = cli('--list-assumptions');
    expect(list.stdout.trim().split('\n')).toEqual(listAssumptions());
    const bad = cli('--scenario', 'sunny');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown scenario "sunny"; known: happy, dry-run');
  });
});

describe('traffic that cannot be produced', () => {
  it('fails the rehearsal instead of leaving a quiet run that passes', async () => {
    // No consumer reads the sends buffer: its writes have no queue to go to.
    const noSends = {
      ...app,
      mappings: app.mappings.filter(
        (m) =>
          app.functions.find((f) => f.name === m.functionName || f.arn === m.functionName)
            ?.environment.BUFFER_NAME !== 'sends',
      ),
    };
    expect(noSends.mappings).toHaveLength(app.mappings.length - 1);
    // A send in the first second, before anything else can end the run.
    const rates = { ...LIGHT_RATES, sends: 1 };
    await expect(rehearse({ app: noSends, rates })).rejects.toThrow(
      "no consumer's mapping reads the sends buffer",
    );
  });

  it('fails the rehearsal when a consumer mapping cannot poll', async () => {
    // The sends mapping reads a queue that does not exist, and no send is produced.
    const [sends, ...rest] = app.mappings;
    const gone = 'arn:aws:sqs:eu-west-1:123456789012:gone';
    const broken = { ...app, mappings: [{ ...sends, queueArn: gone }, ...rest] } as typeof app;
    expect(sends?.functionName).toMatch(/Sends/);
    await expect(rehearse({ app: broken, rates: { ...LIGHT_RATES, sends: 0 } })).rejects.toThrow(
      `The specified queue does not exist: ${gone}`,
    );
  });
});

describe('a Pass state whose Result is falsy', () => {
  // aws-local-stepfunctions passes the input on for Result false/0/""/null, where Step
  // Functions outputs the Result: the rehearsal would follow a path AWS never takes.
  const machine = (result: unknown) =>
    ({
      StartAt: 'Note',
      States: { Note: { Type: 'Pass', Result: result, ResultPath: '$.flag', End: true } },
    }) as never;

  it.each([false, 0, '', null])('is refused, naming the state (Result %p)', (result) => {
    expect(() => refuseFalsyPassResults(machine(result))).toThrow(
      `Pass state "Note" has Result ${JSON.stringify(result)}, which the rehearsal's interpreter ignores`,
    );
  });

  it('is not in the app: every machine of every engine runs', () => {
    for (const engine of ['postgres', 'aurora-mysql']) {
      const app = defaultApp(engine);
      for (const m of [app.machines.upgrade, app.machines.watchdog]) {
        expect(() => refuseFalsyPassResults(m.definition)).not.toThrow();
      }
    }
    expect(() => refuseFalsyPassResults(machine(true))).not.toThrow();
  });
});
