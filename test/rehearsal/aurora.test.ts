import { defaultAssumptions } from '../../rehearsal/assumptions';
import { authorize, type Statement } from '../../rehearsal/iam';
import { mysqlModule } from '../../rehearsal/mysql-model';
import { type RehearsalReport, defaultApp, rehearse } from '../../rehearsal/rehearse';
import { Simulation } from '../../rehearsal/sim';
import { LIGHT_RATES } from '../../rehearsal/sweep';
import type { SynthesizedApp } from '../../rehearsal/synthesized';
import type { World } from '../../rehearsal/world';
import { DEFAULT_LATENCIES, type ModelContext, type WorldEvent } from '../../rehearsal/world/core';
import { RdsModel } from '../../rehearsal/world/rds';
import { ClusterModel } from '../../rehearsal/world/rds-cluster';

/*
 * The rehearsal's Aurora model (rehearsal/world/rds-cluster.ts): a DB cluster with a writer
 * and a reader, its DB cluster parameter groups, and the blue/green deployment that copies,
 * switches over and renames clusters. First the model's calls one by one, then (once the
 * config accepts Aurora) the whole runbook against it.
 */

const ARN = 'arn:aws:rds:eu-west-1:123456789012';

/** A synthesized app holding one Aurora cluster, as readApp reads the demo's. */
function clusterApp(engine: 'aurora-postgresql' | 'aurora-mysql'): SynthesizedApp {
  const pg = engine === 'aurora-postgresql';
  const version = pg ? '16.6' : '8.0.mysql_aurora.3.10.0';
  const port = pg ? 5432 : 3306;
  const member = (identifier: string) => ({
    identifier,
    engine,
    engineVersion: version,
    parameterGroupName: `default.${engine}`,
    backupRetentionDays: 7,
    deletionProtection: true,
    port,
    address: RdsModel.endpoint(identifier),
    clusterIdentifier: 'platform-db',
  });
  return {
    instances: [member('platform-db-reader'), member('platform-db-writer')],
    parameterGroups: [],
    clusters: [
      {
        identifier: 'platform-db',
        engine,
        engineVersion: version,
        parameterGroupName: 'blue-cpg',
        backupRetentionDays: 7,
        deletionProtection: true,
        port,
        address: ClusterModel.endpoint('platform-db'),
      },
    ],
    clusterParameterGroups: [
      { name: 'blue-cpg', family: `${engine}16`, parameters: { 'rds.logical_replication': '1' } },
      { name: 'green-cpg', family: `${engine}17`, parameters: { 'rds.logical_replication': '1' } },
    ],
  } as unknown as SynthesizedApp;
}

/** Runs `fn` against a fresh model of the cluster app, in virtual time. */
async function withCluster(
  fn: (rds: RdsModel, sim: Simulation, events: WorldEvent[]) => Promise<void>,
  options: { engine?: 'aurora-postgresql' | 'aurora-mysql'; assume?: Record<string, string> } = {},
): Promise<void> {
  const sim = new Simulation(0);
  const events: WorldEvent[] = [];
  const assumptions: Record<string, string> = { ...defaultAssumptions(), ...options.assume };
  await sim.run(async () => {
    const ctx: ModelContext = {
      now: () => sim.now(),
      after: (seconds, f) => void setTimeout(f, seconds * 1000),
      sleep: (seconds) => sim.sleep(seconds),
      draw: () => 0.5,
      latency: DEFAULT_LATENCIES,
      scenario: {},
      assumption: (name) => assumptions[name] ?? 'star',
      emit: (e) => events.push({ t: sim.now(), ...e } as WorldEvent),
    };
    const engine = options.engine ?? 'aurora-postgresql';
    const rds = new RdsModel(ctx, clusterApp(engine), 'platform-db', [
      engine === 'aurora-postgresql' ? '17.4' : '8.0.mysql_aurora.3.12.0',
    ]);
    rds.snapshotGroups();
    await fn(rds, sim, events);
  });
}

/** Calls an operation as a caller would: what IAM checks, then what it answers. */
function call(rds: RdsModel, op: string, input: Record<string, unknown>) {
  const operation = rds.service[op];
  if (operation === undefined) throw new Error(`no ${op}`);
  const iam = operation.iam(input).map((r) => `${r.action} ${r.resource}`);
  return { iam, out: operation.run(input) as Record<string, unknown> };
}

type ClusterOut = {
  DBClusters: {
    DBClusterIdentifier: string;
    Status: string;
    Endpoint: string;
    DeletionProtection: boolean;
    DBClusterMembers: {
      DBInstanceIdentifier: string;
      IsClusterWriter: boolean;
      DBClusterParameterGroupStatus: string;
    }[];
    DBClusterParameterGroup: string;
  }[];
};
const describe1 = (rds: RdsModel, id: string) =>
  (call(rds, 'DescribeDBClusters', { DBClusterIdentifier: id }).out as ClusterOut).DBClusters[0];

/** Creates the deployment and waits until green is built. */
async function createGreen(rds: RdsModel, sim: Simulation) {
  const { iam, out } = call(rds, 'CreateBlueGreenDeployment', {
    BlueGreenDeploymentName: 'upgrade',
    Source: `${ARN}:cluster:platform-db`,
    TargetEngineVersion: '17.4',
    TargetDBClusterParameterGroupName: 'green-cpg',
    Tags: [{ Key: 'quiet-upgrade:execution', Value: 'x' }],
  });
  const id = (out.BlueGreenDeployment as { BlueGreenDeploymentIdentifier: string })
    .BlueGreenDeploymentIdentifier;
  await sim.sleep(DEFAULT_LATENCIES.greenBuild + 1);
  return { id, iam };
}

/** Switches over and waits until it completed. */
async function switchOver(rds: RdsModel, sim: Simulation, id: string) {
  const result = call(rds, 'SwitchoverBlueGreenDeployment', { BlueGreenDeploymentIdentifier: id });
  await sim.sleep(DEFAULT_LATENCIES.switchover + 1);
  return result;
}

const reason = (rds: RdsModel, instance: string) => {
  const i = rds.named(instance);
  if (i === undefined) throw new Error(`no instance ${instance}`);
  return rds.readOnlyReason(i);
};

describe('the Aurora cluster model', () => {
  it('describes the cluster: members with the writer, its group in sync, protection, backups', async () => {
    await withCluster(async (rds) => {
      const { iam, out } = call(rds, 'DescribeDBClusters', { DBClusterIdentifier: 'platform-db' });
      expect(iam).toEqual([`rds:DescribeDBClusters ${ARN}:cluster:platform-db`]);
      expect((out as ClusterOut).DBClusters[0]).toMatchObject({
        DBClusterIdentifier: 'platform-db',
        Status: 'available',
        EngineVersion: '16.6',
        Endpoint: 'platform-db.cluster-c0rehearsal.eu-west-1.rds.amazonaws.com',
        DeletionProtection: true,
        BackupRetentionPeriod: 7,
        DBClusterParameterGroup: 'blue-cpg',
        DBClusterMembers: [
          {
            DBInstanceIdentifier: 'platform-db-writer',
            IsClusterWriter: true,
            DBClusterParameterGroupStatus: 'in-sync',
          },
          { DBInstanceIdentifier: 'platform-db-reader', IsClusterWriter: false },
        ],
      });
      expect(() => call(rds, 'DescribeDBClusters', { DBClusterIdentifier: 'nope' })).toThrow(
        expect.objectContaining({ name: 'DBClusterNotFoundFault' }) as Error,
      );
      const params = call(rds, 'DescribeDBClusterParameters', {
        DBClusterParameterGroupName: 'blue-cpg',
      });
      expect(params.iam).toEqual([`rds:DescribeDBClusterParameters ${ARN}:cluster-pg:blue-cpg`]);
      expect(params.out.Parameters).toEqual([
        { ParameterName: 'rds.logical_replication', ParameterValue: '1', Source: 'user' },
      ]);
      // The cluster endpoint reaches the writer, which takes writes; the reader does not.
      expect(rds.connect(ClusterModel.endpoint('platform-db')).instance.identifier).toBe(
        'platform-db-writer',
      );
      expect(reason(rds, 'platform-db-writer')).toBeNull();
      expect(reason(rds, 'platform-db-reader')).toContain('reader');
    });
  });

  it('builds green as a cluster and instances of its own, authorized on each ARN it creates', async () => {
    await withCluster(async (rds, sim) => {
      const { id, iam } = await createGreen(rds, sim);
      expect(iam).toEqual([
        `rds:CreateBlueGreenDeployment ${ARN}:deployment:${id}`,
        `rds:CreateBlueGreenDeployment ${ARN}:cluster:platform-db`,
        `rds:CreateBlueGreenDeployment ${ARN}:cluster-pg:green-cpg`,
        `rds:CreateDBCluster ${ARN}:cluster:platform-db-green-000001`,
        `rds:CreateDBInstance ${ARN}:db:platform-db-writer-green-010001`,
        `rds:CreateDBInstance ${ARN}:db:platform-db-reader-green-020001`,
        `rds:AddTagsToResource ${ARN}:deployment:${id}`,
      ]);
      const d = (
        call(rds, 'DescribeBlueGreenDeployments', { BlueGreenDeploymentIdentifier: id }).out as {
          BlueGreenDeployments: Record<string, unknown>[];
        }
      ).BlueGreenDeployments[0];
      expect(d).toMatchObject({
        Status: 'AVAILABLE',
        Source: `${ARN}:cluster:platform-db`,
        Target: `${ARN}:cluster:platform-db-green-000001`,
        SwitchoverDetails: [
          { SourceMember: `${ARN}:cluster:platform-db`, Status: 'AVAILABLE' },
          {
            SourceMember: `${ARN}:db:platform-db-writer`,
            TargetMember: `${ARN}:db:platform-db-writer-green-010001`,
          },
          {
            SourceMember: `${ARN}:db:platform-db-reader`,
            TargetMember: `${ARN}:db:platform-db-reader-green-020001`,
          },
        ],
      });
      expect(describe1(rds, 'platform-db-green-000001')).toMatchObject({
        EngineVersion: '17.4',
        DBClusterParameterGroup: 'green-cpg',
        DeletionProtection: true,
      });
      // Green replicates blue: read-only, whoever connects.
      expect(reason(rds, 'platform-db-writer-green-010001')).toContain('green is read-only');
      // A second deployment for the same cluster is refused.
      expect(() =>
        call(rds, 'CreateBlueGreenDeployment', {
          BlueGreenDeploymentName: 'again',
          Source: `${ARN}:cluster:platform-db`,
        }),
      ).toThrow(expect.objectContaining({ name: 'InvalidDBClusterStateFault' }) as Error);
    });
  });

  it('refuses to build green while blue’s writer is not in sync with its cluster group', async () => {
    await withCluster(async (rds) => {
      call(rds, 'CopyDBClusterParameterGroup', {
        SourceDBClusterParameterGroupIdentifier: 'blue-cpg',
        TargetDBClusterParameterGroupIdentifier: 'other',
        TargetDBClusterParameterGroupDescription: 'x',
      });
      call(rds, 'ModifyDBCluster', {
        DBClusterIdentifier: 'platform-db',
        DBClusterParameterGroupName: 'other',
      });
      expect(describe1(rds, 'platform-db')?.DBClusterMembers[0]).toMatchObject({
        DBClusterParameterGroupStatus: 'pending-reboot',
      });
      expect(() =>
        call(rds, 'CreateBlueGreenDeployment', {
          BlueGreenDeploymentName: 'u',
          Source: `${ARN}:cluster:platform-db`,
        }),
      ).toThrow(expect.objectContaining({ name: 'InvalidDBClusterStateFault' }) as Error);
    });
  });

  it('switches over: green takes the names and the endpoint, old blue is -old1 and read-only', async () => {
    await withCluster(async (rds, sim, events) => {
      const { id } = await createGreen(rds, sim);
      const { iam } = await switchOver(rds, sim, id);
      expect(iam).toEqual([
        `rds:SwitchoverBlueGreenDeployment ${ARN}:deployment:${id}`,
        `rds:ModifyDBCluster ${ARN}:cluster:platform-db`,
        `rds:PromoteReadReplicaDBCluster ${ARN}:cluster:platform-db`,
        `rds:ModifyDBCluster ${ARN}:cluster:platform-db-green-000001`,
        `rds:PromoteReadReplicaDBCluster ${ARN}:cluster:platform-db-green-000001`,
      ]);
      expect(describe1(rds, 'platform-db')).toMatchObject({
        EngineVersion: '17.4',
        DBClusterMembers: [
          { DBInstanceIdentifier: 'platform-db-writer', IsClusterWriter: true },
          { DBInstanceIdentifier: 'platform-db-reader' },
        ],
      });
      expect(describe1(rds, 'platform-db-old1')).toMatchObject({
        EngineVersion: '16.6',
        Endpoint: 'platform-db-old1.cluster-c0rehearsal.eu-west-1.rds.amazonaws.com',
        DBClusterMembers: [
          { DBInstanceIdentifier: 'platform-db-writer-old1' },
          { DBInstanceIdentifier: 'platform-db-reader-old1' },
        ],
      });
      expect(rds.connect(ClusterModel.endpoint('platform-db')).instance.engineVersion).toBe('17.4');
      expect(reason(rds, 'platform-db-writer')).toBeNull();
      expect(reason(rds, 'platform-db-writer-old1')).toContain('stays read-only');
      expect(rds.formerWritersTakingWrites()).toEqual([]);
      const d = (
        call(rds, 'DescribeBlueGreenDeployments', { BlueGreenDeploymentIdentifier: id }).out as {
          BlueGreenDeployments: Record<string, unknown>[];
        }
      ).BlueGreenDeployments[0];
      expect(d).toMatchObject({
        Status: 'SWITCHOVER_COMPLETED',
        Source: `${ARN}:cluster:platform-db-old1`,
        Target: `${ARN}:cluster:platform-db`,
      });
      expect(events.filter((e) => e.kind === 'writer')).toHaveLength(2);
    });
  });

  it('keeps old blue read-only through a reboot until its group sets the parameter to 0 (parameter-and-reboot)', async () => {
    await withCluster(async (rds, sim) => {
      await switchOver(rds, sim, (await createGreen(rds, sim)).id);
      call(rds, 'RebootDBInstance', { DBInstanceIdentifier: 'platform-db-writer-old1' });
      await sim.sleep(DEFAULT_LATENCIES.reboot + 1);
      expect(reason(rds, 'platform-db-writer-old1')).toContain('stays read-only');
      // The restore's way: a copy of old blue's group with the parameter off, attached, and a
      // reboot; the stack's own group is not changed.
      const copy = call(rds, 'CopyDBClusterParameterGroup', {
        SourceDBClusterParameterGroupIdentifier: 'blue-cpg',
        TargetDBClusterParameterGroupIdentifier: 'blue-cpg-restore',
        TargetDBClusterParameterGroupDescription: 'restore',
      });
      expect(copy.iam).toEqual([
        `rds:CopyDBClusterParameterGroup ${ARN}:cluster-pg:blue-cpg`,
        `rds:CopyDBClusterParameterGroup ${ARN}:cluster-pg:blue-cpg-restore`,
      ]);
      const modify = call(rds, 'ModifyDBClusterParameterGroup', {
        DBClusterParameterGroupName: 'blue-cpg-restore',
        Parameters: [
          {
            ParameterName: 'default_transaction_read_only',
            ParameterValue: '0',
            ApplyMethod: 'pending-reboot',
          },
        ],
      });
      expect(modify.iam).toEqual([
        `rds:ModifyDBClusterParameterGroup ${ARN}:cluster-pg:blue-cpg-restore`,
      ]);
      // Attaching waits for the deployment to be gone (rename-during-deployment is about
      // renames; a group change is allowed).
      const attach = call(rds, 'ModifyDBCluster', {
        DBClusterIdentifier: 'platform-db-old1',
        DBClusterParameterGroupName: 'blue-cpg-restore',
      });
      expect(attach.iam).toEqual([
        `rds:ModifyDBCluster ${ARN}:cluster:platform-db-old1`,
        `rds:ModifyDBCluster ${ARN}:cluster-pg:blue-cpg-restore`,
      ]);
      expect(reason(rds, 'platform-db-writer-old1')).toContain('stays read-only');
      const reboot = call(rds, 'RebootDBInstance', {
        DBInstanceIdentifier: 'platform-db-writer-old1',
      });
      expect(reboot.iam).toEqual([`rds:RebootDBInstance ${ARN}:db:platform-db-writer-old1`]);
      await sim.sleep(DEFAULT_LATENCIES.reboot + 1);
      expect(reason(rds, 'platform-db-writer-old1')).toBeNull();
      expect(rds.changedGroups()).toEqual([]);
    });
  });

  it('unlocks old blue at any reboot of its writer under aurora-old-blue-unlock=writer-reboot', async () => {
    await withCluster(
      async (rds, sim) => {
        await switchOver(rds, sim, (await createGreen(rds, sim)).id);
        call(rds, 'RebootDBInstance', { DBInstanceIdentifier: 'platform-db-reader-old1' });
        await sim.sleep(DEFAULT_LATENCIES.reboot + 1);
        expect(reason(rds, 'platform-db-writer-old1')).toContain('stays read-only');
        call(rds, 'RebootDBInstance', { DBInstanceIdentifier: 'platform-db-writer-old1' });
        await sim.sleep(DEFAULT_LATENCIES.reboot + 1);
        expect(reason(rds, 'platform-db-writer-old1')).toBeNull();
        expect(rds.formerWritersTakingWrites()).toEqual(['platform-db-writer-old1']);
      },
      { assume: { 'aurora-old-blue-unlock': 'writer-reboot' } },
    );
  });

  it('lifts old blue’s read-only lock when the deployment is deleted, unless its group keeps it read-only', async () => {
    // "After you delete a blue/green deployment, RDS removes read-only protections from the
    // previous production DB cluster."
    await withCluster(async (rds, sim) => {
      const { id } = await createGreen(rds, sim);
      await switchOver(rds, sim, id);
      expect(() =>
        call(rds, 'DeleteBlueGreenDeployment', {
          BlueGreenDeploymentIdentifier: id,
          DeleteTarget: true,
        }),
      ).toThrow(expect.objectContaining({ name: 'InvalidBlueGreenDeploymentStateFault' }) as Error);
      const { iam } = call(rds, 'DeleteBlueGreenDeployment', {
        BlueGreenDeploymentIdentifier: id,
        DeleteTarget: false,
      });
      expect(iam).toEqual([`rds:DeleteBlueGreenDeployment ${ARN}:deployment:${id}`]);
      await sim.sleep(DEFAULT_LATENCIES.deleteDeployment + 1);
      expect(rds.deployments.size).toBe(0);
      expect(rds.formerWritersTakingWrites()).toEqual(['platform-db-writer-old1']);
    });
    await withCluster(async (rds, sim) => {
      const { id } = await createGreen(rds, sim);
      await switchOver(rds, sim, id);
      // A fence first: old blue's group sets the parameter on, at once.
      call(rds, 'ModifyDBClusterParameterGroup', {
        DBClusterParameterGroupName: 'blue-cpg',
        Parameters: [
          {
            ParameterName: 'default_transaction_read_only',
            ParameterValue: '1',
            ApplyMethod: 'immediate',
          },
        ],
      });
      call(rds, 'DeleteBlueGreenDeployment', { BlueGreenDeploymentIdentifier: id });
      await sim.sleep(DEFAULT_LATENCIES.deleteDeployment + 1);
      expect(reason(rds, 'platform-db-writer-old1')).not.toBeNull();
      expect(rds.formerWritersTakingWrites()).toEqual([]);
      expect(rds.changedGroups()).toEqual(['cluster-pg:blue-cpg']);
    });
  });

  it('deletes green with its deployment only once its deletion protection is off', async () => {
    await withCluster(async (rds, sim) => {
      const { id } = await createGreen(rds, sim);
      const del = { BlueGreenDeploymentIdentifier: id, DeleteTarget: true };
      expect(() => call(rds, 'DeleteBlueGreenDeployment', del)).toThrow(
        expect.objectContaining({ name: 'InvalidParameterCombination' }) as Error,
      );
      const off = call(rds, 'ModifyDBCluster', {
        DBClusterIdentifier: 'platform-db-green-000001',
        DeletionProtection: false,
      });
      expect(off.iam).toEqual([`rds:ModifyDBCluster ${ARN}:cluster:platform-db-green-000001`]);
      expect(call(rds, 'DeleteBlueGreenDeployment', del).iam).toEqual([
        `rds:DeleteBlueGreenDeployment ${ARN}:deployment:${id}`,
        `rds:DeleteDBCluster ${ARN}:cluster:platform-db-green-000001`,
        `rds:DeleteDBInstance ${ARN}:db:platform-db-writer-green-010001`,
        `rds:DeleteDBInstance ${ARN}:db:platform-db-reader-green-020001`,
      ]);
      await sim.sleep(DEFAULT_LATENCIES.deleteDeployment + 1);
      expect(rds.aurora.named('platform-db-green-000001')).toBeUndefined();
      expect(rds.named('platform-db-writer-green-010001')).toBeUndefined();
      expect(rds.blueUnprotected()).toBe(false);
    });
  });

  it.each([
    ['like-instances', 'renaming', DEFAULT_LATENCIES.renameInstance + 1],
    ['at-once', 'available', 0],
  ])(
    'renames a cluster (cluster-rename-effective=%s) without renaming its instances',
    async (value, status, wait) => {
      await withCluster(
        async (rds, sim) => {
          const { id } = await createGreen(rds, sim);
          await switchOver(rds, sim, id);
          const rename = {
            DBClusterIdentifier: 'platform-db',
            NewDBClusterIdentifier: 'platform-db-failed1',
            ApplyImmediately: true,
          };
          // While the deployment exists (rename-during-deployment=refused).
          expect(() => call(rds, 'ModifyDBCluster', rename)).toThrow(
            expect.objectContaining({ name: 'InvalidDBClusterStateFault' }) as Error,
          );
          call(rds, 'DeleteBlueGreenDeployment', { BlueGreenDeploymentIdentifier: id });
          await sim.sleep(DEFAULT_LATENCIES.deleteDeployment + 1);
          const before = rds.connect(ClusterModel.endpoint('platform-db'));
          expect(call(rds, 'ModifyDBCluster', rename).iam).toEqual([
            `rds:ModifyDBCluster ${ARN}:cluster:platform-db`,
          ]);
          const named = rds.aurora.named(
            value === 'at-once' ? 'platform-db-failed1' : 'platform-db',
          );
          expect(named && describe1(rds, named.identifier)?.Status).toBe(status);
          await sim.sleep(wait);
          expect(describe1(rds, 'platform-db-failed1')).toMatchObject({
            Status: 'available',
            Endpoint: ClusterModel.endpoint('platform-db-failed1'),
            // "The endpoints of the DB instances in the DB cluster don't change."
            DBClusterMembers: [{ DBInstanceIdentifier: 'platform-db-writer' }, {}],
          });
          // "An outage doesn't occur during this change": the connection stays open.
          expect(rds.alive(before)).toBe(true);
          expect(() => rds.connect(ClusterModel.endpoint('platform-db'))).toThrow('ENOTFOUND');
        },
        { assume: { 'cluster-rename-effective': value } },
      );
    },
  );

  it('checks the cluster calls on cluster ARNs: a policy on db ARNs alone does not allow them', async () => {
    await withCluster(async (rds, sim) => {
      const create = await createGreen(rds, sim);
      const switchover = await switchOver(rds, sim, create.id);
      const requests = [...create.iam, ...switchover.iam].map((line) => {
        const [action = '', resource = ''] = line.split(' ');
        return { action, resource };
      });
      const allow = (Resource: string[]): Statement[] => [
        { Effect: 'Allow', Action: ['rds:*'], Resource },
      ];
      // As the stacks should write it for a cluster (green's names are random: only "*").
      const clusterPolicy = allow([
        `${ARN}:deployment:*`,
        `${ARN}:cluster:platform-db*`,
        `${ARN}:cluster:*`,
        `${ARN}:cluster-pg:green-cpg`,
        `${ARN}:db:*`,
      ]);
      const instancePolicy = allow([`${ARN}:deployment:*`, `${ARN}:db:*`, `${ARN}:pg:*`]);
      expect(requests.filter((r) => !authorize(clusterPolicy, r).allowed)).toEqual([]);
      expect(
        requests.filter((r) => !authorize(instancePolicy, r).allowed).map((r) => r.action),
      ).toEqual([
        'rds:CreateBlueGreenDeployment',
        'rds:CreateBlueGreenDeployment',
        'rds:CreateDBCluster',
        'rds:ModifyDBCluster',
        'rds:PromoteReadReplicaDBCluster',
        'rds:ModifyDBCluster',
        'rds:PromoteReadReplicaDBCluster',
      ]);
    });
  });

  it('lists Aurora versions and publishes each engine’s own lag metric', async () => {
    await withCluster(async (rds, sim) => {
      const versions = call(rds, 'DescribeDBEngineVersions', {
        Engine: 'aurora-postgresql',
        EngineVersion: '16.6',
      }).out as { DBEngineVersions: Record<string, unknown>[] };
      expect(versions.DBEngineVersions[0]).toMatchObject({
        Engine: 'aurora-postgresql',
        DBParameterGroupFamily: 'aurora-postgresql16',
        ValidUpgradeTarget: [{ EngineVersion: '17.4', IsMajorVersionUpgrade: true }],
      });
      await createGreen(rds, sim);
      const lag = (metric: string, dimensions: Record<string, string>) =>
        rds.aurora.replicationLag(metric, dimensions, 0, sim.now()).length;
      // Aurora PostgreSQL: blue's writer holds the slot.
      expect(lag('OldestReplicationSlotLag', { DBInstanceIdentifier: 'platform-db-writer' })).toBe(
        10,
      );
      expect(
        lag('OldestReplicationSlotLag', { DBClusterIdentifier: 'platform-db', Role: 'WRITER' }),
      ).toBe(10);
      expect(lag('OldestReplicationSlotLag', { DBInstanceIdentifier: 'platform-db-reader' })).toBe(
        0,
      );
      expect(lag('ReplicaLag', { DBInstanceIdentifier: 'platform-db-writer' })).toBe(0);
    });
    await withCluster(
      async (rds, sim) => {
        await createGreen(rds, sim);
        const green = { DBInstanceIdentifier: 'platform-db-writer-green-010001' };
        expect(
          rds.aurora.replicationLag('AuroraBinlogReplicaLag', green, 0, sim.now()),
        ).toHaveLength(10);
        expect(rds.aurora.replicationLag('ReplicaLag', green, 0, sim.now())).toHaveLength(0);
      },
      { engine: 'aurora-mysql' },
    );
  });

  it('answers Aurora MySQL’s @@version with the MySQL version and @@aurora_version with Aurora’s', async () => {
    await withCluster(
      async (rds, sim) => {
        const m = mysqlModule({ rds, sleep: (s) => sim.sleep(s), latency: 0.025 });
        const c = await m.MysqlConnection.connect({
          host: ClusterModel.endpoint('platform-db'),
          port: 3306,
        });
        const { rows } = await c.select(
          'SELECT @@global.read_only AS ro, @@version AS version, @@aurora_version AS aurora',
        );
        expect(rows).toEqual([['0', '8.0.42', '3.10.0']]);
        const { MYSQL_WRITER_SQL } = await import('../../lambda/verify-writer-mysql/sql');
        expect((await c.select(MYSQL_WRITER_SQL)).rows).toEqual([['0', '0', '8.0.42']]);
      },
      { engine: 'aurora-mysql' },
    );
  });
});

describe('the synthesized Aurora app as the rehearsal reads it', () => {
  it('reads the cluster, its writer and reader, its cluster parameter groups and the secret’s host', () => {
    const app = defaultApp('aurora-postgresql');
    expect(app.clusters).toEqual([
      expect.objectContaining({
        identifier: 'platform-db',
        engine: 'aurora-postgresql',
        engineVersion: '16.6',
        deletionProtection: true,
        port: 5432,
        address: 'platform-db.cluster-c0rehearsal.eu-west-1.rds.amazonaws.com',
      }),
    ]);
    expect(
      app.instances.map((i) => [i.identifier, i.clusterIdentifier, i.engineVersion]).sort(),
    ).toEqual([
      ['platform-db-reader', 'platform-db', '16.6'],
      ['platform-db-writer', 'platform-db', '16.6'],
    ]);
    const group = app.clusterParameterGroups.find(
      (g) => g.name === app.clusters[0]?.parameterGroupName,
    );
    expect(group?.parameters['rds.logical_replication']).toBe('1');
    expect(app.clusterParameterGroups.map((g) => g.family).sort()).toEqual([
      'aurora-postgresql16',
      'aurora-postgresql17',
    ]);
    const secrets = app.secrets
      .filter((s) => s.value.startsWith('{'))
      .map((s) => JSON.parse(s.value) as Record<string, unknown>);
    expect(secrets).toContainEqual(
      expect.objectContaining({
        host: 'platform-db.cluster-c0rehearsal.eu-west-1.rds.amazonaws.com',
        dbClusterIdentifier: 'platform-db',
        port: 5432,
      }),
    );
  });
});

/*
 * The whole runbook against the Aurora model. After a good switchover the clean-up deletes the
 * blue/green deployment, and on Aurora "After you delete a blue/green deployment, RDS removes
 * read-only protections from the previous production DB cluster" (RDS for PostgreSQL and
 * MySQL: "Deleting a blue/green deployment doesn't affect the blue environment"), so old blue
 * is fenced by its own DB cluster parameter group first (lib/constructs/fence-old-blue.ts).
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-deleting.html
 */
describe.each([
  ['aurora-postgresql', '17.4', '16.6'],
  ['aurora-mysql', '8.0.mysql_aurora.3.12.0', '8.0.mysql_aurora.3.10.0'],
] as const)('the runbook on %s, end to end', (engine, to, from) => {
  let happy: RehearsalReport;
  let restored: RehearsalReport;
  let world: World | undefined;
  beforeAll(async () => {
    const app = defaultApp(engine);
    happy = await rehearse({ app, rates: LIGHT_RATES });
    restored = await rehearse({
      app,
      scenario: 'bad-writer',
      rates: LIGHT_RATES,
      inspect: (w) => (world = w),
    });
  }, 120_000);

  it('upgrades and fences old blue before deleting the deployment, every invariant holding', () => {
    expect(happy).toMatchObject({
      outcome: 'UPGRADED',
      writer: { identifier: 'platform-db', engineVersion: to, writable: true },
      invariants: { ok: true, violations: [] },
    });
    expect(happy.messages).toMatchObject({ lost: 0, appliedTwice: 0, inDlq: 0 });
    const states = happy.tasks.upgrade;
    expect(states.indexOf('Clean up: fence old blue')).toBeGreaterThan(-1);
    expect(states.indexOf('Clean up: fence old blue')).toBeLessThan(
      states.indexOf('Delete the blue-green deployment'),
    );
  });

  it('restores old blue when the new writer refuses writes, every invariant holding', () => {
    expect(restored).toMatchObject({
      outcome: 'ROLLED_BACK',
      writer: { identifier: 'platform-db', engineVersion: from, writable: true },
      invariants: { ok: true, violations: [] },
    });
    const failed = world?.rds.aurora.writerOf(world.rds.aurora.named('platform-db-failed1'));
    expect(failed && world?.rds.readOnlyReason(failed)).not.toBeNull();
  });
});

/*
 * Never two writers on Aurora (the one-writer invariant), where only the fence keeps old blue
 * read-only. Each case fails with its fence taken out: one-writer names old blue's writer and
 * the new writer both taking writes.
 */
describe('old blue fenced before anything unlocks it', () => {
  const tasksBefore = (r: RehearsalReport, machine: 'upgrade' | 'watchdog', a: string, b: string) =>
    r.tasks[machine].indexOf(a) > -1 && r.tasks[machine].indexOf(a) < r.tasks[machine].indexOf(b);

  it('before the reboot that ends its sessions, when a reboot alone may unlock it (writer-reboot)', async () => {
    // A quick reboot finishes before the clean-up's fence would have covered for it.
    const r = await rehearse({
      app: defaultApp('aurora-postgresql'),
      scenario: 'old-blue-unreachable',
      rates: LIGHT_RATES,
      assumptions: { 'aurora-old-blue-unlock': 'writer-reboot' },
      world: { latencies: { reboot: 2 } },
    });
    expect(r).toMatchObject({ outcome: 'UPGRADED', invariants: { ok: true, violations: [] } });
    expect(r.tasks.upgrade).toContain('End client sessions on old blue: reboot instead');
  }, 60_000);

  it('before the restore deletes the deployment, while the failed writer still takes writes', async () => {
    const r = await rehearse({
      app: defaultApp('aurora-mysql'),
      scenario: 'new-writer-modifying',
      rates: LIGHT_RATES,
    });
    expect(r).toMatchObject({ outcome: 'ROLLED_BACK', invariants: { ok: true, violations: [] } });
    expect(
      tasksBefore(
        r,
        'upgrade',
        'Restore: fence old blue',
        'Restore: delete the switched-over deployment',
      ),
    ).toBe(true);
  }, 60_000);

  it('before the watchdog deletes a switched-over deployment', async () => {
    const r = await rehearse({
      app: defaultApp('aurora-mysql'),
      scenario: 'abort',
      rates: LIGHT_RATES,
    });
    expect(r).toMatchObject({
      outcome: 'UPGRADED',
      watchdog: 'RECOVERED',
      invariants: { ok: true, violations: [] },
    });
    expect(
      tasksBefore(
        r,
        'watchdog',
        'Recover: fence old blue',
        'Recover: delete the blue-green deployment',
      ),
    ).toBe(true);
  }, 60_000);
});
