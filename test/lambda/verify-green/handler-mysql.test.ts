import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { VerifyGreenResult } from '../../../lambda/verify-green/verify-green';
import { deployFor } from '../../helpers/deployed';

const BLUE_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db';
const GREEN_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db-green-abc123';
/** The event's plan names no engine: the deployed one (RDS for MySQL) decides. */
const EVENT = {
  plan: {
    sourceIdentifier: 'platform-db',
    sourceArn: BLUE_ARN,
    currentEngineVersion: '8.0.42',
    targetEngineVersion: '8.4.5',
    maxReplicationLagMb: 64,
  },
  blueGreenDeploymentIdentifier: 'bgd-0123456789abcdef',
};
deployFor({ ...EVENT.plan, engine: 'mysql', targetParameterGroupName: 'parameters-mysql84' });

const rds = mockClient(RDSClient);
const cloudwatch = mockClient(CloudWatchClient);
let handler: (event: unknown) => Promise<VerifyGreenResult>;

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/verify-green/handler'));
});

it("verifies a MySQL green by its own ReplicaLag, as the deployed engine's binlog replication", async () => {
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
        EngineVersion: '8.4.5',
      },
    ],
  });
  cloudwatch.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Values: [4] }] });
  expect(await handler(EVENT)).toMatchObject({
    passed: true,
    replication: 'binlog',
    lag: { metric: 'ReplicaLag', dbInstanceIdentifier: 'platform-db-green-abc123', max: 4 },
  });
});
