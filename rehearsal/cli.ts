/**
 * npm run rehearse -- [options]
 *
 * Runs the synthesized upgrade state machine (and the watchdog when a run stops) against a
 * simulated AWS account in virtual time, with traffic, and prints what users would notice.
 */
import { writeFileSync } from 'node:fs';
import './polyfills';
import { timelineHtml } from './html';
import { synthesizeMachines } from './machines';
import {
  type RehearsalOptions,
  type RehearsalReport,
  SCENARIOS,
  UsageError,
  rehearse,
  taskStates,
} from './rehearse';
import { TRAFFIC_KINDS, type TrafficKind } from './traffic';

const USAGE = `usage: npm run rehearse -- [options]
  --scenario NAME            ${Object.keys(SCENARIOS).join(' | ')} (default happy)
  --switchover-seconds N     modelled switchover time (default 30)
  --rate NAME=N/s            traffic rate; NAME is ${TRAFFIC_KINDS.join(', ')}
  --fail-at "STATE"          that Task state fails every time (repeatable)
  --fail-once "STATE"        that Task state fails its first attempt (repeatable)
  --list-states              print the upgrade machine's Task states and exit
  --json                     print one JSON object and nothing else on stdout
  --html FILE                write a self-contained timeline page
exit status: 0 when the invariants hold and the outcome is the scenario's (any outcome with
--fail-at/--fail-once); 1 when an invariant is broken or the outcome is wrong; 2 for bad usage`;

interface Args {
  options: RehearsalOptions;
  json: boolean;
  html?: string;
  listStates: boolean;
}

export function parseArgs(argv: string[]): Args {
  const args: Args = {
    options: { failAt: [], failOnce: [], rates: {} },
    json: false,
    listStates: false,
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case '--scenario':
        args.options.scenario = value(i++, flag);
        break;
      case '--switchover-seconds': {
        const raw = value(i++, flag);
        const n = Number(raw);
        if (!Number.isFinite(n) || n <= 0 || n > 3600) {
          throw new UsageError(
            `--switchover-seconds must be a number of seconds 1-3600, got: ${JSON.stringify(raw)}`,
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
      case '--fail-at':
        args.options.failAt?.push(value(i++, flag));
        break;
      case '--fail-once':
        args.options.failOnce?.push(value(i++, flag));
        break;
      case '--list-states':
        args.listStates = true;
        break;
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
  return args;
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

export function humanSummary(report: RehearsalReport): string[] {
  const m = report.messages;
  return [
    `outcome:                 ${report.outcome} (scenario ${report.scenario} expects ${report.expected})`,
    `maintenance page shown:  ${report.maintenance.seconds} s (switchover itself ${report.switchoverSeconds} s)`,
    `capture endpoints down:  ${report.captureUnavailableSeconds} s`,
    `consumers paused:        ${report.consumers.pausedSeconds} s; drained in ${report.drainSeconds} s after resuming`,
    `messages:                ${m.produced} produced, ${m.processed} processed, ${m.inQueue} in queue, ${m.inDlq} in DLQ, ${m.lost} lost, ${m.duplicateEffects} duplicate effects`,
    `page views:              ${report.pageViews.served} served, ${report.pageViews.maintenancePage} saw the maintenance page`,
    `final writer:            ${report.writer.identifier} ${report.writer.engineVersion}`,
    ...(report.watchdog ? [`watchdog:                ${report.watchdog}`] : []),
    ...(report.secondRun ? [`second run:              ${report.secondRun}`] : []),
    `invariants:              ${report.invariants.ok ? 'all hold' : `BROKEN: ${report.invariants.violations.join('; ')}`}`,
  ];
}

async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) console.error(`rehearse: ${err.message}`);
    console.error(USAGE);
    return 2;
  }
  const scenario = args.options.scenario ?? 'happy';
  if (SCENARIOS[scenario] === undefined) {
    console.error(
      `rehearse: unknown scenario ${JSON.stringify(scenario)}; known: ${Object.keys(SCENARIOS).join(', ')}`,
    );
    return 2;
  }
  const machines = synthesizeMachines();
  if (args.listStates) {
    process.stdout.write(`${taskStates(machines).join('\n')}\n`);
    return 0;
  }
  const tty = process.stderr.isTTY && !args.json;
  let lastDraw = 0;
  let report: RehearsalReport;
  try {
    report = await rehearse({
      ...args.options,
      machines,
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
  const faults = (args.options.failAt?.length ?? 0) + (args.options.failOnce?.length ?? 0) > 0;
  return exitCode(report, faults);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
