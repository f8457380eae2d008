// AWS API actions this file calls (for least-privilege IAM):
//   rds:DescribeBlueGreenDeployments
//   rds:DescribeDBClusters (green's cluster, and blue's for its writer)
//   rds:DescribeDBInstances (green's instances, by the db-cluster-id filter)
//   cloudwatch:GetMetricData
import {
  type DBCluster,
  type DBInstance,
  paginateDescribeDBInstances,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { describeCluster, writerOf } from '../shared/cluster';
import { type Replication, replicationOf } from '../shared/upgrade-plan';
import {
  deploymentProblems,
  describeDeployment,
  type Failure,
  LAG_WINDOW_MINUTES,
  type LagReading,
  lagProblems,
  MAX_REPLICA_LAG_SECONDS,
  metricValues,
  PERMANENT_INSTANCE_STATUSES,
  permanent,
  TRANSIENT_INSTANCE_STATUSES,
  transient,
  type VerifyGreenClients,
  type VerifyGreenEvent,
  type VerifyGreenResult,
} from './verify-green';

/**
 * DB cluster statuses RDS moves green out of by itself; the ones that need a person are
 * PERMANENT_CLUSTER_STATUSES, and one in neither list is waited on until the deadline.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Aurora.Status
 */
export const TRANSIENT_CLUSTER_STATUSES: ReadonlySet<string> = new Set([
  'backing-up',
  'backtracking',
  'creating',
  'failing-over',
  'maintenance',
  'modifying',
  'promoting',
  'renaming',
  'resetting-master-credentials',
  'starting',
  'update-iam-db-auth',
  'upgrading',
]);
export const PERMANENT_CLUSTER_STATUSES: ReadonlySet<string> = new Set([
  'cloning-failed',
  'deleting',
  'inaccessible-encryption-credentials',
  'migration-failed',
  'stopped',
  'stopping',
]);

/**
 * Is an Aurora green ready to take over? As for an instance, the deployment and its members
 * are AVAILABLE; then green's cluster and every one of its instances are available, on the
 * target version, with nothing pending, and replication has caught up.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-best-practices
 * ("Make sure the DB cluster and DB instances in both environments are in `Available` state.")
 */
export async function verifyGreenCluster(
  clients: VerifyGreenClients,
  event: VerifyGreenEvent,
  now: Date,
): Promise<VerifyGreenResult> {
  const { plan, blueGreenDeploymentIdentifier: bgId } = event;
  // Logical for Aurora PostgreSQL, binary log for Aurora MySQL (replicationOf, cited there).
  const replication = replicationOf(plan);
  const failures: Failure[] = [];

  const deployment = await describeDeployment(clients.rds, bgId);
  let green: DBCluster | undefined;
  if (deployment === undefined) {
    failures.push(
      permanent(
        `Blue/green deployment ${bgId} was not found: it may have been deleted. ` +
          'Check Blue/Green deployments in the RDS console and start the upgrade again.',
      ),
    );
  } else {
    failures.push(...deploymentProblems(deployment));
    // Before the switchover an Aurora deployment's Target is green's cluster ARN, and its
    // SwitchoverDetails pair blue's cluster ARN with green's (then each instance, and each
    // custom endpoint).
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_BlueGreenDeployment.html
    const member = deployment.SwitchoverDetails?.find((m) => m.SourceMember === plan.sourceArn);
    const greenArn = member?.TargetMember ?? deployment.Target;
    if (greenArn === undefined || !/^arn:[^:]+:rds:[^:]*:[^:]*:cluster:/.test(greenArn)) {
      failures.push(
        permanent(
          `Blue/green deployment ${bgId} names no green DB cluster for ${plan.sourceArn} ` +
            `(got: ${greenArn ?? 'none'}). Read its status details in the RDS console; delete ` +
            'it and start the upgrade again.',
        ),
      );
    } else {
      // DBClusterIdentifier takes an identifier or an ARN.
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusters.html
      green = await describeCluster(clients.rds, greenArn);
      failures.push(...clusterProblems(green, greenArn, plan.targetEngineVersion));
      if (green !== undefined) {
        const instances = await clusterInstances(clients.rds, green);
        failures.push(...instanceProblems(green, instances, plan.targetEngineVersion));
      }
    }
  }

  const lag = await clusterLag(clients, replication, green, plan, now);
  if (lag.reading !== null) failures.push(...lagProblems(lag.reading));
  failures.push(...lag.problems);

  const passed = failures.length === 0;
  return {
    passed,
    failures: failures.map((f) => f.message),
    transient: !passed && failures.every((f) => f.transient),
    replication,
    lag: lag.reading,
    green:
      green === undefined
        ? null
        : { identifier: green.DBClusterIdentifier ?? '', engineVersion: green.EngineVersion ?? '' },
  };
}

/** Anything pending on a cluster or instance (PendingModifiedValues with a value set). */
function pending(values: object | undefined): string[] {
  return Object.entries(values ?? {}).flatMap(([key, value]) =>
    value === undefined || value === null ? [] : [key],
  );
}

function clusterProblems(green: DBCluster | undefined, arn: string, target: string): Failure[] {
  if (green === undefined) {
    return [
      permanent(
        `Green DB cluster ${arn} was not found, though the blue/green deployment names it. ` +
          'Delete the blue/green deployment and start the upgrade again.',
      ),
    ];
  }
  const id = green.DBClusterIdentifier;
  const status = green.Status ?? '';
  const problems: Failure[] = [];
  if (green.EngineVersion !== target) {
    const said = `Green DB cluster "${id}" runs ${green.EngineVersion}, not the target ${target}.`;
    problems.push(
      status === 'upgrading'
        ? transient(`${said} It is still upgrading.`)
        : permanent(
            `${said} Delete the blue/green deployment and start the upgrade again with the ` +
              'intended targetEngineVersion.',
          ),
    );
  }
  if (status !== 'available') {
    const said = `Green DB cluster "${id}" is "${status}", not "available".`;
    if (PERMANENT_CLUSTER_STATUSES.has(status)) {
      problems.push(
        permanent(
          `${said} RDS does not bring it back by itself: read its Recent events in the RDS ` +
            'console, delete the blue/green deployment and start the upgrade again.',
        ),
      );
    } else if (TRANSIENT_CLUSTER_STATUSES.has(status)) {
      problems.push(transient(`${said} RDS brings it back to "available" by itself.`));
    } else {
      problems.push(transient(`${said} This runbook does not know that status.`));
    }
  }
  // A pending change (one made without ApplyImmediately) lands in a maintenance window, after
  // the switchover: green would not be the cluster that was verified.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ClusterPendingModifiedValues.html
  const waiting = pending(green.PendingModifiedValues);
  if (waiting.length > 0) {
    problems.push(
      transient(
        `Green DB cluster "${id}" has pending modifications (${waiting.join(', ')}). Apply ` +
          'them now (ApplyImmediately) or undo them.',
      ),
    );
  }
  return problems;
}

/** Green's instances: every instance RDS lists for the cluster (db-cluster-id filter). */
async function clusterInstances(rds: RDSClient, green: DBCluster): Promise<DBInstance[]> {
  // "db-cluster-id - Accepts DB cluster identifiers and DB cluster Amazon Resource Names
  // (ARNs)"; green's instance names carry their own random suffixes, so they are listed
  // rather than guessed.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html
  const instances: DBInstance[] = [];
  for await (const page of paginateDescribeDBInstances(
    { client: rds },
    { Filters: [{ Name: 'db-cluster-id', Values: [green.DBClusterIdentifier ?? ''] }] },
  )) {
    instances.push(...(page.DBInstances ?? []));
  }
  return instances;
}

function instanceProblems(green: DBCluster, instances: DBInstance[], target: string): Failure[] {
  const problems: Failure[] = [];
  const listed = new Set(instances.map((db) => db.DBInstanceIdentifier));
  const members = (green.DBClusterMembers ?? []).flatMap((m) =>
    m.DBInstanceIdentifier ? [m.DBInstanceIdentifier] : [],
  );
  if (members.length === 0) {
    problems.push(
      transient(`Green DB cluster "${green.DBClusterIdentifier}" has no DB instances yet.`),
    );
  }
  const absent = members.filter((m) => !listed.has(m));
  if (absent.length > 0) {
    problems.push(
      permanent(
        `Green DB cluster "${green.DBClusterIdentifier}" lists instance(s) ${absent.join(', ')} ` +
          'that RDS cannot describe. Delete the blue/green deployment and start the upgrade again.',
      ),
    );
  }
  for (const db of instances) {
    const id = db.DBInstanceIdentifier;
    const status = db.DBInstanceStatus ?? '';
    if (db.EngineVersion !== target) {
      const said = `Green instance "${id}" runs ${db.EngineVersion}, not the target ${target}.`;
      problems.push(
        status === 'upgrading'
          ? transient(`${said} It is still upgrading.`)
          : permanent(`${said} Delete the blue/green deployment and start the upgrade again.`),
      );
    }
    // Statuses: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
    if (status !== 'available') {
      const said = `Green instance "${id}" is "${status}", not "available".`;
      problems.push(
        PERMANENT_INSTANCE_STATUSES.has(status)
          ? permanent(
              `${said} RDS does not bring it back by itself: delete the blue/green deployment ` +
                'and start the upgrade again.',
            )
          : transient(
              `${said} ${TRANSIENT_INSTANCE_STATUSES.has(status) ? 'RDS brings it back to "available" by itself.' : 'This runbook does not know that status.'}`,
            ),
      );
    }
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_PendingModifiedValues.html
    const waiting = pending(db.PendingModifiedValues);
    if (waiting.length > 0) {
      problems.push(
        transient(
          `Green instance "${id}" has pending modifications (${waiting.join(', ')}). Apply ` +
            'them now (ApplyImmediately) or undo them.',
        ),
      );
    }
  }
  return problems;
}

/**
 * The replication lag, on the writer AWS names for each engine:
 * - Aurora MySQL: AuroraBinlogReplicaLag on green's writer. The Aurora switching page said
 *   "`AuroraBinlogReplicaLag` – Use this metric to identify the current replication lag on
 *   the green environment. To reduce downtime, make sure that this value is close to zero
 *   before you switch over"; the metric page: "Because binary log replication only occurs on
 *   the writer instance of the cluster, we recommend using the version of this metric
 *   associated with the WRITER role", and "-1 – Aurora can't determine the lag, which can
 *   happen during replica setup or when the replica is in an error state". Seconds.
 * - Aurora PostgreSQL: OldestReplicationSlotLag on blue's writer, where the logical slots are
 *   ("The lagging size of the replica lagging the most in terms of write-ahead log (WAL) data
 *   received", Bytes). The current Aurora section "Monitoring replica lag prior to switchover"
 *   could not be read for this; this follows the RDS guide's words for logical replication,
 *   "check the `OldestReplicationSlotLag` CloudWatch metric in the blue environment".
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-monitor-replica-lag
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.AuroraMonitoring.Metrics.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-monitor-replica-lag
 */
async function clusterLag(
  clients: VerifyGreenClients,
  replication: Replication,
  green: DBCluster | undefined,
  plan: VerifyGreenEvent['plan'],
  now: Date,
): Promise<{ reading: LagReading | null; problems: Failure[] }> {
  if (replication === 'binlog') {
    // Green's own lag: nothing to read when green was not found (already a failure).
    if (green === undefined) return { reading: null, problems: [] };
    const writer = writerOf(green);
    if (writer === undefined) {
      return {
        reading: null,
        problems: [
          transient(
            `Green DB cluster "${green.DBClusterIdentifier}" has no writer instance yet, so its ` +
              'AuroraBinlogReplicaLag cannot be read.',
          ),
        ],
      };
    }
    const values = await metricValues(clients.cloudwatch, 'AuroraBinlogReplicaLag', writer, now);
    return {
      reading: {
        metric: 'AuroraBinlogReplicaLag',
        dbInstanceIdentifier: writer,
        unit: 'Seconds',
        max: values.length === 0 ? null : Math.max(...values),
        limit: MAX_REPLICA_LAG_SECONDS,
        inactiveMinutes: values.filter((v) => v < 0).length,
      },
      problems: [],
    };
  }
  const blue = await describeCluster(clients.rds, plan.sourceIdentifier);
  const writer = blue === undefined ? undefined : writerOf(blue);
  if (writer === undefined) {
    return {
      reading: null,
      problems: [
        transient(
          `Blue DB cluster "${plan.sourceIdentifier}" ${blue === undefined ? 'was not found' : 'has no writer instance'}, ` +
            `so OldestReplicationSlotLag on its writer cannot be read for the last ${LAG_WINDOW_MINUTES} minutes.`,
        ),
      ],
    };
  }
  const values = await metricValues(clients.cloudwatch, 'OldestReplicationSlotLag', writer, now);
  const max = values.length === 0 ? null : Math.max(...values);
  return {
    reading: {
      metric: 'OldestReplicationSlotLag',
      dbInstanceIdentifier: writer,
      unit: 'MB',
      // CloudWatch stores Bytes; the plan's limit is in MB.
      max: max === null ? null : max / (1024 * 1024),
      limit: plan.maxReplicationLagMb,
    },
    problems: [],
  };
}
