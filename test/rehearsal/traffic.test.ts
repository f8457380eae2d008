import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from '../../rehearsal/cli';
import {
  DIURNAL,
  type TrafficProfileSpec,
  TrafficProfileError,
  parseTrafficProfile,
  trafficProfile,
} from '../../rehearsal/profiles';
import { type RehearsalReport, START, rehearse } from '../../rehearsal/rehearse';
import { Simulation } from '../../rehearsal/sim';
import {
  DEFAULT_RATES,
  TRAFFIC_KINDS,
  Traffic,
  type TrafficKind,
  type TrafficOptions,
} from '../../rehearsal/traffic';
import type { World } from '../../rehearsal/world';
import { app } from '../helpers/upgrade';
import { MORE_MUTANTS } from './mutants';

const CLI = join(__dirname, '..', '..', 'rehearsal', 'launch.cjs');
const START_MS = Date.parse(START);
const MINUTE = 60_000;
/** The rehearsal's day at hh:mm UTC. */
const at = (hh: number, mm = 0, ss = 0) => Date.UTC(2026, 10, 22, hh, mm, ss);

const CAPTURE_PATHS = {
  click: '/t/click',
  open: '/t/open',
  confirm: '/confirm',
  signUp: '/signup',
  unsubscribe: '/unsubscribe',
};

/**
 * Just what Traffic reads of the account: a queue per buffer and the listener's routing,
 * which a test changes at chosen instants. The full account is the rehearsal's (below).
 */
function fakeWorld(sim: Simulation) {
  const buffers = ['tracking', 'opt-ins', 'sign-ups', 'unsubscribes', 'sends'];
  return {
    sim,
    app: {
      mappings: buffers.map((b) => ({ functionName: `consume-${b}`, queueArn: `arn:${b}` })),
      queues: buffers.map((b) => ({ arn: `arn:${b}`, url: `https://sqs/${b}` })),
    },
    runtime: (fn: string) => ({
      spec: { environment: { BUFFER_NAME: fn.slice('consume-'.length) } },
    }),
    routing: { page: false, captureDown: [] as string[] },
    appPool: { tick: () => undefined },
    capturePaths: CAPTURE_PATHS,
    sqs: { send: () => undefined, waiting: () => 0 },
  };
}

/**
 * Traffic for `seconds` virtual seconds from `startMs`; `during` changes the routing at
 * offsets (seconds, off the whole second so that no tie with a tick decides the result).
 */
async function produce(
  rates: Record<TrafficKind, number>,
  seconds: number,
  options: TrafficOptions = {},
  during: [number, { page: boolean; captureDown: string[] }][] = [],
  startMs = START_MS,
) {
  const sim = new Simulation(startMs);
  const requests: { count: number; atMs: number }[] = [];
  const traffic = await sim.run(async () => {
    const world = fakeWorld(sim);
    for (const [offset, routing] of during) {
      setTimeout(() => (world.routing = routing), offset * 1000);
    }
    const t = new Traffic(world as unknown as World, rates, {
      ...options,
      onRequests: (count, atMs) => requests.push({ count, atMs }),
    });
    t.start();
    await sim.sleep(seconds - 0.5);
    t.stopProducing();
    return t;
  });
  const counts = Object.fromEntries(TRAFFIC_KINDS.map((k) => [k, 0])) as Record<
    TrafficKind,
    number
  >;
  counts.pageViews = traffic.pageViews.served + traffic.pageViews.maintenancePage;
  for (const e of traffic.ledger) if (e.kind !== 'poison') counts[e.kind] += 1;
  const perMinute = new Map<number, number>();
  for (const r of requests) {
    const minute = Math.floor(r.atMs / MINUTE) * MINUTE;
    perMinute.set(minute, (perMinute.get(minute) ?? 0) + r.count);
  }
  return { traffic, counts, requests, perMinute };
}

/** Clicks in the minute that starts at `ms`. */
const clicksIn = (traffic: Traffic, ms: number) =>
  traffic.ledger.filter(
    (e) => e.kind === 'clicks' && e.producedAt >= ms && e.producedAt < ms + MINUTE,
  ).length;

const FRACTIONAL: Record<TrafficKind, number> = {
  pageViews: 20,
  clicks: 0.45,
  opens: 0.2,
  confirmations: 1 / 3,
  signUps: 2,
  unsubscribes: 0.5,
  sends: 15,
};

const SPEC: TrafficProfileSpec = {
  name: 'test',
  hourly: Array<number>(24).fill(1),
  noise: 0,
  seed: 1,
  campaigns: [],
};

describe('the flat profile', () => {
  it('reproduces the counts of the traffic before profiles, second by second', async () => {
    const seconds = 600;
    // The traffic as it was: each second, the rate plus the credit, the fraction carried.
    const credit = new Map<TrafficKind, number>();
    const expected = Object.fromEntries(TRAFFIC_KINDS.map((k) => [k, 0])) as Record<
      TrafficKind,
      number
    >;
    const albPerSecond: number[] = [];
    for (let s = 0; s < seconds; s++) {
      let alb = 0;
      for (const kind of TRAFFIC_KINDS) {
        const due = (credit.get(kind) ?? 0) + FRACTIONAL[kind];
        const n = Math.floor(due);
        credit.set(kind, due - n);
        expected[kind] += n;
        if (kind !== 'sends') alb += n;
      }
      albPerSecond.push(alb);
    }
    const flat = await produce(FRACTIONAL, seconds, { profile: trafficProfile('flat', START_MS) });
    expect(flat.counts).toEqual(expected);
    expect(flat.requests.map((r) => r.count)).toEqual(albPerSecond);
    // Without a profile, the same: the default is flat.
    expect((await produce(FRACTIONAL, seconds)).counts).toEqual(expected);
  });
});

describe('the diurnal profile', () => {
  const profile = trafficProfile('diurnal', START_MS);
  const mean = (kind: TrafficKind, from: number, to: number) => {
    let sum = 0;
    let n = 0;
    for (let t = from; t < to; t += MINUTE) {
      sum += profile(kind, t);
      n += 1;
    }
    return sum / n;
  };

  it('is quiet at night and busy at midday', () => {
    // Confirmations: a kind the noon campaign does not drive.
    const night = mean('confirmations', at(3), at(5));
    const midday = mean('confirmations', at(11), at(13));
    expect(night).toBeGreaterThan(0.15 * 0.95);
    expect(night).toBeLessThan(0.15 * 1.05);
    expect(midday / night).toBeGreaterThan(9);
    expect(midday / night).toBeLessThan(11);
    // Over the whole day, a base rate is the mean rate.
    expect(mean('confirmations', at(0), at(24))).toBeCloseTo(1, 1);
    // Sends follow the platform's schedule.
    expect(mean('sends', at(3), at(5))).toBe(1);
    expect(mean('sends', at(11), at(12))).toBe(1);
  });

  it('adds noise that is the same in every run, within ±10%, one value a minute', () => {
    const quiet = trafficProfile({ ...SPEC, noise: 0.1, seed: 7 }, START_MS);
    const again = trafficProfile({ ...SPEC, noise: 0.1, seed: 7 }, START_MS);
    const other = trafficProfile({ ...SPEC, noise: 0.1, seed: 8 }, START_MS);
    const values: number[] = [];
    for (let t = at(0); t < at(24); t += MINUTE) {
      const value = quiet('clicks', t);
      values.push(value);
      expect(again('clicks', t)).toBe(value);
      expect(quiet('clicks', t + 59_999)).toBe(value);
    }
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0.9);
    expect(Math.max(...values)).toBeLessThanOrEqual(1.1);
    // Noise indeed: it spans most of its range, and another seed gives other numbers.
    expect(Math.min(...values)).toBeLessThan(0.92);
    expect(Math.max(...values)).toBeGreaterThan(1.08);
    expect(new Set(values.map((v) => v.toFixed(6))).size).toBeGreaterThan(1000);
    expect(other('clicks', at(12))).not.toBe(quiet('clicks', at(12)));
    // And each kind its own.
    expect(quiet('opens', at(12))).not.toBe(quiet('clicks', at(12)));
  });

  it("has the day's campaign at 12:00 UTC, six times the traffic at the send", () => {
    const withoutCampaign = trafficProfile({ ...DIURNAL, campaigns: [] }, START_MS);
    for (const kind of ['clicks', 'opens', 'pageViews'] as const) {
      expect(profile(kind, at(12)) / withoutCampaign(kind, at(12))).toBeCloseTo(6, 10);
      expect(profile(kind, at(11, 59)) / withoutCampaign(kind, at(11, 59))).toBe(1);
    }
    expect(profile('confirmations', at(12))).toBe(withoutCampaign('confirmations', at(12)));
    expect(profile('sends', at(12))).toBe(1);
    // Its definition is data: what a --traffic file holds.
    expect(parseTrafficProfile(JSON.parse(JSON.stringify(DIURNAL)))).toEqual(DIURNAL);
  });
});

describe('a campaign burst', () => {
  const campaign = { at: '04:10', factor: 6, halfLifeMinutes: 10, kinds: ['clicks', 'opens'] };
  const spec = { ...SPEC, campaigns: [campaign] } as TrafficProfileSpec;

  it('multiplies clicks and opens at the send, and the excess halves every half-life', () => {
    const p = trafficProfile(spec, START_MS);
    expect(p('clicks', at(4, 9, 59))).toBe(1);
    expect(p('clicks', at(4, 10))).toBe(6);
    expect(p('opens', at(4, 10))).toBe(6);
    expect(p('clicks', at(4, 20))).toBeCloseTo(3.5, 10);
    expect(p('clicks', at(4, 30))).toBeCloseTo(2.25, 10);
    expect(p('confirmations', at(4, 10))).toBe(1);
    expect(p('sends', at(4, 10))).toBe(1);
    // An ISO time is the same instant.
    const iso = trafficProfile(
      { ...spec, campaigns: [{ ...campaign, at: '2026-11-22T04:10:00Z' }] } as TrafficProfileSpec,
      START_MS,
    );
    expect(iso('clicks', at(4, 20))).toBe(p('clicks', at(4, 20)));
  });

  it('shows in the clicks produced, minute by minute', async () => {
    const rates = { ...DEFAULT_RATES, clicks: 10 };
    const { traffic } = await produce(rates, 35 * 60, {
      profile: trafficProfile(spec, START_MS),
    });
    const before = clicksIn(traffic, at(4, 9));
    expect(before).toBe(600);
    // The send's minute averages 1 + 5 × 2^(-t / 10 min) over its seconds: about 5.83.
    const excess = [10, 20, 30].map((m) => clicksIn(traffic, at(4, m)) - before);
    expect((excess[0] ?? 0) / before).toBeGreaterThan(4.8);
    expect((excess[0] ?? 0) / before).toBeLessThan(4.85);
    // A half-life later, half the excess; two, a quarter.
    expect((excess[1] ?? 0) / (excess[0] ?? 1)).toBeCloseTo(0.5, 2);
    expect((excess[2] ?? 0) / (excess[0] ?? 1)).toBeCloseTo(0.25, 2);
    // Opens burst as much; confirmations not at all.
    const opens = traffic.ledger.filter(
      (e) => e.kind === 'opens' && e.producedAt >= at(4, 10) && e.producedAt < at(4, 11),
    ).length;
    expect(opens / (DEFAULT_RATES.opens * 60)).toBeCloseTo((excess[0] ?? 0) / before + 1, 1);
    const confirmations = traffic.ledger.filter(
      (e) => e.kind === 'confirmations' && e.producedAt >= at(4, 10) && e.producedAt < at(4, 11),
    ).length;
    expect(confirmations).toBe(DEFAULT_RATES.confirmations * 60);
  });
});

describe('requests through the load balancer', () => {
  it('are counted per minute, sends excluded, refused captures and page views on the page included', async () => {
    const allDown = { page: true, captureDown: Object.values(CAPTURE_PATHS) };
    const { perMinute, traffic } = await produce(DEFAULT_RATES, 180, {}, [
      [60.5, allDown],
      [90.5, { page: false, captureDown: [] }],
    ]);
    const throughAlb = TRAFFIC_KINDS.filter((k) => k !== 'sends').reduce(
      (n, k) => n + DEFAULT_RATES[k],
      0,
    );
    expect(throughAlb).toBe(56);
    expect([...perMinute]).toEqual([
      [START_MS, 56 * 60],
      [START_MS + MINUTE, 56 * 60],
      [START_MS + 2 * MINUTE, 56 * 60],
    ]);
    // 30 seconds with the page on and every capture path down.
    expect(traffic.maintenancePageByKind).toEqual({
      pageViews: 20 * 30,
      clicks: 15 * 30,
      opens: 15 * 30,
      confirmations: 2 * 30,
      signUps: 2 * 30,
      unsubscribes: 2 * 30,
    });
    expect(traffic.pageViews.maintenancePage).toBe(20 * 30);
  });
});

describe('a traffic file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'traffic-'));

  it.each<{ raw: unknown; message: string }>([
    {
      raw: { ...SPEC, hourly: [1, 2] },
      message: 'hourly must list 24 factors, one per UTC hour from 00:00, got: [1,2]',
    },
    {
      raw: { ...SPEC, hourly: [...SPEC.hourly.slice(1), -1] },
      message: 'hourly[23] must be a number of 0 or more, got: -1',
    },
    { raw: { ...SPEC, noise: 1.5 }, message: 'noise must be a fraction from 0 to 1, got: 1.5' },
    {
      raw: { ...SPEC, campaigns: [{ at: '25:00', factor: 6, halfLifeMinutes: 10 }] },
      message:
        'campaigns[0].at must be "HH:MM" (UTC, on the rehearsal\'s first day) or an ISO time such as "2026-11-22T12:00:00Z", got: "25:00"',
    },
    {
      raw: { ...SPEC, campaigns: [{ at: '12:00', factor: 0.5, halfLifeMinutes: 10 }] },
      message:
        'campaigns[0].factor must be a number of at least 1 (6: six times the traffic at the send), got: 0.5',
    },
    {
      raw: { ...SPEC, campaigns: [{ at: '12:00', factor: 6, halfLifeMinutes: 0 }] },
      message: 'campaigns[0].halfLifeMinutes must be a number of minutes above 0, got: 0',
    },
    {
      raw: {
        ...SPEC,
        campaigns: [{ at: '12:00', factor: 6, halfLifeMinutes: 5, kinds: ['clickz'] }],
      },
      message:
        'campaigns[0].kinds[0] must list kinds among pageViews, clicks, opens, confirmations, signUps, unsubscribes, sends, got: "clickz"',
    },
    { raw: { hourly: SPEC.hourly }, message: 'name is required, got: (missing)' },
    { raw: { ...SPEC, hourlyy: [] }, message: 'the profile has an unknown key: hourlyy' },
    { raw: [1], message: 'the profile must be a JSON object, got: [1]' },
  ])('is refused, saying: $message', ({ raw, message }) => {
    expect(() => parseTrafficProfile(raw)).toThrow(new TrafficProfileError([message]));
  });

  it('fills in no noise, seed 1, no campaigns, and the campaign kinds clicks, opens, page views', () => {
    expect(
      parseTrafficProfile({
        name: 'n',
        hourly: SPEC.hourly,
        campaigns: [{ at: '12:00', factor: 2, halfLifeMinutes: 5 }],
      }),
    ).toEqual({
      name: 'n',
      hourly: SPEC.hourly,
      noise: 0,
      seed: 1,
      campaigns: [
        { at: '12:00', factor: 2, halfLifeMinutes: 5, kinds: ['clicks', 'opens', 'pageViews'] },
      ],
    });
  });

  it('that is bad makes the CLI exit 2, naming the field and the value', () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ ...SPEC, noise: -0.2 }));
    const r = spawnSync(process.execPath, [CLI, '--traffic', file, '--json'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      `rehearse: --traffic ${file}: noise must be a fraction from 0 to 1, got: -0.2`,
    );
  });

  it('is refused by --sweep and --every-scenario, like --rate', () => {
    expect(() => parseArgs(['--traffic', 'diurnal', '--sweep'])).toThrow(
      '--sweep chooses its own runs; remove --traffic',
    );
    expect(() => parseArgs(['--every-scenario', '--traffic', 'x.json'])).toThrow(
      '--every-scenario chooses its own runs; remove --traffic',
    );
    expect(parseArgs(['--traffic', 'diurnal']).traffic).toBe('diurnal');
  });
});

describe('who met the maintenance page, by kind', () => {
  let flat: RehearsalReport;
  beforeAll(async () => {
    flat = await rehearse({ app });
  });

  it('adds up to the page views on the page in the default rehearsal, with no capture refused', () => {
    const byKind = flat.pageViews.maintenancePageByKind;
    expect(byKind.pageViews).toBe(flat.pageViews.maintenancePage);
    expect(byKind.pageViews).toBeGreaterThan(0);
    expect(byKind).toEqual({
      pageViews: flat.pageViews.maintenancePage,
      clicks: 0,
      opens: 0,
      confirmations: 0,
      signUps: 0,
      unsubscribes: 0,
    });
    // The flat profile keeps every rate: 20 page views and 51 writes each second.
    const seconds = (flat.pageViews.served + flat.pageViews.maintenancePage) / 20;
    expect(Number.isInteger(seconds)).toBe(true);
    expect(flat.messages.produced).toBe(51 * seconds);
  });

  it('adds up to the writes refused at the capture paths when they go down with the page', async () => {
    const mutant = MORE_MUTANTS.find(
      (m) => m.name === 'the page rule takes priority over the capture rules',
    );
    const r = await rehearse({ app, functionEntries: mutant?.functionEntries });
    const { pageViews, ...captures } = r.pageViews.maintenancePageByKind;
    expect(pageViews).toBe(r.pageViews.maintenancePage);
    const refused = Object.values(captures).reduce((a, b) => a + b, 0);
    // Every lost write was refused at the door (the invariant says so).
    expect(refused).toBe(r.messages.lost);
    expect(r.invariants.violations).toContain(
      `nothing-lost: ${refused} writes lost (${refused} refused at the capture paths)`,
    );
    expect(captures.clicks).toBe(DEFAULT_RATES.clicks * r.captureUnavailableSeconds);
    expect(captures.confirmations).toBe(DEFAULT_RATES.confirmations * r.captureUnavailableSeconds);
  });

  it('follows the diurnal profile: at 04:00, about 0.15 of the flat traffic', async () => {
    const r = await rehearse({ app, traffic: 'diurnal' });
    expect(r.invariants).toEqual({ ok: true, violations: [] });
    const total = (p: RehearsalReport['pageViews']) => p.served + p.maintenancePage;
    const ratio = total(r.pageViews) / total(flat.pageViews);
    expect(ratio).toBeGreaterThan(0.135);
    expect(ratio).toBeLessThan(0.165);
    expect(r.pageViews.maintenancePageByKind.pageViews).toBe(r.pageViews.maintenancePage);
  });
});
