import {
  DescribeListenersCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetEventSourceMappingCommand, LambdaClient } from '@aws-sdk/client-lambda';
import {
  DBInstanceNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBEngineVersionsCommand,
  DescribeDBInstancesCommand,
  DescribeDBParametersCommand,
  DescribeDBProxiesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { PreflightResult } from '../../../lambda/preflight/preflight';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { deployFor } from '../../helpers/deployed';

const SOURCE_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db';
const QUEUE_ARN = 'arn:aws:sqs:eu-west-1:123456789012:sends';
const EVENT = {
  plan: {
    sourceIdentifier: 'platform-db',
    sourceArn: SOURCE_ARN,
    engine: 'postgres',
    currentEngineVersion: '16.6',
    targetEngineVersion: '17.2',
    targetParameterGroupName: 'parameters-postgres17',
    switchoverTimeoutSeconds: 300,
    deadline: '2026-11-22T06:00:00.000Z',
    dryRun: true,
    requireApproval: false,
    mappings: [{ name: 'sends', uuid: 'a1b2c3d4-0000-0000-0000-000000000001' }],
    queues: [
      {
        name: 'sends',
        url: 'https://sqs.eu-west-1.amazonaws.com/123456789012/sends',
        arn: QUEUE_ARN,
      },
    ],
    listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/edge/1/2',
    maintenanceToggleFunction: 'maintenance-toggle',
    maxReplicationLagMb: 64,
  },
  stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:quiet-upgrade',
  executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:quiet-upgrade:run-1',
};

deployFor(EVENT.plan as Partial<UpgradePlan>);

const rds = mockClient(RDSClient);
const sfn = mockClient(SFNClient);
const sqs = mockClient(SQSClient);
const lambda = mockClient(LambdaClient);
const elb = mockClient(ElasticLoadBalancingV2Client);
let handler: (event: unknown) => Promise<PreflightResult>;

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/preflight/handler'));
});

beforeEach(() => {
  for (const mock of [rds, sfn, sqs, lambda, elb]) mock.reset();
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      {
        DBInstanceIdentifier: 'platform-db',
        DBInstanceArn: SOURCE_ARN,
        DBInstanceStatus: 'available',
        EngineVersion: '16.6',
        BackupRetentionPeriod: 7,
        DBParameterGroups: [{ DBParameterGroupName: 'pg16', ParameterApplyStatus: 'in-sync' }],
      },
    ],
  });
  // No instance is left over from an earlier upgrade or restore.
  for (const id of ['platform-db-old1', 'platform-db-failed1']) {
    rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: id })
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} }));
  }
  rds.on(DescribeDBProxiesCommand).resolves({ DBProxies: [] });
  rds
    .on(DescribeDBEngineVersionsCommand)
    .resolves({ DBEngineVersions: [{ ValidUpgradeTarget: [{ EngineVersion: '17.2' }] }] });
  rds
    .on(DescribeDBParametersCommand)
    .resolves({ Parameters: [{ ParameterName: 'rds.logical_replication', ParameterValue: '1' }] });
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({ BlueGreenDeployments: [] });
  sfn.on(ListExecutionsCommand).resolves({ executions: [] });
  sqs.on(GetQueueAttributesCommand).resolves({ Attributes: { QueueArn: QUEUE_ARN } });
  lambda.on(GetEventSourceMappingCommand).resolves({ State: 'Enabled' });
  elb.on(DescribeListenersCommand).resolves({ Listeners: [{}] });
});

describe('preflight handler', () => {
  it('runs the checks for the event the state machine passes', async () => {
    const result = await handler(EVENT);
    expect(result).toMatchObject({ passed: true, failures: [] });
    expect(result.source).toEqual({
      identifier: 'platform-db',
      arn: SOURCE_ARN,
      engineVersion: '16.6',
    });
    expect(result.checks).toHaveLength(13);
  });

  describe('for a stack deployed for another engine', () => {
    const MYSQL = {
      ...EVENT.plan,
      engine: 'mysql',
      currentEngineVersion: '8.0.42',
      targetEngineVersion: '8.4.5',
      targetParameterGroupName: 'parameters-mysql84',
    };
    afterEach(() => deployFor(EVENT.plan as Partial<UpgradePlan>));

    it("runs the MySQL checks, reading the event scheduler of green's group", async () => {
      deployFor(MYSQL as Partial<UpgradePlan>);
      rds.on(DescribeDBEngineVersionsCommand).resolves({
        DBEngineVersions: [{ ValidUpgradeTarget: [{ EngineVersion: '8.4.5' }] }],
      });
      rds
        .on(DescribeDBParametersCommand)
        .resolves({ Parameters: [{ ParameterName: 'event_scheduler', ParameterValue: 'OFF' }] });
      const result = await handler({ ...EVENT, plan: MYSQL });
      expect(result.checks.map((c) => c.name)).toContain('green-event-scheduler-off');
      expect(result.checks.map((c) => c.name)).not.toContain('logical-replication');
      expect(rds).toHaveReceivedCommandWith(DescribeDBEngineVersionsCommand, { Engine: 'mysql' });
      expect(rds).toHaveReceivedCommandWith(DescribeDBParametersCommand, {
        DBParameterGroupName: 'parameters-mysql84',
      });
    });
  });

  it('refuses an event without the execution ARN, calling nothing', async () => {
    const { executionArn: _omit, ...event } = EVENT;
    await expect(handler(event)).rejects.toThrow(/invalid preflight event[\s\S]*executionArn/);
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
  });
});
