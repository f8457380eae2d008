import {
  DBInstanceAlreadyExistsFault,
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  DescribeDBParametersCommand,
  InvalidDBInstanceStateFault,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  RDSClient,
  RebootDBInstanceCommand,
  type DBInstance,
  type Parameter,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  type RestoreOldBlueResult,
  type RestorePlan,
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

const mock = mockClient(RDSClient);
const rds = new RDSClient({ region: 'eu-west-1' });

beforeEach(() => mock.reset());

const notFound = (id: string) =>
  new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, $metadata: {} });

type FakeInstance = DBInstance & { renameTo?: string };

/** A fake RDS that keeps instances and parameter groups in memory and applies changes. */
class FakeRds {
  instances: FakeInstance[];
  readonly groups = new Map<string, Parameter[]>();
  /** Changes in progress finish on tick(), as a Wait state would let them. */
  failNextReboot = false;

  constructor(instances: DBInstance[], readOnly: string | undefined) {
    this.instances = instances.map((i) => ({ ...i }));
    this.groups.set(GROUP, [
      { ParameterName: 'application_name', Source: 'engine-default' },
      { ParameterName: 'rds.logical_replication', ParameterValue: '1', Source: 'user' },
      { ParameterName: 'archive_timeout', ParameterValue: '300', Source: 'system' },
      { ParameterName: 'default_transaction_read_only', ParameterValue: readOnly, Source: 'user' },
      { ParameterName: 'work_mem', ParameterValue: '4096', Source: 'user' },
    ]);
    mock.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
      const found = this.instances.find((i) => i.DBInstanceIdentifier === DBInstanceIdentifier);
      if (found === undefined) throw notFound(String(DBInstanceIdentifier));
      const { renameTo: _renameTo, ...described } = found;
      return { DBInstances: [structuredClone(described)] };
    });
    mock.on(DescribeDBParametersCommand).callsFake(({ DBParameterGroupName, Marker }) => {
      // Two parameters a page, so the reader has to follow the marker.
      const all = this.groups.get(String(DBParameterGroupName)) ?? [];
      const start = Number(Marker ?? '0');
      const next = start + 2 < all.length ? String(start + 2) : undefined;
      return { Parameters: all.slice(start, start + 2), Marker: next };
    });
    mock.on(ModifyDBParameterGroupCommand).callsFake(({ DBParameterGroupName, Parameters }) => {
      const group = this.groups.get(String(DBParameterGroupName)) ?? [];
      for (const change of Parameters ?? []) {
        const p = group.find((g) => g.ParameterName === change.ParameterName);
        if (p !== undefined) p.ParameterValue = change.ParameterValue;
      }
      for (const i of this.instances) {
        for (const g of i.DBParameterGroups ?? []) {
          if (g.DBParameterGroupName === DBParameterGroupName) g.ParameterApplyStatus = 'applying';
        }
      }
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

  /** Time passes: renames, reboots and parameter changes finish. */
  tick(): void {
    for (const i of this.instances) {
      if (i.renameTo !== undefined) {
        i.DBInstanceIdentifier = i.renameTo;
        i.renameTo = undefined;
      }
      const wasRebooting = i.DBInstanceStatus === 'rebooting';
      i.DBInstanceStatus = 'available';
      for (const g of i.DBParameterGroups ?? []) {
        if (g.ParameterApplyStatus === 'applying') g.ParameterApplyStatus = 'in-sync';
        if (g.ParameterApplyStatus === 'pending-reboot' && wasRebooting) {
          g.ParameterApplyStatus = 'in-sync';
        }
      }
    }
  }

  get(id: string): DBInstance | undefined {
    return this.instances.find((i) => i.DBInstanceIdentifier === id);
  }

  readOnlyValue(): string | undefined {
    return this.groups.get(GROUP)?.find((p) => p.ParameterName === 'default_transaction_read_only')
      ?.ParameterValue;
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
        DBParameterGroupName: version === '16.6' ? GROUP : 'quiet-upgrade-parameterspostgres17',
        ParameterApplyStatus: 'in-sync',
      },
    ],
    ...extra,
  };
}

/** Right after switchover: green took the name, the old blue is -old1 and read-only. */
const postSwitchover = () => [instance(S, '17.2'), instance(OLD, '16.6')];

function renames(): string[] {
  return mock
    .commandCalls(ModifyDBInstanceCommand)
    .map(
      (c) => `${c.args[0].input.DBInstanceIdentifier}->${c.args[0].input.NewDBInstanceIdentifier}`,
    );
}

function expectNoChange(): void {
  expect(mock).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  expect(mock).not.toHaveReceivedCommand(ModifyDBParameterGroupCommand);
  expect(mock).not.toHaveReceivedCommand(RebootDBInstanceCommand);
}

describe('a. the failed new writer still has the name', () => {
  it('renames the available failed writer to -failed1 at once', async () => {
    new FakeRds(postSwitchover(), '1');
    const result = await restoreOldBlue(rds, plan);
    expect(result).toEqual({
      done: false,
      step: 'rename-failed-writer',
      detail: expect.stringContaining(`${S} (17.2) to ${FAILED}`),
    });
    expect(mock).toHaveReceivedCommandTimes(ModifyDBInstanceCommand, 1);
    expect(mock).toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
      DBInstanceIdentifier: S,
      NewDBInstanceIdentifier: FAILED,
      ApplyImmediately: true,
    });
    expect(mock).not.toHaveReceivedCommand(ModifyDBParameterGroupCommand);
  });

  it.each(['modifying', 'backing-up', 'configuring-enhanced-monitoring'])(
    'waits while the failed writer is %s, renaming nothing',
    async (status) => {
      new FakeRds([instance(S, '17.2', status), instance(OLD, '16.6')], '1');
      const result = await restoreOldBlue(rds, plan);
      expect(result.step).toBe('wait');
      expect(result.done).toBe(false);
      expect(result.detail).toContain(status);
      expect(result.detail).toContain(`before renaming it to ${FAILED}`);
      expectNoChange();
    },
  );

  it('waits while the old name still resolves to an instance that is renaming', async () => {
    new FakeRds([instance(S, '17.2', 'renaming'), instance(OLD, '16.6')], '1');
    const result = await restoreOldBlue(rds, plan);
    expect(result.step).toBe('wait');
    expect(result.detail).toContain('being renamed');
    expectNoChange();
  });

  it('waits when both names answer with the same instance (a rename settling)', async () => {
    const writer = instance(S, '17.2');
    new FakeRds([writer, { ...writer, DBInstanceIdentifier: FAILED }, instance(OLD, '16.6')], '1');
    const result = await restoreOldBlue(rds, plan);
    expect(result.step).toBe('wait');
    expectNoChange();
  });

  it('refuses to rename when another -failed1 is in the way', async () => {
    new FakeRds(
      [...postSwitchover(), instance(FAILED, '17.1', 'available', { DbiResourceId: 'db-other' })],
      '1',
    );
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${FAILED} already exists (17.1, available), so ${S} cannot be renamed out of the way`,
    );
    expectNoChange();
  });

  it('never moves the writer away when there is no old blue to take its place', async () => {
    new FakeRds([instance(S, '17.2')], '1');
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${OLD} does not exist, so there is no old blue (16.6) to restore; ${S} was left as it is`,
    );
    expectNoChange();
  });

  it('refuses when the failed writer is stopped, which it never leaves alone', async () => {
    new FakeRds([instance(S, '17.2', 'stopped'), instance(OLD, '16.6')], '1');
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${S} (the failed new writer, 17.2) is stopped`,
    );
    expectNoChange();
  });
});

describe('b. the name is free and the old blue is -old1', () => {
  const freed = () => [instance(FAILED, '17.2'), instance(OLD, '16.6')];

  it.each([
    ['1', '"1"'],
    ['on', '"on"'],
    [undefined, 'null'],
  ])(
    'sets default_transaction_read_only=0 when it is %s, then reboots the old blue',
    async (value, shown) => {
      new FakeRds(freed(), value);
      const result = await restoreOldBlue(rds, plan);
      expect(result).toEqual({
        done: false,
        step: 'make-old-blue-writable',
        detail: expect.stringContaining(`(was ${shown}) in ${GROUP} and rebooting ${OLD}`),
      });
      expect(mock).toHaveReceivedCommandWith(ModifyDBParameterGroupCommand, {
        DBParameterGroupName: GROUP,
        Parameters: [
          {
            ParameterName: 'default_transaction_read_only',
            ParameterValue: '0',
            ApplyMethod: 'immediate',
          },
        ],
      });
      expect(mock).toHaveReceivedCommandWith(RebootDBInstanceCommand, {
        DBInstanceIdentifier: OLD,
      });
      expect(mock).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
    },
  );

  it('follows the DescribeDBParameters marker to find the parameter', async () => {
    new FakeRds(freed(), '1');
    await restoreOldBlue(rds, plan);
    const markers = mock
      .commandCalls(DescribeDBParametersCommand)
      .map((c) => c.args[0].input.Marker);
    expect(markers).toEqual([undefined, '2']);
  });

  it.each(['0', 'off', 'OFF'])(
    'renames the writable (%s), in-sync, available old blue to the original name',
    async (value) => {
      new FakeRds(freed(), value);
      const result = await restoreOldBlue(rds, plan);
      expect(result.step).toBe('rename-old-blue');
      expect(result.done).toBe(false);
      expect(renames()).toEqual([`${OLD}->${S}`]);
      expect(mock).toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
        DBInstanceIdentifier: OLD,
        NewDBInstanceIdentifier: S,
        ApplyImmediately: true,
      });
      expect(mock).not.toHaveReceivedCommand(ModifyDBParameterGroupCommand);
      expect(mock).not.toHaveReceivedCommand(RebootDBInstanceCommand);
    },
  );

  it.each(['rebooting', 'renaming', 'modifying'])(
    'waits while the old blue is %s',
    async (status) => {
      new FakeRds([instance(FAILED, '17.2'), instance(OLD, '16.6', status)], '0');
      const result = await restoreOldBlue(rds, plan);
      expect(result).toEqual({
        done: false,
        step: 'wait',
        detail: expect.stringContaining(`${OLD} (the old blue) is ${status}`),
      });
      expectNoChange();
    },
  );

  it('waits while the parameter change is being applied', async () => {
    const old = instance(OLD, '16.6', 'available', {
      DBParameterGroups: [{ DBParameterGroupName: GROUP, ParameterApplyStatus: 'applying' }],
    });
    new FakeRds([instance(FAILED, '17.2'), old], '0');
    const result = await restoreOldBlue(rds, plan);
    expect(result.step).toBe('wait');
    expect(result.detail).toContain('being applied');
    expectNoChange();
  });

  it('reboots, without changing the parameter again, when a change is pending a reboot', async () => {
    const old = instance(OLD, '16.6', 'available', {
      DBParameterGroups: [{ DBParameterGroupName: GROUP, ParameterApplyStatus: 'pending-reboot' }],
    });
    new FakeRds([instance(FAILED, '17.2'), old], '0');
    const result = await restoreOldBlue(rds, plan);
    expect(result.step).toBe('make-old-blue-writable');
    expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 1);
    expect(mock).not.toHaveReceivedCommand(ModifyDBParameterGroupCommand);
    expect(mock).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('refuses to touch a default parameter group and says what to do', async () => {
    const old = instance(OLD, '16.6', 'available', {
      DBParameterGroups: [
        { DBParameterGroupName: 'default.postgres16', ParameterApplyStatus: 'in-sync' },
      ],
    });
    const fake = new FakeRds([instance(FAILED, '17.2'), old], '1');
    fake.groups.set('default.postgres16', fake.groups.get(GROUP) ?? []);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      'default parameter group default.postgres16, which cannot be modified',
    );
    expectNoChange();
  });

  it('refuses an -old1 that runs neither version it expects', async () => {
    new FakeRds([instance(OLD, '15.8')], '0');
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `${S} does not exist and ${OLD} runs 15.8, not the old version 16.6`,
    );
    expectNoChange();
  });
});

describe('c. restored', () => {
  it('is done when the old version is available under the original name', async () => {
    new FakeRds([instance(S, '16.6'), instance(FAILED, '17.2')], '0');
    expect(await restoreOldBlue(rds, plan)).toEqual({
      done: true,
      step: 'restored',
      detail: `${S} is the old blue again (16.6) and available`,
    });
    expectNoChange();
  });

  it('waits while the restored writer finishes a change', async () => {
    new FakeRds([instance(S, '16.6', 'modifying')], '0');
    const result = await restoreOldBlue(rds, plan);
    expect(result).toMatchObject({ done: false, step: 'wait' });
    expectNoChange();
  });
});

describe('d. states it cannot move on from', () => {
  it('throws, naming what it found, when neither the name nor -old1 exists', async () => {
    new FakeRds([instance(FAILED, '17.2')], '0');
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
    new FakeRds([], '0');
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(`and ${FAILED} does not exist either`);
  });

  it('throws when the name runs an unexpected version', async () => {
    new FakeRds([instance(S, '15.8'), instance(OLD, '16.6')], '0');
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
  /** Calls the function like the Wait → Task → Choice loop does, at most `limit` times. */
  async function loop(
    fake: FakeRds,
    options: { callsPerTick?: number; limit?: number } = {},
  ): Promise<RestoreOldBlueResult[]> {
    const { callsPerTick = 1, limit = 30 } = options;
    const results: RestoreOldBlueResult[] = [];
    for (let call = 1; call <= limit; call++) {
      try {
        const result = await restoreOldBlue(rds, plan);
        results.push(result);
        if (result.done) return results;
      } catch (err) {
        // A crashed invocation: the state machine's Retry calls it again.
        results.push({ done: false, step: 'wait', detail: `crashed: ${String(err)}` });
      }
      if (call % callsPerTick === 0) fake.tick();
    }
    throw new Error(`not done after ${limit} calls: ${JSON.stringify(results.at(-1))}`);
  }

  function expectRestored(fake: FakeRds): void {
    expect(fake.get(S)).toMatchObject({ EngineVersion: '16.6', DbiResourceId: 'db-166' });
    expect(fake.get(FAILED)).toMatchObject({ EngineVersion: '17.2', DbiResourceId: 'db-172' });
    expect(fake.get(OLD)).toBeUndefined();
    expect(fake.readOnlyValue()).toBe('0');
    expect(renames()).toEqual([`${S}->${FAILED}`, `${OLD}->${S}`]);
  }

  it('gets there in one step per call when RDS is quick', async () => {
    const fake = new FakeRds(postSwitchover(), '1');
    const steps = (await loop(fake)).map((r) => r.step);
    expect(steps).toEqual([
      'rename-failed-writer',
      'make-old-blue-writable',
      'rename-old-blue',
      'restored',
    ]);
    expectRestored(fake);
    expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 1);
  });

  it.each([2, 3, 5])(
    'never repeats a rename or reboot when called %i times at every stage',
    async (callsPerTick) => {
      const fake = new FakeRds(postSwitchover(), '1');
      const results = await loop(fake, { callsPerTick });
      expectRestored(fake);
      expect(mock).toHaveReceivedCommandTimes(ModifyDBParameterGroupCommand, 1);
      expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 1);
      expect(results.filter((r) => r.step !== 'wait').map((r) => r.step)).toEqual([
        'rename-failed-writer',
        'make-old-blue-writable',
        'rename-old-blue',
        'restored',
      ]);
    },
  );

  it('still converges after a crash between the parameter change and the reboot', async () => {
    const fake = new FakeRds(postSwitchover(), '1');
    fake.failNextReboot = true;
    await loop(fake);
    expectRestored(fake);
    expect(mock).toHaveReceivedCommandTimes(ModifyDBParameterGroupCommand, 1);
  });

  it.each([
    ['the failed writer renamed', () => [instance(FAILED, '17.2'), instance(OLD, '16.6')], '1'],
    ['the old blue already writable', () => [instance(FAILED, '17.2'), instance(OLD, '16.6')], '0'],
  ])('finishes the job when started with %s', async (_case, start, value) => {
    const fake = new FakeRds(start(), value);
    const results = await loop(fake);
    expect(results.at(-1)?.step).toBe('restored');
    expect(fake.get(S)?.EngineVersion).toBe('16.6');
    expect(renames()).toEqual([`${OLD}->${S}`]);
  });
});
