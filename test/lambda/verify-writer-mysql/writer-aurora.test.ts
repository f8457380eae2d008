import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { MysqlRows } from '../../../lambda/shared/mysql-client';
import { checkWriter } from '../../../lambda/verify-writer/writer-check';
import { AURORA_MYSQL_WRITER_SQL, MYSQL_WRITER_SQL } from '../../../lambda/verify-writer-mysql/sql';
import {
  AURORA_MYSQL_WRITER,
  auroraMysqlRuns,
  auroraMysqlVersion,
  MYSQL_WRITER,
  mysqlWriterFor,
  type Selectable,
} from '../../../lambda/verify-writer-mysql/writer';
import { testPlan } from '../../helpers/plan';

/**
 * The MySQL side of the writer check on Aurora MySQL: @@version is the MySQL version Aurora is
 * compatible with (8.0.42 for 3.10 and 3.12 alike), @@aurora_version Aurora's own, and RDS
 * spells the version 8.0.mysql_aurora.3.12.0. An Aurora server is a stand-in that answers the
 * Aurora statement only (MariaDB has no @@aurora_version).
 */
const rds = mockClient(RDSClient);
const plan = testPlan({
  engine: 'aurora-mysql',
  sourceArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:platform-db',
  currentEngineVersion: '8.0.mysql_aurora.3.10.0',
  targetEngineVersion: '8.0.mysql_aurora.3.12.0',
});

function aurora(ro: string, innodbRo: string, version: string, auroraVersion: string): Selectable {
  return {
    select: async (sql): Promise<MysqlRows> => {
      if (sql !== AURORA_MYSQL_WRITER_SQL) throw new Error(`unexpected statement: ${sql}`);
      return {
        columns: ['ro', 'innodb_ro', 'version', 'aurora_version'],
        rows: [[ro, innodbRo, version, auroraVersion]],
      };
    },
  };
}

const deps = (db: Selectable) => ({
  rds: new RDSClient({}),
  db: async () => db,
  resetDb: async () => undefined,
});

beforeEach(() => {
  rds.reset();
  rds.on(DescribeDBClustersCommand).resolves({
    DBClusters: [
      {
        DBClusterIdentifier: 'platform-db',
        Status: 'available',
        EngineVersion: '8.0.mysql_aurora.3.12.0',
        DeletionProtection: true,
        DBClusterMembers: [{ DBInstanceIdentifier: 'platform-db-writer', IsClusterWriter: true }],
      },
    ],
  });
});

describe('the writer check on Aurora MySQL', () => {
  it('passes the new writer by its Aurora version, asking RDS at cluster level', async () => {
    const result = await checkWriter(
      deps(aurora('0', '0', '8.0.42', '3.12.0')),
      AURORA_MYSQL_WRITER,
      {
        plan,
      },
    );
    expect(result).toEqual({
      passed: true,
      inconclusive: false,
      failures: [],
      writer: {
        identifier: 'platform-db',
        engineVersion: '8.0.mysql_aurora.3.12.0',
        writable: true,
        deletionProtection: true,
      },
    });
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
  });

  it('takes old blue, which shares @@version 8.0.42, for the wrong server, not a read-only writer', async () => {
    const result = await checkWriter(
      deps(aurora('1', '0', '8.0.42', '3.10.0')),
      AURORA_MYSQL_WRITER,
      {
        plan,
      },
    );
    expect(result.passed).toBe(false);
    expect(result.inconclusive).toBe(true);
    expect(result.failures).toEqual([
      'The database behind "platform-db" reports @@version and @@aurora_version ' +
        '8.0.mysql_aurora.3.10.0, not 8.0.mysql_aurora.3.12.0: the connection reached the old ' +
        'instance. Wait a minute for the endpoint to follow the switchover and verify again ' +
        '(the next attempt reconnects).',
    ]);
  });

  it('fails a read-only writer on the target version, naming read_only', async () => {
    const result = await checkWriter(
      deps(aurora('1', '0', '8.0.42', '3.12.0')),
      AURORA_MYSQL_WRITER,
      {
        plan,
      },
    );
    expect(result.inconclusive).toBe(false);
    expect(result.failures).toEqual([
      'The database behind "platform-db" refuses writes (read_only=1, innodb_read_only=0). ' +
        'Keep the consumers paused and check the blue/green deployment in the RDS console.',
    ]);
  });

  it('spells the server version as RDS does, and matches it number by number', () => {
    expect(auroraMysqlVersion('8.0.39', '3.10.0')).toBe('8.0.mysql_aurora.3.10.0');
    expect(auroraMysqlVersion('8.4.7', '8.4.7')).toBe('8.4.mysql_aurora.8.4.7');
    expect(auroraMysqlRuns('8.0.mysql_aurora.3.08.0', '8.0.mysql_aurora.3.8.0')).toBe(true);
    expect(auroraMysqlRuns('8.0.mysql_aurora.3.10.0', '8.0.mysql_aurora.3.10.1')).toBe(false);
    expect(auroraMysqlRuns('5.7.mysql_aurora.3.10.0', '8.0.mysql_aurora.3.10.0')).toBe(false);
    expect(auroraMysqlRuns('8.0.42', '8.0.mysql_aurora.3.10.0')).toBe(false);
  });

  it('chooses the dialect by the plan engine', () => {
    expect(mysqlWriterFor('aurora-mysql')).toBe(AURORA_MYSQL_WRITER);
    expect(mysqlWriterFor('mysql')).toBe(MYSQL_WRITER);
    expect(MYSQL_WRITER_SQL).not.toContain('aurora_version');
  });
});
