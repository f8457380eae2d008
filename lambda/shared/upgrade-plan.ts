import type { DatabaseEngine } from './engines';

/**
 * The plan of one upgrade run: the deploy-time defaults, overridden by the execution input,
 * checked by `validate-input`. Every later state reads it from `$.plan`.
 */
export interface UpgradePlan {
  /** The blue (production) DB instance identifier, e.g. "platform-db" (Aurora: the DB cluster's). */
  sourceIdentifier: string;
  /** Its ARN. */
  sourceArn: string;
  /**
   * The engine (lambda/shared/engines.ts). The functions take what differs by engine from it:
   * READ_ONLY_PARAMETER, replicationOf.
   */
  engine: DatabaseEngine;
  /** The version the stack says blue runs; preflight checks the real one. */
  currentEngineVersion: string;
  /** The version green is created with. */
  targetEngineVersion: string;
  /** The parameter group green uses (target family, logical replication on; Aurora: the DB cluster parameter group). */
  targetParameterGroupName: string;
  /** SwitchoverTimeout, 30-3600 s. */
  switchoverTimeoutSeconds: number;
  /** ISO time: never switch over after it. */
  deadline: string;
  /** Preflight and plan only. */
  dryRun: boolean;
  /** Wait for an operator's approval (task token) before maintenance starts. */
  requireApproval: boolean;
  /** The buffer consumers' event source mappings, paused around the switchover. */
  mappings: { name: string; uuid: string }[];
  /** The buffer queues, measured while draining. */
  queues: { name: string; url: string; arn: string }[];
  /** The listener that gets the maintenance rules. */
  listenerArn: string;
  /** The maintenance toggle function's name. */
  maintenanceToggleFunction: string;
  /**
   * Green is verified only if blue's oldest replication slot lags less than this (MB): logical
   * replication only (replicationOf); a replica's lag is held to verify-green's
   * MAX_REPLICA_LAG_SECONDS.
   */
  maxReplicationLagMb: number;
  /** The quiet gate before the consumers pause (off unless deployed and enabled). */
  quietGate: QuietGate;
}

/**
 * The quiet gate: wait until the traffic alarm is OK (the load balancer served at most
 * `requestsPerMinute` a minute for 3 minutes), re-checking every minute, at most `maxChecks`
 * times and not past `until`; then `onDeadline` decides.
 */
export interface QuietGate {
  enabled: boolean;
  /** The CloudWatch alarm on the load balancer's RequestCount; "" when none is deployed. */
  alarmName: string;
  requestsPerMinute: number;
  onDeadline: 'roll-back' | 'switch-anyway';
  /** Checks a minute apart: the longest wait, in minutes. */
  maxChecks: number;
  /** ISO time: the gate gives up by then (the deadline less QUIET_GATE_MARGIN_MINUTES). */
  until: string;
}

/**
 * The gate's longest wait, in minutes: each minute's check is 11 execution history events,
 * so an hour (660) keeps the worst-case run under half the 25,000-event quota
 * (historyWorstCase in lib/constructs/upgrade-runbook.ts).
 */
export const QUIET_GATE_MAX_WAIT_MINUTES = 60;

/** The gate gives up this long before the deadline, so a switch anyway still starts in time. */
export const QUIET_GATE_MARGIN_MINUTES = 5;

/** What the execution input may override. */
export interface UpgradeInput {
  targetEngineVersion?: string;
  dryRun?: boolean;
  switchoverTimeoutSeconds?: number;
  deadline?: string;
  requireApproval?: boolean;
  quietGate?: { enabled?: boolean; onDeadline?: QuietGate['onDeadline']; maxWaitMinutes?: number };
}

/**
 * DB instance statuses an instance does not leave on its own: waiting for it would never end.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
 */
export const STUCK_INSTANCE_STATUSES: ReadonlySet<string> = new Set([
  'failed',
  'inaccessible-encryption-credentials',
  'inaccessible-encryption-credentials-recoverable',
  'incompatible-network',
  'incompatible-option-group',
  'incompatible-parameters',
  'incompatible-restore',
  'insufficient-capacity',
  'restore-error',
  'stopped',
  'stopping',
  'storage-full',
]);

/**
 * DB cluster statuses a cluster does not leave on its own (the Aurora list has no
 * "transient or not" column; these are the failures and the stopped states).
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Aurora.Status
 */
export const STUCK_CLUSTER_STATUSES: ReadonlySet<string> = new Set([
  'cloning-failed',
  'inaccessible-encryption-credentials',
  'inaccessible-encryption-credentials-recoverable',
  'migration-failed',
  'stopped',
  'stopping',
]);

/**
 * The copies of a parameter group that the restore attaches: `<group>-restore` sets the
 * engine's read-only parameter (READ_ONLY_PARAMETER) to 0 (old blue), `<group>-fence` sets it
 * to 1 (the failed writer). Copies, because the group an instance uses is CloudFormation's:
 * changing it would drift the stack, and would change every instance that uses it. For Aurora
 * they are copies of the cluster's DB cluster parameter group (READ_ONLY_PARAMETER).
 */
export const RESTORE_GROUP_SUFFIX = '-restore';
export const FENCE_GROUP_SUFFIX = '-fence';

/** The engines RDS runs as a single DB instance (ENGINE_SPECS level 'instance'). */
export type InstanceEngine = Extract<DatabaseEngine, 'postgres' | 'mysql'>;

/**
 * The parameter that keeps the old blue read-only after a switchover: "the previous production
 * primary DB instance only allows read operations until you set the `read_only` parameter (for
 * RDS for MySQL) or the `default_transaction_read_only` parameter (for RDS for PostgreSQL) to
 * `0` and reboot the DB instance".
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 * Both take 0 and 1 in an RDS parameter group, and both are dynamic, so ModifyDBParameterGroup
 * takes ApplyMethod "immediate" for them ("You can use the immediate value with dynamic
 * parameters only"): default_transaction_read_only is a PostgreSQL setting any user may change
 * at any time; MySQL's read_only is "Scope: Global, Dynamic: Yes, Type: Boolean", and RDS
 * gives it "a dynamic apply type, which means that its setting takes effect immediately".
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Parameter.html
 * https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-DEFAULT-TRANSACTION-READ-ONLY
 * https://dev.mysql.com/doc/refman/8.4/en/server-system-variables.html#sysvar_read_only
 * https://docs.aws.amazon.com/hands-on/latest/migrate-rdsmysql-to-auroramysql/migrate-rdsmysql-to-auroramysql.html
 *
 * Aurora keeps the same parameters in the DB *cluster* parameter group. The Aurora guide's
 * "Switchover actions" say only that "the previous production DB cluster only allows read
 * operations until the writer instance is rebooted"; it names the parameters where it tells
 * how to open the green cluster to writes: "To enable write operations for Aurora MySQL, set
 * the `read_only` parameter to `0`, then reboot the DB instance. For Aurora PostgreSQL, set
 * the `default_transaction_read_only` parameter to `off` at the session level." Aurora MySQL
 * version 3 has read_only at the cluster level only ("Removed at the instance level from
 * Aurora MySQL version 3"), and Aurora PostgreSQL lists default_transaction_read_only among
 * its cluster-level parameters.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-overview.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Reference.ParameterGroups.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Reference.ParameterGroups.html
 */
export const READ_ONLY_PARAMETER: Readonly<Record<DatabaseEngine, string>> = {
  postgres: 'default_transaction_read_only',
  mysql: 'read_only',
  'aurora-postgresql': 'default_transaction_read_only',
  'aurora-mysql': 'read_only',
};

/**
 * After a switchover RDS renames the old blue to `<name>-old1`; it "only allows read
 * operations until you set" its engine's READ_ONLY_PARAMETER "to 0 and reboot". For Aurora,
 * "RDS renames the DB cluster and DB instances in the blue environment by appending `-oldn`
 * to the current name, where `n` is a number".
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 */
export const OLD_BLUE_SUFFIX = '-old1';
/** The tag the runbook puts on the deployment it creates; its value is the execution name. */
export const EXECUTION_TAG = 'quiet-upgrade:execution';

/** The name the failed new writer is moved to, so the old blue can take the original name. */
export const FAILED_WRITER_SUFFIX = '-failed1';
/** The result of a check Lambda (preflight, verify green, verify writer). */
export interface CheckResult {
  passed: boolean;
  /** Every failed check, each a sentence an operator can act on. */
  failures: string[];
}

/**
 * Past its timeout RDS rolls a switchover back; the runbook allows this long more for that
 * to show before it calls the switchover stuck.
 */
export const SWITCHOVER_MARGIN_SECONDS = 120;

/**
 * How RDS replicates blue to green: RDS for PostgreSQL physically (WAL, green a read replica)
 * or logically (replication slots on blue); RDS for MySQL by binary log replication, "The
 * green primary DB instance is a replica of the blue primary DB instance" either way.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-replication-type.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-guardrails
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-best-practices.html#blue-green-deployments-best-practices-mysql
 */
export type Replication = 'physical' | 'logical' | 'binlog';

/**
 * PostgreSQL's major version: "17" of "17.2" from version 10 on, "9.6" of "9.6.24" before.
 * https://www.postgresql.org/support/versioning/
 */
export function postgresMajor(version: string): string {
  const [first = '', second] = version.split('.');
  return Number(first) >= 10 || second === undefined ? first : `${first}.${second}`;
}

/**
 * How RDS replicates blue to green for this plan. RDS for PostgreSQL replicates physically for
 * a minor-version target (or none) and logically for a major-version target; RDS for MySQL
 * always by binary log ("schema changes, such as renaming columns or renaming tables, break
 * binary log replication to the green deployment"), minor or major target alike.
 * Aurora by engine, whatever the target: Aurora PostgreSQL "Logical replication is required
 * for replication from the blue environment to the green environment", Aurora MySQL "Binary
 * logging is required for replication from the blue environment to the green environment"
 * (no physical mode is documented for Aurora).
 * A plan without `engine` is a PostgreSQL one (plans from before the runbook had engines).
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-replication-type.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-best-practices.html#blue-green-deployments-best-practices-mysql
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing
 */
export function replicationOf(
  plan: Pick<UpgradePlan, 'currentEngineVersion' | 'targetEngineVersion'> &
    Partial<Pick<UpgradePlan, 'engine'>>,
): Replication {
  const engine = plan.engine ?? 'postgres';
  if (engine === 'aurora-postgresql') return 'logical';
  if (engine === 'mysql' || engine === 'aurora-mysql') return 'binlog';
  return postgresMajor(plan.targetEngineVersion) === postgresMajor(plan.currentEngineVersion)
    ? 'physical'
    : 'logical';
}

/**
 * The engine, if RDS runs it as one DB instance (what the restore, verify-green and the
 * watchdog act on); throws for the Aurora engines, naming the engine received.
 */
export function instanceEngine(engine: DatabaseEngine): InstanceEngine {
  if (engine === 'postgres' || engine === 'mysql') return engine;
  throw new Error(
    `engine must be one RDS runs as a DB instance (postgres, mysql), got: ${JSON.stringify(engine)}`,
  );
}
