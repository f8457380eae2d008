import {
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';

const rds = mockClient(RDSClient);
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
  await expect(handler({ action: 'protect-writer', plan })).resolves.toEqual({
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
