import {
  CopyDBParameterGroupCommand,
  DBInstanceNotFoundFault,
  DBParameterGroupAlreadyExistsFault,
  DescribeDBInstancesCommand,
  InvalidDBInstanceStateFault,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  RDSClient,
  RebootDBInstanceCommand,
  type DBInstance,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  type RestoreOldBlueResult,
  type RestorePlan,
  type RestoreProgress,
  restoreOldBlue,
} from '../../../lambda/restore-old-blue/restore';

/** The same restore on RDS for MySQL: read_only instead of default_transaction_read_only. */
const S = 'platform-db';
const OLD = 'platform-db-old1';
const FAILED = 'platform-db-failed1';
const plan: RestorePlan = {
  sourceIdentifier: S,
  engine: 'mysql',
  currentEngineVersion: '8.0.42',
  targetEngineVersion: '8.4.5',
};
const GROUP = 'quiet-upgrade-parametersmysql80';
const GROUP84 = 'quiet-upgrade-parametersmysql84';
const RESTORE = `${GROUP}-restore`;
const FENCE = `${GROUP84}-fence`;
const PLATFORM = { require_secure_transport: '1', event_scheduler: 'OFF' };

const mock = mockClient(RDSClient);
const rds = new RDSClient({ region: 'eu-west-1' });

beforeEach(() => mock.reset());

type FakeInstance = DBInstance & { renameTo?: string; applied: string };

/**
 * An in-memory RDS, as in restore.test.ts: a group attached to an instance applies at its next
 * reboot, a rename also reboots, and changes finish on tick().
 */
class FakeRds {
  instances: FakeInstance[];
  readonly groups = new Map<string, Record<string, string>>([
    [GROUP, { ...PLATFORM }],
    [GROUP84, { ...PLATFORM }],
  ]);

  constructor(instances: DBInstance[]) {
    this.instances = instances.map((i) => ({
      ...i,
      applied: i.DBParameterGroups?.[0]?.DBParameterGroupName ?? '',
    }));
    mock.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
      const found = this.instances.find((i) => i.DBInstanceIdentifier === DBInstanceIdentifier);
      if (found === undefined) {
        throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
      }
      const { renameTo: _renameTo, applied: _applied, ...described } = found;
      return { DBInstances: [structuredClone(described)] };
    });
    mock.on(CopyDBParameterGroupCommand).callsFake((input) => {
      const to = String(input.TargetDBParameterGroupIdentifier);
      if (this.groups.has(to)) {
        throw new DBParameterGroupAlreadyExistsFault({ message: `${to} exists`, $metadata: {} });
      }
      this.groups.set(to, { ...this.groups.get(String(input.SourceDBParameterGroupIdentifier)) });
      return {};
    });
    mock.on(ModifyDBParameterGroupCommand).callsFake(({ DBParameterGroupName, Parameters }) => {
      const group = this.groups.get(String(DBParameterGroupName));
      if (group === undefined) throw new Error(`no group ${String(DBParameterGroupName)}`);
      for (const p of Parameters ?? []) group[String(p.ParameterName)] = String(p.ParameterValue);
      return { DBParameterGroupName };
    });
    mock.on(RebootDBInstanceCommand).callsFake(({ DBInstanceIdentifier }) => {
      const i = this.available(String(DBInstanceIdentifier));
      i.DBInstanceStatus = 'rebooting';
      return { DBInstance: i };
    });
    mock.on(ModifyDBInstanceCommand).callsFake((input) => {
      const i = this.available(String(input.DBInstanceIdentifier));
      if (input.DBParameterGroupName !== undefined) {
        i.DBParameterGroups = [
          {
            DBParameterGroupName: input.DBParameterGroupName,
            ParameterApplyStatus: 'pending-reboot',
          },
        ];
        return { DBInstance: i };
      }
      i.DBInstanceStatus = 'renaming';
      i.renameTo = String(input.NewDBInstanceIdentifier);
      return { DBInstance: i };
    });
  }

  private available(id: string): FakeInstance {
    const i = this.instances.find((x) => x.DBInstanceIdentifier === id);
    if (i?.DBInstanceStatus !== 'available') {
      throw new InvalidDBInstanceStateFault({ message: `${id} is not available`, $metadata: {} });
    }
    return i;
  }

  tick(): void {
    for (const i of this.instances) {
      if (i.renameTo !== undefined) {
        i.DBInstanceIdentifier = i.renameTo;
        i.renameTo = undefined;
      }
      if (['rebooting', 'renaming'].includes(i.DBInstanceStatus ?? '')) {
        const g = i.DBParameterGroups?.[0];
        if (g !== undefined) {
          g.ParameterApplyStatus = 'in-sync';
          i.applied = g.DBParameterGroupName ?? '';
        }
      }
      i.DBInstanceStatus = 'available';
    }
  }

  /** A parameter as the instance runs it now (from the group it last rebooted with). */
  running(id: string, parameter: string): string | undefined {
    const i = this.instances.find((x) => x.DBInstanceIdentifier === id);
    return i === undefined ? undefined : this.groups.get(i.applied)?.[parameter];
  }
}

function instance(id: string, version: string, group?: string): DBInstance {
  return {
    DBInstanceIdentifier: id,
    DbiResourceId: `db-${version}`,
    EngineVersion: version,
    DBInstanceStatus: 'available',
    DBParameterGroups: [
      {
        DBParameterGroupName: group ?? (version === '8.0.42' ? GROUP : GROUP84),
        ParameterApplyStatus: 'in-sync',
      },
    ],
  };
}

const postSwitchover = () => [instance(S, '8.4.5'), instance(OLD, '8.0.42')];

/** Every parameter the restore set, as "group: name=value". */
function parametersSet(): string[] {
  return mock
    .commandCalls(ModifyDBParameterGroupCommand)
    .flatMap((c) =>
      (c.args[0].input.Parameters ?? []).map(
        (p) => `${c.args[0].input.DBParameterGroupName}: ${p.ParameterName}=${p.ParameterValue}`,
      ),
    );
}

async function loop(fake: FakeRds, limit = 40): Promise<RestoreOldBlueResult[]> {
  const results: RestoreOldBlueResult[] = [];
  let progress: Partial<RestoreProgress> = {};
  for (let call = 1; call <= limit; call++) {
    const result = await restoreOldBlue(rds, plan, progress);
    results.push(result);
    progress = result;
    if (result.done) return results;
    fake.tick();
  }
  throw new Error(`not done after ${limit} calls: ${JSON.stringify(results.at(-1))}`);
}

describe('restore old blue on RDS for MySQL', () => {
  it('fences the failed writer with a copy of its own group at read_only=1, applied immediately', async () => {
    const fake = new FakeRds(postSwitchover());
    expect(await restoreOldBlue(rds, plan)).toEqual({
      done: false,
      step: 'fence-failed-writer',
      detail: `attaching ${FENCE} (read_only=1) to ${S} in place of ${GROUP84}`,
      fenced: false,
      unlocked: false,
    });
    expect(mock).toHaveReceivedCommandWith(CopyDBParameterGroupCommand, {
      SourceDBParameterGroupIdentifier: GROUP84,
      TargetDBParameterGroupIdentifier: FENCE,
      TargetDBParameterGroupDescription: `${GROUP84} with read_only=1, for a restore after a failed upgrade`,
    });
    expect(mock).toHaveReceivedCommandWith(ModifyDBParameterGroupCommand, {
      DBParameterGroupName: FENCE,
      Parameters: [{ ParameterName: 'read_only', ParameterValue: '1', ApplyMethod: 'immediate' }],
    });
    // The copy keeps the platform's settings; CloudFormation's group is not changed.
    expect(fake.groups.get(FENCE)).toEqual({ ...PLATFORM, read_only: '1' });
    expect(fake.groups.get(GROUP84)).toEqual(PLATFORM);
  });

  it('makes old blue writable with read_only=0 and still reboots it, as AWS says', async () => {
    const fake = new FakeRds([instance(OLD, '8.0.42')]);
    expect(await restoreOldBlue(rds, plan)).toMatchObject({
      step: 'make-old-blue-writable',
      detail: `attaching ${RESTORE} (read_only=0) to ${OLD} in place of ${GROUP}`,
    });
    expect(fake.groups.get(RESTORE)).toEqual({ ...PLATFORM, read_only: '0' });
    fake.tick();
    expect(await restoreOldBlue(rds, plan)).toMatchObject({
      step: 'make-old-blue-writable',
      detail: `rebooting the old blue ${OLD} so that read_only=0 applies`,
      unlocked: true,
    });
    expect(mock).toHaveReceivedCommandWith(RebootDBInstanceCommand, { DBInstanceIdentifier: OLD });
  });

  it('converges from the post-switchover state: old blue writable, the failed writer read-only', async () => {
    const fake = new FakeRds(postSwitchover());
    const steps = (await loop(fake)).map((r) => r.step);
    expect(steps).toEqual([
      'fence-failed-writer',
      'fence-failed-writer',
      'rename-failed-writer',
      'make-old-blue-writable',
      'make-old-blue-writable',
      'rename-old-blue',
      'restored',
    ]);
    expect(fake.running(S, 'read_only')).toBe('0');
    expect(fake.running(FAILED, 'read_only')).toBe('1');
    expect(parametersSet()).toEqual([`${FENCE}: read_only=1`, `${RESTORE}: read_only=0`]);
    expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 2);
  });

  it('asks the operator to set read_only, not the PostgreSQL parameter, when there is no group', async () => {
    new FakeRds([{ ...instance(OLD, '8.0.42'), DBParameterGroups: [] }]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${OLD} has no DB parameter group to copy. An operator must set read_only=0 on it, reboot it and run the restore again.`,
    );
  });
});
