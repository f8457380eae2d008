// AWS API actions this file calls (for least-privilege IAM): rds:DescribeDBInstances (on
// <source>-old1 and <source>-failed1). Its database connection reads the database secret, as verify-writer does.
import { DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { FAILED_WRITER_SUFFIX, OLD_BLUE_SUFFIX, type UpgradePlan } from '../shared/upgrade-plan';
import type { Queryable } from './verify-writer';

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

export interface EndOldSessionsResult {
  /** The instance whose sessions were ended, or null when there is none. */
  instance: string | null;
  ended: number;
  detail: string;
}

export interface EndOldSessionsDeps {
  rds: RDSClient;
  /** A connection to this host with the database secret's credentials; closed by `close`. */
  dbAt: (host: string) => Promise<Queryable & { end(): Promise<void> }>;
}

/** Which former writer: old blue after a switchover, the failed writer after a restore. */
export type FormerWriter = 'old-blue' | 'failed-writer';

const SUFFIX: Record<FormerWriter, string> = {
  'old-blue': OLD_BLUE_SUFFIX,
  'failed-writer': FAILED_WRITER_SUFFIX,
};
const ROLE: Record<FormerWriter, string> = {
  'old-blue': 'old blue, read-only',
  'failed-writer': 'the failed writer, fenced read-only',
};

/**
 * Before the page goes off: ends the client sessions still open on the instance that was
 * the writer before: old blue (`<name>-old1`) after a good switchover, the failed writer
 * (`<name>-failed1`) after a restore. A pool that reconnected to its cached address during the
 * switchover, or a session that overrides default_transaction_read_only, would otherwise keep
 * sending users' writes there; a session ended reconnects through the endpoint, which names
 * the new writer by then (the writer check passed through it). AWS advises cleaning up
 * connections at the switchover and not overriding default_transaction_read_only in sessions.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-best-practices
 */
export async function endOldSessions(
  deps: EndOldSessionsDeps,
  plan: Pick<UpgradePlan, 'sourceIdentifier'>,
  on: FormerWriter = 'old-blue',
): Promise<EndOldSessionsResult> {
  const id = `${plan.sourceIdentifier}${SUFFIX[on]}`;
  let address: string | undefined;
  try {
    const out = await deps.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    address = out.DBInstances?.[0]?.Endpoint?.Address;
  } catch (err) {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html#API_DescribeDBInstances_Errors
    if ((err as { name?: string }).name !== 'DBInstanceNotFoundFault') throw err;
    return { instance: null, ended: 0, detail: `${id} does not exist: no old sessions to end` };
  }
  if (address === undefined) {
    throw new Error(`${id} has no endpoint address yet, so its sessions could not be ended`);
  }
  const db = await deps.dbAt(address);
  try {
    const { rows } = await db.query(END_SESSIONS_SQL);
    const ended = Number((rows[0] as { ended?: unknown } | undefined)?.ended ?? 0);
    return {
      instance: id,
      ended,
      detail: `ended ${ended} client session(s) on ${id} (${ROLE[on]})`,
    };
  } finally {
    await db.end().catch(() => undefined);
  }
}
