import type { DatabaseEngine } from './engines';

/**
 * The plan of one upgrade run: the deploy-time defaults, overridden by the execution input,
 * checked by `validate-input`. Every later state reads it from `$.plan`.
 */
export interface UpgradePlan {
  /** The blue (production) DB instance identifier, e.g. "platform-db". */
  sourceIdentifier: string;
  /** Its ARN. */
  sourceArn: string;
  /** The engine (lambda/shared/engines.ts); the runbook speaks postgres only so far. */
  engine: DatabaseEngine;
  /** The version the stack says blue runs; preflight checks the real one. */
  currentEngineVersion: string;
  /** The version green is created with. */
  targetEngineVersion: string;
  /** The parameter group green uses (target family, logical replication on). */
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
  /** Green is verified only if blue's oldest replication slot lags less than this (MB). */
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
 * The copies of a parameter group that the restore attaches: `<group>-restore` sets
 * default_transaction_read_only=0 (old blue), `<group>-fence` sets it to 1 (the failed
 * writer). Copies, because the group an instance uses is CloudFormation's: changing it
 * would drift the stack, and would change every instance that uses it.
 */
export const RESTORE_GROUP_SUFFIX = '-restore';
export const FENCE_GROUP_SUFFIX = '-fence';

/**
 * After a switchover RDS renames the old blue to `<name>-old1`; it "only allows read
 * operations until you set the default_transaction_read_only parameter to 0 and reboot".
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
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

/** How RDS replicates blue to green. */
export type Replication = 'physical' | 'logical';

/**
 * PostgreSQL's major version: "17" of "17.2" from version 10 on, "9.6" of "9.6.24" before.
 * https://www.postgresql.org/support/versioning/
 */
export function postgresMajor(version: string): string {
  const [first = '', second] = version.split('.');
  return Number(first) >= 10 || second === undefined ? first : `${first}.${second}`;
}

/**
 * RDS for PostgreSQL blue/green replicates physically for a minor-version target (or none) and
 * logically for a major-version target.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-replication-type.html
 */
export function replicationOf(
  plan: Pick<UpgradePlan, 'currentEngineVersion' | 'targetEngineVersion'>,
): Replication {
  return postgresMajor(plan.targetEngineVersion) === postgresMajor(plan.currentEngineVersion)
    ? 'physical'
    : 'logical';
}
