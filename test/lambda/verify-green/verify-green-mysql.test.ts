import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DBInstanceNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { testPlan } from '../../helpers/plan';
import {
  MAX_REPLICA_LAG_SECONDS,
  verifyGreen,
  type VerifyGreenEvent,
} from '../../../lambda/verify-green/verify-green';

/** RDS for MySQL replicates blue to green by binary log: green's ReplicaLag, in seconds. */
const BLUE_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db';
const GREEN_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db-green-abc123';
const GREEN = 'platform-db-green-abc123';
const NOW = new Date('2026-11-22T04:30:00Z');
const WAITS = 'The run waits and verifies again before the deadline.';

const rds = mockClient(RDSClient);
const cloudwatch = mockClient(CloudWatchClient);
const clients = { rds: new RDSClient({}), cloudwatch: new CloudWatchClient({}) };

const event = (currentEngineVersion: string, targetEngineVersion: string): VerifyGreenEvent => ({
  plan: testPlan({
    engine: 'mysql',
    sourceArn: BLUE_ARN,
    currentEngineVersion,
    targetEngineVersion,
    targetParameterGroupName: 'parameters-mysql84',
  }),
  blueGreenDeploymentIdentifier: 'bgd-0123456789abcdef',
});
/** A major upgrade, which for PostgreSQL would mean logical replication. */
const MAJOR = event('8.0.42', '8.4.5');
const lag = (...values: number[]) => ({ MetricDataResults: [{ Id: 'lag', Values: values }] });

beforeEach(() => {
  rds.reset();
  cloudwatch.reset();
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
    BlueGreenDeployments: [
      {
        BlueGreenDeploymentIdentifier: 'bgd-0123456789abcdef',
        Status: 'AVAILABLE',
        SwitchoverDetails: [
          { SourceMember: BLUE_ARN, TargetMember: GREEN_ARN, Status: 'AVAILABLE' },
        ],
      },
    ],
  });
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      { DBInstanceIdentifier: GREEN, DBInstanceStatus: 'available', EngineVersion: '8.4.5' },
    ],
  });
  cloudwatch.on(GetMetricDataCommand).resolves(lag(0, 2, 1));
});

describe('verify green on RDS for MySQL', () => {
  it.each([
    ['a major', '8.0.42', '8.4.5'],
    ['a minor', '8.0.40', '8.0.42'],
  ])(
    "reads green's ReplicaLag in seconds for %s target, never blue's replication slots",
    async (_kind, current, target) => {
      rds.on(DescribeDBInstancesCommand).resolves({
        DBInstances: [
          { DBInstanceIdentifier: GREEN, DBInstanceStatus: 'available', EngineVersion: target },
        ],
      });
      const result = await verifyGreen(clients, event(current, target), NOW);
      expect(result).toEqual({
        passed: true,
        failures: [],
        transient: false,
        replication: 'binlog',
        lag: {
          metric: 'ReplicaLag',
          dbInstanceIdentifier: GREEN,
          unit: 'Seconds',
          max: 2,
          limit: MAX_REPLICA_LAG_SECONDS,
          inactiveMinutes: 0,
        },
        green: { identifier: GREEN, engineVersion: target },
      });
      expect(cloudwatch).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
      expect(cloudwatch).toHaveReceivedCommandWith(GetMetricDataCommand, {
        StartTime: new Date('2026-11-22T04:25:00Z'),
        EndTime: NOW,
        MetricDataQueries: [
          {
            Id: 'lag',
            MetricStat: {
              Metric: {
                Namespace: 'AWS/RDS',
                MetricName: 'ReplicaLag',
                Dimensions: [{ Name: 'DBInstanceIdentifier', Value: GREEN }],
              },
              Period: 60,
              Stat: 'Maximum',
            },
            ReturnData: true,
          },
        ],
      });
    },
  );

  it('passes at MAX_REPLICA_LAG_SECONDS and fails one second over it, transiently', async () => {
    cloudwatch.on(GetMetricDataCommand).resolves(lag(MAX_REPLICA_LAG_SECONDS));
    expect((await verifyGreen(clients, MAJOR, NOW)).passed).toBe(true);
    cloudwatch.on(GetMetricDataCommand).resolves(lag(3, MAX_REPLICA_LAG_SECONDS + 1));
    const result = await verifyGreen(clients, MAJOR, NOW);
    expect(result).toMatchObject({ passed: false, transient: true });
    expect(result.failures).toEqual([
      `Replication to green lags 31 s (the most in the last 5 minutes, ReplicaLag on "${GREEN}"), over the limit of 30 s. Heavy writes or long transactions on blue slow it down. ${WAITS}`,
    ]);
  });

  it.each([
    ['every minute', [-1, -1, -1], 3],
    ['one minute among caught-up ones', [0, -1, 0, 0], 1],
  ])(
    'fails transiently when ReplicaLag is -1 (replication not active) in %s',
    async (_case, values, minutes) => {
      cloudwatch.on(GetMetricDataCommand).resolves(lag(...values));
      const result = await verifyGreen(clients, MAJOR, NOW);
      expect(result).toMatchObject({
        passed: false,
        transient: true,
        lag: { metric: 'ReplicaLag', inactiveMinutes: minutes },
      });
      expect(result.failures).toEqual([
        `Replication to green was not active: ReplicaLag on "${GREEN}" was -1 in ${minutes} of the last 5 minutes, which RDS reports when the replica is not replicating. Check the replication state of the green instance in the RDS console. ${WAITS}`,
      ]);
    },
  );

  it('fails transiently when CloudWatch has no ReplicaLag for green yet', async () => {
    cloudwatch.on(GetMetricDataCommand).resolves(lag());
    const result = await verifyGreen(clients, MAJOR, NOW);
    expect(result).toMatchObject({ passed: false, transient: true, lag: { max: null } });
    expect(result.failures).toEqual([
      expect.stringMatching(new RegExp(`^No replication lag data: .*ReplicaLag for "${GREEN}"`)),
    ]);
  });

  it('reads no lag when green is not found, and fails for good', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} }));
    const result = await verifyGreen(clients, MAJOR, NOW);
    expect(cloudwatch).not.toHaveReceivedCommand(GetMetricDataCommand);
    expect(result).toMatchObject({
      passed: false,
      transient: false,
      lag: null,
      replication: 'binlog',
    });
  });
});
