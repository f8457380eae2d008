// AWS API actions this file calls (for least-privilege IAM): rds:DescribeDBInstances (on
// <source>-old1 and <source>-failed1, in ./former-writer.ts; rds:DescribeDBClusters for Aurora). Its database connection reads the
// database secret, as verify-writer does.
import type { UpgradePlan } from '../shared/upgrade-plan';
import {
  type EndOldSessionsResult,
  endSessionsOnFormerWriter,
  type FormerWriter,
  type FormerWriterDeps,
  type SessionDialect,
} from './former-writer';
import type { Queryable } from './verify-writer';

export type { EndOldSessionsResult, FormerWriter } from './former-writer';

/**
 * Ends every client session on the instance but this one. Sessions of superusers (RDS's own,
 * rdsadmin) are left alone: the master user is not a superuser, and signalling a superuser's
 * session is refused with an error that would end the whole statement.
 * https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SIGNAL
 */
export const END_SESSIONS_SQL = `SELECT count(*)::int AS ended FROM (
  SELECT pg_terminate_backend(a.pid) AS ok
    FROM pg_stat_activity a
   WHERE a.backend_type = 'client backend'
     AND a.pid <> pg_backend_pid()
     AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = a.usesysid AND r.rolsuper)
) AS t WHERE ok`;

type Closable = Queryable & { end(): Promise<void> };

export type EndOldSessionsDeps = FormerWriterDeps<Closable>;

/**
 * The PostgreSQL side. AWS also advises not overriding default_transaction_read_only in
 * sessions, which is why sessions on old blue are ended rather than trusted to be read-only.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-best-practices
 */
export const POSTGRES_SESSIONS: SessionDialect<Closable> = {
  async endSessions(db) {
    const { rows } = await db.query(END_SESSIONS_SQL);
    return { ended: Number((rows[0] as { ended?: unknown } | undefined)?.ended ?? 0) };
  },
  close: (db) => db.end().catch(() => undefined),
};

/** Ends the client sessions on a former writer (./former-writer.ts), on PostgreSQL. */
export function endOldSessions(
  deps: EndOldSessionsDeps,
  plan: Pick<UpgradePlan, 'sourceIdentifier'> & Partial<Pick<UpgradePlan, 'engine'>>,
  on: FormerWriter = 'old-blue',
): Promise<EndOldSessionsResult> {
  return endSessionsOnFormerWriter(deps, POSTGRES_SESSIONS, plan, on);
}
