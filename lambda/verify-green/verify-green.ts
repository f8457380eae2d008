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
import type { CheckResult, UpgradePlan } from '../shared/upgrade-plan';

export interface VerifyGreenEvent {
  plan: UpgradePlan;
  blueGreenDeploymentIdentifier: string;
}

export type VerifyGreenResult = CheckResult & {
  /** The green instance as RDS describes it; null when it could not be found. */
  green: { identifier: string; engineVersion: string } | null;
};

export interface VerifyGreenClients {
  rds: RDSClient;
  cloudwatch: CloudWatchClient;
}

/** How far back the replication lag is read. */
export const LAG_WINDOW_MINUTES = 5;
/** The RDS console shows OldestReplicationSlotLag in MB; CloudWatch stores bytes. */
const BYTES_PER_MB = 1024 * 1024;

/**
 * Is green ready to take over? The deployment and each of its members are AVAILABLE, green
 * runs the target version and is available, and blue's replication to it has caught up.
 * Every check runs and every failure is reported; it throws only for unexpected SDK errors.
 */
export async function verifyGreen(
  clients: VerifyGreenClients,
  event: VerifyGreenEvent,
  now: Date = new Date(),
): Promise<VerifyGreenResult> {
  const { plan, blueGreenDeploymentIdentifier: bgId } = event;
  const failures: string[] = [];

  const deployment = await describeDeployment(clients.rds, bgId);
  let green: DBInstance | undefined;
  if (deployment === undefined) {
    failures.push(
      `Blue/green deployment ${bgId} was not found: it may have been deleted. ` +
        'Check Blue/Green deployments in the RDS console and start the upgrade again.',
    );
  } else {
    failures.push(...deploymentProblems(deployment));
    const greenArn = greenArnOf(deployment, plan.sourceArn);
    if (greenArn === undefined) {
      failures.push(
        `Blue/green deployment ${bgId} names no green instance for ${plan.sourceArn}. ` +
          'Read its status details in the RDS console; delete it and start the upgrade again.',
      );
    } else {
      green = await describeInstance(clients.rds, greenArn);
      failures.push(...greenProblems(green, greenArn, plan.targetEngineVersion));
    }
  }
  failures.push(...(await lagProblems(clients.cloudwatch, plan, now)));

  return {
    passed: failures.length === 0,
    failures,
    green:
      green === undefined
        ? null
        : {
            identifier: green.DBInstanceIdentifier ?? '',
            engineVersion: green.EngineVersion ?? '',
          },
  };
}

function isError(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name);
}

async function describeDeployment(
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

function deploymentProblems(deployment: BlueGreenDeployment): string[] {
  const id = deployment.BlueGreenDeploymentIdentifier;
  const problems: string[] = [];
  // Deployment statuses: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_BlueGreenDeployment.html
  if (deployment.Status !== 'AVAILABLE') {
    const details = deployment.StatusDetails ? ` (${deployment.StatusDetails})` : '';
    problems.push(
      `Blue/green deployment ${id} is "${deployment.Status}"${details}, not "AVAILABLE". ` +
        'If it is PROVISIONING, wait and verify again; otherwise read its status details in the ' +
        'RDS console, delete it and start the upgrade again.',
    );
  }
  // Member statuses: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverDetail.html
  const members = deployment.SwitchoverDetails ?? [];
  const notReady = members.filter((m) => m.Status !== 'AVAILABLE');
  if (members.length === 0) {
    problems.push(
      `Blue/green deployment ${id} lists no members to switch over. ` +
        'Read its status details in the RDS console; delete it and start the upgrade again.',
    );
  } else if (notReady.length > 0) {
    problems.push(
      `Not every member of blue/green deployment ${id} is ready to switch over: ` +
        `${notReady.map((m) => `${m.TargetMember ?? m.SourceMember} is "${m.Status}"`).join(', ')}. ` +
        'Wait if they are PROVISIONING; otherwise delete the deployment and start the upgrade again.',
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

function greenProblems(green: DBInstance | undefined, arn: string, target: string): string[] {
  if (green === undefined) {
    return [
      `Green instance ${arn} was not found, though the blue/green deployment names it. ` +
        'Delete the blue/green deployment and start the upgrade again.',
    ];
  }
  const id = green.DBInstanceIdentifier;
  const problems: string[] = [];
  if (green.EngineVersion !== target) {
    problems.push(
      `Green instance "${id}" runs ${green.EngineVersion}, not the target ${target}. ` +
        'Delete the blue/green deployment and start the upgrade again with the intended targetEngineVersion.',
    );
  }
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
  if (green.DBInstanceStatus !== 'available') {
    problems.push(
      `Green instance "${id}" is "${green.DBInstanceStatus}", not "available". ` +
        'Wait for it to become available and verify again.',
    );
  }
  return problems;
}

async function lagProblems(
  cloudwatch: CloudWatchClient,
  plan: UpgradePlan,
  now: Date,
): Promise<string[]> {
  const id = plan.sourceIdentifier;
  // OldestReplicationSlotLag (AWS/RDS, per DBInstanceIdentifier, unit Bytes): how far the
  // replica lagging most is behind in WAL received. Blue holds the slots green replicates from.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html#rds-cw-metrics-instance
  // RDS publishes instance metrics every minute, so a 60 s period.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/monitoring-cloudwatch.html
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
                MetricName: 'OldestReplicationSlotLag',
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

  if (values.length === 0) {
    return [
      `No replication lag data: CloudWatch has no OldestReplicationSlotLag for "${id}" in the ` +
        `last ${LAG_WINDOW_MINUTES} minutes, so the lag cannot be judged. Check the metric in the ` +
        "RDS console's Monitoring tab for the blue instance and verify again.",
    ];
  }
  const maxMb = Math.max(...values) / BYTES_PER_MB;
  if (maxMb > plan.maxReplicationLagMb) {
    return [
      `Replication to green lags ${maxMb.toFixed(1)} MB (the most in the last ` +
        `${LAG_WINDOW_MINUTES} minutes, OldestReplicationSlotLag on "${id}"), over the limit of ` +
        `${plan.maxReplicationLagMb} MB. Wait for heavy writes or long transactions on blue to ` +
        'finish and verify again.',
    ];
  }
  return [];
}
