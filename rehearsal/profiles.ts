import * as v from 'valibot';
import { mulberry32 } from './sim';
import { TRAFFIC_KINDS, type TrafficKind } from './traffic';
import { shown as show, valueAt } from '../lambda/shared/formats';

/**
 * The shape of the traffic over the day: for a kind and a virtual instant (ms since the
 * epoch), the multiplier on that kind's base rate (DEFAULT_RATES, or --rate).
 */
export type TrafficProfile = (kind: TrafficKind, atMs: number) => number;

/** A campaign send: people open it, click through and land on the site. */
export interface CampaignSpec {
  /** "HH:MM" (UTC, on the rehearsal's first day) or an ISO time with its date. */
  at: string;
  /** The multiplier at the send. */
  factor: number;
  /** The burst above normal traffic halves every this many minutes. */
  halfLifeMinutes: number;
  /** The kinds the campaign drives. */
  kinds: TrafficKind[];
}

/** A daily curve with noise and campaign bursts, as data (what `--traffic FILE` holds). */
export interface TrafficProfileSpec {
  name: string;
  /** The multiplier at the start of each UTC hour, 00:00 first; linear in between. */
  hourly: number[];
  /** Each minute's multiplier is off by up to this fraction, either way (0.1: ±10%). */
  noise: number;
  /** Seeds the noise: the same seed, the same numbers. */
  seed: number;
  campaigns: CampaignSpec[];
}

export const PROFILE_NAMES = ['flat', 'diurnal'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

/** The traffic the rehearsal ran before it had a shape: the base rates, every second. */
export const FLAT: TrafficProfile = () => 1;

/**
 * The default diurnal profile. Every number is an assumption, not a measurement: an email
 * platform whose readers are mostly in European time zones (UTC to UTC+2).
 * - `hourly`: quiet from 03:00 to 05:00 (0.15, people asleep), up through the morning as
 *   mail is read on the way to work, a peak of 1.6 at 12:00 (lunch), a slow afternoon and
 *   evening decline. The 24 factors average 1.0, so a base rate is the day's mean rate.
 * - `noise`: 0.1, each minute ±10% around the curve.
 * - `seed`: 1, any fixed number; it only makes the noise repeatable.
 * - the campaign: the day's newsletter, sent at 12:00 UTC; at the send opens and clicks, and
 *   the page views of people landing on the site, run at 6 times the curve, and the burst
 *   above the curve halves every 10 minutes (about 90% of it is over within 35 minutes).
 */
export const DIURNAL: TrafficProfileSpec = {
  name: 'diurnal',
  hourly: [
    0.55, 0.35, 0.2, 0.15, 0.15, 0.15, 0.3, 0.6, 0.95, 1.25, 1.45, 1.55, 1.6, 1.55, 1.5, 1.5, 1.5,
    1.5, 1.4, 1.4, 1.35, 1.25, 1.0, 0.8,
  ],
  noise: 0.1,
  seed: 1,
  campaigns: [
    { at: '12:00', factor: 6, halfLifeMinutes: 10, kinds: ['clicks', 'opens', 'pageViews'] },
  ],
};

/**
 * Sends follow the platform's schedule, not readers' hours or whims: only a campaign that
 * names them moves them.
 */
const STEADY: readonly TrafficKind[] = ['sends'];

/**
 * The profile for a name or a spec. `startMs` is the rehearsal's start: a campaign at
 * "HH:MM" is at that time on its day (UTC).
 */
export function trafficProfile(
  choice: ProfileName | TrafficProfileSpec,
  startMs: number,
): TrafficProfile {
  if (choice === 'flat') return FLAT;
  const spec = choice === 'diurnal' ? DIURNAL : parseTrafficProfile(choice);
  const day = Math.floor(startMs / DAY_MS) * DAY_MS;
  const campaigns = spec.campaigns.map((c) => ({
    ...c,
    atMs: campaignTime(c.at, day),
    halfLifeMs: c.halfLifeMinutes * 60_000,
  }));
  return (kind, atMs) => {
    let factor = 1;
    if (!STEADY.includes(kind)) {
      factor =
        hourlyFactor(spec.hourly, atMs) * (1 + spec.noise * noiseDraw(spec.seed, kind, atMs));
    }
    // Bursts add up: two campaigns an hour apart each bring their own readers.
    let burst = 0;
    for (const c of campaigns) {
      if (atMs < c.atMs || !c.kinds.includes(kind)) continue;
      burst += (c.factor - 1) * 0.5 ** ((atMs - c.atMs) / c.halfLifeMs);
    }
    return factor * (1 + burst);
  };
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

function hourlyFactor(hourly: readonly number[], atMs: number): number {
  const hours = (((atMs % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS;
  const h = Math.floor(hours);
  const from = hourly[h] ?? 1;
  const to = hourly[(h + 1) % 24] ?? 1;
  return from + (to - from) * (hours - h);
}

/**
 * A draw in [-1, 1) for a kind's minute, the same whatever asked before it: seeded by the
 * profile's seed, the minute and the kind, so a run gives the same numbers however its
 * seconds interleave with the rest of the simulation.
 */
function noiseDraw(seed: number, kind: TrafficKind, atMs: number): number {
  const minute = Math.floor(atMs / 60_000);
  const mixed = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(minute, 0xc2b2ae35);
  return mulberry32(mixed ^ Math.imul(TRAFFIC_KINDS.indexOf(kind) + 1, 0x27d4eb2f))() * 2 - 1;
}

function campaignTime(at: string, dayMs: number): number {
  const clock = CLOCK.exec(at);
  if (clock === null) return Date.parse(at);
  return dayMs + Number(clock[1]) * HOUR_MS + Number(clock[2]) * 60_000;
}

const CLOCK = /^([01]\d|2[0-3]):([0-5]\d)$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/** A traffic file that does not describe a profile: every problem, each naming its field. */
export class TrafficProfileError extends Error {
  override readonly name = 'TrafficProfileError';
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
  }
}

const factor = (min: number, message: string) =>
  v.pipe(v.number(message), v.finite(message), v.minValue(min, message));
const kindsMessage = `must list kinds among ${TRAFFIC_KINDS.join(', ')}`;

const schema = v.strictObject({
  name: v.pipe(v.string('must be a string'), v.nonEmpty('must not be empty')),
  hourly: v.pipe(
    v.array(factor(0, 'must be a number of 0 or more'), 'must be a list of 24 factors'),
    v.length(24, 'must list 24 factors, one per UTC hour from 00:00'),
  ),
  noise: v.optional(
    v.pipe(
      v.number('must be a fraction from 0 to 1'),
      v.minValue(0, 'must be a fraction from 0 to 1'),
      v.maxValue(1, 'must be a fraction from 0 to 1'),
    ),
    0,
  ),
  seed: v.optional(
    v.pipe(
      v.number('must be a whole number from 0 to 4294967295'),
      v.integer('must be a whole number from 0 to 4294967295'),
      v.minValue(0, 'must be a whole number from 0 to 4294967295'),
      v.maxValue(0xffffffff, 'must be a whole number from 0 to 4294967295'),
    ),
    1,
  ),
  campaigns: v.optional(
    v.array(
      v.strictObject({
        at: v.pipe(
          v.string('must be "HH:MM" (UTC) or an ISO time'),
          v.check(
            (at) => CLOCK.test(at) || (ISO.test(at) && Number.isFinite(Date.parse(at))),
            'must be "HH:MM" (UTC, on the rehearsal\'s first day) or an ISO time such as "2026-11-22T12:00:00Z"',
          ),
        ),
        factor: factor(1, 'must be a number of at least 1 (6: six times the traffic at the send)'),
        halfLifeMinutes: v.pipe(
          v.number('must be a number of minutes above 0'),
          v.finite('must be a number of minutes above 0'),
          v.gtValue(0, 'must be a number of minutes above 0'),
        ),
        kinds: v.optional(
          v.pipe(
            v.array(v.picklist(TRAFFIC_KINDS, kindsMessage), kindsMessage),
            v.nonEmpty(kindsMessage),
          ),
          ['clicks', 'opens', 'pageViews'],
        ),
      }),
      'must be a list of campaigns',
    ),
    [],
  ),
});

/** A traffic file's object as a profile spec, or every problem with it. */
export function parseTrafficProfile(raw: unknown): TrafficProfileSpec {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new TrafficProfileError([`the profile must be a JSON object, got: ${show(raw)}`]);
  }
  const result = v.safeParse(schema, raw);
  if (result.success) return result.output;
  throw new TrafficProfileError(result.issues.map((issue) => problem(raw, issue)));
}

/** One problem, naming the field (`campaigns[0].factor`) and showing the value received. */
function problem(raw: unknown, issue: v.InferIssue<typeof schema>): string {
  const keys = (issue.path ?? []).map((item) => item.key as PropertyKey);
  const name = (path: readonly PropertyKey[]) =>
    path
      .map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`))
      .join('') || 'the profile';
  // valibot reports an unknown key, and a missing one, with the key last in the path.
  if (issue.path?.at(-1)?.origin === 'key') {
    if (issue.expected === 'never') {
      return `${name(keys.slice(0, -1))} has an unknown key: ${String(keys.at(-1))}`;
    }
    return `${name(keys)} is required, got: (missing)`;
  }
  return `${name(keys)} ${issue.message}, got: ${show(valueAt(raw, keys))}`;
}
