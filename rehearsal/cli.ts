/**
 * npm run rehearse -- [options]
 *
 * Runs the upgrade state machine (and the watchdog when a run stops) against a simulated AWS
 * account in virtual time, with the functions' real code, IAM checked on every call, and
 * traffic, then prints what users would notice.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import './polyfills';
import { type Assumptions, listAssumptions, parseAssumption } from './assumptions';
import { DefinitionError, readDefinition } from './definition-file';
import { timelineHtml } from './html';
import {
  PROFILE_NAMES,
  type ProfileName,
  TrafficProfileError,
  type TrafficProfileSpec,
  parseTrafficProfile,
} from './profiles';
import {
  REHEARSAL_ENGINES,
  type RehearsalOptions,
  type RehearsalReport,
  SCENARIOS,
  UsageError,
  defaultApp,
  rehearse,
  taskStates,
} from './rehearse';
import { CONFIGURED_ENGINE } from './synthesized';
import { type SweepRow, everyScenario, sweep } from './sweep';
import { TRAFFIC_KINDS, type TrafficKind } from './traffic';

const USAGE = `usage: npm run rehearse -- [options]
  --engine NAME              the database engine: ${REHEARSAL_ENGINES.join(' | ')} (default cdk.json's, ${CONFIGURED_ENGINE});
                             the app is synthesized for it, with the engine's demo versions
  --scenario NAME            ${Object.keys(SCENARIOS).join(' | ')} (default happy)
  --switchover-seconds N     modelled switchover time, 1-3600, decimals allowed (default 30)
  --rate NAME=N/s            traffic rate; NAME is ${TRAFFIC_KINDS.join(', ')}
  --traffic NAME|FILE        the rates' shape over the day: ${PROFILE_NAMES.join(' | ')} (default flat),
                             or a JSON profile file (README, "Rehearsal")
  --fail-at "STATE"          that Task state fails every time (repeatable)
  --fail-once "STATE"        that Task state fails its first attempt (repeatable)
  --assume NAME=VALUE        choose how an undocumented AWS behaviour goes (repeatable)
  --list-assumptions         print the assumptions and exit
  --definition FILE          rehearse this upgrade definition (ASL, or describe-state-machine output)
  --print-definition         print the upgrade definition as rehearsed (ASL JSON) and exit
  --sweep                    fail every Task state of both machines, each in a run that reaches it
  --every-scenario           run every scenario without faults (light traffic, as --sweep does);
                             with --assume, shows every path stays safe if AWS behaves that way
  --list-states              print both machines' Task states and exit
  --json                     print one JSON object and nothing else on stdout
  --html FILE                write a self-contained timeline page
exit status: 0 when the invariants hold and the outcome is the scenario's (any outcome with
--fail-at/--fail-once); 1 when an invariant is broken, the outcome is wrong, or (--sweep) a
state is never reached, or (--sweep, --every-scenario) a scenario goes wrong without faults; 2 for bad usage or a
definition that is not valid ASL
scenarios:
${Object.entries(SCENARIOS)
  .map(
    ([name, spec]) =>
      `  ${name.padEnd(25)}${spec.summary} (${spec.expect})${spec.only ? ` [${spec.only.engines.join(', ')} only]` : ''}`,
  )
  .join('\n')}`;

interface Args {
  /** --engine, or cdk.json's. */
  engine: string;
  options: RehearsalOptions & { failAt: string[]; failOnce: string[] };
  assumptions: Partial<Assumptions>;
  definitionFile?: string;
  /** --traffic as given: a profile name or a file, read in main like --definition. */
  traffic?: string;
  json: boolean;
  html?: string;
  action:
    | 'rehearse'
    | 'sweep'
    | 'every-scenario'
    | 'list-states'
    | 'list-assumptions'
    | 'print-definition';
}

export function parseArgs(argv: string[]): Args {
  const args: Args = {
    engine: CONFIGURED_ENGINE,
    options: { failAt: [], failOnce: [], rates: {} },
    assumptions: {},
    json: false,
    action: 'rehearse',
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--engine': {
        const engine = value(i++, flag);
        if (!(REHEARSAL_ENGINES as readonly string[]).includes(engine)) {
          throw new UsageError(
            `--engine must be one of ${REHEARSAL_ENGINES.join(', ')}, got: ${JSON.stringify(engine)}`,
          );
        }
        args.engine = engine;
        break;
      }
      case '--scenario':
        args.options.scenario = value(i++, flag);
        break;
      case '--switchover-seconds': {
        const raw = value(i++, flag);
        const n = Number(raw);
        // Decimals too: a switchover does not end on a round second.
        if (raw.trim() === '' || !Number.isFinite(n) || n < 1 || n > 3600) {
          throw new UsageError(
            `--switchover-seconds must be a number of seconds from 1 to 3600 (decimals allowed, e.g. 27.7), got: ${JSON.stringify(raw)}`,
          );
        }
        args.options.switchoverSeconds = n;
        break;
      }
      case '--rate': {
        const raw = value(i++, flag);
        const match = /^([a-zA-Z]+)=(\d+(?:\.\d+)?)\/s$/.exec(raw);
        const kind = match?.[1] as TrafficKind | undefined;
        if (match === null || kind === undefined || !TRAFFIC_KINDS.includes(kind)) {
          throw new UsageError(
            `--rate must be NAME=N/s with NAME one of ${TRAFFIC_KINDS.join(', ')}, got: ${JSON.stringify(raw)}`,
          );
        }
        (args.options.rates as Record<string, number>)[kind] = Number(match[2]);
        break;
      }
      case '--traffic':
        args.traffic = value(i++, flag);
        break;
      case '--fail-at':
        args.options.failAt.push(value(i++, flag));
        break;
      case '--fail-once':
        args.options.failOnce.push(value(i++, flag));
        break;
      case '--assume': {
        try {
          const [name, v] = parseAssumption(value(i++, flag));
          args.assumptions[name] = v;
        } catch (err) {
          if (err instanceof UsageError) throw err;
          throw new UsageError((err as Error).message);
        }
        break;
      }
      case '--definition':
        args.definitionFile = value(i++, flag);
        break;
      case '--list-assumptions':
      case '--print-definition':
      case '--sweep':
      case '--every-scenario':
      case '--list-states': {
        // One action per run: a second one would silently replace the first.
        const action = flag.slice(2) as Args['action'];
        if (args.action !== 'rehearse' && args.action !== action) {
          throw new UsageError(`--${args.action} and ${flag} cannot be combined; choose one`);
        }
        args.action = action;
        break;
      }
      case '--json':
        args.json = true;
        break;
      case '--html':
        args.html = value(i++, flag);
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option ${JSON.stringify(flag)}`);
    }
  }
  // A sweep and --every-scenario choose their own scenarios, faults and traffic.
  if (args.action === 'sweep' || args.action === 'every-scenario') {
    const o = args.options;
    const ignored = [
      ...(o.scenario !== undefined ? ['--scenario'] : []),
      ...(o.switchoverSeconds !== undefined ? ['--switchover-seconds'] : []),
      ...(Object.keys(o.rates ?? {}).length > 0 ? ['--rate'] : []),
      ...(args.traffic !== undefined ? ['--traffic'] : []),
      ...(o.failAt.length > 0 ? ['--fail-at'] : []),
      ...(o.failOnce.length > 0 ? ['--fail-once'] : []),
      ...(args.html !== undefined ? ['--html'] : []),
    ];
    if (ignored.length > 0) {
      throw new UsageError(`--${args.action} chooses its own runs; remove ${ignored.join(', ')}`);
    }
  }
  return args;
}

/** A profile name, or the profile in a JSON file (a file named like a profile: ./flat). */
export function readTraffic(nameOrFile: string): ProfileName | TrafficProfileSpec {
  if ((PROFILE_NAMES as readonly string[]).includes(nameOrFile)) return nameOrFile as ProfileName;
  let text: string;
  try {
    text = readFileSync(nameOrFile, 'utf8');
  } catch (err) {
    throw new TrafficProfileError([
      `not a profile (${PROFILE_NAMES.join(', ')}) nor a file it can read (${(err as { code?: string }).code ?? (err as Error).message})`,
    ]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TrafficProfileError([`not JSON: ${(err as Error).message}`]);
  }
  return parseTrafficProfile(raw);
}

/** The exit status for a report: 0 good, 1 an invariant broken or the wrong outcome. */
export function exitCode(report: RehearsalReport, faultsInjected: boolean): number {
  if (!report.invariants.ok) return 1;
  if (!faultsInjected && report.outcome !== report.expected) return 1;
  return 0;
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** The timeline, with repeated polls folded into one line. */
export function humanTimeline(report: RehearsalReport): string[] {
  const lines: string[] = [];
  let previous: { state: string; count: number; line: number } | undefined;
  for (const e of report.timeline) {
    const text = e.event === 'task' ? e.state : `-- ${e.event}`;
    if (previous !== undefined && previous.state === text && e.event === 'task') {
      previous.count += 1;
      lines[previous.line] =
        `${lines[previous.line]?.replace(/ \(x\d+\)$/, '')} (x${previous.count})`;
      continue;
    }
    lines.push(`  ${clock(e.t)}  ${text}`);
    previous = { state: text, count: 1, line: lines.length - 1 };
  }
  return lines;
}

/** "mysql 8.0.42 -> 8.4.5": the engine and the upgrade rehearsed. */
function engineLine(d: {
  engine: string;
  currentEngineVersion: string;
  targetEngineVersion: string;
}) {
  return `${d.engine} ${d.currentEngineVersion} -> ${d.targetEngineVersion}`;
}

export function humanSummary(report: RehearsalReport): string[] {
  const m = report.messages;
  const e = report.engine;
  return [
    `engine:                  ${engineLine({ engine: e.name, currentEngineVersion: e.from, targetEngineVersion: e.to })}`,
    `outcome:                 ${report.outcome} (scenario ${report.scenario} expects ${report.expected})`,
    `maintenance page shown:  ${report.maintenance.seconds} s (switchover itself ${report.switchoverSeconds} s)`,
    `capture endpoints down:  ${report.captureUnavailableSeconds} s`,
    `consumers paused:        ${report.consumers.pausedSeconds} s; drained in ${report.drainSeconds} s after resuming`,
    `messages:                ${m.produced} produced, ${m.processed} applied to the final writer, ${m.inQueue} in queue, ${m.inDlq} in DLQ, ${m.lost} lost, ${m.appliedTwice} applied twice${m.poison > 0 ? `, ${m.poison} poison` : ''}`,
    `page views:              ${report.pageViews.served} served, ${report.pageViews.maintenancePage} saw the maintenance page`,
    `app writes:              ${report.appWrites}, ${report.writesFailedAfterMaintenance} failed after the page went off; ${report.oldSessionsEnded} session(s) ended on a former writer`,
    `final writer:            ${report.writer.identifier} ${report.writer.engineVersion}`,
    ...(report.watchdog ? [`watchdog:                ${report.watchdog}`] : []),
    ...(report.secondRun ? [`second run:              ${report.secondRun}`] : []),
    `assumptions:             ${Object.entries(report.assumptions)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
    `invariants:              ${report.invariants.ok ? 'all hold' : `BROKEN:\n  ${report.invariants.violations.join('\n  ')}`}`,
  ];
}

function sweepTable(rows: SweepRow[]): string[] {
  const lines = rows.map(
    (r) =>
      `${r.machine.padEnd(9)} ${r.mode.padEnd(10)} ${(r.injected ? 'yes' : 'NO').padEnd(8)} ${r.outcome.padEnd(15)} ${(r.invariants.ok ? 'hold' : 'BROKEN').padEnd(11)} ${r.state}` +
      (r.invariants.ok ? '' : `\n    ${r.invariants.violations.join('\n    ')}`),
  );
  return [
    `${'machine'.padEnd(9)} ${'mode'.padEnd(10)} ${'reached'.padEnd(8)} ${'outcome'.padEnd(15)} ${'invariants'.padEnd(11)} state`,
    ...lines,
  ];
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) console.error(`rehearse: ${err.message}`);
    console.error(USAGE);
    return 2;
  }
  if (args.action === 'list-assumptions') {
    process.stdout.write(`${listAssumptions().join('\n')}\n`);
    return 0;
  }
  const scenario = args.options.scenario ?? 'happy';
  if (SCENARIOS[scenario] === undefined) {
    console.error(
      `rehearse: unknown scenario ${JSON.stringify(scenario)}; known: ${Object.keys(SCENARIOS).join(', ')}`,
    );
    return 2;
  }
  const spec = SCENARIOS[scenario];
  if (spec?.only !== undefined && !(spec.only.engines as string[]).includes(args.engine)) {
    console.error(
      `rehearse: scenario ${scenario} does not apply to ${args.engine}: ${spec.only.otherwise}`,
    );
    return 2;
  }
  let app: ReturnType<typeof defaultApp>;
  try {
    app = defaultApp(args.engine);
  } catch (err) {
    // An engine the config refuses (the runbook does not support it yet): usage, not a failure.
    if (!(err instanceof UsageError)) throw err;
    console.error(`rehearse: --engine ${args.engine}: ${err.message}`);
    return 2;
  }
  let definition = app.machines.upgrade.definition;
  if (args.definitionFile !== undefined) {
    try {
      definition = readDefinition(readFileSync(args.definitionFile, 'utf8'), app);
    } catch (err) {
      if (!(err instanceof DefinitionError) && (err as { code?: string }).code !== 'ENOENT')
        throw err;
      console.error(`rehearse: --definition ${args.definitionFile}: ${(err as Error).message}`);
      return 2;
    }
  }
  if (args.traffic !== undefined) {
    try {
      args.options.traffic = readTraffic(args.traffic);
    } catch (err) {
      if (!(err instanceof TrafficProfileError)) throw err;
      console.error(`rehearse: --traffic ${args.traffic}: ${err.problems.join('\n  ')}`);
      return 2;
    }
  }
  if (args.action === 'print-definition') {
    process.stdout.write(`${JSON.stringify(definition, null, 2)}\n`);
    return 0;
  }
  if (args.action === 'list-states') {
    const lines = [
      ...taskStates(definition).map((s) => `upgrade   ${s}`),
      ...taskStates(app.machines.watchdog.definition).map((s) => `watchdog  ${s}`),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  }
  const tty = process.stderr.isTTY && !args.json;
  if (args.action === 'sweep') {
    const started = Date.now();
    const result = await sweep({
      app,
      definition,
      assumptions: args.assumptions,
      onRow: (row) => {
        if (tty) process.stderr.write(`\r\x1b[K  ${row.machine} ${row.mode} ${row.state}`);
      },
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (args.json) {
      process.stdout.write(
        `${JSON.stringify({ runs: result.runs, unreached: result.unreached, failedScenarios: result.failedScenarios })}\n`,
      );
    } else {
      const outcomes = new Map<string, number>();
      for (const r of result.runs) outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
      process.stdout.write(
        [
          ...sweepTable(result.runs),
          '',
          `engine: ${engineLine(app.defaults)}`,
          `runs: ${result.runs.length}; states reached: ${new Set(result.runs.filter((r) => r.injected).map((r) => `${r.machine}/${r.state}`)).size}; never reached: ${result.unreached.length === 0 ? 'none' : result.unreached.map((u) => `${u.machine}/${u.state}`).join(', ')}`,
          `outcomes: ${[...outcomes].map(([o, n]) => `${o} ${n}`).join(', ')}`,
          `fault-free scenarios: ${result.failedScenarios.length === 0 ? 'all as expected' : result.failedScenarios.map((f) => `${f.scenario} ended ${f.outcome} (expected ${f.expected})${f.violations.length ? `: ${f.violations.join('; ')}` : ''}`).join(' | ')}`,
          `invariants broken in ${result.runs.filter((r) => !r.invariants.ok).length} runs; ${((Date.now() - started) / 1000).toFixed(1)} s wall`,
        ].join('\n') + '\n',
      );
    }
    return result.ok ? 0 : 1;
  }
  if (args.action === 'every-scenario') {
    const result = await everyScenario({ app, definition, assumptions: args.assumptions }, (r) => {
      if (tty) process.stderr.write(`\r\x1b[K  ${r.scenario}`);
    });
    if (tty) process.stderr.write('\r\x1b[K');
    if (args.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      const rows = result.runs.map(
        (r) =>
          `${r.scenario.padEnd(25)} ${r.outcome.padEnd(15)} ${r.expected.padEnd(15)} ${r.invariants.ok ? 'hold' : 'BROKEN'}` +
          (r.invariants.ok ? '' : `\n    ${r.invariants.violations.join('\n    ')}`),
      );
      const assumed = Object.entries(result.runs[0]?.assumptions ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      process.stdout.write(
        [
          `${'scenario'.padEnd(25)} ${'outcome'.padEnd(15)} ${'expected'.padEnd(15)} invariants`,
          ...rows,
          '',
          `engine: ${engineLine(app.defaults)}`,
          `assumptions: ${assumed}`,
          `${result.runs.length - result.failedScenarios.length} of ${result.runs.length} scenarios end as expected with every invariant holding`,
        ].join('\n') + '\n',
      );
    }
    return result.ok ? 0 : 1;
  }
  let lastDraw = 0;
  let report: RehearsalReport;
  try {
    report = await rehearse({
      ...args.options,
      app,
      definition,
      assumptions: args.assumptions,
      onProgress: tty
        ? (seconds, state) => {
            const now = Date.now();
            if (now - lastDraw < 50) return;
            lastDraw = now;
            process.stderr.write(`\r\x1b[K  ${clock(seconds)}  ${state}`);
          }
        : undefined,
    });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`rehearse: ${err.message}`);
    return 2;
  }
  if (tty) process.stderr.write('\r\x1b[K');
  if (args.html !== undefined) writeFileSync(args.html, timelineHtml(report));
  if (args.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    const out = [
      `Rehearsal: ${SCENARIOS[report.scenario]?.summary ?? report.scenario} (virtual time from 04:00 UTC)`,
      ...humanTimeline(report),
      '',
      ...humanSummary(report),
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  }
  const faults = args.options.failAt.length + args.options.failOnce.length > 0;
  return exitCode(report, faults);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    // Exit only once stdout is out: a pipe is written asynchronously (launch.cjs).
    (code) => process.stdout.write('', () => process.exit(code)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
