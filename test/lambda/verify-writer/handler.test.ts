import {
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { EndOldSessionsResult } from '../../../lambda/verify-writer/old-sessions';
import type { VerifyWriterResult } from '../../../lambda/verify-writer/verify-writer';
import { deployFor } from '../../helpers/deployed';
import { connectFunctionsTo, startPostgres, type TestPostgres } from '../../helpers/postgres';

const rds = mockClient(RDSClient);
const secrets = mockClient(SecretsManagerClient);
let pg: TestPostgres;
let handler: (event: unknown) => Promise<VerifyWriterResult>;
let endSessions: (event: unknown) => Promise<EndOldSessionsResult>;
let resetDatabase: () => Promise<void>;
let version: string;

beforeAll(async () => {
  pg = await startPostgres();
  const row = await pg.db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  version = row.rows[0]?.v ?? '';
  secrets.on(GetSecretValueCommand).resolves({ SecretString: connectFunctionsTo(pg) });
  const module = await import('../../../lambda/verify-writer/handler');
  handler = module.handler as (event: unknown) => Promise<VerifyWriterResult>;
  endSessions = module.handler as (event: unknown) => Promise<EndOldSessionsResult>;
  ({ resetDatabase } = await import('../../../lambda/shared/database'));
});

afterAll(async () => {
  await resetDatabase();
  await pg.stop();
});

beforeEach(() => {
  // Deployed to upgrade to the version the test server runs.
  deployFor({ targetEngineVersion: version });
  rds.reset();
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      {
        DBInstanceIdentifier: 'platform-db',
        DBInstanceStatus: 'available',
        EngineVersion: version,
        DeletionProtection: true,
      },
    ],
  });
});

describe('verify-writer handler', () => {
  it('checks RDS and the database named by the secret', async () => {
    const result = await handler({
      plan: { sourceIdentifier: 'platform-db', targetEngineVersion: version },
    });
    expect(result).toEqual({
      passed: true,
      inconclusive: false,
      failures: [],
      writer: {
        identifier: 'platform-db',
        engineVersion: version,
        writable: true,
        deletionProtection: true,
      },
    });
    expect(secrets).toHaveReceivedCommandWith(GetSecretValueCommand, {
      SecretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db',
    });
  });

  it('refuses an event without a plan, calling nothing', async () => {
    await expect(handler({})).rejects.toThrow(/invalid verify-writer event[\s\S]*plan/);
    expect(rds).not.toHaveReceivedAnyCommand();
  });

  it('refuses a check of blue without the current version, calling nothing', async () => {
    await expect(
      handler({ plan: { sourceIdentifier: 'platform-db' }, expect: 'current' }),
    ).rejects.toThrow(/invalid verify-writer event[\s\S]*currentEngineVersion/);
    expect(rds).not.toHaveReceivedAnyCommand();
  });
});

describe('verify-writer handler: end-old-sessions', () => {
  const plan = { sourceIdentifier: 'platform-db', targetEngineVersion: '17.2' };
  beforeEach(() => deployFor(plan));

  it("runs the real statement on -old1's own endpoint and reports what it ended", async () => {
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-old1' }).resolves({
      DBInstances: [
        { DBInstanceIdentifier: 'platform-db-old1', Endpoint: { Address: '127.0.0.1' } },
      ],
    });
    // PGlite has one backend, this one, which the statement never ends.
    expect(await endSessions({ plan, action: 'end-old-sessions' })).toEqual({
      instance: 'platform-db-old1',
      ended: 0,
      detail: 'ended 0 client session(s) on platform-db-old1 (old blue, read-only)',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: 'platform-db-old1',
    });
  });

  it('ends nothing, and says so, when there is no old blue', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} }));
    expect(await endSessions({ plan, action: 'end-old-sessions' })).toEqual({
      instance: null,
      ended: 0,
      detail: 'platform-db-old1 does not exist: no old sessions to end',
    });
  });

  it('refuses an action it does not know, naming it', async () => {
    await expect(handler({ plan, action: 'drop-everything' })).rejects.toThrow(
      /invalid verify-writer event:[\s\S]*action/,
    );
  });
});

describe('verify-writer handler: the window', () => {
  /** The check with the sessions on old blue, which RDS describes as `old1`. */
  async function checkEndingSessions(old1: Record<string, unknown>) {
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-old1' }).resolves({
      DBInstances: [{ DBInstanceIdentifier: 'platform-db-old1', ...old1 }],
    });
    return (await handler({
      plan: { sourceIdentifier: 'platform-db', targetEngineVersion: version },
      endSessionsOn: 'old-blue',
    })) as VerifyWriterResult & { oldSessions: unknown };
  }

  it('ends the sessions on old blue in the same call as the check', async () => {
    const result = await checkEndingSessions({ Endpoint: { Address: '127.0.0.1' } });
    expect(result.passed).toBe(true);
    expect(result.oldSessions).toEqual({
      instance: 'platform-db-old1',
      ended: 0,
      detail: 'ended 0 client session(s) on platform-db-old1 (old blue, read-only)',
    });
  });

  it('reports sessions it could not end beside a passed check, without failing the call', async () => {
    const result = await checkEndingSessions({});
    expect(result.passed).toBe(true);
    expect(result.oldSessions).toEqual({
      error: 'platform-db-old1 has no endpoint address yet, so its sessions could not be ended',
    });
  });

  it('answers a warm-up by reading the credentials, and calls RDS for nothing', async () => {
    secrets.resetHistory();
    await resetDatabase();
    await expect(handler({ warm: true })).resolves.toEqual({ warm: true });
    expect(secrets).toHaveReceivedCommand(GetSecretValueCommand);
    expect(rds).not.toHaveReceivedAnyCommand();
  });

  it('names the database secret when its value is not JSON', async () => {
    await resetDatabase();
    secrets.reset();
    secrets
      .on(GetSecretValueCommand)
      .resolvesOnce({ SecretString: 'hunter2' })
      .resolves({ SecretString: connectFunctionsTo(pg) });
    await expect(handler({ warm: true })).rejects.toThrow(
      'database secret arn:aws:secretsmanager:eu-west-1:123456789012:secret:db is not JSON',
    );
    await resetDatabase();
  });

  it('refuses a warm-up with anything else in it, naming what is missing', async () => {
    await expect(handler({ warm: true, plan: {} })).rejects.toThrow(
      /invalid verify-writer event[\s\S]*sourceIdentifier/,
    );
  });
});

describe('verify-writer handler: blue limitations', () => {
  it('fails blue on a table without a primary key when the upgrade is major, names it', async () => {
    await pg.db.exec('CREATE TABLE audit_trail (at timestamptz, note text)');
    try {
      const major = { sourceIdentifier: 'platform-db', currentEngineVersion: version };
      deployFor({ currentEngineVersion: version, targetEngineVersion: '99.1' });
      const logical = await handler({
        plan: { ...major, targetEngineVersion: '99.1' },
        expect: 'current',
        limitations: true,
      });
      expect(logical.passed).toBe(false);
      expect(logical.failures.join(' ')).toContain('public.audit_trail');
      // A minor upgrade replicates physically: no such limitation.
      deployFor({ currentEngineVersion: version, targetEngineVersion: version });
      const physical = await handler({
        plan: { ...major, targetEngineVersion: `${version.split('.')[0] ?? ''}.99` },
        expect: 'current',
        limitations: true,
      });
      expect(physical).toMatchObject({ passed: true, failures: [] });
      // Without the flag (the checks after a switchover or a restore) it is not looked for.
      deployFor({ currentEngineVersion: version, targetEngineVersion: '99.1' });
      const plain = await handler({
        plan: { ...major, targetEngineVersion: '99.1' },
        expect: 'current',
      });
      expect(plain.passed).toBe(true);
    } finally {
      await pg.db.exec('DROP TABLE audit_trail');
    }
  });
});

describe('verify-writer handler: what it acts on', () => {
  it('takes the instance from its environment: ending sessions on another database is refused before any call', async () => {
    secrets.resetHistory();
    await expect(
      endSessions({
        plan: { sourceIdentifier: 'billing-db', targetEngineVersion: version },
        action: 'end-old-sessions',
      }),
    ).rejects.toThrow(
      'plan.sourceIdentifier must be the deployed "platform-db", got: "billing-db"',
    );
    expect(rds).not.toHaveReceivedAnyCommand();
    expect(secrets).not.toHaveReceivedAnyCommand();
  });
});
