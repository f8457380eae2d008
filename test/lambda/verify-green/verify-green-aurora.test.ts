import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  type BlueGreenDeployment,
  type DBCluster,
  DBClusterNotFoundFault,
  type DBInstance,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { verifyGreen } from '../../../lambda/verify-green/verify-green';
import { testPlan } from '../../helpers/plan';

const ARN = 'arn:aws:rds:eu-west-1:123456789012';
const BLUE_ARN = `${ARN}:cluster:platform-db`;
const GREEN_ARN = `${ARN}:cluster:platform-db-green-abc123`;
const NOW = new Date('2026-11-22T04:00:00Z');
const rds = mockClient(RDSClient);
const cloudwatch = mockClient(CloudWatchClient);
const clients = { rds: new RDSClient({}), cloudwatch: new CloudWatchClient({}) };

type Engine = 'aurora-postgresql' | 'aurora-mysql';
const TARGET: Record<Engine, string> = {
  'aurora-postgresql': '17.4',
  'aurora-mysql': '8.0.mysql_aurora.3.12.0',
};
const planFor = (engine: Engine): UpgradePlan =>
  testPlan({
    engine,
    sourceArn: BLUE_ARN,
    currentEngineVersion: engine === 'aurora-mysql' ? '8.0.mysql_aurora.3.10.0' : '16.6',
    targetEngineVersion: TARGET[engine],
    maxReplicationLagMb: 64,
  });

interface World {
  deployment: BlueGreenDeployment;
  clusters: Record<string, DBCluster>;
  greenInstances: DBInstance[];
  lag: number[];
}
let world: World;

function healthy(engine: Engine): World {
  const members = (prefix: string) => [
    { DBInstanceIdentifier: `${prefix}-writer`, IsClusterWriter: true },
    { DBInstanceIdentifier: `${prefix}-reader`, IsClusterWriter: false },
  ];
  return {
    deployment: {
      BlueGreenDeploymentIdentifier: 'bgd-1',
      Status: 'AVAILABLE',
      Source: BLUE_ARN,
      Target: GREEN_ARN,
      SwitchoverDetails: [
        { SourceMember: BLUE_ARN, TargetMember: GREEN_ARN, Status: 'AVAILABLE' },
        {
          SourceMember: `${ARN}:db:platform-db-writer`,
          TargetMember: `${ARN}:db:platform-db-writer-green-x1`,
          Status: 'AVAILABLE',
        },
      ],
    },
    clusters: {
      'platform-db': {
        DBClusterIdentifier: 'platform-db',
        DBClusterMembers: members('platform-db'),
      },
      [GREEN_ARN]: {
        DBClusterIdentifier: 'platform-db-green-abc123',
        Status: 'available',
        EngineVersion: TARGET[engine],
        DBClusterMembers: [
          { DBInstanceIdentifier: 'platform-db-writer-green-x1', IsClusterWriter: true },
          { DBInstanceIdentifier: 'platform-db-reader-green-y2', IsClusterWriter: false },
        ],
      },
    },
    greenInstances: ['platform-db-writer-green-x1', 'platform-db-reader-green-y2'].map((id) => ({
      DBInstanceIdentifier: id,
      DBInstanceStatus: 'available',
      EngineVersion: TARGET[engine],
    })),
    lag: [0, 1, 0],
  };
}

function wire(): void {
  rds.reset();
  cloudwatch.reset();
  rds.on(DescribeBlueGreenDeploymentsCommand).callsFake(() => ({
    BlueGreenDeployments: [world.deployment],
  }));
  rds.on(DescribeDBClustersCommand).callsFake(({ DBClusterIdentifier }) => {
    const c = world.clusters[DBClusterIdentifier];
    if (c === undefined) throw new DBClusterNotFoundFault({ message: 'gone', $metadata: {} });
    return { DBClusters: [c] };
  });
  rds.on(DescribeDBInstancesCommand).callsFake(() => ({ DBInstances: world.greenInstances }));
  cloudwatch
    .on(GetMetricDataCommand)
    .callsFake(() => ({ MetricDataResults: [{ Id: 'lag', Values: world.lag }] }));
}

const green = (): DBCluster => world.clusters[GREEN_ARN] as DBCluster;
const instance = (i: number): DBInstance => world.greenInstances[i] as DBInstance;
const run = (engine: Engine) =>
  verifyGreen(clients, { plan: planFor(engine), blueGreenDeploymentIdentifier: 'bgd-1' }, NOW);

describe('verify green for an Aurora cluster', () => {
  it("passes aurora-mysql, reading AuroraBinlogReplicaLag on green's writer", async () => {
    world = healthy('aurora-mysql');
    wire();
    const result = await run('aurora-mysql');
    expect(result.failures).toEqual([]);
    expect(result).toMatchObject({
      passed: true,
      replication: 'binlog',
      green: { identifier: 'platform-db-green-abc123', engineVersion: TARGET['aurora-mysql'] },
      lag: {
        metric: 'AuroraBinlogReplicaLag',
        dbInstanceIdentifier: 'platform-db-writer-green-x1',
        unit: 'Seconds',
        max: 1,
        inactiveMinutes: 0,
      },
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBClustersCommand, {
      DBClusterIdentifier: GREEN_ARN,
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      Filters: [{ Name: 'db-cluster-id', Values: ['platform-db-green-abc123'] }],
    });
    expect(cloudwatch).toHaveReceivedCommandWith(GetMetricDataCommand, {
      MetricDataQueries: [
        expect.objectContaining({
          MetricStat: expect.objectContaining({
            Metric: {
              Namespace: 'AWS/RDS',
              MetricName: 'AuroraBinlogReplicaLag',
              Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'platform-db-writer-green-x1' }],
            },
          }),
        }),
      ],
    });
  });

  it("passes aurora-postgresql, reading OldestReplicationSlotLag on blue's writer in MB", async () => {
    world = healthy('aurora-postgresql');
    world.lag = [10 * 1024 * 1024];
    wire();
    const result = await run('aurora-postgresql');
    expect(result.failures).toEqual([]);
    expect(result).toMatchObject({
      passed: true,
      replication: 'logical',
      lag: {
        metric: 'OldestReplicationSlotLag',
        dbInstanceIdentifier: 'platform-db-writer',
        unit: 'MB',
        max: 10,
        limit: 64,
      },
    });
  });

  const cases: [string, Engine, () => void, boolean, string][] = [
    [
      'green cluster is on another version',
      'aurora-postgresql',
      () => (green().EngineVersion = '16.6'),
      false,
      'Green DB cluster "platform-db-green-abc123" runs 16.6, not the target 17.4.',
    ],
    [
      'green cluster is still upgrading',
      'aurora-postgresql',
      () => Object.assign(green(), { EngineVersion: '16.6', Status: 'upgrading' }),
      true,
      'It is still upgrading.',
    ],
    [
      'green cluster is stopped',
      'aurora-mysql',
      () => (green().Status = 'stopped'),
      false,
      'Green DB cluster "platform-db-green-abc123" is "stopped", not "available". RDS does not bring it back',
    ],
    [
      'green cluster has pending modifications',
      'aurora-mysql',
      () => (green().PendingModifiedValues = { EngineVersion: '8.0.mysql_aurora.3.13.0' }),
      true,
      'Green DB cluster "platform-db-green-abc123" has pending modifications (EngineVersion)',
    ],
    [
      'a green reader is rebooting',
      'aurora-mysql',
      () => (instance(1).DBInstanceStatus = 'rebooting'),
      true,
      'Green instance "platform-db-reader-green-y2" is "rebooting", not "available".',
    ],
    [
      'a green reader runs another version',
      'aurora-postgresql',
      () => (instance(1).EngineVersion = '16.6'),
      false,
      'Green instance "platform-db-reader-green-y2" runs 16.6, not the target 17.4.',
    ],
    [
      'a green instance has pending modifications',
      'aurora-postgresql',
      () => (instance(0).PendingModifiedValues = { DBInstanceClass: 'db.r6g.large' }),
      true,
      'Green instance "platform-db-writer-green-x1" has pending modifications (DBInstanceClass)',
    ],
    [
      'a member of the green cluster cannot be described',
      'aurora-postgresql',
      () => world.greenInstances.pop(),
      false,
      'lists instance(s) platform-db-reader-green-y2 that RDS cannot describe',
    ],
    [
      'the deployment names no green cluster',
      'aurora-postgresql',
      () =>
        Object.assign(world.deployment, {
          Target: `${ARN}:db:platform-db-green`,
          SwitchoverDetails: [{ SourceMember: 'x', TargetMember: 'y', Status: 'AVAILABLE' }],
        }),
      false,
      `names no green DB cluster for ${BLUE_ARN} (got: ${ARN}:db:platform-db-green)`,
    ],
    [
      'the green cluster is gone',
      'aurora-mysql',
      () => (world.clusters = { 'platform-db': world.clusters['platform-db'] as DBCluster }),
      false,
      `Green DB cluster ${GREEN_ARN} was not found`,
    ],
    [
      'binlog lag is over the limit',
      'aurora-mysql',
      () => (world.lag = [2, 45]),
      true,
      'Replication to green lags 45 s (the most in the last 5 minutes, AuroraBinlogReplicaLag on "platform-db-writer-green-x1"), over the limit of 30 s.',
    ],
    [
      'binlog replication is not active (-1)',
      'aurora-mysql',
      () => (world.lag = [-1, -1]),
      true,
      'AuroraBinlogReplicaLag on "platform-db-writer-green-x1" was -1 in 2 of the last 5 minutes',
    ],
    [
      'the logical slot lags over the limit',
      'aurora-postgresql',
      () => (world.lag = [100 * 1024 * 1024]),
      true,
      'Replication to green lags 100.0 MB',
    ],
    [
      'CloudWatch has no lag data',
      'aurora-postgresql',
      () => (world.lag = []),
      true,
      'CloudWatch has no OldestReplicationSlotLag for "platform-db-writer"',
    ],
    [
      'blue has no writer for the slot lag',
      'aurora-postgresql',
      () => ((world.clusters['platform-db'] as DBCluster).DBClusterMembers = []),
      true,
      'Blue DB cluster "platform-db" has no writer instance, so OldestReplicationSlotLag on its writer cannot be read',
    ],
    [
      'green has no writer for the binlog lag',
      'aurora-mysql',
      () => (green().DBClusterMembers = [{ DBInstanceIdentifier: 'platform-db-reader-green-y2' }]),
      true,
      'has no writer instance yet, so its AuroraBinlogReplicaLag cannot be read',
    ],
  ];

  it.each(cases)('fails when %s (%s)', async (_what, engine, change, isTransient, sentence) => {
    world = healthy(engine);
    change();
    wire();
    const result = await run(engine);
    expect(result.passed).toBe(false);
    expect(result.transient).toBe(isTransient);
    expect(result.failures).toEqual(expect.arrayContaining([expect.stringContaining(sentence)]));
  });
});
