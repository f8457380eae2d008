import {
  type DBCluster,
  DBClusterNotFoundFault,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { endOldSessions } from '../../../lambda/verify-writer/old-sessions';
import { type Queryable, verifyWriter } from '../../../lambda/verify-writer/verify-writer';
import { testPlan } from '../../helpers/plan';

/**
 * The RDS side of the writer check for an Aurora PostgreSQL plan: the DB cluster under the
 * production name (DescribeDBClusters), with the PostgreSQL dialect on the database side.
 */
const rds = mockClient(RDSClient);
const plan = testPlan({
  engine: 'aurora-postgresql',
  sourceArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:platform-db',
  currentEngineVersion: '16.6',
  targetEngineVersion: '17.4',
});
const row = (ro: string, version: string) => ({ rows: [{ ro, recovery: false, version }] });
let answer = row('off', '17.4');
const db: Queryable = { query: async () => answer };
const deps = { rds: new RDSClient({}), db: async () => db, resetDb: async () => undefined };

function cluster(overrides: Partial<DBCluster> = {}): void {
  rds.on(DescribeDBClustersCommand, { DBClusterIdentifier: 'platform-db' }).resolves({
    DBClusters: [
      {
        DBClusterIdentifier: 'platform-db',
        Status: 'available',
        EngineVersion: '17.4',
        DeletionProtection: true,
        DBClusterMembers: [
          { DBInstanceIdentifier: 'platform-db-reader', IsClusterWriter: false },
          { DBInstanceIdentifier: 'platform-db-writer', IsClusterWriter: true },
        ],
        ...overrides,
      },
    ],
  });
}

beforeEach(() => {
  rds.reset();
  answer = row('off', '17.4');
});

describe('the writer check on an Aurora PostgreSQL cluster', () => {
  it('passes the available cluster on the target version, reading it at cluster level', async () => {
    cluster();
    expect(await verifyWriter(deps, { plan })).toEqual({
      passed: true,
      inconclusive: false,
      failures: [],
      writer: {
        identifier: 'platform-db',
        engineVersion: '17.4',
        writable: true,
        deletionProtection: true,
      },
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBClustersCommand, {
      DBClusterIdentifier: 'platform-db',
    });
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
  });

  it('reports deletion protection off without failing', async () => {
    cluster({ DeletionProtection: false });
    const result = await verifyWriter(deps, { plan });
    expect(result.passed).toBe(true);
    expect(result.writer?.deletionProtection).toBe(false);
  });

  it('fails a cluster on another version, not available, still a replica, or without a writer', async () => {
    cluster({
      EngineVersion: '16.6',
      Status: 'modifying',
      ReplicationSourceIdentifier: 'arn:aws:rds:eu-west-1:123456789012:cluster:platform-db-old1',
      DBClusterMembers: [{ DBInstanceIdentifier: 'platform-db-reader', IsClusterWriter: false }],
    });
    const result = await verifyWriter(deps, { plan });
    expect(result.passed).toBe(false);
    expect(result.inconclusive).toBe(false);
    expect(result.failures).toEqual([
      'RDS says "platform-db" runs 16.6, not the target 17.4: the switchover has not moved ' +
        'production to green. Check the blue/green deployment in the RDS console before resuming writes.',
      '"platform-db" is "modifying", not "available". Wait for it to become available and verify again.',
      '"platform-db" is still a read replica of arn:aws:rds:eu-west-1:123456789012:cluster:platform-db-old1, ' +
        'so it cannot take writes. Check the blue/green deployment in the RDS console before resuming writes.',
      'DB cluster "platform-db" has no writer instance.',
    ]);
  });

  it('names a DB cluster when none answers to the name', async () => {
    rds
      .on(DescribeDBClustersCommand)
      .rejects(new DBClusterNotFoundFault({ message: 'not found', $metadata: {} }));
    const result = await verifyWriter(deps, { plan });
    expect(result.writer).toBeNull();
    expect(result.failures).toEqual([
      'DB cluster "platform-db" was not found after the switchover. Open Blue/Green ' +
        'deployments in the RDS console to see which cluster now serves production before ' +
        'doing anything else.',
    ]);
  });

  it('tells a read-only restored writer to check its DB cluster parameter group and writer', async () => {
    cluster({ EngineVersion: '16.6' });
    answer = row('on', '16.6');
    const result = await verifyWriter(deps, { plan, expect: 'current', restored: true });
    expect(result.failures).toEqual([
      'The database behind "platform-db" refuses writes (transaction_read_only=on, ' +
        'pg_is_in_recovery=false). Check that platform-db uses its "-restore" DB cluster ' +
        'parameter group, in-sync, with default_transaction_read_only=0, and its writer was ' +
        'rebooted since (docs/runbook.md 3.2).',
    ]);
  });
});

describe('ending the sessions on a former writer cluster', () => {
  const ended: string[] = [];
  const sessions = {
    rds: new RDSClient({}),
    dbAt: async (host: string) => {
      ended.push(host);
      return { query: async () => ({ rows: [{ ended: 3 }] }), end: async () => undefined };
    },
  };
  beforeEach(() => ended.splice(0));

  it.each([
    ['old-blue', 'platform-db-old1'],
    ['failed-writer', 'platform-db-failed1'],
  ] as const)('ends them on %s at the cluster endpoint of %s', async (on, id) => {
    const endpoint = `${id}.cluster-c7tj4example.eu-west-1.rds.amazonaws.com`;
    rds
      .on(DescribeDBClustersCommand, { DBClusterIdentifier: id })
      .resolves({ DBClusters: [{ DBClusterIdentifier: id, Endpoint: endpoint }] });
    const result = await endOldSessions(sessions, plan, on);
    expect(ended).toEqual([endpoint]);
    expect(result).toMatchObject({ instance: id, ended: 3 });
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
  });

  it('has nothing to end when the former writer cluster does not exist', async () => {
    rds
      .on(DescribeDBClustersCommand)
      .rejects(new DBClusterNotFoundFault({ message: 'not found', $metadata: {} }));
    expect(await endOldSessions(sessions, plan, 'failed-writer')).toEqual({
      instance: null,
      ended: 0,
      detail: 'platform-db-failed1 does not exist: no old sessions to end',
    });
    expect(ended).toEqual([]);
  });

  it('refuses an endpoint that does not carry the cluster name (a rename not settled)', async () => {
    // Reported under the old name: it may be the one production answers to now.
    rds.on(DescribeDBClustersCommand).resolves({
      DBClusters: [
        {
          DBClusterIdentifier: 'platform-db-failed1',
          Endpoint: 'platform-db.cluster-c7tj4example.eu-west-1.rds.amazonaws.com',
        },
      ],
    });
    await expect(endOldSessions(sessions, plan, 'failed-writer')).rejects.toThrow(
      "cluster endpoint platform-db.cluster-c7tj4example.eu-west-1.rds.amazonaws.com is not yet platform-db-failed1's: no session ended",
    );
    expect(ended).toEqual([]);
  });
});
