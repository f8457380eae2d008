import FakeTimers from '@sinonjs/fake-timers';
import timersModule from 'node:timers';
import { Simulation, mulberry32 } from '../../rehearsal/sim';

/*
 * The simulation keeps its own timers, with @sinonjs/fake-timers' rules, so that a rehearsal
 * is the run it was on fake-timers. Here random programs of timers (odd delays, timers set
 * while others fire and from promises, clears, intervals) run on both, and fire in the same
 * order at the same virtual times.
 */

const START = Date.parse('2026-11-22T04:00:00.000Z');

/** Delays that fake-timers normalises: fractions, strings, junk, negatives, past 2^31 - 1. */
const DELAYS: unknown[] = [
  0,
  1,
  0.5,
  1.7,
  25,
  999.9,
  1e-7,
  -5,
  Number.NaN,
  '12',
  '7.9',
  'soon',
  '12px',
  undefined,
  2 ** 31,
  Number.POSITIVE_INFINITY,
  200,
  3000,
];

type Handle = ReturnType<typeof setTimeout>;

/** A program of timers, the same for a seed; it logs what fires, and when. */
function program(seed: number, log: string[]): () => Promise<void> {
  const draw = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(draw() * items.length)] as T;
  const live: Handle[] = [];
  let budget = 300;
  let name = 0;
  const set = (depth: number) => {
    if (budget-- <= 0) return;
    const label = `t${name++}`;
    const delay = pick(DELAYS);
    const use = draw();
    const fire = () => {
      log.push(`${label}@${Date.now() - START}/${new Date().getTime() - START}`);
      if (depth > 6) return;
      const r = draw();
      if (r < 0.3) set(depth + 1);
      else if (r < 0.45) {
        // A timer set from a promise, after the firing: a zero delay stays zero.
        void Promise.resolve().then(() => set(depth + 1));
      } else if (r < 0.6 && live.length > 0) {
        const victim = live.splice(Math.floor(draw() * live.length), 1)[0];
        if (draw() < 0.5) clearTimeout(victim);
        else clearTimeout(Number(victim));
      } else if (r < 0.64 && live.length > 0) {
        // Set again from now, whether it is still waiting, fired or cleared.
        pick(live).refresh();
      } else if (r < 0.7) {
        let left = 1 + Math.floor(draw() * 4);
        const every = pick([0, 1, 7, 50, '3', Number.NaN]);
        const interval: Handle = setInterval(() => {
          log.push(`${label}-every@${Date.now() - START}`);
          if (--left <= 0) clearInterval(interval);
        }, every as number);
      }
      if (draw() < 0.5) set(depth + 1);
    };
    const handle: Handle =
      use < 0.8
        ? setTimeout(fire, delay as number)
        : (timersModule.setTimeout(fire, delay as number) as unknown as Handle);
    live.push(handle);
  };
  return async () => {
    for (let i = 0; i < 12; i++) set(0);
    // The end, after everything the program can set: 7 timers of at most 3 s in a row.
    await new Promise((resolve) => setTimeout(resolve, 1_000_000));
    log.push(`end@${Date.now() - START}`);
  };
}

/** The simulation's loop as it was on fake-timers. */
async function onFakeTimers(main: () => Promise<void>): Promise<void> {
  const clock = FakeTimers.withGlobal(globalThis).install({
    now: START,
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  });
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
  try {
    let done = false;
    void main().then(() => (done = true));
    await settle();
    while (!done) {
      if (clock.countTimers() === 0) throw new Error('stuck');
      clock.next();
      await settle();
    }
  } finally {
    clock.uninstall();
  }
}

describe('the simulation clock', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])(
    'fires random program %i as fake-timers does',
    async (seed) => {
      const expected: string[] = [];
      await onFakeTimers(program(seed, expected));
      const actual: string[] = [];
      await new Simulation(START).run(program(seed, actual));
      expect(expected.length).toBeGreaterThan(20);
      expect(actual).toEqual(expected);
    },
  );

  it('puts the real timers and Date back afterwards', async () => {
    const real = { setTimeout, clearTimeout, setInterval, Date, module: timersModule.setTimeout };
    await new Simulation(START).run(async () => {
      expect(Date.now()).toBe(START);
      expect(setTimeout).not.toBe(real.setTimeout);
      expect(timersModule.setTimeout).not.toBe(real.module);
    });
    expect({
      setTimeout,
      clearTimeout,
      setInterval,
      Date,
      module: timersModule.setTimeout,
    }).toEqual(real);
  });
});
