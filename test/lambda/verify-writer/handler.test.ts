import { DescribeDBInstancesCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { VerifyWriterResult } from '../../../lambda/verify-writer/verify-writer';
import { connectFunctionsTo, startPostgres, type TestPostgres } from '../../helpers/postgres';

const rds = mockClient(RDSClient);
const secrets = mockClient(SecretsManagerClient);
let pg: TestPostgres;
let handler: (event: unknown) => Promise<VerifyWriterResult>;
let resetDatabase: () => Promise<void>;
let version: string;

beforeAll(async () => {
  pg = await startPostgres();
  const row = await pg.db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  version = row.rows[0]?.v ?? '';
  secrets.on(GetSecretValueCommand).resolves({ SecretString: connectFunctionsTo(pg) });
  ({ handler } = await import('../../../lambda/verify-writer/handler'));
  ({ resetDatabase } = await import('../../../lambda/shared/database'));
});

afterAll(async () => {
  await resetDatabase();
  await pg.stop();
});

beforeEach(() => {
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
