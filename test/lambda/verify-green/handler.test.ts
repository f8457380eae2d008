import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import type { VerifyGreenResult } from '../../../lambda/verify-green/verify-green';
import { deployFor } from '../../helpers/deployed';

const BLUE_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db';
const GREEN_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db-green-abc123';
const EVENT = {
  plan: {
    sourceIdentifier: 'platform-db',
    sourceArn: BLUE_ARN,
    engine: 'postgres',
    currentEngineVersion: '16.6',
    targetEngineVersion: '17.2',
    maxReplicationLagMb: 64,
  },
  blueGreenDeploymentIdentifier: 'bgd-0123456789abcdef',
};

deployFor(EVENT.plan as Partial<UpgradePlan>);

const rds = mockClient(RDSClient);
const cloudwatch = mockClient(CloudWatchClient);
let handler: (event: unknown) => Promise<VerifyGreenResult>;

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/verify-green/handler'));
});

beforeEach(() => {
  rds.reset();
  cloudwatch.reset();
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
    BlueGreenDeployments: [
      {
        Status: 'AVAILABLE',
        SwitchoverDetails: [
          { SourceMember: BLUE_ARN, TargetMember: GREEN_ARN, Status: 'AVAILABLE' },
        ],
      },
    ],
  });
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      {
        DBInstanceIdentifier: 'platform-db-green-abc123',
        DBInstanceStatus: 'available',
        EngineVersion: '17.2',
      },
    ],
  });
  cloudwatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Values: [1024] }] });
});

describe('verify-green handler', () => {
  it('verifies the deployment the state machine names, reading the lag up to now', async () => {
    const before = Date.now();
    const result = await handler(EVENT);
    expect(result).toEqual({
      passed: true,
      failures: [],
      transient: false,
      replication: 'logical',
      lag: {
        metric: 'OldestReplicationSlotLag',
        dbInstanceIdentifier: 'platform-db',
        unit: 'MB',
        max: 1 / 1024,
        limit: 64,
      },
      green: { identifier: 'platform-db-green-abc123', engineVersion: '17.2' },
    });
    const end = cloudwatch.commandCalls(GetMetricDataCommand)[0]?.args[0].input.EndTime as Date;
    expect(end.getTime()).toBeGreaterThanOrEqual(before);
  });

  it('refuses a plan without currentEngineVersion: the replication type depends on it', async () => {
    const { currentEngineVersion: _omitted, ...plan } = EVENT.plan;
    await expect(handler({ ...EVENT, plan })).rejects.toThrow(
      /invalid verify-green event[\s\S]*currentEngineVersion/,
    );
    expect(rds).not.toHaveReceivedAnyCommand();
  });

  it('refuses an event without a deployment identifier, calling nothing', async () => {
    await expect(handler({ plan: EVENT.plan })).rejects.toThrow(
      /invalid verify-green event[\s\S]*blueGreenDeploymentIdentifier/,
    );
    expect(rds).not.toHaveReceivedAnyCommand();
  });
});
