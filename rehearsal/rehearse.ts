import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { type Assumptions, defaultAssumptions } from './assumptions';
import { allStates } from './definition';
import { validDefinition } from './definition-file';
import { bundleFunctions } from './functions';
import { checkInvariants, type Outcome } from './invariants';
import { type ProfileName, type TrafficProfileSpec, trafficProfile } from './profiles';
import { type RunResult, runExecution } from './run';
import { Simulation } from './sim';
import {
  CONFIGURED_ENGINE,
  type MachineSpec,
  type SynthesizedApp,
  synthesizeEngine,
} from './synthesized';
import { account, DEFAULT_RATES, Traffic, type TrafficKind } from './traffic';
import { World } from './world';
import type { Scenario } from './world/core';
import type { InstanceEngine } from './world/rds';

export type { Outcome } from './invariants';

/** A Sunday, 04:00 UTC: the quiet hours. */
export const START = '2026-11-22T04:00:00.000Z';
/** After the runs, traffic stops and consumers drain for at most this long (virtual). */
const MAX_DRAIN_SECONDS = 3600;

interface ScenarioSpec {
  summary: string;
  scenario?: Scenario;
  input?: Record<string, unknown>;
  /** Abort the upgrade when this Task starts; the watchdog then recovers. */
  abortAt?: string;
  /** Start a second upgrade as the first run's Task of this name first starts. */
  concurrent?: string;
  /** Traffic for this scenario, when the default would swamp its consumers. */
  rates?: Partial<Record<TrafficKind, number>>;
  /** The traffic's shape over the day, when not flat (profiles.ts). */
  traffic?: ProfileName | TrafficProfileSpec;
  /** When the run starts, in virtual time (default START, 04:00 UTC). */
  start?: string;
  expect: Outcome;
  /**
   * The engines it means something for, and why it does not apply to the others (default:
   * every engine the rehearsal models).
   */
  only?: { engines: InstanceEngine[]; otherwise: string };
}

/**
 * The engines the rehearsal models: RDS DB instances (postgres, mysql) and Aurora DB clusters
 * (aurora-postgresql, aurora-mysql). An engine runs once the app synthesizes for it (the
 * config refuses an engine the runbook does not support yet: defaultApp says so).
 */
export const REHEARSAL_ENGINES: readonly InstanceEngine[] = [
  'postgres',
  'mysql',
  'aurora-postgresql',
  'aurora-mysql',
];

/** Light writes for the quiet gate's scenarios: the load balancer's count is page views. */
const QUIET_GATE_WRITES: Partial<Record<TrafficKind, number>> = {
  clicks: 1,
  opens: 1,
  confirmations: 0.2,
  signUps: 0.2,
  unsubscribes: 0.2,
  sends: 1,
};

export const SCENARIOS: Record<string, ScenarioSpec> = {
  happy: { summary: 'the upgrade goes as planned', expect: 'UPGRADED' },
  'dry-run': { summary: 'preflight and plan only', input: { dryRun: true }, expect: 'DRY_RUN' },
  'bad-input': {
    summary: 'the console input has a typo',
    input: { dryrun: true },
    expect: 'REJECTED',
  },
  'preflight-fails': {
    summary: 'automated backups are off and a blue/green deployment already exists',
    scenario: { noBackups: true, existingDeployment: true },
    expect: 'REJECTED',
  },
  'writer-check-unreachable': {
    summary: 'the writer check has no network route to the database: found before anything changes',
    scenario: { writerCheckUnreachable: true },
    expect: 'REJECTED',
  },
  'leftover-old-blue': {
    summary: 'the old blue of an earlier upgrade is still there as platform-db-old1',
    scenario: { leftoverOldBlue: true },
    expect: 'REJECTED',
  },
  'green-stuck': {
    summary: 'green never becomes AVAILABLE before the deadline',
    scenario: { greenStuck: true },
    input: { deadline: '2026-11-22T05:00:00Z' },
    expect: 'ROLLED_BACK',
  },
  'green-initializing': {
    summary: 'green backs up for 10 minutes and loads its storage for 40 before it is ready',
    scenario: { greenStorageInitSeconds: 2400, greenBackingUpSeconds: 600 },
    expect: 'UPGRADED',
  },
  'green-invalid': {
    summary: 'RDS reports the green environment as INVALID_CONFIGURATION',
    scenario: { greenInvalid: true },
    expect: 'ROLLED_BACK',
  },
  'create-answer-lost': {
    summary: 'the answer to the create call is lost; the retry finds the deployment',
    scenario: { createErrors: ['InternalFailure'] },
    expect: 'UPGRADED',
  },
  'create-unanswered': {
    summary: 'RDS creates green but answers the create with a 5xx, then throttles every retry',
    scenario: { createErrors: ['InternalFailure', ...Array<string>(5).fill('Throttling')] },
    expect: 'ROLLED_BACK',
  },
  'approval-rejected': {
    summary: 'an operator rejects the switchover when asked',
    scenario: { rejectApproval: true },
    input: { requireApproval: true },
    expect: 'ROLLED_BACK',
  },
  'switchover-fails': {
    summary: 'RDS reports SWITCHOVER_FAILED',
    scenario: { switchoverFails: true },
    expect: 'ROLLED_BACK',
  },
  'switchover-times-out': {
    summary: 'the switchover takes longer than its timeout; RDS rolls it back',
    scenario: { latencies: { switchover: 90 } },
    input: { switchoverTimeoutSeconds: 60 },
    expect: 'ROLLED_BACK',
  },
  'switchover-call-lost': {
    summary: 'RDS starts the switchover but its answer is lost; the retry is refused',
    scenario: { switchoverAnswerLost: 'InternalFailure' },
    expect: 'UPGRADED',
  },
  'switchover-hangs': {
    summary: 'the switchover neither completes nor fails',
    scenario: { switchoverHangs: true },
    input: { switchoverTimeoutSeconds: 60 },
    expect: 'NEEDS_OPERATOR',
  },
  'stale-dns': {
    summary: 'the first connection after the switchover still reaches old blue',
    scenario: { staleDnsConnects: 1 },
    expect: 'UPGRADED',
  },
  'bad-writer': {
    summary: 'the new writer refuses writes; old blue is restored',
    scenario: { badWriter: true },
    expect: 'ROLLED_BACK',
  },
  'bad-writer-deployment-gone': {
    summary:
      'the new writer refuses writes, and someone deletes the switched-over deployment before ' +
      'the restore does',
    scenario: { badWriter: true, deploymentDeletedAfterSeconds: 3 },
    expect: 'ROLLED_BACK',
  },
  'quiet-gate': {
    summary:
      'green is ready at noon as a campaign send peaks; the quiet gate waits for the burst to ' +
      'pass before the page goes on',
    start: '2026-11-22T11:55:00.000Z',
    traffic: 'diurnal',
    // The page views of a mid-size platform at noon, with light writes to keep the run quick.
    rates: { ...QUIET_GATE_WRITES, pageViews: 45 },
    input: { quietGate: { enabled: true } },
    expect: 'UPGRADED',
  },
  'quiet-gate-quiet-at-once': {
    summary: 'the quiet gate finds the traffic quiet at its first look',
    input: { quietGate: { enabled: true } },
    expect: 'UPGRADED',
  },
  'quiet-gate-not-quiet-roll-back': {
    summary:
      'traffic stays busy until 5 minutes before the deadline; the quiet gate rolls back, as configured',
    rates: { ...QUIET_GATE_WRITES, pageViews: 200 },
    input: { quietGate: { enabled: true }, deadline: '2026-11-22T04:25:00Z' },
    expect: 'ROLLED_BACK',
  },
  'quiet-gate-not-quiet-switch-anyway': {
    summary:
      'traffic stays busy for the quiet gate’s 3 minutes; it switches over anyway, as the input says',
    rates: { ...QUIET_GATE_WRITES, pageViews: 200 },
    input: { quietGate: { enabled: true, onDeadline: 'switch-anyway', maxWaitMinutes: 3 } },
    expect: 'UPGRADED',
  },
  'new-writer-modifying': {
    summary:
      'the new writer takes writes but stays modifying for 3 minutes, failing its checks: ' +
      'old blue is restored and the failed writer fenced (and, with no route to it, rebooted ' +
      'to end its sessions)',
    scenario: { newWriterModifyingSeconds: 180, formerWritersUnreachable: true },
    expect: 'ROLLED_BACK',
  },
  'restored-endpoint-cached': {
    summary:
      'the new writer refuses writes; after the renames, cached addresses keep the original ' +
      'name on the failed writer for 20 minutes',
    scenario: { badWriter: true, renameDnsCacheSeconds: 1200 },
    expect: 'ROLLED_BACK',
  },
  'table-without-primary-key': {
    summary: 'a table in blue has no primary key, which logical replication cannot update',
    scenario: {
      blueFindings: [{ kind: 'no_replica_identity', name: 'public.audit_trail', db: 'platform' }],
    },
    expect: 'REJECTED',
    // Aurora PostgreSQL too: "Make sure that all tables in the DB cluster have a primary key."
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html
    only: {
      engines: ['postgres', 'aurora-postgresql'],
      otherwise:
        'MySQL replicates green from the binary log, which carries tables without a ' +
        'primary key; the limitation is logical replication’s (PostgreSQL). MySQL’s own ' +
        'limitation found in blue’s database is the scenario external-binlog-replica.',
    },
  },
  'external-binlog-replica': {
    summary:
      'blue is a binlog replica of a MySQL server outside RDS (SHOW REPLICA STATUS lists it), ' +
      'which an RDS for MySQL blue/green deployment cannot take',
    scenario: { externalReplicaSource: 'onprem-db.example.com' },
    expect: 'REJECTED',
    // Aurora MySQL too: "The blue DB cluster can't be an external binlog replica."
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html
    only: {
      engines: ['mysql', 'aurora-mysql'],
      otherwise:
        'PostgreSQL has no binlog replication; blue as a logical replication publisher or ' +
        'subscriber is among what the limitation query finds (scenario table-without-primary-key).',
    },
  },
  'old-blue-unreachable': {
    summary:
      'the writer check function has no route to old blue, so the run reboots old blue to ' +
      'end its sessions',
    scenario: { formerWritersUnreachable: true },
    expect: 'UPGRADED',
  },
  'stale-sessions': {
    summary:
      "the web app's pool reconnects at once to its cached address, old blue, after the switchover",
    expect: 'UPGRADED',
  },
  'writer-check-fails': {
    summary:
      'the new writer takes writes but the check cannot query it; the page stays on for an operator',
    scenario: { writerCheckFails: true },
    expect: 'NEEDS_OPERATOR',
  },
  'slow-disable': {
    summary: 'the mappings take 90 s to report Disabled',
    scenario: { latencies: { disableMapping: 90 } },
    expect: 'UPGRADED',
  },
  'slow-consumers': {
    summary: 'the database is slow: each insert takes 2 s, a full batch 20 s',
    scenario: { latencies: { sqlQuery: 2 } },
    // The tracking consumers run full batches, just keeping up; the others have room.
    rates: {
      pageViews: 5,
      clicks: 0.45,
      opens: 0.45,
      confirmations: 0.5,
      signUps: 0.5,
      unsubscribes: 0.5,
      sends: 0.5,
    },
    expect: 'UPGRADED',
  },
  poison: {
    summary: 'three messages break their contract and must end in the DLQ',
    scenario: { poison: 3 },
    expect: 'UPGRADED',
  },
  abort: {
    summary:
      'an operator stops the run mid-switchover; the watchdog recovers (and, with no route ' +
      'to old blue, reboots it to end its sessions)',
    scenario: { formerWritersUnreachable: true },
    abortAt: 'Check switchover status',
    expect: 'UPGRADED',
  },
  'abort-before-switchover': {
    summary: 'an operator stops the run as maintenance goes on; the watchdog rolls back',
    abortAt: 'Turn maintenance on',
    expect: 'ROLLED_BACK',
  },
  'abort-early': {
    summary: 'an operator stops the run before green exists; nothing to recover',
    abortAt: 'Create blue-green deployment',
    expect: 'ROLLED_BACK',
  },
  'abort-during-restore': {
    summary:
      'an operator stops the run after old blue got its name back, before it was checked ' +
      'through the endpoint; the watchdog pages instead of resuming',
    scenario: { badWriter: true },
    abortAt: 'Verify the restored writer',
    expect: 'NEEDS_OPERATOR',
  },
  'abort-bad-writer': {
    summary:
      'an operator stops the run mid-switchover and the new writer is bad; the watchdog pages',
    scenario: { badWriter: true },
    abortAt: 'Check switchover status',
    expect: 'NEEDS_OPERATOR',
  },
  concurrent: {
    summary: 'a second run is started while the first builds green',
    concurrent: 'Check green status',
    expect: 'UPGRADED',
  },
  // Before green exists only single flight can turn the second run away: the check for an
  // existing blue/green deployment has nothing to find yet.
  'concurrent-start': {
    summary: 'a second run is started while the first runs its preflight, before green exists',
    concurrent: 'Run preflight checks',
    expect: 'UPGRADED',
  },
};

export interface RehearsalOptions {
  scenario?: string;
  switchoverSeconds?: number;
  rates?: Partial<Record<TrafficKind, number>>;
  /**
   * The shape of the traffic over the day (profiles.ts): a named profile or a spec.
   * @default 'flat'
   */
  traffic?: ProfileName | TrafficProfileSpec;
  failAt?: string[];
  failOnce?: string[];
  assumptions?: Partial<Assumptions>;
  /** Rehearse this upgrade definition instead of the synthesized one. */
  definition?: StateMachineDefinition;
  /** Function folders whose handler is another file (broken functions in tests). */
  functionEntries?: Record<string, string>;
  /** Reuse a synthesized app (tests, the sweep and the bench synthesize once). */
  app?: SynthesizedApp;
  /** Called as each Task starts, with virtual seconds since the start. */
  onProgress?: (seconds: number, state: string) => void;
  /** More conditions of the account, over the scenario's (tests combine them). */
  world?: Scenario;
  /** The execution input, instead of the scenario's. */
  input?: Record<string, unknown>;
  /** Abort the upgrade when this Task starts, instead of the scenario's choice. */
  abortAt?: string;
  /** Reads the world at the end, while the simulation still runs (tests). */
  inspect?: (world: World) => void;
  /** Called as each Task of the first upgrade run starts (tests change the world there). */
  onTask?: (state: string, call: number, world: World) => void;
}

export interface WindowBreakdown {
  ruleOn: number;
  noticing: number;
  writerCheck: number;
  ruleOff: number;
  coldStartsInWindow: number;
}

export interface TimelineEntry {
  t: number;
  state: string;
  event: string;
}

export interface RehearsalReport {
  scenario: string;
  /** The database engine rehearsed, as the app was synthesized for it. */
  engine: { name: string; from: string; to: string };
  expected: Outcome;
  outcome: Outcome;
  assumptions: Assumptions;
  /** The instance named like the source at the end, as the model sees it. */
  writer: {
    identifier: string;
    engineVersion: string;
    /** It takes writes (the model's read-only rules, not what the run says). */
    writable: boolean;
    deletionProtection: boolean;
  };
  maintenance: { on: boolean; seconds: number };
  /**
   * The first time the page was on around a switchover, step by step: from the page on to
   * the switchover's start (rule on), from its end to the runbook acting on it (noticing),
   * the writer check, and from the check to the page off (rule off); their sum is the page
   * seconds minus the switchover's. Cold starts that began while the page was on.
   */
  window?: WindowBreakdown;
  /** Cold starts in the run, by function folder. */
  coldStarts: Record<string, number>;
  consumers: { enabled: boolean; pausedSeconds: number };
  switchoverSeconds: number;
  drainSeconds: number;
  blueGreenDeployments: number;
  captureUnavailableSeconds: number;
  messages: {
    produced: number;
    processed: number;
    inQueue: number;
    inDlq: number;
    lost: number;
    /** Writes applied again under another key (see Accounting.appliedTwice). */
    appliedTwice: number;
    poison: number;
  };
  pageViews: {
    served: number;
    maintenancePage: number;
    /**
     * Who met the maintenance page, by kind: page views while it was on, and capture
     * requests refused while their path was down. Sends come from the platform, not users.
     */
    maintenancePageByKind: Traffic['maintenancePageByKind'];
  };
  /** The web app's own writes to the database (page off only). */
  appWrites: number;
  /** Of them, refused after a switchover: sessions left on a read-only instance. */
  writesFailedAfterMaintenance: number;
  /** Client sessions the run ended on a former writer (-old1, -failed1), as the model counted them. */
  oldSessionsEnded: number;
  operatorNotified: boolean;
  watchdog?: string;
  secondRun?: string;
  /** Task states attempted, per state machine, in order. */
  tasks: { upgrade: string[]; watchdog: string[] };
  /** States whose injected fault (or abort) fired. */
  faultsFired: string[];
  /** How the first upgrade run ended, as Step Functions reports it. */
  run: { status: string; error?: string; cause?: string; output?: Record<string, unknown> };
  invariants: { ok: boolean; violations: string[] };
  timeline: TimelineEntry[];
  /** Messages waiting every 10 virtual seconds, for the picture. */
  depth: { t: number; waiting: number }[];
}

/** The Task states of a definition, the names --fail-at and --fail-once take. */
export function taskStates(definition: StateMachineDefinition): string[] {
  return [...allStates(definition)].filter(([, s]) => s.Type === 'Task').map(([n]) => n);
}

const synthesized = new Map<string, SynthesizedApp>();
/**
 * The app, synthesized once per process per engine: as cdk.json configures it, or with
 * another database engine (synthesizeEngine).
 */
export function defaultApp(engine: string = CONFIGURED_ENGINE): SynthesizedApp {
  let app = synthesized.get(engine);
  if (app === undefined) {
    app = synthesizeEngine(engine);
    synthesized.set(engine, app);
  }
  return app;
}

/** The engine an app's database runs. */
export function engineOf(app: SynthesizedApp): InstanceEngine {
  const engine = app.defaults.engine;
  if (!(REHEARSAL_ENGINES as readonly string[]).includes(engine)) {
    throw new UsageError(
      `the rehearsal models ${REHEARSAL_ENGINES.join(', ')} only, got engine: ${engine}`,
    );
  }
  return engine as InstanceEngine;
}

/** The scenarios that mean something for an engine, in SCENARIOS order. */
export function scenariosFor(engine: InstanceEngine): string[] {
  return Object.entries(SCENARIOS)
    .filter(([, spec]) => spec.only === undefined || spec.only.engines.includes(engine))
    .map(([name]) => name);
}

/** Runs one rehearsal: the runbook against the simulated account, with traffic. */
export async function rehearse(options: RehearsalOptions = {}): Promise<RehearsalReport> {
  const name = options.scenario ?? 'happy';
  const spec = SCENARIOS[name];
  if (spec === undefined) {
    throw new UsageError(
      `unknown scenario ${JSON.stringify(name)}; known: ${Object.keys(SCENARIOS).join(', ')}`,
    );
  }
  const app = options.app ?? defaultApp();
  const engine = engineOf(app);
  if (spec.only !== undefined && !spec.only.engines.includes(engine)) {
    throw new UsageError(`scenario ${name} does not apply to ${engine}: ${spec.only.otherwise}`);
  }
  // The app's own definition is validated by the interpreter on its first run (run.ts).
  if (options.definition !== undefined && options.definition !== app.machines.upgrade.definition)
    validDefinition(options.definition);
  const upgrade: MachineSpec = {
    ...app.machines.upgrade,
    definition: options.definition ?? app.machines.upgrade.definition,
  };
  const machines = [upgrade, app.machines.watchdog];
  const known = new Set(machines.flatMap((m) => taskStates(m.definition)));
  for (const state of [...(options.failAt ?? []), ...(options.failOnce ?? [])]) {
    if (!known.has(state)) {
      throw new UsageError(
        `unknown Task state ${JSON.stringify(state)}; the Task states are:\n  ${[...known].join('\n  ')}`,
      );
    }
  }
  const assumptions = { ...defaultAssumptions(), ...options.assumptions };
  // Checked before anything runs: a bad spec is the caller's, not the run's.
  const startAt = spec.start ?? START;
  const profile = trafficProfile(options.traffic ?? spec.traffic ?? 'flat', Date.parse(startAt));
  const code = await bundleFunctions(
    app.functions.map((f) => f.dir),
    options.functionEntries,
  );
  const sim = new Simulation(startAt);
  const start = sim.startMs;
  return sim.run(async () => {
    const runs: Promise<RunResult>[] = [];
    const results: RunResult[] = [];
    const faults = { failAt: options.failAt, failOnce: options.failOnce };
    const track = (p: Promise<RunResult>) => {
      runs.push(p);
      void p.then((r) => results.push(r));
    };
    // The watchdog each stopped run started, by the stopped run's execution ARN.
    const watchdogOf = new Map<string, string>();
    const world = new World({
      sim,
      app,
      code,
      scenario: {
        ...spec.scenario,
        ...options.world,
        latencies: {
          ...(options.switchoverSeconds !== undefined
            ? { switchover: options.switchoverSeconds }
            : {}),
          ...spec.scenario?.latencies,
          ...options.world?.latencies,
        },
      },
      assumptions,
      startMachine: (machine, event) => {
        const name = `watchdog-${watchdogOf.size + 1}`;
        watchdogOf.set(String((event.detail as { executionArn?: unknown })?.executionArn), name);
        track(
          runExecution({
            world,
            machine: machine.name === upgrade.name ? upgrade : machine,
            input: event,
            executionName: name,
            ...faults,
          }),
        );
      },
    });
    world.start();
    const traffic = new Traffic(
      world,
      { ...DEFAULT_RATES, ...spec.rates, ...options.rates },
      {
        profile,
        onRequests: (count, atMs) => world.cloudWatch.recordRequests(count, atMs),
      },
    );
    traffic.start(world.scenario.poison ?? 0);

    const first = runExecution({
      world,
      machine: upgrade,
      input: options.input ?? spec.input ?? {},
      executionName: 'rehearsal-1',
      abortAt: options.abortAt ?? spec.abortAt,
      ...faults,
      onTask: (state, call) => {
        options.onProgress?.(sim.elapsed(), state);
        options.onTask?.(state, call, world);
        if (state === spec.concurrent && call === 1) {
          track(runExecution({ world, machine: upgrade, input: {}, executionName: 'rehearsal-2' }));
        }
      },
    });
    track(first);
    // Every run, and every run a rule started, to its end.
    for (let seen = 0; seen < runs.length || world.eventBridge.pending > 0;) {
      if (seen < runs.length) {
        await runs[seen];
        seen += 1;
      } else await sim.sleep(world.latency.eventDelivery);
    }

    // The runs are over: production stops, and the consumers drain what is left.
    traffic.stopProducing();
    const consumersOn = () =>
      [...world.lambda.mappings.values()].every(
        (m) => m.state === 'Enabled' || m.state === 'Enabling',
      );
    const drainStart = Date.now();
    while (
      Date.now() - drainStart < MAX_DRAIN_SECONDS * 1000 &&
      ((consumersOn() && world.sqs.waiting() > 0) ||
        [...world.rds.deployments.values()].some((d) => d.status === 'DELETING'))
    ) {
      await sim.sleep(10);
    }
    world.lambda.stop();
    options.inspect?.(world);
    return report(
      name,
      spec,
      world,
      traffic,
      results,
      watchdogOf,
      start,
      consumersOn(),
      assumptions,
    );
  });
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function outcomeOf(run: RunResult): Outcome {
  if (run.status === 'SUCCEEDED') return String(run.output?.outcome) as Outcome;
  if (
    run.status === 'FAILED' &&
    (run.error?.startsWith('InvalidInput') || run.error === 'PreflightFailed')
  ) {
    return 'REJECTED';
  }
  return 'NEEDS_OPERATOR';
}

function report(
  name: string,
  spec: ScenarioSpec,
  world: World,
  traffic: Traffic,
  results: RunResult[],
  watchdogOf: Map<string, string>,
  start: number,
  consumersOn: boolean,
  assumptions: Assumptions,
): RehearsalReport {
  const byName = (n: string | undefined) => results.find((r) => r.executionArn.endsWith(`:${n}`));
  const first = byName('rehearsal-1') as RunResult;
  const second = byName('rehearsal-2');
  // Only a run that stopped without its own rollback needs its watchdog reported.
  const watchdog =
    first.status === 'SUCCEEDED' ? undefined : byName(watchdogOf.get(first.executionArn));
  const writer = world.rds.writer();
  const production = world.rds.production();
  let outcome = outcomeOf(first);
  const watchdogOutcome = (watchdog?.output?.report as { outcome?: string } | undefined)?.outcome;
  if (
    first.status === 'ABORTED' ||
    first.status === 'TIMED_OUT' ||
    (first.status === 'FAILED' && outcome !== 'REJECTED')
  ) {
    const defaults = world.app.defaults;
    outcome =
      watchdog === undefined ||
      watchdogOutcome === undefined ||
      watchdogOutcome === 'NEEDS_OPERATOR'
        ? 'NEEDS_OPERATOR'
        : writer?.engineVersion === defaults.targetEngineVersion
          ? 'UPGRADED'
          : 'ROLLED_BACK';
  }
  const accounting = account(world, traffic.ledger);
  const events = world.events;
  const seconds = (ms: number) => Math.round((ms - start) / 100) / 10;
  const pageOn = world.routing.page;
  const end = Date.now();
  const invariants = checkInvariants(
    events,
    accounting,
    {
      outcome,
      writer:
        writer === undefined
          ? null
          : {
              engineVersion: writer.engineVersion,
              readOnly: world.rds.readOnlyReason(writer) !== null,
              deletionProtection: production?.deletionProtection ?? false,
            },
      blueUnprotected: world.rds.blueUnprotected(),
      formerWritersTakingWrites: world.rds.formerWritersTakingWrites(),
      splitBrains: world.rds.splitBrains,
      writesFailedAfterMaintenance: world.appPool.writesFailedAfterMaintenance,
      groupsChanged: world.rds.changedGroups(),
      currentVersion: world.app.defaults.currentEngineVersion,
      targetVersion: world.app.defaults.targetEngineVersion,
      pageOn,
      consumersOn,
      deploymentsLeft: world.rds.deployments.size,
      operatorPaged: paged(world),
      mappings: [...world.lambda.mappings.keys()],
      ...(typeof first.output?.failure === 'object'
        ? { failure: String((first.output.failure as { Error?: unknown }).Error) }
        : {}),
      ...(second !== undefined ? { secondRun: outcomeOf(second) } : {}),
    },
    start,
  );
  const timeline: TimelineEntry[] = [];
  for (const e of events) {
    if (e.kind === 'task') timeline.push({ t: seconds(e.t), state: e.state, event: 'task' });
    if (e.kind === 'routing') {
      timeline.push({
        t: seconds(e.t),
        state: e.page ? 'Turn maintenance on' : 'Turn maintenance off',
        event: e.page ? 'maintenance on' : 'maintenance off',
      });
    }
    if (e.kind === 'switchover-start')
      timeline.push({
        t: seconds(e.t),
        state: 'Switch over to green',
        event: 'switchover started',
      });
    if (e.kind === 'switchover-end') {
      timeline.push({
        t: seconds(e.t),
        state: 'Check switchover status',
        event: e.completed ? 'switchover ended' : 'switchover rolled back',
      });
    }
  }
  const tasksOf = (machine: string) =>
    results.filter((r) => r.machine === machine).flatMap((r) => r.tasks);
  return {
    scenario: name,
    engine: {
      name: world.app.defaults.engine,
      from: world.app.defaults.currentEngineVersion,
      to: world.app.defaults.targetEngineVersion,
    },
    expected: spec.expect,
    outcome,
    assumptions,
    // For Aurora, the cluster's name and protection; its writer's version and writability.
    writer: {
      identifier: writer === undefined ? '(none)' : (production?.identifier ?? '(none)'),
      engineVersion: writer?.engineVersion ?? '(none)',
      writable: writer !== undefined && world.rds.readOnlyReason(writer) === null,
      deletionProtection: production?.deletionProtection ?? false,
    },
    maintenance: { on: pageOn, seconds: pageSeconds(events, end) },
    ...(windowOf(events) ? { window: windowOf(events) } : {}),
    coldStarts: events.reduce<Record<string, number>>((counts, e) => {
      if (e.kind === 'cold-start') counts[e.function] = (counts[e.function] ?? 0) + 1;
      return counts;
    }, {}),
    consumers: { enabled: consumersOn, pausedSeconds: pausedSeconds(events, end) },
    switchoverSeconds: switchoverSeconds(events, end),
    drainSeconds: drainSeconds(world, traffic),
    blueGreenDeployments: world.rds.deployments.size,
    captureUnavailableSeconds: traffic.captureUnavailableSeconds,
    messages: {
      produced: accounting.produced,
      processed: accounting.processed,
      inQueue: accounting.inQueue,
      inDlq: accounting.inDlq,
      lost: accounting.lost,
      appliedTwice: accounting.appliedTwice,
      poison: world.scenario.poison ?? 0,
    },
    pageViews: { ...traffic.pageViews, maintenancePageByKind: traffic.maintenancePageByKind },
    appWrites: world.appPool.writes,
    writesFailedAfterMaintenance: world.appPool.writesFailedAfterMaintenance,
    oldSessionsEnded: events.reduce((n, e) => n + (e.kind === 'sessions-ended' ? e.count : 0), 0),
    operatorNotified: paged(world),
    ...(watchdog ? { watchdog: watchdogOutcome ?? watchdog.status } : {}),
    ...(second ? { secondRun: outcomeOf(second) } : {}),
    tasks: {
      upgrade: tasksOf(world.app.machines.upgrade.name),
      watchdog: tasksOf(world.app.machines.watchdog.name),
    },
    faultsFired: [...new Set(results.flatMap((r) => r.injected))],
    run: {
      status: first.status,
      ...(first.error !== undefined ? { error: first.error, cause: first.cause } : {}),
      ...(first.output !== undefined ? { output: first.output } : {}),
    },
    invariants: { ok: invariants.length === 0, violations: invariants },
    timeline: timeline.sort((a, b) => a.t - b.t),
    depth: traffic.depth.map((d) => ({ t: seconds(d.at), waiting: d.waiting })),
  };
}

/**
 * Whether an operator was told a run needs them: by SNS, or by the EventBridge event the
 * same notification step emits (either channel reaches a person).
 */
function paged(world: World): boolean {
  const needsOperator = (message: unknown) => {
    const m = typeof message === 'string' ? safeJson(message) : message;
    return (m as { outcome?: unknown } | null)?.outcome === 'NEEDS_OPERATOR';
  };
  return (
    world.sns.published.some((p) => needsOperator(p.message)) ||
    world.eventBridge.put.some((e) =>
      ((e.entries ?? []) as { Detail?: unknown }[]).some((entry) => needsOperator(entry.Detail)),
    )
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Seconds the maintenance page was on, summed over the run. */
function pageSeconds(events: World['events'], end: number): number {
  let total = 0;
  let since: number | undefined;
  for (const e of events) {
    if (e.kind !== 'routing') continue;
    if (e.page && since === undefined) since = e.t;
    if (!e.page && since !== undefined) {
      total += e.t - since;
      since = undefined;
    }
  }
  if (since !== undefined) total += end - since;
  return Math.round(total / 100) / 10;
}

/** The page's first stretch around a completed switchover, step by step (see the report). */
function windowOf(events: World['events']): WindowBreakdown | undefined {
  const on = events.find((e) => e.kind === 'routing' && e.page);
  if (on === undefined) return undefined;
  const off = events.find((e) => e.kind === 'routing' && !e.page && e.t >= on.t);
  const start = events.find((e) => e.kind === 'switchover-start' && e.t >= on.t);
  const done = events.find((e) => e.kind === 'switchover-end' && e.completed && e.t >= on.t);
  if (off === undefined || start === undefined || done === undefined || done.t > off.t) {
    return undefined;
  }
  const tasks = events.filter((e) => e.kind === 'task' && e.t >= done.t && e.t <= off.t);
  const noticed = tasks.find((e) => e.kind === 'task' && e.state === 'Verify new writer');
  // The last step before the page went off: the call that took the page rule away.
  const checked = tasks.filter((e) => e.t < off.t).at(-1);
  if (noticed === undefined || checked === undefined) return undefined;
  const s = (ms: number) => Math.round(ms) / 1000;
  return {
    ruleOn: s(start.t - on.t),
    noticing: s(noticed.t - done.t),
    writerCheck: s(checked.t - noticed.t),
    ruleOff: s(off.t - checked.t),
    coldStartsInWindow: events.filter((e) => e.kind === 'cold-start' && e.t >= on.t && e.t < off.t)
      .length,
  };
}

/** From the first pause to the last resume (or the end, if a consumer stayed paused). */
function pausedSeconds(events: World['events'], end: number): number {
  const updates = events.filter((e) => e.kind === 'update-mapping');
  const first = updates.find((e) => e.kind === 'update-mapping' && !e.enabled)?.t;
  if (first === undefined) return 0;
  const last = updates.at(-1);
  const resumed =
    last !== undefined && last.kind === 'update-mapping' && last.enabled ? last.t : end;
  return Math.round((resumed - first) / 100) / 10;
}

function switchoverSeconds(events: World['events'], end: number): number {
  const s = events.find((e) => e.kind === 'switchover-start');
  if (s === undefined) return 0;
  const e = events.find((x) => x.kind === 'switchover-end' && x.t >= s.t);
  return Math.round(((e?.t ?? end) - s.t) / 100) / 10;
}

/** From the last resume until every write produced before it took effect. */
function drainSeconds(world: World, traffic: Traffic): number {
  const resumes = world.events.filter((e) => e.kind === 'update-mapping' && e.enabled);
  const resumedAt = resumes.at(-1)?.t;
  if (resumedAt === undefined) return 0;
  let last = resumedAt;
  for (const e of traffic.ledger) {
    if (e.producedAt >= resumedAt) continue;
    for (const c of world.sqs.copiesOf(e.id)) {
      if (c.state === 'deleted' && c.deletedAt !== undefined) last = Math.max(last, c.deletedAt);
    }
  }
  return Math.round((last - resumedAt) / 100) / 10;
}
