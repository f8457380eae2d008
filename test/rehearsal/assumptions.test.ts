import { ASSUMPTIONS, type Assumptions, defaultAssumptions } from '../../rehearsal/assumptions';
import { SCENARIOS, scenariosFor } from '../../rehearsal/rehearse';
import type { EveryScenarioReport } from '../../rehearsal/sweep';
import { rehearseJson } from '../helpers/cli';

/*
 * Where AWS is silent the runbook must end safe under every plausible behaviour. Every
 * scenario runs under each combination below; with the defaults (the other tests) they cover
 * every pair of values of every two assumptions (checked below), in as few runs as that takes.
 * Every assumption has two values, so a covering array does it: the defaults, plus row i
 * (1-6) giving assumption j its other value when i is in S_j, the j-th 4-element subset of
 * {1..6}. Two such subsets always share an element (4 + 4 > 6) and each has one the other
 * lacks, which gives every pair of columns both values together and each without the other.
 * There are 15 subsets, so up to 15 assumptions take 6 combinations instead of one each.
 */
const others = (a: (typeof ASSUMPTIONS)[number]) =>
  a.values.find((v) => v !== a.default) ?? a.default;
const ROWS = [1, 2, 3, 4, 5, 6];
const subsets: number[][] = [];
for (const left of ROWS)
  for (const right of ROWS.filter((r) => r > left))
    subsets.push(ROWS.filter((r) => r !== left && r !== right));
if (ASSUMPTIONS.length > subsets.length || ASSUMPTIONS.some((a) => a.values.length !== 2)) {
  throw new Error('more than 15 assumptions, or one with more than two values: widen the array');
}
const combinations: [string, Assumptions][] = ROWS.map((row) => {
  const changed = ASSUMPTIONS.filter((_, j) => subsets[j]?.includes(row));
  return [
    `${changed.map((a) => a.name).join(', ')} changed`,
    Object.fromEntries(
      ASSUMPTIONS.map((a) => [a.name, changed.includes(a) ? others(a) : a.default]),
    ) as Assumptions,
  ];
});

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
  // As users would check it: npm run rehearse -- --every-scenario --assume NAME=VALUE ...
  let result: { status: number; json: EveryScenarioReport };
  beforeAll(async () => {
    result = await rehearseJson([
      '--every-scenario',
      ...Object.entries(assumptions).flatMap(([name, value]) => ['--assume', `${name}=${value}`]),
    ]);
  }, 120_000);

  // The default engine's (cdk.json: postgres); the sweep test runs MySQL's under the defaults.
  it.each(scenariosFor('postgres').map((name) => [name, SCENARIOS[name]] as const))(
    '%s ends as expected, every invariant holding',
    (scenario, spec) => {
      const r = result.json.runs.find((run) => run.scenario === scenario);
      if (r === undefined) throw new Error(`--every-scenario did not run ${scenario}`);
      expect(r.assumptions).toEqual(assumptions);
      expect({ outcome: r.outcome, violations: r.invariants.violations }).toEqual({
        outcome: spec.expect,
        violations: [],
      });
    },
  );

  it('exits 0, every scenario run once', () => {
    expect(result.json.runs.map((r) => r.scenario)).toEqual(scenariosFor('postgres'));
    expect(result.status).toBe(0);
  });
});
