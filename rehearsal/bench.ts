/**
 * npm run bench [-- --engine NAME] [--json]
 *
 * The maintenance window the rehearsal measures for switchovers of several lengths, step by
 * step, beside the baseline the vendor notices describe (../shared/context): the app in
 * maintenance for the whole in-place upgrade; one table per database engine (every engine
 * the rehearsal models, or the one --engine names). Then each function's bundle, as the
 * deploy builds it (every engine's functions), with the cold start the model charges for it,
 * and the execution history of the longest run the runbook's bounds allow.
 */
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import './polyfills';
import { BUNDLE_EXTERNALS, LAMBDA_ROOT } from '../lib/constructs/node-function';
import { historyWorstCase } from '../lib/constructs/upgrade-runbook';
import { REHEARSAL_ENGINES, UsageError, defaultApp, rehearse } from './rehearse';
import { coldStartSeconds, DEFAULT_LATENCIES } from './world/core';

/**
 * The baseline: an in-place major version upgrade with the app down throughout. Taken from
 * the first notice, which asked for "about 10 minutes of downtime" inside a one-hour window
 * (the second notice planned for up to 4 hours). An assumption from those notices, not a
 * measurement.
 */
export const BASELINE_MAINTENANCE_SECONDS = 600;
/** Off any polling grid on purpose: a switchover does not end on a round second. */
export const SWITCHOVERS = [4.3, 27.7, 61.9];

export interface BenchRun {
  switchoverSeconds: number;
  pageSeconds: number;
  overheadSeconds: number;
  /** The overhead, step by step (RehearsalReport.window). */
  steps: { ruleOn: number; noticing: number; writerCheck: number; ruleOff: number };
  coldStartsInWindow: number;
  consumersPausedSeconds: number;
  drainSeconds: number;
  lost: number;
  /** How many times shorter than the in-place baseline. */
  timesShorterThanBaseline: number;
}

export interface BenchBundle {
  name: string;
  bytes: number;
  initMs: number;
}

/** Each function's bundle as NodeFunction builds it for the deploy (minified, SDK external). */
export async function deployBundles(): Promise<BenchBundle[]> {
  const dirs = readdirSync(LAMBDA_ROOT).filter((d) =>
    existsSync(join(LAMBDA_ROOT, d, 'handler.ts')),
  );
  const result = await esbuild.build({
    entryPoints: Object.fromEntries(dirs.map((d) => [d, join(LAMBDA_ROOT, d, 'handler.ts')])),
    outdir: '/bench-bundles',
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    external: BUNDLE_EXTERNALS,
    write: false,
    logLevel: 'error',
  });
  await esbuild.stop();
  return result.outputFiles
    .filter((f) => f.path.endsWith('.js'))
    .map((f) => {
      const bytes = f.contents.byteLength;
      const name = f.path.split('/').at(-1)?.replace(/\.js$/, '') ?? '';
      return { name, bytes, initMs: Math.round(coldStartSeconds(bytes, DEFAULT_LATENCIES) * 1000) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The quiet gate's row: the `quiet-gate` scenario (green ready at about 12:05 UTC, as the
 * diurnal profile's noon campaign peaks) with the gate on, and the same run with it off.
 */
export interface BenchQuietGate {
  maintenancePageViewsWithout: number;
  maintenancePageViewsWith: number;
  /** Who met the page, by kind (page views; capture requests refused). */
  byKindWithout: Record<string, number>;
  byKindWith: Record<string, number>;
  /** Minutes the gate waited (its checks, a minute apart). */
  gateChecks: number;
  lostWith: number;
  lostWithout: number;
}

async function quietGateRow(app: ReturnType<typeof defaultApp>): Promise<BenchQuietGate> {
  const gated = await rehearse({ app, scenario: 'quiet-gate' });
  const ungated = await rehearse({
    app,
    scenario: 'quiet-gate',
    input: { quietGate: { enabled: false } },
  });
  for (const r of [gated, ungated]) {
    if (!r.invariants.ok || r.outcome !== 'UPGRADED') {
      throw new Error(
        `the quiet-gate run did not upgrade cleanly: ${r.outcome}; ${r.invariants.violations.join('; ')}`,
      );
    }
  }
  // Page views answered with the maintenance page (capture requests are in byKind: the
  // capture paths keep working while the page is on, so they are 0 unless one fails).
  const seen = (r: typeof gated) => r.pageViews.maintenancePageByKind.pageViews;
  const gate = gated.run.output?.quietGate as { checks?: number } | undefined;
  return {
    maintenancePageViewsWithout: seen(ungated),
    maintenancePageViewsWith: seen(gated),
    byKindWithout: ungated.pageViews.maintenancePageByKind,
    byKindWith: gated.pageViews.maintenancePageByKind,
    gateChecks: gate?.checks ?? 0,
    lostWith: gated.messages.lost,
    lostWithout: ungated.messages.lost,
  };
}

/** One engine's rows: the switchovers and the quiet gate, on the app synthesized for it. */
export interface BenchEngine {
  engine: string;
  from: string;
  to: string;
  runs: BenchRun[];
  quietGate: BenchQuietGate;
}

export async function bench(engines: readonly string[] = REHEARSAL_ENGINES): Promise<{
  engines: BenchEngine[];
  bundles: BenchBundle[];
  historyEventsWorstCase: number;
  historyParts: Record<string, number>;
  latencies: typeof DEFAULT_LATENCIES;
  baselineSeconds: number;
}> {
  const rows: BenchEngine[] = [];
  for (const engine of engines) rows.push(await benchEngine(engine));
  const history = historyWorstCase();
  return {
    engines: rows,
    bundles: await deployBundles(),
    historyEventsWorstCase: history.total,
    historyParts: history.parts,
    latencies: DEFAULT_LATENCIES,
    baselineSeconds: BASELINE_MAINTENANCE_SECONDS,
  };
}

async function benchEngine(engine: string): Promise<BenchEngine> {
  const app = defaultApp(engine);
  const runs: BenchRun[] = [];
  for (const switchoverSeconds of SWITCHOVERS) {
    const r = await rehearse({ app, switchoverSeconds });
    if (!r.invariants.ok || r.outcome !== 'UPGRADED' || r.window === undefined) {
      throw new Error(
        `the ${switchoverSeconds} s run did not upgrade cleanly: ${r.outcome}; ${r.invariants.violations.join('; ')}`,
      );
    }
    const { coldStartsInWindow, ...steps } = r.window;
    runs.push({
      switchoverSeconds: r.switchoverSeconds,
      pageSeconds: r.maintenance.seconds,
      overheadSeconds: Math.round((r.maintenance.seconds - r.switchoverSeconds) * 10) / 10,
      steps,
      coldStartsInWindow,
      consumersPausedSeconds: r.consumers.pausedSeconds,
      drainSeconds: r.drainSeconds,
      lost: r.messages.lost,
      timesShorterThanBaseline: Math.round(BASELINE_MAINTENANCE_SECONDS / r.maintenance.seconds),
    });
  }
  const d = app.defaults;
  return {
    engine: d.engine,
    from: d.currentEngineVersion,
    to: d.targetEngineVersion,
    runs,
    quietGate: await quietGateRow(app),
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ')).join('\n');
}

/** --engine NAME, or every engine; an engine the rehearsal does not model is refused. */
function enginesFrom(argv: string[]): readonly string[] {
  const at = argv.indexOf('--engine');
  if (at === -1) return REHEARSAL_ENGINES;
  const engine = argv[at + 1] ?? '';
  if (!(REHEARSAL_ENGINES as readonly string[]).includes(engine)) {
    throw new Error(
      `bench: --engine must be one of ${REHEARSAL_ENGINES.join(', ')}, got: ${JSON.stringify(engine)}`,
    );
  }
  return [engine];
}

async function main(): Promise<void> {
  const result = await bench(enginesFrom(process.argv.slice(2)));
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  for (const e of result.engines) printEngine(e, result.baselineSeconds);
  printRest(result);
}

function printEngine(result: BenchEngine, baselineSeconds: number): void {
  const s = (n: number) => n.toFixed(1);
  console.log(`\n${result.engine} ${result.from} -> ${result.to}\n`);
  console.log(
    table([
      [
        'switchover',
        'page',
        'overhead',
        'rule on',
        'noticing',
        'writer check',
        'rule off',
        'cold starts in window',
        'consumers paused',
        'drain',
        'lost',
        'vs in-place',
      ],
      ...result.runs.map((r) => [
        `${s(r.switchoverSeconds)} s`,
        `${s(r.pageSeconds)} s`,
        `${s(r.overheadSeconds)} s`,
        `${r.steps.ruleOn.toFixed(2)} s`,
        `${r.steps.noticing.toFixed(2)} s`,
        `${r.steps.writerCheck.toFixed(2)} s`,
        `${r.steps.ruleOff.toFixed(2)} s`,
        String(r.coldStartsInWindow),
        `${s(r.consumersPausedSeconds)} s`,
        `${s(r.drainSeconds)} s`,
        String(r.lost),
        `${r.timesShorterThanBaseline}x shorter`,
      ]),
      [
        'in-place (notices)',
        `${baselineSeconds} s`,
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        'clicks, opens, sign-ups in the window',
        '1x',
      ],
    ]),
  );
  const q = result.quietGate;
  console.log(
    `\n${table([
      ['quiet gate (scenario quiet-gate)', 'users who met the page', 'gate waited', 'lost'],
      ['without the gate', String(q.maintenancePageViewsWithout), '-', String(q.lostWithout)],
      [
        'with the gate',
        `${q.maintenancePageViewsWith} (${(q.maintenancePageViewsWith / q.maintenancePageViewsWithout).toFixed(2)}x)`,
        `${q.gateChecks} min`,
        String(q.lostWith),
      ],
    ])}`,
  );
}

function printRest(result: Awaited<ReturnType<typeof bench>>): void {
  console.log(
    `\n${table([
      ['bundle', 'minified', 'modelled init'],
      ...result.bundles.map((b) => [b.name, `${(b.bytes / 1024).toFixed(1)} KB`, `${b.initMs} ms`]),
    ])}`,
  );
  const h = result.historyParts;
  console.log(
    `\nWorst-case execution history: ${result.historyEventsWorstCase} events, ` +
      `${Math.round((result.historyEventsWorstCase / 25_000) * 100)}% of the 25,000 quota ` +
      `(${Object.entries(h)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}).`,
  );
  const l = result.latencies;
  console.log(
    `
Modelled in virtual time (rehearsal/world/) with the functions' real code, default traffic,
and assumed latencies: ${l.apiCall} s per AWS API call (a function pays one for each call it makes; an
SDK integration pays one), ${l.invokeOverhead} s to invoke a function, ${l.sqlQuery * 1000} ms per SQL statement, a cold
start of ${l.coldStartBase * 1000} ms + ${l.coldStartPerMb * 1000} ms per MB of bundle (a published measurement, not AWS's:
rehearsal/world/core.ts), ${l.disableMapping} s / ${l.enableMapping} s for a mapping to disable / enable; the switchover as in the
first column. The bundles are built as the deploy builds them (esbuild, minified, the AWS SDK
external). The baseline is the first notice's own estimate ("about 10 minutes of downtime"),
not a measurement. The quiet gate's rows: the quiet-gate scenario (rehearsal/rehearse.ts),
the diurnal profile (rehearsal/profiles.ts: assumed, noon campaign x6 halving every 10
minutes) with 45 page views a second at the flat level, the traffic alarm's threshold from
cdk.json (6,000 requests a minute), and CloudWatch seeing each minute 60 s after it ends
(the model's lag, rehearsal/world/services.ts).`,
  );
}

if (require.main === module) {
  main().catch((err: unknown) => {
    // An engine the config refuses yet is a usage error (status 2), as in the rehearsal's CLI.
    if (err instanceof UsageError) {
      console.error(`bench: ${err.message}`);
      process.exit(2);
    }
    console.error(err);
    process.exit(1);
  });
}
