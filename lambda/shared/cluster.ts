// AWS API actions this file calls (for least-privilege IAM): rds:DescribeDBClusters.
import { type DBCluster, DescribeDBClustersCommand, type RDSClient } from '@aws-sdk/client-rds';
import { type DatabaseEngine, ENGINE_SPECS } from './engines';

/**
 * Aurora runs a DB cluster: blue/green deployments, renames, deletion protection and the
 * parameter group the engine's settings live in are the cluster's, and its writer is one of
 * its DB instances.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-overview.html
 */
export function isClusterEngine(engine: DatabaseEngine): boolean {
  return ENGINE_SPECS[engine].level === 'cluster';
}

/** The cluster, or undefined when RDS does not know it (DBClusterNotFoundFault). */
export async function describeCluster(
  rds: RDSClient,
  identifier: string,
): Promise<DBCluster | undefined> {
  try {
    const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: identifier }));
    return out.DBClusters?.[0];
  } catch (err) {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusters.html#API_DescribeDBClusters_Errors
    if ((err as { name?: string }).name === 'DBClusterNotFoundFault') return undefined;
    throw err;
  }
}

/**
 * The cluster's writer instance: the member with IsClusterWriter.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterMember.html
 */
export function writerOf(cluster: DBCluster): string | undefined {
  return cluster.DBClusterMembers?.find((m) => m.IsClusterWriter === true)?.DBInstanceIdentifier;
}
