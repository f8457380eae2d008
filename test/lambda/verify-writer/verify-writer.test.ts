import { createServer } from 'node:net';
import {
  type DBInstance,
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { Pool } from 'pg';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { testPlan } from '../../helpers/plan';
import {
  majorMinor,
  type Queryable,
  verifyWriter,
  type VerifyWriterDeps,
} from '../../../lambda/verify-writer/verify-writer';
import { startPostgres, type TestPostgres } from '../../helpers/postgres';

const rds = mockClient(RDSClient);
let pg: TestPostgres;
/** What PGlite reports as server_version, e.g. "18.6"; it plays the upgraded server. */
let serverVersion: string;
let target: string;
let pool: Pool | undefined;
let plan: UpgradePlan;

const pglitePool = () =>
  new Pool({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'postgres', max: 1 });

/** Like ../shared/database: one pool, kept until reset. */
function deps(
  overrides: { db?: VerifyWriterDeps['db']; resetDb?: jest.Mock<Promise<void>, []> } = {},
): VerifyWriterDeps & { resetDb: jest.Mock<Promise<void>, []> } {
  return {
    rds: new RDSClient({}),
    db: overrides.db ?? (async () => (pool ??= pglitePool())),
    resetDb:
      overrides.resetDb ??
      jest.fn(async () => {
        const old = pool;
        pool = undefined;
        await old?.end();
      }),
  };
}

const writer = (overrides: Partial<DBInstance> = {}): DBInstance => ({
  DBInstanceIdentifier: 'platform-db',
  DBInstanceStatus: 'available',
  DeletionProtection: true,
  EngineVersion: target,
  ...overrides,
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

beforeAll(async () => {
  pg = await startPostgres();
  const row = await pg.db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  serverVersion = row.rows[0]?.v ?? '';
  target = majorMinor(serverVersion) ?? '';
  plan = testPlan({ targetEngineVersion: target });
});

afterAll(async () => {
  await pool?.end();
  await pg.stop();
});

beforeEach(() => {
  rds.reset();
  rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [writer()] });
});

afterEach(async () => {
  await pg.db.exec('RESET default_transaction_read_only');
});

/**
 * PGlite runs one backend session that every socket connection shares, so a SET on it is what
 * every connection sees: the closest PGlite gets to a server that refuses writes. (ALTER
 * DATABASE ... SET would only reach sessions started later, and PGlite starts none.)
 */
const makeReadOnly = () => pg.db.exec('SET default_transaction_read_only = on');

describe('verify writer', () => {
  it('passes when the renamed instance runs the target and the database takes writes', async () => {
    expect(target).toMatch(/^\d+\.\d+$/);
    const d = deps();
    const result = await verifyWriter(d, { plan });
    expect(result).toEqual({
      passed: true,
      inconclusive: false,
      failures: [],
      writer: {
        identifier: 'platform-db',
        engineVersion: target,
        writable: true,
        deletionProtection: true,
      },
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: 'platform-db',
    });
    expect(d.resetDb).not.toHaveBeenCalled();
  });

  it('reports a read-only database as not writable and drops the connection', async () => {
    await makeReadOnly();
    const d = deps();
    const result = await verifyWriter(d, { plan });
    expect(result.passed).toBe(false);
    expect(result.writer).toEqual({
      identifier: 'platform-db',
      engineVersion: target,
      writable: false,
      deletionProtection: true,
    });
    expect(result.failures).toEqual([
      'The database behind "platform-db" refuses writes (transaction_read_only=on, pg_is_in_recovery=false). Keep the consumers paused and check the blue/green deployment in the RDS console.',
    ]);
    // Found bad, not merely unchecked: the runbook may restore old blue for this.
    expect(result.inconclusive).toBe(false);
    expect(d.resetDb).toHaveBeenCalledTimes(1);
  });

  it('reports a database in recovery (a standby) as not writable', async () => {
    // PGlite cannot be a standby, so this one answer comes from a stand-in.
    const standby: Queryable = {
      query: async () => ({ rows: [{ ro: 'off', recovery: true, version: serverVersion }] }),
    };
    const result = await verifyWriter(deps({ db: async () => standby }), { plan });
    expect(result.writer?.writable).toBe(false);
    expect(result.failures).toEqual([
      expect.stringContaining('refuses writes (transaction_read_only=off, pg_is_in_recovery=true)'),
    ]);
  });

  it('reports a server that is not the target version: the connection reached the old instance', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolves({ DBInstances: [writer({ EngineVersion: '16.6' })] });
    const d = deps();
    const result = await verifyWriter(d, { plan: { ...plan, targetEngineVersion: '16.6' } });
    expect(result.failures).toEqual([
      `The database behind "platform-db" reports server_version ${serverVersion}, not 16.6: the connection reached the old instance. Wait a minute for the endpoint to follow the switchover and verify again (the next attempt reconnects).`,
    ]);
    // Writable, but not the server we expected: nothing is known about the new writer.
    expect(result.writer?.writable).toBe(true);
    expect(result.inconclusive).toBe(true);
    expect(d.resetDb).toHaveBeenCalledTimes(1);
  });

  it('reports every failed check at once, in a stable order', async () => {
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        writer({
          EngineVersion: '16.6',
          DBInstanceStatus: 'rebooting',
          ReadReplicaSourceDBInstanceIdentifier: 'platform-db-old1',
        }),
      ],
    });
    await makeReadOnly();
    const result = await verifyWriter(deps(), { plan });
    expect(result).toEqual({
      passed: false,
      inconclusive: false,
      failures: [
        `RDS says "platform-db" runs 16.6, not the target ${target}: the switchover has not moved production to green. Check the blue/green deployment in the RDS console before resuming writes.`,
        '"platform-db" is "rebooting", not "available". Wait for it to become available and verify again.',
        '"platform-db" is still a read replica of platform-db-old1, so it cannot take writes. Check the blue/green deployment in the RDS console before resuming writes.',
        expect.stringContaining('refuses writes (transaction_read_only=on'),
      ],
      writer: {
        identifier: 'platform-db',
        engineVersion: '16.6',
        writable: false,
        deletionProtection: true,
      },
    });
  });

  it('turns a connection failure into a failure, drops the pool, and reconnects next time', async () => {
    const unreachable = new Pool({
      host: '127.0.0.1',
      port: await closedPort(),
      user: 'postgres',
      max: 1,
      connectionTimeoutMillis: 2_000,
    });
    let current: Pool = unreachable;
    const resetDb = jest.fn(async () => {
      await current.end();
      current = pglitePool();
    });
    const d = deps({ db: async () => current, resetDb });

    const first = await verifyWriter(d, { plan });
    expect(first.passed).toBe(false);
    expect(first.failures).toEqual([
      expect.stringMatching(
        /^Could not query the database behind "platform-db" \(.*ECONNREFUSED.*\)\. Check that it accepts connections/,
      ),
    ]);
    expect(first.writer).toEqual({
      identifier: 'platform-db',
      engineVersion: target,
      writable: false,
      deletionProtection: true,
    });
    // The database could not be asked: not a failed writer.
    expect(first.inconclusive).toBe(true);
    expect(resetDb).toHaveBeenCalledTimes(1);

    const second = await verifyWriter(d, { plan });
    expect(second.passed).toBe(true);
    await current.end();
  });

  it('turns a missing instance into a failure and still asks the database', async () => {
    rds.on(DescribeDBInstancesCommand).rejects(
      new DBInstanceNotFoundFault({
        message: 'DBInstance platform-db not found.',
        $metadata: {},
      }),
    );
    const query = jest.fn(async () => ({
      rows: [{ ro: 'off', recovery: false, version: serverVersion }],
    }));
    const result = await verifyWriter(deps({ db: async () => ({ query }) }), { plan });
    expect(result).toEqual({
      passed: false,
      inconclusive: false,
      failures: [
        expect.stringMatching(/^DB instance "platform-db" was not found after the switchover\./),
      ],
      writer: null,
    });
    expect(query).toHaveBeenCalledTimes(1);
  });

  it('is not inconclusive when RDS finds the writer bad, even if the database cannot be asked', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolves({ DBInstances: [writer({ EngineVersion: '16.6' })] });
    const down: Queryable = {
      query: async () => {
        throw new Error('connect ETIMEDOUT');
      },
    };
    const result = await verifyWriter(deps({ db: async () => down }), { plan });
    expect(result.passed).toBe(false);
    expect(result.inconclusive).toBe(false);
    expect(result.failures).toEqual([
      expect.stringContaining('runs 16.6, not the target'),
      expect.stringContaining(
        'Could not query the database behind "platform-db" (connect ETIMEDOUT)',
      ),
    ]);
  });

  it('reports a writer without deletion protection, and still passes it', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolves({ DBInstances: [writer({ DeletionProtection: false })] });
    const result = await verifyWriter(deps(), { plan });
    expect(result.passed).toBe(true);
    expect(result.writer?.deletionProtection).toBe(false);
  });

  it('checks blue against the current version when asked to, before anything changes', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolves({ DBInstances: [writer({ DBInstanceIdentifier: 'platform-db' })] });
    const before = await verifyWriter(deps(), {
      plan: { ...plan, currentEngineVersion: target, targetEngineVersion: '99.1' },
      expect: 'current',
    });
    expect(before.passed).toBe(true);
    // The same instance checked as the upgraded writer fails: the version is not the target.
    const after = await verifyWriter(deps(), {
      plan: { ...plan, currentEngineVersion: target, targetEngineVersion: '99.1' },
    });
    expect(after.passed).toBe(false);
  });

  it('says what a wrong version means for the original database, not for green', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .resolves({ DBInstances: [writer({ DBInstanceIdentifier: 'platform-db' })] });
    // The restored writer checked while the endpoint still reaches another instance.
    const restored = await verifyWriter(deps(), {
      plan: { ...plan, currentEngineVersion: '15.8', targetEngineVersion: target },
      expect: 'current',
      restored: true,
    });
    expect(restored.passed).toBe(false);
    expect(restored.failures).toEqual([
      `RDS says "platform-db" runs ${target}, not 15.8, the version the upgrade started from: ` +
        'it is not the original database. Find out which instance answers to the name before ' +
        'anything else is changed.',
      `The database behind "platform-db" reports server_version ${target}, not 15.8: the ` +
        'connection reached another instance: the endpoint has not yet followed the last ' +
        'rename, which takes about 10 minutes (the next attempt reconnects).',
    ]);
    expect(restored.failures.join(' ')).not.toContain('switchover');
    // The same against blue before anything changed: the stack is behind what runs.
    const blue = await verifyWriter(deps(), {
      plan: { ...plan, currentEngineVersion: '15.8', targetEngineVersion: target },
      expect: 'current',
    });
    expect(blue.failures[0]).toContain('the version the stack says it runs');
    expect(blue.failures.join(' ')).not.toMatch(/switchover|rename/);
  });

  it('throws an unexpected RDS error for Step Functions to retry', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    await expect(verifyWriter(deps(), { plan })).rejects.toThrow('Rate exceeded');
  });

  it('throws when the database secret cannot be read, without counting it as a check', async () => {
    const denied = Object.assign(new Error('not authorized to GetSecretValue'), {
      name: 'AccessDeniedException',
    });
    const d = deps({ db: () => Promise.reject(denied) });
    await expect(verifyWriter(d, { plan })).rejects.toThrow('not authorized to GetSecretValue');
    expect(d.resetDb).not.toHaveBeenCalled();
  });
});

describe('majorMinor', () => {
  it.each([
    ['17.2', '17.2'],
    ['17.2 (Debian 17.2-1.pgdg120+1)', '17.2'],
    ['17.20', '17.20'],
    ['17', '17'],
    ['devel', undefined],
  ])('reads %j as %j', (version, expected) => {
    expect(majorMinor(version)).toBe(expected);
  });
});
