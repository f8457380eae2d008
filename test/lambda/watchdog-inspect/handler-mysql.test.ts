import {
  GetEventSourceMappingCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import {
  DBInstanceNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import type {
  WatchdogInspectEvent,
  WatchdogInspectResult,
} from '../../../lambda/watchdog-inspect/inspect';
import { deployFor } from '../../helpers/deployed';
import { testPlan } from '../../helpers/plan';

/**
 * Nothing in the inspection depends on the engine: the writer's version is compared as RDS
 * spells it, and an interrupted restore is known by its group copies' suffixes. These pin that
 * for a deployed RDS for MySQL database.
 */
const lambda = mockClient(LambdaClient);
const rds = mockClient(RDSClient);
const sfn = mockClient(SFNClient);
let handler: (event: WatchdogInspectEvent) => Promise<WatchdogInspectResult>;

const plan: UpgradePlan = testPlan({
  engine: 'mysql',
  currentEngineVersion: '8.0.42',
  targetEngineVersion: '8.4.5',
  targetParameterGroupName: 'quiet-upgrade-parametersmysql84',
  mappings: [{ name: 'sends', uuid: 'uuid-sends' }],
});
deployFor(plan);
const stoppedExecutionArn =
  'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:run-1';

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/watchdog-inspect/handler'));
});

/** Maintenance on, the consumer paused, no deployment left, and this writer (or none). */
function leftOver(writer: { version: string; group: string } | null): void {
  lambda.reset();
  rds.reset();
  sfn.reset();
  sfn.on(ListExecutionsCommand).resolves({ executions: [] });
  const body = new TextEncoder().encode(JSON.stringify({ maintenance: 'on', rules: [] }));
  lambda.on(InvokeCommand).resolves({ Payload: body as InvokeCommandOutput['Payload'] });
  lambda.on(GetEventSourceMappingCommand).resolves({ State: 'Disabled' });
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({ BlueGreenDeployments: [] });
  rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
    if (writer === null || DBInstanceIdentifier !== 'platform-db') {
      throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
    }
    return {
      DBInstances: [
        {
          EngineVersion: writer.version,
          DBInstanceStatus: 'available',
          DBParameterGroups: [{ DBParameterGroupName: writer.group }],
        },
      ],
    };
  });
}

it.each([
  ['8.4.5', 'verify-then-resume', 'runs the target version 8.4.5'],
  ['8.0.42', 'resume', 'runs 8.0.42, not the target'],
])('decides from the MySQL writer running %s: %s', async (version, action, reason) => {
  leftOver({ version, group: 'quiet-upgrade-parametersmysql80' });
  const result = await handler({ plan, stoppedExecutionArn });
  expect(result.action).toBe(action);
  expect(result.reason).toContain(reason);
});

it('pages an operator when a MySQL restore was interrupted (the writer on a -restore copy)', async () => {
  leftOver({ version: '8.0.42', group: 'quiet-upgrade-parametersmysql80-restore' });
  const result = await handler({ plan, stoppedExecutionArn });
  expect(result.action).toBe('page-operator');
  expect(result.reason).toContain(
    'platform-db uses the parameter group quiet-upgrade-parametersmysql80-restore: a restore of old blue after a failed switchover was interrupted',
  );
});
