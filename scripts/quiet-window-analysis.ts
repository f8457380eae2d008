/**
 * Finds the quietest windows of a given length, per weekday, in a load balancer's request
 * counts: the analysis behind `npm run quiet-window`, without any I/O.
 *
 * Traffic follows people, and people follow local time, so the weeks are laid out in the
 * schedule's time zone: a window is a local weekday and time, as the schedule's cron
 * expression is (EventBridge Scheduler evaluates cron in the schedule's time zone).
 * https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html#time-zones
 *
 * Each datapoint is the Sum of RequestCount over one period. The load balancer reports
 * nothing for a minute in which no request came ("If there are no requests flowing through
 * the load balancer or no data for a metric, the metric is not reported"), so a missing
 * datapoint inside the range counts as 0 requests.
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
 *
 * A daylight-saving change is handled by counting minutes, not slots: in a week that falls
 * back, one local hour holds two hours of data; in one that springs forward, an hour holds
 * none, and windows that need it skip that week.
 */

export const WEEKDAYS = [
  'Monday',
  'Tuesday',
  'Wednesday',
  'Thursday',
  'Friday',
  'Saturday',
  'Sunday',
] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const MINUTES_PER_WEEK = 7 * 24 * 60;
/** A week whose request rate is below this share of the median week's is left out. */
export const OUTAGE_SHARE = 0.25;
/** A week counts for a window only if its data covers this share of the window's minutes. */
const MIN_COVERAGE = 0.9;

export interface Series {
  /** Period of each datapoint, in seconds (a multiple of 60). */
  periodSeconds: number;
  /** The range the series covers, [startMs, endMs): datapoints missing inside it count 0. */
  startMs: number;
  endMs: number;
  points: { t: number; value: number }[];
}

export interface Window {
  weekday: Weekday;
  /** Local start, "HH:MM", in the analysis time zone. */
  startLocal: string;
  /** Its UTC start at the next occurrence after the data ends, "HH:MM". */
  startUtc: string;
  /** The UTC weekday of that occurrence (differs from `weekday` near midnight). */
  weekdayUtc: Weekday;
  lengthMinutes: number;
  /**
   * Expected requests per minute: the median of the weekly rates, so one week with an outage
   * (or a campaign burst) in the window does not decide it.
   */
  requestsPerMinute: number;
  /** Week-to-week spread: the coefficient of variation of the weekly rates (0 = identical). */
  variation: number;
  /** Requests per minute in each week that counted, oldest first. */
  weekly: number[];
  /** The busiest single minute (in requests per minute) in the window, in any counted week. */
  peakPerMinute: number;
  /** Datapoints the window holds, over the counted weeks: 0 is silence, or a metrics gap. */
  datapoints: number;
}

export interface ExcludedWeek {
  /** Local date of the week's Monday, YYYY-MM-DD. */
  week: string;
  share: number;
}

export interface Analysis {
  timeZone: string;
  periodSeconds: number;
  lengthMinutes: number;
  weeks: number;
  excluded: ExcludedWeek[];
  /** Datapoints absent inside the range, counted as 0 requests. */
  missingPoints: number;
  expectedPoints: number;
  /** One per weekday, quietest first. */
  windows: Window[];
}

/** Local wall-clock parts of an instant in `timeZone`. */
function localParts(ms: number, format: Intl.DateTimeFormat) {
  const parts = Object.fromEntries(format.formatToParts(ms).map((p) => [p.type, p.value]));
  const weekday = WEEKDAYS.findIndex((d) => d.startsWith(parts.weekday ?? ''));
  return {
    weekday,
    minute: (Number(parts.hour) % 24) * 60 + Number(parts.minute),
    date: `${parts.year}-${parts.month}-${parts.day}`,
  };
}

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat('en-GB', {
    timeZone,
    weekday: 'short',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  });
}

const hhmm = (minute: number) =>
  `${String(Math.floor(minute / 60) % 24).padStart(2, '0')}:${String(minute % 60).padStart(2, '0')}`;

const DAY_MS = 86_400_000;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return sorted.length % 2 === 1
    ? (sorted[Math.floor(mid)] ?? 0)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** The local date of the Monday that starts the week holding `ms`, as a key. */
function weekKey(ms: number, format: Intl.DateTimeFormat): string {
  const p = localParts(ms, format);
  // Back to that Monday's local noon, give or take a daylight-saving hour: still Monday.
  return localParts(ms - p.weekday * DAY_MS + (720 - p.minute) * 60_000, format).date;
}

export function analyze(series: Series, lengthMinutes: number, timeZone: string): Analysis {
  const periodMinutes = series.periodSeconds / 60;
  const slots = MINUTES_PER_WEEK / periodMinutes;
  const windowSlots = lengthMinutes / periodMinutes;
  const format = formatterFor(timeZone);
  const byTime = new Map(series.points.map((p) => [p.t, p.value]));
  const periodMs = series.periodSeconds * 1000;

  // Requests and covered minutes per local week and slot.
  const weeks = new Map<
    string,
    { requests: Float64Array; minutes: Float64Array; present: Float64Array }
  >();
  let missingPoints = 0;
  let expectedPoints = 0;
  for (let t = series.startMs; t < series.endMs; t += periodMs) {
    expectedPoints++;
    const value = byTime.get(t);
    if (value === undefined) missingPoints++;
    const local = localParts(t, format);
    const key = weekKey(t, format);
    let week = weeks.get(key);
    if (week === undefined) {
      week = {
        requests: new Float64Array(slots),
        minutes: new Float64Array(slots),
        present: new Float64Array(slots),
      };
      weeks.set(key, week);
    }
    const slot = Math.floor((local.weekday * 1440 + local.minute) / periodMinutes);
    week.requests[slot] = (week.requests[slot] ?? 0) + (value ?? 0);
    week.minutes[slot] = (week.minutes[slot] ?? 0) + periodMinutes;
    if (value !== undefined) week.present[slot] = (week.present[slot] ?? 0) + 1;
  }

  // Leave out weeks far below the usual: an outage is not a quiet time. Each week is held
  // against the median rate of the same slots in all weeks, over the slots it covers, so a
  // week the range cuts short (only its nights, say) is not mistaken for an outage.
  type Week = { requests: Float64Array; minutes: Float64Array; present: Float64Array };
  const keys = [...weeks.keys()].sort();
  const all = keys.map((k) => weeks.get(k) as Week);
  const usual = Array.from({ length: slots }, (_, slot) =>
    median(
      all
        .filter((w) => (w.minutes[slot] ?? 0) > 0)
        .map((w) => (w.requests[slot] ?? 0) / (w.minutes[slot] ?? 1)),
    ),
  );
  const excluded: ExcludedWeek[] = [];
  const counted = keys.filter((k, i) => {
    const w = all[i] as Week;
    let seen = 0;
    let expected = 0;
    for (let slot = 0; slot < slots; slot++) {
      const minutes = w.minutes[slot] ?? 0;
      if (minutes === 0) continue;
      seen += w.requests[slot] ?? 0;
      expected += (usual[slot] ?? 0) * minutes;
    }
    const share = expected === 0 ? 1 : seen / expected;
    if (keys.length > 1 && share < OUTAGE_SHARE) {
      excluded.push({ week: k, share });
      return false;
    }
    return true;
  });

  // Prefix sums over each week and the week after it, so a window may run past Sunday
  // midnight into the next Monday (not this week's: that is six days earlier). A next week
  // that is left out or outside the range counts as no data.
  const countedSet = new Set(counted);
  const nextWeek = (k: string) =>
    new Date(Date.parse(`${k}T12:00:00Z`) + 7 * DAY_MS).toISOString().slice(0, 10);
  const none: Week = {
    requests: new Float64Array(slots),
    minutes: new Float64Array(slots),
    present: new Float64Array(slots),
  };
  const prefix = counted.map((k) => {
    const w = weeks.get(k) as Week;
    const after = countedSet.has(nextWeek(k)) ? (weeks.get(nextWeek(k)) as Week) : none;
    const req = new Float64Array(2 * slots + 1);
    const min = new Float64Array(2 * slots + 1);
    for (let i = 0; i < 2 * slots; i++) {
      const week = i < slots ? w : after;
      req[i + 1] = (req[i] ?? 0) + (week.requests[i % slots] ?? 0);
      min[i + 1] = (min[i] ?? 0) + (week.minutes[i % slots] ?? 0);
    }
    return { req, min };
  });

  const windows: Window[] = [];
  const slotsPerDay = 1440 / periodMinutes;
  for (let day = 0; day < 7; day++) {
    let best: Omit<Window, 'startUtc' | 'weekdayUtc' | 'peakPerMinute' | 'datapoints'> | undefined;
    let bestSlot = 0;
    for (let s = day * slotsPerDay; s < (day + 1) * slotsPerDay; s++) {
      const weekly: number[] = [];
      for (const p of prefix) {
        const minutes = (p.min[s + windowSlots] ?? 0) - (p.min[s] ?? 0);
        if (minutes < MIN_COVERAGE * lengthMinutes) continue;
        weekly.push(((p.req[s + windowSlots] ?? 0) - (p.req[s] ?? 0)) / minutes);
      }
      if (weekly.length === 0) continue;
      const mean = weekly.reduce((a, b) => a + b, 0) / weekly.length;
      const sd = Math.sqrt(weekly.reduce((a, b) => a + (b - mean) ** 2, 0) / weekly.length);
      const variation = mean === 0 ? 0 : sd / mean;
      const expected = median(weekly);
      if (
        best === undefined ||
        expected < best.requestsPerMinute - 1e-9 ||
        (Math.abs(expected - best.requestsPerMinute) <= 1e-9 && variation < best.variation)
      ) {
        bestSlot = s;
        best = {
          weekday: WEEKDAYS[day] ?? 'Monday',
          startLocal: hhmm((s - day * slotsPerDay) * periodMinutes),
          lengthMinutes,
          requestsPerMinute: expected,
          variation,
          weekly,
        };
      }
    }
    if (best !== undefined) {
      const next = nextOccurrence(series.endMs, best.weekday, best.startLocal, format);
      // The busiest datapoint in the window, any counted week: at the datapoints' period, so
      // with 5-minute datapoints a 5-minute average, not one minute's count.
      let peak = 0;
      let datapoints = 0;
      for (const k of counted) {
        const after = countedSet.has(nextWeek(k)) ? (weeks.get(nextWeek(k)) as Week) : none;
        for (let i = bestSlot; i < bestSlot + windowSlots; i++) {
          const w = i < slots ? (weeks.get(k) as Week) : after;
          const minutes = w.minutes[i % slots] ?? 0;
          if (minutes > 0) peak = Math.max(peak, (w.requests[i % slots] ?? 0) / minutes);
          datapoints += w.present[i % slots] ?? 0;
        }
      }
      windows.push({
        ...best,
        startUtc: next.startUtc,
        weekdayUtc: next.weekdayUtc,
        peakPerMinute: peak,
        datapoints,
      });
    }
  }
  windows.sort((a, b) => a.requestsPerMinute - b.requestsPerMinute || a.variation - b.variation);
  return {
    timeZone,
    periodSeconds: series.periodSeconds,
    lengthMinutes,
    weeks: counted.length,
    excluded,
    missingPoints,
    expectedPoints,
    windows,
  };
}

/** The first instant after `fromMs` whose local weekday and time are the window's start. */
function nextOccurrence(
  fromMs: number,
  weekday: Weekday,
  startLocal: string,
  format: Intl.DateTimeFormat,
): { startUtc: string; weekdayUtc: Weekday } {
  const day = WEEKDAYS.indexOf(weekday);
  const minute = Number(startLocal.slice(0, 2)) * 60 + Number(startLocal.slice(3));
  const first = Math.ceil(fromMs / 60_000) * 60_000;
  // Minute by minute over a week and a day: at most 11,520 steps, once per weekday.
  for (let t = first; t < first + 8 * DAY_MS; t += 60_000) {
    const p = localParts(t, format);
    if (p.weekday === day && p.minute === minute) {
      const d = new Date(t);
      return {
        startUtc: hhmm(d.getUTCHours() * 60 + d.getUTCMinutes()),
        weekdayUtc: WEEKDAYS[(d.getUTCDay() + 6) % 7] ?? 'Monday',
      };
    }
  }
  // A local time that a daylight-saving change skips in the coming week: show it unshifted.
  return { startUtc: startLocal, weekdayUtc: weekday };
}

/** EventBridge Scheduler's cron for the window's local start: minutes hours ? * DAY *. */
export function scheduleFor(window: Window): string {
  const [h, m] = window.startLocal.split(':').map(Number);
  return `cron(${m} ${h} ? * ${window.weekday.slice(0, 3).toUpperCase()} *)`;
}
