// AWS API actions this function calls: see ./writer-check.ts and ./former-writer.ts
// (rds:DescribeDBInstances; rds:DescribeDBClusters for Aurora PostgreSQL), plus secretsmanager:GetSecretValue on DB_SECRET_ARN through
// ../shared/database.ts.
import { RDSClient } from '@aws-sdk/client-rds';
import { database, databaseAt, resetDatabase, warmDatabase } from '../shared/database';
import { verifyWriterHandler } from './handle';
import { endOldSessions } from './old-sessions';
import { verifyWriter } from './verify-writer';

export type { WithOldSessions } from './handle';

const deps = { rds: new RDSClient({}), db: database, resetDb: resetDatabase, dbAt: databaseAt };

/**
 * The writer check on RDS for PostgreSQL and Aurora PostgreSQL, through `pg` (./handle.ts):
 * Aurora PostgreSQL speaks PostgreSQL, and the RDS side follows the plan's engine.
 */
export const handler = verifyWriterHandler({
  name: 'verify-writer',
  engines: ['postgres', 'aurora-postgresql'],
  // The pool connects only at its first query.
  warm: warmDatabase,
  verify: (event) => verifyWriter(deps, event),
  endSessions: (plan, on) => endOldSessions(deps, plan, on),
});
