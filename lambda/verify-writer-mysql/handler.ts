// AWS API actions this function calls: rds:DescribeDBInstances (on <source>, <source>-old1,
// <source>-failed1: ../verify-writer/writer-check.ts, ../verify-writer/former-writer.ts; for
// Aurora MySQL rds:DescribeDBClusters on the clusters of those names), and
// secretsmanager:GetSecretValue on DB_SECRET_ARN through ../shared/mysql.ts.
import { RDSClient } from '@aws-sdk/client-rds';
import {
  mysqlConnectionAt,
  mysqlReader,
  resetMysqlDatabase,
  warmMysqlDatabase,
} from '../shared/mysql';
import { endSessionsOnFormerWriter } from '../verify-writer/former-writer';
import { verifyWriterHandler } from '../verify-writer/handle';
import { checkWriter } from '../verify-writer/writer-check';
import { MYSQL_SESSIONS } from './sessions';
import { mysqlWriterFor } from './writer';

const rds = new RDSClient({});

/**
 * The writer check on RDS for MySQL and Aurora MySQL: the same event and results as verify-writer's
 * (../verify-writer/handle.ts), through our own MySQL client, so that this bundle carries no
 * `pg` and verify-writer's no MySQL client. The database is DB_NAME on the host of the secret
 * DB_SECRET_ARN names (the master user's: it sees and ends other sessions).
 */
export const handler = verifyWriterHandler({
  name: 'verify-writer-mysql',
  engines: ['mysql', 'aurora-mysql'],
  warm: warmMysqlDatabase,
  verify: (event) =>
    checkWriter(
      { rds, db: mysqlReader, resetDb: resetMysqlDatabase },
      mysqlWriterFor(event.plan.engine),
      event,
    ),
  endSessions: (plan, on) =>
    endSessionsOnFormerWriter({ rds, dbAt: mysqlConnectionAt }, MYSQL_SESSIONS, plan, on),
});
