/**
 * npm run bench
 *
 * The rehearsal across switchover times, beside the baseline the vendor notices describe
 * (../shared/context): the app in maintenance for the whole in-place upgrade.
 */
import './polyfills';
import { defaultApp, rehearse } from './rehearse';
import { DEFAULT_LATENCIES } from './world/core';

/**
 * The baseline: an in-place major version upgrade with the app down throughout. Taken from
 * the first notice, which asked for "about 10 minutes of downtime" inside a one-hour window
 * (the second notice planned for up to 4 hours). An assumption from those notices, not a
 * measurement.
 */
export const BASELINE_MAINTENANCE_SECONDS = 600;
const SWITCHOVERS = [5, 30, 60];

async function main(): Promise<void> {
  const app = defaultApp();
  const rows: string[][] = [
    ['switchover (s)', 'maintenance (s)', 'overhead (s)', 'drain (s)', 'lost', 'vs baseline'],
  ];
  for (const switchoverSeconds of SWITCHOVERS) {
    const r = await rehearse({ app, switchoverSeconds });
    if (!r.invariants.ok)
      throw new Error(
        `invariants broken at ${switchoverSeconds} s: ${r.invariants.violations.join('; ')}`,
      );
    rows.push([
      String(switchoverSeconds),
      String(r.maintenance.seconds),
      String(Math.round((r.maintenance.seconds - r.switchoverSeconds) * 10) / 10),
      String(r.drainSeconds),
      String(r.messages.lost),
      `${Math.round(BASELINE_MAINTENANCE_SECONDS / r.maintenance.seconds)}x shorter`,
    ]);
  }
  rows.push([
    'in-place (notices)',
    String(BASELINE_MAINTENANCE_SECONDS),
    '-',
    '-',
    'clicks, opens, sign-ups during the window',
    '1x',
  ]);
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  '));
  const l = DEFAULT_LATENCIES;
  console.log(
    `\nModelled in virtual time (rehearsal/world/) with the functions' real code and assumed
latencies: ${l.apiCall} s per AWS API call, ${l.invokeOverhead} s to invoke a function, ${l.sqlQuery * 1000} ms per SQL
statement, ${l.disableMapping} s / ${l.enableMapping} s for a mapping to disable / enable, the switchover as in the
first column. The baseline is the first notice's own estimate ("about 10 minutes of
downtime"), not a measurement.`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
