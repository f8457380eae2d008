import {
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type {
  RestoreOldBlueEvent,
  RestoreOldBlueResult,
} from '../../../lambda/restore-old-blue/restore';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { testPlan } from '../../helpers/plan';

const rds = mockClient(RDSClient);
let handler: (event: RestoreOldBlueEvent) => Promise<RestoreOldBlueResult>;

const plan: UpgradePlan = testPlan({
  targetParameterGroupName: 'quiet-upgrade-parameterspostgres17',
  deadline: '2030-01-06T05:00:00Z',
  listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/demo/1/2',
  maintenanceToggleFunction: 'quiet-upgrade-maintenance-toggle',
});

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/restore-old-blue/handler'));
});

beforeEach(() => rds.reset());

it('does the next step for the plan it is given and returns it', async () => {
  rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
    if (DBInstanceIdentifier === 'platform-db-failed1') {
      throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
    }
    return {
      DBInstances: [
        {
          DBInstanceIdentifier,
          DbiResourceId: `db-${String(DBInstanceIdentifier)}`,
          EngineVersion: DBInstanceIdentifier === 'platform-db' ? '17.2' : '16.6',
          DBInstanceStatus: 'available',
        },
      ],
    };
  });
  rds.on(ModifyDBInstanceCommand).resolves({});
  const result = await handler({ plan });
  expect(result).toMatchObject({ done: false, step: 'rename-failed-writer' });
  expect(rds).toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
    DBInstanceIdentifier: 'platform-db',
    NewDBInstanceIdentifier: 'platform-db-failed1',
  });
});

it('reports done once the old blue is the writer again', async () => {
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      { DBInstanceIdentifier: 'platform-db', EngineVersion: '16.6', DBInstanceStatus: 'available' },
    ],
  });
  expect(await handler({ plan })).toMatchObject({ done: true, step: 'restored' });
  expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
});
