// AWS API actions called: rds:DescribeDBInstances, rds:CopyDBParameterGroup,
// rds:ModifyDBParameterGroup, rds:ModifyDBInstance, rds:RebootDBInstance; for an Aurora plan
// those of ./restore-cluster.ts.
import {
  CopyDBParameterGroupCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  RebootDBInstanceCommand,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { isClusterEngine } from '../shared/cluster';
import { type ReadOnlyChange, restoreOldBlueCluster } from './restore-cluster';
import {
  FAILED_WRITER_SUFFIX,
  FENCE_GROUP_SUFFIX,
  instanceEngine,
  OLD_BLUE_SUFFIX,
  READ_ONLY_PARAMETER,
  RESTORE_GROUP_SUFFIX,
  STUCK_INSTANCE_STATUSES,
  type UpgradePlan,
} from '../shared/upgrade-plan';

export { FAILED_WRITER_SUFFIX, OLD_BLUE_SUFFIX, READ_ONLY_PARAMETER } from '../shared/upgrade-plan';
/**
 * What this run has done that RDS does not show afterwards: whether it rebooted the failed
 * writer with the fence group, and old blue with the restore group. A reboot is always part
 * of the change: a group attached to an instance applies only after a reboot, and AWS names
 * the reboot as the step that lifts old blue's read-only state.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.Associating.html
 */
export interface RestoreProgress {
  fenced: boolean;
  unlocked: boolean;
}

export interface RestoreOldBlueEvent {
  /** The calling execution's ARN ($$.Execution.Id); checked by the handler. */
  execution: string;
  plan: UpgradePlan;
  /** The previous call's result; absent on the first call. */
  progress?: Partial<RestoreProgress>;
}

export type RestoreStep =
  | 'fence-prepared'
  | 'fence-old-blue'
  | 'fenced'
  | 'fence-failed-writer'
  | 'rename-failed-writer'
  | 'make-old-blue-writable'
  | 'rename-old-blue'
  | 'wait'
  | 'restored';

export interface RestoreOldBlueResult extends RestoreProgress {
  /** True once the old blue is the available writer under the original name. */
  done: boolean;
  step: RestoreStep;
  /** What was done or is awaited, as a sentence. */
  detail: string;
}

/** Without `engine`, a PostgreSQL plan (plans from before the runbook had engines). */
export type RestorePlan = Pick<
  UpgradePlan,
  'sourceIdentifier' | 'currentEngineVersion' | 'targetEngineVersion'
> &
  Partial<Pick<UpgradePlan, 'engine'>>;

/**
 * Moves the database back to the old blue after the new writer failed verification. The
 * runbook deletes the blue/green deployment first (renaming its members while it exists is
 * undocumented). Then, in order: the failed writer gets a parameter group with the engine's
 * READ_ONLY_PARAMETER at 1, and a reboot that ends its sessions, so that clients still
 * reaching it through a cached address cannot write there; it is renamed out of the way; the
 * old blue gets the parameter at 0 and a reboot, which AWS names for both engines ("set ... to
 * 0 and reboot the DB instance", READ_ONLY_PARAMETER); it takes the original name.
 *
 * How far the fence holds differs by engine. PostgreSQL's default_transaction_read_only is
 * only a default: a session can still override it, which AWS advises against. MySQL's
 * read_only is server-wide, and "the server permits no client updates except from users who
 * have the CONNECTION_ADMIN privilege (or the deprecated SUPER privilege)"; RDS's master user
 * is given neither in AWS's list of its privileges.
 * https://dev.mysql.com/doc/refman/8.4/en/server-system-variables.html#sysvar_read_only
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.MasterAccounts.html
 *
 * Each call looks at the real state and does at most the next step, so it can be called
 * any number of times, including after a crash at any point; it never repeats a rename,
 * because an instance mid-rename is in status `renaming` (under either name) and is waited for.
 * Throws, with what it found and what to do, when the state is not one it can move on from.
 */
export async function restoreOldBlue(
  rds: RDSClient,
  plan: RestorePlan,
  previous: Partial<RestoreProgress> = {},
): Promise<RestoreOldBlueResult> {
  // Aurora: the same steps on the DB cluster (./restore-cluster.ts).
  const engine = plan.engine ?? 'postgres';
  if (isClusterEngine(engine)) return restoreOldBlueCluster(rds, { ...plan, engine }, previous);
  const parameter = READ_ONLY_PARAMETER[instanceEngine(plan.engine ?? 'postgres')];
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

  const writer = await describeInstance(rds, name);
  if (writer !== null) {
    const version = writer.EngineVersion;
    const status = writer.DBInstanceStatus ?? 'unknown';
    // During a rename the old name can still resolve to the instance, in status `renaming`.
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html
    if (status === 'renaming') {
      return wait(`${name} (${version}) is being renamed; waiting for the rename to finish`);
    }
    if (version === target) {
      checkNotStuck(writer, name, 'the failed new writer');
      if (status !== 'available') {
        return wait(
          `${name} (${version}, the failed new writer) is ${status}; waiting for it to be ` +
            `available before fencing and renaming it`,
        );
      }
      const failed = await describeInstance(rds, failedName);
      if (failed !== null) {
        if (failed.DbiResourceId === writer.DbiResourceId) {
          // The same instance answering to both names: a rename is settling.
          return wait(`${name} is being renamed to ${failedName}; waiting for it to finish`);
        }
        throw new Error(
          `cannot restore the old blue: ${name} runs ${version} (the failed new writer) but ` +
            `${failedName} already exists (${failed.EngineVersion}, ${failed.DBInstanceStatus}), ` +
            `so ${name} cannot be renamed out of the way. An operator must delete or rename ` +
            `${failedName}, then run the restore again.`,
        );
      }
      // Never touch the writer unless there is an old blue to take its place.
      const old = await describeInstance(rds, oldName);
      if (old === null || old.EngineVersion !== current) {
        const found =
          old === null ? `${oldName} does not exist` : `${oldName} runs ${old.EngineVersion}`;
        throw new Error(
          `cannot restore the old blue: ${name} runs ${version} (the failed new writer) but ` +
            `${found}, so there is no old blue (${current}) to restore; ${name} was left as ` +
            `it is. An operator must decide whether to fix ${name} forward or restore ${name} ` +
            `from a backup.`,
        );
      }
      // Nor fence it while old blue is in a state it will not leave: nothing could take over.
      checkNotStuck(old, oldName, 'the old blue');
      return readOnlyThenRename(rds, writer, progress, {
        id: name,
        parameter,
        value: '1',
        flag: 'fenced',
        step: 'fence-failed-writer',
        rebooting: `rebooting the failed new writer ${name} so that its read-only parameter group applies and its sessions end`,
        newName: failedName,
        renameStep: 'rename-failed-writer',
        renaming: `renaming the failed new writer ${name} (${version}, now read-only) to ${failedName}`,
      });
    }
    if (version === current) {
      checkNotStuck(writer, name, 'the restored writer');
      if (status !== 'available') {
        return wait(
          `${name} (${version}, the old blue) is ${status}; waiting for it to be available`,
        );
      }
      return {
        done: true,
        step: 'restored',
        detail: `${name} is the old blue again (${version}) and available`,
        ...progress,
      };
    }
    throw new Error(
      `cannot restore the old blue: ${name} runs ${version} (status ${status}), neither the ` +
        `old version ${current} nor the new ${target}. An operator must find out which ` +
        `instance is the writer before anything else is changed.`,
    );
  }

  const old = await describeInstance(rds, oldName);
  if (old === null) {
    const failed = await describeInstance(rds, failedName);
    const failedNote =
      failed === null
        ? `${failedName} does not exist either`
        : `${failedName} exists (${failed.EngineVersion}, ${failed.DBInstanceStatus})`;
    throw new Error(
      `cannot restore the old blue: neither ${name} nor ${oldName} exists, and ${failedNote}. ` +
        `There is no writer under ${name}. An operator must find the old blue (the DB ` +
        `instance running ${current}) and rename it to ${name}, or restore ${name} from its ` +
        `latest backup.`,
    );
  }

  // The original name is free and the old blue is still `<name>-old1`.
  const status = old.DBInstanceStatus ?? 'unknown';
  if (old.EngineVersion !== current) {
    throw new Error(
      `cannot restore the old blue: ${name} does not exist and ${oldName} runs ` +
        `${old.EngineVersion}, not the old version ${current}. An operator must find out ` +
        `which instance holds the production data and name it ${name}.`,
    );
  }
  checkNotStuck(old, oldName, 'the old blue');
  if (status !== 'available') {
    return wait(`${oldName} (the old blue) is ${status}; waiting for it to be available`);
  }
  return readOnlyThenRename(rds, old, progress, {
    id: oldName,
    parameter,
    value: '0',
    flag: 'unlocked',
    step: 'make-old-blue-writable',
    rebooting: `rebooting the old blue ${oldName} so that ${parameter}=0 applies`,
    newName: name,
    renameStep: 'rename-old-blue',
    renaming: `renaming the old blue ${oldName} (${current}, now writable) to ${name}`,
  });
}

/**
 * One instance's half of the restore, the same for the failed writer (value 1, then renamed
 * `-failed1`) and for old blue (value 0, then renamed to the original name): attach the
 * group copy; reboot it once this run has (`progress[flag]`), or again while the change is
 * pending a reboot; rename it only when that group is in-sync. One step per call.
 */
async function readOnlyThenRename(
  rds: RDSClient,
  instance: DBInstance,
  progress: RestoreProgress,
  at: Omit<ReadOnlyChange, 'task'> & { newName: string; renameStep: RestoreStep; renaming: string },
): Promise<RestoreOldBlueResult> {
  const result = (step: RestoreStep, detail: string, changed: Partial<RestoreProgress> = {}) => ({
    done: false,
    step,
    detail,
    ...progress,
    ...changed,
  });
  const suffix = at.value === '1' ? FENCE_GROUP_SUFFIX : RESTORE_GROUP_SUFFIX;
  const attached = await useGroupCopy(rds, at.id, instance, suffix, at.parameter, at.value);
  if (attached !== null) return result(at.step, attached, { [at.flag]: false });
  const applied = appliedState(instance);
  if (applied === 'applying') {
    return result('wait', `parameter changes are being applied to ${at.id}; waiting`);
  }
  if (!progress[at.flag] || applied === 'pending-reboot') {
    await reboot(rds, at.id);
    return result(at.step, at.rebooting, { [at.flag]: true });
  }
  if (applied !== 'in-sync') {
    return result('wait', `the parameter group of ${at.id} is ${applied}; waiting for in-sync`);
  }
  // NewDBInstanceIdentifier with ApplyImmediately renames at once, not in the next window.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
  await rds.send(
    new ModifyDBInstanceCommand({
      DBInstanceIdentifier: at.id,
      NewDBInstanceIdentifier: at.newName,
      ApplyImmediately: true,
    }),
  );
  return result(at.renameStep, at.renaming);
}

/**
 * Attaches `<group><suffix>`, a copy of the instance's parameter group with `parameter` (the
 * engine's READ_ONLY_PARAMETER) set to `value`, unless it is attached already (null then).
 * A copy left by an earlier restore is reused, with the value set again. The copy has the
 * family of the group it copies, so it fits the instance's engine version.
 */
async function useGroupCopy(
  rds: RDSClient,
  id: string,
  instance: DBInstance,
  suffix: string,
  parameter: string,
  value: '0' | '1',
): Promise<string | null> {
  const group = instance.DBParameterGroups?.[0]?.DBParameterGroupName;
  if (group === undefined) {
    throw new Error(
      `cannot restore the old blue: ${id} has no DB parameter group to copy. An operator must ` +
        `set ${parameter}=${value} on it, reboot it and run the restore again.`,
    );
  }
  if (group.endsWith(suffix)) return null;
  const copy = `${group}${suffix}`;
  try {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBParameterGroup.html
    await rds.send(
      new CopyDBParameterGroupCommand({
        SourceDBParameterGroupIdentifier: group,
        TargetDBParameterGroupIdentifier: copy,
        TargetDBParameterGroupDescription: `${group} with ${parameter}=${value}, for a restore after a failed upgrade`,
      }),
    );
  } catch (err) {
    if ((err as { name?: string }).name !== 'DBParameterGroupAlreadyExistsFault') throw err;
  }
  // Both engines' parameters are dynamic (READ_ONLY_PARAMETER), which "immediate" requires;
  // the reboot that follows the attach applies the group either way.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBParameterGroup.html
  await rds.send(
    new ModifyDBParameterGroupCommand({
      DBParameterGroupName: copy,
      Parameters: [{ ParameterName: parameter, ParameterValue: value, ApplyMethod: 'immediate' }],
    }),
  );
  await rds.send(
    new ModifyDBInstanceCommand({
      DBInstanceIdentifier: id,
      DBParameterGroupName: copy,
      ApplyImmediately: true,
    }),
  );
  return `attaching ${copy} (${parameter}=${value}) to ${id} in place of ${group}`;
}

/** The instance's parameter group apply status. */
function appliedState(instance: DBInstance): string {
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBParameterGroupStatus.html
  return instance.DBParameterGroups?.[0]?.ParameterApplyStatus ?? 'unknown';
}

async function reboot(rds: RDSClient, id: string): Promise<void> {
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBInstance.html
  await rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: id }));
}

function checkNotStuck(instance: DBInstance, name: string, role: string): void {
  const status = instance.DBInstanceStatus ?? 'unknown';
  if (STUCK_INSTANCE_STATUSES.has(status)) {
    throw new Error(
      `cannot restore the old blue: ${name} (${role}, ${instance.EngineVersion}) is ${status}, ` +
        `which it does not leave on its own. An operator must bring it back to available, ` +
        `then run the restore again.`,
    );
  }
}

/** The instance, or null when DescribeDBInstances answers DBInstanceNotFound. */
export async function describeInstance(
  rds: RDSClient,
  identifier: string,
): Promise<DBInstance | null> {
  try {
    const { DBInstances = [] } = await rds.send(
      new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }),
    );
    return DBInstances[0] ?? null;
  } catch (err) {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html#API_DescribeDBInstances_Errors
    if ((err as { name?: string }).name === 'DBInstanceNotFoundFault') return null;
    throw err;
  }
}
