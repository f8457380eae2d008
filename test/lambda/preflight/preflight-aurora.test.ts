import {
  DescribeListenersCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import {
  type DBCluster,
  DBClusterNotFoundFault,
  type DBInstance,
  DBInstanceNotFoundFault,
  DBParameterGroupNotFoundFault,
  type DBProxy,
  type DBProxyTarget,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBClusterParametersCommand,
  DescribeDBClustersCommand,
  DescribeDBEngineVersionsCommand,
  DescribeDBInstancesCommand,
  DescribeDBProxiesCommand,
  DescribeDBProxyTargetsCommand,
  DescribeIntegrationsCommand,
  type Integration,
  RDSClient,
} from '@aws-sdk/client-rds';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { preflight, type PreflightEvent } from '../../../lambda/preflight/preflight';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { testPlan } from '../../helpers/plan';

const CLUSTER_ARN = 'arn:aws:rds:eu-west-1:123456789012:cluster:platform-db';
const LISTENER_ARN = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/e/1/2';
const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:quiet-upgrade';
const EXECUTION_ARN = 'arn:aws:states:eu-west-1:123456789012:execution:quiet-upgrade:run-2';
const meta = { $metadata: {} };

const rds = mockClient(RDSClient);
const sfn = mockClient(SFNClient);
const elb = mockClient(ElasticLoadBalancingV2Client);
const clients = {
  rds: new RDSClient({}),
  sfn: new SFNClient({}),
  sqs: new SQSClient({}),
  lambda: new LambdaClient({}),
  elb: new ElasticLoadBalancingV2Client({}),
};

type Engine = 'aurora-postgresql' | 'aurora-mysql';
const VERSIONS: Record<
  Engine,
  { from: string; to: string; blueGroup: string; greenGroup: string }
> = {
  'aurora-postgresql': {
    from: '16.6',
    to: '17.4',
    blueGroup: 'cluster-params-apg16',
    greenGroup: 'cluster-params-apg17',
  },
  'aurora-mysql': {
    from: '8.0.mysql_aurora.3.10.0',
    to: '8.0.mysql_aurora.3.12.0',
    blueGroup: 'cluster-params-ams80',
    greenGroup: 'cluster-params-ams80-green',
  },
};

const planFor = (engine: Engine): UpgradePlan =>
  testPlan({
    engine,
    sourceIdentifier: 'platform-db',
    sourceArn: CLUSTER_ARN,
    currentEngineVersion: VERSIONS[engine].from,
    targetEngineVersion: VERSIONS[engine].to,
    targetParameterGroupName: VERSIONS[engine].greenGroup,
    listenerArn: LISTENER_ARN,
  });
const eventFor = (engine: Engine): PreflightEvent => ({
  plan: planFor(engine),
  stateMachineArn: STATE_MACHINE_ARN,
  executionArn: EXECUTION_ARN,
});

/** The AWS side of one test: change it before calling preflight. */
interface World {
  clusters: Record<string, DBCluster>;
  instances: Record<string, DBInstance>;
  /** Cluster parameter groups: name -> parameter -> value. */
  groups: Record<string, Record<string, string>>;
  validTargets: string[];
  integrations: Integration[];
  proxies: DBProxy[];
  proxyTargets: DBProxyTarget[];
  deployments: { BlueGreenDeploymentIdentifier: string; Status: string }[];
}
let world: World;

function healthy(engine: Engine): World {
  const v = VERSIONS[engine];
  const params: Record<Engine, Record<string, string>> = {
    'aurora-postgresql': { 'rds.logical_replication': '1', synchronous_commit: 'on' },
    'aurora-mysql': { binlog_format: 'ROW', event_scheduler: 'OFF' },
  };
  return {
    clusters: {
      'platform-db': {
        DBClusterIdentifier: 'platform-db',
        DBClusterArn: CLUSTER_ARN,
        Engine: engine,
        EngineVersion: v.from,
        EngineMode: 'provisioned',
        Status: 'available',
        BackupRetentionPeriod: 7,
        DBClusterParameterGroup: v.blueGroup,
        DBClusterMembers: [
          {
            DBInstanceIdentifier: 'platform-db-writer',
            IsClusterWriter: true,
            DBClusterParameterGroupStatus: 'in-sync',
          },
          {
            DBInstanceIdentifier: 'platform-db-reader',
            IsClusterWriter: false,
            DBClusterParameterGroupStatus: 'in-sync',
          },
        ],
      },
    },
    instances: {
      'platform-db-writer': {
        DBInstanceIdentifier: 'platform-db-writer',
        DBInstanceStatus: 'available',
      },
      'platform-db-reader': {
        DBInstanceIdentifier: 'platform-db-reader',
        DBInstanceStatus: 'available',
      },
    },
    groups: { [v.blueGroup]: { ...params[engine] }, [v.greenGroup]: { ...params[engine] } },
    validTargets: [v.to],
    integrations: [],
    proxies: [],
    proxyTargets: [],
    deployments: [],
  };
}

const blueCluster = (): DBCluster => {
  const c = world.clusters['platform-db'];
  if (c === undefined) throw new Error('test world has no blue cluster');
  return c;
};

function wire(): void {
  rds.reset();
  sfn.reset();
  elb.reset();
  rds.on(DescribeDBClustersCommand).callsFake(({ DBClusterIdentifier }) => {
    const c = world.clusters[DBClusterIdentifier];
    if (c === undefined) throw new DBClusterNotFoundFault({ message: 'not found', ...meta });
    return { DBClusters: [c] };
  });
  rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
    const db = world.instances[DBInstanceIdentifier];
    if (db === undefined) throw new DBInstanceNotFoundFault({ message: 'not found', ...meta });
    return { DBInstances: [db] };
  });
  // Two pages per group, so a value on the second page must still be found.
  rds
    .on(DescribeDBClusterParametersCommand)
    .callsFake(({ DBClusterParameterGroupName, Marker }) => {
      const group = world.groups[DBClusterParameterGroupName];
      if (group === undefined) {
        throw new DBParameterGroupNotFoundFault({ message: 'not found', ...meta });
      }
      const params = Object.entries(group).map(([ParameterName, ParameterValue]) => ({
        ParameterName,
        ParameterValue,
      }));
      return Marker === undefined
        ? { Parameters: [{ ParameterName: 'max_connections' }], Marker: 'page-2' }
        : { Parameters: params };
    });
  rds.on(DescribeDBEngineVersionsCommand).callsFake(() => ({
    DBEngineVersions: [
      { ValidUpgradeTarget: world.validTargets.map((EngineVersion) => ({ EngineVersion })) },
    ],
  }));
  rds.on(DescribeIntegrationsCommand).callsFake(() => ({ Integrations: world.integrations }));
  rds.on(DescribeDBProxiesCommand).callsFake(() => ({ DBProxies: world.proxies }));
  rds.on(DescribeDBProxyTargetsCommand).callsFake(() => ({ Targets: world.proxyTargets }));
  rds
    .on(DescribeBlueGreenDeploymentsCommand)
    .callsFake(() => ({ BlueGreenDeployments: world.deployments }));
  sfn.on(ListExecutionsCommand).resolves({
    executions: [
      {
        executionArn: EXECUTION_ARN,
        stateMachineArn: STATE_MACHINE_ARN,
        name: 'run-2',
        status: 'RUNNING',
        startDate: new Date('2026-11-22T04:00:00Z'),
      },
    ],
  });
  elb.on(DescribeListenersCommand).resolves({ Listeners: [{ ListenerArn: LISTENER_ARN }] });
}

const COMMON_ORDER = [
  'no-managed-master-password',
  'no-global-database',
  'no-serverless-v1',
  'no-cross-region-replica',
];

describe('preflight of an Aurora DB cluster', () => {
  it('passes a ready aurora-postgresql cluster, reading both DB cluster parameter groups', async () => {
    world = healthy('aurora-postgresql');
    wire();
    const result = await preflight(clients, eventFor('aurora-postgresql'));
    expect(result.failures).toEqual([]);
    expect(result.passed).toBe(true);
    expect(result.checks.map((c) => c.name)).toEqual([
      'source-available',
      'writer-available',
      'valid-upgrade-target',
      'blue-green-source-version',
      'automated-backups',
      'cluster-parameter-group',
      'green-cluster-parameter-group',
      ...COMMON_ORDER,
      'no-zero-etl-integration',
      'no-other-blue-green-deployment',
      'no-leftover-clusters',
      'rds-proxy',
      'single-flight',
      'listener',
    ]);
    expect(result.source).toEqual({
      identifier: 'platform-db',
      arn: CLUSTER_ARN,
      engineVersion: '16.6',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBEngineVersionsCommand, {
      Engine: 'aurora-postgresql',
      EngineVersion: '16.6',
    });
    for (const group of ['cluster-params-apg16', 'cluster-params-apg17']) {
      expect(rds).toHaveReceivedCommandWith(DescribeDBClusterParametersCommand, {
        DBClusterParameterGroupName: group,
      });
    }
    expect(rds).toHaveReceivedCommandWith(DescribeDBClustersCommand, {
      DBClusterIdentifier: 'platform-db-old1',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: 'platform-db-writer-old1',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeBlueGreenDeploymentsCommand, {
      Filters: [{ Name: 'source', Values: [CLUSTER_ARN] }],
    });
  });

  it('passes a ready aurora-mysql cluster, with the MySQL-only checks and not the PostgreSQL ones', async () => {
    world = healthy('aurora-mysql');
    wire();
    const result = await preflight(clients, eventFor('aurora-mysql'));
    expect(result.failures).toEqual([]);
    expect(result.passed).toBe(true);
    const names = result.checks.map((c) => c.name);
    expect(names).toContain('no-backtrack');
    expect(names).not.toContain('blue-green-source-version');
    expect(result.checks.find((c) => c.name === 'green-cluster-parameter-group')?.detail).toBe(
      'binlog_format=ROW, event_scheduler=OFF in "cluster-params-ams80-green", the group green gets',
    );
  });

  const apg = 'aurora-postgresql' as const;
  const ams = 'aurora-mysql' as const;
  const cases: [string, Engine, (w: World) => void, string, string][] = [
    [
      'the cluster is not available',
      apg,
      () => (blueCluster().Status = 'modifying'),
      'source-available',
      'Source DB cluster "platform-db" is "modifying", not "available"',
    ],
    [
      'the writer instance is not available',
      apg,
      (w) => ((w.instances['platform-db-writer'] as DBInstance).DBInstanceStatus = 'rebooting'),
      'writer-available',
      'Writer instance "platform-db-writer" of DB cluster "platform-db" is "rebooting"',
    ],
    [
      'the cluster has no writer',
      apg,
      () => (blueCluster().DBClusterMembers = []),
      'writer-available',
      'DB cluster "platform-db" has no writer instance',
    ],
    [
      'RDS cannot upgrade to the target',
      apg,
      (w) => (w.validTargets = ['16.8']),
      'valid-upgrade-target',
      'which RDS cannot upgrade to 17.4; valid targets from 16.6: 16.8',
    ],
    [
      'Aurora PostgreSQL is older than blue/green supports',
      apg,
      () => (blueCluster().EngineVersion = '15.3'),
      'blue-green-source-version',
      'runs aurora-postgresql 15.3, which blue/green deployments do not support. Upgrade "platform-db" in place to 15.4',
    ],
    [
      'Aurora PostgreSQL is a major AWS does not list',
      apg,
      () => (blueCluster().EngineVersion = '18.1'),
      'blue-green-source-version',
      'runs aurora-postgresql 18.1, which blue/green deployments do not support',
    ],
    [
      'automated backups report 0 days',
      apg,
      () => (blueCluster().BackupRetentionPeriod = 0),
      'automated-backups',
      'DB cluster "platform-db" reports no automated backups (BackupRetentionPeriod 0)',
    ],
    [
      "the writer's cluster parameter group is not in sync",
      apg,
      () => {
        const [writer] = blueCluster().DBClusterMembers ?? [];
        if (writer) writer.DBClusterParameterGroupStatus = 'pending-reboot';
      },
      'cluster-parameter-group',
      'has its DB cluster parameter group "pending-reboot", not "in-sync"',
    ],
    [
      "blue's group has logical replication off",
      apg,
      (w) =>
        ((w.groups['cluster-params-apg16'] as Record<string, string>)['rds.logical_replication'] =
          '0'),
      'cluster-parameter-group',
      'rds.logical_replication is "0" in DB cluster parameter group "cluster-params-apg16" (blue, "platform-db"); set it to 1.',
    ],
    [
      "blue's group leaves synchronous_commit to the engine default",
      apg,
      (w) => delete (w.groups['cluster-params-apg16'] as Record<string, string>).synchronous_commit,
      'cluster-parameter-group',
      'synchronous_commit is not set (the engine default) in DB cluster parameter group "cluster-params-apg16"',
    ],
    [
      "blue's cluster parameter group is gone",
      apg,
      (w) => delete w.groups['cluster-params-apg16'],
      'cluster-parameter-group',
      'DB cluster parameter group "cluster-params-apg16" of "platform-db" was not found',
    ],
    [
      "green's group has logical replication off",
      apg,
      (w) =>
        ((w.groups['cluster-params-apg17'] as Record<string, string>)['rds.logical_replication'] =
          '0'),
      'green-cluster-parameter-group',
      'rds.logical_replication is "0" in DB cluster parameter group "cluster-params-apg17" (green gets it)',
    ],
    [
      "green's group does not exist",
      apg,
      (w) => delete w.groups['cluster-params-apg17'],
      'green-cluster-parameter-group',
      'DB cluster parameter group "cluster-params-apg17" (plan.targetParameterGroupName), which green gets, was not found',
    ],
    [
      'the master password is managed in Secrets Manager',
      apg,
      () => (blueCluster().MasterUserSecret = { SecretArn: 'arn:secret', SecretStatus: 'active' }),
      'no-managed-master-password',
      'DB cluster "platform-db" has its master password managed by RDS in Secrets Manager (arn:secret)',
    ],
    [
      'the cluster is in a Global Database',
      apg,
      () => (blueCluster().GlobalClusterIdentifier = 'global-platform'),
      'no-global-database',
      'is a member of Aurora Global Database "global-platform"',
    ],
    [
      'the cluster is Serverless v1',
      apg,
      () => (blueCluster().EngineMode = 'serverless'),
      'no-serverless-v1',
      'is Aurora Serverless v1 (EngineMode "serverless")',
    ],
    [
      'the cluster is a cross-Region read replica',
      apg,
      () =>
        (blueCluster().ReplicationSourceIdentifier =
          'arn:aws:rds:us-east-1:123456789012:cluster:src'),
      'no-cross-region-replica',
      'is a read replica of arn:aws:rds:us-east-1:123456789012:cluster:src',
    ],
    [
      'the cluster has a cross-Region read replica',
      apg,
      () =>
        (blueCluster().ReadReplicaIdentifiers = ['arn:aws:rds:us-east-1:123456789012:cluster:dr']),
      'no-cross-region-replica',
      'has read replica cluster(s) arn:aws:rds:us-east-1:123456789012:cluster:dr',
    ],
    [
      'the cluster feeds a zero-ETL integration',
      apg,
      (w) =>
        (w.integrations = [
          { IntegrationName: 'to-redshift', SourceArn: CLUSTER_ARN, Status: 'active' },
        ]),
      'no-zero-etl-integration',
      'is the source of zero-ETL integration "to-redshift" (active)',
    ],
    [
      'another blue/green deployment has the cluster as its source',
      apg,
      (w) =>
        (w.deployments = [{ BlueGreenDeploymentIdentifier: 'bgd-other', Status: 'AVAILABLE' }]),
      'no-other-blue-green-deployment',
      'is already the source of blue/green deployment bgd-other (AVAILABLE)',
    ],
    [
      'an old blue cluster is left over',
      apg,
      (w) =>
        (w.clusters['platform-db-old1'] = {
          DBClusterIdentifier: 'platform-db-old1',
          Engine: 'aurora-postgresql',
          EngineVersion: '15.4',
          Status: 'available',
        }),
      'no-leftover-clusters',
      'DB cluster "platform-db-old1" (aurora-postgresql 15.4, available) is left from an earlier upgrade or restore',
    ],
    [
      'an old blue writer instance is left over',
      apg,
      (w) =>
        (w.instances['platform-db-writer-old1'] = {
          DBInstanceIdentifier: 'platform-db-writer-old1',
          DBInstanceStatus: 'available',
          DBClusterIdentifier: 'platform-db-old9',
        }),
      'no-leftover-clusters',
      'DB instance "platform-db-writer-old1" (available, in cluster platform-db-old9) is left',
    ],
    [
      'an RDS Proxy targets the cluster',
      apg,
      (w) => {
        w.proxies = [
          { DBProxyName: 'platform-proxy', EngineFamily: 'POSTGRESQL', Status: 'available' },
        ];
        w.proxyTargets = [{ Type: 'TRACKED_CLUSTER', RdsResourceId: 'platform-db' }];
      },
      'rds-proxy',
      'RDS Proxy "platform-proxy" targets platform-db (TRACKED_CLUSTER) of DB cluster "platform-db"',
    ],
    [
      "binary logging is off in blue's group",
      ams,
      (w) => ((w.groups['cluster-params-ams80'] as Record<string, string>).binlog_format = 'OFF'),
      'cluster-parameter-group',
      'binlog_format is "OFF" in DB cluster parameter group "cluster-params-ams80" (blue, "platform-db"); set it to ROW',
    ],
    [
      "green's group runs the Event Scheduler",
      ams,
      (w) =>
        ((w.groups['cluster-params-ams80-green'] as Record<string, string>).event_scheduler = 'ON'),
      'green-cluster-parameter-group',
      'event_scheduler is "ON" in DB cluster parameter group "cluster-params-ams80-green" (green gets it); set it to OFF.',
    ],
    [
      "green's group has binary logging off",
      ams,
      (w) =>
        delete (w.groups['cluster-params-ams80-green'] as Record<string, string>).binlog_format,
      'green-cluster-parameter-group',
      'binlog_format is not set (the engine default) in DB cluster parameter group "cluster-params-ams80-green"',
    ],
    [
      'Aurora MySQL has backtracking on',
      ams,
      () => (blueCluster().BacktrackWindow = 7200),
      'no-backtrack',
      'has backtracking on (BacktrackWindow 7200 s, 2.0 h)',
    ],
    [
      'an RDS Proxy targets the MySQL writer instance',
      ams,
      (w) => {
        w.proxies = [{ DBProxyName: 'mysql-proxy', EngineFamily: 'MYSQL', Status: 'available' }];
        w.proxyTargets = [{ Type: 'RDS_INSTANCE', RdsResourceId: 'platform-db-writer' }];
      },
      'rds-proxy',
      'RDS Proxy "mysql-proxy" targets platform-db-writer (RDS_INSTANCE)',
    ],
  ];

  it.each(cases)('fails %s (%s)', async (_what, engine, change, check, sentence) => {
    world = healthy(engine);
    change(world);
    wire();
    const result = await preflight(clients, eventFor(engine));
    expect(result.passed).toBe(false);
    const failed = result.checks.filter((c) => !c.ok).map((c) => c.name);
    expect(failed).toEqual([check]);
    expect(result.failures).toEqual([expect.stringContaining(sentence)]);
  });

  it('fails a missing cluster once and skips the checks that need it', async () => {
    world = healthy('aurora-postgresql');
    delete world.clusters['platform-db'];
    wire();
    const result = await preflight(clients, eventFor('aurora-postgresql'));
    expect(result.passed).toBe(false);
    expect(result.source).toBeNull();
    expect(result.failures).toEqual([
      expect.stringContaining('Source DB cluster "platform-db" was not found'),
    ]);
    expect(
      result.checks.filter((c) => c.detail.startsWith('not checked:')).map((c) => c.name),
    ).toEqual([
      'writer-available',
      'valid-upgrade-target',
      'blue-green-source-version',
      'automated-backups',
      'cluster-parameter-group',
      ...COMMON_ORDER,
      'no-zero-etl-integration',
    ]);
  });

  it('ignores a proxy of the other engine family and targets of other databases', async () => {
    world = healthy('aurora-postgresql');
    world.proxies = [
      { DBProxyName: 'mysql-proxy', EngineFamily: 'MYSQL', Status: 'available' },
      { DBProxyName: 'pg-proxy', EngineFamily: 'POSTGRESQL', Status: 'available' },
    ];
    world.proxyTargets = [{ Type: 'TRACKED_CLUSTER', RdsResourceId: 'another-cluster' }];
    wire();
    const result = await preflight(clients, eventFor('aurora-postgresql'));
    expect(result.passed).toBe(true);
    expect(rds).toHaveReceivedCommandWith(DescribeDBProxyTargetsCommand, {
      DBProxyName: 'pg-proxy',
    });
    expect(rds).not.toHaveReceivedCommandWith(DescribeDBProxyTargetsCommand, {
      DBProxyName: 'mysql-proxy',
    });
  });

  it('never asks for a DB instance named like the cluster (blue is a cluster)', async () => {
    world = healthy('aurora-mysql');
    wire();
    await preflight(clients, eventFor('aurora-mysql'));
    expect(rds).not.toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: 'platform-db',
    });
  });
});
