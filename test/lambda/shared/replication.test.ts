import {
  instanceEngine,
  READ_ONLY_PARAMETER,
  replicationOf,
} from '../../../lambda/shared/upgrade-plan';

describe('replicationOf', () => {
  it.each([
    ['8.0.40', '8.0.42'],
    ['8.0.42', '8.4.5'],
    ['8.4.4', '8.4.4'],
  ])(
    'replicates RDS for MySQL %s to %s by binary log',
    (currentEngineVersion, targetEngineVersion) => {
      expect(replicationOf({ engine: 'mysql', currentEngineVersion, targetEngineVersion })).toBe(
        'binlog',
      );
    },
  );

  it.each([
    ['16.6', '17.2', 'logical'],
    ['17.2', '17.4', 'physical'],
    ['9.6.23', '9.6.24', 'physical'],
  ])(
    'answers the same for an explicit postgres plan as for one without an engine (%s to %s: %s)',
    (currentEngineVersion, targetEngineVersion, replication) => {
      const versions = { currentEngineVersion, targetEngineVersion };
      expect(replicationOf({ engine: 'postgres', ...versions })).toBe(replication);
      expect(replicationOf(versions)).toBe(replication);
    },
  );
});

describe('the read-only parameter of each instance engine', () => {
  it.each([
    ['postgres', 'default_transaction_read_only'],
    ['mysql', 'read_only'],
  ] as const)('is %s: %s', (engine, parameter) => {
    expect(READ_ONLY_PARAMETER[instanceEngine(engine)]).toBe(parameter);
  });
});
