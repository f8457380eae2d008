import { defaultApp, taskStates } from '../../rehearsal/rehearse';
import type { SweepReport } from '../../rehearsal/sweep';
import { rehearseJson } from '../helpers/cli';
import { app } from '../helpers/upgrade';

/*
 * The fault sweep as users run it (npm run rehearse -- --sweep --json), a test per row: every
 * Task state of both machines failed every time and failed once, each in a scenario that
 * reaches it, and every invariant holds in every run. The expected states come from the app
 * synthesized here, not from the sweep's own list.
 */
const states = [
  ...taskStates(app.machines.upgrade.definition).map((state) => ['upgrade', state] as const),
  ...taskStates(app.machines.watchdog.definition).map((state) => ['watchdog', state] as const),
];

let sweep: { status: number; json: Omit<SweepReport, 'ok'> };
beforeAll(async () => {
  sweep = await rehearseJson(['--sweep']);
}, 180_000);

it('reaches every Task state of both machines in some scenario, each as expected', () => {
  expect(sweep.json.unreached).toEqual([]);
  expect(sweep.json.failedScenarios).toEqual([]);
  expect(sweep.json.runs).toHaveLength(states.length * 2);
  expect(sweep.status).toBe(0);
});

describe.each(['fail-at', 'fail-once'] as const)('%s', (mode) => {
  it.each(states)('%s: "%s" fires and every invariant holds', (machine, state) => {
    const row = sweep.json.runs.find(
      (r) => r.machine === machine && r.state === state && r.mode === mode,
    );
    if (row === undefined) throw new Error(`the sweep has no run for ${machine}/${state}`);
    expect({ injected: row.injected, violations: row.invariants.violations }).toEqual({
      injected: true,
      violations: [],
    });
  });
});

describe('on MySQL', () => {
  // The same sweep on the app synthesized for RDS for MySQL (npm run rehearse -- --engine mysql --sweep).
  const mysql = defaultApp('mysql');
  const mysqlStates = [
    ...taskStates(mysql.machines.upgrade.definition).map((state) => ['upgrade', state] as const),
    ...taskStates(mysql.machines.watchdog.definition).map((state) => ['watchdog', state] as const),
  ];
  let result: { status: number; json: Omit<SweepReport, 'ok'> };
  beforeAll(async () => {
    result = await rehearseJson(['--sweep', '--engine', 'mysql']);
  }, 180_000);

  it('reaches every Task state, every fault-free scenario ends as expected, every invariant holds', () => {
    expect(result.json.unreached).toEqual([]);
    expect(result.json.failedScenarios).toEqual([]);
    expect(result.json.runs).toHaveLength(mysqlStates.length * 2);
    expect(result.json.runs.every((r) => r.engine.name === 'mysql')).toBe(true);
    expect(
      result.json.runs
        .filter((r) => !r.injected || !r.invariants.ok)
        .map((r) => `${r.machine}/${r.state}/${r.mode}: ${r.invariants.violations.join('; ')}`),
    ).toEqual([]);
    expect(result.status).toBe(0);
  });
});
