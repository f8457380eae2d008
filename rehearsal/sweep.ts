import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import type { Assumptions } from './assumptions';
import {
  type RehearsalReport,
  SCENARIOS,
  defaultApp,
  engineOf,
  rehearse,
  scenariosFor,
  taskStates,
} from './rehearse';
import type { SynthesizedApp } from './synthesized';
import type { TrafficKind } from './traffic';

/** Light traffic: the sweep is about the runbook's paths, not the volume. */
export const LIGHT_RATES: Record<TrafficKind, number> = {
  pageViews: 0.2,
  clicks: 0.2,
  opens: 0.2,
  confirmations: 0.2,
  signUps: 0.2,
  unsubscribes: 0.2,
  sends: 0.2,
};

export type SweepRow = RehearsalReport & {
  machine: Machine;
  state: string;
  mode: 'fail-at' | 'fail-once';
  /** Whether the fault fired: the run reached the state. */
  injected: boolean;
};

export interface SweepReport {
  runs: SweepRow[];
  /** Task states no scenario reaches. */
  unreached: { machine: string; state: string }[];
  /** Scenarios that, without any fault, broke an invariant or ended other than expected. */
  failedScenarios: ScenarioFailure[];
  ok: boolean;
}

export interface ScenarioFailure {
  scenario: string;
  outcome: string;
  expected: string;
  violations: string[];
}

export interface SweepOptions {
  app?: SynthesizedApp;
  definition?: StateMachineDefinition;
  assumptions?: Partial<Assumptions>;
  onRow?: (row: SweepRow) => void;
}

export type Machine = 'upgrade' | 'watchdog';

/** Which scenario each state of each machine is faulted in, and the states none reaches. */
export interface SweepPlan {
  rows: { machine: Machine; state: string; mode: 'fail-at' | 'fail-once'; scenario: string }[];
  unreached: { machine: Machine; state: string }[];
  /** The fault-free runs the plan was learned from are checked too. */
  failedScenarios: ScenarioFailure[];
}

export type Base = Pick<SweepOptions, 'definition' | 'assumptions'> & { app: SynthesizedApp };

/**
 * The sweep is about the runbook's paths, not the volume or the wait: light traffic (unless
 * the scenario brings its own; slow consumers need their load) and a green that builds in 5
 * minutes, one polling interval, instead of 30.
 */
export function lightRun(scenario: string) {
  return {
    ...(SCENARIOS[scenario]?.rates ? {} : { rates: LIGHT_RATES }),
    world: { latencies: { greenBuild: 300 } },
  };
}

/**
 * Every scenario of the app's engine without faults, as the sweep runs them (lightRun), in
 * SCENARIOS order.
 */
export interface EveryScenarioReport {
  runs: RehearsalReport[];
  /** The runs that broke an invariant or ended other than their scenario expects. */
  failedScenarios: ScenarioFailure[];
  ok: boolean;
}

export async function everyScenario(
  base: Base,
  onRun?: (report: RehearsalReport) => void,
): Promise<EveryScenarioReport> {
  const runs: RehearsalReport[] = [];
  const failedScenarios: ScenarioFailure[] = [];
  for (const scenario of scenariosFor(engineOf(base.app))) {
    const r = await rehearse({ ...base, ...lightRun(scenario), scenario });
    runs.push(r);
    onRun?.(r);
    if (!r.invariants.ok || r.outcome !== r.expected) {
      failedScenarios.push({
        scenario,
        outcome: r.outcome,
        expected: r.expected,
        violations: r.invariants.violations,
      });
    }
  }
  return { runs, failedScenarios, ok: failedScenarios.length === 0 };
}

/**
 * Runs every scenario without faults to learn which Task states it reaches, and plans each
 * state's faults in the shortest scenario (in virtual time) that reaches it.
 */
export async function planSweep(base: Base): Promise<SweepPlan> {
  const reachedBy: Record<Machine, Map<string, string>> = {
    upgrade: new Map(),
    watchdog: new Map(),
  };
  const cost = new Map<string, number>();
  const { runs, failedScenarios } = await everyScenario(base);
  for (const r of runs) {
    const scenario = r.scenario;
    cost.set(scenario, r.timeline.at(-1)?.t ?? 0);
    for (const machine of ['upgrade', 'watchdog'] as const) {
      for (const state of r.tasks[machine]) {
        const known = reachedBy[machine].get(state);
        if (known === undefined || (cost.get(known) ?? 0) > (cost.get(scenario) ?? 0)) {
          reachedBy[machine].set(state, scenario);
        }
      }
    }
  }
  const states: Record<Machine, string[]> = {
    upgrade: taskStates(base.definition ?? base.app.machines.upgrade.definition),
    watchdog: taskStates(base.app.machines.watchdog.definition),
  };
  const plan: SweepPlan = { rows: [], unreached: [], failedScenarios };
  for (const machine of ['upgrade', 'watchdog'] as const) {
    for (const state of states[machine]) {
      const scenario = reachedBy[machine].get(state);
      if (scenario === undefined) plan.unreached.push({ machine, state });
      else
        for (const mode of ['fail-at', 'fail-once'] as const)
          plan.rows.push({ machine, state, mode, scenario });
    }
  }
  return plan;
}

/** One row of the sweep: the state faulted in its scenario. */
export async function sweepRow(base: Base, row: SweepPlan['rows'][number]): Promise<SweepRow> {
  const r = await rehearse({
    ...base,
    ...lightRun(row.scenario),
    scenario: row.scenario,
    ...(row.mode === 'fail-at' ? { failAt: [row.state] } : { failOnce: [row.state] }),
  });
  return {
    ...r,
    machine: row.machine,
    state: row.state,
    mode: row.mode,
    injected: r.faultsFired.includes(row.state),
  };
}

/**
 * Every Task state of both machines, failed every time (--fail-at) and once (--fail-once),
 * each in a run that reaches it.
 */
export async function sweep(options: SweepOptions = {}): Promise<SweepReport> {
  const base: Base = {
    app: options.app ?? defaultApp(),
    definition: options.definition,
    assumptions: options.assumptions,
  };
  const plan = await planSweep(base);
  const runs: SweepRow[] = [];
  for (const planned of plan.rows) {
    const row = await sweepRow(base, planned);
    runs.push(row);
    options.onRow?.(row);
  }
  const ok =
    plan.unreached.length === 0 &&
    plan.failedScenarios.length === 0 &&
    runs.every((r) => r.injected && r.invariants.ok);
  return { runs, unreached: plan.unreached, failedScenarios: plan.failedScenarios, ok };
}
