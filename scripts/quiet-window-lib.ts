/**
 * The logic of `npm run quiet-window`: read a load balancer's RequestCount from CloudWatch (or
 * from a saved GetMetricData answer), find the quietest window of each weekday, and print
 * them, or the `upgrade.schedule` value for the quietest. Side effects come in through
 * `QuietWindowDeps`, so the tests run it without AWS.
 */
import { type CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  type Analysis,
  type Series,
  type Window,
  WEEKDAYS,
  analyze,
  scheduleFor,
} from './quiet-window-analysis';

export const USAGE = `usage: npm run quiet-window -- [options]
  --weeks N               weeks of history to read, 1-65 (default 4)
  --length L              window length: 30m, 1h, 90m ... up to 24h (default 1h)
  --load-balancer NAME    the LoadBalancer dimension, app/NAME/ID (default: from cdk.json's
                          existing.listener.listenerArn)
  --region R              the load balancer's region (default: cdk.json's env.region)
  --time-zone TZ          lay the weeks out in this IANA zone (default: cdk.json's
                          upgrade.scheduleTimeZone)
  --from FILE             read a saved GetMetricData answer (JSON) instead of CloudWatch
  --json                  print { "windows": [...] }, quietest first
  --schedule              print only the "upgrade.schedule" value for the quietest window
  --margin M              the quiet gate's suggested threshold: the quietest window's busiest
                          minute times M, 1-10 (default 1.5)
exit status: 0 windows found; 1 no data or no AWS access; 2 bad usage`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** CloudWatch answered, with nothing the finder can use. */
export class NoData extends Error {
  override readonly name = 'NoData';
}

export interface QuietWindowArgs {
  weeks: number;
  lengthMinutes: number;
  loadBalancer?: string;
  region?: string;
  timeZone?: string;
  from?: string;
  json: boolean;
  schedule: boolean;
  margin: number;
}

/** What cdk.json says, where the flags are left out. */
export interface Defaults {
  region?: string;
  timeZone?: string;
  listenerArn?: string;
}

export interface QuietWindowDeps {
  cloudWatch: (region: string) => Pick<CloudWatchClient, 'send'>;
  readFile: (path: string) => string;
  defaults: () => Defaults;
  now: () => Date;
  out: (line: string) => void;
  err: (line: string) => void;
}

const show = (value: unknown) => JSON.stringify(value);
const LOAD_BALANCER = /^app\/[A-Za-z0-9-]{1,32}\/[0-9a-f]{16}$/;
// arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/LB-ID/LISTENER-ID
const LISTENER_ARN =
  /^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:listener\/(app\/[A-Za-z0-9-]+\/[0-9a-f]+)\/[0-9a-f]+$/;

export function parseArgs(argv: readonly string[]): QuietWindowArgs {
  const args: QuietWindowArgs = {
    weeks: 4,
    lengthMinutes: 60,
    json: false,
    schedule: false,
    margin: 1.5,
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] ?? '';
    switch (flag) {
      case '--weeks': {
        const v = value(i++, flag);
        // Hourly datapoints are kept 455 days: 65 weeks.
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65) {
          throw new UsageError(`--weeks must be a whole number 1-65, got: ${show(v)}`);
        }
        args.weeks = Number(v);
        break;
      }
      case '--length': {
        const v = value(i++, flag);
        const m = /^(\d+)(m|h)$/.exec(v);
        const minutes = m === null ? NaN : Number(m[1]) * (m[2] === 'h' ? 60 : 1);
        if (!(minutes >= 1 && minutes <= 1440)) {
          throw new UsageError(
            `--length must be minutes or hours such as 30m or 1h, at most 24h, got: ${show(v)}`,
          );
        }
        args.lengthMinutes = minutes;
        break;
      }
      case '--load-balancer': {
        const v = value(i++, flag);
        if (!LOAD_BALANCER.test(v)) {
          throw new UsageError(
            `--load-balancer must be the LoadBalancer dimension app/NAME/ID, got: ${show(v)}`,
          );
        }
        args.loadBalancer = v;
        break;
      }
      case '--region':
        args.region = value(i++, flag);
        break;
      case '--time-zone': {
        const v = value(i++, flag);
        if (!isTimeZone(v)) {
          throw new UsageError(
            `--time-zone must be an IANA time zone such as "UTC", got: ${show(v)}`,
          );
        }
        args.timeZone = v;
        break;
      }
      case '--from':
        args.from = value(i++, flag);
        break;
      case '--margin': {
        const v = value(i++, flag);
        const n = Number(v);
        if (!/^\d+(\.\d+)?$/.test(v) || n < 1 || n > 10) {
          throw new UsageError(`--margin must be a number from 1 to 10, got: ${show(v)}`);
        }
        args.margin = n;
        break;
      }
      case '--json':
        args.json = true;
        break;
      case '--schedule':
        args.schedule = true;
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option ${show(flag)}`);
    }
  }
  if (args.json && args.schedule) throw new UsageError('--json and --schedule cannot be combined');
  if (args.from !== undefined) {
    const cloudOnly = argv.filter((a) => ['--weeks', '--load-balancer', '--region'].includes(a));
    if (cloudOnly.length > 0) {
      throw new UsageError(
        `--from reads the weeks and the load balancer the file holds; remove ${cloudOnly.join(', ')}`,
      );
    }
  }
  return args;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * The period to ask for: CloudWatch keeps 60-second datapoints for 15 days, 300-second ones
 * for 63 days and 3600-second ones for 455 days.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#metrics-retention
 * GetMetricData asks the same of the period: a multiple of 60 s for data under 15 days old,
 * of 300 s up to 63 days, of 3600 s beyond.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
 */
export function periodForWeeks(weeks: number): number {
  const days = weeks * 7;
  if (days <= 15) return 60;
  if (days <= 63) return 300;
  return 3600;
}

interface MetricDataAnswer {
  MetricDataResults?: { Id?: string; Timestamps?: (string | Date)[]; Values?: number[] }[];
}

/**
 * A GetMetricData answer (one, or an array of pages as `aws cloudwatch get-metric-data`
 * saves them) as a series. Its period is the smallest step between datapoints.
 */
export function seriesFromAnswer(answers: MetricDataAnswer[], source: string): Series {
  const points = new Map<number, number>();
  for (const answer of answers) {
    for (const result of answer.MetricDataResults ?? []) {
      const times = result.Timestamps ?? [];
      const values = result.Values ?? [];
      if (times.length !== values.length) {
        throw new Error(
          `${source}: ${result.Id ?? 'a result'} has ${times.length} timestamps and ${values.length} values`,
        );
      }
      times.forEach((t, i) => {
        const ms = new Date(t).getTime();
        const v = values[i];
        if (!Number.isFinite(ms) || typeof v !== 'number' || !Number.isFinite(v)) {
          throw new Error(
            `${source}: datapoint ${i} is not a timestamp and a number: ${show([t, v])}`,
          );
        }
        points.set(ms, (points.get(ms) ?? 0) + v);
      });
    }
  }
  const times = [...points.keys()].sort((a, b) => a - b);
  if (times.length < 2)
    throw new Error(
      `${source} holds ${times.length} datapoint(s); the finder needs a week or more`,
    );
  // The period divides every step between datapoints (a gap is a whole number of periods):
  // their greatest common divisor, in seconds.
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  let step = 0;
  for (let i = 1; i < times.length; i++) step = gcd(step, (times[i] ?? 0) - (times[i - 1] ?? 0));
  const periodSeconds = step / 1000;
  if (periodSeconds % 60 !== 0) {
    throw new Error(
      `${source}: datapoints are ${periodSeconds} s apart; CloudWatch periods are multiples of 60 s`,
    );
  }
  const first = times[0] ?? 0;
  const last = times.at(-1) ?? 0;
  return {
    periodSeconds,
    startMs: first,
    endMs: last + step,
    points: times.map((t) => ({ t, value: points.get(t) ?? 0 })),
  };
}

/** RequestCount (Sum) for the last `weeks` weeks, every page of GetMetricData. */
export async function fetchSeries(
  client: Pick<CloudWatchClient, 'send'>,
  loadBalancer: string,
  weeks: number,
  now: Date,
): Promise<Series> {
  const periodSeconds = periodForWeeks(weeks);
  const periodMs = periodSeconds * 1000;
  const endMs = Math.floor(now.getTime() / periodMs) * periodMs;
  const startMs = endMs - weeks * 7 * 86_400_000;
  const points: { t: number; value: number }[] = [];
  let nextToken: string | undefined;
  do {
    const answer = await client.send(
      new GetMetricDataCommand({
        // https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
        MetricDataQueries: [
          {
            Id: 'requests',
            MetricStat: {
              Metric: {
                Namespace: 'AWS/ApplicationELB',
                MetricName: 'RequestCount',
                Dimensions: [{ Name: 'LoadBalancer', Value: loadBalancer }],
              },
              Period: periodSeconds,
              Stat: 'Sum',
            },
          },
        ],
        StartTime: new Date(startMs),
        EndTime: new Date(endMs),
        ScanBy: 'TimestampAscending',
        NextToken: nextToken,
      }),
    );
    for (const r of answer.MetricDataResults ?? []) {
      (r.Timestamps ?? []).forEach((t, i) =>
        points.push({ t: t.getTime(), value: r.Values?.[i] ?? 0 }),
      );
    }
    nextToken = answer.NextToken;
  } while (nextToken !== undefined);
  if (points.length === 0) {
    throw new NoData(
      `CloudWatch has no RequestCount for LoadBalancer ${loadBalancer} in the last ${weeks} week(s): ` +
        'check --load-balancer (app/NAME/ID, the end of its ARN) and --region',
    );
  }
  // Each datapoint starts a period: one off the grid means CloudWatch answered at another one.
  const off = points.find((p) => (p.t - startMs) % (periodSeconds * 1000) !== 0);
  if (off !== undefined) {
    throw new NoData(
      `CloudWatch answered with a datapoint at ${new Date(off.t).toISOString()}, off the ${periodSeconds} s period asked for`,
    );
  }
  return { periodSeconds, startMs, endMs, points };
}

export function render(analysis: Analysis, source: string, margin = 1.5): string[] {
  const lines = [
    `Quietest ${label(analysis.lengthMinutes)} windows per weekday, from ${analysis.weeks} week(s) of ` +
      `RequestCount at ${analysis.periodSeconds} s (${source}).`,
    `Local times in ${analysis.timeZone}; UTC at the next occurrence.`,
    '',
    `${'weekday'.padEnd(10)} ${'local'.padEnd(13)} ${'UTC'.padEnd(19)} ${'requests/min'.padStart(12)}  week to week`,
  ];
  for (const w of analysis.windows) {
    const utcDay = w.weekdayUtc === w.weekday ? '' : ` (${w.weekdayUtc.slice(0, 3)})`;
    lines.push(
      `${w.weekday.padEnd(10)} ${`${w.startLocal}+${label(w.lengthMinutes)}`.padEnd(13)} ${`${w.startUtc}${utcDay}`.padEnd(19)} ` +
        `${w.requestsPerMinute.toFixed(1).padStart(12)}  ±${Math.round(w.variation * 100)}% over ${w.weekly.length} week(s)`,
    );
  }
  for (const w of analysis.windows.filter((x) => x.datapoints === 0)) {
    lines.push(
      '',
      `${w.weekday} ${w.startLocal} has no datapoint at all: no request came, or CloudWatch has a ` +
        'gap there. Check the load balancer was serving before you schedule into it.',
    );
  }
  if (analysis.missingPoints > 0) {
    lines.push(
      '',
      `${analysis.missingPoints} of ${analysis.expectedPoints} datapoints are absent and count as 0 requests ` +
        '(the load balancer reports nothing for a minute without requests).',
    );
  }
  for (const e of analysis.excluded) {
    lines.push(
      `Left out: the week of ${e.week}, at ${Math.round(e.share * 100)}% of a median week's requests (an outage?).`,
    );
  }
  const best = analysis.windows[0];
  if (best !== undefined) {
    lines.push(
      '',
      `Quietest: ${best.weekday} ${best.startLocal} ${analysis.timeZone}. In cdk.json's upgrade:`,
      `  "schedule": ${show(scheduleFor(best))}, "scheduleTimeZone": ${show(analysis.timeZone)},`,
      `  "quietGate": { "requestsPerMinute": ${gateThreshold(best, margin)} }`,
      `(the quiet gate's threshold: the window's busiest ${analysis.periodSeconds / 60}-minute ` +
        `average, ${best.peakPerMinute.toFixed(1)} a minute, times ${margin})`,
    );
  }
  return lines;
}

/** A quiet gate threshold for the window: its busiest datapoint's rate times `margin`. */
export function gateThreshold(window: Window, margin: number): number {
  return Math.max(1, Math.ceil(window.peakPerMinute * margin));
}

const label = (minutes: number) => (minutes % 60 === 0 ? `${minutes / 60}h` : `${minutes}m`);

export async function main(argv: readonly string[], deps: QuietWindowDeps): Promise<number> {
  let args: QuietWindowArgs;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message !== '') deps.err(err.message);
    deps.err(USAGE);
    return 2;
  }
  const defaults = deps.defaults();
  const timeZone = args.timeZone ?? defaults.timeZone ?? 'UTC';
  let series: Series;
  let source: string;
  if (args.from !== undefined) {
    source = args.from;
    let text: string;
    try {
      text = deps.readFile(args.from);
    } catch (err) {
      deps.err(`cannot read ${args.from}: ${(err as Error).message}`);
      return 1;
    }
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      deps.err(
        `${args.from} is not JSON: save the GetMetricData answer (aws cloudwatch get-metric-data ... --output json)`,
      );
      return 1;
    }
    try {
      series = seriesFromAnswer(
        Array.isArray(answer) ? answer : [answer as MetricDataAnswer],
        args.from,
      );
    } catch (err) {
      deps.err((err as Error).message);
      return 1;
    }
  } else {
    const loadBalancer = args.loadBalancer ?? LISTENER_ARN.exec(defaults.listenerArn ?? '')?.[1];
    const region = args.region ?? defaults.region;
    if (loadBalancer === undefined || region === undefined) {
      deps.err(
        'quiet-window needs the load balancer to read: --load-balancer app/NAME/ID (the ' +
          '"LoadBalancer" dimension, the end of its ARN) and --region, or cdk.json with ' +
          'existing.listener.listenerArn; or --from FILE with a saved GetMetricData answer.',
      );
      return 2;
    }
    source = `${loadBalancer} in ${region}`;
    try {
      series = await fetchSeries(deps.cloudWatch(region), loadBalancer, args.weeks, deps.now());
    } catch (err) {
      const e = err as Error;
      if (e instanceof NoData) {
        deps.err(e.message);
        return 1;
      }
      deps.err(
        `could not read CloudWatch (${e.name}: ${e.message}). quiet-window needs AWS credentials ` +
          `allowed cloudwatch:GetMetricData in ${region} (AWS_PROFILE, or the AWS_ACCESS_KEY_ID ` +
          'variables), or --from FILE with a saved GetMetricData answer.',
      );
      return 1;
    }
  }
  if (args.lengthMinutes % (series.periodSeconds / 60) !== 0) {
    deps.err(
      `--length must be a multiple of the datapoints' period (${series.periodSeconds / 60} min), got: ${args.lengthMinutes} min`,
    );
    return 2;
  }
  const analysis = analyze(series, args.lengthMinutes, timeZone);
  const best = analysis.windows[0];
  if (best === undefined) {
    deps.err(`no window of ${label(args.lengthMinutes)} has data in ${source}`);
    return 1;
  }
  if (args.schedule) {
    deps.out(show(scheduleFor(best)));
  } else if (args.json) {
    deps.out(
      JSON.stringify({
        windows: analysis.windows.map((w) => ({
          weekday: w.weekday,
          startUtc: w.startUtc,
          weekdayUtc: w.weekdayUtc,
          length: label(w.lengthMinutes),
          requestsPerMinute: Number(w.requestsPerMinute.toFixed(2)),
          startLocal: w.startLocal,
          timeZone,
          variation: Number(w.variation.toFixed(3)),
          datapoints: w.datapoints,
          weeks: w.weekly.length,
        })),
        excludedWeeks: analysis.excluded.map((e) => e.week),
        missingPoints: analysis.missingPoints,
        schedule: scheduleFor(best),
        quietGate: { requestsPerMinute: gateThreshold(best, args.margin) },
      }),
    );
  } else {
    for (const line of render(analysis, source, args.margin)) deps.out(line);
  }
  return 0;
}

export { WEEKDAYS };
