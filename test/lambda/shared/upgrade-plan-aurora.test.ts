import { READ_ONLY_PARAMETER, replicationOf } from '../../../lambda/shared/upgrade-plan';

describe('the Aurora engines in the plan', () => {
  it.each([
    ['aurora-postgresql', '16.6', '17.4', 'logical'],
    ['aurora-postgresql', '16.6', '16.8', 'logical'],
    ['aurora-mysql', '8.0.mysql_aurora.3.10.0', '8.0.mysql_aurora.3.12.0', 'binlog'],
  ] as const)(
    'replicates %s %s to %s by %s replication, minor or major',
    (engine, currentEngineVersion, targetEngineVersion, replication) => {
      expect(replicationOf({ engine, currentEngineVersion, targetEngineVersion })).toBe(
        replication,
      );
    },
  );

  it.each([
    ['aurora-postgresql', 'default_transaction_read_only'],
    ['aurora-mysql', 'read_only'],
    ['postgres', 'default_transaction_read_only'],
    ['mysql', 'read_only'],
  ] as const)('keeps old blue of %s read-only with %s', (engine, parameter) => {
    expect(READ_ONLY_PARAMETER[engine]).toBe(parameter);
  });
});
