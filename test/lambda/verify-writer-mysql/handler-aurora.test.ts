import { DescribeDBClustersCommand, RDSClient } from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type { VerifyWriterOutput } from '../../../lambda/verify-writer/handle';
import type { VerifyWriterResult } from '../../../lambda/verify-writer/writer-check';
import { deployFor } from '../../helpers/deployed';
import { describeWithMysql, MYSQL_MASTER, startMysql, type TestMysql } from '../../helpers/mysql';

/**
 * verify-writer-mysql deployed for Aurora MySQL, on a real MariaDB (test/helpers/mysql.ts):
 * MariaDB has no @@aurora_version, so the server's refusal of it shows the Aurora dialect ran.
 */
const describeMysql = describeWithMysql();
const rds = mockClient(RDSClient);
const secrets = mockClient(SecretsManagerClient);
let mysql: TestMysql;
let handler: (event: unknown) => Promise<VerifyWriterOutput>;
let resetMysqlDatabase: () => Promise<void>;

const TARGET = '8.0.mysql_aurora.3.12.0';

describeMysql('verify-writer-mysql for Aurora MySQL', () => {
  beforeAll(async () => {
    mysql = await startMysql();
    process.env.DB_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db';
    process.env.DB_TLS = 'disable';
    process.env.DB_NAME = mysql.database;
    secrets.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({
        host: '127.0.0.1',
        port: mysql.port,
        username: MYSQL_MASTER.user,
        password: MYSQL_MASTER.password,
      }),
    });
    ({ handler } = await import('../../../lambda/verify-writer-mysql/handler'));
    ({ resetMysqlDatabase } = await import('../../../lambda/shared/mysql'));
  });

  afterAll(async () => {
    await resetMysqlDatabase?.();
    await mysql?.stop();
  });

  beforeEach(() => {
    rds.reset();
    rds.on(DescribeDBClustersCommand).resolves({
      DBClusters: [
        {
          DBClusterIdentifier: 'platform-db',
          Status: 'available',
          EngineVersion: TARGET,
          DeletionProtection: true,
          DBClusterMembers: [{ DBInstanceIdentifier: 'platform-db-writer', IsClusterWriter: true }],
        },
      ],
    });
  });

  it('asks the cluster of RDS and @@aurora_version of the server', async () => {
    deployFor({
      engine: 'aurora-mysql',
      sourceArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:platform-db',
      currentEngineVersion: '8.0.mysql_aurora.3.10.0',
      targetEngineVersion: TARGET,
    });
    const result = (await handler({
      plan: { sourceIdentifier: 'platform-db', targetEngineVersion: TARGET },
    })) as VerifyWriterResult;
    expect(result.passed).toBe(false);
    expect(result.inconclusive).toBe(true);
    expect(result.failures).toHaveLength(1);
    expect(result.failures[0]).toMatch(
      /^Could not query the database behind "platform-db" \(.*aurora_version.*\)/,
    );
    expect(result.writer).toEqual({
      identifier: 'platform-db',
      engineVersion: TARGET,
      writable: false,
      deletionProtection: true,
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBClustersCommand, {
      DBClusterIdentifier: 'platform-db',
    });
  });

  it('refuses a deployment for postgres, naming the engines it checks', async () => {
    deployFor({ engine: 'aurora-postgresql', targetEngineVersion: '17.4' });
    await expect(
      handler({ plan: { sourceIdentifier: 'platform-db', targetEngineVersion: '17.4' } }),
    ).rejects.toThrow(
      'verify-writer-mysql checks engine mysql, but it is deployed for engine: "aurora-postgresql" (it checks mysql, aurora-mysql)',
    );
    expect(rds).not.toHaveReceivedAnyCommand();
  });
});
