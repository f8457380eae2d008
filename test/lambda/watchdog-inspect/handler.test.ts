import {
  GetEventSourceMappingCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import {
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { deployFor } from '../../helpers/deployed';
import { testPlan } from '../../helpers/plan';
import type {
  WatchdogInspectEvent,
  WatchdogInspectResult,
} from '../../../lambda/watchdog-inspect/inspect';

const lambda = mockClient(LambdaClient);
const rds = mockClient(RDSClient);
const sfn = mockClient(SFNClient);
let handler: (event: WatchdogInspectEvent) => Promise<WatchdogInspectResult>;

const plan: UpgradePlan = testPlan({
  targetParameterGroupName: 'quiet-upgrade-parameterspostgres17',
  deadline: '2030-01-06T05:00:00Z',
  mappings: [{ name: 'sends', uuid: 'uuid-sends' }],
  listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/demo/1/2',
  maintenanceToggleFunction: 'quiet-upgrade-maintenance-toggle',
});
deployFor(plan);

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/watchdog-inspect/handler'));
});

beforeEach(() => {
  lambda.reset();
  rds.reset();
  sfn.reset();
  sfn.on(ListExecutionsCommand).resolves({ executions: [] });
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [{ EngineVersion: '16.6', DBInstanceStatus: 'available' }],
  });
});

function toggleSays(maintenance: string): void {
  const body = new TextEncoder().encode(JSON.stringify({ maintenance, rules: [] }));
  lambda.on(InvokeCommand).resolves({ Payload: body as InvokeCommandOutput['Payload'] });
}

it('says nothing needs doing when the upgrade left everything as it was', async () => {
  toggleSays('off');
  lambda.on(GetEventSourceMappingCommand).resolves({ State: 'Enabled' });
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({ BlueGreenDeployments: [] });
  const result = await handler({
    plan,
    stoppedExecutionArn:
      'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:run-1',
  });
  expect(result.action).toBe('nothing');
  expect(lambda).toHaveReceivedCommandWith(InvokeCommand, {
    FunctionName: 'quiet-upgrade-maintenance-toggle',
  });
});

it('says to delete green when the upgrade stopped before switching over', async () => {
  toggleSays('on');
  lambda.on(GetEventSourceMappingCommand).resolves({ State: 'Disabled' });
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
    BlueGreenDeployments: [
      {
        BlueGreenDeploymentIdentifier: 'bgd-1',
        TagList: [{ Key: 'quiet-upgrade:execution', Value: 'run-1' }],
        Status: 'AVAILABLE',
      },
    ],
  });
  expect(
    await handler({
      plan,
      stoppedExecutionArn:
        'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:run-1',
    }),
  ).toMatchObject({
    action: 'resume-and-delete-green',
    blueGreenDeploymentIdentifier: 'bgd-1',
  });
});

it('takes what it inspects from its environment: a plan naming another toggle is refused before any call', async () => {
  await expect(
    handler({
      plan: { ...plan, maintenanceToggleFunction: 'someone-elses-function' },
      stoppedExecutionArn:
        'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:run-1',
    }),
  ).rejects.toThrow(
    'plan.maintenanceToggleFunction must be the deployed "quiet-upgrade-maintenance-toggle", got: "someone-elses-function"',
  );
  expect(lambda).not.toHaveReceivedAnyCommand();
  expect(rds).not.toHaveReceivedAnyCommand();
});
