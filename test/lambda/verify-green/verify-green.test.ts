import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  type BlueGreenDeployment,
  BlueGreenDeploymentNotFoundFault,
  DBInstanceNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { testPlan } from '../../helpers/plan';
import { verifyGreen, type VerifyGreenEvent } from '../../../lambda/verify-green/verify-green';

const BLUE_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db';
const GREEN_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db-green-abc123';
const REPLICA_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db-replica';
const GREEN_REPLICA_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db-replica-green-xyz';
const BG_ID = 'bgd-0123456789abcdef';
const MB = 1024 * 1024;
const NOW = new Date('2026-11-22T04:30:00Z');

const PLAN: UpgradePlan = testPlan({ sourceArn: BLUE_ARN });
const EVENT: VerifyGreenEvent = { plan: PLAN, blueGreenDeploymentIdentifier: BG_ID };

const rds = mockClient(RDSClient);
const cloudwatch = mockClient(CloudWatchClient);
const clients = { rds: new RDSClient({}), cloudwatch: new CloudWatchClient({}) };
const meta = { $metadata: {} };

const deployment = (overrides: Partial<BlueGreenDeployment> = {}): BlueGreenDeployment => ({
  BlueGreenDeploymentIdentifier: BG_ID,
  Source: BLUE_ARN,
  Target: GREEN_ARN,
  Status: 'AVAILABLE',
  // The replica is listed first: green's primary is found by its source, not its position.
  SwitchoverDetails: [
    { SourceMember: REPLICA_ARN, TargetMember: GREEN_REPLICA_ARN, Status: 'AVAILABLE' },
    { SourceMember: BLUE_ARN, TargetMember: GREEN_ARN, Status: 'AVAILABLE' },
  ],
  ...overrides,
});

const lag = (...bytes: number[]) => ({
  MetricDataResults: [{ Id: 'lag', Label: 'OldestReplicationSlotLag', Values: bytes }],
});

beforeEach(() => {
  rds.reset();
  cloudwatch.reset();
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({ BlueGreenDeployments: [deployment()] });
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      {
        DBInstanceIdentifier: 'platform-db-green-abc123',
        DBInstanceArn: GREEN_ARN,
        DBInstanceStatus: 'available',
        EngineVersion: '17.2',
      },
    ],
  });
  cloudwatch.on(GetMetricDataCommand).resolves(lag(12 * MB, 3 * MB, 40 * MB));
});

describe('verify green', () => {
  it('passes when the deployment, green and the replication lag are all ready', async () => {
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toEqual({
      passed: true,
      failures: [],
      green: { identifier: 'platform-db-green-abc123', engineVersion: '17.2' },
    });
    expect(rds).toHaveReceivedCommandWith(DescribeBlueGreenDeploymentsCommand, {
      BlueGreenDeploymentIdentifier: BG_ID,
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: GREEN_ARN,
    });
  });

  it("reads blue's OldestReplicationSlotLag maximum per minute over the last 5 minutes", async () => {
    await verifyGreen(clients, EVENT, NOW);
    expect(cloudwatch).toHaveReceivedCommandWith(GetMetricDataCommand, {
      StartTime: new Date('2026-11-22T04:25:00Z'),
      EndTime: NOW,
      MetricDataQueries: [
        {
          Id: 'lag',
          MetricStat: {
            Metric: {
              Namespace: 'AWS/RDS',
              MetricName: 'OldestReplicationSlotLag',
              Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'platform-db' }],
            },
            Period: 60,
            Stat: 'Maximum',
          },
          ReturnData: true,
        },
      ],
    });
  });

  it('passes at exactly the lag limit and fails one byte over it, in MB of 2^20 bytes', async () => {
    cloudwatch.on(GetMetricDataCommand).resolves(lag(64 * MB));
    expect((await verifyGreen(clients, EVENT, NOW)).passed).toBe(true);
    cloudwatch.on(GetMetricDataCommand).resolves(lag(1 * MB, 64 * MB + 1));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result.passed).toBe(false);
    expect(result.failures).toEqual([
      'Replication to green lags 64.0 MB (the most in the last 5 minutes, OldestReplicationSlotLag on "platform-db"), over the limit of 64 MB. Wait for heavy writes or long transactions on blue to finish and verify again.',
    ]);
  });

  it('fails when CloudWatch has no lag datapoints', async () => {
    cloudwatch.on(GetMetricDataCommand).resolves(lag());
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result.passed).toBe(false);
    expect(result.failures).toEqual([
      expect.stringMatching(/^No replication lag data: .*"platform-db"/),
    ]);
    expect(result.green?.identifier).toBe('platform-db-green-abc123');
  });

  it('follows NextToken and judges the lag over every page', async () => {
    cloudwatch
      .on(GetMetricDataCommand)
      .resolvesOnce({ ...lag(1 * MB), NextToken: 'page-2' })
      .resolves(lag(100 * MB));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(cloudwatch).toHaveReceivedNthSpecificCommandWith(2, GetMetricDataCommand, {
      NextToken: 'page-2',
    });
    expect(result.failures).toEqual([expect.stringContaining('lags 100.0 MB')]);
  });

  it('reports every failed check at once, in a stable order', async () => {
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [
        deployment({
          Status: 'PROVISIONING',
          StatusDetails: 'Creating green replica',
          SwitchoverDetails: [
            { SourceMember: REPLICA_ARN, TargetMember: GREEN_REPLICA_ARN, Status: 'PROVISIONING' },
            { SourceMember: BLUE_ARN, TargetMember: GREEN_ARN, Status: 'AVAILABLE' },
          ],
        }),
      ],
    });
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'platform-db-green-abc123',
          DBInstanceStatus: 'upgrading',
          EngineVersion: '16.6',
        },
      ],
    });
    cloudwatch.on(GetMetricDataCommand).resolves(lag(512 * MB));

    const result = await verifyGreen(clients, EVENT, NOW);

    expect(result.passed).toBe(false);
    expect(result.failures).toEqual([
      `Blue/green deployment ${BG_ID} is "PROVISIONING" (Creating green replica), not "AVAILABLE". If it is PROVISIONING, wait and verify again; otherwise read its status details in the RDS console, delete it and start the upgrade again.`,
      expect.stringContaining(`switch over: ${GREEN_REPLICA_ARN} is "PROVISIONING".`),
      expect.stringContaining(
        'Green instance "platform-db-green-abc123" runs 16.6, not the target 17.2.',
      ),
      'Green instance "platform-db-green-abc123" is "upgrading", not "available". Wait for it to become available and verify again.',
      expect.stringContaining('lags 512.0 MB'),
    ]);
    expect(result.green).toEqual({ identifier: 'platform-db-green-abc123', engineVersion: '16.6' });
  });

  it('turns a missing deployment into a failure and still checks the lag', async () => {
    rds
      .on(DescribeBlueGreenDeploymentsCommand)
      .rejects(new BlueGreenDeploymentNotFoundFault({ message: 'not found', ...meta }));
    cloudwatch.on(GetMetricDataCommand).resolves(lag());
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toEqual({
      passed: false,
      failures: [
        `Blue/green deployment ${BG_ID} was not found: it may have been deleted. Check Blue/Green deployments in the RDS console and start the upgrade again.`,
        expect.stringMatching(/^No replication lag data/),
      ],
      green: null,
    });
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
  });

  it('turns a missing green instance into a failure', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', ...meta }));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result.failures).toEqual([
      expect.stringContaining(`Green instance ${GREEN_ARN} was not found`),
    ]);
    expect(result.green).toBeNull();
  });

  it('fails a deployment that lists no members', async () => {
    rds
      .on(DescribeBlueGreenDeploymentsCommand)
      .resolves({ BlueGreenDeployments: [deployment({ SwitchoverDetails: [] })] });
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result.failures).toEqual([
      expect.stringContaining(`Blue/green deployment ${BG_ID} lists no members to switch over.`),
    ]);
    // Green is still found through the deployment's Target.
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: GREEN_ARN,
    });
  });

  it.each([
    ['RDS', () => rds.on(DescribeBlueGreenDeploymentsCommand)],
    ['CloudWatch', () => cloudwatch.on(GetMetricDataCommand)],
  ])('throws an unexpected %s error for Step Functions to retry', async (_s, on) => {
    on().rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    await expect(verifyGreen(clients, EVENT, NOW)).rejects.toThrow('Rate exceeded');
  });
});
