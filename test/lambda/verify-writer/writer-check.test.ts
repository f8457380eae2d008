import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { type Queryable, verifyWriter } from '../../../lambda/verify-writer/verify-writer';
import { testPlan } from '../../helpers/plan';

/**
 * The words the engine-neutral check takes from the PostgreSQL dialect: a read-only blue or
 * restored writer is told to look at PostgreSQL's parameter (MySQL's is read_only).
 */
const rds = mockClient(RDSClient);
const plan = testPlan({ currentEngineVersion: '16.6', targetEngineVersion: '17.2' });
const readOnly: Queryable = {
  query: async () => ({ rows: [{ ro: 'on', recovery: false, version: '16.6' }] }),
};
const deps = { rds: new RDSClient({}), db: async () => readOnly, resetDb: async () => undefined };

beforeEach(() => {
  rds.reset();
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      { DBInstanceIdentifier: 'platform-db', DBInstanceStatus: 'available', EngineVersion: '16.6' },
    ],
  });
});

describe('the PostgreSQL words of a read-only writer', () => {
  it('tells blue to check default_transaction_read_only in its parameter group', async () => {
    const result = await verifyWriter(deps, { plan, expect: 'current' });
    expect(result.failures).toEqual([
      'The database behind "platform-db" refuses writes (transaction_read_only=on, ' +
        'pg_is_in_recovery=false): blue must take writes before an upgrade. Check ' +
        'default_transaction_read_only in its parameter group.',
    ]);
  });

  it('tells the restored writer to use default_transaction_read_only=0', async () => {
    const result = await verifyWriter(deps, { plan, expect: 'current', restored: true });
    expect(result.failures).toEqual([
      'The database behind "platform-db" refuses writes (transaction_read_only=on, ' +
        'pg_is_in_recovery=false). Check that platform-db uses its "-restore" parameter group, ' +
        'in-sync, with default_transaction_read_only=0, and was rebooted since (docs/runbook.md 3.2).',
    ]);
  });
});
