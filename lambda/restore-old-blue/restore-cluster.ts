// AWS API actions called: rds:DescribeDBClusters, rds:DescribeDBInstances (the writer
// instances), rds:CopyDBClusterParameterGroup, rds:ModifyDBClusterParameterGroup,
// rds:ModifyDBCluster, rds:RebootDBInstance (the writer instances).
import {
  CopyDBClusterParameterGroupCommand,
  type DBCluster,
  DescribeDBInstancesCommand,
  ModifyDBClusterCommand,
  ModifyDBClusterParameterGroupCommand,
  RebootDBInstanceCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { describeCluster, writerOf } from '../shared/cluster';
import {
  FAILED_WRITER_SUFFIX,
  FENCE_GROUP_SUFFIX,
  OLD_BLUE_SUFFIX,
  READ_ONLY_PARAMETER,
  RESTORE_GROUP_SUFFIX,
  STUCK_CLUSTER_STATUSES,
  STUCK_INSTANCE_STATUSES,
  type UpgradePlan,
} from '../shared/upgrade-plan';
import type { RestoreOldBlueResult, RestoreProgress, RestoreStep } from './restore';

export type ClusterRestorePlan = Pick<
  UpgradePlan,
  'sourceIdentifier' | 'currentEngineVersion' | 'targetEngineVersion' | 'engine'
>;

/**
 * The restore of ./restore.ts for an Aurora plan, one level up: the names, the versions, the
 * parameter group and deletion protection are the DB cluster's, and the reboot is of its
 * writer instance. The same steps, in the same order, one per call: the failed writer cluster
 * gets a copy of its DB cluster parameter group with READ_ONLY_PARAMETER at 1 (`-fence`), its
 * writer is rebooted, and it is renamed `<id>-failed1`; the old blue cluster `<id>-old1` gets a
 * copy with 0 (`-restore`), its writer is rebooted, and it takes `<id>`.
 *
 * What AWS says, and what it does not:
 * - Old blue "only allows read operations until the writer instance is rebooted"; RDS renamed
 *   "the DB cluster and DB instances in the blue environment by appending `-oldn`".
 *   https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 * - The read-only parameters are cluster-level (READ_ONLY_PARAMETER), so the copies are DB
 *   cluster parameter groups. Cluster parameters apply to the instance that is rebooted: "Suppose
 *   that you reboot the writer DB instance in an Aurora cluster to apply changes to cluster
 *   parameters. Some or all of the reader DB instances might continue using the old parameter
 *   settings." Readers never take writes, so the writer is the one that matters.
 *   https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-mysql-survivable-replicas.html
 * - RebootDBCluster is not for Aurora ("Use this operation only for a non-Aurora Multi-AZ DB
 *   cluster"): the writer instance is rebooted with RebootDBInstance.
 *   https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBCluster.html
 * - A cluster rename: "When you change the DB cluster identifier, the DB cluster endpoints
 *   change. The endpoints of the DB instances in the DB cluster don't change." An older text
 *   said the instances' endpoints change too, and AWS does not say how long the cluster
 *   endpoint's DNS name takes to follow, nor whether the instances are renamed with the
 *   cluster. So nothing here goes by an instance's name (the writer is read from the cluster at
 *   each call, writerOf), the failed writer is read-only before it gives up the name (a client
 *   still reaching it through the old endpoint cannot write there, whenever the endpoint
 *   moves), and the state machine re-checks the writer through the endpoint afterwards.
 *   https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Modifying.html#Aurora.Modifying.Settings
 * - The instances keep their names: old blue's stay `...-old1` under the cluster `<id>`. Only
 *   the cluster name is what clients reach (its endpoint); renaming an instance is a reboot
 *   more per instance, which a restore under the maintenance page does not need.
 */
export async function restoreOldBlueCluster(
  rds: RDSClient,
  plan: ClusterRestorePlan,
  previous: Partial<RestoreProgress> = {},
): Promise<RestoreOldBlueResult> {
  const parameter = READ_ONLY_PARAMETER[plan.engine];
  const progress: RestoreProgress = {
    fenced: previous.fenced === true,
    unlocked: previous.unlocked === true,
  };
  const name = plan.sourceIdentifier;
  const oldName = `${name}${OLD_BLUE_SUFFIX}`;
  const failedName = `${name}${FAILED_WRITER_SUFFIX}`;
  const { currentEngineVersion: current, targetEngineVersion: target } = plan;
  const wait = (detail: string): RestoreOldBlueResult => ({
    done: false,
    step: 'wait',
    detail,
    ...progress,
  });

  const writer = await describeCluster(rds, name);
  if (writer !== undefined) {
    const version = writer.EngineVersion;
    const status = writer.Status ?? 'unknown';
    // "renaming: The DB cluster is being renamed because of a customer request to rename it."
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Aurora.Status
    if (status === 'renaming') {
      return wait(
        `DB cluster ${name} (${version}) is being renamed; waiting for the rename to finish`,
      );
    }
    if (version === target) {
      checkNotStuck(writer, name, 'the failed new writer');
      if (status !== 'available') {
        return wait(
          `DB cluster ${name} (${version}, the failed new writer) is ${status}; waiting for it ` +
            `to be available before fencing and renaming it`,
        );
      }
      const failed = await describeCluster(rds, failedName);
      if (failed !== undefined) {
        if (failed.DbClusterResourceId === writer.DbClusterResourceId) {
          // The same cluster answering to both names: a rename is settling.
          return wait(
            `DB cluster ${name} is being renamed to ${failedName}; waiting for it to finish`,
          );
        }
        throw new Error(
          `cannot restore the old blue: DB cluster ${name} runs ${version} (the failed new ` +
            `writer) but DB cluster ${failedName} already exists (${failed.EngineVersion}, ` +
            `${failed.Status}), so ${name} cannot be renamed out of the way. An operator must ` +
            `delete or rename ${failedName}, then run the restore again.`,
        );
      }
      // Never touch the writer unless there is an old blue to take its place.
      const old = await describeCluster(rds, oldName);
      if (old === undefined || old.EngineVersion !== current) {
        const found =
          old === undefined
            ? `DB cluster ${oldName} does not exist`
            : `DB cluster ${oldName} runs ${old.EngineVersion}`;
        throw new Error(
          `cannot restore the old blue: DB cluster ${name} runs ${version} (the failed new ` +
            `writer) but ${found}, so there is no old blue (${current}) to restore; ${name} ` +
            `was left as it is. An operator must decide whether to fix ${name} forward or ` +
            `restore it from a snapshot.`,
        );
      }
      checkNotStuck(old, oldName, 'the old blue');
      return readOnlyThenRename(rds, writer, progress, {
        task: 'restore',
        id: name,
        parameter,
        value: '1',
        flag: 'fenced',
        step: 'fence-failed-writer',
        rebooting: `rebooting the writer instance of the failed new writer DB cluster ${name} so that its read-only DB cluster parameter group applies and its sessions end`,
        newName: failedName,
        renameStep: 'rename-failed-writer',
        renaming: `renaming the failed new writer DB cluster ${name} (${version}, now read-only) to ${failedName}`,
      });
    }
    if (version === current) {
      checkNotStuck(writer, name, 'the restored writer');
      if (status !== 'available') {
        return wait(
          `DB cluster ${name} (${version}, the old blue) is ${status}; waiting for it to be available`,
        );
      }
      return {
        done: true,
        step: 'restored',
        detail: `DB cluster ${name} is the old blue again (${version}) and available`,
        ...progress,
      };
    }
    throw new Error(
      `cannot restore the old blue: DB cluster ${name} runs ${version} (status ${status}), ` +
        `neither the old version ${current} nor the new ${target}. An operator must find out ` +
        `which cluster is the writer before anything else is changed.`,
    );
  }

  const old = await describeCluster(rds, oldName);
  if (old === undefined) {
    const failed = await describeCluster(rds, failedName);
    const failedNote =
      failed === undefined
        ? `${failedName} does not exist either`
        : `${failedName} exists (${failed.EngineVersion}, ${failed.Status})`;
    throw new Error(
      `cannot restore the old blue: neither DB cluster ${name} nor ${oldName} exists, and ` +
        `${failedNote}. There is no writer under ${name}. An operator must find the old blue ` +
        `(the DB cluster running ${current}) and rename it to ${name}, or restore ${name} from ` +
        `a snapshot.`,
    );
  }
  const status = old.Status ?? 'unknown';
  if (old.EngineVersion !== current) {
    throw new Error(
      `cannot restore the old blue: DB cluster ${name} does not exist and ${oldName} runs ` +
        `${old.EngineVersion}, not the old version ${current}. An operator must find out ` +
        `which cluster holds the production data and name it ${name}.`,
    );
  }
  checkNotStuck(old, oldName, 'the old blue');
  if (status !== 'available') {
    return wait(
      `DB cluster ${oldName} (the old blue) is ${status}; waiting for it to be available`,
    );
  }
  return readOnlyThenRename(rds, old, progress, {
    task: 'restore',
    id: oldName,
    parameter,
    value: '0',
    flag: 'unlocked',
    step: 'make-old-blue-writable',
    rebooting: `rebooting the writer instance of the old blue DB cluster ${oldName} so that ${parameter}=0 applies`,
    newName: name,
    renameStep: 'rename-old-blue',
    renaming: `renaming the old blue DB cluster ${oldName} (${current}, now writable) to ${name}`,
  });
}

/**
 * One cluster's half of the restore: the read-only value applied (readOnlyApplied), then the
 * cluster renamed.
 */
async function readOnlyThenRename(
  rds: RDSClient,
  cluster: DBCluster,
  progress: RestoreProgress,
  at: ReadOnlyChange & { newName: string; renameStep: RestoreStep; renaming: string },
): Promise<RestoreOldBlueResult> {
  const pending = await readOnlyApplied(rds, cluster, progress, at);
  if (pending !== null) return pending;
  // "NewDBClusterIdentifier: The new DB cluster identifier for the DB cluster when renaming a
  // DB cluster"; without ApplyImmediately "changes to the DB cluster are applied during the next
  // maintenance window".
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
  await rds.send(
    new ModifyDBClusterCommand({
      DBClusterIdentifier: at.id,
      NewDBClusterIdentifier: at.newName,
      ApplyImmediately: true,
    }),
  );
  return { done: false, step: at.renameStep, detail: at.renaming, ...progress };
}

/** What a call is for, as its errors say: "cannot restore the old blue", "cannot fence ...". */
type Task = 'restore' | 'fence';

/** A read-only value to apply to a former writer (the restore's steps share it). */
export interface ReadOnlyChange {
  task: Task;
  id: string;
  /** The engine's READ_ONLY_PARAMETER. */
  parameter: string;
  value: '0' | '1';
  flag: keyof RestoreProgress;
  step: RestoreStep;
  rebooting: string;
}

/**
 * Makes a cluster's writer run READ_ONLY_PARAMETER at `value`: attach the DB cluster parameter
 * group copy; reboot the writer instance once this run has (`progress[flag]`), or again while
 * the writer's group is pending a reboot. Null once the writer is available and its group
 * in-sync after this run's reboot; otherwise the step taken or awaited.
 */
async function readOnlyApplied(
  rds: RDSClient,
  cluster: DBCluster,
  progress: RestoreProgress,
  at: ReadOnlyChange,
): Promise<RestoreOldBlueResult | null> {
  const result = (step: RestoreStep, detail: string, changed: Partial<RestoreProgress> = {}) => ({
    done: false,
    step,
    detail,
    ...progress,
    ...changed,
  });
  const suffix = at.value === '1' ? FENCE_GROUP_SUFFIX : RESTORE_GROUP_SUFFIX;
  const attached = await useGroupCopy(rds, at, cluster, suffix);
  if (attached !== null) return result(at.step, attached, { [at.flag]: false });
  // The writer is read from the cluster at each call: a failover may have moved it, and its
  // name says nothing (see above).
  const writerId = writerOf(cluster);
  if (writerId === undefined) {
    return result('wait', `DB cluster ${at.id} has no writer instance; waiting for one`);
  }
  const writer = await describeInstance(rds, writerId);
  const writerStatus = writer?.DBInstanceStatus ?? 'not found';
  if (STUCK_INSTANCE_STATUSES.has(writerStatus)) {
    throw new Error(
      `cannot ${at.task} the old blue: the writer instance ${writerId} of DB cluster ${at.id} is ` +
        `${writerStatus}, which it does not leave on its own. An operator must bring it back ` +
        `to available, then run the ${at.task} again.`,
    );
  }
  if (writerStatus !== 'available') {
    return result(
      'wait',
      `the writer instance ${writerId} of DB cluster ${at.id} is ${writerStatus}; waiting`,
    );
  }
  // "Specifies the status of the DB cluster parameter group for this member of the DB cluster";
  // AWS does not list the values for clusters: the instance's ParameterApplyStatus ones are
  // assumed (in-sync, pending-reboot, applying), and any other is waited on.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterMember.html
  const applied =
    cluster.DBClusterMembers?.find((m) => m.DBInstanceIdentifier === writerId)
      ?.DBClusterParameterGroupStatus ?? 'unknown';
  if (applied === 'applying') {
    return result('wait', `parameter changes are being applied to DB cluster ${at.id}; waiting`);
  }
  if (!progress[at.flag] || applied === 'pending-reboot') {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBInstance.html
    await rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: writerId }));
    return result(at.step, `${at.rebooting} (${writerId})`, { [at.flag]: true });
  }
  if (applied !== 'in-sync') {
    return result(
      'wait',
      `the DB cluster parameter group of ${at.id} is ${applied} on its writer ${writerId}; waiting for in-sync`,
    );
  }
  return null;
}

/**
 * Attaches `<cluster group><suffix>`, a copy of the cluster's DB cluster parameter group with
 * `parameter` set to `value`, unless it is attached already (null then). A copy left by an
 * earlier restore is reused, with the value set again.
 */
async function useGroupCopy(
  rds: RDSClient,
  at: Pick<ReadOnlyChange, 'task' | 'id' | 'parameter' | 'value'>,
  cluster: DBCluster,
  suffix: string,
): Promise<string | null> {
  const { id, parameter, value } = at;
  const group = cluster.DBClusterParameterGroup;
  if (group === undefined || group === '') {
    throw new Error(
      `cannot ${at.task} the old blue: DB cluster ${id} has no DB cluster parameter group to ` +
        `copy. An operator must set ${parameter}=${value} on it, reboot its writer instance ` +
        `and run the ${at.task} again.`,
    );
  }
  if (group.endsWith(suffix)) return null;
  const copy = await copyWithValue(rds, group, suffix, parameter, value);
  // "DBClusterParameterGroupName: The name of the DB cluster parameter group to use for the DB
  // cluster." https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
  await rds.send(
    new ModifyDBClusterCommand({
      DBClusterIdentifier: id,
      DBClusterParameterGroupName: copy,
      ApplyImmediately: true,
    }),
  );
  return `attaching ${copy} (${parameter}=${value}) to DB cluster ${id} in place of ${group}`;
}

/**
 * `<group><suffix>`, a copy of `group` with `parameter` at `value` (a copy left by an earlier
 * run is reused, with the value set again). Old blue may carry the fence already when the
 * restore makes it writable: a copy is named from the stack's group, not from another copy.
 */
async function copyWithValue(
  rds: RDSClient,
  group: string,
  suffix: string,
  parameter: string,
  value: '0' | '1',
): Promise<string> {
  const copy = `${group.replace(GROUP_COPY_SUFFIX, '')}${suffix}`;
  try {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterParameterGroup.html
    await rds.send(
      new CopyDBClusterParameterGroupCommand({
        SourceDBClusterParameterGroupIdentifier: group,
        TargetDBClusterParameterGroupIdentifier: copy,
        TargetDBClusterParameterGroupDescription: `${group} with ${parameter}=${value}, set by quiet-upgrade`,
      }),
    );
  } catch (err) {
    if ((err as { name?: string }).name !== 'DBParameterGroupAlreadyExistsFault') throw err;
  }
  // "pending-reboot": "You can use the pending-reboot value for both dynamic and static
  // parameters", and the restore reboots the writer after every attach anyway. "immediate"
  // would need the parameter to be dynamic in the cluster group, which AWS does not state for
  // Aurora; and on a copy left attached to another cluster (an earlier restore's -failed1)
  // it would change that cluster at once.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBClusterParameterGroup.html
  await rds.send(
    new ModifyDBClusterParameterGroupCommand({
      DBClusterParameterGroupName: copy,
      Parameters: [
        { ParameterName: parameter, ParameterValue: value, ApplyMethod: 'pending-reboot' },
      ],
    }),
  );
  return copy;
}

const GROUP_COPY_SUFFIX = new RegExp(`(${FENCE_GROUP_SUFFIX}|${RESTORE_GROUP_SUFFIX})$`);

function checkNotStuck(
  cluster: DBCluster,
  name: string,
  role: string,
  task: Task = 'restore',
): void {
  const status = cluster.Status ?? 'unknown';
  if (STUCK_CLUSTER_STATUSES.has(status)) {
    throw new Error(
      `cannot ${task} the old blue: DB cluster ${name} (${role}, ${cluster.EngineVersion}) is ` +
        `${status}, which it does not leave on its own. An operator must bring it back to ` +
        `available, then run the ${task} again.`,
    );
  }
}

async function describeInstance(rds: RDSClient, id: string) {
  try {
    const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    return out.DBInstances?.[0];
  } catch (err) {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html#API_DescribeDBInstances_Errors
    if ((err as { name?: string }).name === 'DBInstanceNotFoundFault') return undefined;
    throw err;
  }
}

/**
 * Before the page goes on: `<group>-fence`, blue's DB cluster parameter group copied with
 * READ_ONLY_PARAMETER at 1, attached to nothing yet, so that fencing old blue while users wait
 * (formerWriterInstance) is one call. Every `-fence` copy this app makes holds 1.
 */
export async function prepareFence(
  rds: RDSClient,
  plan: Pick<UpgradePlan, 'sourceIdentifier' | 'engine'>,
): Promise<{ group: string }> {
  const blue = await describeCluster(rds, plan.sourceIdentifier);
  const group = blue?.DBClusterParameterGroup;
  if (blue === undefined || group === undefined || group === '') {
    throw new Error(
      `DB cluster ${plan.sourceIdentifier} or its DB cluster parameter group was not found`,
    );
  }
  const copy = await copyWithValue(
    rds,
    group,
    FENCE_GROUP_SUFFIX,
    READ_ONLY_PARAMETER[plan.engine],
    '1',
  );
  return { group: copy };
}

/**
 * Attaches old blue's prepared `<group>-fence` (prepareFence) in one call; false when there
 * is none to attach, so the caller makes it.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html#API_ModifyDBCluster_Errors
 */
async function attachFence(rds: RDSClient, id: string, cluster: DBCluster): Promise<boolean> {
  const group = cluster.DBClusterParameterGroup ?? '';
  if (group === '') return false;
  if (group.endsWith(FENCE_GROUP_SUFFIX)) return true;
  try {
    await rds.send(
      new ModifyDBClusterCommand({
        DBClusterIdentifier: id,
        DBClusterParameterGroupName: `${group.replace(GROUP_COPY_SUFFIX, '')}${FENCE_GROUP_SUFFIX}`,
        ApplyImmediately: true,
      }),
    );
    return true;
  } catch (err) {
    if ((err as { name?: string }).name === 'DBClusterParameterGroupNotFoundFault') return false;
    throw err;
  }
}

/**
 * Old blue's own read-only state after an Aurora switchover, one step per call: the DB
 * cluster `<id>-old1` gets `<group>-fence` (READ_ONLY_PARAMETER at 1) and a reboot of its
 * writer; done once the writer runs it (available, group in-sync). Called before anything can
 * lift the read-only state RDS gave old blue:
 * - deleting the deployment: "After you delete a blue/green deployment, RDS removes read-only
 *   protections from the previous production DB cluster. If the read_only parameter is
 *   disabled for the DB cluster, it starts to allow write operations again." (For an RDS DB
 *   instance, "Deleting a blue/green deployment doesn't affect the blue environment", so the
 *   runbook fences only Aurora.)
 * - rebooting old blue's writer: it "only allows read operations until the writer instance is
 *   rebooted" (rehearsal assumption aurora-old-blue-unlock).
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-deleting.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 */
export async function fenceOldBlueCluster(
  rds: RDSClient,
  plan: Pick<UpgradePlan, 'sourceIdentifier' | 'engine'>,
  previous: Partial<RestoreProgress> = {},
): Promise<RestoreOldBlueResult> {
  const progress: RestoreProgress = { fenced: previous.fenced === true, unlocked: false };
  const oldName = `${plan.sourceIdentifier}${OLD_BLUE_SUFFIX}`;
  const old = await describeCluster(rds, oldName);
  if (old === undefined) {
    throw new Error(
      `cannot fence the old blue: DB cluster ${oldName} was not found, so the blue/green ` +
        `deployment is kept (deleting it lifts the read-only state of the previous production ` +
        `DB cluster, wherever it is now). An operator must find that cluster, set ` +
        `${READ_ONLY_PARAMETER[plan.engine]}=1 in its DB cluster parameter group and reboot its ` +
        `writer before deleting the deployment.`,
    );
  }
  checkNotStuck(old, oldName, 'the old blue', 'fence');
  const status = old.Status ?? 'unknown';
  if (status !== 'available') {
    return {
      done: false,
      step: 'wait',
      detail: `DB cluster ${oldName} (the old blue) is ${status}; waiting for it to be available`,
      ...progress,
    };
  }
  const pending = await readOnlyApplied(rds, old, progress, {
    task: 'fence',
    id: oldName,
    parameter: READ_ONLY_PARAMETER[plan.engine],
    value: '1',
    flag: 'fenced',
    step: 'fence-old-blue',
    rebooting: `rebooting the writer instance of the old blue DB cluster ${oldName} so that its read-only DB cluster parameter group applies`,
  });
  if (pending !== null) return pending;
  return {
    done: true,
    step: 'fenced',
    detail: `DB cluster ${oldName} (the old blue) runs ${old.DBClusterParameterGroup} (${READ_ONLY_PARAMETER[plan.engine]}=1) on its writer, so it stays read-only without the deployment`,
    ...progress,
  };
}

/**
 * Before the reboot that ends every session on a former writer cluster (`<id>-old1` or
 * `<id>-failed1`): its writer instance (a cluster's sessions that can write are its writer's;
 * readers refuse writes). Old blue gets `<group>-fence` first, so that the reboot applies it
 * whether or not the reboot also lifts the read-only state RDS gave it (fenceOldBlueCluster);
 * the failed writer carries its fence already (the restore). Throws when the cluster or its
 * writer is not found.
 */
export async function formerWriterInstance(
  rds: RDSClient,
  plan: Pick<UpgradePlan, 'sourceIdentifier' | 'engine'>,
  on: 'old-blue' | 'failed-writer',
): Promise<string> {
  const clusterId = `${plan.sourceIdentifier}${on === 'old-blue' ? OLD_BLUE_SUFFIX : FAILED_WRITER_SUFFIX}`;
  const cluster = await describeCluster(rds, clusterId);
  if (cluster === undefined) {
    throw new Error(`DB cluster ${clusterId} was not found, so its writer could not be rebooted`);
  }
  const writer = writerOf(cluster);
  if (writer === undefined) {
    throw new Error(`DB cluster ${clusterId} has no writer instance to reboot`);
  }
  if (on === 'old-blue' && !(await attachFence(rds, clusterId, cluster))) {
    const at = {
      task: 'fence',
      id: clusterId,
      parameter: READ_ONLY_PARAMETER[plan.engine],
      value: '1',
    } as const;
    await useGroupCopy(rds, at, cluster, FENCE_GROUP_SUFFIX);
  }
  return writer;
}
