import { ASSUMPTIONS, type Assumptions, defaultAssumptions } from '../../rehearsal/assumptions';
import { SCENARIOS, rehearse } from '../../rehearsal/rehearse';
import { lightRun } from '../../rehearsal/sweep';
import { app } from '../helpers/upgrade';

/*
 * Where AWS is silent the runbook must end safe under every plausible behaviour. Every
 * scenario runs under each combination below: every assumption but one away from its
 * default. With the defaults (the other tests) these cover every pair of values of every
 * two assumptions.
 */
const others = (a: (typeof ASSUMPTIONS)[number]) =>
  a.values.find((v) => v !== a.default) ?? a.default;
const combinations: [string, Assumptions][] = ASSUMPTIONS.map((kept) => [
  `all but ${kept.name} changed`,
  Object.fromEntries(
    ASSUMPTIONS.map((a) => [a.name, a === kept ? a.default : others(a)]),
  ) as Assumptions,
]);

it('covers every pair of values of every two assumptions, with the defaults', () => {
  const rows = [defaultAssumptions(), ...combinations.map(([, c]) => c)];
  for (const a of ASSUMPTIONS) {
    for (const b of ASSUMPTIONS) {
      if (a === b) continue;
      for (const va of a.values) {
        for (const vb of b.values) {
          expect(rows.some((r) => r[a.name] === va && r[b.name] === vb)).toBe(true);
        }
      }
    }
  }
});

describe.each(combinations)('with %s', (_name, assumptions) => {
  it.each(Object.entries(SCENARIOS))(
    '%s ends as expected, every invariant holding',
    async (scenario, spec) => {
      const r = await rehearse({ app, scenario, assumptions, ...lightRun(scenario) });
      expect({ outcome: r.outcome, violations: r.invariants.violations }).toEqual({
        outcome: spec.expect,
        violations: [],
      });
    },
  );
});
