import {
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { EXECUTION, mockCallers } from '../../helpers/caller';
import { deployFor } from '../../helpers/deployed';

const rds = mockClient(RDSClient);
const sfn = mockCallers();
deployFor();
let handler: (event: unknown) => Promise<unknown>;
const plan = {
  sourceIdentifier: 'platform-db',
  sourceArn: 'arn:aws:rds:eu-west-1:123456789012:db:platform-db',
};

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/deletion-protection/handler'));
});
beforeEach(() => rds.reset());

it('protects the writer when asked', async () => {
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [{ DBInstanceIdentifier: 'platform-db', DeletionProtection: false }],
  });
  await expect(handler({ action: 'protect-writer', execution: EXECUTION, plan })).resolves.toEqual({
    protected: true,
    changed: true,
  });
  expect(rds).toHaveReceivedCommandWith(ModifyDBInstanceCommand, { DeletionProtection: true });
});

it.each([
  [{ plan }, /action/],
  [{ action: 'unprotect-green', plan }, /blueGreenDeploymentIdentifier/],
  [{ action: 'protect-writer', plan: { sourceIdentifier: 'platform-db' } }, /sourceArn/],
  [{ action: 'delete-everything', plan }, /action/],
])('refuses %j with the field named, calling nothing', async (event, field) => {
  await expect(handler(event)).rejects.toThrow(field);
  await expect(handler(event)).rejects.toThrow(/invalid deletion-protection event/);
  expect(rds.calls()).toHaveLength(0);
});

it('changes nothing for a caller that is not a running upgrade or watchdog execution', async () => {
  const stopped = 'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:old-run';
  for (const execution of [undefined, stopped]) {
    await expect(handler({ action: 'protect-writer', execution, plan })).rejects.toThrow(
      /^execution must be/,
    );
  }
  expect(rds.calls()).toHaveLength(0);
});

it('takes the instance from its environment: a plan naming another is refused before any call', async () => {
  sfn.resetHistory();
  const other = { sourceIdentifier: 'billing-db', sourceArn: plan.sourceArn };
  await expect(
    handler({ action: 'protect-writer', execution: EXECUTION, plan: other }),
  ).rejects.toThrow('plan.sourceIdentifier must be the deployed "platform-db", got: "billing-db"');
  expect(rds.calls()).toHaveLength(0);
  expect(sfn.calls()).toHaveLength(0);
});
