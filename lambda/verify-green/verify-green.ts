// AWS API actions this file calls (for least-privilege IAM):
//   rds:DescribeBlueGreenDeployments
//   rds:DescribeDBInstances
//   cloudwatch:GetMetricData
import { type CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  type BlueGreenDeployment,
  type DBInstance,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { isClusterEngine } from '../shared/cluster';
import {
  type CheckResult,
  type Replication,
  replicationOf,
  STUCK_INSTANCE_STATUSES,
  type UpgradePlan,
} from '../shared/upgrade-plan';

import { verifyGreenCluster } from './green-cluster';

export { postgresMajor, replicationOf, type Replication } from '../shared/upgrade-plan';

export interface VerifyGreenEvent {
  plan: UpgradePlan;
  blueGreenDeploymentIdentifier: string;
}

/** The replication lag as read from CloudWatch. */
export interface LagReading {
  /**
   * ReplicaLag for physical (PostgreSQL) and binlog (MySQL) replication, where green is a
   * replica; OldestReplicationSlotLag for logical.
   */
  metric: 'ReplicaLag' | 'OldestReplicationSlotLag' | 'AuroraBinlogReplicaLag';
  /**
   * The instance the metric was read on: green (for Aurora, green's writer) for ReplicaLag and
   * AuroraBinlogReplicaLag, blue (its writer) for OldestReplicationSlotLag.
   */
  dbInstanceIdentifier: string;
  /** The unit of `max` and `limit`. */
  unit: 'Seconds' | 'MB';
  /** The most in the last LAG_WINDOW_MINUTES; null when CloudWatch had no datapoints. */
  max: number | null;
  /** Green passes only at or under this. */
  limit: number;
  /**
   * Binlog replication only: the minutes whose ReplicaLag was -1, which for MySQL means
   * "replication is currently not active" (the maximum alone would read -1 as no lag).
   */
  inactiveMinutes?: number;
}

export type VerifyGreenResult = CheckResult & {
  /**
   * True when green did not pass and every failure is one that clears by itself (green still
   * settling, lag still catching up): verify again rather than delete green. False when green
   * passed or when at least one failure is permanent.
   */
  transient: boolean;
  /** 'physical' or 'logical' for PostgreSQL, 'binlog' for MySQL (replicationOf). */
  replication: Replication;
  /** Null when the lag could not be read: green's own lag, and green was not found. */
  lag: LagReading | null;
  /** The green instance (for Aurora, cluster) as RDS describes it; null when not found. */
  green: { identifier: string; engineVersion: string } | null;
};

export interface VerifyGreenClients {
  rds: RDSClient;
  cloudwatch: CloudWatchClient;
}

/** How far back the replication lag is read. */
export const LAG_WINDOW_MINUTES = 5;
/**
 * Physical and binlog replication: green passes only if its ReplicaLag stays at or under this.
 * A constant rather than a plan field: the plan's maxReplicationLagMb measures logical slots
 * in MB.
 */
export const MAX_REPLICA_LAG_SECONDS = 30;
/** The RDS console shows OldestReplicationSlotLag in MB; CloudWatch stores bytes. */
const BYTES_PER_MB = 1024 * 1024;
/** Appended to every transient failure, so the operator knows nothing is deleted yet. */
const WAITS = 'The run waits and verifies again before the deadline.';

/** One failed check: its sentence, and whether it clears by itself. */
export interface Failure {
  message: string;
  transient: boolean;
}
export const transient = (message: string): Failure => ({
  message: `${message} ${WAITS}`,
  transient: true,
});
export const permanent = (message: string): Failure => ({ message, transient: false });

// DB instance statuses: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
/** Statuses RDS moves green out of by itself: wait for "available". */
export const TRANSIENT_INSTANCE_STATUSES: ReadonlySet<string> = new Set([
  'backing-up',
  'configuring-enhanced-monitoring',
  'configuring-iam-database-auth',
  'configuring-log-exports',
  'converting-to-vpc',
  'creating',
  'maintenance',
  'modifying',
  'moving-to-vpc',
  'rebooting',
  'renaming',
  'resetting-master-credentials',
  'starting',
  'storage-config-upgrade',
  'storage-initialization',
  'storage-optimization',
  'upgrading',
]);
/**
 * Statuses green does not leave without an operator (or leaves only by going away): the run
 * rolls back. A status in neither list is treated as transient, bounded by the deadline:
 * deleting a green that took hours to build is the costlier mistake.
 */
export const PERMANENT_INSTANCE_STATUSES: ReadonlySet<string> = new Set([
  'delete-precheck',
  'deleting',
  ...STUCK_INSTANCE_STATUSES,
]);

/**
 * Is green ready to take over? The deployment and each of its members are AVAILABLE, green
 * runs the target version, is available with its storage initialized, and replication to it
 * has caught up. Every check runs and every failure is reported, each marked transient or
 * permanent; it throws only for unexpected SDK errors.
 */
export async function verifyGreen(
  clients: VerifyGreenClients,
  event: VerifyGreenEvent,
  now: Date = new Date(),
): Promise<VerifyGreenResult> {
  // An Aurora plan's green is a DB cluster: ./green-cluster.
  // A plan without an engine is a PostgreSQL one (from before the runbook had engines).
  if (isClusterEngine(event.plan.engine ?? 'postgres')) {
    return verifyGreenCluster(clients, event, now);
  }
  const { plan, blueGreenDeploymentIdentifier: bgId } = event;
  const replication = replicationOf(plan);
  const failures: Failure[] = [];

  const deployment = await describeDeployment(clients.rds, bgId);
  let green: DBInstance | undefined;
  if (deployment === undefined) {
    failures.push(
      permanent(
        `Blue/green deployment ${bgId} was not found: it may have been deleted. ` +
          'Check Blue/Green deployments in the RDS console and start the upgrade again.',
      ),
    );
  } else {
    failures.push(...deploymentProblems(deployment));
    const greenArn = greenArnOf(deployment, plan.sourceArn);
    if (greenArn === undefined) {
      failures.push(
        permanent(
          `Blue/green deployment ${bgId} names no green instance for ${plan.sourceArn}. ` +
            'Read its status details in the RDS console; delete it and start the upgrade again.',
        ),
      );
    } else {
      green = await describeInstance(clients.rds, greenArn);
      failures.push(...greenProblems(green, greenArn, plan.targetEngineVersion));
    }
  }

  // Physical and binlog: green's own ReplicaLag, green being blue's replica ("For MySQL and
  // MariaDB blue/green deployments, check the ReplicaLag CloudWatch metric in the green
  // environment"). Logical: the slots on blue that green replicates from.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-monitor-replica-lag
  const lagOn = replication === 'logical' ? plan.sourceIdentifier : green?.DBInstanceIdentifier;
  let lag: LagReading | null = null;
  if (lagOn !== undefined) {
    lag = await readLag(clients.cloudwatch, replication, lagOn, plan, now);
    failures.push(...lagProblems(lag));
  }

  const passed = failures.length === 0;
  return {
    passed,
    failures: failures.map((f) => f.message),
    transient: !passed && failures.every((f) => f.transient),
    replication,
    lag,
    green:
      green === undefined
        ? null
        : {
            identifier: green.DBInstanceIdentifier ?? '',
            engineVersion: green.EngineVersion ?? '',
          },
  };
}

export function isError(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name);
}

export async function describeDeployment(
  rds: RDSClient,
  id: string,
): Promise<BlueGreenDeployment | undefined> {
  try {
    const out = await rds.send(
      new DescribeBlueGreenDeploymentsCommand({ BlueGreenDeploymentIdentifier: id }),
    );
    return out.BlueGreenDeployments?.[0];
  } catch (err) {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeBlueGreenDeployments.html#API_DescribeBlueGreenDeployments_Errors
    if (isError(err, 'BlueGreenDeploymentNotFoundFault', 'BlueGreenDeploymentNotFound')) {
      return undefined;
    }
    throw err;
  }
}

/** Deployment statuses that end in AVAILABLE by themselves; the rest never will. */
const TRANSIENT_DEPLOYMENT_STATUSES = new Set(['PROVISIONING']);
/** Member statuses that end in AVAILABLE by themselves. */
const TRANSIENT_MEMBER_STATUSES = new Set(['PROVISIONING']);

export function deploymentProblems(deployment: BlueGreenDeployment): Failure[] {
  const id = deployment.BlueGreenDeploymentIdentifier;
  const problems: Failure[] = [];
  // Deployment statuses: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_BlueGreenDeployment.html
  const status = deployment.Status ?? '';
  if (status !== 'AVAILABLE') {
    const details = deployment.StatusDetails ? ` (${deployment.StatusDetails})` : '';
    const said = `Blue/green deployment ${id} is "${status}"${details}, not "AVAILABLE".`;
    problems.push(
      TRANSIENT_DEPLOYMENT_STATUSES.has(status)
        ? transient(`${said} RDS is still building green.`)
        : permanent(
            `${said} It will not become AVAILABLE by itself: read its status details in the ` +
              'RDS console, delete it and start the upgrade again.',
          ),
    );
  }
  // Member statuses: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverDetail.html
  const members = deployment.SwitchoverDetails ?? [];
  if (members.length === 0) {
    problems.push(
      permanent(
        `Blue/green deployment ${id} lists no members to switch over. ` +
          'Read its status details in the RDS console; delete it and start the upgrade again.',
      ),
    );
  }
  const notReady = members.filter((m) => m.Status !== 'AVAILABLE');
  const describe = (ms: typeof members) =>
    ms.map((m) => `${m.TargetMember ?? m.SourceMember} is "${m.Status}"`).join(', ');
  const settling = notReady.filter((m) => TRANSIENT_MEMBER_STATUSES.has(m.Status ?? ''));
  const broken = notReady.filter((m) => !TRANSIENT_MEMBER_STATUSES.has(m.Status ?? ''));
  if (settling.length > 0) {
    problems.push(
      transient(
        `Not every member of blue/green deployment ${id} is ready to switch over yet: ` +
          `${describe(settling)}.`,
      ),
    );
  }
  if (broken.length > 0) {
    problems.push(
      permanent(
        `Members of blue/green deployment ${id} cannot switch over: ${describe(broken)}. ` +
          'Delete the deployment and start the upgrade again.',
      ),
    );
  }
  return problems;
}

/** Green's primary: the member that replicates blue (its replicas are members too). */
function greenArnOf(deployment: BlueGreenDeployment, sourceArn: string): string | undefined {
  const member = deployment.SwitchoverDetails?.find((m) => m.SourceMember === sourceArn);
  return member?.TargetMember ?? deployment.Target;
}

async function describeInstance(rds: RDSClient, arn: string): Promise<DBInstance | undefined> {
  try {
    // DBInstanceIdentifier takes an identifier or an ARN.
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html
    const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: arn }));
    return out.DBInstances?.[0];
  } catch (err) {
    if (isError(err, 'DBInstanceNotFoundFault', 'DBInstanceNotFound')) return undefined;
    throw err;
  }
}

function greenProblems(green: DBInstance | undefined, arn: string, target: string): Failure[] {
  if (green === undefined) {
    return [
      permanent(
        `Green instance ${arn} was not found, though the blue/green deployment names it. ` +
          'Delete the blue/green deployment and start the upgrade again.',
      ),
    ];
  }
  const id = green.DBInstanceIdentifier;
  const status = green.DBInstanceStatus ?? '';
  const problems: Failure[] = [];
  if (green.EngineVersion !== target) {
    const said = `Green instance "${id}" runs ${green.EngineVersion}, not the target ${target}.`;
    // While green is upgrading, EngineVersion still names the version it is leaving.
    problems.push(
      status === 'upgrading'
        ? transient(`${said} It is still upgrading.`)
        : permanent(
            `${said} Delete the blue/green deployment and start the upgrade again with the ` +
              'intended targetEngineVersion.',
          ),
    );
  }
  // Statuses: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
  if (status !== 'available') {
    const said = `Green instance "${id}" is "${status}", not "available".`;
    if (PERMANENT_INSTANCE_STATUSES.has(status)) {
      problems.push(
        permanent(
          `${said} RDS does not bring it back by itself: read its Recent events in the RDS ` +
            'console, delete the blue/green deployment and start the upgrade again.',
        ),
      );
    } else if (TRANSIENT_INSTANCE_STATUSES.has(status)) {
      problems.push(transient(`${said} RDS brings it back to "available" by itself.`));
    } else {
      problems.push(transient(`${said} This runbook does not know that status.`));
    }
  }
  // A green volume created from blue's snapshot loads its blocks lazily; until storage
  // initialization completes, reads of blocks not yet loaded are slow, and green would take
  // production traffic at that speed. RDS reports it as StorageOperationStatus "Initializing".
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-lazy-loading
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBInstance.html (StorageOperationStatus)
  if (green.StorageOperationStatus === 'Initializing') {
    const progress =
      green.StorageOperationPercentProgress === undefined
        ? ''
        : ` (${green.StorageOperationPercentProgress}% done)`;
    problems.push(
      transient(`Green instance "${id}" is still initializing its storage${progress}.`),
    );
  }
  return problems;
}

async function readLag(
  cloudwatch: CloudWatchClient,
  replication: Replication,
  id: string,
  plan: UpgradePlan,
  now: Date,
): Promise<LagReading> {
  // Both AWS/RDS, per DBInstanceIdentifier:
  // - ReplicaLag (Seconds): "For read replica configurations, the amount of time a read
  //   replica DB instance lags behind the source DB instance. Applies to MariaDB, Microsoft
  //   SQL Server, MySQL, Oracle, and PostgreSQL read replicas"; under physical and binlog
  //   replication green is that replica.
  // - OldestReplicationSlotLag (Bytes): how far the replica lagging most is behind in WAL
  //   received; under logical replication blue holds the slots green replicates from.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html#rds-cw-metrics-instance
  // RDS publishes instance metrics every minute, so a 60 s period.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/monitoring-cloudwatch.html
  const metric = replication === 'logical' ? 'OldestReplicationSlotLag' : 'ReplicaLag';
  const values = await metricValues(cloudwatch, metric, id, now);

  const max = values.length === 0 ? null : Math.max(...values);
  if (replication === 'binlog') {
    // "If the ReplicaLag metric returns -1, then replication is currently not active.
    // ReplicaLag = -1 is equivalent to Seconds_Behind_Master = NULL." Counted apart: the
    // maximum of minutes all at -1 would pass as no lag. AWS documents -1 for MySQL and
    // MariaDB only, so PostgreSQL's reading is left as it was.
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_MySQL.Replication.ReadReplicas.Monitor.html
    const inactiveMinutes = values.filter((value) => value < 0).length;
    return {
      metric,
      dbInstanceIdentifier: id,
      unit: 'Seconds',
      max,
      limit: MAX_REPLICA_LAG_SECONDS,
      inactiveMinutes,
    };
  }
  return metric === 'ReplicaLag'
    ? { metric, dbInstanceIdentifier: id, unit: 'Seconds', max, limit: MAX_REPLICA_LAG_SECONDS }
    : {
        metric,
        dbInstanceIdentifier: id,
        unit: 'MB',
        max: max === null ? null : max / BYTES_PER_MB,
        limit: plan.maxReplicationLagMb,
      };
}

/**
 * A metric's per-minute Maximum values on one DB instance (AWS/RDS, DBInstanceIdentifier) in
 * the last LAG_WINDOW_MINUTES.
 */
export async function metricValues(
  cloudwatch: CloudWatchClient,
  metric: LagReading['metric'],
  id: string,
  now: Date,
): Promise<number[]> {
  const values: number[] = [];
  let nextToken: string | undefined;
  do {
    // GetMetricData pages its results with NextToken.
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
    const out = await cloudwatch.send(
      new GetMetricDataCommand({
        StartTime: new Date(now.getTime() - LAG_WINDOW_MINUTES * 60_000),
        EndTime: now,
        MetricDataQueries: [
          {
            Id: 'lag',
            MetricStat: {
              Metric: {
                Namespace: 'AWS/RDS',
                MetricName: metric,
                Dimensions: [{ Name: 'DBInstanceIdentifier', Value: id }],
              },
              Period: 60,
              Stat: 'Maximum',
            },
            ReturnData: true,
          },
        ],
        NextToken: nextToken,
      }),
    );
    for (const result of out.MetricDataResults ?? []) values.push(...(result.Values ?? []));
    nextToken = out.NextToken;
  } while (nextToken !== undefined);

  return values;
}

export function lagProblems(lag: LagReading): Failure[] {
  const { metric, dbInstanceIdentifier: id, unit, max, limit } = lag;
  const whose = metric === 'OldestReplicationSlotLag' ? 'blue' : 'green';
  if (max === null) {
    return [
      transient(
        `No replication lag data: CloudWatch has no ${metric} for "${id}" in the last ` +
          `${LAG_WINDOW_MINUTES} minutes, so the lag cannot be judged yet. If this persists, ` +
          `check the metric in the RDS console's Monitoring tab for the ${whose} instance.`,
      ),
    ];
  }
  if ((lag.inactiveMinutes ?? 0) > 0) {
    // Transient: replication stops while green restarts, say; one that never resumes keeps
    // failing until the deadline rolls the run back.
    return [
      transient(
        `Replication to green was not active: ${metric} on "${id}" was -1 in ` +
          `${lag.inactiveMinutes} of the last ${LAG_WINDOW_MINUTES} minutes, which RDS reports ` +
          'when the replica is not replicating. Check the replication state of the green ' +
          'instance in the RDS console.',
      ),
    ];
  }
  if (max > limit) {
    const amount = unit === 'MB' ? `${max.toFixed(1)} MB` : `${max.toFixed(0)} s`;
    return [
      transient(
        `Replication to green lags ${amount} (the most in the last ${LAG_WINDOW_MINUTES} ` +
          `minutes, ${metric} on "${id}"), over the limit of ${limit} ${unit === 'MB' ? 'MB' : 's'}. ` +
          'Heavy writes or long transactions on blue slow it down.',
      ),
    ];
  }
  return [];
}
