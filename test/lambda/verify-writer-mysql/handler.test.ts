import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { MysqlConnection } from '../../../lambda/shared/mysql-client';
import type { VerifyWriterOutput, WithOldSessions } from '../../../lambda/verify-writer/handle';
import type { EndOldSessionsResult } from '../../../lambda/verify-writer/former-writer';
import type { VerifyWriterResult } from '../../../lambda/verify-writer/writer-check';
import {
  MYSQL_SESSIONS,
  type SessionConnection,
} from '../../../lambda/verify-writer-mysql/sessions';
import { deployFor } from '../../helpers/deployed';
import { describeWithMysql, MYSQL_MASTER, startMysql, type TestMysql } from '../../helpers/mysql';

/**
 * verify-writer-mysql on a real MySQL-compatible server: Debian's MariaDB, started for this
 * file (test/helpers/mysql.ts). RDS is mocked; the database is not. Without the server the
 * suite does not run, and says so; in CI it must.
 */
const describeMysql = describeWithMysql();

const rds = mockClient(RDSClient);
const secrets = mockClient(SecretsManagerClient);
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db';

let mysql: TestMysql;
let handler: (event: unknown) => Promise<VerifyWriterOutput>;
let resetMysqlDatabase: () => Promise<void>;
/** What the server reports as @@version, e.g. "10.11.14-MariaDB-0+deb12u2". */
let reported: string;
/** Its x.y.z: the version the tests deploy for, as RDS would spell it. */
let version: string;

const check = async (event: unknown) => (await handler(event)) as VerifyWriterResult;
const endSessions = async (event: unknown) => (await handler(event)) as EndOldSessionsResult;

function secret(overrides: Record<string, unknown> = {}) {
  return {
    SecretString: JSON.stringify({
      host: '127.0.0.1',
      port: mysql.port,
      username: MYSQL_MASTER.user,
      password: MYSQL_MASTER.password,
      ...overrides,
    }),
  };
}

/** A session of the master user, as an application's would be. */
const openSession = () =>
  MysqlConnection.connect({
    host: '127.0.0.1',
    port: mysql.port,
    user: MYSQL_MASTER.user,
    password: MYSQL_MASTER.password,
    database: mysql.database,
    tls: false,
  });

const writer = (overrides: Record<string, unknown> = {}) => ({
  DBInstances: [
    {
      DBInstanceIdentifier: 'platform-db',
      DBInstanceStatus: 'available',
      EngineVersion: version,
      DeletionProtection: true,
      ...overrides,
    },
  ],
});

/** Waits until the server no longer lists the session. */
async function gone(id: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const rows = await mysql.sql(
      `SELECT COUNT(*) FROM information_schema.processlist WHERE id = ${id}`,
    );
    if (rows[0]?.[0] === '0') return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`session ${id} is still listed`);
}

const sessionId = async (c: MysqlConnection) =>
  (await c.select('SELECT CONNECTION_ID()')).rows[0]?.[0] ?? '';

describeMysql('verify-writer-mysql on a real server', () => {
  beforeAll(async () => {
    mysql = await startMysql();
    reported = (await mysql.sql('SELECT @@version'))[0]?.[0] ?? '';
    version = /^\d+\.\d+\.\d+/.exec(reported)?.[0] ?? '';
    // The master as RDS makes it sees every session (PROCESS) and replication's state
    // (REPLICATION CLIENT on MySQL; REPLICA MONITOR is MariaDB's name for what SHOW REPLICA
    // STATUS needs), but has no KILL on others' sessions: RDS gives it mysql.rds_kill. MariaDB
    // has no such procedure, so this stand-in for RDS's runs KILL with its definer's (root's)
    // rights, as RDS's runs with rdsadmin's.
    // It also sends a resultset before it kills: whether RDS's does, AWS does not say, and a
    // CALL of one that does needs the client to take several resultsets (mysql-client.ts).
    await mysql.sql(
      `GRANT PROCESS, REPLICA MONITOR ON *.* TO '${MYSQL_MASTER.user}'@'127.0.0.1';
       DELIMITER //
       CREATE PROCEDURE mysql.rds_kill(thread BIGINT) SQL SECURITY DEFINER
         BEGIN SELECT CONCAT('ending session ', thread) AS note; KILL thread; END//
       DELIMITER ;
       GRANT EXECUTE ON PROCEDURE mysql.rds_kill TO '${MYSQL_MASTER.user}'@'127.0.0.1';`,
    );
    process.env.DB_SECRET_ARN = SECRET_ARN;
    process.env.DB_TLS = 'disable'; // TLS is the shared client's, tested with the consumer
    process.env.DB_NAME = mysql.database;
    ({ handler } = await import('../../../lambda/verify-writer-mysql/handler'));
    ({ resetMysqlDatabase } = await import('../../../lambda/shared/mysql'));
  });

  afterAll(async () => {
    await resetMysqlDatabase?.();
    await mysql?.stop();
  });

  beforeEach(async () => {
    deployFor({ engine: 'mysql', currentEngineVersion: version, targetEngineVersion: version });
    secrets.reset();
    secrets.on(GetSecretValueCommand).resolves(secret());
    rds.reset();
    rds.on(DescribeDBInstancesCommand).resolves(writer());
  });

  afterEach(async () => {
    await mysql.sql('SET GLOBAL read_only = 0');
  });

  const plan = () => ({ sourceIdentifier: 'platform-db', targetEngineVersion: version });

  describe('the writer', () => {
    it('passes a writable server on the target version, asking RDS and the database', async () => {
      expect(version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(await check({ plan: plan() })).toEqual({
        passed: true,
        inconclusive: false,
        failures: [],
        writer: {
          identifier: 'platform-db',
          engineVersion: version,
          writable: true,
          deletionProtection: true,
        },
      });
      expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
        DBInstanceIdentifier: 'platform-db',
      });
      expect(secrets).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: SECRET_ARN });
    });

    it('fails a server left read-only (read_only=1, as RDS leaves old blue), then passes it once writable', async () => {
      await mysql.sql('SET GLOBAL read_only = 1');
      const result = await check({ plan: plan() });
      expect(result).toEqual({
        passed: false,
        inconclusive: false,
        failures: [
          'The database behind "platform-db" refuses writes (read_only=1, innodb_read_only=0). ' +
            'Keep the consumers paused and check the blue/green deployment in the RDS console.',
        ],
        writer: expect.objectContaining({ writable: false }),
      });
      await mysql.sql('SET GLOBAL read_only = 0');
      // The connection was dropped and the secret forgotten: the next check reads both anew.
      secrets.resetHistory();
      expect((await check({ plan: plan() })).passed).toBe(true);
      expect(secrets).toHaveReceivedCommand(GetSecretValueCommand);
    });

    it('tells the restored writer to use read_only=0, the MySQL parameter', async () => {
      await mysql.sql('SET GLOBAL read_only = 1');
      const result = await check({
        plan: { sourceIdentifier: 'platform-db', currentEngineVersion: version },
        expect: 'current',
        restored: true,
      });
      expect(result.failures).toEqual([
        expect.stringContaining(
          'refuses writes (read_only=1, innodb_read_only=0). Check that platform-db uses its ' +
            '"-restore" parameter group, in-sync, with read_only=0',
        ),
      ]);
    });

    it('is inconclusive when the server runs another major version: the connection reached the old instance', async () => {
      deployFor({ engine: 'mysql', currentEngineVersion: version, targetEngineVersion: '8.4.5' });
      rds.on(DescribeDBInstancesCommand).resolves(writer({ EngineVersion: '8.4.5' }));
      const result = await check({
        plan: { sourceIdentifier: 'platform-db', targetEngineVersion: '8.4.5' },
      });
      expect(result.failures).toEqual([
        `The database behind "platform-db" reports version ${reported}, not 8.4.5: the ` +
          'connection reached the old instance. Wait a minute for the endpoint to follow the ' +
          'switchover and verify again (the next attempt reconnects).',
      ]);
      expect(result).toMatchObject({ passed: false, inconclusive: true });
    });

    it('tells a minor upgrade apart: another patch of the same major.minor is not the target', async () => {
      const [major, minor, patch] = version.split('.');
      const next = `${major}.${minor}.${Number(patch) + 1}`;
      deployFor({ engine: 'mysql', currentEngineVersion: version, targetEngineVersion: next });
      rds.on(DescribeDBInstancesCommand).resolves(writer({ EngineVersion: next }));
      await mysql.sql('SET GLOBAL read_only = 1');
      // Old blue, read-only, on the version before: the wrong instance, not a failed writer.
      const result = await check({
        plan: { sourceIdentifier: 'platform-db', targetEngineVersion: next },
      });
      expect(result).toMatchObject({ passed: false, inconclusive: true });
      expect(result.failures).toEqual([expect.stringContaining(`not ${next}: the connection`)]);
    });

    it('is inconclusive, not thrown, when the database does not answer, and reconnects next time', async () => {
      await resetMysqlDatabase();
      secrets.on(GetSecretValueCommand).resolves(secret({ port: 1 }));
      const down = await check({ plan: plan() });
      expect(down).toMatchObject({ passed: false, inconclusive: true });
      expect(down.failures).toEqual([
        expect.stringMatching(
          /^Could not query the database behind "platform-db" \(.*ECONNREFUSED.*\)\. Check that it accepts connections/,
        ),
      ]);
      secrets.on(GetSecretValueCommand).resolves(secret());
      expect((await check({ plan: plan() })).passed).toBe(true);
    });

    it('connects to the database DB_NAME names, whatever the secret says', async () => {
      await resetMysqlDatabase();
      secrets.on(GetSecretValueCommand).resolves(secret({ dbname: 'no_such_database' }));
      expect((await check({ plan: plan() })).passed).toBe(true);
      // Without DB_NAME the secret's dbname is used, which the server refuses.
      await resetMysqlDatabase();
      delete process.env.DB_NAME;
      try {
        const result = await check({ plan: plan() });
        expect(result.failures).toEqual([
          // The server's `'user'@'host'` comes without its `@`: the result is logged.
          expect.stringContaining(
            "(Access denied for user 'platform_admin' (host '127.0.0.1') to database 'no_such_database')",
          ),
        ]);
      } finally {
        process.env.DB_NAME = mysql.database;
        await resetMysqlDatabase();
      }
    });
    it('connects to no database when none is named: it reads only server-wide state', async () => {
      // An adopted platform's secret names no database, and the stack sets no DB_NAME.
      await resetMysqlDatabase();
      delete process.env.DB_NAME;
      secrets.on(GetSecretValueCommand).resolves(secret({ dbname: undefined }));
      try {
        const result = await check({ plan: plan() });
        expect(result.failures).toEqual([]);
        expect(result.passed).toBe(true);
      } finally {
        process.env.DB_NAME = mysql.database;
        await resetMysqlDatabase();
      }
    });
  });

  describe('blue limitations', () => {
    const blue = () => ({
      plan: { sourceIdentifier: 'platform-db', currentEngineVersion: version },
      expect: 'current',
      limitations: true,
    });

    it('passes blue that is no binlog replica (SHOW REPLICA STATUS empty)', async () => {
      expect(await mysql.sql('SHOW REPLICA STATUS')).toEqual([]);
      expect(await check(blue())).toMatchObject({ passed: true, failures: [] });
    });

    it('fails blue that is a binlog replica of an external source, naming it and the fix', async () => {
      // A replica configured and not started: still a replica, as AWS counts it.
      await mysql.sql(
        "CHANGE MASTER TO MASTER_HOST='198.51.100.7', MASTER_PORT=3307, MASTER_USER='repl'",
      );
      try {
        const result = await check(blue());
        expect(result).toMatchObject({ passed: false, inconclusive: false });
        expect(result.failures).toEqual([
          '"platform-db" is a binlog replica of 198.51.100.7:3307 (replica I/O thread running: ' +
            'No, SQL thread running: No), and the blue DB instance of an RDS for MySQL ' +
            "blue/green deployment can't be an external binlog replica: stop and remove the " +
            'replication with CALL mysql.rds_stop_replication and CALL ' +
            'mysql.rds_reset_external_source before the upgrade (set it up again after the ' +
            'switchover if still needed).',
        ]);
        // Not looked for without the flag.
        expect((await check({ ...blue(), limitations: undefined })).passed).toBe(true);
      } finally {
        await mysql.sql('RESET SLAVE ALL');
      }
    });
  });

  describe('ending the sessions on old blue', () => {
    beforeEach(async () => {
      // Only the sessions a test opens: the writer check's kept connection is closed.
      await resetMysqlDatabase();
      rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-old1' }).resolves({
        DBInstances: [
          { DBInstanceIdentifier: 'platform-db-old1', Endpoint: { Address: '127.0.0.1' } },
        ],
      });
    });

    it("ends a client's session on -old1's own endpoint through mysql.rds_kill", async () => {
      // The secret names a host where nothing listens (the server is on 127.0.0.1 only):
      // the sessions are ended through -old1's endpoint, not the production one.
      secrets.on(GetSecretValueCommand).resolves(secret({ host: '::1' }));
      const session = await openSession();
      const id = await sessionId(session);
      expect(await endSessions({ plan: plan(), action: 'end-old-sessions' })).toEqual({
        instance: 'platform-db-old1',
        ended: 1,
        detail: 'ended 1 client session(s) on platform-db-old1 (old blue, read-only)',
      });
      await gone(id);
      await expect(session.select('SELECT 1')).rejects.toThrow();
      expect(session.closed).toBe(true);
      expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
        DBInstanceIdentifier: 'platform-db-old1',
      });
      // Its own connection is closed too: nothing of it stays on old blue.
      const left = await mysql.sql(
        `SELECT COUNT(*) FROM information_schema.processlist WHERE user = '${MYSQL_MASTER.user}'`,
      );
      expect(left).toEqual([['0']]);
    });

    it('counts a session that closed between the list and the kill as gone, not as a failure', async () => {
      const vanishing = await openSession();
      const staying = await openSession();
      const [vanishingId, stayingId] = [await sessionId(vanishing), await sessionId(staying)];
      const ender = await openSession();
      // The list is read; then the first session closes before it is killed.
      const racing: SessionConnection = {
        select: async (sql) => {
          const rows = await ender.select(sql);
          await vanishing.close();
          await gone(vanishingId);
          return rows;
        },
        query: (sql) => ender.query(sql),
        close: () => ender.close(),
        get closed() {
          return ender.closed;
        },
      };
      try {
        expect(await MYSQL_SESSIONS.endSessions(racing)).toEqual({
          ended: 1,
          note: `1 more had already closed (${vanishingId})`,
        });
        await gone(stayingId);
        await expect(staying.select('SELECT 1')).rejects.toThrow();
      } finally {
        await ender.close();
        await staying.close();
      }
    });

    it('ends the sessions on old blue in the same call as the check', async () => {
      const session = await openSession();
      const result = (await handler({
        plan: plan(),
        endSessionsOn: 'old-blue',
      })) as WithOldSessions;
      // Here old blue and the writer are one server, so the check's own connection may be
      // among those ended and its result is not asserted (verify-writer's test does that).
      expect(result.writer).toMatchObject({ identifier: 'platform-db' });
      expect(result.oldSessions).toMatchObject({ instance: 'platform-db-old1' });
      expect((result.oldSessions as EndOldSessionsResult).ended).toBeGreaterThanOrEqual(1);
      await expect(session.select('SELECT 1')).rejects.toThrow();
    });
  });

  describe('the handler', () => {
    it('answers a warm-up by reading the credentials, and calls RDS for nothing', async () => {
      await expect(handler({ warm: true })).resolves.toEqual({ warm: true });
      expect(secrets).toHaveReceivedCommandWith(GetSecretValueCommand, { SecretId: SECRET_ARN });
      expect(rds).not.toHaveReceivedAnyCommand();
    });

    it('refuses an event without a plan, naming the field, calling nothing', async () => {
      await expect(handler({ expect: 'current' })).rejects.toThrow(
        /invalid verify-writer-mysql event[\s\S]*plan/,
      );
      expect(rds).not.toHaveReceivedAnyCommand();
    });

    it('refuses to run where it is deployed for another engine, naming it, calling nothing', async () => {
      deployFor({ engine: 'postgres', targetEngineVersion: '17.2' });
      await expect(
        handler({ plan: { sourceIdentifier: 'platform-db', targetEngineVersion: '17.2' } }),
      ).rejects.toThrow(
        'verify-writer-mysql checks engine mysql, but it is deployed for engine: "postgres"',
      );
      expect(rds).not.toHaveReceivedAnyCommand();
    });
  });
});
