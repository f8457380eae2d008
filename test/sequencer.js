/**
 * Jest runs the longest test files first, so that no worker is left with one long file at
 * the end, by the times it recorded in its cache; without them (a fresh clone, CI) it goes by
 * file size, which puts last some short files that run the rehearsal hundreds of times.
 * Without recorded times these go first, longest first (times measured on a 2-core machine),
 * so the two longest start together, one on each worker; the rest follow by size.
 */
const Sequencer = require('@jest/test-sequencer').default;

const LONGEST = [
  'test/rehearsal/assumptions.test.ts',
  'test/rehearsal/sweep.test.ts',
  'test/rehearsal/invariants.test.ts',
  'test/lib/execution/upgrade-runbook.test.ts',
  'test/rehearsal/traffic.test.ts',
  'test/rehearsal/quiet-gate.test.ts',
  'test/rehearsal/rehearse.test.ts',
  'test/rehearsal/mysql.test.ts',
];

class LongestFirst extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    if (sorted.some((test) => test.duration != null)) return sorted;
    const rank = (test) => {
      const i = LONGEST.findIndex((name) => test.path.endsWith(name));
      return i === -1 ? LONGEST.length : i;
    };
    return sorted
      .map((test, i) => ({ test, i }))
      .sort((a, b) => rank(a.test) - rank(b.test) || a.i - b.i)
      .map(({ test }) => test);
  }
}

module.exports = LongestFirst;
