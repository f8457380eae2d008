// AWS API actions this file calls (for least-privilege IAM):
//   rds:DescribeDBInstances
//   rds:DescribeDBEngineVersions
//   rds:DescribeDBParameters
//   rds:DescribeBlueGreenDeployments
//   rds:DescribeDBProxies
//   rds:DescribeDBProxyTargets
//   states:ListExecutions
//   sqs:GetQueueAttributes
//   lambda:GetEventSourceMapping
//   elasticloadbalancing:DescribeListeners
import {
  DescribeListenersCommand,
  type ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { GetEventSourceMappingCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import {
  type DBCluster,
  type DBInstance,
  type DBProxy,
  type DBProxyTarget,
  DescribeDBEngineVersionsCommand,
  DescribeDBProxiesCommand,
  paginateDescribeBlueGreenDeployments,
  paginateDescribeDBParameters,
  paginateDescribeDBProxyTargets,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { paginateListExecutions, type SFNClient } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { describeCluster, isClusterEngine } from '../shared/cluster';
import { type DatabaseEngine, ENGINE_SPECS } from '../shared/engines';
import { FAILED_WRITER_SUFFIX, OLD_BLUE_SUFFIX } from '../shared/upgrade-plan';
import type { CheckResult, UpgradePlan } from '../shared/upgrade-plan';
import {
  auroraPostgresSourceVersion,
  blueClusterParameterGroup,
  clusterAvailable,
  clusterBackups,
  clusterMasterPassword,
  greenClusterParameterGroup,
  noBacktrack,
  noCrossRegionReplica,
  noGlobalDatabase,
  noLeftoverClusters,
  noServerlessV1,
  noZeroEtl,
  writerAvailable,
} from './cluster-checks';
import { describeInstance, fail, isError, type Outcome, pass, skip } from './common';

export interface PreflightEvent {
  plan: UpgradePlan;
  /** $$.StateMachine.Id */
  stateMachineArn: string;
  /** $$.Execution.Id: this run, which single flight ignores. */
  executionArn: string;
}

export interface PreflightCheck {
  name: string;
  ok: boolean;
  /** What was seen when it passed; the failure sentence(s) when it failed. */
  detail: string;
}

export type PreflightResult = CheckResult & {
  /** Blue as RDS describes it now; null when it could not be described. */
  source: { identifier: string; arn: string; engineVersion: string } | null;
  /** Every check, in a fixed order; `failures` repeats the sentences of the failed ones. */
  checks: PreflightCheck[];
};

export interface PreflightClients {
  rds: RDSClient;
  sfn: SFNClient;
  sqs: SQSClient;
  lambda: LambdaClient;
  elb: ElasticLoadBalancingV2Client;
}

/** The engines RDS runs as one DB instance; the Aurora engines run DB clusters (./cluster-checks). */
const INSTANCE_ENGINES = ['postgres', 'mysql'] as const;
type InstanceEngine = (typeof INSTANCE_ENGINES)[number];
const isInstanceEngine = (engine: DatabaseEngine): engine is InstanceEngine =>
  (INSTANCE_ENGINES as readonly string[]).includes(engine);

/**
 * Everything that must hold before an upgrade starts. Every check runs and every failure is
 * reported; it throws only for unexpected SDK errors, which the state machine retries.
 * `checks` names only the checks that apply to the plan's engine: a PostgreSQL-only check is
 * not listed for MySQL (and the reverse), so every line an operator reads is a real check.
 */
export async function preflight(
  clients: PreflightClients,
  event: PreflightEvent,
): Promise<PreflightResult> {
  const { plan } = event;
  const engine = plan.engine;
  if (isClusterEngine(engine)) return clusterPreflight(clients, event);
  if (!isInstanceEngine(engine)) return unsupportedEngine(engine);
  const id = plan.sourceIdentifier;
  const instance = await describeInstance(clients.rds, id);
  const noInstance = `source DB instance "${id}" could not be described`;
  const whenInstance = (name: string, run: (db: DBInstance) => Promise<Outcome> | Outcome) =>
    instance ? run(instance) : skip(name, noInstance);
  const version = (db: DBInstance) => db.EngineVersion ?? '';

  // The checks of blue itself, which differ by engine, each in the order an operator reads.
  const instanceChecks: Record<InstanceEngine, () => (Promise<Outcome> | Outcome)[]> = {
    postgres: () => [
      sourceAvailable(id, instance),
      whenInstance('valid-upgrade-target', (db) =>
        validUpgradeTarget(clients.rds, plan, version(db)),
      ),
      whenInstance('automated-backups', (db) => automatedBackups(engine, id, db)),
      whenInstance('logical-replication', (db) => logicalReplication(clients.rds, id, db)),
      whenInstance('no-managed-master-password', (db) => noManagedMasterPassword(id, db)),
      whenInstance('major-upgrade-source-version', (db) => majorUpgradeSourceVersion(plan, db)),
    ],
    mysql: () => [
      sourceAvailable(id, instance),
      whenInstance('valid-upgrade-target', (db) =>
        validUpgradeTarget(clients.rds, plan, version(db)),
      ),
      whenInstance('automated-backups', (db) => automatedBackups(engine, id, db)),
      whenInstance('no-managed-master-password', (db) => noManagedMasterPassword(id, db)),
      // Reads the plan's target group, not blue: it runs whether or not blue was described.
      greenEventSchedulerOff(clients.rds, plan.targetParameterGroupName),
      whenInstance('no-custom-option-group', (db) => noCustomOptionGroup(plan, db)),
    ],
  };

  const outcomes = await Promise.all([
    ...instanceChecks[engine](),
    noOtherBlueGreen(clients.rds, id, instance?.DBInstanceArn ?? plan.sourceArn),
    noLeftoverInstances(clients.rds, id),
    rdsProxy(clients.rds, engine, id),
    ...platformChecks(clients, event),
  ]);

  return summarize(
    outcomes,
    instance === undefined
      ? null
      : {
          identifier: instance.DBInstanceIdentifier ?? id,
          arn: instance.DBInstanceArn ?? plan.sourceArn,
          engineVersion: instance.EngineVersion ?? '',
        },
  );
}

/**
 * An Aurora plan: blue is a DB cluster (plan.sourceIdentifier names it), read with
 * DescribeDBClusters; its writer is one of its DB instances. The checks that do not concern
 * the database are the same as for an instance.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing
 */
async function clusterPreflight(
  clients: PreflightClients,
  event: PreflightEvent,
): Promise<PreflightResult> {
  const { plan } = event;
  const engine = plan.engine;
  const id = plan.sourceIdentifier;
  const cluster = await describeCluster(clients.rds, id);
  const noCluster = `source DB cluster "${id}" could not be described`;
  const whenCluster = (name: string, run: (c: DBCluster) => Promise<Outcome> | Outcome) =>
    cluster ? run(cluster) : skip(name, noCluster);
  const mysql = engine === 'aurora-mysql';

  const outcomes = await Promise.all([
    clusterAvailable(id, cluster),
    whenCluster('writer-available', (c) => writerAvailable(clients.rds, id, c)),
    whenCluster('valid-upgrade-target', (c) =>
      validUpgradeTarget(clients.rds, plan, c.EngineVersion ?? ''),
    ),
    ...(mysql
      ? []
      : [whenCluster('blue-green-source-version', (c) => auroraPostgresSourceVersion(plan, c))]),
    whenCluster('automated-backups', (c) => clusterBackups(id, c)),
    whenCluster('cluster-parameter-group', (c) =>
      blueClusterParameterGroup(clients.rds, engine, id, c),
    ),
    // Reads the plan's target group, not blue: it runs whether or not blue was described.
    greenClusterParameterGroup(clients.rds, engine, plan.targetParameterGroupName),
    whenCluster('no-managed-master-password', (c) => clusterMasterPassword(id, c)),
    whenCluster('no-global-database', (c) => noGlobalDatabase(id, c)),
    whenCluster('no-serverless-v1', (c) => noServerlessV1(id, c)),
    whenCluster('no-cross-region-replica', (c) => noCrossRegionReplica(id, c)),
    ...(mysql ? [whenCluster('no-backtrack', (c) => noBacktrack(id, c))] : []),
    whenCluster('no-zero-etl-integration', (c) => noZeroEtl(clients.rds, id, c)),
    noOtherBlueGreen(clients.rds, id, cluster?.DBClusterArn ?? plan.sourceArn),
    noLeftoverClusters(clients.rds, id, cluster),
    clusterProxy(clients.rds, engine, id, cluster),
    ...platformChecks(clients, event),
  ]);

  return summarize(
    outcomes,
    cluster === undefined
      ? null
      : {
          identifier: cluster.DBClusterIdentifier ?? id,
          arn: cluster.DBClusterArn ?? plan.sourceArn,
          engineVersion: cluster.EngineVersion ?? '',
        },
  );
}

/** The checks that do not concern the database: the same for every engine. */
function platformChecks(clients: PreflightClients, event: PreflightEvent): Promise<Outcome>[] {
  const { plan } = event;
  return [
    singleFlight(clients.sfn, event.stateMachineArn, event.executionArn),
    ...plan.queues.map((queue) => queueExists(clients.sqs, queue)),
    ...plan.mappings.map((mapping) => mappingEnabled(clients.lambda, mapping)),
    listenerExists(clients.elb, plan.listenerArn),
  ];
}

function summarize(outcomes: Outcome[], source: PreflightResult['source']): PreflightResult {
  const failures = outcomes.flatMap((o) => o.problems);
  return {
    passed: failures.length === 0 && outcomes.every((o) => o.skipped === undefined),
    failures,
    source,
    checks: outcomes.map((o) => ({
      name: o.name,
      ok: o.problems.length === 0 && o.skipped === undefined,
      detail: o.skipped ?? (o.problems.length > 0 ? o.problems.join(' ') : o.passed),
    })),
  };
}

function sourceAvailable(id: string, db: DBInstance | undefined): Outcome {
  const name = 'source-available';
  if (db === undefined) {
    return fail(
      name,
      `Source DB instance "${id}" was not found in this account and region. ` +
        'Check database.instanceIdentifier in cdk.json and the region the state machine runs in.',
    );
  }
  // Status values: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
  if (db.DBInstanceStatus !== 'available') {
    return fail(
      name,
      `Source DB instance "${id}" is "${db.DBInstanceStatus}", not "available". ` +
        'Wait until the operation on it (modification, maintenance, backup) has finished, then start again.',
    );
  }
  return pass(name, `"${id}" is available`);
}

async function validUpgradeTarget(
  rds: RDSClient,
  plan: UpgradePlan,
  actual: string,
): Promise<Outcome> {
  const name = 'valid-upgrade-target';
  // The versions an engine version can be upgraded to are its ValidUpgradeTarget list.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.PostgreSQL.MajorVersion.html
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBEngineVersions.html
  const out = await rds.send(
    new DescribeDBEngineVersionsCommand({ Engine: plan.engine, EngineVersion: actual }),
  );
  const targets = (out.DBEngineVersions?.[0]?.ValidUpgradeTarget ?? []).flatMap((t) =>
    t.EngineVersion ? [t.EngineVersion] : [],
  );
  const stackSays =
    actual === plan.currentEngineVersion ? '' : ` (the stack says ${plan.currentEngineVersion})`;
  if (!targets.includes(plan.targetEngineVersion)) {
    return fail(
      name,
      `"${plan.sourceIdentifier}" runs ${plan.engine} ${actual}${stackSays}, which RDS cannot upgrade ` +
        `to ${plan.targetEngineVersion}; valid targets from ${actual}: ` +
        `${targets.length > 0 ? targets.join(', ') : 'none'}. ` +
        'Start again with one of them as targetEngineVersion.',
    );
  }
  return pass(name, `${actual}${stackSays} can be upgraded to ${plan.targetEngineVersion}`);
}

/** An engine neither path knows (the type allows none today): one failure, nothing called. */
function unsupportedEngine(engine: DatabaseEngine): PreflightResult {
  const problem =
    `plan.engine is ${JSON.stringify(engine)}, which this runbook does not support. ` +
    'Nothing was changed.';
  return {
    passed: false,
    failures: [problem],
    source: null,
    checks: [{ name: 'engine-supported', ok: false, detail: problem }],
  };
}

function automatedBackups(engine: InstanceEngine, id: string, db: DBInstance): Outcome {
  const name = 'automated-backups';
  // Blue/green prerequisites: https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing
  // For RDS for MySQL "you must enable automated backups", and they are what turns the binary
  // log on, which green's replication reads: "The automated backups feature determines whether
  // binary logging is turned on or off for MySQL ... Set the backup retention period to a
  // positive nonzero value."
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing-mysql
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_LogAccess.MySQL.BinaryFormat.html
  // A retention period of 0 turns automated backups off:
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithAutomatedBackups.html
  const days = db.BackupRetentionPeriod ?? 0;
  const mysql = engine === 'mysql';
  if (days <= 0) {
    return fail(
      name,
      `Automated backups are off on "${id}" (BackupRetentionPeriod ${days})` +
        (mysql ? ', and with them binary logging, which blue/green replicates from. ' : '. ') +
        'Set database.backupRetentionDays (1-35) in cdk.json, deploy, then start again.',
    );
  }
  return pass(name, `backups kept ${days} days${mysql ? ', so binary logging is on' : ''}`);
}

async function logicalReplication(rds: RDSClient, id: string, db: DBInstance): Promise<Outcome> {
  const name = 'logical-replication';
  // rds.logical_replication=1 is a blue/green prerequisite for PostgreSQL; it is static, so it
  // takes effect only after a reboot, which ParameterApplyStatus "in-sync" confirms.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing-postgres
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBParameterGroupStatus.html
  const groups = db.DBParameterGroups ?? [];
  if (groups.length === 0) {
    return fail(name, `"${id}" reports no DB parameter group, so logical replication is off.`);
  }
  const problems: string[] = [];
  for (const group of groups) {
    const groupName = group.DBParameterGroupName ?? '';
    if (group.ParameterApplyStatus !== 'in-sync') {
      problems.push(
        `Parameter group "${groupName}" on "${id}" is "${group.ParameterApplyStatus}", not ` +
          `"in-sync": a change waits to be applied. Reboot "${id}" at a quiet moment, then start again.`,
      );
    }
    const value = await parameterValue(rds, groupName, 'rds.logical_replication');
    if (value === null) {
      problems.push(
        `Parameter group "${groupName}" attached to "${id}" was not found. ` +
          'Deploy the QuietUpgradeDatabase stack so the instance uses its parameter group, then start again.',
      );
    } else if (value !== '1') {
      problems.push(
        `rds.logical_replication is ${value === undefined ? 'not set' : `"${value}"`} in parameter ` +
          `group "${groupName}" of "${id}"; blue/green needs "1". ` +
          `Set it to 1, reboot "${id}", then start again.`,
      );
    }
  }
  if (problems.length > 0) return fail(name, ...problems);
  return pass(name, `rds.logical_replication=1, in sync, in ${groups.length} parameter group(s)`);
}

/** A parameter's value; undefined if the group does not set it, null if the group is gone. */
async function parameterValue(
  rds: RDSClient,
  group: string,
  parameter: string,
): Promise<string | undefined | null> {
  // DescribeDBParameters returns at most 100 parameters a page (a PostgreSQL group has
  // hundreds), so follow every Marker.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBParameters.html
  try {
    for await (const page of paginateDescribeDBParameters(
      { client: rds },
      { DBParameterGroupName: group },
    )) {
      const found = page.Parameters?.find((p) => p.ParameterName === parameter);
      if (found) return found.ParameterValue;
    }
    return undefined;
  } catch (err) {
    if (isError(err, 'DBParameterGroupNotFoundFault', 'DBParameterGroupNotFound')) return null;
    throw err;
  }
}

function noManagedMasterPassword(id: string, db: DBInstance): Outcome {
  const name = 'no-managed-master-password';
  // Blue/green does not support the RDS-managed master password.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
  if (db.MasterUserSecret !== undefined) {
    return fail(
      name,
      `"${id}" has its master password managed by RDS in Secrets Manager ` +
        `(${db.MasterUserSecret.SecretArn ?? 'secret ARN not shown'}), which blue/green does not support. ` +
        'Turn it off (ModifyDBInstance with ManageMasterUserPassword=false and the password from ' +
        "the stack's secret), then start again.",
    );
  }
  return pass(name, 'master password is not managed by RDS');
}

/**
 * The lowest minor version of each PostgreSQL major from which a blue/green deployment can
 * upgrade to a higher major (RDS then replicates blue to green logically).
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-replication-type.html
 * "Major version upgrades are not supported for blue/green deployments with source RDS for
 * PostgreSQL versions 15.3 and lower, 14.8 and lower, 13.11 and lower, 12.15 and lower, or
 * 11.20 and lower." The table there lists "16.1 and all higher major and minor versions".
 */
const MAJOR_UPGRADE_MINIMUM_MINOR: Readonly<Record<number, number>> = {
  11: 21,
  12: 16,
  13: 12,
  14: 9,
  15: 4,
  16: 1,
};
/** From this major on every version qualifies ("16.1 and all higher major ... versions"). */
const LAST_MAJOR_WITH_MINIMUM = 16;

/** "16.6" and "11.22-rds.20240418" alike: [major, minor], or null if not a version. */
function majorMinor(version: string): [number, number] | null {
  const match = /^(\d+)\.(\d+)/.exec(version);
  return match ? [Number(match[1]), Number(match[2])] : null;
}

function majorUpgradeSourceVersion(plan: UpgradePlan, db: DBInstance): Outcome {
  const name = 'major-upgrade-source-version';
  const id = plan.sourceIdentifier;
  const actual = db.EngineVersion ?? '';
  const from = majorMinor(actual);
  const to = majorMinor(plan.targetEngineVersion);
  if (from === null || to === null) {
    return fail(
      name,
      `Cannot read the major version of "${id}" (${actual || 'none reported'}) or of the ` +
        `target ${plan.targetEngineVersion}. Start again with a targetEngineVersion such as "17.2".`,
    );
  }
  const [major, minor] = from;
  if (to[0] === major) {
    return pass(name, `${actual} to ${plan.targetEngineVersion} is not a major upgrade`);
  }
  const minimum = MAJOR_UPGRADE_MINIMUM_MINOR[major];
  if (major > LAST_MAJOR_WITH_MINIMUM || (minimum !== undefined && minor >= minimum)) {
    return pass(name, `${actual} is new enough for a blue/green major upgrade`);
  }
  const upgradeTo =
    minimum === undefined
      ? 'a version that allows it (11.21, 12.16, 13.12, 14.9, 15.4, 16.1 or later in each major)'
      : `${major}.${minimum} or a later ${major}.x version (a minor upgrade)`;
  return fail(
    name,
    `"${id}" runs ${plan.engine} ${actual}, from which RDS blue/green cannot upgrade to another ` +
      `major version (${plan.targetEngineVersion}). Upgrade "${id}" in place to ${upgradeTo}, ` +
      'then start again.',
  );
}

/** event_scheduler values that keep the Event Scheduler from running (MySQL takes 0 for OFF). */
const EVENT_SCHEDULER_OFF: ReadonlySet<string> = new Set(['off', '0', 'disabled']);

async function greenEventSchedulerOff(rds: RDSClient, group: string): Promise<Outcome> {
  const name = 'green-event-scheduler-off';
  // "The Event Scheduler (event_scheduler parameter) must be disabled on the green environment
  // when you create a blue/green deployment. This prevents events from being generated in the
  // green environment and causing inconsistencies." Green gets plan.targetParameterGroupName
  // (TargetDBParameterGroupName), so that group is the one read, not blue's.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
  // A group that does not set it leaves the engine default. AWS does not say what that is on
  // RDS for MySQL, and MySQL's own default is ON since 8.0 ("ON is the default event_scheduler
  // value"), so only a value that turns it off passes (fail closed).
  // https://dev.mysql.com/worklog/task/?id=9644
  // https://dev.mysql.com/doc/refman/8.4/en/events-configuration.html
  if (group === '') {
    return fail(
      name,
      'plan.targetParameterGroupName is empty, got: "", so the parameter group green gets, and ' +
        'its event_scheduler, cannot be checked. Set database.targetParameterGroupName in ' +
        'cdk.json to a group with event_scheduler=OFF, deploy, then start again.',
    );
  }
  const value = await parameterValue(rds, group, 'event_scheduler');
  if (value === null) {
    return fail(
      name,
      `Parameter group "${group}" (plan.targetParameterGroupName), which green gets, was not found. ` +
        'Deploy the QuietUpgradeDatabase stack, or name an existing group in ' +
        'database.targetParameterGroupName, then start again.',
    );
  }
  if (value === undefined || !EVENT_SCHEDULER_OFF.has(value.toLowerCase())) {
    const seen =
      value === undefined
        ? 'not set (the engine default, which AWS does not document as OFF)'
        : `"${value}"`;
    return fail(
      name,
      `event_scheduler is ${seen} in parameter group "${group}", which green gets; blue/green ` +
        `needs the Event Scheduler off on green. Set event_scheduler=OFF in "${group}", then start again.`,
    );
  }
  return pass(name, `event_scheduler=${value} in "${group}", the parameter group green gets`);
}

function noCustomOptionGroup(plan: UpgradePlan, db: DBInstance): Outcome {
  const name = 'no-custom-option-group';
  const id = plan.sourceIdentifier;
  // RDS for MySQL: "If the source database is associated with a custom option group, you can't
  // specify a major version upgrade when you create a blue/green deployment." AWS's way round
  // it (create green without the upgrade, then upgrade green) is not this runbook's.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-mysql
  const actual = db.EngineVersion ?? '';
  const major = ENGINE_SPECS.mysql.major;
  if (actual !== '' && major(actual) === major(plan.targetEngineVersion)) {
    return pass(
      name,
      `${actual} to ${plan.targetEngineVersion} is not a major upgrade, so any option group will do`,
    );
  }
  // AWS has no field that says an option group is a default one. RDS's own are named like
  // "default:mysql-8-0" (the pages read for this do not spell the scheme out), and a group
  // anyone creates or copies "must contain from 1 to 255 letters, numbers, or hyphens", so it
  // can never start with "default:".
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateOptionGroup.html
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyOptionGroup.html
  const memberships = db.OptionGroupMemberships ?? [];
  const custom = memberships.filter((m) => !(m.OptionGroupName ?? '').startsWith('default:'));
  if (custom.length > 0) {
    const groups = custom
      .map((m) => `"${m.OptionGroupName ?? '(no name)'}" (${m.Status ?? 'status unknown'})`)
      .join(', ');
    const defaultGroup = `default:mysql-${major(actual).replace('.', '-')}`;
    return fail(
      name,
      `"${id}" uses custom option group ${groups}, and RDS refuses a major version upgrade ` +
        `(${actual || 'version not reported'} to ${plan.targetEngineVersion}) in a blue/green ` +
        `deployment whose source has a custom option group. If no option in it is needed, move ` +
        `"${id}" to the default option group ${defaultGroup} and start again; otherwise upgrade ` +
        'it outside this runbook (a blue/green deployment without a major version upgrade, then ' +
        'upgrade green).',
    );
  }
  const names = memberships.map((m) => `"${m.OptionGroupName ?? ''}"`).join(', ');
  return pass(
    name,
    names === '' ? `"${id}" reports no option group` : `"${id}" uses only ${names}`,
  );
}

async function noOtherBlueGreen(rds: RDSClient, id: string, sourceArn: string): Promise<Outcome> {
  const name = 'no-other-blue-green-deployment';
  // The "source" filter takes the source's ARN.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeBlueGreenDeployments.html
  const existing: string[] = [];
  try {
    for await (const page of paginateDescribeBlueGreenDeployments(
      { client: rds },
      { Filters: [{ Name: 'source', Values: [sourceArn] }] },
    )) {
      for (const d of page.BlueGreenDeployments ?? []) {
        existing.push(`${d.BlueGreenDeploymentIdentifier} (${d.Status})`);
      }
    }
  } catch (err) {
    if (!isError(err, 'BlueGreenDeploymentNotFoundFault', 'BlueGreenDeploymentNotFound')) {
      throw err;
    }
  }
  if (existing.length > 0) {
    return fail(
      name,
      `"${id}" is already the source of blue/green deployment ${existing.join(', ')}. ` +
        'Find out who made it; switch it over or delete it (keeping its green instance if in doubt), then start again.',
    );
  }
  return pass(name, `no blue/green deployment has "${id}" as its source`);
}

async function noLeftoverInstances(rds: RDSClient, id: string): Promise<Outcome> {
  const name = 'no-leftover-instances';
  // A switchover renames blue to "<name>-old1", and restore-old-blue renames a failed writer
  // to "<name>-failed1". An instance already under either name, left by an earlier upgrade
  // or restore, makes RDS pick another name for the next old blue, or the restore unable to
  // move a failed writer out of the way.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-after
  const oldBlue = `${id}${OLD_BLUE_SUFFIX}`;
  const failedWriter = `${id}${FAILED_WRITER_SUFFIX}`;
  const leftovers = [
    {
      name: oldBlue,
      harm: `RDS would name the next old blue "${id}-old2", but the restore step expects "${oldBlue}".`,
    },
    {
      name: failedWriter,
      harm: `The restore step could not rename a failed new writer to "${failedWriter}".`,
    },
  ];
  const found = await Promise.all(leftovers.map((l) => describeInstance(rds, l.name)));
  const problems = leftovers.flatMap((leftover, i) => {
    const db = found[i];
    if (db === undefined) return [];
    return [
      `DB instance "${leftover.name}" (${db.Engine ?? 'engine unknown'} ` +
        `${db.EngineVersion ?? 'version unknown'}, ${db.DBInstanceStatus ?? 'status unknown'}) ` +
        `is left from an earlier upgrade or restore. ${leftover.harm} Delete "${leftover.name}" ` +
        'after a final snapshot, or rename it, then run the upgrade again.',
    ];
  });
  if (problems.length > 0) return fail(name, ...problems);
  return pass(name, `no DB instance named "${oldBlue}" or "${failedWriter}"`);
}

/** The proxy EngineFamily that can target each engine's instances. */
const PROXY_ENGINE_FAMILY: Record<InstanceEngine, string> = {
  postgres: 'POSTGRESQL',
  mysql: 'MYSQL',
};

async function rdsProxy(rds: RDSClient, engine: InstanceEngine, id: string): Promise<Outcome> {
  const name = 'rds-proxy';
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-blue-green.html
  // "RDS Proxy supports Blue/Green Deployments for RDS for PostgreSQL, RDS for MySQL and RDS
  // for MariaDB." At switchover "Amazon RDS runs additional guardrail checks to validate that
  // the proxy can successfully reach both blue and green environments and is ready for
  // switchover." Limitation: "Your blue instance must already be a target of the proxy before
  // you create the blue/green deployment. You cannot add a blue instance to an RDS Proxy after
  // a blue/green deployment has been created for that instance."
  // So a proxy in front of blue is allowed, but it must be able to reach blue now: a proxy
  // that cannot would fail the switchover guardrail after green was built. (The general
  // limitations page still lists "Amazon RDS Proxy" among features blue/green does not support;
  // the proxy's own page above is the specific one, and the same for PostgreSQL and MySQL.)
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
  const proxies = await proxiesOf(rds, PROXY_ENGINE_FAMILY[engine]);
  const problems: string[] = [];
  const seen: string[] = [];
  for (const proxy of proxies) {
    const proxyName = proxy.DBProxyName ?? '';
    const isBlue = (t: DBProxyTarget) => t.Type === 'RDS_INSTANCE' && t.RdsResourceId === id;
    for (const target of await proxyTargetsOf(rds, proxyName, isBlue)) {
      const health = target.TargetHealth;
      const state = health?.State ?? 'UNKNOWN';
      seen.push(`"${proxyName}" (${state})`);
      if (proxy.Status !== 'available' || state !== 'AVAILABLE') {
        const why = [health?.Reason, health?.Description].filter((x) => x).join(': ');
        problems.push(
          `RDS Proxy "${proxyName}" (status ${proxy.Status ?? 'unknown'}) has "${id}" as a target ` +
            `in state ${state}${why ? ` (${why})` : ''}, not AVAILABLE; the switchover checks that ` +
            `the proxy reaches blue and green. Fix the proxy's access to "${id}" (security groups, ` +
            'secret, IAM role) or remove the proxy target, then start again.',
        );
      }
    }
  }
  if (problems.length > 0) return fail(name, ...problems);
  if (seen.length > 0) return pass(name, `"${id}" is a target of RDS Proxy ${seen.join(', ')}`);
  return pass(name, `no RDS Proxy targets "${id}"; do not add it to one until the upgrade is over`);
}

/** The proxy EngineFamily that can target each Aurora engine's clusters. */
const CLUSTER_PROXY_ENGINE_FAMILY: Record<string, string> = {
  'aurora-postgresql': 'POSTGRESQL',
  'aurora-mysql': 'MYSQL',
};

async function clusterProxy(
  rds: RDSClient,
  engine: DatabaseEngine,
  id: string,
  cluster: DBCluster | undefined,
): Promise<Outcome> {
  const name = 'rds-proxy';
  // AWS's Aurora pages disagree. "Limitations and considerations" lists "Amazon RDS Proxy"
  // among the features blue/green deployments "aren't supported for"; the overview now says
  // "Amazon Aurora Blue/Green Deployments support Amazon RDS Proxy", and the switching page
  // has a "Switchover when using Amazon RDS Proxy" section this runbook was not written
  // against. So fail closed: any proxy that targets the cluster, or one of its instances,
  // stops the upgrade until a person has read the current page and removed the target.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-general
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-overview.html
  // A proxy of a cluster has a TRACKED_CLUSTER target named by the cluster identifier, and
  // RDS_INSTANCE targets for its instances.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBProxyTarget.html
  const members = new Set(
    (cluster?.DBClusterMembers ?? []).flatMap((m) =>
      m.DBInstanceIdentifier ? [m.DBInstanceIdentifier] : [],
    ),
  );
  const ofBlue = (t: DBProxyTarget) =>
    (t.Type === 'TRACKED_CLUSTER' && t.RdsResourceId === id) ||
    (t.Type === 'RDS_INSTANCE' && members.has(t.RdsResourceId ?? ''));
  const family = CLUSTER_PROXY_ENGINE_FAMILY[engine] ?? '';
  const problems: string[] = [];
  for (const proxy of await proxiesOf(rds, family)) {
    const proxyName = proxy.DBProxyName ?? '';
    const targets = await proxyTargetsOf(rds, proxyName, ofBlue);
    if (targets.length === 0) continue;
    const named = targets.map((t) => `${t.RdsResourceId ?? '?'} (${t.Type ?? '?'})`).join(', ');
    problems.push(
      `RDS Proxy "${proxyName}" targets ${named} of DB cluster "${id}". AWS's Aurora ` +
        'blue/green pages disagree on whether a proxy is supported, so this runbook does not ' +
        `upgrade a cluster behind one. Remove "${id}" from the proxy's target group (or ` +
        'upgrade it outside this runbook), then start again.',
    );
  }
  if (problems.length > 0) return fail(name, ...problems);
  return pass(name, `no RDS Proxy targets "${id}" or its instances`);
}

/** Every proxy of one EngineFamily: the only ones that can target the engine's instances. */
async function proxiesOf(rds: RDSClient, engineFamily: string): Promise<DBProxy[]> {
  // DescribeDBProxies pages by Marker (the SDK has no paginator for it); a proxy connects only
  // to databases of its EngineFamily.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBProxies.html
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBProxy.html
  const proxies: DBProxy[] = [];
  let marker: string | undefined;
  do {
    const page = await rds.send(new DescribeDBProxiesCommand({ Marker: marker }));
    proxies.push(...(page.DBProxies ?? []).filter((p) => p.EngineFamily === engineFamily));
    marker = page.Marker;
  } while (marker);
  return proxies;
}

/** The targets of one proxy that `matches` keeps; none if the proxy is gone. */
async function proxyTargetsOf(
  rds: RDSClient,
  proxyName: string,
  matches: (target: DBProxyTarget) => boolean,
): Promise<DBProxyTarget[]> {
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBProxyTargets.html
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBProxyTarget.html
  const targets: DBProxyTarget[] = [];
  try {
    for await (const page of paginateDescribeDBProxyTargets(
      { client: rds },
      { DBProxyName: proxyName },
    )) {
      for (const t of page.Targets ?? []) {
        if (matches(t)) targets.push(t);
      }
    }
  } catch (err) {
    // Deleted between the two calls: it targets nothing.
    if (!isError(err, 'DBProxyNotFoundFault', 'DBProxyNotFound')) throw err;
  }
  return targets;
}

async function singleFlight(
  sfn: SFNClient,
  stateMachineArn: string,
  executionArn: string,
): Promise<Outcome> {
  const name = 'single-flight';
  // ListExecutions pages with nextToken (up to 1000 a page) and is eventually consistent, so
  // this is a best-effort guard against two upgrades at once.
  // https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html
  const running: { arn: string; started: number }[] = [];
  try {
    for await (const page of paginateListExecutions(
      { client: sfn },
      { stateMachineArn, statusFilter: 'RUNNING' },
    )) {
      for (const e of page.executions ?? []) {
        running.push({ arn: e.executionArn ?? '(no ARN)', started: e.startDate?.getTime() ?? 0 });
      }
    }
  } catch (err) {
    if (!isError(err, 'StateMachineDoesNotExist')) throw err;
    return fail(
      name,
      `State machine ${stateMachineArn} was not found, so other runs cannot be ruled out. ` +
        'Start the upgrade from the deployed state machine.',
    );
  }
  // The oldest run goes on and every later one stops, so two runs started together do not
  // turn each other away. A run missing from the list (the list lags) yields to every other.
  const self = running.find((e) => e.arn === executionArn);
  const before = (e: { arn: string; started: number }) =>
    self === undefined ||
    e.started < self.started ||
    (e.started === self.started && e.arn < self.arn);
  const others = running.filter((e) => e.arn !== executionArn && before(e)).map((e) => e.arn);
  if (others.length > 0) {
    return fail(
      name,
      `Another upgrade is running: ${others.join(', ')}. Only one may run at a time, and the one started first goes on; ` +
        'let it finish (or stop it in the Step Functions console), then start again.',
    );
  }
  return pass(name, 'no other upgrade is running');
}

async function queueExists(sqs: SQSClient, queue: UpgradePlan['queues'][number]) {
  const name = `queue:${queue.name}`;
  try {
    const out = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: ['QueueArn'] }),
    );
    const arn = out.Attributes?.QueueArn;
    if (arn !== queue.arn) {
      return fail(
        name,
        `Queue "${queue.name}" at ${queue.url} has ARN ${arn ?? '(none)'}, but the plan says ` +
          `${queue.arn}. Deploy the stacks so the state machine's plan matches the queues, then start again.`,
      );
    }
    return pass(name, `${queue.url} exists`);
  } catch (err) {
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html#API_GetQueueAttributes_Errors
    if (!isError(err, 'QueueDoesNotExist', 'AWS.SimpleQueueService.NonExistentQueue')) throw err;
    return fail(
      name,
      `Buffer queue "${queue.name}" (${queue.url}) does not exist. ` +
        'Deploy the QuietUpgradeBuffers stack, then start again.',
    );
  }
}

async function mappingEnabled(lambda: LambdaClient, mapping: UpgradePlan['mappings'][number]) {
  const name = `mapping:${mapping.name}`;
  try {
    const out = await lambda.send(new GetEventSourceMappingCommand({ UUID: mapping.uuid }));
    // States: Creating, Enabling, Enabled, Disabling, Disabled, Updating, Deleting.
    // https://docs.aws.amazon.com/lambda/latest/api/API_GetEventSourceMapping.html
    if (out.State !== 'Enabled') {
      return fail(
        name,
        `The "${mapping.name}" consumer's event source mapping ${mapping.uuid} is "${out.State}", ` +
          'not "Enabled": something else has paused it (an unfinished upgrade or an operator). ' +
          `Find out why, enable it (aws lambda update-event-source-mapping --uuid ${mapping.uuid} --enabled), then start again.`,
      );
    }
    return pass(name, `${mapping.uuid} is Enabled`);
  } catch (err) {
    if (!isError(err, 'ResourceNotFoundException')) throw err;
    return fail(
      name,
      `The "${mapping.name}" consumer's event source mapping ${mapping.uuid} was not found. ` +
        'Deploy the QuietUpgradeBuffers stack and the state machine together, then start again.',
    );
  }
}

async function listenerExists(elb: ElasticLoadBalancingV2Client, listenerArn: string) {
  const name = 'listener';
  try {
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeListeners.html#API_DescribeListeners_Errors
    await elb.send(new DescribeListenersCommand({ ListenerArns: [listenerArn] }));
    return pass(name, `${listenerArn} exists`);
  } catch (err) {
    if (!isError(err, 'ListenerNotFoundException', 'ListenerNotFound')) throw err;
    return fail(
      name,
      `Load balancer listener ${listenerArn} was not found, so maintenance cannot be turned on. ` +
        'Check edge.existingListener in cdk.json (or deploy QuietUpgradeEdge), then start again.',
    );
  }
}
