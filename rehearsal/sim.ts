import FakeTimers from '@sinonjs/fake-timers';
import timersModule from 'node:timers';
import timersPromises from 'node:timers/promises';

/**
 * Virtual time for a rehearsal: a discrete-event simulation. While a simulation runs,
 * `setTimeout`, `setInterval` and `Date` are virtual, so everything that waits (the ASL
 * interpreter's Wait states, its Retry backoff with jitter, its Task timeouts, the model's
 * latencies, the consumers' polling) waits on one clock, and the clock jumps from one timer
 * to the next once every promise has settled. `Math.random` is seeded for the same reason:
 * the interpreter draws its retry jitter from it, and a rehearsal must be repeatable.
 *
 * `Date` is @sinonjs/fake-timers'. The timers are a heap of our own that keeps
 * fake-timers' rules (below): a run fires over a hundred thousand of them, and fake-timers
 * spends several microseconds and a handful of objects on each.
 */
export class Simulation {
  readonly startMs: number;
  private clock: VirtualClock | undefined;
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
    const realNextTick = process.nextTick;
    const clock = new VirtualClock(this.startMs);
    this.clock = clock;
    const uninstall = clock.install();
    Math.random = this.random;
    // process.nextTick callbacks of the simulated code (a stream's write callback, say),
    // counted since the last timer fired.
    let ticks = 0;
    process.nextTick = (...args: Parameters<typeof process.nextTick>) => {
      ticks += 1;
      realNextTick(...args);
    };
    // Lets every promise the last timer settled run, and every promise those settle, until
    // none is left. Node runs the microtask queue to empty before it runs the next
    // process.nextTick callback, so one tick of our own does it, unless the simulated code
    // queued ticks too: they may queue more microtasks, and only a macrotask waits for all
    // of them. A macrotask per timer costs a turn of the event loop (about 20 µs, the bulk
    // of a run's idle time); most timers need none.
    const settle = async () => {
      await new Promise<void>((resolve) => realNextTick(resolve));
      if (ticks > 0) await new Promise<void>((resolve) => realImmediate(resolve));
      ticks = 0;
    };
    try {
      let outcome: { value: T } | { error: unknown } | undefined;
      main().then(
        (value) => (outcome = { value }),
        (error: unknown) => (outcome = { error }),
      );
      await settle();
      while (outcome === undefined) {
        if (clock.countTimers() === 0) {
          throw new Error(
            `the rehearsal is stuck at +${this.elapsed()} s: nothing is waiting on the clock`,
          );
        }
        // Fire the next timer, then let everything it set off run: every promise the timer
        // settled has run by then, and has set its own timers. Timers due at the same
        // instant fire one by one, each after the last one's effects, as they were set.
        clock.next();
        await settle();
      }
      if ('error' in outcome) throw outcome.error;
      return outcome.value;
    } finally {
      uninstall();
      this.clock = undefined;
      Math.random = realRandom;
      process.nextTick = realNextTick;
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

interface Timer {
  id: number;
  /** When it fires, in virtual ms. */
  callAt: number;
  /** Set order: of timers due at the same ms, the one set first fires first. */
  order: number;
  delay: number;
  interval: number | undefined;
  func: (...args: unknown[]) => void;
  args: unknown[];
  /** Its place in the heap, -1 once it is out. */
  index: number;
}

/**
 * What `setTimeout` returns, as on Node.js and fake-timers: its number is the id. A class, so
 * that a timer costs one object, not five closures.
 */
class TimerHandle {
  private refed = true;

  constructor(
    private readonly clock: VirtualClock,
    private readonly timer: Timer,
  ) {}

  ref(): this {
    this.refed = true;
    return this;
  }

  unref(): this {
    this.refed = false;
    return this;
  }

  hasRef(): boolean {
    return this.refed;
  }

  refresh(): this {
    this.clock.refresh(this.timer);
    return this;
  }

  [Symbol.toPrimitive](): number {
    return this.timer.id;
  }
}

// fake-timers' limits: a delay past a signed 32-bit ms fires at once (as in browsers and
// Node.js); ids start high, so a native timer's id (a small number) is never taken for one.
const MAX_TIMEOUT = 2 ** 31 - 1;
const ID_START = 1e12;

/**
 * The simulation's timers, with @sinonjs/fake-timers' rules, so that a rehearsal is the same
 * run as on fake-timers: a delay is normalised as there (a non-number is parsed, a
 * non-finite one is 0, a negative one 0, one past MAX_TIMEOUT 1) and then truncated to whole
 * ms (`parseInt(String(delay))`); a zero delay set while a timer fires counts as 1 ms; due
 * timers fire by time, then in the order they were set; an interval is set again, as a new
 * timer in that order, before its callback runs; clearTimeout and clearInterval clear either
 * kind, and leave native timers alone. `Date` is fake-timers' own, kept at this clock's time.
 * https://github.com/sinonjs/fake-timers/blob/main/src/fake-timers-src.js
 */
class VirtualClock {
  now: number;
  private readonly heap: Timer[] = [];
  private readonly byId = new Map<number, Timer>();
  private nextId = ID_START;
  private nextOrder = 0;
  private duringTick = false;
  private dateClock: ReturnType<ReturnType<typeof FakeTimers.withGlobal>['install']> | undefined;

  constructor(start: number) {
    this.now = start;
  }

  /** Puts the virtual timers and Date in place of the real ones; returns the undo. */
  install(): () => void {
    const dateClock = FakeTimers.withGlobal(globalThis).install({
      now: this.now,
      toFake: ['Date'],
    });
    this.dateClock = dateClock;
    const fakes = {
      setTimeout: (func: unknown, delay?: unknown, ...args: unknown[]) =>
        this.add(func, delay, args, false),
      clearTimeout: (handle: unknown) => this.clear(handle),
      setInterval: (func: unknown, delay?: unknown, ...args: unknown[]) =>
        this.add(func, parseInt(String(delay), 10), args, true),
      clearInterval: (handle: unknown) => this.clear(handle),
    };
    const undo: (() => void)[] = [];
    const replace = (target: object, name: string, value: unknown) => {
      const t = target as Record<string, unknown>;
      const own = Object.prototype.hasOwnProperty.call(t, name);
      const original = t[name];
      t[name] = value;
      undo.push(() => {
        if (own) t[name] = original;
        else Reflect.deleteProperty(t, name);
      });
    };
    for (const [name, fake] of Object.entries(fakes)) {
      replace(globalThis, name, fake);
      replace(timersModule, name, fake);
    }
    // fake-timers makes these virtual too; nothing here uses them, and a real wait in the
    // middle of a simulation would be a silent error.
    for (const name of ['setTimeout', 'setInterval']) {
      replace(timersPromises, name, () => {
        throw new Error(`the simulation has no virtual timers/promises ${name}; use ${name}`);
      });
    }
    return () => {
      for (const u of undo.reverse()) u();
      dateClock.uninstall();
    };
  }

  countTimers(): number {
    return this.heap.length;
  }

  /** Fires the next timer, moving the clock to its time. */
  next(): void {
    const timer = this.heap[0];
    if (timer === undefined) return;
    this.duringTick = true;
    try {
      this.setNow(timer.callAt);
      if (timer.interval !== undefined) {
        this.remove(timer);
        timer.callAt += timer.interval;
        timer.order = this.nextOrder++;
        this.push(timer);
      } else {
        this.byId.delete(timer.id);
        this.remove(timer);
      }
      timer.func.apply(null, timer.args);
    } finally {
      this.duringTick = false;
    }
  }

  private setNow(now: number): void {
    this.now = now;
    if (this.dateClock !== undefined) this.dateClock.now = now;
  }

  private add(func: unknown, delay: unknown, args: unknown[], repeat: boolean): TimerHandle {
    if (func === undefined) throw new Error('Callback must be provided to timer calls');
    if (typeof func !== 'function') {
      throw new TypeError(
        `[ERR_INVALID_CALLBACK]: Callback must be a function. Received ${String(func)} of type ${typeof func}`,
      );
    }
    let d = typeof delay === 'number' ? delay : parseInt(delay as string, 10);
    if (!Number.isFinite(d)) d = 0;
    d = d > MAX_TIMEOUT ? 1 : d;
    d = Math.max(0, d);
    let interval: number | undefined;
    if (repeat) {
      interval = Number.isFinite(delay) ? (delay as number) : 1;
      interval = interval > MAX_TIMEOUT ? 1 : interval;
    }
    const timer: Timer = {
      id: this.nextId++,
      callAt: this.callAt(d),
      order: this.nextOrder++,
      delay: d,
      interval,
      func: func as Timer['func'],
      args,
      index: -1,
    };
    this.byId.set(timer.id, timer);
    this.push(timer);
    return new TimerHandle(this, timer);
  }

  private callAt(delay: number): number {
    return this.now + (parseInt(String(delay)) || (this.duringTick ? 1 : 0));
  }

  /** Sets the timer again (even one that fired or was cleared), its delay from now. */
  refresh(timer: Timer): void {
    timer.callAt = this.callAt(timer.delay);
    this.remove(timer);
    timer.order = this.nextOrder++;
    this.byId.set(timer.id, timer);
    this.push(timer);
  }

  private clear(handle: unknown): void {
    if (!handle) return;
    const id = Number(handle);
    const timer = this.byId.get(id);
    if (timer === undefined) return;
    this.byId.delete(id);
    this.remove(timer);
  }

  // A binary min-heap on (callAt, order).
  private before(a: Timer, b: Timer): boolean {
    return a.callAt < b.callAt || (a.callAt === b.callAt && a.order < b.order);
  }

  private push(timer: Timer): void {
    timer.index = this.heap.length;
    this.heap.push(timer);
    this.up(timer.index);
  }

  private remove(timer: Timer): void {
    const i = timer.index;
    if (i < 0) return;
    const last = this.heap.pop() as Timer;
    timer.index = -1;
    if (last === timer) return;
    this.heap[i] = last;
    last.index = i;
    this.up(i);
    this.down(last.index);
  }

  private up(i: number): void {
    const heap = this.heap;
    const timer = heap[i] as Timer;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Timer;
      if (!this.before(timer, p)) break;
      heap[i] = p;
      p.index = i;
      i = parent;
    }
    heap[i] = timer;
    timer.index = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    const timer = heap[i] as Timer;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.before(heap[right] as Timer, heap[left] as Timer)) child = right;
      const c = heap[child] as Timer;
      if (!this.before(c, timer)) break;
      heap[i] = c;
      c.index = i;
      i = child;
    }
    heap[i] = timer;
    timer.index = i;
  }
}
