import {
  CopyDBClusterParameterGroupCommand,
  DBClusterParameterGroupNotFoundFault,
  CopyDBParameterGroupCommand,
  DBClusterAlreadyExistsFault,
  DBClusterNotFoundFault,
  DBInstanceNotFoundFault,
  DBParameterGroupAlreadyExistsFault,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  InvalidDBClusterStateFault,
  InvalidDBInstanceStateFault,
  ModifyDBClusterCommand,
  ModifyDBClusterParameterGroupCommand,
  ModifyDBInstanceCommand,
  ModifyDBParameterGroupCommand,
  RDSClient,
  RebootDBClusterCommand,
  RebootDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  type RestoreOldBlueResult,
  type RestorePlan,
  type RestoreProgress,
  restoreOldBlue,
} from '../../../lambda/restore-old-blue/restore';
import {
  fenceOldBlueCluster,
  formerWriterInstance,
  prepareFence,
} from '../../../lambda/restore-old-blue/restore-cluster';

const S = 'platform-db';
const OLD = 'platform-db-old1';
const FAILED = 'platform-db-failed1';
const PLANS = {
  'aurora-postgresql': {
    plan: {
      sourceIdentifier: S,
      engine: 'aurora-postgresql',
      currentEngineVersion: '16.6',
      targetEngineVersion: '17.4',
    },
    parameter: 'default_transaction_read_only',
  },
  'aurora-mysql': {
    plan: {
      sourceIdentifier: S,
      engine: 'aurora-mysql',
      currentEngineVersion: '8.0.mysql_aurora.3.10.0',
      targetEngineVersion: '8.0.mysql_aurora.3.12.0',
    },
    parameter: 'read_only',
  },
} as const satisfies Record<string, { plan: RestorePlan; parameter: string }>;

const BLUE_GROUP = 'quiet-upgrade-cluster-parameters-old';
const GREEN_GROUP = 'quiet-upgrade-cluster-parameters-new';

const mock = mockClient(RDSClient);
const rds = new RDSClient({ region: 'eu-west-1' });

beforeEach(() => mock.reset());

interface FakeCluster {
  id: string;
  resourceId: string;
  version: string;
  status: string;
  /** The DB cluster parameter group attached. */
  group: string;
  /** The group the writer runs (applied at its last reboot). */
  applied: string;
  members: { instance: string; writer: boolean; groupStatus: string }[];
  renameTo?: string;
}

/**
 * A fake RDS for Aurora: clusters with their instances and DB cluster parameter groups. A
 * group attached to a cluster applies to the writer at its next reboot. A cluster rename
 * renames the cluster; with `renameInstances` (what an older AWS text suggests) its instances
 * too, else (the current text) they keep their names.
 */
class FakeAurora {
  clusters: FakeCluster[];
  /** Instance statuses, by identifier. */
  readonly instances = new Map<string, string>();
  readonly groups = new Map<string, Record<string, string>>([
    [BLUE_GROUP, { binlog_format: 'ROW' }],
    [GREEN_GROUP, { binlog_format: 'ROW' }],
  ]);

  constructor(
    clusters: FakeCluster[],
    readonly renameInstances = false,
  ) {
    this.clusters = clusters;
    for (const c of clusters)
      for (const m of c.members) this.instances.set(m.instance, 'available');
    mock.on(DescribeDBClustersCommand).callsFake(({ DBClusterIdentifier }) => {
      const c = this.clusters.find((x) => x.id === DBClusterIdentifier);
      if (c === undefined) {
        throw new DBClusterNotFoundFault({
          message: `${DBClusterIdentifier} not found`,
          $metadata: {},
        });
      }
      return {
        DBClusters: [
          {
            DBClusterIdentifier: c.id,
            DbClusterResourceId: c.resourceId,
            EngineVersion: c.version,
            Status: c.status,
            DBClusterParameterGroup: c.group,
            Endpoint: `${c.id}.cluster-abc.eu-west-1.rds.amazonaws.com`,
            DBClusterMembers: c.members.map((m) => ({
              DBInstanceIdentifier: m.instance,
              IsClusterWriter: m.writer,
              DBClusterParameterGroupStatus: m.groupStatus,
            })),
          },
        ],
      };
    });
    mock.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
      const status = this.instances.get(String(DBInstanceIdentifier));
      if (status === undefined) {
        throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
      }
      return {
        DBInstances: [{ DBInstanceIdentifier, DBInstanceStatus: status }],
      };
    });
    mock.on(CopyDBClusterParameterGroupCommand).callsFake((input) => {
      const to = String(input.TargetDBClusterParameterGroupIdentifier);
      if (this.groups.has(to)) {
        throw new DBParameterGroupAlreadyExistsFault({ message: `${to} exists`, $metadata: {} });
      }
      const from = this.groups.get(String(input.SourceDBClusterParameterGroupIdentifier));
      if (from === undefined) throw new Error('no source group');
      this.groups.set(to, { ...from });
      return {};
    });
    mock
      .on(ModifyDBClusterParameterGroupCommand)
      .callsFake(({ DBClusterParameterGroupName, Parameters }) => {
        const group = this.groups.get(String(DBClusterParameterGroupName));
        if (group === undefined) throw new Error(`no group ${String(DBClusterParameterGroupName)}`);
        for (const p of Parameters ?? []) group[String(p.ParameterName)] = String(p.ParameterValue);
        return { DBClusterParameterGroupName };
      });
    mock.on(RebootDBInstanceCommand).callsFake(({ DBInstanceIdentifier }) => {
      const id = String(DBInstanceIdentifier);
      if (this.instances.get(id) !== 'available') {
        throw new InvalidDBInstanceStateFault({ message: `${id} is not available`, $metadata: {} });
      }
      this.instances.set(id, 'rebooting');
      return {};
    });
    mock.on(ModifyDBClusterCommand).callsFake((input) => {
      const c = this.clusters.find((x) => x.id === input.DBClusterIdentifier);
      if (c === undefined) throw new DBClusterNotFoundFault({ message: 'nf', $metadata: {} });
      if (c.status !== 'available') {
        throw new InvalidDBClusterStateFault({ message: `${c.id} not available`, $metadata: {} });
      }
      if (input.DBClusterParameterGroupName !== undefined) {
        if (!this.groups.has(input.DBClusterParameterGroupName)) {
          throw new DBClusterParameterGroupNotFoundFault({
            message: `${input.DBClusterParameterGroupName} not found`,
            $metadata: {},
          });
        }
        c.group = input.DBClusterParameterGroupName;
        for (const m of c.members) m.groupStatus = 'pending-reboot';
      }
      if (input.NewDBClusterIdentifier !== undefined) {
        const to = input.NewDBClusterIdentifier;
        if (this.clusters.some((x) => x.id === to || x.renameTo === to)) {
          throw new DBClusterAlreadyExistsFault({ message: `${to} exists`, $metadata: {} });
        }
        c.status = 'renaming';
        c.renameTo = to;
      }
      return {};
    });
  }

  /** Time passes: renames and reboots finish; a rebooted writer runs the attached group. */
  tick(): void {
    for (const c of this.clusters) {
      if (c.renameTo !== undefined) {
        if (this.renameInstances) {
          for (const m of c.members) {
            const renamed = `${m.instance.replace(/-old1$/, '')}-in-${c.renameTo}`;
            this.instances.set(renamed, this.instances.get(m.instance) ?? 'available');
            this.instances.delete(m.instance);
            m.instance = renamed;
          }
        }
        c.id = c.renameTo;
        c.renameTo = undefined;
      }
      c.status = 'available';
      for (const m of c.members) {
        if (this.instances.get(m.instance) === 'rebooting') {
          this.instances.set(m.instance, 'available');
          m.groupStatus = 'in-sync';
          if (m.writer) c.applied = c.group;
        }
      }
    }
  }

  get(id: string): FakeCluster | undefined {
    return this.clusters.find((c) => c.id === id);
  }

  /** The read-only parameter as the cluster's writer runs it now. */
  readOnly(id: string, parameter: string): string | undefined {
    const c = this.get(id);
    return c === undefined ? undefined : this.groups.get(c.applied)?.[parameter];
  }
}

function cluster(
  id: string,
  version: string,
  role: 'green' | 'blue',
  extra: Partial<FakeCluster> = {},
): FakeCluster {
  const group = role === 'green' ? GREEN_GROUP : BLUE_GROUP;
  // After a switchover: green's instances carry blue's names, blue's theirs with -old1.
  const suffix = role === 'blue' ? '-old1' : '';
  return {
    id,
    resourceId: `cluster-${role}`,
    version,
    status: 'available',
    group,
    applied: group,
    members: [
      { instance: `${S}-writer${suffix}`, writer: true, groupStatus: 'in-sync' },
      { instance: `${S}-reader${suffix}`, writer: false, groupStatus: 'in-sync' },
    ],
    ...extra,
  };
}

const postSwitchover = (p: RestorePlan) => [
  cluster(S, p.targetEngineVersion, 'green'),
  cluster(OLD, p.currentEngineVersion, 'blue'),
];

/** Calls the restore as the state machine does, a tick between calls, until done. */
async function runToEnd(fake: FakeAurora, p: RestorePlan): Promise<RestoreOldBlueResult['step'][]> {
  const steps: RestoreOldBlueResult['step'][] = [];
  let progress: Partial<RestoreProgress> = {};
  for (let i = 0; i < 20; i++) {
    const r = await restoreOldBlue(rds, p, progress);
    steps.push(r.step);
    if (r.done) return steps;
    progress = { fenced: r.fenced, unlocked: r.unlocked };
    fake.tick();
  }
  throw new Error(`not done after 20 calls: ${steps.join(', ')}`);
}

function expectNoChange(): void {
  expect(mock).not.toHaveReceivedCommand(ModifyDBClusterCommand);
  expect(mock).not.toHaveReceivedCommand(CopyDBClusterParameterGroupCommand);
  expect(mock).not.toHaveReceivedCommand(ModifyDBClusterParameterGroupCommand);
  expect(mock).not.toHaveReceivedCommand(RebootDBInstanceCommand);
}

describe.each(Object.entries(PLANS))('restore old blue on %s', (engine, { plan, parameter }) => {
  it.each([false, true])(
    'fences the failed writer cluster, moves it to -failed1 and gives the old blue cluster the name back (instances renamed with the cluster: %s)',
    async (renameInstances) => {
      const fake = new FakeAurora(postSwitchover(plan), renameInstances);
      const steps = await runToEnd(fake, plan);

      expect(steps).toEqual([
        'fence-failed-writer',
        'fence-failed-writer',
        'rename-failed-writer',
        'make-old-blue-writable',
        'make-old-blue-writable',
        'rename-old-blue',
        'restored',
      ]);
      expect(fake.get(S)?.version).toBe(plan.currentEngineVersion);
      expect(fake.get(S)?.resourceId).toBe('cluster-blue');
      expect(fake.get(FAILED)?.version).toBe(plan.targetEngineVersion);
      expect(fake.get(OLD)).toBeUndefined();
      expect(fake.readOnly(S, parameter)).toBe('0');
      expect(fake.readOnly(FAILED, parameter)).toBe('1');
      // Copies of the DB cluster parameter groups, the read-only parameter by the next reboot.
      expect(mock).toHaveReceivedCommandWith(CopyDBClusterParameterGroupCommand, {
        SourceDBClusterParameterGroupIdentifier: GREEN_GROUP,
        TargetDBClusterParameterGroupIdentifier: `${GREEN_GROUP}-fence`,
      });
      expect(mock).toHaveReceivedCommandWith(CopyDBClusterParameterGroupCommand, {
        SourceDBClusterParameterGroupIdentifier: BLUE_GROUP,
        TargetDBClusterParameterGroupIdentifier: `${BLUE_GROUP}-restore`,
      });
      expect(
        mock
          .commandCalls(ModifyDBClusterParameterGroupCommand)
          .map((c) => c.args[0].input.Parameters),
      ).toEqual([
        [{ ParameterName: parameter, ParameterValue: '1', ApplyMethod: 'pending-reboot' }],
        [{ ParameterName: parameter, ParameterValue: '0', ApplyMethod: 'pending-reboot' }],
      ]);
      // The clusters are renamed, at once; each writer instance rebooted once; nothing else.
      expect(
        mock
          .commandCalls(ModifyDBClusterCommand)
          .map((c) => c.args[0].input)
          .filter((i) => i.NewDBClusterIdentifier !== undefined),
      ).toEqual([
        { DBClusterIdentifier: S, NewDBClusterIdentifier: FAILED, ApplyImmediately: true },
        { DBClusterIdentifier: OLD, NewDBClusterIdentifier: S, ApplyImmediately: true },
      ]);
      expect(
        mock.commandCalls(RebootDBInstanceCommand).map((c) => c.args[0].input.DBInstanceIdentifier),
      ).toEqual([`${S}-writer`, `${S}-writer-old1`]);
      expect(mock).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
      expect(mock).not.toHaveReceivedCommand(CopyDBParameterGroupCommand);
      expect(mock).not.toHaveReceivedCommand(ModifyDBParameterGroupCommand);
      expect(mock).not.toHaveReceivedCommand(RebootDBClusterCommand);
      expect(engine).toBe(plan.engine);
    },
  );

  it('reboots the writer the cluster names now, not the one it named before a failover', async () => {
    const fake = new FakeAurora(postSwitchover(plan));
    await restoreOldBlue(rds, plan); // attaches the fence copy
    fake.tick();
    const green = fake.get(S);
    if (green === undefined) throw new Error('no green');
    green.members = green.members.map((m) => ({ ...m, writer: !m.writer }));
    const r = await restoreOldBlue(rds, plan, {});
    expect(r).toMatchObject({ step: 'fence-failed-writer', fenced: true });
    expect(mock).toHaveReceivedCommandWith(RebootDBInstanceCommand, {
      DBInstanceIdentifier: `${S}-reader`,
    });
    expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 1);
  });

  it('waits while the writer instance reboots, and renames nothing', async () => {
    const fake = new FakeAurora(postSwitchover(plan));
    await restoreOldBlue(rds, plan);
    fake.tick();
    await restoreOldBlue(rds, plan, {}); // reboots the writer
    mock.resetHistory();
    const r = await restoreOldBlue(rds, plan, { fenced: true });
    expect(r).toMatchObject({ step: 'wait', fenced: true });
    expect(r.detail).toContain(`${S}-writer`);
    expect(r.detail).toContain('rebooting');
    expectNoChange();
  });

  it('reboots again while the writer still has the fence copy pending a reboot', async () => {
    const green = cluster(S, plan.targetEngineVersion, 'green', { group: `${GREEN_GROUP}-fence` });
    green.members[0] = { instance: `${S}-writer`, writer: true, groupStatus: 'pending-reboot' };
    new FakeAurora([green, cluster(OLD, plan.currentEngineVersion, 'blue')]);
    const r = await restoreOldBlue(rds, plan, { fenced: true });
    expect(r.step).toBe('fence-failed-writer');
    expect(mock).toHaveReceivedCommandWith(RebootDBInstanceCommand, {
      DBInstanceIdentifier: `${S}-writer`,
    });
    expect(mock).not.toHaveReceivedCommand(ModifyDBClusterCommand);
  });

  it('never touches the failed writer cluster when there is no old blue cluster', async () => {
    new FakeAurora([cluster(S, plan.targetEngineVersion, 'green')]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `DB cluster ${OLD} does not exist, so there is no old blue (${plan.currentEngineVersion}) to restore`,
    );
    expectNoChange();
  });

  it('refuses to move the failed writer cluster onto a -failed1 cluster that is another one', async () => {
    new FakeAurora([
      ...postSwitchover(plan),
      cluster(FAILED, plan.targetEngineVersion, 'green', { resourceId: 'cluster-earlier' }),
    ]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(`DB cluster ${FAILED} already exists`);
    expectNoChange();
  });

  it('waits while the cluster under the name is renaming', async () => {
    new FakeAurora([
      cluster(S, plan.targetEngineVersion, 'green', { status: 'renaming' }),
      cluster(OLD, plan.currentEngineVersion, 'blue'),
    ]);
    const r = await restoreOldBlue(rds, plan, { fenced: true });
    expect(r).toMatchObject({ step: 'wait', done: false, fenced: true });
    expectNoChange();
  });

  it('throws, changing nothing, when the old blue cluster is stopped', async () => {
    new FakeAurora([
      cluster(S, plan.targetEngineVersion, 'green'),
      cluster(OLD, plan.currentEngineVersion, 'blue', { status: 'stopped' }),
    ]);
    await expect(restoreOldBlue(rds, plan)).rejects.toThrow(
      `DB cluster ${OLD} (the old blue, ${plan.currentEngineVersion}) is stopped`,
    );
    expectNoChange();
  });

  it('reuses a copy an earlier restore left, setting the value again', async () => {
    const fake = new FakeAurora(postSwitchover(plan));
    fake.groups.set(`${GREEN_GROUP}-fence`, { [parameter]: '0' });
    const r = await restoreOldBlue(rds, plan);
    expect(r.step).toBe('fence-failed-writer');
    expect(fake.groups.get(`${GREEN_GROUP}-fence`)?.[parameter]).toBe('1');
    expect(fake.get(S)?.group).toBe(`${GREEN_GROUP}-fence`);
  });
});

describe.each(Object.entries(PLANS))('fence old blue on %s', (_engine, { plan, parameter }) => {
  async function fenceToEnd(fake: FakeAurora): Promise<RestoreOldBlueResult['step'][]> {
    const steps: RestoreOldBlueResult['step'][] = [];
    let progress: Partial<RestoreProgress> = {};
    for (let i = 0; i < 10; i++) {
      const r = await fenceOldBlueCluster(rds, plan, progress);
      steps.push(r.step);
      if (r.done) return steps;
      progress = { fenced: r.fenced };
      fake.tick();
    }
    throw new Error(`not done after 10 calls: ${steps.join(', ')}`);
  }

  it('attaches a read-only copy of its group, reboots its writer, and is done once the writer runs it', async () => {
    const fake = new FakeAurora(postSwitchover(plan));
    expect(await fenceToEnd(fake)).toEqual(['fence-old-blue', 'fence-old-blue', 'fenced']);
    expect(fake.get(OLD)?.group).toBe(`${BLUE_GROUP}-fence`);
    expect(fake.readOnly(OLD, parameter)).toBe('1');
    // Green, the writer, is not touched; nothing is renamed.
    expect(fake.get(S)?.group).toBe(GREEN_GROUP);
    expect(
      mock.commandCalls(RebootDBInstanceCommand).map((c) => c.args[0].input.DBInstanceIdentifier),
    ).toEqual([`${S}-writer-old1`]);
    expect(
      mock.commandCalls(ModifyDBClusterCommand).map((c) => c.args[0].input.NewDBClusterIdentifier),
    ).toEqual([undefined]);
  });

  it('is not done while the writer still has the fence pending a reboot', async () => {
    const fake = new FakeAurora(postSwitchover(plan));
    await fenceOldBlueCluster(rds, plan);
    fake.tick();
    const r = await fenceOldBlueCluster(rds, plan, { fenced: true });
    expect(r).toMatchObject({ done: false, step: 'fence-old-blue' });
    expect(mock).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 1);
  });

  it('refuses, changing nothing, when there is no -old1 cluster to fence', async () => {
    new FakeAurora([cluster(S, plan.targetEngineVersion, 'green')]);
    await expect(fenceOldBlueCluster(rds, plan)).rejects.toThrow(
      `cannot fence the old blue: DB cluster ${OLD} was not found, so the blue/green deployment is kept`,
    );
    expectNoChange();
  });

  it('prepares the fence group from blue before the switchover, attached to nothing', async () => {
    const fake = new FakeAurora([cluster(S, plan.currentEngineVersion, 'blue', { id: S })]);
    expect(await prepareFence(rds, plan)).toEqual({ group: `${BLUE_GROUP}-fence` });
    expect(fake.groups.get(`${BLUE_GROUP}-fence`)?.[parameter]).toBe('1');
    expect(fake.get(S)?.group).toBe(BLUE_GROUP);
    expect(mock).not.toHaveReceivedCommand(ModifyDBClusterCommand);
    expect(mock).not.toHaveReceivedCommand(RebootDBInstanceCommand);
  });

  it('attaches a prepared fence in one call before old blue is rebooted', async () => {
    const fake = new FakeAurora(postSwitchover(plan));
    fake.groups.set(`${BLUE_GROUP}-fence`, { [parameter]: '1' });
    expect(await formerWriterInstance(rds, plan, 'old-blue')).toBe(`${S}-writer-old1`);
    expect(fake.get(OLD)?.group).toBe(`${BLUE_GROUP}-fence`);
    expect(mock).toHaveReceivedCommandTimes(ModifyDBClusterCommand, 1);
    expect(mock).not.toHaveReceivedCommand(CopyDBClusterParameterGroupCommand);
  });

  it('makes the fence itself when none was prepared, and never fences the failed writer again', async () => {
    const fake = new FakeAurora(postSwitchover(plan));
    await formerWriterInstance(rds, plan, 'old-blue');
    expect(fake.get(OLD)?.group).toBe(`${BLUE_GROUP}-fence`);
    expect(fake.groups.get(`${BLUE_GROUP}-fence`)?.[parameter]).toBe('1');
    mock.resetHistory();
    fake.clusters.push({ ...cluster(FAILED, plan.targetEngineVersion, 'green'), id: FAILED });
    await formerWriterInstance(rds, plan, 'failed-writer');
    expect(mock).not.toHaveReceivedCommand(ModifyDBClusterCommand);
  });
});
