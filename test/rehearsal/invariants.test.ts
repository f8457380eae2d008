import { rehearse } from '../../rehearsal/rehearse';
import { LIGHT_RATES } from '../../rehearsal/sweep';
import { SCENARIOS } from '../../rehearsal/rehearse';
import { app } from '../helpers/upgrade';
import { MORE_MUTANTS, MUTANTS, type Mutant } from './mutants';

/*
 * A check that no bug can trip proves nothing: each invariant is shown failing on a runbook
 * or a function broken on purpose, in a scenario the intact runbook passes.
 */
async function rehearseMutant(m: Mutant) {
  return rehearse({
    app,
    scenario: m.scenario,
    ...(m.rates !== undefined
      ? { rates: m.rates }
      : SCENARIOS[m.scenario]?.rates
        ? {}
        : { rates: LIGHT_RATES }),
    definition: m.definition?.(app.machines.upgrade.definition),
    functionEntries: m.functionEntries,
    assumptions: m.assumptions,
  });
}

describe('the broken runbooks the review found, and more', () => {
  const scenarios = [...new Set([...MUTANTS, ...MORE_MUTANTS].map((m) => m.scenario))];
  it.each(scenarios)('the intact runbook passes the %s scenario', async (scenario) => {
    const r = await rehearse({
      app,
      scenario,
      ...(SCENARIOS[scenario]?.rates ? {} : { rates: LIGHT_RATES }),
    });
    expect(r.invariants).toEqual({ ok: true, violations: [] });
    expect(r.outcome).toBe(SCENARIOS[scenario]?.expect);
  });

  it.each([...MUTANTS, ...MORE_MUTANTS].map((m) => [m.name, m] as const))(
    'catches "%s"',
    async (_name, mutant) => {
      if (mutant.rates !== undefined) {
        // The intact runbook holds under the mutant's own traffic too.
        const intact = await rehearseMutant({ ...mutant, definition: undefined });
        expect(intact.invariants).toEqual({ ok: true, violations: [] });
      }
      const r = await rehearseMutant(mutant);
      expect(r.invariants.ok).toBe(false);
      expect(r.invariants.violations.some((v) => v.includes(mutant.caughtBy))).toBe(true);
    },
  );

  it('shows that effects belong to the writer that took them: resumed early on a writer that is then set aside, writes are lost', async () => {
    const early = MUTANTS.find((m) => m.name === 'consumers resumed before "Verify new writer"');
    if (early === undefined) throw new Error('mutant missing');
    // writer-check-fails: a new writer that takes writes, set aside as if it had failed
    // (the branch that stops for an operator when the check could not run is removed).
    const r = await rehearseMutant({
      ...early,
      scenario: 'writer-check-fails',
      definition: (d) => {
        const broken = early.definition?.(d) ?? d;
        const choice = broken.States['Is the new writer healthy?'] as unknown as {
          Choices: { Variable?: string }[];
        };
        choice.Choices = choice.Choices.filter((c) => c.Variable !== '$.writerCheck.inconclusive');
        delete broken.States['Note: the new writer could not be checked'];
        return broken;
      },
    });
    expect(r.invariants.violations.join('\n')).toMatch(
      /nothing-lost: \d+ writes lost \(.*applied only to a writer that was set aside/,
    );
  });
});
