// AWS API actions this file calls (for least-privilege IAM): rds:DescribeDBInstances (on
// <source>-old1 and <source>-failed1); for an Aurora plan rds:DescribeDBClusters (on the
// clusters of those names). Its database connection reads the database secret, as the writer
// check does.
// The engine-neutral half of ending the sessions on a former writer; how the sessions are
// ended is the engine's (./old-sessions.ts for PostgreSQL, ../verify-writer-mysql/).
import { DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { describeCluster, isClusterEngine } from '../shared/cluster';
import { FAILED_WRITER_SUFFIX, OLD_BLUE_SUFFIX, type UpgradePlan } from '../shared/upgrade-plan';

export interface EndOldSessionsResult {
  /** The instance (Aurora: DB cluster) whose sessions were ended, or null when there is none. */
  instance: string | null;
  ended: number;
  detail: string;
}

/** Which former writer: old blue after a switchover, the failed writer after a restore. */
export type FormerWriter = 'old-blue' | 'failed-writer';

/** The database side of ending sessions. `C` is a connection. */
export interface SessionDialect<C> {
  /** Ends every client session but this one; how many it ended, and anything to add. */
  endSessions(db: C): Promise<{ ended: number; note?: string }>;
  /** Closes the connection; never throws. */
  close(db: C): Promise<void>;
}

export interface FormerWriterDeps<C> {
  rds: RDSClient;
  /** A connection to this host with the database secret's credentials. */
  dbAt: (host: string) => Promise<C>;
}

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
 * switchover, or a session that overrides the read-only setting, would otherwise keep
 * sending users' writes there; a session ended reconnects through the endpoint, which names
 * the new writer by then (the writer check passed through it). AWS advises cleaning up
 * connections at the switchover.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-best-practices
 */
export async function endSessionsOnFormerWriter<C>(
  deps: FormerWriterDeps<C>,
  dialect: SessionDialect<C>,
  plan: Pick<UpgradePlan, 'sourceIdentifier'> & Partial<Pick<UpgradePlan, 'engine'>>,
  on: FormerWriter = 'old-blue',
): Promise<EndOldSessionsResult> {
  const id = `${plan.sourceIdentifier}${SUFFIX[on]}`;
  const none = { instance: null, ended: 0, detail: `${id} does not exist: no old sessions to end` };
  let address: string | undefined;
  if (isClusterEngine(plan.engine ?? 'postgres')) {
    const cluster = await describeCluster(deps.rds, id);
    if (cluster === undefined) return none;
    address = clusterAddress(id, cluster.Endpoint);
  } else {
    try {
      const out = await deps.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
      address = out.DBInstances?.[0]?.Endpoint?.Address;
    } catch (err) {
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html#API_DescribeDBInstances_Errors
      if ((err as { name?: string }).name !== 'DBInstanceNotFoundFault') throw err;
      return none;
    }
  }
  if (address === undefined) {
    throw new Error(`${id} has no endpoint address yet, so its sessions could not be ended`);
  }
  const db = await deps.dbAt(address);
  try {
    const { ended, note } = await dialect.endSessions(db);
    return {
      instance: id,
      ended,
      detail:
        `ended ${ended} client session(s) on ${id} (${ROLE[on]})` +
        (note === undefined ? '' : `; ${note}`),
    };
  } finally {
    await dialect.close(db);
  }
}

/**
 * Aurora: a former writer cluster's address is its cluster endpoint, "the connection endpoint
 * for the primary instance of the DB cluster": its sessions that can write are the writer's
 * (readers refuse writes). The cluster endpoint is named after the cluster ("mydbcluster.
 * cluster-123456789012.us-east-1.rds.amazonaws.com"), and "When you change the DB cluster
 * identifier, the DB cluster endpoints change"; AWS does not say how soon DescribeDBClusters
 * and DNS show the new name. An endpoint that does not carry the cluster's own name may still
 * be the name production now answers to, so it is refused rather than connected to: the
 * sessions are then not ended here, and the state machine falls back to rebooting the cluster's
 * writer (restore-old-blue, reboot-former-writer).
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.Endpoints.html#Aurora.Endpoints.Cluster
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Modifying.html#Aurora.Modifying.Settings
 */
function clusterAddress(id: string, endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  if (!endpoint.toLowerCase().startsWith(`${id.toLowerCase()}.cluster-`)) {
    throw new Error(`cluster endpoint ${endpoint} is not yet ${id}'s: no session ended`);
  }
  return endpoint;
}
