import { type RehearsalOptions, type RehearsalReport, rehearse } from '../../rehearsal/rehearse';
import { LIGHT_RATES } from '../../rehearsal/sweep';
import { app } from '../helpers/upgrade';

/*
 * The quiet gate in the rehearsal: the real runbook reads the simulated traffic alarm, which
 * counts the requests the rehearsal's traffic sends through the load balancer (cdk.json's
 * threshold: 6,000 a minute, busy while any of the last 3 minutes had more).
 */
/** Each distinct run once per file: several tests read the same runs. */
const runs = new Map<string, Promise<RehearsalReport>>();
function run(options: Omit<RehearsalOptions, 'app'>): Promise<RehearsalReport> {
  const key = JSON.stringify(options);
  let r = runs.get(key);
  if (r === undefined) {
    // One simulation at a time (sim.ts): chain after the runs already asked for.
    const before = Promise.all(runs.values()).catch(() => undefined);
    r = before.then(() => rehearse({ app, ...options }));
    runs.set(key, r);
  }
  return r;
}

const gateOf = (r: RehearsalReport) =>
  r.run.output?.quietGate as { outcome: string; checks: number; at: string } | undefined;
const firstAt = (r: RehearsalReport, event: string) => r.timeline.find((e) => e.event === event)?.t;
const startMs = (r: RehearsalReport) => Date.parse(gateOf(r)?.at ?? '') - 0;

describe('the quiet gate', () => {
  it('leads every way on to the deadline check, so no wait can start a switchover past it', () => {
    const states = app.machines.upgrade.definition.States as Record<string, { Next?: string }>;
    for (const exit of [
      'Note: no quiet gate',
      'Note: traffic is quiet',
      'Notified: not quiet in time',
    ]) {
      expect(states[exit]?.Next).toBe('Note the time');
    }
    expect(states['Note the time']?.Next).toBe('Is there time to switch over?');
  });

  it('goes on at once when traffic is quiet already', async () => {
    // Light traffic, as --sweep runs: well under the alarm's threshold either way.
    const r = await run({ scenario: 'quiet-gate-quiet-at-once', rates: LIGHT_RATES });
    expect(r.outcome).toBe('UPGRADED');
    expect(gateOf(r)).toMatchObject({ outcome: 'quiet', checks: 0 });
    expect(r.invariants).toEqual({ ok: true, violations: [] });
  });

  it('waits out a campaign’s burst, and the page meets at most a third of the users it would have', async () => {
    // One simulation at a time (sim.ts).
    const gated = await run({ scenario: 'quiet-gate' });
    const ungated = await run({ scenario: 'quiet-gate', input: { quietGate: { enabled: false } } });
    for (const r of [gated, ungated]) {
      expect(r.outcome).toBe('UPGRADED');
      expect(r.messages.lost).toBe(0);
      expect(r.invariants).toEqual({ ok: true, violations: [] });
    }
    expect(gateOf(ungated)).toEqual({ outcome: 'off' });
    // Green is ready at about 12:05, with the noon campaign's burst; the burst halves every
    // 10 minutes, and the gate goes on once 3 minutes in a row are under the threshold.
    const gate = gateOf(gated);
    expect(gate?.outcome).toBe('quiet');
    expect(gate?.checks).toBeGreaterThan(20);
    expect(gate?.checks).toBeLessThan(60);
    // The page goes on only after the gate let the run through.
    const pageOn = firstAt(gated, 'maintenance on') ?? 0;
    expect(Date.parse('2026-11-22T11:55:00Z') + pageOn * 1000).toBeGreaterThan(startMs(gated));
    const seen = (r: RehearsalReport) => r.pageViews.maintenancePageByKind.pageViews;
    expect(seen(gated)).toBeGreaterThan(0);
    expect(seen(gated)).toBeLessThanOrEqual(seen(ungated) / 3);
  });

  it('still cuts the users who meet the page when CloudWatch sees each minute three minutes late', async () => {
    // AWS does not say how late an alarm sees a datapoint (assumption alarm-datapoint-lag).
    const late = await run({
      scenario: 'quiet-gate',
      assumptions: { 'alarm-datapoint-lag': 'three-minutes' },
    });
    const soon = await run({ scenario: 'quiet-gate' });
    expect(late.outcome).toBe('UPGRADED');
    expect(late.invariants).toEqual({ ok: true, violations: [] });
    // It sees the burst's end later, so it waits longer, and the page meets fewer users.
    expect(gateOf(late)?.checks).toBeGreaterThan(gateOf(soon)?.checks ?? Infinity);
    expect(late.pageViews.maintenancePageByKind.pageViews).toBeLessThan(
      soon.pageViews.maintenancePageByKind.pageViews,
    );
  });

  it('rolls back, page never on, when traffic stays busy until 5 minutes before the deadline', async () => {
    const r = await run({ scenario: 'quiet-gate-not-quiet-roll-back' });
    expect(r.outcome).toBe('ROLLED_BACK');
    expect(r.run.output?.failure).toMatchObject({ Error: 'NotQuietInTime' });
    expect(firstAt(r, 'maintenance on')).toBeUndefined();
    expect(r.tasks.upgrade).not.toContain('Switch over to green');
    // The deadline is 04:25: the gate gave up at its first look after 04:20 (a minute apart),
    // well before its 60 checks.
    const reads = r.tasks.upgrade.filter((t) => t === 'Quiet gate: read the traffic alarm');
    expect(reads.length).toBeGreaterThan(5);
    expect(reads.length).toBeLessThan(15);
    const lastRead = r.timeline
      .filter((e) => e.state === 'Quiet gate: read the traffic alarm')
      .at(-1)?.t;
    expect(Date.parse('2026-11-22T04:00:00Z') + (lastRead ?? Infinity) * 1000).toBeLessThanOrEqual(
      Date.parse('2026-11-22T04:21:10Z'),
    );
    expect(r.invariants).toEqual({ ok: true, violations: [] });
  });

  it('rolls back at once, naming the alarm, when the traffic alarm is gone', async () => {
    const r = await run({
      scenario: 'quiet-gate-quiet-at-once',
      rates: LIGHT_RATES,
      world: { trafficAlarmMissing: true },
    });
    expect(r.outcome).toBe('ROLLED_BACK');
    expect(r.run.output?.failure).toMatchObject({
      Error: 'TrafficAlarmMissing',
      Cause: expect.stringContaining('CloudWatch has no such alarm') as unknown,
    });
    expect(r.tasks.upgrade.filter((t) => t === 'Quiet gate: read the traffic alarm')).toHaveLength(
      1,
    );
    expect(r.invariants).toEqual({ ok: true, violations: [] });
  });

  it('says in its rollback which limit came and what the alarm said', async () => {
    const r = await run({ scenario: 'quiet-gate-not-quiet-roll-back' });
    expect((r.run.output?.failure as { Cause: string }).Cause).toMatch(
      /^Traffic stayed over the quiet gate’s threshold of 6000 requests a minute through \d+ checks a minute apart, to 2026-11-22T04:2.* the traffic alarm said ALARM\./,
    );
  });

  it('switches over anyway after its 3 minutes when the input says so, and says so', async () => {
    const r = await run({ scenario: 'quiet-gate-not-quiet-switch-anyway' });
    expect(r.outcome).toBe('UPGRADED');
    expect(gateOf(r)).toMatchObject({ outcome: 'not quiet in time: switched anyway', checks: 3 });
    expect(r.tasks.upgrade).toContain('Notify: not quiet in time');
    expect(r.invariants).toEqual({ ok: true, violations: [] });
  });
});
