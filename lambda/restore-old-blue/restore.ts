// AWS API actions called: rds:DescribeDBInstances, rds:DescribeDBParameters,
// rds:ModifyDBParameterGroup, rds:RebootDBInstance, rds:ModifyDBInstance.
import {
  DescribeDBInstancesCommand,
  DescribeDBParametersCommand,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  RebootDBInstanceCommand,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { STUCK_INSTANCE_STATUSES, type UpgradePlan } from '../shared/upgrade-plan';

/**
 * After a switchover RDS renames the old blue to `<name>-old1`; it stays read-only until its
 * `default_transaction_read_only` is 0 and it is rebooted.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-after
 */
export const OLD_BLUE_SUFFIX = '-old1';
/** The name the failed new writer is moved to, so the old blue can take the original name. */
export const FAILED_WRITER_SUFFIX = '-failed1';
export const READ_ONLY_PARAMETER = 'default_transaction_read_only';

export interface RestoreOldBlueEvent {
  plan: UpgradePlan;
}

export type RestoreStep =
  'rename-failed-writer' | 'make-old-blue-writable' | 'rename-old-blue' | 'wait' | 'restored';

export interface RestoreOldBlueResult {
  /** True once the old blue is the available writer under the original name. */
  done: boolean;
  step: RestoreStep;
  /** What was done or is awaited, as a sentence. */
  detail: string;
}

export type RestorePlan = Pick<
  UpgradePlan,
  'sourceIdentifier' | 'currentEngineVersion' | 'targetEngineVersion'
>;

/**
 * Moves the database back to the old blue after the new writer failed verification: renames
 * the failed writer out of the way, makes the old blue writable, and gives it the original
 * name. Each call looks at the real state and does at most the next step, so it can be called
 * any number of times, including after a crash at any point; it never repeats a rename,
 * because an instance mid-rename is in status `renaming` (under either name) and is waited for.
 * Throws, with what it found and what to do, when the state is not one it can move on from.
 */
export async function restoreOldBlue(
  rds: RDSClient,
  plan: RestorePlan,
): Promise<RestoreOldBlueResult> {
  const name = plan.sourceIdentifier;
  const oldName = `${name}${OLD_BLUE_SUFFIX}`;
  const failedName = `${name}${FAILED_WRITER_SUFFIX}`;
  const { currentEngineVersion: current, targetEngineVersion: target } = plan;

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
            `available before renaming it to ${failedName}`,
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
      // Never move the writer out of the way unless there is an old blue to take its place.
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
      // NewDBInstanceIdentifier with ApplyImmediately renames at once, not in the next window.
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
      await rds.send(
        new ModifyDBInstanceCommand({
          DBInstanceIdentifier: name,
          NewDBInstanceIdentifier: failedName,
          ApplyImmediately: true,
        }),
      );
      return {
        done: false,
        step: 'rename-failed-writer',
        detail: `renaming the failed new writer ${name} (${version}) to ${failedName}`,
      };
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
  return restoreFromOldBlue(rds, plan, old);
}

/** Step b: the original name is free and the old blue is still `<name>-old1`. */
async function restoreFromOldBlue(
  rds: RDSClient,
  plan: RestorePlan,
  old: DBInstance,
): Promise<RestoreOldBlueResult> {
  const name = plan.sourceIdentifier;
  const oldName = `${name}${OLD_BLUE_SUFFIX}`;
  const status = old.DBInstanceStatus ?? 'unknown';
  if (old.EngineVersion !== plan.currentEngineVersion) {
    throw new Error(
      `cannot restore the old blue: ${name} does not exist and ${oldName} runs ` +
        `${old.EngineVersion}, not the old version ${plan.currentEngineVersion}. An operator ` +
        `must find out which instance holds the production data and name it ${name}.`,
    );
  }
  checkNotStuck(old, oldName, 'the old blue');
  if (status !== 'available') {
    return wait(`${oldName} (the old blue) is ${status}; waiting for it to be available`);
  }
  const group = old.DBParameterGroups?.[0];
  const groupName = group?.DBParameterGroupName;
  if (groupName === undefined) {
    throw new Error(
      `cannot make ${oldName} writable: it has no DB parameter group. An operator must set ` +
        `${READ_ONLY_PARAMETER}=0 on it, reboot it and rename it to ${name}.`,
    );
  }
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBParameterGroupStatus.html
  const applyStatus = group?.ParameterApplyStatus ?? 'unknown';
  if (applyStatus === 'applying') {
    return wait(`parameter group ${groupName} is being applied to ${oldName}; waiting`);
  }
  const value = await parameterValue(rds, groupName, READ_ONLY_PARAMETER);
  if (!isOff(value)) {
    // A default parameter group cannot be modified.
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.html
    if (groupName.startsWith('default.')) {
      throw new Error(
        `cannot make ${oldName} writable: it uses the default parameter group ${groupName}, ` +
          `which cannot be modified. An operator must give it a custom parameter group with ` +
          `${READ_ONLY_PARAMETER}=0, reboot it and rename it to ${name}.`,
      );
    }
    // default_transaction_read_only is dynamic: ApplyMethod immediate takes effect without a
    // reboot; the reboot ends sessions that started read-only.
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBParameterGroup.html
    await rds.send(
      new ModifyDBParameterGroupCommand({
        DBParameterGroupName: groupName,
        Parameters: [
          { ParameterName: READ_ONLY_PARAMETER, ParameterValue: '0', ApplyMethod: 'immediate' },
        ],
      }),
    );
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBInstance.html
    await rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: oldName }));
    return {
      done: false,
      step: 'make-old-blue-writable',
      detail:
        `set ${READ_ONLY_PARAMETER}=0 (was ${JSON.stringify(value ?? null)}) in ${groupName} ` +
        `and rebooting ${oldName}`,
    };
  }
  if (applyStatus === 'pending-reboot') {
    // Nothing reboots it for us (for example a crash right after the parameter change).
    await rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: oldName }));
    return {
      done: false,
      step: 'make-old-blue-writable',
      detail: `rebooting ${oldName} to apply pending changes of ${groupName}`,
    };
  }
  if (applyStatus !== 'in-sync') {
    return wait(
      `parameter group ${groupName} on ${oldName} is ${applyStatus}; waiting for in-sync`,
    );
  }
  await rds.send(
    new ModifyDBInstanceCommand({
      DBInstanceIdentifier: oldName,
      NewDBInstanceIdentifier: name,
      ApplyImmediately: true,
    }),
  );
  return {
    done: false,
    step: 'rename-old-blue',
    detail: `renaming the old blue ${oldName} (${plan.currentEngineVersion}) to ${name}`,
  };
}

function wait(detail: string): RestoreOldBlueResult {
  return { done: false, step: 'wait', detail };
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

function isOff(value: string | undefined): boolean {
  return value !== undefined && ['0', 'off', 'false'].includes(value.trim().toLowerCase());
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

/** One parameter's value in a DB parameter group, from any source; paginated. */
async function parameterValue(
  rds: RDSClient,
  groupName: string,
  parameter: string,
): Promise<string | undefined> {
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBParameters.html
  let marker: string | undefined;
  do {
    const page = await rds.send(
      new DescribeDBParametersCommand({ DBParameterGroupName: groupName, Marker: marker }),
    );
    const found = page.Parameters?.find((p) => p.ParameterName === parameter);
    if (found !== undefined) return found.ParameterValue;
    marker = page.Marker;
  } while (marker !== undefined);
  return undefined;
}
