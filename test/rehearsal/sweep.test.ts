import { taskStates } from '../../rehearsal/rehearse';
import { type SweepPlan, planSweep, sweepRow } from '../../rehearsal/sweep';
import { app } from '../helpers/upgrade';

/*
 * The fault sweep (npm run rehearse -- --sweep), a test per row: every Task state of both
 * machines failed every time and failed once, each in a scenario that reaches it, and every
 * invariant holds in every run.
 */
const base = { app };
const states = [
  ...taskStates(app.machines.upgrade.definition).map((state) => ['upgrade', state] as const),
  ...taskStates(app.machines.watchdog.definition).map((state) => ['watchdog', state] as const),
];

let plan: SweepPlan;
beforeAll(async () => {
  plan = await planSweep(base);
}, 180_000);

it('reaches every Task state of both machines in some scenario, each as expected', () => {
  expect(plan.unreached).toEqual([]);
  expect(plan.failedScenarios).toEqual([]);
  expect(plan.rows).toHaveLength(states.length * 2);
});

describe.each(['fail-at', 'fail-once'] as const)('%s', (mode) => {
  it.each(states)('%s: "%s" fires and every invariant holds', async (machine, state) => {
    const planned = plan.rows.find(
      (r) => r.machine === machine && r.state === state && r.mode === mode,
    );
    if (planned === undefined) throw new Error(`no scenario reaches ${machine}/${state}`);
    const row = await sweepRow(base, planned);
    expect({ injected: row.injected, violations: row.invariants.violations }).toEqual({
      injected: true,
      violations: [],
    });
  });
});
