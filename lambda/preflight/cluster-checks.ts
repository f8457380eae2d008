// AWS API actions this file calls (for least-privilege IAM):
//   rds:DescribeDBClusters (../shared/cluster describeCluster)
//   rds:DescribeDBInstances (./common describeInstance)
//   rds:DescribeDBClusterParameters
//   rds:DescribeIntegrations
import {
  type DBCluster,
  paginateDescribeDBClusterParameters,
  paginateDescribeIntegrations,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { describeCluster, writerOf } from '../shared/cluster';
import type { DatabaseEngine } from '../shared/engines';
import { FAILED_WRITER_SUFFIX, OLD_BLUE_SUFFIX, type UpgradePlan } from '../shared/upgrade-plan';
import { describeInstance, fail, isError, type Outcome, pass } from './common';

/**
 * The checks of an Aurora DB cluster as blue, each a blue/green prerequisite or limitation
 * that the RDS API shows. The Aurora guide's pages this file follows:
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html
 * What only the database shows (tables without a primary key, a `tmp` database, publications,
 * extensions) is not checked here.
 */

export function clusterAvailable(id: string, cluster: DBCluster | undefined): Outcome {
  const name = 'source-available';
  if (cluster === undefined) {
    return fail(
      name,
      `Source DB cluster "${id}" was not found in this account and region. ` +
        'Check database.instanceIdentifier in cdk.json (for Aurora it names the cluster) and ' +
        'the region the state machine runs in.',
    );
  }
  // Cluster statuses: https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Aurora.Status
  if (cluster.Status !== 'available') {
    return fail(
      name,
      `Source DB cluster "${id}" is "${cluster.Status ?? 'status not reported'}", not "available". ` +
        'Wait until the operation on it (modification, maintenance, backup) has finished, then start again.',
    );
  }
  return pass(name, `DB cluster "${id}" is available`);
}

export async function writerAvailable(
  rds: RDSClient,
  id: string,
  cluster: DBCluster,
): Promise<Outcome> {
  const name = 'writer-available';
  // The writer is the member with IsClusterWriter; the switchover stops writes on it and
  // green's writer takes its name, so it must be up now.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterMember.html
  const writer = writerOf(cluster);
  if (writer === undefined) {
    return fail(
      name,
      `DB cluster "${id}" has no writer instance (no member with IsClusterWriter). Add a ` +
        'writer instance to the cluster (or wait for a failover to finish), then start again.',
    );
  }
  const db = await describeInstance(rds, writer);
  const status = db?.DBInstanceStatus ?? 'not found';
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
  if (status !== 'available') {
    return fail(
      name,
      `Writer instance "${writer}" of DB cluster "${id}" is "${status}", not "available". ` +
        'Wait until the operation on it has finished, then start again.',
    );
  }
  return pass(name, `writer "${writer}" is available`);
}

/**
 * The lowest minor version of each Aurora PostgreSQL major that blue/green deployments run
 * on: "Version 17.4 and higher | Version 16.1 and higher | Version 15.4 and higher | Version
 * 14.9 and higher | Version 13.12 and higher | Version 12.16 and higher | Version 11.21 and
 * higher" (all AWS Regions). The preparing list says "Confirm that your DB cluster is running
 * a version of Aurora PostgreSQL that's compatible with Blue/Green Deployments".
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.Aurora_Fea_Regions_DB-eng.Feature.BlueGreenDeployments.html
 */
const AURORA_POSTGRES_MINIMUM_MINOR: Readonly<Record<number, number>> = {
  11: 21,
  12: 16,
  13: 12,
  14: 9,
  15: 4,
  16: 1,
  17: 4,
};

export function auroraPostgresSourceVersion(plan: UpgradePlan, cluster: DBCluster): Outcome {
  const name = 'blue-green-source-version';
  const id = plan.sourceIdentifier;
  const actual = cluster.EngineVersion ?? '';
  const match = /^(\d+)\.(\d+)/.exec(actual);
  const [major, minor] = match ? [Number(match[1]), Number(match[2])] : [NaN, NaN];
  const minimum = AURORA_POSTGRES_MINIMUM_MINOR[major];
  if (minimum !== undefined && minor >= minimum) {
    return pass(name, `aurora-postgresql ${actual} supports blue/green deployments`);
  }
  // A major the table does not list (a newer one, say) is refused: AWS does not say it works.
  const fix =
    minimum === undefined
      ? 'AWS lists blue/green deployments for Aurora PostgreSQL 11.21, 12.16, 13.12, 14.9, ' +
        '15.4, 16.1 and 17.4 and later minors of each major only; check the current list and ' +
        'this runbook before upgrading it another way.'
      : `Upgrade "${id}" in place to ${major}.${minimum} or a later ${major}.x version (a minor ` +
        'upgrade), then start again.';
  return fail(
    name,
    `DB cluster "${id}" runs aurora-postgresql ${actual || '(version not reported)'}, which ` +
      `blue/green deployments do not support. ${fix}`,
  );
}

export function clusterBackups(id: string, cluster: DBCluster): Outcome {
  const name = 'automated-backups';
  // Aurora keeps automated backups for 1 to 35 days and cannot turn them off, so this
  // normally passes; it guards a cluster that reports none.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Managing.Backups.html
  const days = cluster.BackupRetentionPeriod ?? 0;
  if (days <= 0) {
    return fail(
      name,
      `DB cluster "${id}" reports no automated backups (BackupRetentionPeriod ${days}). ` +
        'Set database.backupRetentionDays (1-35) in cdk.json, deploy, then start again.',
    );
  }
  return pass(name, `backups kept ${days} days`);
}

/** A cluster parameter and the values that pass, with how to say what it must be. */
interface Required {
  parameter: string;
  ok: (value: string) => boolean;
  want: string;
}

/**
 * What blue/green needs in the DB cluster parameter group, by engine.
 * - Aurora PostgreSQL: "Associate the cluster with a custom DB cluster parameter group that
 *   has logical replication (`rds.logical_replication`) enabled" ("1" turns it on), and "make
 *   sure that the `synchronous_commit` parameter is set to `on`".
 * - Aurora MySQL: "the cluster must be associated with a custom DB cluster parameter group
 *   with binary logging (`binlog_format`) turned on ... While any binlog format works, we
 *   recommend `ROW`"; binlog_format OFF is what turns binary logging off.
 * A group that does not set a parameter leaves the engine default, which AWS does not
 * promise is what blue/green needs, so only a value set in the group passes (fail closed).
 * The replication slot and worker counts AWS asks to "tune" have no published minimum, so
 * they are not checked; RDS refuses the deployment if they are too low.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Replication.Logical.Configure.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_LogAccess.MySQL.BinaryFormat.html
 */
const REPLICATION_PARAMETERS: Readonly<Record<string, Required[]>> = {
  'aurora-postgresql': [
    { parameter: 'rds.logical_replication', ok: (v) => v === '1', want: '1' },
    { parameter: 'synchronous_commit', ok: (v) => v.toLowerCase() === 'on', want: 'on' },
  ],
  'aurora-mysql': [
    {
      parameter: 'binlog_format',
      ok: (v) => ['row', 'mixed', 'statement'].includes(v.toLowerCase()),
      want: 'ROW (or MIXED, STATEMENT)',
    },
  ],
};

/**
 * Green must not run the Event Scheduler: "The Event Scheduler (`event_scheduler` parameter)
 * must be disabled on the green environment when you create a blue/green deployment". In
 * Aurora MySQL version 3 event_scheduler is a cluster-level parameter.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Reference.ParameterGroups.html
 */
const EVENT_SCHEDULER_OFF: Required = {
  parameter: 'event_scheduler',
  ok: (v) => ['off', '0', 'disabled'].includes(v.toLowerCase()),
  want: 'OFF',
};

/** The values a cluster parameter group sets for these parameters; null if the group is gone. */
async function clusterParameterValues(
  rds: RDSClient,
  group: string,
  parameters: readonly string[],
): Promise<Map<string, string> | null> {
  // DescribeDBClusterParameters pages by Marker (at most 100 a page).
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBClusterParameters.html
  const values = new Map<string, string>();
  try {
    for await (const page of paginateDescribeDBClusterParameters(
      { client: rds },
      { DBClusterParameterGroupName: group },
    )) {
      for (const p of page.Parameters ?? []) {
        if (p.ParameterName && parameters.includes(p.ParameterName) && p.ParameterValue) {
          values.set(p.ParameterName, p.ParameterValue);
        }
      }
    }
    return values;
  } catch (err) {
    if (isError(err, 'DBParameterGroupNotFoundFault', 'DBParameterGroupNotFound')) return null;
    throw err;
  }
}

/** The sentence for each required parameter the group does not set as needed. */
function missing(
  values: Map<string, string>,
  required: readonly Required[],
  group: string,
  whose: string,
): string[] {
  return required.flatMap(({ parameter, ok, want }) => {
    const value = values.get(parameter);
    if (value !== undefined && ok(value)) return [];
    const seen = value === undefined ? 'not set (the engine default)' : `"${value}"`;
    return [
      `${parameter} is ${seen} in DB cluster parameter group "${group}" (${whose}); set it to ${want}.`,
    ];
  });
}

export async function blueClusterParameterGroup(
  rds: RDSClient,
  engine: DatabaseEngine,
  id: string,
  cluster: DBCluster,
): Promise<Outcome> {
  const name = 'cluster-parameter-group';
  const group = cluster.DBClusterParameterGroup ?? '';
  const required = REPLICATION_PARAMETERS[engine] ?? [];
  const problems: string[] = [];
  // "Blue/green deployments require that the writer instance be in sync with the DB cluster
  // parameter group, otherwise creation fails." AWS does not list the member status values for
  // a cluster group; the instance group's in-sync is the only one read as applied.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterMember.html
  const writer = cluster.DBClusterMembers?.find((m) => m.IsClusterWriter === true);
  if (writer !== undefined && writer.DBClusterParameterGroupStatus !== 'in-sync') {
    problems.push(
      `Writer "${writer.DBInstanceIdentifier}" of DB cluster "${id}" has its DB cluster parameter ` +
        `group "${writer.DBClusterParameterGroupStatus ?? 'status not reported'}", not "in-sync": ` +
        `a change waits for a reboot. Reboot "${writer.DBInstanceIdentifier}" at a quiet moment, then start again.`,
    );
  }
  const values =
    group === ''
      ? null
      : await clusterParameterValues(
          rds,
          group,
          required.map((r) => r.parameter),
        );
  if (values === null) {
    problems.push(
      `DB cluster parameter group "${group}" of "${id}" was not found. Deploy the ` +
        'QuietUpgradeDatabase stack so the cluster uses its parameter group, then start again.',
    );
  } else {
    const wrong = missing(values, required, group, `blue, "${id}"`);
    if (wrong.length > 0) {
      problems.push(
        `${wrong.join(' ')} Blue/green replicates blue to green with it. Change the group, ` +
          `reboot the writer of "${id}", then start again.`,
      );
    }
  }
  if (problems.length > 0) return fail(name, ...problems);
  return pass(
    name,
    `${required.map((r) => `${r.parameter}=${values?.get(r.parameter)}`).join(', ')} in "${group}", in sync on the writer`,
  );
}

export async function greenClusterParameterGroup(
  rds: RDSClient,
  engine: DatabaseEngine,
  group: string,
): Promise<Outcome> {
  const name = 'green-cluster-parameter-group';
  // Green gets plan.targetParameterGroupName (TargetDBClusterParameterGroupName). It needs
  // blue's replication settings too: after the switchover green is the writer that the next
  // upgrade, and a rollback by replication to old blue, replicate from. Aurora MySQL green
  // also needs the Event Scheduler off (EVENT_SCHEDULER_OFF).
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateBlueGreenDeployment.html
  const required = [
    ...(REPLICATION_PARAMETERS[engine] ?? []),
    ...(engine === 'aurora-mysql' ? [EVENT_SCHEDULER_OFF] : []),
  ];
  if (group === '') {
    return fail(
      name,
      'plan.targetParameterGroupName is empty, got: "", so the DB cluster parameter group ' +
        'green gets cannot be checked. Set database.targetParameterGroupName in cdk.json, ' +
        'deploy, then start again.',
    );
  }
  const values = await clusterParameterValues(
    rds,
    group,
    required.map((r) => r.parameter),
  );
  if (values === null) {
    return fail(
      name,
      `DB cluster parameter group "${group}" (plan.targetParameterGroupName), which green gets, ` +
        'was not found. Deploy the QuietUpgradeDatabase stack, or name an existing DB cluster ' +
        'parameter group in database.targetParameterGroupName, then start again.',
    );
  }
  const wrong = missing(values, required, group, 'green gets it');
  if (wrong.length > 0) return fail(name, `${wrong.join(' ')} Then start again.`);
  return pass(
    name,
    `${required.map((r) => `${r.parameter}=${values.get(r.parameter)}`).join(', ')} in "${group}", the group green gets`,
  );
}

export function clusterMasterPassword(id: string, cluster: DBCluster): Outcome {
  const name = 'no-managed-master-password';
  // "Blue/green deployments don't support managing master user passwords with AWS Secrets
  // Manager." The cluster shows it as MasterUserSecret.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
  if (cluster.MasterUserSecret !== undefined) {
    return fail(
      name,
      `DB cluster "${id}" has its master password managed by RDS in Secrets Manager ` +
        `(${cluster.MasterUserSecret.SecretArn ?? 'secret ARN not shown'}), which blue/green does not support. ` +
        'Turn it off (ModifyDBCluster with ManageMasterUserPassword=false and the password from ' +
        "the stack's secret), then start again.",
    );
  }
  return pass(name, 'master password is not managed by RDS');
}

export function noGlobalDatabase(id: string, cluster: DBCluster): Outcome {
  const name = 'no-global-database';
  // A Global Database member's blue/green deployment is the global cluster's, run from the
  // writer's Region, with its own limitations ("Performing a global switchover or a global
  // failover will cause active blue/green deployment to become invalid"; parameter groups
  // "in all secondary regions with identical names"). This runbook creates the deployment
  // from the one cluster's ARN and knows none of that, so it refuses.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-agd
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html (GlobalClusterIdentifier)
  if (cluster.GlobalClusterIdentifier) {
    return fail(
      name,
      `DB cluster "${id}" is a member of Aurora Global Database "${cluster.GlobalClusterIdentifier}". ` +
        'This runbook upgrades a single-Region cluster only; upgrade the global database with ' +
        'a blue/green deployment of the global cluster outside this runbook.',
    );
  }
  return pass(name, 'not a Global Database member');
}

export function noServerlessV1(id: string, cluster: DBCluster): Outcome {
  const name = 'no-serverless-v1';
  // "Blue/green deployments aren't supported for ... Aurora Serverless v1 DB clusters", whose
  // EngineMode is "serverless" (Serverless v2 runs in "provisioned" clusters).
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html (EngineMode)
  if (cluster.EngineMode === 'serverless') {
    return fail(
      name,
      `DB cluster "${id}" is Aurora Serverless v1 (EngineMode "serverless"), which blue/green ` +
        'deployments do not support. Convert it to a provisioned cluster (Serverless v2 ' +
        'instances are fine), then start again.',
    );
  }
  return pass(name, `EngineMode ${cluster.EngineMode ?? 'provisioned (not reported)'}`);
}

export function noCrossRegionReplica(id: string, cluster: DBCluster): Outcome {
  const name = 'no-cross-region-replica';
  // "Blue/green deployments aren't supported for ... Cross-Region read replicas." A cluster
  // that replicates from another (ReplicationSourceIdentifier) or to others
  // (ReadReplicaIdentifiers) is one end of such a pair.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html
  const problems: string[] = [];
  if (cluster.ReplicationSourceIdentifier) {
    problems.push(
      `DB cluster "${id}" is a read replica of ${cluster.ReplicationSourceIdentifier}, which ` +
        'blue/green deployments do not support. Upgrade its source, or promote it, then start again.',
    );
  }
  const replicas = cluster.ReadReplicaIdentifiers ?? [];
  if (replicas.length > 0) {
    problems.push(
      `DB cluster "${id}" has read replica cluster(s) ${replicas.join(', ')}, which blue/green ` +
        'deployments do not support. Promote or delete them, then start again.',
    );
  }
  if (problems.length > 0) return fail(name, ...problems);
  return pass(name, 'neither a read replica nor the source of one');
}

export function noBacktrack(id: string, cluster: DBCluster): Outcome {
  const name = 'no-backtrack';
  // Aurora MySQL: "If the source DB cluster that has backtrack enabled, the green DB cluster
  // is created without backtracking support", and "If you attempt to force a backtrack on the
  // blue DB cluster, the blue/green deployment breaks and switchover is blocked". The upgrade
  // would take backtracking away from production for good, so a person decides first.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-mysql
  const hours = (cluster.BacktrackWindow ?? 0) / 3600;
  if ((cluster.BacktrackWindow ?? 0) > 0) {
    return fail(
      name,
      `DB cluster "${id}" has backtracking on (BacktrackWindow ${cluster.BacktrackWindow} s, ` +
        `${hours.toFixed(1)} h); green would be created without it, and a backtrack during the ` +
        `run breaks the deployment. If losing backtracking is accepted, set the backtrack ` +
        `window of "${id}" to 0, then start again; otherwise upgrade it outside this runbook.`,
    );
  }
  return pass(name, 'backtracking is off');
}

export async function noZeroEtl(rds: RDSClient, id: string, cluster: DBCluster): Promise<Outcome> {
  const name = 'no-zero-etl-integration';
  // "During switchover, the blue and green environments can't have zero-ETL integrations with
  // Amazon Redshift. You must delete the integration first and switch over, then recreate the
  // integration." Integrations name their source by ARN (SourceArn); the filter names the
  // API takes are not listed, so every integration is read and matched here.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeIntegrations.html
  const arn = cluster.DBClusterArn ?? '';
  const found: string[] = [];
  for await (const page of paginateDescribeIntegrations({ client: rds }, {})) {
    for (const i of page.Integrations ?? []) {
      if (arn !== '' && i.SourceArn === arn) {
        found.push(`"${i.IntegrationName ?? i.IntegrationArn ?? '?'}" (${i.Status ?? '?'})`);
      }
    }
  }
  if (found.length > 0) {
    return fail(
      name,
      `DB cluster "${id}" is the source of zero-ETL integration ${found.join(', ')}; a ` +
        'blue/green switchover needs none. Delete the integration, run the upgrade, then ' +
        'recreate it.',
    );
  }
  return pass(name, `no zero-ETL integration has "${id}" as its source`);
}

export async function noLeftoverClusters(
  rds: RDSClient,
  id: string,
  cluster: DBCluster | undefined,
): Promise<Outcome> {
  const name = 'no-leftover-clusters';
  // A switchover "renames the DB cluster and DB instances in the blue environment by
  // appending -oldn to the current name", e.g. auroradb -> auroradb-old1 and
  // auroradb-instance1 -> auroradb-instance1-old1; the restore moves a failed new writer to
  // "-failed1". A cluster or instance already under either name makes RDS pick another
  // number for the next old blue, or the restore unable to move a failed writer away.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-overview.html
  const suffixes = [OLD_BLUE_SUFFIX, FAILED_WRITER_SUFFIX];
  const clusterNames = suffixes.map((s) => `${id}${s}`);
  const members = (cluster?.DBClusterMembers ?? []).flatMap((m) =>
    m.DBInstanceIdentifier ? [m.DBInstanceIdentifier] : [],
  );
  const instanceNames = members.flatMap((m) => suffixes.map((s) => `${m}${s}`));
  const [clusters, instances] = await Promise.all([
    Promise.all(clusterNames.map((n) => describeCluster(rds, n))),
    Promise.all(instanceNames.map((n) => describeInstance(rds, n))),
  ]);
  const fix = 'Delete it after a final snapshot, or rename it, then run the upgrade again.';
  const problems = [
    ...clusterNames.flatMap((n, i) => {
      const c = clusters[i];
      return c === undefined
        ? []
        : [
            `DB cluster "${n}" (${c.Engine ?? 'engine unknown'} ${c.EngineVersion ?? 'version unknown'}, ` +
              `${c.Status ?? 'status unknown'}) is left from an earlier upgrade or restore. ${fix}`,
          ];
    }),
    ...instanceNames.flatMap((n, i) => {
      const db = instances[i];
      return db === undefined
        ? []
        : [
            `DB instance "${n}" (${db.DBInstanceStatus ?? 'status unknown'}, in cluster ` +
              `${db.DBClusterIdentifier ?? 'none'}) is left from an earlier upgrade or restore. ${fix}`,
          ];
    }),
  ];
  if (problems.length > 0) return fail(name, ...problems);
  return pass(name, `no DB cluster or instance named with ${suffixes.join(' or ')}`);
}
