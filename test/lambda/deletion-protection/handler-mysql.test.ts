import {
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { EXECUTION, mockCallers } from '../../helpers/caller';
import { deployFor } from '../../helpers/deployed';

/**
 * Nothing in deletion protection depends on the engine (DeletionProtection is an attribute of
 * every DB instance); these pin that a MySQL deployment, with a green read replica, goes
 * through the same handler, plan pinning included.
 */
const rds = mockClient(RDSClient);
mockCallers();
deployFor({
  engine: 'mysql',
  currentEngineVersion: '8.0.42',
  targetEngineVersion: '8.4.5',
  targetParameterGroupName: 'parameters-mysql84',
});
let handler: (event: unknown) => Promise<unknown>;
const plan = {
  sourceIdentifier: 'platform-db',
  sourceArn: 'arn:aws:rds:eu-west-1:123456789012:db:platform-db',
};
const db = (id: string) => `arn:aws:rds:eu-west-1:123456789012:db:${id}`;

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/deletion-protection/handler'));
});
beforeEach(() => rds.reset());

it('turns protection off on every MySQL green member, the replica too, and never on blue', async () => {
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
    BlueGreenDeployments: [
      {
        BlueGreenDeploymentIdentifier: 'bgd-1',
        Source: plan.sourceArn,
        TagList: [{ Key: 'quiet-upgrade:execution', Value: 'run-1' }],
        SwitchoverDetails: [
          { SourceMember: plan.sourceArn, TargetMember: db('platform-db-green-abc') },
          {
            SourceMember: db('platform-db-replica'),
            TargetMember: db('platform-db-replica-green-x'),
          },
        ],
      },
    ],
  });
  rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => ({
    DBInstances: [
      {
        DBInstanceIdentifier: String(DBInstanceIdentifier).split(':').at(-1),
        DBInstanceStatus: 'available',
        DeletionProtection: true,
      },
    ],
  }));
  await expect(
    handler({
      action: 'unprotect-green',
      execution: EXECUTION,
      plan: { ...plan, engine: 'mysql' },
      blueGreenDeploymentIdentifier: 'bgd-1',
    }),
  ).resolves.toEqual({
    done: true,
    unprotected: ['platform-db-green-abc', 'platform-db-replica-green-x'],
    waiting: [],
  });
  expect(rds).toHaveReceivedCommandTimes(ModifyDBInstanceCommand, 2);
  expect(rds).not.toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
    DBInstanceIdentifier: 'platform-db',
  });
});

it('refuses a plan that names another engine than the deployed one, before any call', async () => {
  await expect(
    handler({
      action: 'protect-writer',
      execution: EXECUTION,
      plan: { ...plan, engine: 'postgres' },
    }),
  ).rejects.toThrow('plan.engine must be the deployed "mysql", got: "postgres"');
  expect(rds.calls()).toHaveLength(0);
});
