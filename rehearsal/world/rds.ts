import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SESSION_SETUP } from '../../lambda/shared/mysql';
import { ENGINE_SPECS, type DatabaseEngine } from '../../lambda/shared/engines';
import {
  MYSQL_CLIENT_SESSIONS_SQL,
  MYSQL_LIMITATION_SQL,
  MYSQL_WRITER_SQL,
  mysqlKillSql,
} from '../../lambda/verify-writer-mysql/sql';
import { LIMITATION_SQL } from '../../lambda/verify-writer/limitations';
import { END_SESSIONS_SQL } from '../../lambda/verify-writer/old-sessions';
import { type IamRequest, resourceTagContext } from '../iam';
import { ACCOUNT, REGION, type SynthesizedApp } from '../synthesized';
import { AwsError, found, listResource, type ModelContext, type Service } from './core';
import { auroraMysqlVersions, ClusterModel } from './rds-cluster';

/**
 * RDS for PostgreSQL and RDS for MySQL as the upgrade meets them: DB instances with their
 * parameter groups, the blue/green deployment that builds green and switches over, the
 * endpoint names that move with the instances, and the data each instance holds. The engine
 * is the source instance's, as synthesized (DbInstanceSpec.engine); what differs by engine is
 * in ENGINE_MODELS below and in the SQL each engine's functions send (`execute` for
 * PostgreSQL, `executeMysql` for MySQL).
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
   * Old blue after a switchover "only allows read operations until you set" the engine's
   * read-only parameter (default_transaction_read_only for PostgreSQL, read_only for MySQL)
   * "to 0 and reboot the DB instance" (EngineModel.readOnlyParameter).
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
  /** The Aurora DB cluster it belongs to (its resourceId), if any (rds-cluster.ts). */
  cluster?: string;
  /** A cluster's instance: its DB cluster parameter group's values as it runs them. */
  clusterParameters?: Record<string, string>;
  /** A cluster's instance: DBClusterMembers' DBClusterParameterGroupStatus. */
  clusterGroupStatus?: string;
  /** Connections opened in an earlier epoch have been dropped. */
  epoch: number;
  /** The id the next connection gets (MySQL's CONNECTION_ID(), the processlist's id). */
  nextThreadId: number;
  /** During a switchover: no writes, no new connections. */
  blocked: boolean;
  tables: Map<string, Row[]>;
  keys: Map<string, Set<string>>;
}

export type Row = Record<string, unknown>;

/** A connection to an instance, open while its epoch is the instance's and no one killed it. */
export interface Connection {
  instance: Instance;
  epoch: number;
  /** A client session (counted, and ended, on a former writer). */
  client: boolean;
  /** Its thread id on the instance (MySQL's processlist id). */
  id: number;
  /** Ended by a KILL (mysql.rds_kill) on its own, without the instance's other sessions. */
  killed?: boolean;
  /** Ended by its client (COM_QUIT). */
  closed?: boolean;
  /** Statements prepared on it (MySQL's COM_STMT_PREPARE, one per text per connection). */
  prepared?: Set<string>;
}

export interface Deployment {
  id: string;
  name: string;
  tags: { Key: string; Value: string }[];
  /** The source and target: instances' resourceIds, or clusters' (level cluster). */
  blue: string;
  green: string;
  /** An Aurora deployment: blue and green are clusters. */
  level?: 'cluster';
  /** An Aurora deployment: each blue instance and the green instance that takes its name. */
  pairs?: [string, string][];
  status: string;
  createdAt: number;
  /** Set once the switchover ended (either way): replication to green stopped. */
  replicationStoppedAt?: number;
}

/** The tables the consumers write, and each table's primary key, from the schema they document. */
export const SCHEMA = primaryKeys(
  readFileSync(join(__dirname, '..', '..', 'lambda', 'database-roles', 'schema.sql'), 'utf8'),
);

/** The same for MySQL, from the MySQL consumers' schema (the same tables and keys). */
export const MYSQL_SCHEMA = primaryKeys(
  readFileSync(
    join(__dirname, '..', '..', 'lambda', 'database-roles-mysql', 'schema-mysql.sql'),
    'utf8',
  ),
);

function primaryKeys(sql: string): Map<string, string> {
  const tables = new Map<string, string>();
  for (const m of sql.matchAll(/CREATE TABLE IF NOT EXISTS (\w+) \(([\s\S]*?)\n\)[^;]*;/g)) {
    const pk = /^\s*(\w+)\s+[^,\n]*?\bPRIMARY KEY/m.exec(m[2] ?? '')?.[1];
    if (m[1] !== undefined && pk !== undefined) tables.set(m[1], pk);
  }
  return tables;
}

/**
 * The engines the model runs: RDS DB instances (postgres, mysql) and Aurora DB clusters
 * (aurora-postgresql, aurora-mysql: rds-cluster.ts).
 */
export type InstanceEngine = DatabaseEngine;

/** What differs between the engines' instances, as far as the upgrade meets it. */
export interface EngineModel {
  /**
   * The parameter that keeps an instance read-only, which old blue keeps set after a
   * switchover: "only allows read operations until you set" it "to 0 and reboot".
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html
   */
  readOnlyParameter: string;
  schema: Map<string, string>;
  /** The port RDS gives an instance of the engine by default (the stacks keep it). */
  port: number;
  /** The version an earlier upgrade's old blue runs (scenario leftoverOldBlue). */
  earlierVersion: string;
  /**
   * The blue-side replication metric RDS publishes while green replicates, if any: PostgreSQL's
   * logical replication holds a slot on blue (OldestReplicationSlotLag, "PostgreSQL only");
   * MySQL's green reads blue's binary log and reports its own ReplicaLag.
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html#rds-cw-metrics-instance
   */
  blueLagMetric?: string;
  /** Option groups an instance reports (RDS's default group only: the stacks add none). */
  optionGroups?: (version: string) => { OptionGroupName: string; Status: string }[];
}

export const ENGINE_MODELS: Record<DatabaseEngine, EngineModel> = {
  postgres: {
    readOnlyParameter: 'default_transaction_read_only',
    schema: SCHEMA,
    port: 5432,
    earlierVersion: '15.8',
    blueLagMetric: 'OldestReplicationSlotLag',
  },
  mysql: {
    readOnlyParameter: 'read_only',
    schema: MYSQL_SCHEMA,
    port: 3306,
    earlierVersion: '5.7.44',
    // RDS's own default option group, "default:mysql-8-0" (lambda/preflight reads the name).
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithOptionGroups.html
    optionGroups: (version) => [
      {
        OptionGroupName: `default:mysql-${ENGINE_SPECS.mysql.major(version).replace('.', '-')}`,
        Status: 'in-sync',
      },
    ],
  },
  // Aurora PostgreSQL: default_transaction_read_only is a DB cluster parameter; blue/green
  // replicates logically, holding a slot on blue (OldestReplicationSlotLag, Aurora
  // PostgreSQL's metric too).
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Reference.ParameterGroups.html
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.AuroraMonitoring.Metrics.html
  'aurora-postgresql': {
    readOnlyParameter: 'default_transaction_read_only',
    schema: SCHEMA,
    port: 5432,
    earlierVersion: '15.8',
    blueLagMetric: 'OldestReplicationSlotLag',
  },
  // Aurora MySQL 3: read_only is a DB cluster parameter only ("Removed at the instance level
  // from Aurora MySQL version 3"); green's binlog replica lag is AuroraBinlogReplicaLag.
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Reference.ParameterGroups.html
  'aurora-mysql': {
    readOnlyParameter: 'read_only',
    schema: MYSQL_SCHEMA,
    port: 3306,
    earlierVersion: '5.7.mysql_aurora.2.12.5',
  },
};

/** The model's engine for an instance's Engine, or an error naming what it does not model. */
export function instanceEngine(engine: string): InstanceEngine {
  if ((Object.keys(ENGINE_MODELS) as string[]).includes(engine)) return engine as InstanceEngine;
  throw new Error(
    `the rehearsal models ${Object.keys(ENGINE_MODELS).join(', ')} only, got engine: ${JSON.stringify(engine)}`,
  );
}

export const WRITER_SQL_MARK = "current_setting('transaction_read_only')";

/** A truthy parameter value, as RDS and the engines spell booleans. */
const isOn = (value: string | undefined) =>
  value !== undefined && ['1', 'on', 'true'].includes(value.toLowerCase());
const isOff = (value: string | undefined) =>
  value !== undefined && ['0', 'off', 'false'].includes(value.toLowerCase());

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
  /** Aurora: the DB clusters and DB cluster parameter groups (rds-cluster.ts). */
  readonly aurora: ClusterModel;
  /** Told when a switchover ends and its instances take connections again. */
  private readonly switchoverEndListeners: (() => void)[] = [];
  private switchoverAnswerLost = false;
  private blueWasProtected = false;
  private lastWriter: string | null | undefined;
  private readonly everWriters = new Set<string>();
  private groupsAtStart = new Map<string, string>();
  /** The source's engine, as synthesized: every instance of the run has it. */
  readonly engine: InstanceEngine;
  readonly engineModel: EngineModel;

  constructor(
    private readonly ctx: ModelContext,
    app: SynthesizedApp,
    readonly source: string,
    private readonly validTargets: string[],
  ) {
    for (const g of app.parameterGroups) {
      this.parameterGroups.set(g.name, { family: g.family, parameters: { ...g.parameters } });
    }
    const sourceCluster = (app.clusters ?? []).find((c) => c.identifier === source);
    const sourceSpec =
      sourceCluster ?? app.instances.find((i) => i.identifier === source) ?? app.instances[0];
    this.engine = instanceEngine(sourceSpec?.engine ?? 'postgres');
    this.engineModel = ENGINE_MODELS[this.engine];
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
        nextThreadId: 1,
        blocked: false,
        tables: new Map(),
        keys: new Map(),
      });
    }
    this.aurora = new ClusterModel(this, ctx, app);
    Object.assign(this.service, this.aurora.service);
    const blue = this.named(source);
    this.blueWasProtected = blue?.deletionProtection ?? false;
    if (ctx.scenario.leftoverOldBlue && this.isCluster) {
      const c = this.aurora.named(source);
      const writer = this.aurora.writerOf(c);
      if (c !== undefined && writer !== undefined) {
        const old = `${source}-old1`;
        const inst = {
          ...writer,
          identifier: `${writer.identifier}-old1`,
          resourceId: `db-${writer.identifier}-old1`,
          cluster: `cluster-${old}`,
          tables: new Map(),
          keys: new Map(),
        };
        this.instances.set(inst.resourceId, inst);
        this.aurora.clusters.set(`cluster-${old}`, {
          ...c,
          identifier: old,
          resourceId: `cluster-${old}`,
          engineVersion: this.engineModel.earlierVersion,
          members: [inst.resourceId],
          readOnlyLock: true,
        });
      }
    } else if (ctx.scenario.leftoverOldBlue && blue !== undefined) {
      const old = `${source}-old1`;
      this.instances.set(`db-${old}`, {
        ...blue,
        identifier: old,
        resourceId: `db-${old}`,
        engineVersion: this.engineModel.earlierVersion,
        readOnlyLock: true,
        tables: new Map(),
        keys: new Map(),
      });
    }
    this.writerChanged();
  }

  /** Whether the source is an Aurora DB cluster. */
  get isCluster(): boolean {
    return this.aurora.clusters.has(`cluster-${this.source}`);
  }

  /** The endpoint applications connect to: the source instance's, or its cluster's. */
  sourceEndpoint(): string {
    return this.isCluster ? ClusterModel.endpoint(this.source) : RdsModel.endpoint(this.source);
  }

  /** Whether an instance is the source's writer as the run found it (blue). */
  isSourceWriter(i: Instance): boolean {
    if (!this.isCluster) return i.resourceId === `db-${this.source}`;
    return this.aurora.clusters.get(`cluster-${this.source}`)?.members[0] === i.resourceId;
  }

  /** The name production answers to and whether it is protected: the instance's or the cluster's. */
  production(): { identifier: string; deletionProtection: boolean } | undefined {
    if (!this.isCluster) return this.writer();
    return this.aurora.named(this.source);
  }

  /** Whether the source instance had deletion protection at the start and has none now. */
  blueUnprotected(): boolean {
    if (this.isCluster) return this.aurora.blueUnprotected();
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

  /**
   * The writer applications reach: the instance named like the source, or the writer of the
   * cluster named like it.
   */
  writer(): Instance | undefined {
    if (this.isCluster) return this.aurora.writerOf(this.aurora.named(this.source));
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

  /**
   * Moments two instances that were each the writer once took writes at the same time: a split
   * brain while it lasted, even if the end state is sound. `noteWriters` looks after every RDS
   * call and every timed change of the model.
   */
  readonly splitBrains: { t: number; instances: string[] }[] = [];
  private splitNow = '';

  noteWriters(): void {
    const writable = [...this.everWriters]
      .map((id) => this.byResource(id))
      .filter((i): i is Instance => i !== undefined && this.readOnlyReason(i) === null)
      .map((i) => i.identifier)
      .sort();
    const key = writable.length > 1 ? writable.join(',') : '';
    if (key !== '' && key !== this.splitNow) {
      this.splitBrains.push({ t: this.ctx.now(), instances: writable });
    }
    this.splitNow = key;
  }

  /** Remembers the stack's parameter groups as the run finds them. */
  snapshotGroups(): void {
    this.groupsAtStart = new Map([
      ...[...this.parameterGroups].map(([name, g]): [string, string] => [
        name,
        JSON.stringify(g.parameters),
      ]),
      ...this.aurora.groupTexts(),
    ]);
  }

  /** The groups the run found and then changed (drift from CloudFormation's template). */
  changedGroups(): string[] {
    const now = new Map(this.aurora.groupTexts());
    return [...this.groupsAtStart]
      .filter(
        ([name, before]) =>
          (now.get(name) ?? JSON.stringify(this.parameterGroups.get(name)?.parameters)) !== before,
      )
      .map(([name]) => name);
  }

  /** Notes who the writer is now (a rename or a switchover may change it). */
  writerChanged(): void {
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

  /** The value the group an instance runs with gives a parameter (undefined: not set). */
  appliedParameter(i: Instance, name: string): string | undefined {
    return this.parameterGroups.get(i.appliedGroup)?.parameters[name];
  }

  /**
   * Whether an instance refuses writes, and why (null: it takes writes). Green while it
   * replicates: "the DB instance in the green environment is read-only by default" (for
   * MySQL, read_only=1 until it is set to 0). Old blue after a switchover: until the engine's
   * read-only parameter is 0 and the instance rebooted. Otherwise the parameter as the
   * instance's applied group sets it; for MySQL also innodb_read_only, which refuses every
   * write to InnoDB tables, whoever writes.
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-overview.html
   * https://dev.mysql.com/doc/refman/8.0/en/innodb-parameters.html#sysvar_innodb_read_only
   */
  readOnlyReason(i: Instance): string | null {
    if (i.cluster !== undefined) return this.aurora.readOnlyReason(i);
    const parameter = this.engineModel.readOnlyParameter;
    if (i.replicaOf !== undefined) return 'green is read-only while it replicates blue';
    if (i.readOnlyLock) return `old blue stays read-only until ${parameter}=0 and a reboot`;
    const value = this.appliedParameter(i, parameter);
    if (isOn(value)) return `parameter group ${i.appliedGroup} sets ${parameter}=${value}`;
    if (this.engine === 'mysql') {
      const innodb = this.appliedParameter(i, 'innodb_read_only');
      if (isOn(innodb)) return `parameter group ${i.appliedGroup} sets innodb_read_only=${innodb}`;
    }
    return null;
  }

  // ------------------------------------------------------------------ blue/green deployments
  private describeDeployment(d: Deployment) {
    if (d.level === 'cluster') return this.aurora.describeDeployment(d);
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
        if (sourceArn.includes(':cluster:')) {
          return this.aurora.createIam(i, this.deploymentArn(id), id);
        }
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
        if (d?.level === 'cluster') return [...requests, ...this.aurora.switchoverIam(d)];
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
        if (d?.level === 'cluster') {
          return [...requests, ...this.aurora.deleteIam(d, i.DeleteTarget === true)];
        }
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
          // Filters db-cluster-id ("Accepts DB cluster identifiers and DB cluster Amazon
          // Resource Names (ARNs)") and db-instance-id; the others are not modelled.
          // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html
          const filters = (i.Filters ?? []) as { Name: string; Values: string[] }[];
          const bare = (v: string) => v.split(':').at(-1) ?? v;
          const matches = (x: Instance) =>
            filters.every((f) => {
              const values = f.Values.map(bare);
              if (f.Name === 'db-cluster-id') {
                return values.includes(this.aurora.byResource(x.cluster)?.identifier ?? '');
              }
              if (f.Name === 'db-instance-id') return values.includes(x.identifier);
              throw new Error(
                `the rehearsal does not model the DescribeDBInstances filter ${f.Name}`,
              );
            });
          return {
            DBInstances: [...this.instances.values()]
              .filter(matches)
              .map((x) => this.describeInstance(x)),
          };
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
      // The account's engine only: another engine's versions (or none named) list nothing
      // here, where RDS would list that engine's. A major upgrade changes the engine's major
      // version: the first number for PostgreSQL (16 to 17), the first two for MySQL (8.0 to
      // 8.4). https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_UpgradeTarget.html
      run: (i) => {
        if (i.Engine !== undefined && i.Engine !== this.engine) return { DBEngineVersions: [] };
        // Aurora's versions too: the engine's own spelling, the family its cluster groups take.
        // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBEngineVersion.html
        const major = ENGINE_SPECS[this.engine].major;
        return {
          DBEngineVersions: [
            {
              Engine: this.engine,
              EngineVersion: i.EngineVersion,
              DBParameterGroupFamily: ENGINE_SPECS[this.engine].family(String(i.EngineVersion)),
              ValidUpgradeTarget: this.validTargets.map((v) => ({
                Engine: this.engine,
                EngineVersion: v,
                IsMajorVersionUpgrade: major(v) !== major(String(i.EngineVersion)),
              })),
            },
          ],
        };
      },
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
          if (inst.cluster !== undefined) {
            this.aurora.rebooted(inst);
            return;
          }
          const value = this.appliedParameter(inst, this.engineModel.readOnlyParameter);
          if (inst.readOnlyLock && isOff(value)) inst.readOnlyLock = false;
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
      ...(i.cluster !== undefined
        ? { DBClusterIdentifier: this.aurora.byResource(i.cluster)?.identifier }
        : {}),
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
      ...(this.engineModel.optionGroups
        ? { OptionGroupMemberships: this.engineModel.optionGroups(i.engineVersion) }
        : {}),
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
    if (sourceArn.includes(':cluster:')) return this.createForCluster(i, call, errors);
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
      nextThreadId: 1,
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

  /** CreateBlueGreenDeployment with a cluster Source (rds-cluster.ts builds green). */
  private createForCluster(i: Record<string, unknown>, call: number, errors: string[]) {
    const blue = this.aurora.require(i.Source);
    const name = String(i.BlueGreenDeploymentName);
    if ([...this.deployments.values()].some((d) => d.name === name)) {
      throw new AwsError(
        'BlueGreenDeploymentAlreadyExistsFault',
        `A blue/green deployment named ${name} already exists.`,
      );
    }
    if ([...this.deployments.values()].some((d) => d.blue === blue.resourceId)) {
      throw new AwsError(
        'InvalidDBClusterStateFault',
        `DB cluster ${blue.identifier} is already the source of a blue/green deployment.`,
      );
    }
    const id = this.pendingId();
    const { green } = this.aurora.createGreen(i, id);
    this.nextId += 1;
    const d: Deployment = {
      id,
      name,
      tags: (i.Tags as Deployment['tags'] | undefined) ?? [],
      blue: blue.resourceId,
      green: green.resourceId,
      level: 'cluster',
      pairs: blue.members.map((b, k): [string, string] => [b, green.members[k] ?? '']),
      status: 'PROVISIONING',
      createdAt: this.ctx.now(),
    };
    this.deployments.set(id, d);
    const s = this.ctx.scenario;
    if (!s.greenStuck) {
      this.ctx.after(this.ctx.latency.greenBuild, () => {
        if (d.status !== 'PROVISIONING') return;
        this.aurora.greenReady(green);
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
    const cluster = d.level === 'cluster';
    const blue = cluster
      ? this.aurora.writerOf(this.aurora.byResource(d.blue))
      : this.byResource(d.blue);
    const green = cluster
      ? this.aurora.writerOf(this.aurora.byResource(d.green))
      : this.byResource(d.green);
    if (blue === undefined || green === undefined)
      throw new Error('switchover without blue or green');
    // "Stops new write operations ... Drops connections to the DB instances in both
    // environments and doesn't allow new connections." (For Aurora, every instance of both
    // clusters.)
    const members = cluster ? this.aurora.switchoverInstances(d) : [blue, green];
    d.status = 'SWITCHOVER_IN_PROGRESS';
    for (const inst of members) {
      inst.blocked = true;
      inst.epoch += 1;
    }
    this.ctx.emit({ kind: 'switchover-start', deployment: d.id });
    const s = this.ctx.scenario;
    // 30-3600 s; past it "any changes are rolled back and no changes are made to either environment".
    const timeout = Number(i.SwitchoverTimeout ?? 300);
    const took = this.ctx.latency.switchover;
    const release = () => {
      for (const inst of members) {
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
        let name = blue.identifier;
        if (cluster) {
          name = this.aurora.completeSwitchover(d)?.name ?? name;
        } else {
          let n = 1;
          while (this.named(`${name}-old${n}`) !== undefined) n += 1;
          blue.identifier = `${name}-old${n}`;
          blue.readOnlyLock = true;
          green.identifier = name;
          green.replicaOf = undefined;
          green.tables = new Map([...blue.tables].map(([t, rows]) => [t, [...rows]]));
          green.keys = new Map([...blue.keys].map(([t, keys]) => [t, new Set(keys)]));
        }
        // Sequences are not modelled (the consumers' tables have natural keys). With logical
        // replication "NEXTVAL operations on sequence objects aren't synchronized", but
        // "during switchover, Amazon RDS increments sequence values in the green environment
        // to match those in the blue environment"; a failed sync cancels the switchover
        // (RDS-EVENT-0310), which the runbook meets as any switchover rolled back.
        // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres-logical
        // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Events.Messages.html#USER_Events.Messages.BlueGreenDeployments
        // RDS for MySQL replicates blue's binary log to green (a read replica, as the
        // CreateDBInstanceReadReplica the create call is authorized for says); AUTO_INCREMENT
        // values travel with the rows, and the consumers' tables use none either.
        // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-overview.html
        d.status = 'SWITCHOVER_COMPLETED';
        d.replicationStoppedAt = this.ctx.now();
        release();
        const gone = this.ctx.scenario.deploymentDeletedAfterSeconds;
        // Someone else deletes the deployment (DeleteTarget false) before the runbook does.
        if (gone !== undefined) this.ctx.after(gone, () => this.deployments.delete(d.id));
        const untagged = this.ctx.scenario.deploymentUntaggedAfterSeconds;
        if (untagged !== undefined) this.ctx.after(untagged, () => (d.tags = []));
        const busy = this.ctx.scenario.newWriterModifyingSeconds;
        const greenCluster = this.aurora.byResource(d.green);
        if (busy !== undefined) {
          // For Aurora the cluster is `modifying` (its status is what the checks read).
          const target = cluster && greenCluster !== undefined ? greenCluster : green;
          target.status = 'modifying';
          this.ctx.after(busy, () => {
            if (target.status === 'modifying') target.status = 'available';
          });
        }
        const stale = this.ctx.scenario.staleDnsConnects ?? 0;
        if (stale > 0)
          this.staleDns = {
            host: cluster ? ClusterModel.endpoint(name) : RdsModel.endpoint(name),
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
    if (d.level === 'cluster') return this.deleteForCluster(d, deleteTarget);
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

  private deleteForCluster(d: Deployment, deleteTarget: boolean) {
    const green = this.aurora.checkDelete(d, deleteTarget);
    const answer = { BlueGreenDeployment: this.describeDeployment(d) };
    const greenWriter = this.aurora.writerOf(green);
    if (deleteTarget && green !== undefined && greenWriter !== undefined) {
      this.ctx.emit({
        kind: 'green-deleted',
        busy: ['backing-up', 'modifying'].includes(green.status) ? green.status : null,
      });
    }
    const switchedOver = d.status === 'SWITCHOVER_COMPLETED';
    d.status = 'DELETING';
    this.ctx.after(this.ctx.latency.deleteDeployment, () => {
      this.deployments.delete(d.id);
      this.aurora.deleted(d, deleteTarget, switchedOver);
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
   * (bytes; PostgreSQL only) or green's ReplicaLag (seconds; for MySQL, how far green's
   * binlog replication is behind blue).
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
      // Only where the engine has it: RDS for MySQL publishes no OldestReplicationSlotLag.
      ...(this.engineModel.blueLagMetric === 'OldestReplicationSlotLag'
        ? {
            OldestReplicationSlotLag: {
              member: 'blue' as const,
              value: (s.replicationLagMb ?? 1) * 1024 * 1024,
            },
          }
        : {}),
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
  private readonly sessions: Connection[] = [];

  private newConnection(instance: Instance, client: boolean): Connection {
    const c: Connection = { instance, epoch: instance.epoch, client, id: instance.nextThreadId++ };
    // Only client sessions are counted; drop the ones that ended, so the list stays short.
    if (client) {
      this.sessions.push(c);
      if (this.sessions.length > 256) {
        const live = this.sessions.filter((x) => this.alive(x));
        this.sessions.splice(0, this.sessions.length, ...live);
      }
    }
    return c;
  }

  /** A connection to this instance itself (a client with a cached address). */
  open(instance: Instance): Connection {
    return this.newConnection(instance, true);
  }

  /** Whether a connection is still open: not dropped by its instance, nor killed, nor gone. */
  alive(c: { instance: Instance; epoch: number; killed?: boolean; closed?: boolean }): boolean {
    const i = c.instance;
    return (
      c.epoch === i.epoch &&
      c.killed !== true &&
      c.closed !== true &&
      !i.blocked &&
      this.instances.has(i.resourceId)
    );
  }

  /** The client sessions an instance holds now. */
  clientSessions(instance: Instance): number {
    return this.liveSessions(instance).length;
  }

  private liveSessions(instance: Instance): Connection[] {
    return this.sessions.filter(
      (c) =>
        c.client && c.instance === instance && c.epoch === instance.epoch && !c.killed && !c.closed,
    );
  }

  /** Opens a connection to the instance a host name resolves to now. */
  connect(host: string, client = true): Connection {
    if (this.ctx.scenario.formerWritersUnreachable && /-(old|failed)1\./.test(host)) {
      throw pgError('ETIMEDOUT', `connect ETIMEDOUT ${host}:${this.engineModel.port}`);
    }
    let instance: Instance | undefined;
    const viaCluster = this.aurora.resolve(host);
    if (this.staleDns !== undefined && this.staleDns.host === host && this.staleDns.left > 0) {
      this.staleDns.left -= 1;
      instance = this.byResource(this.staleDns.resourceId);
    } else if (viaCluster !== null) {
      // A cluster endpoint reaches the cluster's writer.
      instance = viaCluster;
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
    return this.newConnection(instance, client);
  }

  /** Calls `listener` each time a switchover ends, once its instances take connections. */
  onSwitchoverEnd(listener: () => void): void {
    this.switchoverEndListeners.push(listener);
  }

  /** Runs one PostgreSQL statement on a connection, at the moment it commits. */
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
      const rows = this.isSourceWriter(i) ? (this.ctx.scenario.blueFindings ?? []) : [];
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
    this.store(i, table, key, row);
    return { rows: [], rowCount: 1 };
  }

  /** A new row, under a key the table does not hold yet. */
  private store(i: Instance, table: string, key: string, row: Row): void {
    const keys = i.keys.get(table) ?? new Set<string>();
    i.keys.set(table, keys);
    keys.add(key);
    const rows = i.tables.get(table) ?? [];
    i.tables.set(table, rows);
    rows.push(row);
    // While green replicates blue, blue's writes reach green too (the copy at the switchover
    // is what green holds then; replication lag is not modelled beyond the lag metric).
  }

  /**
   * Runs one MySQL statement on a connection, at the moment it commits, as the server answers
   * it: an OK with its affected rows, or a resultset (every value as text, as the text
   * protocol sends it), or a server error with MySQL's errno and SQLSTATE. `values` are a
   * prepared statement's parameters, in order.
   * https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html
   */
  executeMysql(
    connection: Connection,
    text: string,
    values: readonly (string | null)[] = [],
  ): { affectedRows: number } | { columns: string[]; rows: (string | null)[][] } {
    const i = connection.instance;
    if (!this.alive(connection)) throw connectionLost();
    if (text === SESSION_SETUP) return { affectedRows: 0 };
    // The writer check's select (MYSQL_WRITER_SQL, or any select of server variables).
    if (text === MYSQL_WRITER_SQL || /^\s*SELECT\s+(@@|aurora_version\(\))/i.test(text)) {
      if (this.ctx.scenario.writerCheckFails && i.resourceId.startsWith('db-green-')) {
        // The new writer takes writes but refuses the check's query (an access error).
        throw mysqlError(
          1227,
          '42000',
          'Access denied; you need (at least one of) the SYSTEM_VARIABLES_ADMIN privilege(s) for this operation',
        );
      }
      const answer = this.mysqlVariables(i, text);
      if (answer !== undefined) return answer;
    }
    if (text === MYSQL_CLIENT_SESSIONS_SQL) {
      const ids = this.liveSessions(i)
        .filter((c) => c !== connection)
        .map((c) => [String(c.id)]);
      return { columns: ['id'], rows: ids };
    }
    // The kill statement for the session id it names (the statement is sql.ts's, by identity).
    const killed = Number(/\d+/.exec(text.slice(text.lastIndexOf('(')))?.[0] ?? Number.NaN);
    if (Number.isSafeInteger(killed) && killed > 0 && text === mysqlKillSql(killed)) {
      // RDS's procedure for KILL: "To end a connection, use the mysql.rds_kill procedure and
      // pass in the thread ID of that connection." An id no session has is the server's
      // ER_NO_SUCH_THREAD (1094, "Unknown thread id: %lu").
      // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mysql_rds_kill.html
      // https://dev.mysql.com/doc/mysql-errors/8.4/en/server-error-reference.html#error_er_no_such_thread
      const id = killed;
      const target = this.sessions.find(
        (c) => c.instance === i && c.id === id && this.alive(c) && c !== connection,
      );
      if (target === undefined) throw mysqlError(1094, 'HY000', `Unknown thread id: ${id}`);
      target.killed = true;
      this.ctx.emit({ kind: 'sessions-ended', instance: i.identifier, count: 1 });
      return { affectedRows: 0 };
    }
    if (text === MYSQL_LIMITATION_SQL) {
      // SHOW REPLICA STATUS on blue: a row when blue replicates from a source outside RDS's
      // blue/green deployment, which "can't be an external binlog replica".
      // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-mysql
      // https://dev.mysql.com/doc/refman/8.0/en/show-replica-status.html
      const source = this.ctx.scenario.externalReplicaSource;
      const rows =
        source !== undefined && this.isSourceWriter(i)
          ? [[source, '3306', 'Yes', 'Yes', '0', '']]
          : [];
      return {
        columns: [
          'Source_Host',
          'Source_Port',
          'Replica_IO_Running',
          'Replica_SQL_Running',
          'Seconds_Behind_Source',
          'Channel_Name',
        ],
        rows,
      };
    }
    const insert = parseMysqlInsert(text);
    if (insert === undefined) {
      throw new Error(
        `the rehearsal does not model this SQL statement: ${text.replace(/\s+/g, ' ').slice(0, 100)}`,
      );
    }
    const { table, columns, updates } = insert;
    const pk = MYSQL_SCHEMA.get(table);
    if (pk === undefined) throw mysqlError(1146, '42S02', `Table '${table}' doesn't exist`);
    if (values.length !== columns.length) {
      throw mysqlError(1210, 'HY000', 'Incorrect arguments to mysqld_stmt_execute');
    }
    const readOnly = this.readOnlyReason(i);
    if (readOnly !== null) {
      // ER_OPTION_PREVENTS_STATEMENT, as MySQL words it for read_only (and super_read_only).
      // https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html#error_er_option_prevents_statement
      const option = readOnly.includes('innodb_read_only') ? null : '--read-only';
      if (option === null) {
        // innodb_read_only: InnoDB refuses the write itself (ER_READ_ONLY_MODE).
        throw mysqlError(1836, 'HY000', 'Running in read-only mode');
      }
      throw mysqlError(
        1290,
        'HY000',
        `The MySQL server is running with the ${option} option so it cannot execute this statement`,
      );
    }
    const row: Row = {};
    columns.forEach((column, n) => {
      row[column] = values[n] ?? null;
    });
    const key = String(row[pk]);
    if (i.keys.get(table)?.has(key) === true) {
      // "If you specify an ON DUPLICATE KEY UPDATE clause and a row to be inserted would cause
      // a duplicate value in a UNIQUE index or PRIMARY KEY, an UPDATE of the old row occurs";
      // setting the key to itself changes nothing: 0 affected rows (the client does not set
      // CLIENT_FOUND_ROWS). Without the clause, ER_DUP_ENTRY.
      // https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html
      if (updates === `${pk} = ${pk}`) return { affectedRows: 0 };
      if (updates === undefined) {
        throw mysqlError(1062, '23000', `Duplicate entry '${key}' for key '${table}.PRIMARY'`);
      }
      throw new Error(`the rehearsal does not model ON DUPLICATE KEY UPDATE ${updates}`);
    }
    this.store(i, table, key, row);
    return { affectedRows: 1 };
  }

  /**
   * A `SELECT <variable> AS <alias>, ...` the writer checks send, as the server answers it:
   * read_only and innodb_read_only "0" or "1", @@version the server's version: for RDS for
   * MySQL its EngineVersion, for Aurora MySQL the MySQL version it is compatible with, and
   * @@aurora_version (or aurora_version()) Aurora's own ("3.10.0"). Aurora manages InnoDB's
   * read-only state itself; the model answers 0 there. Undefined for a select it does not know.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Updates.Versions.html
   */
  private mysqlVariables(
    i: Instance,
    text: string,
  ): { columns: string[]; rows: (string | null)[][] } | undefined {
    const list = /^\s*SELECT\s+(.+?)\s*;?\s*$/is.exec(text)?.[1];
    if (list === undefined) return undefined;
    const aurora =
      this.engine === 'aurora-mysql' ? auroraMysqlVersions(i.engineVersion) : undefined;
    const columns: string[] = [];
    const row: (string | null)[] = [];
    for (const item of list.split(',')) {
      const m = /^\s*(\S+?)(?:\s+AS\s+(\w+))?\s*$/i.exec(item);
      if (m === null) return undefined;
      const expr = (m[1] ?? '')
        .toLowerCase()
        .replace('@@global.', '@@')
        .replace('@@session.', '@@');
      const value: Record<string, string | undefined> = {
        '@@read_only': this.readOnlyReason(i) === null ? '0' : '1',
        '@@innodb_read_only':
          this.engine === 'mysql' && isOn(this.appliedParameter(i, 'innodb_read_only')) ? '1' : '0',
        '@@version': aurora?.version ?? i.engineVersion,
        '@@aurora_version': aurora?.aurora,
        'aurora_version()': aurora?.aurora,
      };
      if (!(expr in value)) return undefined;
      const v = value[expr];
      // Community MySQL has no aurora_version: "Unknown system variable".
      if (v === undefined)
        throw mysqlError(1193, 'HY000', `Unknown system variable '${expr.replace('@@', '')}'`);
      columns.push(m[2] ?? m[1] ?? '');
      row.push(v);
    }
    return { columns, rows: [row] };
  }
}

/** A MySQL server error, as the model's client reports it (rehearsal/mysql-model.ts). */
export function mysqlError(errno: number, sqlState: string, message: string): Error {
  const e = new Error(message) as Error & { errno: number; sqlState: string };
  e.errno = errno;
  e.sqlState = sqlState;
  return e;
}

/** The connection was dropped under the statement: the client sees its socket close. */
export function connectionLost(): Error {
  const e = new Error('the server closed the connection') as Error & { code: string };
  e.code = 'CONNECTION_LOST';
  return e;
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

interface ParsedMysqlInsert {
  table: string;
  columns: string[];
  /** The ON DUPLICATE KEY UPDATE assignments, spaces normalized; undefined without the clause. */
  updates: string | undefined;
}

const mysqlInserts = new Map<string, ParsedMysqlInsert | undefined>();

/**
 * A MySQL INSERT the consumers prepare (lambda/buffer-consumer/effects-mysql.ts): a `?` per
 * column, in order, and ON DUPLICATE KEY UPDATE or nothing after.
 */
function parseMysqlInsert(text: string): ParsedMysqlInsert | undefined {
  if (mysqlInserts.has(text)) return mysqlInserts.get(text);
  const m =
    /^\s*INSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)\s*VALUES\s*\(([^)]*)\)\s*(?:ON\s+DUPLICATE\s+KEY\s+UPDATE\s+(.+?))?\s*;?\s*$/is.exec(
      text,
    );
  const columns = (m?.[2] ?? '').split(',').map((c) => c.trim());
  const placeholders = (m?.[3] ?? '').split(',').map((v) => v.trim());
  const parsed =
    m === null || placeholders.length !== columns.length || placeholders.some((p) => p !== '?')
      ? undefined
      : {
          table: m[1] ?? '',
          columns,
          updates: m[4]
            ?.replace(/\s+/g, ' ')
            .replace(/\s*=\s*/g, ' = ')
            .trim(),
        };
  mysqlInserts.set(text, parsed);
  return parsed;
}
