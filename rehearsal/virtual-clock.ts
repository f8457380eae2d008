/**
 * Virtual time for running the upgrade locally: Wait states take no real time, and the clock
 * moves by what they would have waited. `Date` is patched while a run is in progress so the
 * interpreter's timestamps ($$.Execution.StartTime, $$.State.EnteredTime) are virtual too.
 *
 * Map iterations run in parallel: each item has its own lane, which starts at the time the
 * lane is first seen; when the run leaves the Map, the clock jumps to the latest lane.
 */
export class VirtualClock {
  private nowMs: number;
  private lanes = new Map<string, number>();
  private mapStart: number | undefined;
  private realDate: DateConstructor | undefined;
  private installs = 0;
  private restoreDate: (() => void) | undefined;
  private readonly listeners: ((fromMs: number, toMs: number) => void)[] = [];

  /** Called with each stretch of main-line time that passes (traffic flows meanwhile). */
  onAdvance(listener: (fromMs: number, toMs: number) => void): void {
    this.listeners.push(listener);
  }

  private moveTo(toMs: number): void {
    const from = this.nowMs;
    if (toMs <= from) return;
    for (const listener of this.listeners) listener(from, toMs);
    this.nowMs = toMs;
  }

  constructor(start: string | number) {
    this.nowMs = typeof start === 'number' ? start : Date.parse(start);
  }

  /** Now, on the main line or in a Map item's lane. */
  now(lane?: string): number {
    if (lane === undefined) return this.nowMs;
    const time = this.lanes.get(lane);
    if (time !== undefined) return time;
    // A lane starts when the Map does: its first call comes before any lane has waited.
    const start = this.mapStart ?? this.nowMs;
    this.mapStart = start;
    this.lanes.set(lane, start);
    return start;
  }

  iso(lane?: string): string {
    return new (this.realDate ?? Date)(this.now(lane)).toISOString();
  }

  advance(seconds: number, lane?: string): void {
    if (lane === undefined) {
      this.join();
      this.moveTo(this.nowMs + seconds * 1000);
    } else {
      const time = this.now(lane) + seconds * 1000;
      this.lanes.set(lane, time);
      // Traffic flows on the latest lane's time: the Map's items run side by side.
      this.moveTo(time);
    }
  }

  /** Back on the main line: the Map took as long as its slowest item. */
  join(): void {
    if (this.lanes.size === 0) return;
    const latest = Math.max(this.nowMs, ...this.lanes.values());
    this.lanes.clear();
    this.mapStart = undefined;
    this.moveTo(latest);
  }

  /**
   * Patches Date so `new Date()` and `Date.now()` read this clock. Returns the undo. Nested
   * installs (two executions at once) share one patch.
   */
  install(): () => void {
    this.installs += 1;
    if (this.installs === 1) {
      const RealDate = Date;
      this.realDate = RealDate;
      // eslint-disable-next-line @typescript-eslint/no-this-alias
      const clock = this;
      class VirtualDate extends RealDate {
        constructor(...args: unknown[]) {
          if (args.length === 0) super(clock.now());
          else super(...(args as [string | number]));
        }
        static override now(): number {
          return clock.now();
        }
      }
      globalThis.Date = VirtualDate as DateConstructor;
      this.restoreDate = () => {
        globalThis.Date = RealDate;
        this.realDate = undefined;
      };
    }
    return () => {
      this.installs -= 1;
      if (this.installs === 0) this.restoreDate?.();
    };
  }
}
