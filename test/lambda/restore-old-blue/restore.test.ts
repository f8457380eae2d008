import {
  CopyDBParameterGroupCommand,
  DBInstanceAlreadyExistsFault,
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

const S = 'platform-db';
const OLD = 'platform-db-old1';
const FAILED = 'platform-db-failed1';
const plan: RestorePlan = {
  sourceIdentifier: S,
  currentEngineVersion: '16.6',
  targetEngineVersion: '17.2',
};
const GROUP = 'quiet-upgrade-parameterspostgres16';
const GROUP17 = 'quiet-upgrade-parameterspostgres17';
const RESTORE = `${GROUP}-restore`;
const FENCE = `${GROUP17}-fence`;

const mock = mockClient(RDSClient);
const rds = new RDSClient({ region: 'eu-west-1' });

beforeEach(() => mock.reset());

const notFound = (id: string) =>
  new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, $metadata: {} });

type FakeInstance = DBInstance & { renameTo?: string; applied: string };

/**
 * A fake RDS that keeps instances and parameter groups in memory and applies changes: a
 * group attached to an instance applies at its next reboot; a rename also reboots.
 */
class FakeRds {
  instances: FakeInstance[];
  readonly groups = new Map<string, Record<string, string>>([
    [GROUP, { 'rds.logical_replication': '1' }],
    [GROUP17, { 'rds.logical_replication': '1' }],
  ]);
  /** Changes in progress finish on tick(), as a Wait state would let them. */
  failNextReboot = false;

  constructor(instances: DBInstance[]) {
    this.instances = instances.map((i) => ({
      ...i,
      applied: i.DBParameterGroups?.[0]?.DBParameterGroupName ?? '',
    }));
    mock.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
      const found = this.instances.find((i) => i.DBInstanceIdentifier === DBInstanceIdentifier);
      if (found === undefined) throw notFound(String(DBInstanceIdentifier));
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
      if (this.failNextReboot) {
        this.failNextReboot = false;
        throw new Error('Task timed out after 30.00 seconds');
      }
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
      const to = String(input.NewDBInstanceIdentifier);
      if (this.instances.some((x) => x.DBInstanceIdentifier === to || x.renameTo === to)) {
        throw new DBInstanceAlreadyExistsFault({ message: `${to} exists`, $metadata: {} });
      }
      i.DBInstanceStatus = 'renaming';
      i.renameTo = to;
      return { DBInstance: i };
    });
  }

  private available(id: string): FakeInstance {
    const i = this.instances.find((x) => x.DBInstanceIdentifier === id);
    if (i === undefined) throw notFound(id);
    if (i.DBInstanceStatus !== 'available') {
      throw new InvalidDBInstanceStateFault({ message: `${id} is not available`, $metadata: {} });
    }
    return i;
  }

  /** Time passes: renames and reboots finish, applying an attached group. */
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

  get(id: string): FakeInstance | undefined {
    return this.instances.find((i) => i.DBInstanceIdentifier === id);
  }

  /** default_transaction_read_only as the instance runs it now. */
  readOnly(id: string): string | undefined {
    const i = this.get(id);
    return i === undefined ? undefined : this.groups.get(i.applied)?.default_transaction_read_only;
  }
}

function instance(
  id: string,
  version: string,
  status = 'available',
  extra: Partial<DBInstance> = {},
): DBInstance {
  return {
    DBInstanceIdentifier: id,
    DbiResourceId: `db-${version.replace('.', '')}`,
    EngineVersion: version,
    DBInstanceStatus: status,
    DBParameterGroups: [
      {
        DBParameterGroupName: version === '16.6' ? GROUP : GROUP17,
        ParameterApplyStatus: 'in-sync',
      },
    ],
    ...extra,
  };
}

/** An instance that already runs a group copy. */
function withGroup(i: DBInstance, group: string, applyStatus = 'in-sync'): DBInstance {
  return {
    ...i,
    DBParameterGroups: [{ DBParameterGroupName: group, ParameterApplyStatus: applyStatus }],
  };
}

/** Right after switchover: green took the name, the old blue is -old1 and read-only. */
const postSwitchover = () => [instance(S, '17.2'), instance(OLD, '16.6')];

const FENCED: RestoreProgress = { fenced: true, unlocked: false };
const BOTH: RestoreProgress = { fenced: true, unlocked: true };

function renames(): string[] {
  return mock
    .commandCalls(ModifyDBInstanceCommand)
    .filter((c) => c.args[0].input.NewDBInstanceIdentifier !== undefined)
    .map(
      (c) => `${c.args[0].input.DBInstanceIdentifier}->${c.args[0].input.NewDBInstanceIdentifier}`,
    );
}

function expectNoChange(): void {
  expect(mock).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  expect(mock).not.toHaveReceivedCommand(CopyDBParameterGroupCommand);
  expect(mock).not.toHaveReceivedCommand(ModifyDBParameterGroupCommand);
  expect(mock).not.toHaveReceivedCommand(RebootDBInstanceCommand);
}

describe('a. the failed new writer still has the name', () => {
  it('first fences it: a copy of its group with default_transaction_read_only=1, attached', async () => {
    const fake = new FakeRds(postSwitchover());
    const result = await restoreOldBlue(rds, plan);
    expect(result).toEqual({
      done: false,
      step: 'fence-failed-writer',
      detail: `attaching ${FENCE} (default_transaction_read_only=1) to ${S} in place of ${GROUP17}`,
      fenced: false,
      unlocked: false,
    });
    expect(mock).toHaveReceivedCommandWith(CopyDBParameterGroupCommand, {
      SourceDBParameterGroupIdentifier: GROUP17,
      TargetDBParameterGroupIdentifier: FENCE,
    });
    expect(fake.groups.get(FENCE)).toEqual({
      'rds.logical_replication': '1',
      default_transaction_read_only: '1',
    });
    // CloudFormation's group is never changed.
    expect(fake.groups.get(GROUP17)).toEqual({ 'rds.logical_replication': '1' });
    expect(mock).toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
      DBInstanceIdentifier: S,
      DBParameterGroupName: FENCE,
      ApplyImmediately: true,
    });
    expect(renames()).toEqual([]);
  });

  it('reuses a fence group an earlier restore left, setting the value again', async () => {
    const fake = new FakeRds(postSwitchover());
    fake.groups.set(FENCE, { default_transaction_read_only: '0' });
    expect((await restoreOldBlue(rds, plan)).step).toBe('fence-failed-writer');
    expect(fake.groups.get(FENCE)?.default_transaction_read_only).toBe('1');
  });

  it('reboots it once the fence group is attached, even when RDS shows it in-sync', async () => {
    new FakeRds([withGroup(instance(S, '17.2'), FENCE), instance(OLD, '16.6')]);
    const result = await restoreOldBlue(rds, plan);
    expect(result).toMatchObject({ step: 'fence-failed-writer', fenced: true });
    expect(mock).toHaveReceivedCommandWith(RebootDBInstanceCommand, { DBInstanceIdentifier: S });
    expect(renames()).toEqual([]);
  });

  it('renames the fenced, rebooted failed writer to -failed1', async () => {
    new FakeRds([withGroup(instance(S, '17.2'), FENCE), instance(OLD, '16.6')]);
    const result = await restoreOldBlue(rds, plan, FENCED);
    expect(result).toEqual({
      done: false,
      step: 'rename-failed-writer',
      detail: `renaming the failed new writer ${S} (17.2, now read-only) to ${FAILED}`,
      ...FENCED,
    });
    expect(renames()).toEqual([`${S}->${FAILED}`]);
    expect(mock).toHaveReceivedCommandWith(ModifyDBInstanceCommand, { ApplyImmediately: true });
  });

  it('reboots again, not renames, while the fence group is pending a reboot', async () => {
    new FakeRds([withGroup(instance(S, '17.2'), FENCE, 'pending-reboot'), instance(OLD, '16.6')]);
    expect((await restoreOldBlue(rds, plan, FENCED)).step).toBe('fence-failed-writer');
    expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 1);
    expect(renames()).toEqual([]);
  });

  it.each(['modifying', 'backing-up', 'configuring-enhanced-monitoring'])(
    'waits while the failed writer is %s, changing nothing',
    async (status) => {
      new FakeRds([instance(S, '17.2', status), instance(OLD, '16.6')]);
      const result = await restoreOldBlue(rds, plan);
      expect(result.step).toBe('wait');
      expect(result.done).toBe(false);
      expect(result.detail).toContain(status);
      expect(result.detail).toContain('before fencing and renaming it');
      expectNoChange();
    },
  );

  it('waits while the old name still resolves to an instance that is renaming', async () => {
    new FakeRds([instance(S, '17.2', 'renaming'), instance(OLD, '16.6')]);
    const result = await restoreOldBlue(rds, plan);
    expect(result.step).toBe('wait');
    expect(result.detail).toContain('being renamed');
    expectNoChange();
  });

  it('waits when both names answer with the same instance (a rename settling)', async () => {
    const writer = instance(S, '17.2');
    new FakeRds([writer, { ...writer, DBInstanceIdentifier: FAILED }, instance(OLD, '16.6')]);
    const result = await restoreOldBlue(rds, plan);
    expect(result.step).toBe('wait');
    expectNoChange();
  });

  it('refuses to go on when another -failed1 is in the way', async () => {
    new FakeRds([
      ...postSwitchover(),
      instance(FAILED, '17.1', 'available', { DbiResourceId: 'db-other' }),
    ]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${FAILED} already exists (17.1, available), so ${S} cannot be renamed out of the way`,
    );
    expectNoChange();
  });

  it('never fences or moves the writer when there is no old blue to take its place', async () => {
    new FakeRds([instance(S, '17.2')]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${OLD} does not exist, so there is no old blue (16.6) to restore; ${S} was left as it is`,
    );
    expectNoChange();
  });

  it('never fences the writer while old blue is in a state it will not leave', async () => {
    new FakeRds([instance(S, '17.2'), instance(OLD, '16.6', 'storage-full')]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${OLD} (the old blue, 16.6) is storage-full`,
    );
    expectNoChange();
  });

  it('refuses when the failed writer is stopped, which it never leaves alone', async () => {
    new FakeRds([instance(S, '17.2', 'stopped'), instance(OLD, '16.6')]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${S} (the failed new writer, 17.2) is stopped`,
    );
    expectNoChange();
  });

  it('says what to do when the writer has no parameter group to copy', async () => {
    new FakeRds([
      instance(S, '17.2', 'available', { DBParameterGroups: [] }),
      instance(OLD, '16.6'),
    ]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${S} has no DB parameter group to copy. An operator must set default_transaction_read_only=1 on it`,
    );
    expectNoChange();
  });
});

describe('b. the name is free and the old blue is -old1', () => {
  const freed = () => [withGroup(instance(FAILED, '17.2'), FENCE), instance(OLD, '16.6')];

  it('attaches a copy of its group with default_transaction_read_only=0', async () => {
    const fake = new FakeRds(freed());
    const result = await restoreOldBlue(rds, plan, FENCED);
    expect(result).toEqual({
      done: false,
      step: 'make-old-blue-writable',
      detail: `attaching ${RESTORE} (default_transaction_read_only=0) to ${OLD} in place of ${GROUP}`,
      ...FENCED,
    });
    expect(fake.groups.get(RESTORE)?.default_transaction_read_only).toBe('0');
    expect(fake.groups.get(GROUP)).toEqual({ 'rds.logical_replication': '1' });
    expect(mock).toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
      DBInstanceIdentifier: OLD,
      DBParameterGroupName: RESTORE,
      ApplyImmediately: true,
    });
    expect(mock).not.toHaveReceivedCommand(RebootDBInstanceCommand);
  });

  it.each(['in-sync', 'pending-reboot'])(
    'reboots the old blue once the restore group is attached (%s)',
    async (applyStatus) => {
      new FakeRds([
        freed()[0] as DBInstance,
        withGroup(instance(OLD, '16.6'), RESTORE, applyStatus),
      ]);
      const result = await restoreOldBlue(rds, plan, FENCED);
      expect(result).toMatchObject({ step: 'make-old-blue-writable', unlocked: true });
      expect(mock).toHaveReceivedCommandWith(RebootDBInstanceCommand, {
        DBInstanceIdentifier: OLD,
      });
      expect(renames()).toEqual([]);
    },
  );

  it('renames the rebooted, in-sync, available old blue to the original name', async () => {
    new FakeRds([freed()[0] as DBInstance, withGroup(instance(OLD, '16.6'), RESTORE)]);
    const result = await restoreOldBlue(rds, plan, BOTH);
    expect(result.step).toBe('rename-old-blue');
    expect(result.done).toBe(false);
    expect(renames()).toEqual([`${OLD}->${S}`]);
    expect(mock).not.toHaveReceivedCommand(RebootDBInstanceCommand);
  });

  it.each(['rebooting', 'renaming', 'modifying'])(
    'waits while the old blue is %s',
    async (status) => {
      new FakeRds([freed()[0] as DBInstance, instance(OLD, '16.6', status)]);
      const result = await restoreOldBlue(rds, plan, BOTH);
      expect(result).toMatchObject({ done: false, step: 'wait', ...BOTH });
      expect(result.detail).toContain(`${OLD} (the old blue) is ${status}`);
      expectNoChange();
    },
  );

  it('waits while a parameter change is being applied', async () => {
    new FakeRds([freed()[0] as DBInstance, withGroup(instance(OLD, '16.6'), RESTORE, 'applying')]);
    const result = await restoreOldBlue(rds, plan, BOTH);
    expect(result.step).toBe('wait');
    expect(result.detail).toContain('being applied');
    expectNoChange();
  });

  it('copies a default parameter group too, which itself cannot be modified', async () => {
    const fake = new FakeRds([
      freed()[0] as DBInstance,
      withGroup(instance(OLD, '16.6'), 'default.postgres16'),
    ]);
    fake.groups.set('default.postgres16', {});
    expect((await restoreOldBlue(rds, plan, FENCED)).step).toBe('make-old-blue-writable');
    expect(fake.groups.get('default.postgres16-restore')).toEqual({
      default_transaction_read_only: '0',
    });
    expect(fake.groups.get('default.postgres16')).toEqual({});
  });

  it('refuses an -old1 that runs neither version it expects', async () => {
    new FakeRds([instance(OLD, '15.8')]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${S} does not exist and ${OLD} runs 15.8, not the old version 16.6`,
    );
    expectNoChange();
  });
});

describe('c. restored', () => {
  it('is done when the old version is available under the original name', async () => {
    new FakeRds([instance(S, '16.6'), instance(FAILED, '17.2')]);
    expect(await restoreOldBlue(rds, plan, BOTH)).toEqual({
      done: true,
      step: 'restored',
      detail: `${S} is the old blue again (16.6) and available`,
      ...BOTH,
    });
    expectNoChange();
  });

  it('waits while the restored writer finishes a change', async () => {
    new FakeRds([instance(S, '16.6', 'modifying')]);
    const result = await restoreOldBlue(rds, plan);
    expect(result).toMatchObject({ done: false, step: 'wait' });
    expectNoChange();
  });
});

describe('d. states it cannot move on from', () => {
  it('throws, naming what it found, when neither the name nor -old1 exists', async () => {
    new FakeRds([instance(FAILED, '17.2')]);
    const error = await restoreOldBlue(rds, plan).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe(
      `cannot restore the old blue: neither ${S} nor ${OLD} exists, and ${FAILED} exists ` +
        `(17.2, available). There is no writer under ${S}. An operator must find the old ` +
        `blue (the DB instance running 16.6) and rename it to ${S}, or restore ${S} from ` +
        `its latest backup.`,
    );
    expectNoChange();
  });

  it('says so when not even -failed1 exists', async () => {
    new FakeRds([]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(`and ${FAILED} does not exist either`);
  });

  it('throws when the name runs an unexpected version', async () => {
    new FakeRds([instance(S, '15.8'), instance(OLD, '16.6')]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${S} runs 15.8 (status available), neither the old version 16.6 nor the new 17.2`,
    );
    expectNoChange();
  });

  it('passes on an RDS error that is not "not found"', async () => {
    mock.on(DescribeDBInstancesCommand).rejects(new Error('Rate exceeded'));
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow('Rate exceeded');
  });
});

describe('convergence from the post-switchover state', () => {
  /**
   * Calls the function like the Wait → Task → Choice loop does, passing each result on as
   * the next call's progress, at most `limit` times.
   */
  async function loop(
    fake: FakeRds,
    options: { callsPerTick?: number; limit?: number } = {},
  ): Promise<RestoreOldBlueResult[]> {
    const { callsPerTick = 1, limit = 40 } = options;
    const results: RestoreOldBlueResult[] = [];
    let progress: Partial<RestoreProgress> = {};
    for (let call = 1; call <= limit; call++) {
      try {
        const result = await restoreOldBlue(rds, plan, progress);
        results.push(result);
        progress = result;
        if (result.done) return results;
      } catch (err) {
        // A crashed invocation: the state machine's Retry calls it again with the same input.
        results.push({
          done: false,
          step: 'wait',
          detail: `crashed: ${String(err)}`,
          fenced: false,
          unlocked: false,
        });
      }
      if (call % callsPerTick === 0) fake.tick();
    }
    throw new Error(`not done after ${limit} calls: ${JSON.stringify(results.at(-1))}`);
  }

  function expectRestored(fake: FakeRds): void {
    expect(fake.get(S)).toMatchObject({ EngineVersion: '16.6', DbiResourceId: 'db-166' });
    expect(fake.get(FAILED)).toMatchObject({ EngineVersion: '17.2', DbiResourceId: 'db-172' });
    expect(fake.get(OLD)).toBeUndefined();
    // The restored writer runs writable; the failed one runs read-only.
    expect(fake.readOnly(S)).toBe('0');
    expect(fake.readOnly(FAILED)).toBe('1');
    expect(fake.groups.get(GROUP)).toEqual({ 'rds.logical_replication': '1' });
    expect(fake.groups.get(GROUP17)).toEqual({ 'rds.logical_replication': '1' });
    expect(renames()).toEqual([`${S}->${FAILED}`, `${OLD}->${S}`]);
  }

  const STEPS = [
    'fence-failed-writer',
    'fence-failed-writer',
    'rename-failed-writer',
    'make-old-blue-writable',
    'make-old-blue-writable',
    'rename-old-blue',
    'restored',
  ];

  it('gets there in one step per call when RDS is quick', async () => {
    const fake = new FakeRds(postSwitchover());
    const steps = (await loop(fake)).map((r) => r.step);
    expect(steps).toEqual(STEPS);
    expectRestored(fake);
    expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 2);
  });

  it.each([2, 3, 5])(
    'never repeats a rename or reboot when called %i times at every stage',
    async (callsPerTick) => {
      const fake = new FakeRds(postSwitchover());
      const results = await loop(fake, { callsPerTick });
      expectRestored(fake);
      expect(mock).toHaveReceivedCommandTimes(CopyDBParameterGroupCommand, 2);
      expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 2);
      expect(results.filter((r) => r.step !== 'wait').map((r) => r.step)).toEqual(STEPS);
    },
  );

  it('still converges after a crash between the group change and the reboot', async () => {
    const fake = new FakeRds(postSwitchover());
    fake.failNextReboot = true;
    await loop(fake);
    expectRestored(fake);
    expect(mock).toHaveReceivedCommandTimes(CopyDBParameterGroupCommand, 2);
  });

  it('finishes the job when started with the failed writer already renamed', async () => {
    const fake = new FakeRds([withGroup(instance(FAILED, '17.2'), FENCE), instance(OLD, '16.6')]);
    fake.groups.set(FENCE, { default_transaction_read_only: '1' });
    const results = await loop(fake);
    expect(results.at(-1)?.step).toBe('restored');
    expect(fake.get(S)?.EngineVersion).toBe('16.6');
    expect(fake.readOnly(S)).toBe('0');
    expect(renames()).toEqual([`${OLD}->${S}`]);
  });
});
