// AWS API actions this file calls (for least-privilege IAM):
//   rds:DescribeBlueGreenDeployments
//   rds:DescribeDBInstances, rds:ModifyDBInstance (instance engines)
//   rds:DescribeDBClusters, rds:ModifyDBCluster (Aurora)
import {
  type DBInstance,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  ModifyDBClusterCommand,
  ModifyDBInstanceCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { describeCluster, isClusterEngine } from '../shared/cluster';
import { EXECUTION_TAG, OLD_BLUE_SUFFIX, type UpgradePlan } from '../shared/upgrade-plan';

/** Without `engine`, a plan for a DB instance (plans from before the runbook had engines). */
export type ProtectionPlan = Pick<UpgradePlan, 'sourceIdentifier' | 'sourceArn'> &
  Partial<Pick<UpgradePlan, 'engine'>>;

/**
 * For Aurora, deletion protection is the DB cluster's: ModifyDBInstance's DeletionProtection
 * "doesn't apply to Amazon Aurora DB instances. You can enable or disable deletion protection
 * for the DB cluster. For more information, see ModifyDBCluster. DB instances in a DB cluster
 * can be deleted even when deletion protection is enabled for the DB cluster."
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
 */
const isCluster = (plan: ProtectionPlan) => isClusterEngine(plan.engine ?? 'postgres');

/** The resource type of an RDS ARN: "db", "cluster", "cluster-endpoint", ... */
const arnType = (arn: string) => arn.split(':')[5];

export interface UnprotectGreenResult {
  /** Every green instance (Aurora: cluster) can be deleted with the deployment now. */
  done: boolean;
  /** Green instances (Aurora: clusters) whose deletion protection this call turned off. */
  unprotected: string[];
  /** Green instances (clusters) that are protected but not available, so cannot be changed yet. */
  waiting: string[];
}

/**
 * Before a deployment is deleted with its target: deletion protection off on the green
 * instances, and only on them. "If you choose to delete the DB instances in the green
 * environment (--delete-target), they must have deletion protection turned off." Whether
 * green inherits blue's protection AWS does not say, so each green instance is read. One that
 * is protected but not available cannot be modified yet: it is reported as waiting, and the
 * caller asks again later. Blue is never changed: a member that is blue is refused.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html
 */
export async function unprotectGreen(
  rds: RDSClient,
  plan: ProtectionPlan,
  deploymentId: string,
  /** The upgrade run that must have created the deployment (its EXECUTION_TAG value). */
  owner: string,
): Promise<UnprotectGreenResult> {
  const result: UnprotectGreenResult = { done: true, unprotected: [], waiting: [] };
  let targets: string[];
  try {
    const out = await rds.send(
      new DescribeBlueGreenDeploymentsCommand({ BlueGreenDeploymentIdentifier: deploymentId }),
    );
    // Only a deployment of the deployed database: the identifier comes from the event, so
    // without this check anyone allowed to invoke the function could unprotect another
    // database's green. `Source` is blue "before switchover"; whether it follows blue's
    // rename to -old1 afterwards AWS does not say, so either is taken as ours.
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_BlueGreenDeployment.html
    const source = out.BlueGreenDeployments?.[0]?.Source;
    if (source !== plan.sourceArn && source !== `${plan.sourceArn}${OLD_BLUE_SUFFIX}`) {
      throw new Error(
        `refusing to turn deletion protection off in blue/green deployment ${deploymentId}: ` +
          `its source is ${JSON.stringify(source)}, not the deployed database ${plan.sourceArn}.`,
      );
    }
    const tag = out.BlueGreenDeployments?.[0]?.TagList?.find((t) => t.Key === EXECUTION_TAG);
    if (tag?.Value !== owner) {
      throw new Error(
        `refusing to turn deletion protection off in blue/green deployment ${deploymentId}: ` +
          `it was created by run ${JSON.stringify(tag?.Value ?? null)} (tag ${EXECUTION_TAG}), not by ${JSON.stringify(owner)}.`,
      );
    }
    // Green's members: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverDetail.html
    targets = (out.BlueGreenDeployments?.[0]?.SwitchoverDetails ?? [])
      .map((m) => m.TargetMember)
      .filter((arn): arn is string => arn !== undefined);
  } catch (err) {
    // Gone already: nothing of it to delete.
    if (isNotFound(err, 'BlueGreenDeploymentNotFoundFault')) return result;
    throw err;
  }
  if (isCluster(plan)) return unprotectGreenClusters(rds, plan, deploymentId, targets, result);
  for (const arn of targets) {
    const green = await describe(rds, arn);
    if (green === undefined || green.DeletionProtection !== true) continue;
    const id = green.DBInstanceIdentifier ?? arn;
    if (arn === plan.sourceArn || id === plan.sourceIdentifier) {
      throw new Error(
        `refusing to turn deletion protection off on ${id}: it is the source (blue), not green. ` +
          `Check blue/green deployment ${deploymentId} in the RDS console.`,
      );
    }
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
    if (green.DBInstanceStatus !== 'available') {
      result.waiting.push(`${id} (${green.DBInstanceStatus ?? 'unknown'})`);
      result.done = false;
      continue;
    }
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
    await rds.send(
      new ModifyDBInstanceCommand({
        DBInstanceIdentifier: id,
        DeletionProtection: false,
        ApplyImmediately: true,
      }),
    );
    result.unprotected.push(id);
  }
  return result;
}

/**
 * Aurora: green's members are its cluster (a `cluster:` ARN), its instances (`db:`) and its
 * custom endpoints (`cluster-endpoint:`); deletion protection is the cluster's, so only the
 * cluster ARNs are acted on. "The database can't be deleted when deletion protection is
 * enabled" (DeletionProtection, "Valid for Cluster Type: Aurora DB clusters").
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverDetail.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
 */
async function unprotectGreenClusters(
  rds: RDSClient,
  plan: ProtectionPlan,
  deploymentId: string,
  targets: string[],
  result: UnprotectGreenResult,
): Promise<UnprotectGreenResult> {
  for (const arn of targets.filter((t) => arnType(t) === 'cluster')) {
    // DBClusterIdentifier takes an identifier or an ARN.
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusters.html
    const green = await describeCluster(rds, arn);
    if (green === undefined || green.DeletionProtection !== true) continue;
    const id = green.DBClusterIdentifier ?? arn;
    if (arn === plan.sourceArn || id === plan.sourceIdentifier) {
      throw new Error(
        `refusing to turn deletion protection off on DB cluster ${id}: it is the source ` +
          `(blue), not green. Check blue/green deployment ${deploymentId} in the RDS console.`,
      );
    }
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Aurora.Status
    if (green.Status !== 'available') {
      result.waiting.push(`${id} (${green.Status ?? 'unknown'})`);
      result.done = false;
      continue;
    }
    await rds.send(
      new ModifyDBClusterCommand({
        DBClusterIdentifier: id,
        DeletionProtection: false,
        ApplyImmediately: true,
      }),
    );
    result.unprotected.push(id);
  }
  return result;
}

/**
 * Deletion protection on for the writer under the original name, after a switchover made
 * green that writer (green may not have inherited blue's). Changes nothing when it is on.
 * Returns whether this call turned it on. For Aurora, the DB cluster's ("Some modifications,
 * such as turning on deletion protection ..., are applied immediately").
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
 */
export async function protectWriter(rds: RDSClient, plan: ProtectionPlan): Promise<boolean> {
  if (isCluster(plan)) {
    const cluster = await describeCluster(rds, plan.sourceIdentifier);
    if (cluster === undefined) {
      throw new Error(
        `cannot protect DB cluster ${plan.sourceIdentifier} from deletion: it was not found. ` +
          'Check which cluster serves production in the RDS console.',
      );
    }
    if (cluster.DeletionProtection === true) return false;
    await rds.send(
      new ModifyDBClusterCommand({
        DBClusterIdentifier: plan.sourceIdentifier,
        DeletionProtection: true,
        ApplyImmediately: true,
      }),
    );
    return true;
  }
  const writer = await describe(rds, plan.sourceIdentifier);
  if (writer === undefined) {
    throw new Error(
      `cannot protect ${plan.sourceIdentifier} from deletion: it was not found. Check which ` +
        'instance serves production in the RDS console.',
    );
  }
  if (writer.DeletionProtection === true) return false;
  await rds.send(
    new ModifyDBInstanceCommand({
      DBInstanceIdentifier: plan.sourceIdentifier,
      DeletionProtection: true,
      ApplyImmediately: true,
    }),
  );
  return true;
}

async function describe(rds: RDSClient, idOrArn: string): Promise<DBInstance | undefined> {
  try {
    // DBInstanceIdentifier takes an identifier or an ARN.
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html
    const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: idOrArn }));
    return out.DBInstances?.[0];
  } catch (err) {
    if (isNotFound(err, 'DBInstanceNotFoundFault')) return undefined;
    throw err;
  }
}

function isNotFound(err: unknown, fault: string): boolean {
  const name = (err as { name?: string }).name ?? '';
  return name === fault || name === fault.replace(/Fault$/, '');
}
