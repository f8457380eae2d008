import type { Accounting } from './traffic';
import type { WorldEvent } from './world/core';

/**
 * The upgrade's invariants (README, docs/runbook.md section 6), checked on what happened in
 * the world over the whole run
 * (its timeline and its final state), never on what the run says about itself. Each check
 * returns sentences; no sentence means it holds. Every check has a test in which a broken
 * runbook or a broken function makes it fail (test/rehearsal/invariants.test.ts).
 */

/** After the writer is verified, the page goes off within this many seconds. */
export const PAGE_OFF_BOUND_SECONDS = 5;

export type Outcome = 'UPGRADED' | 'ROLLED_BACK' | 'NEEDS_OPERATOR' | 'DRY_RUN' | 'REJECTED';

export interface EndState {
  outcome: Outcome;
  /** The instance named like the source, at the end. */
  writer: { engineVersion: string; readOnly: boolean; deletionProtection: boolean } | null;
  /** Blue had deletion protection at the start and has none at the end. */
  blueUnprotected: boolean;
  /** Instances that were the writer once, are not now, and still take writes. */
  formerWritersTakingWrites: string[];
  /** Moments two instances, each the writer once, took writes at the same time. */
  splitBrains: { t: number; instances: string[] }[];
  /** Parameter groups the run found and changed: drift from the stack's template. */
  groupsChanged: string[];
  /** The web app's writes refused after a switchover while the page was off. */
  writesFailedAfterMaintenance: number;
  currentVersion: string;
  targetVersion: string;
  pageOn: boolean;
  /** Every mapping Enabled or Enabling. */
  consumersOn: boolean;
  deploymentsLeft: number;
  operatorPaged: boolean;
  /** Every consumer's event source mapping. */
  mappings: string[];
  /** `failure.Error` of the first run's output, if it has one. */
  failure?: string;
  /** The second run of the concurrent scenario must be rejected by single flight. */
  secondRun?: Outcome;
}

export function checkInvariants(
  events: WorldEvent[],
  accounting: Accounting,
  end: EndState,
  start: number,
): string[] {
  const at = (t: number) => `+${Math.round((t - start) / 100) / 10} s`;
  const v: string[] = [];
  const timeline = new Timeline(events, end.mappings);

  for (const s of timeline.switchovers()) {
    // While the switchover is in progress, the page is on and no consumer batch is running.
    const gaps = timeline.pageOffWithin(s.start, s.end);
    if (gaps > 0) {
      v.push(
        `page-during-switchover: the maintenance page was off for ${gaps} s of the switchover that started at ${at(s.start)}`,
      );
    }
    for (const b of timeline.batchesOverlapping(s.start, s.end)) {
      v.push(
        `no-batch-during-switchover: a consumer batch ran from ${at(b.start)} to ${b.end === undefined ? 'the end' : at(b.end)}, during the switchover that started at ${at(s.start)}`,
      );
    }
    // Consumers are stopped, nothing in flight, before the switchover starts.
    const notStopped = timeline.mappingsNotDisabledAt(s.start);
    if (notStopped.length > 0) {
      v.push(
        `consumers-stopped-before-switchover: at ${at(s.start)} the mappings ${notStopped.join(', ')} were not Disabled`,
      );
    }
  }

  // Consumers resume, and the page goes off, only once the writer they reach is verified.
  for (const r of timeline.resumesAfterSwitchover()) {
    if (!timeline.writerVerifiedAt(r.t)) {
      v.push(
        `resume-after-verified-writer: a consumer was resumed at ${at(r.t)} before the writer it writes to was verified`,
      );
    }
  }
  for (const off of timeline.pageOffTimesAfterSwitchover()) {
    if (!timeline.writerVerifiedAt(off)) {
      v.push(
        `page-on-until-writer-verified: the maintenance page went off at ${at(off)} before the writer behind it was verified`,
      );
    }
  }

  // The page is not on before green is verified, and goes off soon after the writer is.
  for (const on of timeline.pageOnTimes()) {
    if (!timeline.greenVerifiedBefore(on)) {
      v.push(
        `page-after-green-verified: the maintenance page went on at ${at(on)}, before green was verified`,
      );
    }
  }
  if (end.outcome !== 'NEEDS_OPERATOR') {
    for (const verified of timeline.writerVerificationsWhilePageOn()) {
      const off = timeline.pageOffAfter(verified);
      if (off === undefined || off - verified > PAGE_OFF_BOUND_SECONDS * 1000) {
        v.push(
          `page-off-after-verified-writer: the writer was verified at ${at(verified)} but the page ${off === undefined ? 'never went off' : `went off only at ${at(off)}`} (bound ${PAGE_OFF_BOUND_SECONDS} s)`,
        );
      }
    }
  }

  // The capture endpoints answer whenever the page is on.
  for (const e of events) {
    if (e.kind === 'routing' && e.page && e.captureDown.length > 0) {
      v.push(
        `capture-while-page-on: at ${at(e.t)} the listener answered ${e.captureDown.join(', ')} with the maintenance page`,
      );
    }
  }

  // Nothing is lost, nothing takes effect twice, the DLQ holds only poison.
  const a = accounting;
  if (a.lost > 0) {
    const why = [
      a.refusedAtCapture > 0 ? `${a.refusedAtCapture} refused at the capture paths` : '',
      a.onSetAsideWriter > 0
        ? `${a.onSetAsideWriter} applied only to a writer that was set aside`
        : '',
      a.lost - a.refusedAtCapture - a.onSetAsideWriter > 0
        ? `${a.lost - a.refusedAtCapture - a.onSetAsideWriter} deleted from their queue without an effect`
        : '',
    ].filter((x) => x !== '');
    v.push(`nothing-lost: ${a.lost} writes lost (${why.join('; ')})`);
  }
  if (a.appliedTwice > 0) {
    v.push(
      `nothing-twice: ${a.appliedTwice} rows in the final writer match no write: writes applied again under another key`,
    );
  }
  if (a.goodInDlq > 0)
    v.push(`dlq-only-poison: ${a.goodInDlq} valid writes ended in a dead-letter queue`);
  if (a.poisonNotInDlq > 0)
    v.push(`dlq-only-poison: ${a.poisonNotInDlq} poison messages are not in a dead-letter queue`);

  // IAM: a denied call is a defect of the app's own policies. Not one on a resource that is
  // gone that the policy would allow but for the tags it reads: that is how AWS may answer
  // (an assumption), and the runbook must cope with it. A policy that lacks the action is
  // still a defect, gone resource or not.
  for (const e of events) {
    if (e.kind === 'access-denied' && e.missingResourceTags !== true) {
      v.push(`iam: ${e.principal} was denied ${e.action} on ${e.resource} at ${at(e.t)}`);
    }
  }

  // A green that is only busy or catching up is waited for, not deleted as failed.
  for (const e of events) {
    if (
      e.kind === 'green-deleted' &&
      e.busy !== null &&
      end.failure === 'GreenFailedVerification'
    ) {
      v.push(
        `green-kept-while-catching-up: green was deleted as failed at ${at(e.t)} while it was only ${e.busy}`,
      );
    }
  }

  if (end.secondRun !== undefined && end.secondRun !== 'REJECTED') {
    v.push(
      `single-flight: a second run started during the first ended ${end.secondRun}, not REJECTED`,
    );
  }

  // Never two writers: from the first switchover on, at most one instance that was ever the
  // writer takes writes at any moment, whatever the outcome.
  for (const split of end.splitBrains) {
    v.push(
      `one-writer: at ${at(split.t)} ${split.instances.join(' and ')}, each once the writer, both took writes`,
    );
  }
  v.push(...checkEndState(end, timeline));
  return v;
}

function checkEndState(end: EndState, timeline: Timeline): string[] {
  const v: string[] = [];
  const { outcome, writer } = end;
  const expected = { UPGRADED: end.targetVersion, ROLLED_BACK: end.currentVersion }[
    outcome as 'UPGRADED'
  ];
  if (expected !== undefined && (writer?.engineVersion !== expected || writer.readOnly)) {
    v.push(
      `outcome: ${outcome} but the writer ${writer === null ? 'is missing' : `runs ${writer.engineVersion}${writer.readOnly ? ' and is read-only' : ''}`}`,
    );
  }
  if (
    (outcome === 'UPGRADED' || outcome === 'ROLLED_BACK') &&
    writer?.deletionProtection === false
  ) {
    v.push(`end: ${outcome} but the writer is not protected from deletion`);
  }
  if (end.blueUnprotected) v.push('end: blue lost its deletion protection');
  if (
    (outcome === 'UPGRADED' || outcome === 'ROLLED_BACK') &&
    end.formerWritersTakingWrites.length > 0
  ) {
    v.push(
      `end: ${outcome} but ${end.formerWritersTakingWrites.join(', ')}, once the writer, still takes writes`,
    );
  }
  if (
    (outcome === 'UPGRADED' || outcome === 'ROLLED_BACK') &&
    end.writesFailedAfterMaintenance > 0
  ) {
    v.push(
      `end: ${end.writesFailedAfterMaintenance} user write(s) failed after the page went off (sessions left on a read-only instance)`,
    );
  }
  if (end.groupsChanged.length > 0) {
    v.push(
      `end: the run changed parameter group(s) ${end.groupsChanged.join(', ')}, drifting them from the stack`,
    );
  }
  if ((outcome === 'DRY_RUN' || outcome === 'REJECTED') && timeline.changedAnything()) {
    v.push(`outcome: ${outcome} but something was changed`);
  }
  if (outcome !== 'NEEDS_OPERATOR') {
    if (end.pageOn) v.push('end: the maintenance page is still on');
    if (!end.consumersOn) v.push('end: a consumer is still paused');
  }
  if ((outcome === 'UPGRADED' || outcome === 'ROLLED_BACK') && end.deploymentsLeft > 0) {
    v.push(`end: ${end.deploymentsLeft} blue/green deployment(s) left behind`);
  }
  if (outcome === 'NEEDS_OPERATOR' && !end.operatorPaged)
    v.push('end: NEEDS_OPERATOR without paging');
  return v;
}

/** Questions about the timeline, answered from the events. */
class Timeline {
  constructor(
    private readonly events: WorldEvent[],
    private readonly mappings: string[],
  ) {}

  /** Each switchover: when it started, and when it ended (the end of the run if it did not). */
  switchovers(): { start: number; end: number; ended?: { completed: boolean } }[] {
    const out: { start: number; end: number; ended?: { completed: boolean } }[] = [];
    for (const e of this.events) {
      if (e.kind !== 'switchover-start') continue;
      const ended = this.events.find(
        (x) => x.kind === 'switchover-end' && x.deployment === e.deployment && x.t >= e.t,
      );
      out.push(
        ended?.kind === 'switchover-end'
          ? { start: e.t, end: ended.t, ended: { completed: ended.completed } }
          : { start: e.t, end: this.last() },
      );
    }
    return out;
  }

  private last(): number {
    return this.events.at(-1)?.t ?? 0;
  }

  /** The page's state just after everything that happened at or before t. */
  private pageAt(t: number): boolean {
    let on = false;
    for (const e of this.events) {
      if (e.t > t) break;
      if (e.kind === 'routing') on = e.page;
    }
    return on;
  }

  /** Seconds within (from, to) in which the page was off. */
  pageOffWithin(from: number, to: number): number {
    let on = this.pageAt(from);
    let since = from;
    let off = 0;
    for (const e of this.events) {
      if (e.kind !== 'routing' || e.t <= from || e.t >= to) continue;
      if (!on) off += e.t - since;
      on = e.page;
      since = e.t;
    }
    if (!on) off += to - since;
    return Math.round(off / 100) / 10;
  }

  pageOnTimes(): number[] {
    let on = false;
    const times: number[] = [];
    for (const e of this.events) {
      if (e.kind !== 'routing') continue;
      if (e.page && !on) times.push(e.t);
      on = e.page;
    }
    return times;
  }

  pageOffAfter(t: number): number | undefined {
    return this.events.find((e) => e.kind === 'routing' && !e.page && e.t >= t)?.t;
  }

  private batchIntervals: { start: number; end?: number }[] | undefined;

  batchesOverlapping(from: number, to: number): { start: number; end?: number }[] {
    if (this.batchIntervals === undefined) {
      const ends = new Map<number, number>();
      for (const e of this.events) if (e.kind === 'batch-end') ends.set(e.batch, e.t);
      this.batchIntervals = this.events.flatMap((e) =>
        e.kind === 'batch-start' ? [{ start: e.t, end: ends.get(e.batch) }] : [],
      );
    }
    return this.batchIntervals.filter((b) => b.start < to && (b.end === undefined || b.end > from));
  }

  mappingsNotDisabledAt(t: number): string[] {
    const state = new Map<string, string>();
    for (const e of this.events) {
      if (e.t > t) break;
      if (e.kind === 'mapping-state') state.set(e.uuid, e.state);
    }
    return this.mappings
      .filter((uuid) => (state.get(uuid) ?? 'Enabled') !== 'Disabled')
      .map((uuid) => `${uuid} (${state.get(uuid) ?? 'Enabled'})`);
  }

  resumesAfterSwitchover(): { t: number }[] {
    const first = this.events.find((e) => e.kind === 'switchover-start')?.t;
    if (first === undefined) return [];
    return this.events.filter((e) => e.kind === 'update-mapping' && e.enabled && e.t >= first);
  }

  private writerAt(t: number): string | null {
    let w: string | null = null;
    for (const e of this.events) {
      if (e.t > t) break;
      if (e.kind === 'writer') w = e.resourceId;
    }
    return w;
  }

  /**
   * The writer reached at t was verified. Before any switchover the writer is the one the
   * run started with. During a switchover it is not. After one that failed, blue is still
   * the writer if nothing renamed it. Otherwise a writer check must have passed, through
   * the endpoint, on this writer since it became the writer and since the switchover ended.
   */
  writerVerifiedAt(t: number): boolean {
    const switchover = this.switchovers()
      .filter((s) => s.start <= t)
      .at(-1);
    if (switchover === undefined) return true;
    if (switchover.ended === undefined || switchover.end > t) return false;
    const writer = this.writerAt(t);
    const changed = this.events.filter((e) => e.kind === 'writer' && e.t <= t).at(-1)?.t ?? 0;
    if (!switchover.ended.completed && changed < switchover.start) return true;
    const since = Math.max(changed, switchover.end);
    return this.events.some(
      (e) =>
        e.kind === 'function-result' &&
        e.t >= since &&
        e.t <= t &&
        this.writerAt(e.t) === writer &&
        verifiedWriter(e.function, e.result),
    );
  }

  pageOffTimesAfterSwitchover(): number[] {
    const first = this.events.find((e) => e.kind === 'switchover-start')?.t;
    if (first === undefined) return [];
    return this.events
      .filter((e) => e.kind === 'routing' && !e.page && e.t > first)
      .map((e) => e.t);
  }

  /**
   * When each writer verification made with the page on was complete: the check passed, and
   * the client sessions left on the former writer were ended if the run did that next.
   */
  writerVerificationsWhilePageOn(): number[] {
    return this.events
      .filter(
        (e) =>
          e.kind === 'function-result' && verifiedWriter(e.function, e.result) && this.pageAt(e.t),
      )
      .map((e) => {
        const off = this.pageOffAfter(e.t) ?? Infinity;
        const ended = this.events.find(
          (x) =>
            x.kind === 'function-result' &&
            x.t >= e.t &&
            x.t <= off &&
            typeof (x.result as { ended?: unknown } | null)?.ended === 'number',
        );
        return ended?.t ?? e.t;
      });
  }

  greenVerifiedBefore(t: number): boolean {
    return this.events.some(
      (e) =>
        e.kind === 'function-result' &&
        e.function === 'verify-green' &&
        e.t <= t &&
        (e.result as { passed?: boolean })?.passed === true,
    );
  }

  changedAnything(): boolean {
    return this.events.some(
      (e) =>
        e.kind === 'routing' ||
        e.kind === 'update-mapping' ||
        e.kind === 'switchover-start' ||
        (e.kind === 'task' && e.state.startsWith('Create blue-green')),
    );
  }
}

/** A writer is verified only by a writer check that passed through the endpoint. */
function verifiedWriter(fn: string, result: unknown): boolean {
  const r = result as { passed?: boolean } | null;
  return fn === 'verify-writer' && r?.passed === true;
}
