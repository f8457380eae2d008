import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LIMITATION_SQL } from '../../lambda/verify-writer/limitations';
import { END_SESSIONS_SQL } from '../../lambda/verify-writer/old-sessions';
import { type IamRequest, resourceTagContext } from '../iam';
import { ACCOUNT, REGION, type SynthesizedApp } from '../synthesized';
import { AwsError, found, listResource, type ModelContext, type Service } from './core';

/**
 * RDS for PostgreSQL as the upgrade meets it: DB instances with their parameter groups, the
 * blue/green deployment that builds green and switches over, the endpoint names that move
 * with the instances, and the data each instance holds.
 *
 * Blue/green behaviour follows the RDS user guide; where it is silent the comment says so.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html
 */
export interface Instance {
  identifier: string;
  /** Stable across renames (DbiResourceId): who an instance is. */
  resourceId: string;
  engine: string;
  engineVersion: string;
  status: string;
  /** The group attached to the instance (DBParameterGroups[0]). */
  parameterGroup: string;
  /**
   * The group the instance runs with: a newly attached group applies "only after the DB
   * instance is rebooted".
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.Associating.html
   */
  appliedGroup: string;
  applyStatus: string;
  backupRetentionDays: number;
  managedPassword: boolean;
  deletionProtection: boolean;
  port: number;
  /**
   * Old blue after a switchover "only allows read operations until you set ...
   * default_transaction_read_only ... to 0 and reboot the DB instance".
   */
  readOnlyLock: boolean;
  /**
   * Green while the deployment replicates blue to it: fed by blue, and "the DB instance in
   * the green environment is read-only by default".
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-overview.html
   */
  replicaOf?: string;
  /**
   * Until when the instance's storage is still loaded from its snapshot, as green's is after
   * it is created: "lazy loading". (Virtual ms.)
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-lazy-loading
   */
  storageInitializedAt?: number;
  /** Connections opened in an earlier epoch have been dropped. */
  epoch: number;
  /** During a switchover: no writes, no new connections. */
  blocked: boolean;
  tables: Map<string, Row[]>;
  keys: Map<string, Set<string>>;
}

export type Row = Record<string, unknown>;

interface Deployment {
  id: string;
  name: string;
  tags: { Key: string; Value: string }[];
  blue: string;
  green: string;
  status: string;
  createdAt: number;
  /** Set once the switchover ended (either way): replication to green stopped. */
  replicationStoppedAt?: number;
}

/** The tables the consumers write, and each table's primary key, from the schema they document. */
export const SCHEMA = primaryKeys(
  readFileSync(join(__dirname, '..', '..', 'lambda', 'database-roles', 'schema.sql'), 'utf8'),
);

function primaryKeys(sql: string): Map<string, string> {
  const tables = new Map<string, string>();
  for (const m of sql.matchAll(/CREATE TABLE IF NOT EXISTS (\w+) \(([\s\S]*?)\n\);/g)) {
    const pk = /^\s*(\w+)\s+\w+\s+PRIMARY KEY/m.exec(m[2] ?? '')?.[1];
    if (m[1] !== undefined && pk !== undefined) tables.set(m[1], pk);
  }
  return tables;
}

export const WRITER_SQL_MARK = "current_setting('transaction_read_only')";

export class RdsModel {
  readonly instances = new Map<string, Instance>();
  readonly deployments = new Map<string, Deployment>();
  readonly parameterGroups = new Map<
    string,
    { family: string; parameters: Record<string, string> }
  >();
  /** Connections to the source's endpoint that will still reach old blue (stale DNS). */
  private staleDns: { host: string; resourceId: string; left: number } | undefined;
  /** Names a renamed instance still answers to, from clients' cached addresses. */
  private readonly aliases: { host: string; resourceId: string; until: number }[] = [];
  private nextId = 1;
  private createCalls = 0;
  /** Told when a switchover ends and its instances take connections again. */
  private readonly switchoverEndListeners: (() => void)[] = [];
  private switchoverAnswerLost = false;
  private blueWasProtected = false;
  private lastWriter: string | null | undefined;
  private readonly everWriters = new Set<string>();
  private groupsAtStart = new Map<string, string>();

  constructor(
    private readonly ctx: ModelContext,
    app: SynthesizedApp,
    readonly source: string,
    private readonly validTargets: string[],
  ) {
    for (const g of app.parameterGroups) {
      this.parameterGroups.set(g.name, { family: g.family, parameters: { ...g.parameters } });
    }
    for (const spec of app.instances) {
      const s = ctx.scenario;
      this.instances.set(`db-${spec.identifier}`, {
        identifier: spec.identifier,
        resourceId: `db-${spec.identifier}`,
        engine: spec.engine,
        engineVersion: spec.engineVersion,
        status: 'available',
        parameterGroup: spec.parameterGroupName,
        appliedGroup: spec.parameterGroupName,
        applyStatus: s.parameterGroupPending ? 'pending-reboot' : 'in-sync',
        backupRetentionDays: s.noBackups ? 0 : spec.backupRetentionDays,
        managedPassword: s.managedPassword ?? false,
        deletionProtection: spec.deletionProtection,
        port: spec.port,
        readOnlyLock: false,
        epoch: 0,
        blocked: false,
        tables: new Map(),
        keys: new Map(),
      });
    }
    const blue = this.named(source);
    this.blueWasProtected = blue?.deletionProtection ?? false;
    if (ctx.scenario.leftoverOldBlue && blue !== undefined) {
      const old = `${source}-old1`;
      this.instances.set(`db-${old}`, {
        ...blue,
        identifier: old,
        resourceId: `db-${old}`,
        engineVersion: '15.8',
        readOnlyLock: true,
        tables: new Map(),
        keys: new Map(),
      });
    }
    this.writerChanged();
  }

  /** Whether the source instance had deletion protection at the start and has none now. */
  blueUnprotected(): boolean {
    const blue = this.instances.get(`db-${this.source}`);
    return this.blueWasProtected && blue !== undefined && !blue.deletionProtection;
  }

  static arn(identifier: string): string {
    return `arn:aws:rds:${REGION}:${ACCOUNT}:db:${identifier}`;
  }

  static endpoint(identifier: string): string {
    return `${identifier}.c0rehearsal.${REGION}.rds.amazonaws.com`;
  }

  /** The instance that answers to a name (or an ARN) now. */
  named(nameOrArn: string): Instance | undefined {
    const name = nameOrArn.startsWith('arn:') ? (nameOrArn.split(':').at(-1) ?? '') : nameOrArn;
    return [...this.instances.values()].find((i) => i.identifier === name);
  }

  /** The writer applications reach: the instance named like the source. */
  writer(): Instance | undefined {
    return this.named(this.source);
  }

  /**
   * Instances that were the writer once and are not now, but still take writes: a split
   * brain, whichever name they answer to.
   */
  formerWritersTakingWrites(): string[] {
    const now = this.writer()?.resourceId;
    return [...this.everWriters]
      .filter((id) => id !== now)
      .map((id) => this.byResource(id))
      .filter((i): i is Instance => i !== undefined && this.readOnlyReason(i) === null)
      .map((i) => i.identifier);
  }

  /** Remembers the stack's parameter groups as the run finds them. */
  snapshotGroups(): void {
    this.groupsAtStart = new Map(
      [...this.parameterGroups].map(([name, g]) => [name, JSON.stringify(g.parameters)]),
    );
  }

  /** The groups the run found and then changed (drift from CloudFormation's template). */
  changedGroups(): string[] {
    return [...this.groupsAtStart]
      .filter(
        ([name, before]) => JSON.stringify(this.parameterGroups.get(name)?.parameters) !== before,
      )
      .map(([name]) => name);
  }

  private writerChanged(): void {
    const now = this.writer()?.resourceId ?? null;
    if (now !== null) this.everWriters.add(now);
    if (now !== this.lastWriter) {
      this.lastWriter = now;
      this.ctx.emit({ kind: 'writer', resourceId: now });
    }
  }

  private require(nameOrArn: unknown): Instance {
    const name = String(nameOrArn);
    return found(this.named(name), 'DBInstanceNotFoundFault', `DBInstance ${name} not found.`);
  }

  private deployment(id: unknown): Deployment {
    return found(
      this.deployments.get(String(id)),
      'BlueGreenDeploymentNotFoundFault',
      `BlueGreenDeployment ${String(id)} not found.`,
    );
  }

  private byResource(resourceId: string): Instance | undefined {
    return this.instances.get(resourceId);
  }

  /** Whether an instance refuses writes, and why (null: it takes writes). */
  readOnlyReason(i: Instance): string | null {
    if (i.replicaOf !== undefined) return 'green is read-only while it replicates blue';
    if (i.readOnlyLock)
      return 'old blue stays read-only until default_transaction_read_only=0 and a reboot';
    const value = this.parameterGroups.get(i.appliedGroup)?.parameters
      .default_transaction_read_only;
    if (value !== undefined && ['1', 'on', 'true'].includes(value.toLowerCase())) {
      return `parameter group ${i.appliedGroup} sets default_transaction_read_only=${value}`;
    }
    return null;
  }

  // ------------------------------------------------------------------ blue/green deployments
  private describeDeployment(d: Deployment) {
    const blue = this.byResource(d.blue);
    const green = this.byResource(d.green);
    const member = {
      SourceMember: blue ? RdsModel.arn(blue.identifier) : undefined,
      TargetMember: green ? RdsModel.arn(green.identifier) : undefined,
      Status: d.status === 'DELETING' ? 'AVAILABLE' : d.status,
    };
    return {
      BlueGreenDeploymentIdentifier: d.id,
      BlueGreenDeploymentName: d.name,
      Source: member.SourceMember,
      Target: member.TargetMember,
      Status: d.status,
      SwitchoverDetails: [member],
      TagList: d.tags,
      CreateTime: new Date(d.createdAt),
    };
  }

  private deploymentArn(id: string): string {
    return `arn:aws:rds:${REGION}:${ACCOUNT}:deployment:${id}`;
  }

  private pendingId(): string {
    return `bgd-${String(this.nextId).padStart(6, '0')}`;
  }

  /**
   * The actions and resources each blue/green operation is authorized for. The actions are
   * the ones the user guide lists; which resources RDS checks them on it does not say, so the
   * model checks each on the instances it touches.
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-authorizing-access.html
   */
  readonly service: Service = {
    CreateBlueGreenDeployment: {
      iam: (i) => {
        const id = this.pendingId();
        const sourceArn = String(i.Source);
        const greenArn = RdsModel.arn(`${sourceArn.split(':').at(-1)}-green-${id.slice(-6)}`);
        const requests: IamRequest[] = [
          { action: 'rds:CreateBlueGreenDeployment', resource: this.deploymentArn(id) },
          { action: 'rds:CreateBlueGreenDeployment', resource: sourceArn },
          { action: 'rds:CreateDBInstanceReadReplica', resource: greenArn },
          { action: 'rds:CreateDBInstanceReadReplica', resource: sourceArn },
        ];
        if (i.TargetDBParameterGroupName !== undefined) {
          const pg = `arn:aws:rds:${REGION}:${ACCOUNT}:pg:${String(i.TargetDBParameterGroupName)}`;
          requests.push({ action: 'rds:CreateBlueGreenDeployment', resource: pg });
        }
        if (Array.isArray(i.Tags) && i.Tags.length > 0) {
          requests.push({ action: 'rds:AddTagsToResource', resource: this.deploymentArn(id) });
        }
        return requests;
      },
      run: (i) => this.create(i),
    },
    DescribeBlueGreenDeployments: {
      iam: (i) => [
        {
          action: 'rds:DescribeBlueGreenDeployments',
          resource:
            i.BlueGreenDeploymentIdentifier === undefined
              ? listResource(
                  this.ctx.assumption('list-calls-authorized-on'),
                  this.deploymentArn('*'),
                )
              : this.deploymentArn(String(i.BlueGreenDeploymentIdentifier)),
        },
      ],
      run: (i) => this.describeDeployments(i),
    },
    SwitchoverBlueGreenDeployment: {
      // The deployment's tags are in the request context: the action and the `deployment`
      // resource type take aws:ResourceTag/${TagKey}.
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-SwitchoverBlueGreenDeployment
      iam: (i) => {
        const d = this.deployments.get(String(i.BlueGreenDeploymentIdentifier));
        const requests: IamRequest[] = [
          {
            action: 'rds:SwitchoverBlueGreenDeployment',
            resource: this.deploymentArn(String(i.BlueGreenDeploymentIdentifier)),
            context: resourceTagContext(d?.tags),
            ...(d === undefined ? { resourceMissing: true } : {}),
          },
        ];
        for (const member of d ? [d.blue, d.green] : []) {
          const inst = this.byResource(member);
          if (inst === undefined) continue;
          for (const action of ['rds:ModifyDBInstance', 'rds:PromoteReadReplica']) {
            requests.push({ action, resource: RdsModel.arn(inst.identifier) });
          }
        }
        return requests;
      },
      run: (i) => this.switchover(i),
    },
    DeleteBlueGreenDeployment: {
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment
      iam: (i) => {
        const d = this.deployments.get(String(i.BlueGreenDeploymentIdentifier));
        const requests: IamRequest[] = [
          {
            action: 'rds:DeleteBlueGreenDeployment',
            resource: this.deploymentArn(String(i.BlueGreenDeploymentIdentifier)),
            context: resourceTagContext(d?.tags),
            ...(d === undefined ? { resourceMissing: true } : {}),
          },
        ];
        const green = d ? this.byResource(d.green) : undefined;
        if (i.DeleteTarget === true && green !== undefined) {
          requests.push({
            action: 'rds:DeleteDBInstance',
            resource: RdsModel.arn(green.identifier),
          });
        }
        return requests;
      },
      run: (i) => this.delete(i),
    },
    // ---------------------------------------------------------------- instances
    DescribeDBInstances: {
      iam: (i) => [
        {
          action: 'rds:DescribeDBInstances',
          resource:
            i.DBInstanceIdentifier === undefined
              ? listResource(this.ctx.assumption('list-calls-authorized-on'), RdsModel.arn('*'))
              : RdsModel.arn(String(i.DBInstanceIdentifier).split(':').at(-1) ?? ''),
        },
      ],
      run: (i) => {
        if (i.DBInstanceIdentifier === undefined) {
          return { DBInstances: [...this.instances.values()].map((x) => this.describeInstance(x)) };
        }
        return { DBInstances: [this.describeInstance(this.require(i.DBInstanceIdentifier))] };
      },
    },
    // No proxy in front of the rehearsal's database.
    DescribeDBProxies: {
      iam: (i) => [
        {
          action: 'rds:DescribeDBProxies',
          resource:
            i.DBProxyName === undefined
              ? listResource(
                  this.ctx.assumption('list-calls-authorized-on'),
                  `arn:aws:rds:${REGION}:${ACCOUNT}:db-proxy:*`,
                )
              : `arn:aws:rds:${REGION}:${ACCOUNT}:db-proxy:${String(i.DBProxyName)}`,
        },
      ],
      run: (i) => {
        if (i.DBProxyName !== undefined) {
          throw new AwsError(
            'DBProxyNotFoundFault',
            `DBProxy ${String(i.DBProxyName)} not found.`,
            404,
          );
        }
        return { DBProxies: [] };
      },
    },
    DescribeDBEngineVersions: {
      // No resource type: only "*" authorizes it.
      iam: () => [{ action: 'rds:DescribeDBEngineVersions', resource: '*' }],
      run: (i) => ({
        DBEngineVersions: [
          {
            Engine: i.Engine,
            EngineVersion: i.EngineVersion,
            ValidUpgradeTarget: this.validTargets.map((v) => ({
              Engine: i.Engine,
              EngineVersion: v,
              IsMajorVersionUpgrade: v.split('.')[0] !== String(i.EngineVersion).split('.')[0],
            })),
          },
        ],
      }),
    },
    DescribeDBParameters: {
      iam: (i) => [
        { action: 'rds:DescribeDBParameters', resource: this.pgArn(i.DBParameterGroupName) },
      ],
      run: (i) => ({
        Parameters: Object.entries(this.group(i.DBParameterGroupName).parameters).map(
          ([ParameterName, ParameterValue]) => ({ ParameterName, ParameterValue, Source: 'user' }),
        ),
      }),
    },
    CopyDBParameterGroup: {
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBParameterGroup.html
      iam: (i) => [
        {
          action: 'rds:CopyDBParameterGroup',
          resource: this.pgArn(i.SourceDBParameterGroupIdentifier),
        },
        {
          action: 'rds:CopyDBParameterGroup',
          resource: this.pgArn(i.TargetDBParameterGroupIdentifier),
        },
      ],
      run: (i) => {
        const from = this.group(i.SourceDBParameterGroupIdentifier);
        const name = String(i.TargetDBParameterGroupIdentifier);
        if (this.parameterGroups.has(name)) {
          throw new AwsError(
            'DBParameterGroupAlreadyExistsFault',
            `Parameter group ${name} already exists.`,
          );
        }
        this.parameterGroups.set(name, { family: from.family, parameters: { ...from.parameters } });
        return { DBParameterGroup: { DBParameterGroupName: name } };
      },
    },
    ModifyDBParameterGroup: {
      iam: (i) => [
        { action: 'rds:ModifyDBParameterGroup', resource: this.pgArn(i.DBParameterGroupName) },
      ],
      run: (i) => {
        const name = String(i.DBParameterGroupName);
        const group = this.group(name);
        const params = (i.Parameters ?? []) as {
          ParameterName: string;
          ParameterValue: string;
          ApplyMethod?: string;
        }[];
        for (const p of params) group.parameters[p.ParameterName] = p.ParameterValue;
        const pending = params.some((p) => p.ApplyMethod === 'pending-reboot');
        for (const inst of this.instances.values()) {
          if (inst.parameterGroup === name && pending) inst.applyStatus = 'pending-reboot';
        }
        return { DBParameterGroupName: name };
      },
    },
    RebootDBInstance: {
      iam: (i) => [
        { action: 'rds:RebootDBInstance', resource: RdsModel.arn(String(i.DBInstanceIdentifier)) },
      ],
      run: (i) => {
        const inst = this.modifiable(i.DBInstanceIdentifier);
        inst.status = 'rebooting';
        inst.epoch += 1;
        this.ctx.after(this.ctx.latency.reboot, () => {
          inst.status = 'available';
          inst.applyStatus = 'in-sync';
          inst.appliedGroup = inst.parameterGroup;
          const value = this.parameterGroups.get(inst.appliedGroup)?.parameters
            .default_transaction_read_only;
          if (
            inst.readOnlyLock &&
            value !== undefined &&
            ['0', 'off', 'false'].includes(value.toLowerCase())
          ) {
            inst.readOnlyLock = false;
          }
        });
        return { DBInstance: this.describeInstance(inst) };
      },
    },
    ModifyDBInstance: {
      iam: (i) => [
        { action: 'rds:ModifyDBInstance', resource: RdsModel.arn(String(i.DBInstanceIdentifier)) },
        ...(i.DBParameterGroupName === undefined
          ? []
          : [{ action: 'rds:ModifyDBInstance', resource: this.pgArn(i.DBParameterGroupName) }]),
      ],
      run: (i) => {
        const inst = this.modifiable(i.DBInstanceIdentifier);
        if (i.NewDBInstanceIdentifier !== undefined) this.checkRenameAllowed(inst);
        if (i.DBParameterGroupName !== undefined) {
          const name = String(i.DBParameterGroupName);
          this.group(name);
          // Attached now, applied at the next reboot.
          // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.Associating.html
          inst.parameterGroup = name;
          inst.applyStatus = name === inst.appliedGroup ? 'in-sync' : 'pending-reboot';
        }
        if (typeof i.DeletionProtection === 'boolean')
          inst.deletionProtection = i.DeletionProtection;
        // Without ApplyImmediately a change waits for the maintenance window, which no run
        // reaches. https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html
        if (i.NewDBInstanceIdentifier !== undefined && i.ApplyImmediately === true) {
          const next = String(i.NewDBInstanceIdentifier);
          if (this.named(next) !== undefined) {
            throw new AwsError(
              'DBInstanceAlreadyExistsFault',
              `DB instance ${next} already exists.`,
            );
          }
          // "The DB instance is rebooted when it is renamed", which ends its connections; its
          // endpoint changes with its name.
          // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html
          inst.status = 'renaming';
          inst.epoch += 1;
          const previous = inst.identifier;
          this.ctx.after(this.ctx.latency.renameInstance, () => {
            // Clients that cached the old name's address still reach the instance for a while.
            // How long AWS does not say: the scenario's renameDnsCacheSeconds (default none).
            const cache = this.ctx.scenario.renameDnsCacheSeconds ?? 0;
            if (cache > 0) {
              this.aliases.push({
                host: RdsModel.endpoint(previous),
                resourceId: inst.resourceId,
                until: this.ctx.now() + cache * 1000,
              });
            }
            inst.identifier = next;
            inst.status = 'available';
            inst.epoch += 1;
            this.writerChanged();
          });
        }
        return { DBInstance: this.describeInstance(inst) };
      },
    },
  };

  private pgArn(name: unknown): string {
    return `arn:aws:rds:${REGION}:${ACCOUNT}:pg:${String(name)}`;
  }

  private group(name: unknown) {
    return found(
      this.parameterGroups.get(String(name)),
      'DBParameterGroupNotFoundFault',
      `DBParameterGroup ${String(name)} not found.`,
    );
  }

  /**
   * Whether a member of a blue/green deployment can be renamed while the deployment exists,
   * AWS does not say: the assumption rename-during-deployment.
   */
  private checkRenameAllowed(inst: Instance): void {
    if (this.ctx.assumption('rename-during-deployment') !== 'refused') return;
    const d = [...this.deployments.values()].find(
      (x) => x.blue === inst.resourceId || x.green === inst.resourceId,
    );
    if (d !== undefined) {
      throw new AwsError(
        'InvalidDBInstanceStateFault',
        `DB instance ${inst.identifier} is part of blue/green deployment ${d.id} (${d.status}) and cannot be renamed.`,
      );
    }
  }

  /** "During a switchover, you can't modify any DB instances included in the switchover." */
  private modifiable(nameOrArn: unknown): Instance {
    const inst = this.require(nameOrArn);
    if (inst.status !== 'available' || inst.blocked) {
      throw new AwsError(
        'InvalidDBInstanceStateFault',
        `DB instance ${inst.identifier} is not in available state (it is ${inst.blocked ? 'switching over' : inst.status}).`,
      );
    }
    return inst;
  }

  private describeInstance(i: Instance) {
    return {
      DBInstanceIdentifier: i.identifier,
      DBInstanceArn: RdsModel.arn(i.identifier),
      DbiResourceId: i.resourceId,
      Engine: i.engine,
      EngineVersion: i.engineVersion,
      DBInstanceStatus: i.status,
      BackupRetentionPeriod: i.backupRetentionDays,
      DBParameterGroups: [
        { DBParameterGroupName: i.parameterGroup, ParameterApplyStatus: i.applyStatus },
      ],
      DeletionProtection: i.deletionProtection,
      // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBInstance.html
      ...(i.storageInitializedAt !== undefined && this.ctx.now() < i.storageInitializedAt
        ? { StorageOperationStatus: 'Initializing', StorageOperationPercentProgress: 50 }
        : {}),
      Endpoint: { Address: RdsModel.endpoint(i.identifier), Port: i.port },
      ...(i.managedPassword
        ? {
            MasterUserSecret: {
              SecretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:rds!db-1`,
            },
          }
        : {}),
    };
  }

  private create(i: Record<string, unknown>) {
    const call = this.createCalls++;
    const errors = this.ctx.scenario.createErrors ?? [];
    if (call > 0 && call < errors.length) {
      throw new AwsError(
        errors[call] ?? 'InternalFailure',
        'the service could not take the request',
        400,
      );
    }
    const sourceArn = String(i.Source);
    const blue = this.require(sourceArn);
    const name = String(i.BlueGreenDeploymentName);
    if ([...this.deployments.values()].some((d) => d.name === name)) {
      throw new AwsError(
        'BlueGreenDeploymentAlreadyExistsFault',
        `A blue/green deployment named ${name} already exists.`,
      );
    }
    if ([...this.deployments.values()].some((d) => d.blue === blue.resourceId)) {
      throw new AwsError(
        'InvalidDBInstanceStateFault',
        `DB instance ${blue.identifier} is already the source of a blue/green deployment.`,
      );
    }
    const targetGroup =
      i.TargetDBParameterGroupName === undefined
        ? blue.parameterGroup
        : String(i.TargetDBParameterGroupName);
    this.group(targetGroup);
    const id = this.pendingId();
    this.nextId += 1;
    const green: Instance = {
      ...blue,
      identifier: `${blue.identifier}-green-${id.slice(-6)}`,
      resourceId: `db-green-${id.slice(-6)}`,
      engineVersion: String(i.TargetEngineVersion ?? blue.engineVersion),
      status: 'creating',
      parameterGroup: targetGroup,
      appliedGroup: targetGroup,
      applyStatus: 'in-sync',
      deletionProtection:
        this.ctx.assumption('green-deletion-protection') === 'inherited' && blue.deletionProtection,
      readOnlyLock: false,
      replicaOf: blue.resourceId,
      epoch: 0,
      blocked: false,
      tables: new Map(),
      keys: new Map(),
    };
    this.instances.set(green.resourceId, green);
    const d: Deployment = {
      id,
      name,
      tags: (i.Tags as Deployment['tags'] | undefined) ?? [],
      blue: blue.resourceId,
      green: green.resourceId,
      status: 'PROVISIONING',
      createdAt: this.ctx.now(),
    };
    this.deployments.set(id, d);
    const s = this.ctx.scenario;
    if (!s.greenStuck) {
      this.ctx.after(this.ctx.latency.greenBuild, () => {
        if (d.status !== 'PROVISIONING') return;
        green.status = 'available';
        if (s.greenStorageInitSeconds !== undefined) {
          green.storageInitializedAt = this.ctx.now() + s.greenStorageInitSeconds * 1000;
        }
        if (s.greenBackingUpSeconds !== undefined) {
          green.status = 'backing-up';
          this.ctx.after(s.greenBackingUpSeconds, () => {
            if (green.status === 'backing-up') green.status = 'available';
          });
        }
        d.status = s.greenInvalid ? 'INVALID_CONFIGURATION' : 'AVAILABLE';
      });
    }
    if (call === 0 && errors[0] !== undefined) {
      // The deployment exists, but the caller never hears so (a timeout or a 5xx).
      throw new AwsError(errors[0], 'the response was lost', 500);
    }
    return { BlueGreenDeployment: this.describeDeployment(d) };
  }

  private describeDeployments(i: Record<string, unknown>) {
    if (i.BlueGreenDeploymentIdentifier !== undefined) {
      return {
        BlueGreenDeployments: [
          this.describeDeployment(this.deployment(i.BlueGreenDeploymentIdentifier)),
        ],
      };
    }
    // Filters: https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeBlueGreenDeployments.html
    const filters = (i.Filters ?? []) as { Name: string; Values: string[] }[];
    const found = [...this.deployments.values()]
      .map((d) => this.describeDeployment(d))
      .filter((d) =>
        filters.every((f) => {
          const value = {
            'blue-green-deployment-identifier': d.BlueGreenDeploymentIdentifier,
            'blue-green-deployment-name': d.BlueGreenDeploymentName,
            source: d.Source,
            target: d.Target,
          }[f.Name];
          return value !== undefined && f.Values.includes(value);
        }),
      );
    return { BlueGreenDeployments: found };
  }

  private switchover(i: Record<string, unknown>) {
    const d = this.deployment(i.BlueGreenDeploymentIdentifier);
    if (d.status !== 'AVAILABLE') {
      throw new AwsError(
        'InvalidBlueGreenDeploymentStateFault',
        `The blue/green deployment is ${d.status}.`,
      );
    }
    const blue = this.byResource(d.blue);
    const green = this.byResource(d.green);
    if (blue === undefined || green === undefined)
      throw new Error('switchover without blue or green');
    // "Stops new write operations ... Drops connections to the DB instances in both
    // environments and doesn't allow new connections."
    d.status = 'SWITCHOVER_IN_PROGRESS';
    for (const inst of [blue, green]) {
      inst.blocked = true;
      inst.epoch += 1;
    }
    this.ctx.emit({ kind: 'switchover-start', deployment: d.id });
    const s = this.ctx.scenario;
    // 30-3600 s; past it "any changes are rolled back and no changes are made to either environment".
    const timeout = Number(i.SwitchoverTimeout ?? 300);
    const took = this.ctx.latency.switchover;
    const release = () => {
      for (const inst of [blue, green]) {
        inst.blocked = false;
        inst.epoch += 1;
      }
    };
    const answer = () => {
      if (s.switchoverAnswerLost !== undefined && !this.switchoverAnswerLost) {
        this.switchoverAnswerLost = true;
        throw new AwsError(s.switchoverAnswerLost, 'the response was lost', 500);
      }
      return { BlueGreenDeployment: this.describeDeployment(d) };
    };
    if (s.switchoverHangs) return answer();
    if (s.switchoverFails || took > timeout) {
      this.ctx.after(Math.min(took, timeout), () => {
        // A failed switchover shows SWITCHOVER_FAILED; one past its timeout shows what the
        // assumption switchover-timeout-status says.
        d.status =
          took > timeout ? this.ctx.assumption('switchover-timeout-status') : 'SWITCHOVER_FAILED';
        release();
        this.ctx.emit({ kind: 'switchover-end', deployment: d.id, completed: false });
        for (const listener of this.switchoverEndListeners) listener();
      });
    } else {
      this.ctx.after(took, () => {
        // Green takes blue's name; blue becomes "-oldN", read-only; replication stops, after
        // green has caught up with every write blue took before writes stopped.
        const name = blue.identifier;
        let n = 1;
        while (this.named(`${name}-old${n}`) !== undefined) n += 1;
        blue.identifier = `${name}-old${n}`;
        blue.readOnlyLock = true;
        green.identifier = name;
        green.replicaOf = undefined;
        green.tables = new Map([...blue.tables].map(([t, rows]) => [t, [...rows]]));
        green.keys = new Map([...blue.keys].map(([t, keys]) => [t, new Set(keys)]));
        // Sequences are not modelled (the consumers' tables have natural keys). With logical
        // replication "NEXTVAL operations on sequence objects aren't synchronized", but
        // "during switchover, Amazon RDS increments sequence values in the green environment
        // to match those in the blue environment"; a failed sync cancels the switchover
        // (RDS-EVENT-0310), which the runbook meets as any switchover rolled back.
        // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres-logical
        // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html#USER_Events.Messages.BlueGreenDeployments
        d.status = 'SWITCHOVER_COMPLETED';
        d.replicationStoppedAt = this.ctx.now();
        release();
        const gone = this.ctx.scenario.deploymentDeletedAfterSeconds;
        // Someone else deletes the deployment (DeleteTarget false) before the runbook does.
        if (gone !== undefined) this.ctx.after(gone, () => this.deployments.delete(d.id));
        const untagged = this.ctx.scenario.deploymentUntaggedAfterSeconds;
        if (untagged !== undefined) this.ctx.after(untagged, () => (d.tags = []));
        const busy = this.ctx.scenario.newWriterModifyingSeconds;
        if (busy !== undefined) {
          green.status = 'modifying';
          this.ctx.after(busy, () => {
            if (green.status === 'modifying') green.status = 'available';
          });
        }
        const stale = this.ctx.scenario.staleDnsConnects ?? 0;
        if (stale > 0)
          this.staleDns = {
            host: RdsModel.endpoint(name),
            resourceId: blue.resourceId,
            left: stale,
          };
        this.ctx.emit({ kind: 'switchover-end', deployment: d.id, completed: true });
        for (const listener of this.switchoverEndListeners) listener();
        this.writerChanged();
      });
    }
    return answer();
  }

  private delete(i: Record<string, unknown>) {
    const d = this.deployment(i.BlueGreenDeploymentIdentifier);
    const deleteTarget = i.DeleteTarget === true;
    if (d.status === 'SWITCHOVER_IN_PROGRESS' || d.status === 'DELETING') {
      throw new AwsError(
        'InvalidBlueGreenDeploymentStateFault',
        `The blue/green deployment is ${d.status}.`,
      );
    }
    // "You can't specify this option if the blue/green deployment status is SWITCHOVER_COMPLETED."
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteBlueGreenDeployment.html
    if (deleteTarget && d.status === 'SWITCHOVER_COMPLETED') {
      throw new AwsError(
        'InvalidBlueGreenDeploymentStateFault',
        'DeleteTarget cannot be set after a switchover.',
      );
    }
    const green = this.byResource(d.green);
    // "If you choose to delete the DB instances in the green environment (--delete-target),
    // they must have deletion protection turned off." How RDS refuses it is not documented:
    // modelled as the call refused, changing nothing.
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html
    if (deleteTarget && green?.replicaOf !== undefined && green.deletionProtection) {
      throw new AwsError(
        'InvalidParameterCombination',
        `Cannot delete the target: DB instance ${green.identifier} has deletion protection enabled.`,
      );
    }
    const answer = { BlueGreenDeployment: this.describeDeployment(d) };
    if (deleteTarget && green?.replicaOf !== undefined) {
      this.ctx.emit({ kind: 'green-deleted', busy: this.busy(green) });
    }
    d.status = 'DELETING';
    this.ctx.after(this.ctx.latency.deleteDeployment, () => {
      this.deployments.delete(d.id);
      const green = this.byResource(d.green);
      if (green?.replicaOf !== undefined) {
        if (deleteTarget) this.instances.delete(green.resourceId);
        // Kept without its target: green stands alone with what it had replicated.
        else {
          const blue = this.byResource(green.replicaOf);
          green.replicaOf = undefined;
          if (blue !== undefined) {
            green.tables = new Map([...blue.tables].map(([t, rows]) => [t, [...rows]]));
            green.keys = new Map([...blue.keys].map(([t, keys]) => [t, new Set(keys)]));
          }
        }
      }
      this.writerChanged();
    });
    return answer;
  }

  /**
   * Why a green is not ready yet when it is only busy (it gets there by itself), or null.
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
   */
  private busy(green: Instance): string | null {
    if (['backing-up', 'modifying', 'rebooting', 'upgrading'].includes(green.status)) {
      return green.status;
    }
    if (green.storageInitializedAt !== undefined && this.ctx.now() < green.storageInitializedAt) {
      return 'initializing its storage';
    }
    return null;
  }

  /**
   * Datapoints, one a minute while green replicates, of blue's OldestReplicationSlotLag
   * (bytes) or green's ReplicaLag (seconds).
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html#rds-cw-metrics-instance
   */
  replicationLag(
    metric: string,
    identifier: string,
    startMs: number,
    endMs: number,
  ): { t: number; value: number }[] {
    const instance = this.named(identifier);
    if (instance === undefined) return [];
    const s = this.ctx.scenario;
    const series: Record<string, { member: 'blue' | 'green'; value: number }> = {
      OldestReplicationSlotLag: { member: 'blue', value: (s.replicationLagMb ?? 1) * 1024 * 1024 },
      ReplicaLag: { member: 'green', value: s.replicaLagSeconds ?? 1 },
    };
    const wanted = series[metric];
    if (wanted === undefined) return [];
    const { member, value } = wanted;
    const points: { t: number; value: number }[] = [];
    for (const d of this.deployments.values()) {
      if (d[member] !== instance.resourceId) continue;
      const from = Math.max(startMs, d.createdAt);
      const to = Math.min(endMs, d.replicationStoppedAt ?? endMs);
      for (let t = Math.ceil(from / 60_000) * 60_000; t <= to; t += 60_000)
        points.push({ t, value });
    }
    return points;
  }

  // ------------------------------------------------------------------ the data plane
  /** Every connection opened, to count the client sessions an instance holds. */
  private readonly sessions: { instance: Instance; epoch: number; client: boolean }[] = [];

  /** A connection to this instance itself (a client with a cached address). */
  open(instance: Instance): { instance: Instance; epoch: number } {
    const c = { instance, epoch: instance.epoch, client: true };
    this.sessions.push(c);
    return c;
  }

  /** The client sessions an instance holds now. */
  clientSessions(instance: Instance): number {
    return this.sessions.filter(
      (c) => c.client && c.instance === instance && c.epoch === instance.epoch,
    ).length;
  }

  /** Opens a connection to the instance a host name resolves to now. */
  connect(host: string, client = true): { instance: Instance; epoch: number } {
    if (this.ctx.scenario.formerWritersUnreachable && /-(old|failed)1\./.test(host)) {
      throw pgError('ETIMEDOUT', `connect ETIMEDOUT ${host}:5432`);
    }
    let instance: Instance | undefined;
    if (this.staleDns !== undefined && this.staleDns.host === host && this.staleDns.left > 0) {
      this.staleDns.left -= 1;
      instance = this.byResource(this.staleDns.resourceId);
    } else {
      const alias = this.aliases.find((a) => a.host === host && a.until > this.ctx.now());
      const name = /^([a-z0-9-]+)\.c0rehearsal\./.exec(host)?.[1];
      instance =
        alias !== undefined
          ? this.byResource(alias.resourceId)
          : name === undefined
            ? undefined
            : this.named(name);
    }
    if (instance === undefined) throw pgError('ENOTFOUND', `getaddrinfo ENOTFOUND ${host}`);
    // Assumed: an instance being created, renamed (rebooted) or rebooted takes no connections.
    if (instance.blocked || !['available', 'backing-up', 'modifying'].includes(instance.status)) {
      throw pgError(
        '57P03',
        `the database system is not accepting connections (${instance.identifier} is ${instance.blocked ? 'switching over' : instance.status})`,
      );
    }
    const c = { instance, epoch: instance.epoch, client };
    // Only client sessions are counted; drop the ones that ended, so the list stays short.
    if (client) {
      this.sessions.push(c);
      if (this.sessions.length > 256) {
        const live = this.sessions.filter((x) => x.epoch === x.instance.epoch);
        this.sessions.splice(0, this.sessions.length, ...live);
      }
    }
    return c;
  }

  /** Runs one statement on a connection, at the moment it commits. */
  /** Calls `listener` each time a switchover ends, once its instances take connections. */
  onSwitchoverEnd(listener: () => void): void {
    this.switchoverEndListeners.push(listener);
  }

  execute(connection: { instance: Instance; epoch: number }, text: string, values: unknown[]) {
    const i = connection.instance;
    if (connection.epoch !== i.epoch || i.blocked || !this.instances.has(i.resourceId)) {
      throw pgError('57P01', 'Connection terminated unexpectedly');
    }
    if (text === END_SESSIONS_SQL) {
      // pg_terminate_backend on every client session but this one: they all end.
      const ended = this.clientSessions(i) - (this.sessions.some((c) => c === connection) ? 1 : 0);
      i.epoch += 1;
      this.ctx.emit({ kind: 'sessions-ended', instance: i.identifier, count: ended });
      return { rows: [{ ended }], rowCount: 1 };
    }
    if (text === LIMITATION_SQL.all) {
      // What the scenario put in the source's database that blue/green cannot replicate.
      const rows =
        i.resourceId === `db-${this.source}` ? (this.ctx.scenario.blueFindings ?? []) : [];
      return { rows, rowCount: rows.length };
    }
    if (text.includes(WRITER_SQL_MARK)) {
      if (this.ctx.scenario.writerCheckFails && i.resourceId.startsWith('db-green-')) {
        throw pgError('42501', 'permission denied for function pg_is_in_recovery');
      }
      return {
        rows: [
          {
            ro: this.readOnlyReason(i) === null ? 'off' : 'on',
            recovery: false,
            version: i.engineVersion,
          },
        ],
        rowCount: 1,
      };
    }
    const insert = parseInsert(text);
    if (insert === undefined) {
      throw new Error(
        `the rehearsal does not model this SQL statement: ${text.replace(/\s+/g, ' ').slice(0, 100)}`,
      );
    }
    const { table, columns, params, onConflict, conflictColumn } = insert;
    const pk = SCHEMA.get(table);
    if (pk === undefined) throw pgError('42P01', `relation "${table}" does not exist`);
    const readOnly = this.readOnlyReason(i);
    if (readOnly !== null)
      throw pgError('25006', `cannot execute INSERT in a read-only transaction (${readOnly})`);
    const row: Row = {};
    params.forEach((p, n) => {
      row[columns[n] ?? `?${n}`] = typeof p === 'number' ? values[p] : p;
    });
    const key = String(row[pk]);
    const keys = i.keys.get(table) ?? new Set<string>();
    i.keys.set(table, keys);
    if (keys.has(key)) {
      if (onConflict && conflictColumn === pk) return { rows: [], rowCount: 0 };
      throw pgError('23505', `duplicate key value violates unique constraint "${table}_pkey"`);
    }
    keys.add(key);
    const rows = i.tables.get(table) ?? [];
    i.tables.set(table, rows);
    rows.push(row);
    // While green replicates blue, blue's writes reach green too (the copy at the switchover
    // is what green holds then; replication lag is not modelled beyond the lag metric).
    return { rows: [], rowCount: 1 };
  }
}

export function pgError(code: string, message: string): Error {
  const e = new Error(message) as Error & { code: string };
  e.code = code;
  return e;
}

interface ParsedInsert {
  table: string;
  columns: string[];
  /** Each value: the index of its $n parameter, or the literal text. */
  params: (number | string)[];
  onConflict: boolean;
  conflictColumn: string | undefined;
}

const inserts = new Map<string, ParsedInsert | undefined>();

/** An INSERT the consumers send, parsed once per statement text (they reuse a few). */
function parseInsert(text: string): ParsedInsert | undefined {
  if (inserts.has(text)) return inserts.get(text);
  const m =
    /^\s*INSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)\s*VALUES\s*\(([^)]*)\)\s*(ON\s+CONFLICT\s*\((\w+)\)\s*DO\s+NOTHING)?\s*;?\s*$/is.exec(
      text,
    );
  const parsed =
    m === null
      ? undefined
      : {
          table: m[1] ?? '',
          columns: (m[2] ?? '').split(',').map((c) => c.trim()),
          params: (m[3] ?? '').split(',').map((v) => {
            const param = /^\s*\$(\d+)\s*$/.exec(v);
            return param ? Number(param[1]) - 1 : v.trim();
          }),
          onConflict: m[4] !== undefined,
          conflictColumn: m[5],
        };
  inserts.set(text, parsed);
  return parsed;
}
