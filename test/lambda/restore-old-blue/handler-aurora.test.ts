import {
  DescribeDBClustersCommand,
  ModifyDBClusterCommand,
  RDSClient,
  RebootDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { EXECUTION, mockCallers } from '../../helpers/caller';
import { deployFor } from '../../helpers/deployed';
import { testPlan } from '../../helpers/plan';

const rds = mockClient(RDSClient);
mockCallers();
let reboot: (event: unknown) => Promise<unknown>;

const plan: UpgradePlan = testPlan({
  engine: 'aurora-mysql',
  sourceArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:platform-db',
  currentEngineVersion: '8.0.mysql_aurora.3.10.0',
  targetEngineVersion: '8.0.mysql_aurora.3.12.0',
  targetParameterGroupName: 'quiet-upgrade-cluster-parameters-new',
  deadline: '2030-01-06T05:00:00Z',
});
deployFor(plan);

beforeAll(async () => {
  const module = await import('../../../lambda/restore-old-blue/handler');
  reboot = module.handler as (event: unknown) => Promise<unknown>;
});

beforeEach(() => rds.reset());

it.each([
  ['old-blue', 'platform-db-old1'],
  ['failed-writer', 'platform-db-failed1'],
] as const)(
  'reboot-former-writer on %s reboots the writer instance of the cluster %s',
  async (on, former) => {
    rds.on(DescribeDBClustersCommand, { DBClusterIdentifier: former }).resolves({
      DBClusters: [
        {
          DBClusterIdentifier: former,
          DBClusterParameterGroup: 'platform-db-cluster',
          DBClusterMembers: [
            { DBInstanceIdentifier: 'platform-db-reader', IsClusterWriter: false },
            { DBInstanceIdentifier: 'platform-db-writer', IsClusterWriter: true },
          ],
        },
      ],
    });
    expect(
      await reboot({ action: 'reboot-former-writer', execution: EXECUTION, plan, on }),
    ).toEqual({
      instance: 'platform-db-writer',
      ended: null,
      detail: `rebooted platform-db-writer, the writer instance of DB cluster ${former}, which ends every session on it`,
    });
    expect(rds).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 1);
    expect(rds).toHaveReceivedCommandWith(RebootDBInstanceCommand, {
      DBInstanceIdentifier: 'platform-db-writer',
    });
    // Old blue gets its read-only group first (prepared before the page went on), so the
    // reboot cannot make it writable; the failed writer carries its fence already.
    if (on === 'old-blue') {
      expect(rds).toHaveReceivedCommandWith(ModifyDBClusterCommand, {
        DBClusterIdentifier: former,
        DBClusterParameterGroupName: 'platform-db-cluster-fence',
        ApplyImmediately: true,
      });
      const order = rds.calls().map((c) => (c.args[0] as object).constructor.name);
      expect(order.indexOf('ModifyDBClusterCommand')).toBeGreaterThan(-1);
      expect(order.indexOf('ModifyDBClusterCommand')).toBeLessThan(
        order.indexOf('RebootDBInstanceCommand'),
      );
    } else {
      expect(rds).not.toHaveReceivedCommand(ModifyDBClusterCommand);
    }
  },
);

it('reboot-former-writer throws, rebooting nothing, when the former writer cluster has no writer', async () => {
  rds.on(DescribeDBClustersCommand).resolves({
    DBClusters: [
      {
        DBClusterIdentifier: 'platform-db-old1',
        DBClusterMembers: [{ DBInstanceIdentifier: 'platform-db-reader', IsClusterWriter: false }],
      },
    ],
  });
  await expect(
    reboot({ action: 'reboot-former-writer', execution: EXECUTION, plan, on: 'old-blue' }),
  ).rejects.toThrow('DB cluster platform-db-old1 has no writer instance to reboot');
  expect(rds).not.toHaveReceivedCommand(RebootDBInstanceCommand);
});
