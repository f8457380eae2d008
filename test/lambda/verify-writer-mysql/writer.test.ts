import {
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { MysqlError, type MysqlRows } from '../../../lambda/shared/mysql-client';
import { endSessionsOnFormerWriter } from '../../../lambda/verify-writer/former-writer';
import { checkWriter } from '../../../lambda/verify-writer/writer-check';
import {
  MYSQL_SESSIONS,
  type SessionConnection,
} from '../../../lambda/verify-writer-mysql/sessions';
import {
  MYSQL_CLIENT_SESSIONS_SQL,
  MYSQL_LIMITATION_SQL,
  MYSQL_WRITER_SQL,
  mysqlKillSql,
} from '../../../lambda/verify-writer-mysql/sql';
import {
  MYSQL_WRITER,
  mysqlRuns,
  replicaLimitations,
  type Selectable,
} from '../../../lambda/verify-writer-mysql/writer';
import { testPlan } from '../../helpers/plan';

/**
 * What the MySQL side computes from rows a real server cannot be made to give here: MySQL
 * 8.0's and 8.4's column names, innodb_read_only=1 (static on MariaDB), refusals other than a
 * session already gone. Each stand-in answers only the statement it expects.
 */
const rds = mockClient(RDSClient);
const plan = testPlan({
  engine: 'mysql',
  currentEngineVersion: '8.0.42',
  targetEngineVersion: '8.4.5',
});

/** A server that answers each statement with these rows, and refuses any other. */
function server(answers: Record<string, MysqlRows>): Selectable {
  return {
    select: async (sql) => {
      const rows = answers[sql];
      if (rows === undefined) throw new Error(`unexpected statement: ${sql}`);
      return rows;
    },
  };
}

const writerRow = (ro: string | null, innodbRo: string | null, version: string | null) =>
  server({
    [MYSQL_WRITER_SQL]: {
      columns: ['ro', 'innodb_ro', 'version'],
      rows: [[ro, innodbRo, version]],
    },
  });

beforeEach(() => {
  rds.reset();
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      {
        DBInstanceIdentifier: 'platform-db',
        DBInstanceStatus: 'available',
        EngineVersion: '8.4.5',
        DeletionProtection: true,
        Endpoint: { Address: 'platform-db-old1.abc.eu-west-1.rds.amazonaws.com' },
      },
    ],
  });
});

const deps = (db: Selectable) => ({
  rds: new RDSClient({}),
  db: async () => db,
  resetDb: jest.fn(async () => undefined),
});

describe('the MySQL writer', () => {
  it('passes RDS for MySQL 8.4.5 reporting 8.4.5, writable', async () => {
    const result = await checkWriter(deps(writerRow('0', '0', '8.4.5')), MYSQL_WRITER, { plan });
    expect(result).toMatchObject({ passed: true, writer: { writable: true } });
  });

  it('fails a server with innodb_read_only=1, naming both settings', async () => {
    const result = await checkWriter(deps(writerRow('0', '1', '8.4.5')), MYSQL_WRITER, { plan });
    expect(result.failures).toEqual([
      expect.stringContaining('refuses writes (read_only=0, innodb_read_only=1)'),
    ]);
    expect(result.inconclusive).toBe(false);
  });

  it.each([
    [writerRow('ON', '0', '8.4.5'), '@@global.read_only must be 0 or 1, got: "ON"'],
    [writerRow('0', null, '8.4.5'), '@@global.innodb_read_only must be 0 or 1, got: null'],
    [writerRow('0', '0', null), '@@version must be a version, got: null'],
    [server({ [MYSQL_WRITER_SQL]: { columns: ['ro'], rows: [] } }), 'the query returned no row'],
  ])('cannot check a row it does not understand, and says what it got', async (db, reason) => {
    const d = deps(db);
    const result = await checkWriter(d, MYSQL_WRITER, { plan });
    expect(result).toMatchObject({ passed: false, inconclusive: true });
    expect(result.failures).toEqual([
      `Could not query the database behind "platform-db" (${reason}). Check that it accepts ` +
        'connections and that the database secret is current; the next attempt reconnects.',
    ]);
    expect(d.resetDb).toHaveBeenCalled();
  });

  it.each([
    ['8.4.5', '8.4.5', true],
    ['8.4.5-log', '8.4.5', true],
    ['10.11.6-MariaDB-0+deb12u1', '10.11.6', true],
    ['8.4.5', '8.4', true],
    ['8.4.4', '8.4.5', false],
    ['8.4.50', '8.4.5', false],
    ['8.0.42', '8.4.5', false],
    ['unknown', '8.4.5', false],
  ])('reads @@version %j as running %j: %j', (reported, expected, runs) => {
    expect(mysqlRuns(reported, expected)).toBe(runs);
  });
});

describe('blue as an external binlog replica', () => {
  const replica = (columns: string[], ...rows: (string | null)[][]) =>
    server({ [MYSQL_LIMITATION_SQL]: { columns, rows } });

  it('names the source and the 8.0 procedures on MySQL 8.0 (Source_* columns, default channel)', async () => {
    const db = replica(
      [
        'Replica_IO_State',
        'Source_Host',
        'Source_Port',
        'Replica_IO_Running',
        'Replica_SQL_Running',
        'Channel_Name',
      ],
      ['Waiting for source to send event', 'onprem.example.net', '3306', 'Yes', 'Yes', ''],
    );
    expect(await replicaLimitations(db, plan)).toEqual([
      '"platform-db" is a binlog replica of onprem.example.net:3306 (replica I/O thread ' +
        'running: Yes, SQL thread running: Yes), and the blue DB instance of an RDS for MySQL ' +
        "blue/green deployment can't be an external binlog replica: stop and remove the " +
        'replication with CALL mysql.rds_stop_replication and CALL ' +
        'mysql.rds_reset_external_master before the upgrade (set it up again after the ' +
        'switchover if still needed).',
    ]);
  });

  it("names each channel and its own procedures on a multi-source replica, 8.4's words", async () => {
    const db = replica(
      ['Source_Host', 'Source_Port', 'Replica_IO_Running', 'Replica_SQL_Running', 'Channel_Name'],
      ['10.0.0.1', '3306', 'Yes', 'Yes', 'east'],
      ['10.0.0.2', '3306', 'No', 'No', 'west'],
    );
    const found = await replicaLimitations(db, { ...plan, currentEngineVersion: '8.4.5' });
    expect(found).toEqual([
      expect.stringContaining(
        '10.0.0.1:3306 (channel east) (replica I/O thread running: Yes, SQL thread running: Yes), and the blue DB instance',
      ),
      expect.stringContaining(
        "CALL mysql.rds_stop_replication_for_channel('west') and CALL mysql.rds_reset_external_source_for_channel('west')",
      ),
    ]);
  });

  it('passes blue with no replication channel', async () => {
    expect(await replicaLimitations(replica(['Source_Host']), plan)).toEqual([]);
  });

  it('reports a limitation query the server refuses as unchecked, not passed', async () => {
    const db: Selectable = {
      select: async (sql) => {
        if (sql === MYSQL_WRITER_SQL) {
          return { columns: ['ro', 'innodb_ro', 'version'], rows: [['0', '0', '8.0.42']] };
        }
        // As a server without the statement (MySQL 5.7) answers it.
        throw new MysqlError(1064, '42000', 'You have an error in your SQL syntax');
      },
    };
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'platform-db',
          DBInstanceStatus: 'available',
          EngineVersion: '8.0.42',
        },
      ],
    });
    const result = await checkWriter(deps(db), MYSQL_WRITER, {
      plan,
      expect: 'current',
      limitations: true,
    });
    expect(result).toMatchObject({ passed: false, inconclusive: true });
    expect(result.failures).toEqual([
      'Could not check the database behind "platform-db" for blue/green limitations (You have ' +
        'an error in your SQL syntax); the next attempt reconnects.',
    ]);
  });
});

describe('ending sessions on MySQL', () => {
  /** A former writer with these sessions, where killing `refuse` fails with `error`. */
  function formerWriter(ids: string[], refuse: Record<string, Error> = {}) {
    const killed: string[] = [];
    const db: SessionConnection & { killed: string[] } = {
      killed,
      closed: false,
      select: async (sql) => {
        expect(sql).toBe(MYSQL_CLIENT_SESSIONS_SQL);
        return { columns: ['id'], rows: ids.map((id) => [id]) };
      },
      query: async (sql) => {
        const id = /^CALL mysql\.rds_kill\((\d+)\)$/.exec(sql)?.[1] ?? '';
        const error = refuse[id];
        if (error !== undefined) throw error;
        killed.push(id);
        return { affectedRows: 0, warnings: 0 };
      },
      close: jest.fn(async () => undefined),
    };
    return db;
  }

  it('tries every session, then throws naming each it could not end and why', async () => {
    const db = formerWriter(['11', '12', '13'], {
      12: new MysqlError(
        1227,
        '42000',
        "Access denied; you need (at least one of) the SUPER privilege(s) for 'admin'@'%'",
      ),
    });
    await expect(MYSQL_SESSIONS.endSessions(db)).rejects.toThrow(
      "could not end session(s) 12 (Access denied; you need (at least one of) the SUPER privilege(s) for 'admin' (host '%')); ended 2 of 3",
    );
    expect(db.killed).toEqual(['11', '13']);
  });

  it("ends the failed writer's sessions after a restore, on its own endpoint, and closes", async () => {
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-failed1' }).resolves({
      DBInstances: [
        { Endpoint: { Address: 'platform-db-failed1.abc.eu-west-1.rds.amazonaws.com' } },
      ],
    });
    const db = formerWriter(['7']);
    const dbAt = jest.fn(async () => db);
    expect(
      await endSessionsOnFormerWriter(
        { rds: new RDSClient({}), dbAt },
        MYSQL_SESSIONS,
        plan,
        'failed-writer',
      ),
    ).toEqual({
      instance: 'platform-db-failed1',
      ended: 1,
      detail:
        'ended 1 client session(s) on platform-db-failed1 (the failed writer, fenced read-only)',
    });
    expect(dbAt).toHaveBeenCalledWith('platform-db-failed1.abc.eu-west-1.rds.amazonaws.com');
    expect(db.close).toHaveBeenCalled();
  });

  it('connects to nothing when there is no old blue', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} }));
    const dbAt = jest.fn();
    expect(
      await endSessionsOnFormerWriter({ rds: new RDSClient({}), dbAt }, MYSQL_SESSIONS, plan),
    ).toEqual({
      instance: null,
      ended: 0,
      detail: 'platform-db-old1 does not exist: no old sessions to end',
    });
    expect(dbAt).not.toHaveBeenCalled();
  });

  it.each([0, -1, 1.5, Number.NaN])('refuses to build a kill for session id %p', (id) => {
    expect(() => mysqlKillSql(id)).toThrow(`session id must be a positive integer, got: ${id}`);
  });
});
