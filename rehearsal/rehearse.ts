import { BUFFER_NAMES } from '../lambda/shared/contracts';
import { AwsWorld, type Scenario } from './aws-model';
import { allStates } from './definition';
import { type Machines, synthesizeMachines } from './machines';
import { type RunResult, runStateMachine } from './run';
import { DEFAULT_RATES, Traffic, type TrafficKind, type TrafficTotals } from './traffic';
import { VirtualClock } from './virtual-clock';

export const UPGRADE_MACHINE = 'QuietUpgrade-Upgrade';
export const WATCHDOG_MACHINE = 'QuietUpgrade-Watchdog';
/** A Sunday, 04:00 UTC: the quiet hours. */
export const START = '2026-11-22T04:00:00.000Z';
/** After the run, traffic stops and consumers drain for at most this long (virtual). */
const MAX_DRAIN_SECONDS = 3600;

export type Outcome = 'UPGRADED' | 'ROLLED_BACK' | 'NEEDS_OPERATOR' | 'DRY_RUN' | 'REJECTED';

interface ScenarioSpec {
  summary: string;
  scenario?: Scenario;
  input?: Record<string, unknown>;
  /** Abort the upgrade when this Task starts; the watchdog then recovers. */
  abortAt?: string;
  /** Start a second upgrade while the first is building green. */
  concurrent?: boolean;
  expect: Outcome;
}

export const SCENARIOS: Record<string, ScenarioSpec> = {
  happy: { summary: 'the upgrade goes as planned', expect: 'UPGRADED' },
  'dry-run': { summary: 'preflight and plan only', input: { dryRun: true }, expect: 'DRY_RUN' },
  'bad-input': {
    summary: 'the console input has a typo',
    input: { dryrun: true },
    expect: 'REJECTED',
  },
  'green-stuck': {
    summary: 'green never becomes AVAILABLE before the deadline',
    scenario: { greenStuck: true },
    input: { deadline: '2026-11-22T06:00:00Z' },
    expect: 'ROLLED_BACK',
  },
  'switchover-fails': {
    summary: 'RDS reports SWITCHOVER_FAILED',
    scenario: { switchoverFails: true },
    expect: 'ROLLED_BACK',
  },
  'bad-writer': {
    summary: 'the new writer fails verification; old blue is restored',
    scenario: { badWriter: true },
    expect: 'ROLLED_BACK',
  },
  'slow-disable': {
    summary: 'the mappings take 90 s to report Disabled',
    scenario: { latencies: { disableMapping: 90 } },
    expect: 'UPGRADED',
  },
  abort: {
    summary: 'an operator stops the run mid-maintenance; the watchdog recovers',
    abortAt: 'Check switchover status',
    expect: 'UPGRADED',
  },
  concurrent: {
    summary: 'a second run is started while the first builds green',
    concurrent: true,
    expect: 'UPGRADED',
  },
};

export interface RehearsalOptions {
  scenario?: string;
  switchoverSeconds?: number;
  rates?: Partial<Record<TrafficKind, number>>;
  failAt?: string[];
  failOnce?: string[];
  /** Reuse synthesized definitions (tests and the benchmark synthesize once). */
  machines?: Machines;
  /** Called as each Task starts, with virtual seconds since the start. */
  onProgress?: (seconds: number, state: string) => void;
}

export interface TimelineEntry {
  t: number;
  state: string;
  event: string;
}

export interface RehearsalReport {
  scenario: string;
  expected: Outcome;
  outcome: Outcome;
  writer: { identifier: string; engineVersion: string };
  maintenance: { on: boolean; seconds: number };
  consumers: { enabled: boolean; pausedSeconds: number };
  switchoverSeconds: number;
  drainSeconds: number;
  blueGreenDeployments: number;
  captureUnavailableSeconds: number;
  messages: Omit<TrafficTotals, 'pageViews' | 'captureUnavailableSeconds' | 'duplicateDeliveries'>;
  pageViews: TrafficTotals['pageViews'];
  operatorNotified: boolean;
  watchdog?: string;
  secondRun?: string;
  invariants: { ok: boolean; violations: string[] };
  timeline: TimelineEntry[];
  /** Queue depth every 10 virtual seconds, for the picture. */
  depth: { t: number; waiting: number }[];
}

/** The Task states of the upgrade machine, the names --fail-at and --fail-once take. */
export function taskStates(machines: Machines): string[] {
  return [...allStates(machines.upgrade)].filter(([, s]) => s.Type === 'Task').map(([n]) => n);
}

/** Runs one rehearsal: the synthesized runbook against the model, with traffic. */
export async function rehearse(options: RehearsalOptions = {}): Promise<RehearsalReport> {
  const name = options.scenario ?? 'happy';
  const spec = SCENARIOS[name];
  if (spec === undefined) {
    throw new UsageError(
      `unknown scenario ${JSON.stringify(name)}; known: ${Object.keys(SCENARIOS).join(', ')}`,
    );
  }
  const machines = options.machines ?? synthesizeMachines();
  const known = new Set(taskStates(machines));
  for (const state of [...(options.failAt ?? []), ...(options.failOnce ?? [])]) {
    if (!known.has(state)) {
      throw new UsageError(
        `unknown Task state ${JSON.stringify(state)}; the Task states are:\n  ${[...known].join('\n  ')}`,
      );
    }
  }

  const clock = new VirtualClock(START);
  const world = new AwsWorld({
    clock,
    plan: machines.defaults,
    scenario: {
      ...spec.scenario,
      latencies: { switchover: options.switchoverSeconds ?? 30, ...spec.scenario?.latencies },
    },
  });
  const traffic = new Traffic(world, { ...DEFAULT_RATES, ...options.rates });
  clock.onAdvance((from, to) => traffic.advance(from, to));
  // Queue URLs in the definition are placeholders that keep the queue's logical id.
  world.queueDepth = (url) => {
    const buffer = BUFFER_NAMES.find((b) => url.includes(`${pascal(b)}Queue`));
    return buffer === undefined ? 0 : traffic.waitingIn(buffer);
  };

  let second: Promise<RunResult> | undefined;
  const run = await runStateMachine({
    definition: machines.upgrade,
    world,
    input: spec.input ?? {},
    stateMachineName: UPGRADE_MACHINE,
    executionName: 'rehearsal-1',
    failAt: options.failAt,
    failOnce: options.failOnce,
    abortAt: spec.abortAt,
    onTask: (state, call) => {
      options.onProgress?.((clock.now() - Date.parse(START)) / 1000, state);
      if (spec.concurrent && state === 'Check green status' && call === 1) {
        second = runStateMachine({
          definition: machines.upgrade,
          world,
          input: {},
          stateMachineName: UPGRADE_MACHINE,
          executionName: 'rehearsal-2',
        });
      }
    },
  });
  const secondRun = second === undefined ? undefined : await second;

  let outcome = outcomeOf(run);
  let watchdog: RunResult | undefined;
  if (run.status === 'ABORTED' || (run.status === 'FAILED' && outcome !== 'REJECTED')) {
    watchdog = await runStateMachine({
      definition: machines.watchdog,
      world,
      input: { detail: { executionArn: run.executionArn, status: run.status } },
      stateMachineName: WATCHDOG_MACHINE,
      executionName: 'watchdog-1',
    });
    const report = (watchdog.output?.report ?? {}) as { outcome?: string };
    const writer = world.writer();
    outcome =
      report.outcome === 'NEEDS_OPERATOR'
        ? 'NEEDS_OPERATOR'
        : writer?.engineVersion === machines.defaults.targetEngineVersion
          ? 'UPGRADED'
          : 'ROLLED_BACK';
  }

  // The run is over: production stops, and the consumers drain what is left.
  traffic.stopProducing();
  // Deletions the runs started (the watchdog does not wait for its own) finish meanwhile.
  for (
    let s = 0;
    s < MAX_DRAIN_SECONDS &&
    ((traffic.waiting() > 0 && world.mappingsEnabled()) || world.deleting());
    s += 10
  ) {
    clock.advance(10);
    world.tick();
  }
  world.tick();

  const totals = traffic.totals();
  const start = Date.parse(START);
  const seconds = (ms: number) => Math.round((ms - start) / 100) / 10;
  const report: RehearsalReport = {
    scenario: name,
    expected: spec.expect,
    outcome,
    writer: {
      identifier: world.writer()?.identifier ?? '(none)',
      engineVersion: world.writer()?.engineVersion ?? '(none)',
    },
    maintenance: { on: world.maintenance, seconds: maintenanceSeconds(world) },
    consumers: { enabled: world.mappingsEnabled(), pausedSeconds: pausedSeconds(world) },
    switchoverSeconds: switchoverSeconds(world),
    drainSeconds: drainSeconds(world, traffic),
    blueGreenDeployments: world.deployments.size,
    captureUnavailableSeconds: totals.captureUnavailableSeconds,
    messages: {
      produced: totals.produced,
      processed: totals.processed,
      inQueue: totals.inQueue,
      inDlq: totals.inDlq,
      lost: totals.lost,
      duplicateEffects: totals.duplicateEffects,
    },
    pageViews: totals.pageViews,
    operatorNotified: world.notifications.some((n) => n.subject.includes('NEEDS AN OPERATOR')),
    ...(watchdog
      ? {
          watchdog: String(
            (watchdog.output?.report as { outcome?: string })?.outcome ?? watchdog.status,
          ),
        }
      : {}),
    ...(secondRun ? { secondRun: outcomeOf(secondRun) } : {}),
    invariants: { ok: true, violations: [] },
    timeline: timeline(world, [run, ...(watchdog ? [watchdog] : [])], seconds),
    depth: traffic.depth.map((d) => ({ t: seconds(d.at), waiting: d.waiting })),
  };
  const violations = checkInvariants(report, world, machines);
  report.invariants = { ok: violations.length === 0, violations };
  return report;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());
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

/**
 * The invariants every run must end in (DESIGN.md), checked on the end state, not on what
 * the run says about itself.
 */
export function checkInvariants(
  report: RehearsalReport,
  world: AwsWorld,
  machines: Machines,
): string[] {
  const v: string[] = [];
  const { messages, outcome } = report;
  if (messages.lost !== 0) v.push(`${messages.lost} messages lost`);
  if (messages.duplicateEffects !== 0) v.push(`${messages.duplicateEffects} duplicate effects`);
  for (const r of world.resumes) {
    if (r.writerReadOnly) v.push(`a consumer resumed against a read-only writer at ${r.at}`);
  }
  const writer = world.writer();
  const target = machines.defaults.targetEngineVersion;
  const original = machines.defaults.currentEngineVersion;
  if (outcome === 'UPGRADED' && (writer?.engineVersion !== target || writer.readOnly)) {
    v.push(`outcome UPGRADED but the writer runs ${writer?.engineVersion ?? 'nothing'}`);
  }
  if (outcome === 'ROLLED_BACK' && (writer?.engineVersion !== original || writer.readOnly)) {
    v.push(`outcome ROLLED_BACK but the writer runs ${writer?.engineVersion ?? 'nothing'}`);
  }
  if (
    (outcome === 'DRY_RUN' || outcome === 'REJECTED') &&
    (world.maintenanceLog.length > 0 || world.pauses.length > 0)
  ) {
    v.push(`outcome ${outcome} but something was changed`);
  }
  if (outcome !== 'NEEDS_OPERATOR') {
    if (world.maintenance) v.push('maintenance is still on');
    if (!world.mappingsEnabled()) v.push('a consumer is still paused');
  }
  if ((outcome === 'UPGRADED' || outcome === 'ROLLED_BACK') && world.deployments.size > 0) {
    v.push(`${world.deployments.size} blue/green deployment(s) left behind`);
  }
  if (outcome === 'NEEDS_OPERATOR' && !report.operatorNotified)
    v.push('NEEDS_OPERATOR without paging');
  return v;
}

/** Seconds the maintenance page was on, summed over the run. */
export function maintenanceSeconds(world: AwsWorld): number {
  let total = 0;
  let since: number | undefined;
  for (const change of world.maintenanceLog) {
    if (change.on) since = change.at;
    else if (since !== undefined) {
      total += (change.at - since) / 1000;
      since = undefined;
    }
  }
  if (since !== undefined) total += (world.clock.now() - since) / 1000;
  return total;
}

function pausedSeconds(world: AwsWorld): number {
  if (world.pauses.length === 0) return 0;
  const first = Math.min(...world.pauses.map((p) => p.at));
  const resumed = world.resumes.filter((r) => r.at >= first).map((r) => r.at);
  const end =
    world.mappingsEnabled() && resumed.length > 0 ? Math.max(...resumed) : world.clock.now();
  return (end - first) / 1000;
}

function switchoverSeconds(world: AwsWorld): number {
  const s = world.switchovers[0];
  if (s === undefined) return 0;
  return ((s.endedAt ?? world.clock.now()) - s.startedAt) / 1000;
}

/** From the consumers' resume until every message produced before it was applied. */
function drainSeconds(world: AwsWorld, traffic: Traffic): number {
  if (world.resumes.length === 0) return 0;
  const resumedAt = Math.max(...world.resumes.map((r) => r.at));
  let last = resumedAt;
  for (const m of traffic.ledger) {
    if (m.producedAt < resumedAt && m.processedAt !== undefined)
      last = Math.max(last, m.processedAt);
  }
  return (last - resumedAt) / 1000;
}

function timeline(
  world: AwsWorld,
  runs: RunResult[],
  seconds: (ms: number) => number,
): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  for (const run of runs)
    for (const e of run.timeline) entries.push({ t: seconds(e.at), state: e.state, event: 'task' });
  for (const m of world.maintenanceLog) {
    entries.push({
      t: seconds(m.at),
      state: m.on ? 'Turn maintenance on' : 'Turn maintenance off',
      event: m.on ? 'maintenance on' : 'maintenance off',
    });
  }
  for (const s of world.switchovers) {
    entries.push({
      t: seconds(s.startedAt),
      state: 'Switch over to green',
      event: 'switchover started',
    });
    if (s.endedAt !== undefined)
      entries.push({
        t: seconds(s.endedAt),
        state: 'Check switchover status',
        event: 'switchover ended',
      });
  }
  return entries.sort((a, b) => a.t - b.t);
}
