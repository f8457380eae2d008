import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { analyze, scheduleFor } from '../../scripts/quiet-window-analysis';
import {
  type Defaults,
  main,
  parseArgs,
  periodForWeeks,
  seriesFromAnswer,
} from '../../scripts/quiet-window-lib';

const FIXTURES = join(__dirname, '..', 'fixtures', 'quiet-window');
const fixture = (name: string) => join(FIXTURES, name);
const cloudWatch = mockClient(CloudWatchClient);

/** Runs the CLI's logic as `npm run quiet-window -- ...args` would, capturing what it prints. */
async function run(
  args: string[],
  defaults: Defaults = { timeZone: 'UTC' },
  now = '2026-12-01T08:07:00Z',
) {
  const out: string[] = [];
  const err: string[] = [];
  const regions: string[] = [];
  const code = await main(args, {
    cloudWatch: (region) => {
      regions.push(region);
      return new CloudWatchClient({ region });
    },
    readFile: (path) => readFileSync(path, 'utf8'),
    defaults: () => defaults,
    now: () => new Date(now),
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  return { code, out, err, regions };
}

async function windowsOf(file: string, ...args: string[]) {
  const r = await run(['--from', fixture(file), '--json', ...args]);
  expect(r.err).toEqual([]);
  return JSON.parse(r.out.join('\n')) as {
    windows: {
      weekday: string;
      startUtc: string;
      startLocal: string;
      length: string;
      requestsPerMinute: number;
      variation: number;
      weeks: number;
    }[];
    excludedWeeks: string[];
    missingPoints: number;
    schedule: string;
    quietGate: { requestsPerMinute: number };
  };
}

beforeEach(() => cloudWatch.reset());

describe('the window finder, on saved GetMetricData answers', () => {
  it('finds the quietest hour of each weekday, quietest first, with the schedule for it', async () => {
    const r = await windowsOf('four-weeks.json');
    expect(r.windows.map((w) => w.weekday).slice(0, 2)).toEqual(['Sunday', 'Saturday']);
    expect(r.windows).toHaveLength(7);
    const rates = r.windows.map((w) => w.requestsPerMinute);
    expect(rates).toEqual([...rates].sort((a, b) => a - b));
    const sunday = r.windows[0];
    expect(sunday).toMatchObject({ length: '1h', weeks: 4 });
    // The fixture's quietest time is Sunday around 04:00-05:00 UTC, at about 2 requests/min.
    expect(sunday?.startUtc).toMatch(/^0[34]:/);
    expect(sunday?.requestsPerMinute).toBeLessThan(3);
    expect(sunday?.variation).toBeLessThan(0.1);
    expect(r.schedule).toBe(
      `cron(${Number(sunday?.startUtc.slice(3))} ${Number(sunday?.startUtc.slice(0, 2))} ? * SUN *)`,
    );
  });

  it('lays the weeks out in the schedule’s time zone across a daylight-saving change', async () => {
    // Traffic follows Berlin's clock; summer time ends on the fixture's second Sunday.
    const berlin = await windowsOf('dst-berlin.json', '--time-zone', 'Europe/Berlin');
    const utc = await windowsOf('dst-berlin.json', '--time-zone', 'UTC');
    for (const w of berlin.windows.slice(0, 3)) {
      expect(w.startLocal).toBe('04:00');
      // The next occurrence is in winter time: CET, UTC+1.
      expect(w.startUtc).toBe('03:00');
      expect(w.variation).toBeLessThan(0.1);
    }
    // Laid out in UTC the quiet hour moves by an hour at the change: the same weekday's best
    // window is busier, or far less steady from week to week.
    const saturday = (r: typeof berlin) => r.windows.find((w) => w.weekday === 'Saturday');
    expect(saturday(utc)?.variation).toBeGreaterThan(0.4);
    expect(saturday(utc)?.requestsPerMinute).toBeGreaterThan(
      1.5 * (saturday(berlin)?.requestsPerMinute ?? 0),
    );
  });

  it('counts absent datapoints as no requests, and says how many there were', async () => {
    const r = await windowsOf('gaps.json');
    // Sunday 02:00-04:00 UTC has no datapoints at all: the load balancer saw no request.
    expect(r.windows[0]).toMatchObject({
      weekday: 'Sunday',
      startUtc: '02:00',
      requestsPerMinute: 0,
    });
    expect(r.missingPoints).toBe(24);
    const text = await run(['--from', fixture('gaps.json')]);
    expect(text.out.join('\n')).toContain(
      '24 of 2016 datapoints are absent and count as 0 requests',
    );
    // A window with no datapoint at all is named: silence, or a gap in the metrics.
    expect(text.out.join('\n')).toContain(
      'Sunday 02:00 has no datapoint at all: no request came, or CloudWatch has a gap there.',
    );
  });

  it('leaves out a week with an outage, and does not let an outage make an hour look quiet', async () => {
    const r = await windowsOf('outage.json');
    expect(r.excludedWeeks).toEqual(['2026-11-16']);
    expect(r.windows.every((w) => w.weeks === 3)).toBe(true);
    const text = await run(['--from', fixture('outage.json')]);
    expect(text.out.join('\n')).toContain(
      "Left out: the week of 2026-11-16, at 2% of a median week's requests (an outage?).",
    );
    // Wednesday 03:00-06:00 was empty in one week: the expected rate is the median week's,
    // as on the other weekdays' nights, not lowered by the empty one.
    const wednesday = r.windows.find((w) => w.weekday === 'Wednesday');
    const monday = r.windows.find((w) => w.weekday === 'Monday');
    expect(wednesday?.requestsPerMinute).toBeGreaterThan(0.8 * (monday?.requestsPerMinute ?? 0));
  });

  it('suggests the quiet gate’s threshold: the window’s busiest datapoint times the margin', async () => {
    const r = await windowsOf('dst-berlin.json', '--time-zone', 'Europe/Berlin', '--margin', '2');
    const quietest = analyze(
      seriesFromAnswer(
        [JSON.parse(readFileSync(fixture('dst-berlin.json'), 'utf8')) as never],
        'dst-berlin.json',
      ),
      60,
      'Europe/Berlin',
    ).windows[0];
    // Hourly datapoints and a 1-hour window: its busiest datapoint is its busiest week.
    expect(quietest?.peakPerMinute).toBeCloseTo(Math.max(...(quietest?.weekly ?? [])), 9);
    expect(quietest?.peakPerMinute).toBeGreaterThan(quietest?.requestsPerMinute ?? Infinity);
    expect(r).toMatchObject({
      quietGate: { requestsPerMinute: Math.ceil((quietest?.peakPerMinute ?? 0) * 2) },
    });
    expect(() => parseArgs(['--margin', '0.5'])).toThrow(
      '--margin must be a number from 1 to 10, got: "0.5"',
    );
  });

  it('prints the upgrade.schedule value alone with --schedule', async () => {
    const r = await run(['--from', fixture('dst-berlin.json'), '--schedule'], {
      timeZone: 'Europe/Berlin',
    });
    expect(r).toMatchObject({ code: 0, out: ['"cron(0 4 ? * SUN *)"'], err: [] });
  });

  it('takes 90-minute windows at 15-minute datapoints, and refuses a length that is not a multiple', async () => {
    const r = await windowsOf('four-weeks.json', '--length', '90m');
    expect(r.windows[0]?.length).toBe('90m');
    const bad = await run(['--from', fixture('four-weeks.json'), '--length', '20m']);
    expect(bad.code).toBe(2);
    expect(bad.err).toEqual([
      "--length must be a multiple of the datapoints' period (15 min), got: 20 min",
    ]);
  });
});

describe('reading CloudWatch', () => {
  it.each([
    [1, 60],
    [2, 60],
    [4, 300],
    [9, 300],
    [10, 3600],
    [65, 3600],
  ])('asks for %i week(s) at the finest period CloudWatch still keeps (%i s)', (weeks, period) => {
    expect(periodForWeeks(weeks)).toBe(period);
  });

  /**
   * What CloudWatch would answer for 4 weeks at 300 s up to `now`: 60 requests a minute, but
   * 6 on Sunday 03:00-04:00 UTC.
   */
  function answerAt300(now: string) {
    const end = Math.floor(Date.parse(now) / 300_000) * 300_000;
    const times: Date[] = [];
    const values: number[] = [];
    for (let t = end - 28 * 86_400_000; t < end; t += 300_000) {
      const d = new Date(t);
      times.push(d);
      values.push(d.getUTCDay() === 0 && d.getUTCHours() === 3 ? 30 : 300);
    }
    return { times, values };
  }

  it('reads every page of RequestCount for the load balancer, in its region', async () => {
    const { times, values } = answerAt300('2026-12-01T08:07:00Z');
    const half = Math.floor(times.length / 2);
    const page = (from: number, to: number) => ({
      Id: 'requests',
      Timestamps: times.slice(from, to),
      Values: values.slice(from, to),
    });
    cloudWatch
      .on(GetMetricDataCommand)
      .resolvesOnce({ MetricDataResults: [page(0, half)], NextToken: 'more' })
      .resolvesOnce({ MetricDataResults: [page(half, times.length)] });
    const r = await run(
      ['--load-balancer', 'app/web/0123456789abcdef', '--region', 'eu-central-1', '--json'],
      { timeZone: 'UTC', region: 'eu-west-1' },
    );
    expect(r.code).toBe(0);
    expect(r.regions).toEqual(['eu-central-1']);
    expect(cloudWatch).toHaveReceivedCommandTimes(GetMetricDataCommand, 2);
    expect(cloudWatch).toHaveReceivedNthCommandWith(2, GetMetricDataCommand, { NextToken: 'more' });
    expect(cloudWatch).toHaveReceivedCommandWith(GetMetricDataCommand, {
      MetricDataQueries: [
        {
          Id: 'requests',
          MetricStat: {
            Metric: {
              Namespace: 'AWS/ApplicationELB',
              MetricName: 'RequestCount',
              Dimensions: [{ Name: 'LoadBalancer', Value: 'app/web/0123456789abcdef' }],
            },
            Period: 300,
            Stat: 'Sum',
          },
        },
      ],
      StartTime: new Date('2026-11-03T08:05:00Z'),
      EndTime: new Date('2026-12-01T08:05:00Z'),
    });
    const json = JSON.parse(r.out.join('')) as {
      windows: { weekday: string; startUtc: string; requestsPerMinute: number }[];
      missingPoints: number;
      excludedWeeks: string[];
    };
    expect(json.windows[0]).toMatchObject({
      weekday: 'Sunday',
      startUtc: '03:00',
      requestsPerMinute: 6,
    });
    expect(json.windows[1]?.requestsPerMinute).toBe(60);
    expect(json.missingPoints).toBe(0);
    // The first and last weeks are cut short by the range; neither is an outage.
    expect(json.excludedWeeks).toEqual([]);
  });

  it('does not take a week the range cuts to its night for an outage', async () => {
    // Ends on Monday 05:02 UTC: the last week holds only Monday's first five hours.
    const { times, values } = answerAt300('2026-11-30T05:02:00Z');
    cloudWatch
      .on(GetMetricDataCommand)
      .resolves({ MetricDataResults: [{ Id: 'requests', Timestamps: times, Values: values }] });
    const r = await run(
      ['--load-balancer', 'app/web/0123456789abcdef', '--region', 'eu-west-1'],
      { timeZone: 'UTC' },
      '2026-11-30T05:02:00Z',
    );
    expect(r.code).toBe(0);
    expect(r.out.join('\n')).not.toContain('Left out');
    expect(r.out.join('\n')).toContain('from 5 week(s)');
  });

  it('says which load balancer and region gave no data, instead of calling every hour quiet', async () => {
    cloudWatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: 'requests' }] });
    const r = await run(['--load-balancer', 'app/web/0123456789abcdef', '--region', 'eu-west-1']);
    expect(r).toMatchObject({
      code: 1,
      out: [],
      err: [
        'CloudWatch has no RequestCount for LoadBalancer app/web/0123456789abcdef in the last 4 week(s): ' +
          'check --load-balancer (app/NAME/ID, the end of its ARN) and --region',
      ],
    });
  });

  it('finds the load balancer of an adopted platform in cdk.json’s listener ARN', async () => {
    cloudWatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    // (No data, so the run ends there: exit 1, the dimension named.)
    await run([], {
      region: 'eu-west-1',
      listenerArn:
        'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/fedcba9876543210',
    });
    expect(cloudWatch).toHaveReceivedCommandWith(GetMetricDataCommand, {
      MetricDataQueries: [
        expect.objectContaining({
          MetricStat: expect.objectContaining({
            Metric: expect.objectContaining({
              Dimensions: [{ Name: 'LoadBalancer', Value: 'app/web/0123456789abcdef' }],
            }) as unknown,
          }) as unknown,
        }) as unknown,
      ],
    });
  });

  it('says what it needs without credentials, and without a load balancer', async () => {
    const denied = Object.assign(new Error('Could not load credentials from any providers'), {
      name: 'CredentialsProviderError',
    });
    cloudWatch.on(GetMetricDataCommand).rejects(denied);
    const r = await run(['--load-balancer', 'app/web/0123456789abcdef'], {
      region: 'eu-west-1',
    });
    expect(r.code).toBe(1);
    expect(r.err.join('\n')).toContain(
      'could not read CloudWatch (CredentialsProviderError: Could not load credentials from any providers). ' +
        'quiet-window needs AWS credentials allowed cloudwatch:GetMetricData in eu-west-1',
    );
    expect(r.err.join('\n')).toContain('or --from FILE with a saved GetMetricData answer');
    const nothing = await run([], { region: 'eu-west-1' });
    expect(nothing.code).toBe(2);
    expect(nothing.err.join('\n')).toContain('quiet-window needs the load balancer to read');
    expect(cloudWatch).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
  });
});

describe('arguments and files', () => {
  it.each([
    [['--weeks', '0'], '--weeks must be a whole number 1-65, got: "0"'],
    [['--weeks', '66'], '--weeks must be a whole number 1-65, got: "66"'],
    [
      ['--length', '2d'],
      '--length must be minutes or hours such as 30m or 1h, at most 24h, got: "2d"',
    ],
    [
      ['--load-balancer', 'web'],
      '--load-balancer must be the LoadBalancer dimension app/NAME/ID, got: "web"',
    ],
    [
      ['--time-zone', 'Mars/Olympus'],
      '--time-zone must be an IANA time zone such as "UTC", got: "Mars/Olympus"',
    ],
    [['--json', '--schedule'], '--json and --schedule cannot be combined'],
    [
      ['--from', 'f.json', '--weeks', '2'],
      '--from reads the weeks and the load balancer the file holds; remove --weeks',
    ],
    [['--jsn'], 'unknown option "--jsn"'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(message);
  });

  it('exits 2 with the usage on bad usage, and 1 on a file it cannot use', async () => {
    const usage = await run(['--weeks']);
    expect(usage.code).toBe(2);
    expect(usage.err[0]).toBe('--weeks needs a value');
    expect(usage.err[1]).toMatch(/^usage: npm run quiet-window/);
    const missing = await run(['--from', fixture('none.json')]);
    expect(missing.code).toBe(1);
    expect(missing.err[0]).toMatch(/^cannot read .*none\.json: ENOENT/);
  });

  it('refuses an answer whose timestamps and values do not pair up, or that is not a week', () => {
    expect(() =>
      seriesFromAnswer(
        [{ MetricDataResults: [{ Id: 'r', Timestamps: ['2026-11-01T00:00:00Z'], Values: [] }] }],
        'f.json',
      ),
    ).toThrow('f.json: r has 1 timestamps and 0 values');
    expect(() => seriesFromAnswer([{ MetricDataResults: [] }], 'f.json')).toThrow(
      'f.json holds 0 datapoint(s)',
    );
    expect(() =>
      seriesFromAnswer(
        [
          {
            MetricDataResults: [
              { Timestamps: ['2026-11-01T00:00:00Z', '2026-11-01T00:00:30Z'], Values: [1, 2] },
            ],
          },
        ],
        'f.json',
      ),
    ).toThrow('f.json: datapoints are 30 s apart; CloudWatch periods are multiples of 60 s');
  });

  it('runs a window past Sunday midnight into the next Monday, not the same week’s', () => {
    // Hourly, 100 requests a minute, but 5 on the Sunday 23:00 hours and on the Mondays after
    // them (9 and 16 November); the first Monday, 2 November, is busy at 00:00.
    const start = Date.parse('2026-11-02T00:00:00Z');
    const end = Date.parse('2026-11-16T01:00:00Z');
    const points: { t: number; value: number }[] = [];
    for (let t = start; t < end; t += 3_600_000) {
      const d = new Date(t);
      const quiet =
        (d.getUTCDay() === 0 && d.getUTCHours() === 23) ||
        (d.getUTCDay() === 1 && d.getUTCHours() === 0 && t > start);
      points.push({ t, value: (quiet ? 5 : 100) * 60 });
    }
    const sunday = analyze(
      { periodSeconds: 3600, startMs: start, endMs: end, points },
      120,
      'UTC',
    ).windows.find((w) => w.weekday === 'Sunday');
    expect(sunday).toMatchObject({ startLocal: '23:00', requestsPerMinute: 5 });
  });

  it('writes the cron for the local start in EventBridge Scheduler’s form', () => {
    const series = seriesFromAnswer(
      [JSON.parse(readFileSync(fixture('dst-berlin.json'), 'utf8')) as never],
      'dst-berlin.json',
    );
    const best = analyze(series, 60, 'Europe/Berlin').windows[0];
    if (best === undefined) throw new Error('no window');
    expect(scheduleFor(best)).toBe('cron(0 4 ? * SUN *)');
  });
});
