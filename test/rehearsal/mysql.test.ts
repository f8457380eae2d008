import { spawnSync } from 'node:child_process';
import { mysqlModule } from '../../rehearsal/mysql-model';
import { type RehearsalReport, defaultApp, rehearse } from '../../rehearsal/rehearse';
import { Simulation } from '../../rehearsal/sim';
import { LIGHT_RATES } from '../../rehearsal/sweep';
import type { SynthesizedApp } from '../../rehearsal/synthesized';
import type { World } from '../../rehearsal/world';
import { DEFAULT_LATENCIES, type ModelContext, type WorldEvent } from '../../rehearsal/world/core';
import { RdsModel } from '../../rehearsal/world/rds';
import { CLI } from '../helpers/cli';

/*
 * The rehearsal on RDS for MySQL: the app synthesized with database.engine mysql (the demo's
 * 8.0.42 -> 8.4.5), the MySQL functions' real code, our MySQL client answered by the model
 * (rehearsal/mysql-model.ts). Every scenario and the sweep: sweep.test.ts, assumptions.test.ts.
 */
const app = defaultApp('mysql');

describe('the default rehearsal on MySQL', () => {
  let report: RehearsalReport;
  beforeAll(async () => {
    report = await rehearse({ app });
  });

  it('upgrades to 8.4.5, writable, with every write applied once to the new writer', () => {
    expect(report).toMatchObject({
      engine: { name: 'mysql', from: '8.0.42', to: '8.4.5' },
      outcome: 'UPGRADED',
      writer: { identifier: 'platform-db', engineVersion: '8.4.5', writable: true },
      invariants: { ok: true, violations: [] },
    });
    expect(report.messages.produced).toBeGreaterThanOrEqual(40_000);
    expect(report.messages).toMatchObject({ lost: 0, appliedTwice: 0, inDlq: 0 });
    expect(report.messages.processed).toBe(report.messages.produced);
  });

  it('shows the page only around the switchover, and ends the sessions left on old blue', () => {
    expect(report.maintenance).toEqual({ on: false, seconds: expect.any(Number) as number });
    expect(report.maintenance.seconds).toBeGreaterThan(report.switchoverSeconds);
    expect(report.maintenance.seconds).toBeLessThan(report.switchoverSeconds + 10);
    // The web app's pool reconnected to old blue (stale-sessions=pools); each was killed.
    expect(report.oldSessionsEnded).toBe(4);
    expect(report.writesFailedAfterMaintenance).toBe(0);
  });
});

describe('a failed new writer on MySQL', () => {
  it('restores old blue as the writer, writable again through read_only=0 and a reboot', async () => {
    let world: World | undefined;
    const report = await rehearse({
      app,
      scenario: 'bad-writer',
      rates: LIGHT_RATES,
      inspect: (w) => (world = w),
    });
    expect(report).toMatchObject({
      outcome: 'ROLLED_BACK',
      writer: { identifier: 'platform-db', engineVersion: '8.0.42', writable: true },
      invariants: { ok: true, violations: [] },
    });
    if (world === undefined) throw new Error('no world');
    const rds = world.rds;
    const writer = rds.writer();
    if (writer === undefined) throw new Error('no writer');
    // Old blue runs a group that sets read_only=0, applied by a reboot; the failed writer one
    // with read_only=1 (fenced), and nothing changed the stack's own groups.
    expect(rds.appliedParameter(writer, 'read_only')).toBe('0');
    expect(writer.readOnlyLock).toBe(false);
    const failed = rds.named('platform-db-failed1');
    if (failed === undefined) throw new Error('no failed writer');
    expect(rds.readOnlyReason(failed)).not.toBeNull();
    expect(rds.changedGroups()).toEqual([]);
  });
});

describe('the MySQL client as the model answers it', () => {
  const mysqlApp = {
    instances: [
      {
        identifier: 'db',
        engine: 'mysql',
        engineVersion: '8.0.42',
        parameterGroupName: 'my80',
        backupRetentionDays: 7,
        deletionProtection: true,
        port: 3306,
        address: 'db.c0rehearsal.eu-west-1.rds.amazonaws.com',
      },
    ],
    parameterGroups: [{ name: 'my80', family: 'mysql8.0', parameters: {} }],
  } as unknown as SynthesizedApp;
  const insert =
    'INSERT INTO email_sends (idempotency_key, campaign_id) VALUES (?, ?) ON DUPLICATE KEY UPDATE idempotency_key = idempotency_key';

  async function withModel(
    fn: (m: ReturnType<typeof mysqlModule>, rds: RdsModel, events: WorldEvent[]) => Promise<void>,
  ) {
    const sim = new Simulation(0);
    const events: WorldEvent[] = [];
    await sim.run(async () => {
      const ctx: ModelContext = {
        now: () => sim.now(),
        after: (seconds, f) => void setTimeout(f, seconds * 1000),
        sleep: (seconds) => sim.sleep(seconds),
        draw: () => 0.5,
        latency: DEFAULT_LATENCIES,
        scenario: {},
        assumption: () => 'star',
        emit: (e) => events.push({ t: sim.now(), ...e } as WorldEvent),
      };
      const rds = new RdsModel(ctx, mysqlApp, 'db', ['8.4.5']);
      await fn(mysqlModule({ rds, sleep: (s) => sim.sleep(s), latency: 0.025 }), rds, events);
    });
  }
  const connect = (m: ReturnType<typeof mysqlModule>, host = RdsModel.endpoint('db')) =>
    m.MysqlConnection.connect({ host, port: 3306 });

  it('reports 1 affected row for a new key and 0 for a duplicate, as the server does', async () => {
    await withModel(async (m) => {
      const c = await connect(m);
      await expect(c.execute(insert, ['k', 'c'])).resolves.toEqual({
        affectedRows: 1,
        warnings: 0,
      });
      await expect(c.execute(insert, ['k', 'c'])).resolves.toEqual({
        affectedRows: 0,
        warnings: 0,
      });
    });
  });

  it('refuses writes on a read-only server with ER_OPTION_PREVENTS_STATEMENT', async () => {
    await withModel(async (m, rds) => {
      const c = await connect(m);
      const instance = rds.named('db');
      if (instance === undefined) throw new Error('no instance');
      instance.readOnlyLock = true;
      const err = await c.execute(insert, ['k', 'c']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(m.MysqlError);
      expect(err).toMatchObject({
        errno: 1290,
        sqlState: 'HY000',
        message:
          'The MySQL server is running with the --read-only option so it cannot execute this statement',
      });
    });
  });

  it('closes a connection the server dropped, and fails its statement as the client does', async () => {
    await withModel(async (m, rds) => {
      const c = await connect(m);
      expect(c.closed).toBe(false);
      rds.service.RebootDBInstance?.run({ DBInstanceIdentifier: 'db' });
      expect(c.closed).toBe(true);
      await expect(c.execute(insert, ['k', 'c'])).rejects.toThrow('mysql: connection closed');
      await expect(connect(m)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    });
  });

  it('ends one session with mysql.rds_kill, and answers an unknown id with 1094', async () => {
    await withModel(async (m, rds, events) => {
      const [killer, victim] = [await connect(m), await connect(m)];
      const { rows } = await killer.select(
        (await import('../../lambda/verify-writer-mysql/sql')).MYSQL_CLIENT_SESSIONS_SQL,
      );
      expect(rows).toEqual([['2']]);
      const { mysqlKillSql } = await import('../../lambda/verify-writer-mysql/sql');
      await killer.query(mysqlKillSql(2));
      expect(victim.closed).toBe(true);
      expect(killer.closed).toBe(false);
      expect(events.filter((e) => e.kind === 'sessions-ended')).toHaveLength(1);
      await expect(killer.query(mysqlKillSql(2))).rejects.toMatchObject({
        errno: 1094,
        message: 'Unknown thread id: 2',
      });
      expect(rds.clientSessions(rds.named('db') as never)).toBe(1);
    });
  });
});

describe('--engine', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });

  it.each(['aurora-postgresql', 'aurora-mysql'] as const)(
    'takes %s, whose runbook speaks DB clusters',
    (engine) => {
      const r = cli('--engine', engine, '--list-states');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('Switch over to green');
      expect(r.stdout).toContain('Clean up: fence old blue');
    },
  );

  it('refuses an engine it does not know, naming the ones it does', () => {
    const r = cli('--engine', 'oracle-ee', '--list-states');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      '--engine must be one of postgres, mysql, aurora-postgresql, aurora-mysql, got: "oracle-ee"',
    );
  });

  it('refuses a scenario that does not apply to the engine, saying why', () => {
    const r = cli('--engine', 'mysql', '--scenario', 'table-without-primary-key');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('scenario table-without-primary-key does not apply to mysql');
  });
});
