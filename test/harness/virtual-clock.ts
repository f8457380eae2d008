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
  private realDate: DateConstructor | undefined;

  constructor(start: string | number) {
    this.nowMs = typeof start === 'number' ? start : Date.parse(start);
  }

  /** Now, on the main line or in a Map item's lane. */
  now(lane?: string): number {
    if (lane === undefined) return this.nowMs;
    return this.lanes.get(lane) ?? this.nowMs;
  }

  iso(lane?: string): string {
    return new (this.realDate ?? Date)(this.now(lane)).toISOString();
  }

  advance(seconds: number, lane?: string): void {
    if (lane === undefined) {
      this.join();
      this.nowMs += seconds * 1000;
    } else {
      this.lanes.set(lane, this.now(lane) + seconds * 1000);
    }
  }

  /** Back on the main line: the Map took as long as its slowest item. */
  join(): void {
    if (this.lanes.size === 0) return;
    this.nowMs = Math.max(this.nowMs, ...this.lanes.values());
    this.lanes.clear();
  }

  /** Patches Date so `new Date()` and `Date.now()` read this clock. Returns the undo. */
  install(): () => void {
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
    return () => {
      globalThis.Date = RealDate;
      this.realDate = undefined;
    };
  }
}
