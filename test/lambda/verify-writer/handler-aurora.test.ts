import {
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { VerifyWriterResult } from '../../../lambda/verify-writer/verify-writer';
import { deployFor } from '../../helpers/deployed';
import { connectFunctionsTo, startPostgres, type TestPostgres } from '../../helpers/postgres';

/** verify-writer deployed for Aurora PostgreSQL: the cluster from RDS, the PostgreSQL dialect. */
const rds = mockClient(RDSClient);
const secrets = mockClient(SecretsManagerClient);
let pg: TestPostgres;
let handler: (event: unknown) => Promise<VerifyWriterResult>;
let resetDatabase: () => Promise<void>;
let version: string;

beforeAll(async () => {
  pg = await startPostgres();
  const row = await pg.db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  version = /^\d+\.\d+/.exec(row.rows[0]?.v ?? '')?.[0] ?? '';
  secrets.on(GetSecretValueCommand).resolves({ SecretString: connectFunctionsTo(pg) });
  const module = await import('../../../lambda/verify-writer/handler');
  handler = module.handler as (event: unknown) => Promise<VerifyWriterResult>;
  ({ resetDatabase } = await import('../../../lambda/shared/database'));
});

afterAll(async () => {
  await resetDatabase();
  await pg.stop();
});

beforeEach(() => {
  rds.reset();
  rds.on(DescribeDBClustersCommand).resolves({
    DBClusters: [
      {
        DBClusterIdentifier: 'platform-db',
        Status: 'available',
        EngineVersion: version,
        DeletionProtection: true,
        DBClusterMembers: [{ DBInstanceIdentifier: 'platform-db-writer', IsClusterWriter: true }],
      },
    ],
  });
});

it('checks an aurora-postgresql deployment: the cluster from RDS, the database in PostgreSQL', async () => {
  deployFor({
    engine: 'aurora-postgresql',
    sourceArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:platform-db',
    targetEngineVersion: version,
  });
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
  expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
});

it.each(['mysql', 'aurora-mysql'] as const)(
  'refuses a deployment for %s, naming the engines it checks, calling nothing',
  async (engine) => {
    deployFor({ engine, targetEngineVersion: '8.0.42' });
    await expect(
      handler({ plan: { sourceIdentifier: 'platform-db', targetEngineVersion: '8.0.42' } }),
    ).rejects.toThrow(
      `verify-writer checks engine postgres, but it is deployed for engine: "${engine}" (it checks postgres, aurora-postgresql)`,
    );
    expect(rds).not.toHaveReceivedAnyCommand();
  },
);
