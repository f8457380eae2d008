import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { exitCode, parseArgs } from '../../rehearsal/cli';
import { synthesizeMachines } from '../../rehearsal/machines';
import {
  type RehearsalReport,
  SCENARIOS,
  UsageError,
  rehearse,
  taskStates,
} from '../../rehearsal/rehearse';

const machines = synthesizeMachines();
/** Light traffic keeps the many runs below quick; the default run's volume is in its own test. */
const light = {
  pageViews: 1,
  clicks: 1,
  opens: 1,
  confirmations: 1,
  signUps: 1,
  unsubscribes: 1,
  sends: 1,
};

describe('rehearsal', () => {
  let report: RehearsalReport;
  beforeAll(async () => {
    report = await rehearse({ machines });
  });

  it('upgrades on the default run with over 100,000 messages, none lost', () => {
    expect(report).toMatchObject({
      scenario: 'happy',
      outcome: 'UPGRADED',
      writer: { identifier: 'platform-db', engineVersion: machines.defaults.targetEngineVersion },
      maintenance: { on: false },
      consumers: { enabled: true },
      blueGreenDeployments: 0,
      captureUnavailableSeconds: 0,
      operatorNotified: false,
      invariants: { ok: true, violations: [] },
    });
    expect(report.messages.produced).toBeGreaterThanOrEqual(100_000);
    expect(report.messages).toMatchObject({ lost: 0, duplicateEffects: 0, inDlq: 0, inQueue: 0 });
    expect(report.messages.processed).toBe(report.messages.produced);
  });

  it('reports the JSON fields the CLI contract promises', () => {
    expect(typeof report.switchoverSeconds).toBe('number');
    expect(report.switchoverSeconds).toBe(30);
    expect(report.maintenance.seconds).toBeGreaterThanOrEqual(30);
    expect(report.maintenance.seconds).toBeLessThan(45);
    expect(report.consumers.pausedSeconds).toBeGreaterThan(report.maintenance.seconds);
    expect(report.timeline[0]).toEqual({ t: 0, state: 'Validate input', event: 'task' });
    expect(report.timeline.some((e) => e.event === 'maintenance on')).toBe(true);
    for (const e of report.timeline) expect(Object.keys(e).sort()).toEqual(['event', 'state', 't']);
  });

  it.each(Object.entries(SCENARIOS))(
    'ends the %s scenario as expected, invariants holding',
    async (name, spec) => {
      const r = await rehearse({ machines, scenario: name, rates: light });
      expect(r.outcome).toBe(spec.expect);
      expect(r.invariants).toEqual({ ok: true, violations: [] });
      expect(exitCode(r, false)).toBe(0);
    },
  );

  it('shows the slow-disable scenario pausing consumers longer but not the page', async () => {
    const r = await rehearse({ machines, scenario: 'slow-disable', rates: light });
    expect(r.consumers.pausedSeconds).toBeGreaterThanOrEqual(90);
    expect(r.maintenance.seconds).toBeLessThan(45);
  });
});

describe('fault sweep', () => {
  it.each(taskStates(machines))(
    '--fail-at "%s" ends with its invariants holding',
    async (state) => {
      const r = await rehearse({ machines, failAt: [state], rates: light });
      expect(r.invariants.violations).toEqual([]);
      expect(r.messages.lost).toBe(0);
      if (r.outcome !== 'NEEDS_OPERATOR') {
        expect(r.maintenance.on).toBe(false);
        expect(r.consumers.enabled).toBe(true);
      }
      expect(exitCode(r, true)).toBe(0);
    },
  );
});

describe('CLI contract', () => {
  it('rejects unknown scenario and state names with the list of known ones', async () => {
    await expect(rehearse({ machines, scenario: 'sunny' })).rejects.toThrow(
      new UsageError(`unknown scenario "sunny"; known: ${Object.keys(SCENARIOS).join(', ')}`),
    );
    await expect(rehearse({ machines, failAt: ['Make coffee'] })).rejects.toThrow(
      'unknown Task state "Make coffee"; the Task states are:\n  Validate input',
    );
  });

  it('parses rates and refuses malformed options', () => {
    expect(parseArgs(['--rate', 'clicks=30/s', '--fail-at', 'Verify green']).options).toMatchObject(
      {
        rates: { clicks: 30 },
        failAt: ['Verify green'],
      },
    );
    expect(() => parseArgs(['--rate', 'clicks=fast'])).toThrow('--rate must be NAME=N/s');
    expect(() => parseArgs(['--rate', 'hugs=3/s'])).toThrow('NAME one of pageViews');
    expect(() => parseArgs(['--switchover-seconds', '-5'])).toThrow('got: "-5"');
    expect(() => parseArgs(['--scenario'])).toThrow('--scenario needs a value');
    expect(() => parseArgs(['--frobnicate'])).toThrow('unknown option "--frobnicate"');
  });

  it('exits non-zero when an invariant is broken or the outcome is not the expected one', () => {
    const good = {
      outcome: 'UPGRADED',
      expected: 'UPGRADED',
      invariants: { ok: true, violations: [] },
    } as unknown as RehearsalReport;
    expect(exitCode(good, false)).toBe(0);
    expect(
      exitCode({ ...good, invariants: { ok: false, violations: ['3 messages lost'] } }, false),
    ).toBe(1);
    expect(exitCode({ ...good, outcome: 'ROLLED_BACK' }, false)).toBe(1);
    expect(exitCode({ ...good, outcome: 'ROLLED_BACK' }, true)).toBe(0);
  });

  it('prints exactly one JSON object with --json, and exits 2 on an unknown scenario', () => {
    const cli = join(__dirname, '..', '..', 'rehearsal', 'cli.ts');
    const env = { ...process.env, NODE_OPTIONS: '' };
    const ok = spawnSync(
      process.execPath,
      ['--import', 'tsx', cli, '--json', '--rate', 'clicks=1/s'],
      { encoding: 'utf8', env },
    );
    expect(ok.status).toBe(0);
    const lines = ok.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      outcome: 'UPGRADED',
      messages: { lost: 0 },
    });
    const bad = spawnSync(process.execPath, ['--import', 'tsx', cli, '--scenario', 'sunny'], {
      encoding: 'utf8',
      env,
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown scenario "sunny"; known: happy, dry-run');
  });
});
