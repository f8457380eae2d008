import FakeTimers from '@sinonjs/fake-timers';

/**
 * Virtual time for a rehearsal: a discrete-event simulation on @sinonjs/fake-timers. While a
 * simulation runs, `setTimeout` and `Date` are virtual, so everything that waits (the ASL
 * interpreter's Wait states, its Retry backoff with jitter, its Task timeouts, the model's
 * latencies, the consumers' polling) waits on one clock, and the clock jumps from one timer
 * to the next once every promise has settled. `Math.random` is seeded for the same reason:
 * the interpreter draws its retry jitter from it, and a rehearsal must be repeatable.
 */
export class Simulation {
  readonly startMs: number;
  private clock: ReturnType<ReturnType<typeof FakeTimers.withGlobal>['install']> | undefined;
  private readonly random: () => number;

  constructor(start: string | number, seed = 42) {
    this.startMs = typeof start === 'number' ? start : Date.parse(start);
    this.random = mulberry32(seed);
  }

  /** Now, in virtual ms since the epoch. */
  now(): number {
    if (this.clock === undefined) throw new Error('the simulation is not running');
    return this.clock.now;
  }

  /** Virtual seconds since the start. */
  elapsed(): number {
    return (this.now() - this.startMs) / 1000;
  }

  /** Waits this many virtual seconds. */
  sleep(seconds: number): Promise<void> {
    if (seconds <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  }

  /** A seeded draw in [0, 1), for the model's own randomness. */
  draw(): number {
    return this.random();
  }

  /**
   * Runs `main` in virtual time and returns its result. Other processes started meanwhile
   * (traffic, consumers) keep their timers; they stop with the simulation.
   */
  async run<T>(main: () => Promise<T>): Promise<T> {
    if (Simulation.running) throw new Error('another simulation is already running');
    Simulation.running = true;
    const realRandom = Math.random;
    const realImmediate = setImmediate;
    this.clock = FakeTimers.withGlobal(globalThis).install({
      now: this.startMs,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    Math.random = this.random;
    const settle = () => new Promise<void>((resolve) => realImmediate(resolve));
    try {
      let outcome: { value: T } | { error: unknown } | undefined;
      main().then(
        (value) => (outcome = { value }),
        (error: unknown) => (outcome = { error }),
      );
      await settle();
      while (outcome === undefined) {
        if (this.clock.countTimers() === 0) {
          throw new Error(
            `the rehearsal is stuck at +${this.elapsed()} s: nothing is waiting on the clock`,
          );
        }
        // Fire the next timer, then yield one macrotask: every promise the timer settled
        // has run by then, and has set its own timers.
        this.clock.next();
        await settle();
      }
      if ('error' in outcome) throw outcome.error;
      return outcome.value;
    } finally {
      this.clock.uninstall();
      this.clock = undefined;
      Math.random = realRandom;
      Simulation.running = false;
    }
  }

  private static running = false;
}

/** A small seeded PRNG, so a rehearsal is repeatable. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
