import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  type BlueGreenDeployment,
  type DBInstance,
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
import {
  MAX_REPLICA_LAG_SECONDS,
  PERMANENT_INSTANCE_STATUSES,
  postgresMajor,
  replicationOf,
  TRANSIENT_INSTANCE_STATUSES,
  verifyGreen,
  type VerifyGreenEvent,
} from '../../../lambda/verify-green/verify-green';

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

const lag = (...values: number[]) => ({
  MetricDataResults: [{ Id: 'lag', Label: 'lag', Values: values }],
});
const WAITS = 'The run waits and verifies again before the deadline.';
/** Green as DescribeDBInstances returns it, with these changes. */
const greenWith = (overrides: Partial<DBInstance> = {}) => ({
  DBInstances: [
    {
      DBInstanceIdentifier: 'platform-db-green-abc123',
      DBInstanceArn: GREEN_ARN,
      DBInstanceStatus: 'available',
      EngineVersion: '17.2',
      ...overrides,
    },
  ],
});

beforeEach(() => {
  rds.reset();
  cloudwatch.reset();
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({ BlueGreenDeployments: [deployment()] });
  rds.on(DescribeDBInstancesCommand).resolves(greenWith());
  cloudwatch.on(GetMetricDataCommand).resolves(lag(12 * MB, 3 * MB, 40 * MB));
});

/** A minor-version upgrade: RDS replicates physically, so green's ReplicaLag is read. */
const MINOR: VerifyGreenEvent = {
  plan: testPlan({
    sourceArn: BLUE_ARN,
    currentEngineVersion: '17.2',
    targetEngineVersion: '17.4',
  }),
  blueGreenDeploymentIdentifier: BG_ID,
};

describe('verify green', () => {
  it('passes when the deployment, green and the replication lag are all ready', async () => {
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toEqual({
      passed: true,
      failures: [],
      transient: false,
      replication: 'logical',
      lag: {
        metric: 'OldestReplicationSlotLag',
        dbInstanceIdentifier: 'platform-db',
        unit: 'MB',
        max: 40,
        limit: 64,
      },
      green: { identifier: 'platform-db-green-abc123', engineVersion: '17.2' },
    });
    expect(rds).toHaveReceivedCommandWith(DescribeBlueGreenDeploymentsCommand, {
      BlueGreenDeploymentIdentifier: BG_ID,
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: GREEN_ARN,
    });
  });

  it("reads blue's OldestReplicationSlotLag maximum per minute over the last 5 minutes for a major target", async () => {
    await verifyGreen(clients, EVENT, NOW);
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

  it("reads green's ReplicaLag in seconds for a minor target, held against MAX_REPLICA_LAG_SECONDS", async () => {
    rds.on(DescribeDBInstancesCommand).resolves(greenWith({ EngineVersion: '17.4' }));
    cloudwatch.on(GetMetricDataCommand).resolves(lag(2, MAX_REPLICA_LAG_SECONDS));
    const result = await verifyGreen(clients, MINOR, NOW);
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
              Dimensions: [{ Name: 'DBInstanceIdentifier', Value: 'platform-db-green-abc123' }],
            },
            Period: 60,
            Stat: 'Maximum',
          },
          ReturnData: true,
        },
      ],
    });
    expect(result).toMatchObject({
      passed: true,
      transient: false,
      replication: 'physical',
      lag: {
        metric: 'ReplicaLag',
        dbInstanceIdentifier: 'platform-db-green-abc123',
        unit: 'Seconds',
        max: 30,
        limit: 30,
      },
    });
  });

  it('fails a minor target one second over MAX_REPLICA_LAG_SECONDS, transiently', async () => {
    rds.on(DescribeDBInstancesCommand).resolves(greenWith({ EngineVersion: '17.4' }));
    cloudwatch.on(GetMetricDataCommand).resolves(lag(MAX_REPLICA_LAG_SECONDS + 1));
    const result = await verifyGreen(clients, MINOR, NOW);
    expect(result.passed).toBe(false);
    expect(result.transient).toBe(true);
    expect(result.failures).toEqual([
      `Replication to green lags 31 s (the most in the last 5 minutes, ReplicaLag on "platform-db-green-abc123"), over the limit of 30 s. Heavy writes or long transactions on blue slow it down. ${WAITS}`,
    ]);
  });

  it('does not read a lag for a minor target when green is not found', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', ...meta }));
    const result = await verifyGreen(clients, MINOR, NOW);
    expect(cloudwatch).not.toHaveReceivedCommand(GetMetricDataCommand);
    expect(result).toMatchObject({ passed: false, transient: false, lag: null, green: null });
  });

  it('passes at exactly the lag limit and fails one byte over it, in MB of 2^20 bytes', async () => {
    cloudwatch.on(GetMetricDataCommand).resolves(lag(64 * MB));
    expect((await verifyGreen(clients, EVENT, NOW)).passed).toBe(true);
    cloudwatch.on(GetMetricDataCommand).resolves(lag(1 * MB, 64 * MB + 1));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result.passed).toBe(false);
    expect(result.transient).toBe(true);
    expect(result.failures).toEqual([
      `Replication to green lags 64.0 MB (the most in the last 5 minutes, OldestReplicationSlotLag on "platform-db"), over the limit of 64 MB. Heavy writes or long transactions on blue slow it down. ${WAITS}`,
    ]);
  });

  it('fails transiently when CloudWatch has no lag datapoints yet', async () => {
    cloudwatch.on(GetMetricDataCommand).resolves(lag());
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result.passed).toBe(false);
    expect(result.transient).toBe(true);
    expect(result.lag?.max).toBeNull();
    expect(result.failures).toEqual([
      expect.stringMatching(
        /^No replication lag data: .*"platform-db".*verifies again before the deadline\.$/,
      ),
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

  it.each([
    'modifying',
    'backing-up',
    'configuring-enhanced-monitoring',
    'configuring-log-exports',
    'maintenance',
    'rebooting',
    'storage-initialization',
    'storage-optimization',
    'a-status-added-next-year',
  ])('fails transiently while green is "%s"', async (status) => {
    rds.on(DescribeDBInstancesCommand).resolves(greenWith({ DBInstanceStatus: status }));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: true });
    expect(result.failures).toEqual([
      expect.stringMatching(
        new RegExp(
          `^Green instance "platform-db-green-abc123" is "${status}", not "available"\\..* ${WAITS}$`,
        ),
      ),
    ]);
  });

  it('fails transiently while green is still upgrading from the current version', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolves(greenWith({ DBInstanceStatus: 'upgrading', EngineVersion: '16.6' }));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: true });
    expect(result.failures).toEqual([
      `Green instance "platform-db-green-abc123" runs 16.6, not the target 17.2. It is still upgrading. ${WAITS}`,
      `Green instance "platform-db-green-abc123" is "upgrading", not "available". RDS brings it back to "available" by itself. ${WAITS}`,
    ]);
  });

  it('fails transiently while green, though available, still initializes its storage', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolves(
        greenWith({ StorageOperationStatus: 'Initializing', StorageOperationPercentProgress: 42 }),
      );
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: true });
    expect(result.failures).toEqual([
      `Green instance "platform-db-green-abc123" is still initializing its storage (42% done). ${WAITS}`,
    ]);
  });

  it('passes while green optimizes its storage: it is fully operational meanwhile', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolves(
        greenWith({ StorageOperationStatus: 'Optimizing', StorageOperationPercentProgress: 10 }),
      );
    expect(await verifyGreen(clients, EVENT, NOW)).toMatchObject({
      passed: true,
      transient: false,
    });
  });

  it('fails transiently while the deployment and a member are still PROVISIONING', async () => {
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
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: true });
    expect(result.failures).toEqual([
      `Blue/green deployment ${BG_ID} is "PROVISIONING" (Creating green replica), not "AVAILABLE". RDS is still building green. ${WAITS}`,
      `Not every member of blue/green deployment ${BG_ID} is ready to switch over yet: ${GREEN_REPLICA_ARN} is "PROVISIONING". ${WAITS}`,
    ]);
  });

  it('reports every failed check at once, in a stable order, transient when all are', async () => {
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [
        deployment({
          Status: 'PROVISIONING',
          SwitchoverDetails: [
            { SourceMember: REPLICA_ARN, TargetMember: GREEN_REPLICA_ARN, Status: 'PROVISIONING' },
            { SourceMember: BLUE_ARN, TargetMember: GREEN_ARN, Status: 'AVAILABLE' },
          ],
        }),
      ],
    });
    rds.on(DescribeDBInstancesCommand).resolves(
      greenWith({
        DBInstanceStatus: 'upgrading',
        EngineVersion: '16.6',
        StorageOperationStatus: 'Initializing',
      }),
    );
    cloudwatch.on(GetMetricDataCommand).resolves(lag(512 * MB));

    const result = await verifyGreen(clients, EVENT, NOW);

    expect(result.passed).toBe(false);
    expect(result.transient).toBe(true);
    expect(result.failures).toEqual([
      expect.stringContaining(`Blue/green deployment ${BG_ID} is "PROVISIONING", not "AVAILABLE".`),
      expect.stringContaining(`switch over yet: ${GREEN_REPLICA_ARN} is "PROVISIONING".`),
      expect.stringContaining('runs 16.6, not the target 17.2. It is still upgrading.'),
      expect.stringContaining('is "upgrading", not "available".'),
      `Green instance "platform-db-green-abc123" is still initializing its storage. ${WAITS}`,
      expect.stringContaining('lags 512.0 MB'),
    ]);
    expect(result.failures.every((f) => f.endsWith(WAITS))).toBe(true);
    expect(result.green).toEqual({ identifier: 'platform-db-green-abc123', engineVersion: '16.6' });
  });

  it.each([
    'failed',
    'incompatible-parameters',
    'incompatible-network',
    'storage-full',
    'inaccessible-encryption-credentials',
    'inaccessible-encryption-credentials-recoverable',
    'restore-error',
    'stopped',
  ])('fails permanently when green is "%s"', async (status) => {
    rds.on(DescribeDBInstancesCommand).resolves(greenWith({ DBInstanceStatus: status }));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: false });
    expect(result.failures).toEqual([
      `Green instance "platform-db-green-abc123" is "${status}", not "available". RDS does not bring it back by itself: read its Recent events in the RDS console, delete the blue/green deployment and start the upgrade again.`,
    ]);
  });

  it.each(['INVALID_CONFIGURATION', 'SWITCHOVER_FAILED', 'SWITCHOVER_COMPLETED', 'DELETING'])(
    'fails permanently when the deployment is %s',
    async (status) => {
      rds
        .on(DescribeBlueGreenDeploymentsCommand)
        .resolves({ BlueGreenDeployments: [deployment({ Status: status })] });
      const result = await verifyGreen(clients, EVENT, NOW);
      expect(result).toMatchObject({ passed: false, transient: false });
      expect(result.failures).toEqual([
        `Blue/green deployment ${BG_ID} is "${status}", not "AVAILABLE". It will not become AVAILABLE by itself: read its status details in the RDS console, delete it and start the upgrade again.`,
      ]);
    },
  );

  it('fails permanently when a member lost its green instance', async () => {
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [
        deployment({
          SwitchoverDetails: [
            {
              SourceMember: REPLICA_ARN,
              TargetMember: GREEN_REPLICA_ARN,
              Status: 'MISSING_TARGET',
            },
            { SourceMember: BLUE_ARN, TargetMember: GREEN_ARN, Status: 'AVAILABLE' },
          ],
        }),
      ],
    });
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: false });
    expect(result.failures).toEqual([
      `Members of blue/green deployment ${BG_ID} cannot switch over: ${GREEN_REPLICA_ARN} is "MISSING_TARGET". Delete the deployment and start the upgrade again.`,
    ]);
  });

  it('fails permanently when an available green runs the wrong version', async () => {
    rds.on(DescribeDBInstancesCommand).resolves(greenWith({ EngineVersion: '17.1' }));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: false });
    expect(result.failures).toEqual([
      'Green instance "platform-db-green-abc123" runs 17.1, not the target 17.2. Delete the blue/green deployment and start the upgrade again with the intended targetEngineVersion.',
    ]);
  });

  it('is not transient when a permanent failure comes with transient ones', async () => {
    rds.on(DescribeDBInstancesCommand).resolves(greenWith({ DBInstanceStatus: 'failed' }));
    cloudwatch.on(GetMetricDataCommand).resolves(lag(512 * MB));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: false });
    expect(result.failures).toEqual([
      expect.stringContaining('is "failed", not "available". RDS does not bring it back'),
      expect.stringMatching(new RegExp(`lags 512.0 MB.* ${WAITS}$`)),
    ]);
  });

  it('turns a missing deployment into a permanent failure and still checks the lag', async () => {
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
      transient: false,
      replication: 'logical',
      lag: expect.objectContaining({ metric: 'OldestReplicationSlotLag', max: null }),
      green: null,
    });
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
  });

  it('turns a missing green instance into a permanent failure', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', ...meta }));
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result.failures).toEqual([
      expect.stringContaining(`Green instance ${GREEN_ARN} was not found`),
    ]);
    expect(result.transient).toBe(false);
    expect(result.green).toBeNull();
  });

  it('fails permanently when the deployment names no green instance', async () => {
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [deployment({ Target: undefined, SwitchoverDetails: [] })],
    });
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result).toMatchObject({ passed: false, transient: false });
    expect(result.failures).toEqual([
      expect.stringContaining('lists no members to switch over'),
      expect.stringContaining(`names no green instance for ${BLUE_ARN}`),
    ]);
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
  });

  it('fails a deployment that lists no members, permanently', async () => {
    rds
      .on(DescribeBlueGreenDeploymentsCommand)
      .resolves({ BlueGreenDeployments: [deployment({ SwitchoverDetails: [] })] });
    const result = await verifyGreen(clients, EVENT, NOW);
    expect(result.failures).toEqual([
      expect.stringContaining(`Blue/green deployment ${BG_ID} lists no members to switch over.`),
    ]);
    expect(result.transient).toBe(false);
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

  it('never lists a status as both transient and permanent', () => {
    const both = [...TRANSIENT_INSTANCE_STATUSES].filter((s) => PERMANENT_INSTANCE_STATUSES.has(s));
    expect(both).toEqual([]);
  });
});

describe('replication type', () => {
  it.each([
    ['17.2', '17'],
    ['16.4', '16'],
    ['10.21', '10'],
    ['9.6.24', '9.6'],
  ])('takes the major version of %s as %s', (version, major) => {
    expect(postgresMajor(version)).toBe(major);
  });

  it.each([
    ['16.4', '17.2', 'logical'],
    ['16.6', '17.2', 'logical'],
    ['17.2', '17.4', 'physical'],
    ['17.4', '17.4', 'physical'],
    ['9.6.23', '9.6.24', 'physical'],
  ])('replicates %s to %s %s', (currentEngineVersion, targetEngineVersion, replication) => {
    expect(replicationOf({ currentEngineVersion, targetEngineVersion })).toBe(replication);
  });
});
