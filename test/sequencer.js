/**
 * Jest runs the longest test files first, so that no worker is left with one long file at
 * the end, by the times it recorded in its cache; without them (a fresh clone, CI) it goes by
 * file size, which puts these last: short files that run the rehearsal hundreds of times.
 * Without recorded times they go first, longest first (times measured on a 2-core machine).
 */
const Sequencer = require('@jest/test-sequencer').default;

const LONGEST = [
  'test/rehearsal/assumptions.test.ts',
  // Not the rehearsal's: the other worker starts here while the first synthesizes the app
  // into the cache (rehearsal/cache.ts), instead of synthesizing it a second time.
  'test/lambda/verify-writer/handler.test.ts',
  'test/rehearsal/sweep.test.ts',
  'test/rehearsal/invariants.test.ts',
  'test/rehearsal/rehearse.test.ts',
  'test/lib/execution/upgrade-runbook.test.ts',
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
