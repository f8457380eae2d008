import {
  CopyDBParameterGroupCommand,
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type {
  RestoreOldBlueEvent,
  RestoreOldBlueResult,
} from '../../../lambda/restore-old-blue/restore';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { EXECUTION, mockCallers } from '../../helpers/caller';
import { deployFor } from '../../helpers/deployed';
import { testPlan } from '../../helpers/plan';

const rds = mockClient(RDSClient);
mockCallers();
let handler: (event: RestoreOldBlueEvent) => Promise<RestoreOldBlueResult>;

/** Deployed for RDS for MySQL; the event's plan does not say which engine. */
const deployed: UpgradePlan = testPlan({
  engine: 'mysql',
  currentEngineVersion: '8.0.42',
  targetEngineVersion: '8.4.5',
  targetParameterGroupName: 'quiet-upgrade-parametersmysql84',
});
deployFor(deployed);
const { engine: _engine, ...eventPlan } = deployed;

beforeAll(async () => {
  const module = await import('../../../lambda/restore-old-blue/handler');
  handler = module.handler as (event: RestoreOldBlueEvent) => Promise<RestoreOldBlueResult>;
});

it("sets the deployed engine's read-only parameter (read_only), whatever the event says", async () => {
  rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
    if (DBInstanceIdentifier === 'platform-db-failed1') {
      throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
    }
    const writer = DBInstanceIdentifier === 'platform-db';
    return {
      DBInstances: [
        {
          DBInstanceIdentifier,
          DbiResourceId: `db-${String(DBInstanceIdentifier)}`,
          EngineVersion: writer ? '8.4.5' : '8.0.42',
          DBInstanceStatus: 'available',
          DBParameterGroups: [
            {
              DBParameterGroupName: writer ? 'mysql84-group' : 'mysql80-group',
              ParameterApplyStatus: 'in-sync',
            },
          ],
        },
      ],
    };
  });
  rds.on(CopyDBParameterGroupCommand).resolves({});
  rds.on(ModifyDBParameterGroupCommand).resolves({});
  rds.on(ModifyDBInstanceCommand).resolves({});
  const result = await handler({ execution: EXECUTION, plan: eventPlan as UpgradePlan });
  expect(result).toMatchObject({
    step: 'fence-failed-writer',
    detail: 'attaching mysql84-group-fence (read_only=1) to platform-db in place of mysql84-group',
  });
  expect(rds).toHaveReceivedCommandWith(ModifyDBParameterGroupCommand, {
    DBParameterGroupName: 'mysql84-group-fence',
    Parameters: [{ ParameterName: 'read_only', ParameterValue: '1', ApplyMethod: 'immediate' }],
  });
});
