import type { IamRequest } from '../iam';
import { ACCOUNT, REGION, type SynthesizedApp } from '../synthesized';
import { AwsError, found, listResource, type ModelContext, type Service } from './core';
import type { Deployment, Instance, RdsModel } from './rds';

/**
 * Aurora as the upgrade meets it: a DB cluster (the unit a blue/green deployment copies,
 * renames and switches over) whose writer is one of its DB instances, the DB cluster
 * parameter group its engine settings live in, and the cluster endpoint clients connect to.
 * The instances stay RdsModel's Instances (they hold the data the writer took, and their
 * connections); this file is what the cluster adds.
 *
 * Blue/green behaviour follows the Aurora user guide; where it is silent the comment says so,
 * and where two behaviours are plausible each is an assumption (assumptions.ts).
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-overview.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html
 */
export interface Cluster {
  identifier: string;
  /** Stable across renames (DbClusterResourceId): who a cluster is. */
  resourceId: string;
  engine: string;
  engineVersion: string;
  status: string;
  /** The DB cluster parameter group attached (DBClusterParameterGroup). */
  parameterGroup: string;
  backupRetentionDays: number;
  deletionProtection: boolean;
  port: number;
  managedPassword: boolean;
  /** Member instances (their resourceIds), the writer first. */
  members: string[];
  /**
   * Old blue after a switchover: "the previous production DB cluster only allows read
   * operations until" it is unlocked (see ClusterModel.unlockedByReboot).
   */
  readOnlyLock: boolean;
  /** Green while the deployment replicates blue to it (blue's cluster resourceId). */
  replicaOf?: string;
  /**
   * Until a rename is effective (cluster-rename-effective=like-instances), the name its
   * endpoint still answers to, and the name it will take.
   */
  renaming?: { to: string };
  tags: { Key: string; Value: string }[];
}

/** A DB cluster parameter group: a namespace of its own in RDS, apart from DB parameter groups. */
export interface ClusterParameterGroup {
  family: string;
  parameters: Record<string, string>;
}

/**
 * The MySQL version each Aurora MySQL 3 minor version is compatible with, from the release
 * notes ("Aurora MySQL 3.10 versions are compatible with MySQL 8.0.42"): what `@@version`
 * answers. 3.12 is not in the notes read: assumed the next community patch (doubt).
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraMySQLReleaseNotes/doc-history.html
 */
const AURORA_MYSQL_COMPATIBLE: Record<string, string> = {
  '3.08': '8.0.39',
  '3.09': '8.0.40',
  '3.10': '8.0.42',
  '3.11': '8.0.43',
  '3.12': '8.0.44',
  '2.12': '5.7.44',
};

/**
 * How an Aurora MySQL engine version ("8.0.mysql_aurora.3.10.0") answers SQL: `@@version` the
 * MySQL-compatible version, `@@aurora_version` (and `aurora_version()`) Aurora's own "3.10.0".
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Updates.Versions.html
 */
export function auroraMysqlVersions(engineVersion: string): { version: string; aurora: string } {
  const [mysql, aurora] = engineVersion.split('.mysql_aurora.');
  if (aurora === undefined || mysql === undefined) {
    return { version: engineVersion, aurora: engineVersion };
  }
  const minor = aurora.split('.').slice(0, 2).join('.');
  return { version: AURORA_MYSQL_COMPATIBLE[minor] ?? `${mysql}.0`, aurora };
}

const isOn = (value: string | undefined) =>
  value !== undefined && ['1', 'on', 'true'].includes(value.toLowerCase());
/** Set to off: "set ... to 0". */
const isOff = (value: string | undefined) =>
  value !== undefined && ['0', 'off', 'false'].includes(value.toLowerCase());
/** Off, or not set (the engine's default, off). */
const disabled = (value: string | undefined) => value === undefined || isOff(value);

export class ClusterModel {
  readonly clusters = new Map<string, Cluster>();
  readonly parameterGroups = new Map<string, ClusterParameterGroup>();
  /** Cluster endpoints a renamed cluster still answers to, from clients' cached addresses. */
  private readonly aliases: { host: string; resourceId: string; until: number }[] = [];
  private blueWasProtected = false;

  constructor(
    private readonly rds: RdsModel,
    private readonly ctx: ModelContext,
    app: SynthesizedApp,
  ) {
    for (const g of app.clusterParameterGroups ?? []) {
      this.parameterGroups.set(g.name, { family: g.family, parameters: { ...g.parameters } });
    }
    for (const spec of app.clusters ?? []) {
      const s = ctx.scenario;
      const members = app.instances
        .filter((i) => i.clusterIdentifier === spec.identifier)
        // The demo's writer is `<id>-writer`; a cluster's first instance is its writer.
        .sort(
          (a, b) =>
            Number(b.identifier.endsWith('-writer')) - Number(a.identifier.endsWith('-writer')),
        )
        .map((i) => `db-${i.identifier}`);
      this.clusters.set(`cluster-${spec.identifier}`, {
        identifier: spec.identifier,
        resourceId: `cluster-${spec.identifier}`,
        engine: spec.engine,
        engineVersion: spec.engineVersion,
        status: 'available',
        parameterGroup: spec.parameterGroupName,
        backupRetentionDays: s.noBackups ? 0 : spec.backupRetentionDays,
        deletionProtection: spec.deletionProtection,
        port: spec.port,
        managedPassword: s.managedPassword ?? false,
        members,
        readOnlyLock: false,
        tags: [],
      });
      for (const id of members) {
        const inst = rds.instances.get(id);
        if (inst === undefined) continue;
        inst.cluster = `cluster-${spec.identifier}`;
        inst.clusterParameters = {
          ...this.parameterGroups.get(spec.parameterGroupName)?.parameters,
        };
        inst.clusterGroupStatus = s.parameterGroupPending ? 'pending-reboot' : 'in-sync';
      }
    }
    this.blueWasProtected = this.named(rds.source)?.deletionProtection ?? false;
  }

  static arn(identifier: string): string {
    return `arn:aws:rds:${REGION}:${ACCOUNT}:cluster:${identifier}`;
  }

  static pgArn(name: unknown): string {
    return `arn:aws:rds:${REGION}:${ACCOUNT}:cluster-pg:${String(name)}`;
  }

  /**
   * The cluster (writer) endpoint, `<id>.cluster-<hash>.<region>.rds.amazonaws.com`; it
   * changes with the cluster's identifier.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Endpoints.Cluster.html
   */
  static endpoint(identifier: string): string {
    return `${identifier}.cluster-c0rehearsal.${REGION}.rds.amazonaws.com`;
  }

  /** The cluster that answers to a name (or an ARN) now. */
  named(nameOrArn: string): Cluster | undefined {
    const name = nameOrArn.startsWith('arn:') ? (nameOrArn.split(':').at(-1) ?? '') : nameOrArn;
    return [...this.clusters.values()].find((c) => c.identifier === name);
  }

  require(nameOrArn: unknown): Cluster {
    const name = String(nameOrArn);
    return found(this.named(name), 'DBClusterNotFoundFault', `DBCluster ${name} not found.`);
  }

  byResource(resourceId: string | undefined): Cluster | undefined {
    return resourceId === undefined ? undefined : this.clusters.get(resourceId);
  }

  /** The cluster's writer instance (DBClusterMembers' IsClusterWriter). */
  writerOf(c: Cluster | undefined): Instance | undefined {
    const id = c?.members[0];
    return id === undefined ? undefined : this.rds.instances.get(id);
  }

  instancesOf(c: Cluster): Instance[] {
    return c.members
      .map((id) => this.rds.instances.get(id))
      .filter((i): i is Instance => i !== undefined);
  }

  /** Whether the source cluster had deletion protection at the start and has none now. */
  blueUnprotected(): boolean {
    const blue = this.clusters.get(`cluster-${this.rds.source}`);
    return this.blueWasProtected && blue !== undefined && !blue.deletionProtection;
  }

  /** The groups as JSON, by name, for the drift check (RdsModel.changedGroups). */
  groupTexts(): [string, string][] {
    return [...this.parameterGroups].map(([name, g]) => [
      `cluster-pg:${name}`,
      JSON.stringify(g.parameters),
    ]);
  }

  private group(name: unknown): ClusterParameterGroup {
    return found(
      this.parameterGroups.get(String(name)),
      'DBParameterGroupNotFoundFault',
      `DBClusterParameterGroup ${String(name)} not found.`,
    );
  }

  /**
   * Why a cluster's instance refuses writes (null: it takes writes). Green while it
   * replicates: "the DB cluster in the green environment does not allow write operations by
   * default" (Aurora MySQL 3's read_only; Aurora PostgreSQL's default_transaction_read_only).
   * Old blue after a switchover, until unlocked. A reader always. Otherwise the engine's
   * read-only parameter as the instance runs it: both are DB cluster parameters.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-overview.html
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Reference.ParameterGroups.html
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Reference.ParameterGroups.html
   */
  readOnlyReason(i: Instance): string | null {
    const c = this.byResource(i.cluster);
    if (c === undefined) return 'the instance belongs to no cluster';
    const parameter = this.rds.engineModel.readOnlyParameter;
    if (c.replicaOf !== undefined) return 'green is read-only while it replicates blue';
    if (c.members[0] !== i.resourceId) return `${i.identifier} is a reader of ${c.identifier}`;
    if (c.readOnlyLock) return `old blue ${c.identifier} stays read-only until it is unlocked`;
    const value = i.clusterParameters?.[parameter];
    if (isOn(value)) return `its cluster parameter group sets ${parameter}=${value}`;
    return null;
  }

  /**
   * The instance a cluster endpoint reaches now: the writer of the cluster that answers to
   * its name (or that a client's cache still holds); null when the host is no cluster's.
   */
  resolve(host: string): Instance | undefined | null {
    const name = /^([a-z0-9-]+)\.cluster-c0rehearsal\./.exec(host)?.[1];
    if (name === undefined) return null;
    const alias = this.aliases.find((a) => a.host === host && a.until > this.ctx.now());
    const cluster =
      alias !== undefined
        ? this.byResource(alias.resourceId)
        : // A rename not yet effective: the old name still answers (like-instances).
          ([...this.clusters.values()].find((c) => c.identifier === name) ?? undefined);
    return this.writerOf(cluster);
  }

  // ------------------------------------------------------------------ blue/green
  /**
   * Green for a cluster source: a cluster `<id>-green-<6 chars>` and one instance per blue
   * instance, each with a suffix of its own: "The names of the copied DB cluster and DB
   * instances are appended with -green-random-characters", and AWS's examples give every
   * member its own characters (my-aurora-mysql-cluster-1-green-gpmaxf, ...-2-green-j2oajq).
   * Green runs the target version and TargetDBClusterParameterGroupName, or blue's group.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-overview.html
   * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateBlueGreenDeployment.html
   */
  greenNames(blue: Cluster, id: string): { cluster: string; instances: string[] } {
    const n = id.slice(-6);
    return {
      cluster: `${blue.identifier}-green-${n}`,
      instances: blue.members.map((m, k) => {
        const inst = this.rds.instances.get(m);
        return `${inst?.identifier ?? m}-green-${String(k + 1).padStart(2, '0')}${n.slice(2)}`;
      }),
    };
  }

  /**
   * What CreateBlueGreenDeployment with a cluster Source is authorized for: the action on the
   * deployment, the source cluster and the target cluster parameter group (the resource
   * types the Service Authorization Reference lists for it: deployment, cluster, cluster-pg),
   * and the dependent actions the Aurora guide says its caller needs, each on what it
   * creates: rds:CreateDBCluster on green's cluster, rds:CreateDBInstance on each green
   * instance, rds:AddTagsToResource for the tags. Green's names are random, so a policy can
   * only name them with "*": "attached IAM policies can't contain partial resource name
   * patterns such as my-db-prefix-*". rds:CreateDBClusterEndpoint is needed only for custom
   * endpoints, which the demo has none of.
   * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-CreateBlueGreenDeployment
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-authorizing-access.html
   */
  createIam(i: Record<string, unknown>, deploymentArn: string, id: string): IamRequest[] {
    const sourceArn = String(i.Source);
    const requests: IamRequest[] = [
      { action: 'rds:CreateBlueGreenDeployment', resource: deploymentArn },
      { action: 'rds:CreateBlueGreenDeployment', resource: sourceArn },
    ];
    if (i.TargetDBClusterParameterGroupName !== undefined) {
      requests.push({
        action: 'rds:CreateBlueGreenDeployment',
        resource: ClusterModel.pgArn(i.TargetDBClusterParameterGroupName),
      });
    }
    const blue = this.named(sourceArn);
    if (blue !== undefined) {
      const names = this.greenNames(blue, id);
      requests.push({ action: 'rds:CreateDBCluster', resource: ClusterModel.arn(names.cluster) });
      for (const name of names.instances) {
        requests.push({
          action: 'rds:CreateDBInstance',
          resource: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${name}`,
        });
      }
    }
    if (Array.isArray(i.Tags) && i.Tags.length > 0) {
      requests.push({ action: 'rds:AddTagsToResource', resource: deploymentArn });
    }
    return requests;
  }

  /** Builds green for a cluster source; the caller makes the deployment. */
  createGreen(i: Record<string, unknown>, id: string): { blue: Cluster; green: Cluster } {
    const blue = this.require(i.Source);
    if (i.TargetDBInstanceClass !== undefined) {
      // "If you're creating a blue/green deployment from an Aurora DB cluster, don't specify
      // this parameter." How RDS refuses it is not documented: an invalid parameter.
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateBlueGreenDeployment.html
      throw new AwsError(
        'InvalidParameterCombination',
        'TargetDBInstanceClass does not apply to an Aurora DB cluster.',
      );
    }
    const targetGroup =
      i.TargetDBClusterParameterGroupName === undefined
        ? blue.parameterGroup
        : String(i.TargetDBClusterParameterGroupName);
    this.group(targetGroup);
    // Blue/green "require[s] that the writer instance be in sync with the DB cluster
    // parameter group, otherwise creation fails".
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html
    const blueWriter = this.writerOf(blue);
    if (blueWriter?.clusterGroupStatus !== 'in-sync') {
      throw new AwsError(
        'InvalidDBClusterStateFault',
        `The writer of DB cluster ${blue.identifier} is not in sync with its DB cluster parameter group.`,
      );
    }
    const names = this.greenNames(blue, id);
    const n = id.slice(-6);
    const version = String(i.TargetEngineVersion ?? blue.engineVersion);
    const green: Cluster = {
      ...blue,
      identifier: names.cluster,
      resourceId: `cluster-green-${n}`,
      engineVersion: version,
      status: 'creating',
      parameterGroup: targetGroup,
      deletionProtection:
        this.ctx.assumption('green-deletion-protection') === 'inherited' && blue.deletionProtection,
      members: [],
      readOnlyLock: false,
      replicaOf: blue.resourceId,
      // "tags from the blue environment are copied to the green environment".
      // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html
      tags: [...blue.tags],
    };
    const parameters = this.parameterGroups.get(targetGroup)?.parameters ?? {};
    blue.members.forEach((member, k) => {
      const from = this.rds.instances.get(member);
      if (from === undefined) return;
      const inst: Instance = {
        ...from,
        identifier: names.instances[k] ?? `${from.identifier}-green-${n}`,
        resourceId: `db-green-${n}-${k + 1}`,
        engineVersion: version,
        status: 'creating',
        cluster: green.resourceId,
        clusterParameters: { ...parameters },
        clusterGroupStatus: 'in-sync',
        readOnlyLock: false,
        replicaOf: undefined,
        epoch: 0,
        nextThreadId: 1,
        blocked: false,
        tables: new Map(),
        keys: new Map(),
      };
      this.rds.instances.set(inst.resourceId, inst);
      green.members.push(inst.resourceId);
    });
    this.clusters.set(green.resourceId, green);
    return { blue, green };
  }

  /** Green is built: the cluster and its instances become available. */
  greenReady(green: Cluster): void {
    green.status = 'available';
    for (const inst of this.instancesOf(green)) inst.status = 'available';
  }

  /**
   * The deployment as DescribeBlueGreenDeployments shows it for a cluster: Source and Target
   * the clusters' ARNs, and SwitchoverDetails one entry for the cluster and one per DB
   * instance (AWS's example also lists custom endpoints, which the demo has none of). After a
   * switchover Source names old blue (`-old1`) and Target the production name, as AWS's
   * example "after switchover" shows.
   * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeBlueGreenDeployments.html
   */
  describeDeployment(d: Deployment) {
    const blue = this.byResource(d.blue);
    const green = this.byResource(d.green);
    const status = d.status === 'DELETING' ? 'AVAILABLE' : d.status;
    const details = [
      {
        SourceMember: blue ? ClusterModel.arn(blue.identifier) : undefined,
        TargetMember: green ? ClusterModel.arn(green.identifier) : undefined,
        Status:
          blue === undefined ? 'MISSING_SOURCE' : green === undefined ? 'MISSING_TARGET' : status,
      },
      ...(d.pairs ?? []).map(([b, g]) => {
        const bi = this.rds.instances.get(b);
        const gi = this.rds.instances.get(g);
        return {
          SourceMember: bi ? `arn:aws:rds:${REGION}:${ACCOUNT}:db:${bi.identifier}` : undefined,
          TargetMember: gi ? `arn:aws:rds:${REGION}:${ACCOUNT}:db:${gi.identifier}` : undefined,
          Status:
            bi === undefined ? 'MISSING_SOURCE' : gi === undefined ? 'MISSING_TARGET' : status,
        };
      }),
    ];
    return {
      BlueGreenDeploymentIdentifier: d.id,
      BlueGreenDeploymentName: d.name,
      Source: details[0]?.SourceMember,
      Target: details[0]?.TargetMember,
      Status: d.status,
      SwitchoverDetails: details,
      TagList: d.tags,
      CreateTime: new Date(d.createdAt),
    };
  }

  /**
   * The switchover's dependent actions, checked on both clusters as the instance model
   * checks ModifyDBInstance and PromoteReadReplica on both instances: the Aurora guide says
   * its caller needs rds:ModifyDBCluster and rds:PromoteReadReplicaDBCluster.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-authorizing-access.html
   */
  switchoverIam(d: Deployment): IamRequest[] {
    const requests: IamRequest[] = [];
    for (const c of [this.byResource(d.blue), this.byResource(d.green)]) {
      if (c === undefined) continue;
      for (const action of ['rds:ModifyDBCluster', 'rds:PromoteReadReplicaDBCluster']) {
        requests.push({ action, resource: ClusterModel.arn(c.identifier) });
      }
    }
    return requests;
  }

  /** The instances a cluster switchover stops writes on and drops connections to. */
  switchoverInstances(d: Deployment): Instance[] {
    return [this.byResource(d.blue), this.byResource(d.green)].flatMap((c) =>
      c === undefined ? [] : this.instancesOf(c),
    );
  }

  /**
   * A completed switchover, as the Aurora guide's "Switchover actions" list it: "RDS renames
   * the DB cluster and DB instances in the green environment to match the corresponding DB
   * cluster and DB instances in the blue environment", renames blue's "by appending -oldn to
   * the current name", and "also renames the endpoints in the green environment to match the
   * corresponding endpoints in the blue environment"; then "the previous production DB
   * cluster only allows read operations until" it is unlocked. Returns the old production
   * name and the cluster that had it (old blue).
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
   */
  completeSwitchover(d: Deployment): { name: string; oldBlue: Cluster } | undefined {
    const blue = this.byResource(d.blue);
    const green = this.byResource(d.green);
    if (blue === undefined || green === undefined) return undefined;
    const name = blue.identifier;
    let n = 1;
    while (this.named(`${name}-old${n}`) !== undefined) n += 1;
    for (const [b, g] of d.pairs ?? []) {
      const bi = this.rds.instances.get(b);
      const gi = this.rds.instances.get(g);
      if (bi === undefined || gi === undefined) continue;
      const instanceName = bi.identifier;
      bi.identifier = `${instanceName}-old${n}`;
      gi.identifier = instanceName;
    }
    blue.identifier = `${name}-old${n}`;
    blue.readOnlyLock = true;
    green.identifier = name;
    green.replicaOf = undefined;
    // "During switchover, blue environment tags replace all tags in the green environment."
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html
    green.tags = [...blue.tags];
    // The cluster volume: green holds every write blue took before writes stopped.
    const from = this.writerOf(blue);
    const to = this.writerOf(green);
    if (from !== undefined && to !== undefined) {
      to.tables = new Map([...from.tables].map(([t, rows]) => [t, [...rows]]));
      to.keys = new Map([...from.keys].map(([t, keys]) => [t, new Set(keys)]));
    }
    return { name, oldBlue: blue };
  }

  /**
   * Delete's dependent actions with DeleteTarget: rds:DeleteDBCluster on green's cluster and
   * rds:DeleteDBInstance on its instances (rds:DeleteDBClusterEndpoint for custom endpoints,
   * which the demo has none of).
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-authorizing-access.html
   */
  deleteIam(d: Deployment | undefined, deleteTarget: boolean): IamRequest[] {
    const green = this.byResource(d?.green);
    if (!deleteTarget || green === undefined || green.replicaOf === undefined) return [];
    return [
      { action: 'rds:DeleteDBCluster', resource: ClusterModel.arn(green.identifier) },
      ...this.instancesOf(green).map((i) => ({
        action: 'rds:DeleteDBInstance',
        resource: `arn:aws:rds:${REGION}:${ACCOUNT}:db:${i.identifier}`,
      })),
    ];
  }

  /**
   * Checks a DeleteTarget delete can go ahead: green "must have deletion protection turned
   * off" (a cluster attribute). How RDS refuses it is not documented: the call is refused,
   * changing nothing. Returns green while it is still a replica.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-deleting.html
   */
  checkDelete(d: Deployment, deleteTarget: boolean): Cluster | undefined {
    const green = this.byResource(d.green);
    if (green?.replicaOf === undefined) return undefined;
    if (deleteTarget && green.deletionProtection) {
      throw new AwsError(
        'InvalidParameterCombination',
        `Cannot delete the target: DB cluster ${green.identifier} has deletion protection enabled.`,
      );
    }
    return green;
  }

  /**
   * The deployment is gone. With DeleteTarget green goes too; without it green stands alone
   * with what it had replicated. After a switchover: "After you delete a blue/green
   * deployment, RDS removes read-only protections from the previous production DB cluster.
   * If the read_only parameter is disabled for the DB cluster, it starts to allow write
   * operations again." The model reads "the read_only parameter" as the engine's read-only
   * parameter (default_transaction_read_only for Aurora PostgreSQL) as old blue's writer runs
   * it.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-deleting.html
   */
  deleted(d: Deployment, deleteTarget: boolean, wasSwitchedOver: boolean): void {
    const green = this.byResource(d.green);
    if (green?.replicaOf !== undefined) {
      if (deleteTarget) {
        for (const id of green.members) this.rds.instances.delete(id);
        this.clusters.delete(green.resourceId);
      } else {
        const blue = this.byResource(green.replicaOf);
        green.replicaOf = undefined;
        const from = this.writerOf(blue);
        const to = this.writerOf(green);
        if (from !== undefined && to !== undefined) {
          to.tables = new Map([...from.tables].map(([t, rows]) => [t, [...rows]]));
          to.keys = new Map([...from.keys].map(([t, keys]) => [t, new Set(keys)]));
        }
      }
    }
    const oldBlue = this.byResource(d.blue);
    if (wasSwitchedOver && oldBlue?.readOnlyLock === true) {
      const writer = this.writerOf(oldBlue);
      if (disabled(writer?.clusterParameters?.[this.rds.engineModel.readOnlyParameter])) {
        oldBlue.readOnlyLock = false;
      }
    }
  }

  /**
   * After a reboot of a cluster's instance: it runs its cluster's parameter group as it is now
   * ("reboot the DB instances in the DB cluster without failover for the new DB cluster
   * parameter group and associated settings to take effect"), and old blue's writer may be
   * unlocked. When, AWS does not say the same way twice: the Aurora guide's switchover
   * actions say old blue "only allows read operations until the writer instance is
   * rebooted"; the RDS guide (and, AWS's research copy says, the Aurora overview) "until you
   * set" the read-only parameter "to 0 and reboot". The assumption aurora-old-blue-unlock
   * chooses: `parameter-and-reboot` or `writer-reboot`.
   * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterParameterGroup.html
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-after
   */
  rebooted(inst: Instance): void {
    const c = this.byResource(inst.cluster);
    if (c === undefined) return;
    inst.clusterParameters = { ...this.parameterGroups.get(c.parameterGroup)?.parameters };
    inst.clusterGroupStatus = 'in-sync';
    if (c.readOnlyLock && c.members[0] === inst.resourceId) {
      const value = inst.clusterParameters[this.rds.engineModel.readOnlyParameter];
      if (this.ctx.assumption('aurora-old-blue-unlock') === 'writer-reboot' || isOff(value)) {
        c.readOnlyLock = false;
      }
    }
  }

  /**
   * Datapoints, one a minute while green replicates: for Aurora MySQL green's writer's
   * AuroraBinlogReplicaLag (seconds; "we recommend using the version of this metric
   * associated with the WRITER role"), for Aurora PostgreSQL blue's writer's
   * OldestReplicationSlotLag (bytes). Asked by DBInstanceIdentifier, or by
   * DBClusterIdentifier with Role WRITER.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.AuroraMonitoring.Metrics.html
   */
  replicationLag(
    metric: string,
    dimensions: Record<string, string>,
    startMs: number,
    endMs: number,
  ): { t: number; value: number }[] {
    const byCluster = this.named(dimensions.DBClusterIdentifier ?? '');
    const instance =
      dimensions.DBInstanceIdentifier !== undefined
        ? this.rds.named(dimensions.DBInstanceIdentifier)
        : dimensions.Role === 'WRITER'
          ? this.writerOf(byCluster)
          : undefined;
    const cluster = this.byResource(instance?.cluster);
    if (
      instance === undefined ||
      cluster === undefined ||
      cluster.members[0] !== instance.resourceId
    ) {
      return [];
    }
    const s = this.ctx.scenario;
    const series: Record<string, { member: 'blue' | 'green'; value: number } | undefined> = {
      'aurora-postgresql': {
        OldestReplicationSlotLag: {
          member: 'blue' as const,
          value: (s.replicationLagMb ?? 1) * 1024 * 1024,
        },
      }[metric],
      'aurora-mysql': {
        AuroraBinlogReplicaLag: { member: 'green' as const, value: s.replicaLagSeconds ?? 1 },
      }[metric],
    };
    const wanted = series[this.rds.engine];
    if (wanted === undefined) return [];
    const points: { t: number; value: number }[] = [];
    for (const d of this.rds.deployments.values()) {
      if (d[wanted.member] !== cluster.resourceId) continue;
      const from = Math.max(startMs, d.createdAt);
      const to = Math.min(endMs, d.replicationStoppedAt ?? endMs);
      for (let t = Math.ceil(from / 60_000) * 60_000; t <= to; t += 60_000) {
        points.push({ t, value: wanted.value });
      }
    }
    return points;
  }

  // ------------------------------------------------------------------ the API
  private describe(c: Cluster) {
    return {
      DBClusterIdentifier: c.identifier,
      DBClusterArn: ClusterModel.arn(c.identifier),
      DbClusterResourceId: c.resourceId,
      Engine: c.engine,
      EngineVersion: c.engineVersion,
      EngineMode: 'provisioned',
      Status: c.renaming !== undefined ? 'renaming' : c.status,
      Endpoint: ClusterModel.endpoint(c.identifier),
      ReaderEndpoint: ClusterModel.endpoint(c.identifier).replace('.cluster-', '.cluster-ro-'),
      Port: c.port,
      DBClusterParameterGroup: c.parameterGroup,
      BackupRetentionPeriod: c.backupRetentionDays,
      DeletionProtection: c.deletionProtection,
      StorageEncrypted: true,
      MultiAZ: c.members.length > 1,
      DBClusterMembers: this.instancesOf(c).map((i) => ({
        DBInstanceIdentifier: i.identifier,
        IsClusterWriter: c.members[0] === i.resourceId,
        DBClusterParameterGroupStatus: i.clusterGroupStatus ?? 'in-sync',
        PromotionTier: c.members[0] === i.resourceId ? 0 : 1,
      })),
      TagList: c.tags,
      ...(c.managedPassword
        ? {
            MasterUserSecret: {
              SecretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:rds!cluster-1`,
            },
          }
        : {}),
    };
  }

  /**
   * "During a switchover, you can't modify any DB cluster included in the switchover"; nor,
   * the model assumes, one that is not available.
   */
  private modifiable(nameOrArn: unknown): Cluster {
    const c = this.require(nameOrArn);
    const blocked = this.instancesOf(c).some((i) => i.blocked);
    if (c.status !== 'available' || c.renaming !== undefined || blocked) {
      throw new AwsError(
        'InvalidDBClusterStateFault',
        `DB cluster ${c.identifier} is not in available state (it is ${blocked ? 'switching over' : c.renaming !== undefined ? 'renaming' : c.status}).`,
      );
    }
    return c;
  }

  /** Whether a cluster can be renamed while a deployment holds it: rename-during-deployment. */
  private checkRenameAllowed(c: Cluster): void {
    if (this.ctx.assumption('rename-during-deployment') !== 'refused') return;
    const d = [...this.rds.deployments.values()].find(
      (x) => x.blue === c.resourceId || x.green === c.resourceId,
    );
    if (d !== undefined) {
      throw new AwsError(
        'InvalidDBClusterStateFault',
        `DB cluster ${c.identifier} is part of blue/green deployment ${d.id} (${d.status}) and cannot be renamed.`,
      );
    }
  }

  /**
   * A cluster rename: "When you change the DB cluster identifier, the DB cluster endpoints
   * change. The endpoints of the DB instances in the DB cluster don't change", and "An outage
   * doesn't occur during this change" (connections stay). When the new endpoint answers AWS
   * does not say for a cluster: the assumption cluster-rename-effective (`at-once`, or
   * `like-instances`: after the instance rename's "about 10 minutes", the old name answering
   * until then, the cluster `renaming`).
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Modifying.html#Aurora.Modifying.Settings
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html
   */
  private rename(c: Cluster, next: string): void {
    if (this.named(next) !== undefined) {
      throw new AwsError('DBClusterAlreadyExistsFault', `DB cluster ${next} already exists.`);
    }
    const previous = c.identifier;
    const apply = () => {
      c.renaming = undefined;
      const cache = this.ctx.scenario.renameDnsCacheSeconds ?? 0;
      if (cache > 0) {
        this.aliases.push({
          host: ClusterModel.endpoint(previous),
          resourceId: c.resourceId,
          until: this.ctx.now() + cache * 1000,
        });
      }
      c.identifier = next;
      this.rds.writerChanged();
    };
    if (this.ctx.assumption('cluster-rename-effective') === 'at-once') {
      apply();
      return;
    }
    c.renaming = { to: next };
    this.ctx.after(this.ctx.latency.renameInstance, apply);
  }

  readonly service: Service = {
    // Zero-ETL integrations: "During switchover, the blue and green environments can't have
    // zero-ETL integrations with Amazon Redshift." The demo has none. Without an identifier the
    // call is checked as the other list calls are (list-calls-authorized-on).
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeIntegrations.html
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DescribeIntegrations
    DescribeIntegrations: {
      iam: (i) => [
        {
          action: 'rds:DescribeIntegrations',
          resource:
            i.IntegrationIdentifier === undefined
              ? listResource(
                  this.ctx.assumption('list-calls-authorized-on'),
                  `arn:aws:rds:${REGION}:${ACCOUNT}:integration:*`,
                )
              : String(i.IntegrationIdentifier),
        },
      ],
      run: (i) => {
        if (i.IntegrationIdentifier !== undefined) {
          throw new AwsError(
            'IntegrationNotFoundFault',
            `Integration ${String(i.IntegrationIdentifier)} not found.`,
            404,
          );
        }
        return { Integrations: [] };
      },
    },
    DescribeDBClusters: {
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DescribeDBClusters
      iam: (i) => [
        {
          action: 'rds:DescribeDBClusters',
          resource:
            i.DBClusterIdentifier === undefined
              ? listResource(this.ctx.assumption('list-calls-authorized-on'), ClusterModel.arn('*'))
              : ClusterModel.arn(String(i.DBClusterIdentifier).split(':').at(-1) ?? ''),
        },
      ],
      run: (i) => {
        if (i.DBClusterIdentifier === undefined) {
          return { DBClusters: [...this.clusters.values()].map((c) => this.describe(c)) };
        }
        return { DBClusters: [this.describe(this.require(i.DBClusterIdentifier))] };
      },
    },
    DescribeDBClusterParameters: {
      iam: (i) => [
        {
          action: 'rds:DescribeDBClusterParameters',
          resource: ClusterModel.pgArn(i.DBClusterParameterGroupName),
        },
      ],
      run: (i) => ({
        Parameters: Object.entries(this.group(i.DBClusterParameterGroupName).parameters).map(
          ([ParameterName, ParameterValue]) => ({ ParameterName, ParameterValue, Source: 'user' }),
        ),
      }),
    },
    CopyDBClusterParameterGroup: {
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterParameterGroup.html
      iam: (i) => [
        {
          action: 'rds:CopyDBClusterParameterGroup',
          resource: ClusterModel.pgArn(
            String(i.SourceDBClusterParameterGroupIdentifier).split(':').at(-1),
          ),
        },
        {
          action: 'rds:CopyDBClusterParameterGroup',
          resource: ClusterModel.pgArn(i.TargetDBClusterParameterGroupIdentifier),
        },
      ],
      run: (i) => {
        const from = this.group(
          String(i.SourceDBClusterParameterGroupIdentifier).split(':').at(-1),
        );
        const name = String(i.TargetDBClusterParameterGroupIdentifier);
        if (this.parameterGroups.has(name)) {
          throw new AwsError(
            'DBParameterGroupAlreadyExistsFault',
            `DB cluster parameter group ${name} already exists.`,
          );
        }
        this.parameterGroups.set(name, { family: from.family, parameters: { ...from.parameters } });
        return {
          DBClusterParameterGroup: {
            DBClusterParameterGroupName: name,
            DBParameterGroupFamily: from.family,
          },
        };
      },
    },
    ModifyDBClusterParameterGroup: {
      // "When the application method is immediate, changes to dynamic parameters are applied
      // immediately to the DB clusters associated with the parameter group. When the
      // application method is pending-reboot, changes ... are applied after a reboot without
      // failover." Which parameters are dynamic is not modelled: immediate applies any.
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBClusterParameterGroup.html
      iam: (i) => [
        {
          action: 'rds:ModifyDBClusterParameterGroup',
          resource: ClusterModel.pgArn(i.DBClusterParameterGroupName),
        },
      ],
      run: (i) => {
        const name = String(i.DBClusterParameterGroupName);
        const group = this.group(name);
        const params = (i.Parameters ?? []) as {
          ParameterName: string;
          ParameterValue: string;
          ApplyMethod?: string;
        }[];
        for (const p of params) group.parameters[p.ParameterName] = p.ParameterValue;
        for (const c of this.clusters.values()) {
          if (c.parameterGroup !== name) continue;
          for (const inst of this.instancesOf(c)) {
            for (const p of params) {
              if (p.ApplyMethod === 'immediate') {
                inst.clusterParameters = {
                  ...inst.clusterParameters,
                  [p.ParameterName]: p.ParameterValue,
                };
              } else inst.clusterGroupStatus = 'pending-reboot';
            }
          }
        }
        return { DBClusterParameterGroupName: name };
      },
    },
    ModifyDBCluster: {
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-ModifyDBCluster
      iam: (i) => [
        {
          action: 'rds:ModifyDBCluster',
          resource: ClusterModel.arn(String(i.DBClusterIdentifier).split(':').at(-1) ?? ''),
        },
        ...(i.DBClusterParameterGroupName === undefined
          ? []
          : [
              {
                action: 'rds:ModifyDBCluster',
                resource: ClusterModel.pgArn(i.DBClusterParameterGroupName),
              },
            ]),
      ],
      run: (i) => {
        const c = this.modifiable(i.DBClusterIdentifier);
        if (i.NewDBClusterIdentifier !== undefined) this.checkRenameAllowed(c);
        if (i.DBClusterParameterGroupName !== undefined) {
          const name = String(i.DBClusterParameterGroupName);
          // "DBClusterParameterGroupNotFound: DBClusterParameterGroupName doesn't refer to an
          // existing DB cluster parameter group."
          // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html#API_ModifyDBCluster_Errors
          found(
            this.parameterGroups.get(name),
            'DBClusterParameterGroupNotFoundFault',
            `DBClusterParameterGroup ${name} not found.`,
          );
          // Attached now, run by each instance from its next reboot: "reboot the DB instances
          // in the DB cluster without failover for the new DB cluster parameter group and
          // associated settings to take effect"; the writer shows pending-reboot until then.
          // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterParameterGroup.html
          // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_WorkingWithParamGroups.AssociatingCluster.html
          if (name !== c.parameterGroup) {
            c.parameterGroup = name;
            for (const inst of this.instancesOf(c)) inst.clusterGroupStatus = 'pending-reboot';
          }
        }
        // "Some modifications, such as turning on deletion protection ..., are applied
        // immediately—regardless of when you choose to apply them."
        // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
        if (typeof i.DeletionProtection === 'boolean') c.deletionProtection = i.DeletionProtection;
        // Otherwise, without ApplyImmediately "changes to the DB cluster are applied during the
        // next maintenance window", which no run reaches (same page).
        if (i.NewDBClusterIdentifier !== undefined && i.ApplyImmediately === true) {
          this.rename(c, String(i.NewDBClusterIdentifier).toLowerCase());
        }
        return { DBCluster: this.describe(c) };
      },
    },
  };
}
