import type { IamRequest, Statement } from '../iam';

/**
 * An error as an AWS API returns it: `name` is the error code the SDK for JavaScript v3 puts
 * in `err.name` (DBInstanceNotFoundFault, ResourceInUseException, ...).
 */
export class AwsError extends Error {
  constructor(
    code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = code;
  }
}

/** The value, or the API's not-found error when there is none. */
export function found<T>(value: T | undefined, code: string, message: string, status = 404): T {
  if (value === undefined) throw new AwsError(code, message, status);
  return value;
}

/** Who makes a call: a function's or a state machine's role. */
export interface Principal {
  /** The function or state machine, as people read it. */
  name: string;
  roleArn: string;
  statements: Statement[];
}

/** One API operation of the model: what it must be authorized for, and what it does. */
export interface Operation {
  iam(input: Record<string, unknown>): IamRequest[];
  run(input: Record<string, unknown>): unknown;
}

export type Service = Record<string, Operation>;

/**
 * How long things take, in seconds. Every figure AWS does not document is an assumption
 * and says so; the bench prints them.
 */
export interface Latencies {
  /** One AWS API round trip, from a function or a Step Functions SDK integration. Assumed. */
  apiCall: number;
  /** Invoking a warm function, before its code runs. Assumed: one API round trip. */
  invokeOverhead: number;
  /**
   * A cold start: Lambda downloads the code, starts the runtime and runs the module's top
   * level before the first invocation of a new execution environment, and the time "depends
   * on the size of the function" (the deployment package). The model charges
   * `coldStartBase + coldStartPerMb x minified MB` to each new environment. The figures are a
   * linear fit to a published measurement (nodejs20.x, 256 MB, x86_64, 100 cold starts per
   * size, 20 Nov 2023): average init 242 ms for a 1 KB package, 297 ms at 1 MB, 474 ms at
   * 8 MB, 703 ms at 16 MB, 1,354 ms at 32 MB. Not AWS's figures, and not measured here.
   * https://repost.aws/knowledge-center/lambda-cold-start
   * https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-ib
   * https://gist.github.com/adriantanasa/06a9cbc36744ef0bf946255e9e75efbe
   */
  coldStartBase: number;
  coldStartPerMb: number;
  /** One SQL statement over an open connection. Assumed: ~25 ms for an idempotent insert. */
  sqlQuery: number;
  /**
   * CreateBlueGreenDeployment until AVAILABLE. Assumed. AWS gives no figure; a small
   * instance takes minutes to tens of minutes. The default run takes 9 minutes, inside the
   * first 10-minute poll: the steady traffic meanwhile changes none of what the rehearsal
   * measures (the page, the pause, the drain) and only costs wall time.
   */
  greenBuild: number;
  /**
   * SwitchoverBlueGreenDeployment until SWITCHOVER_COMPLETED. AWS: "typically takes under a
   * minute". https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-overview.html
   */
  switchover: number;
  /** DeleteBlueGreenDeployment until the deployment is gone. Assumed. */
  deleteDeployment: number;
  /** A mapping's Disabling until Disabled. Assumed: AWS gives no figure. */
  disableMapping: number;
  /** A mapping's Enabling until Enabled. Assumed: AWS gives no figure. */
  enableMapping: number;
  /**
   * A rename (ModifyDBInstance NewDBInstanceIdentifier) until available: "The new DNS name for
   * the renamed DB instance becomes effective in about 10 minutes. The renamed DB instance is
   * not available until the new name becomes effective."
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html
   */
  renameInstance: number;
  /** RebootDBInstance until available. Assumed. */
  reboot: number;
  /** An execution's status-change event reaching EventBridge targets. Assumed. */
  eventDelivery: number;
  /** An operator answering an approval request. Assumed. */
  operatorResponse: number;
}

export const DEFAULT_LATENCIES: Latencies = {
  apiCall: 0.2,
  invokeOverhead: 0.2,
  coldStartBase: 0.24,
  coldStartPerMb: 0.035,
  sqlQuery: 0.025,
  greenBuild: 540,
  switchover: 30,
  deleteDeployment: 120,
  disableMapping: 3,
  enableMapping: 3,
  renameInstance: 600,
  reboot: 60,
  eventDelivery: 1,
  operatorResponse: 60,
};

/** Faults and conditions of the AWS account; the functions meet them as they are. */
export interface Scenario {
  latencies?: Partial<Latencies>;
  /** Green never becomes AVAILABLE. */
  greenStuck?: boolean;
  /** The functions have no network route to old blue (-old1) or the failed writer (-failed1). */
  formerWritersUnreachable?: boolean;
  /** After a switchover the new writer is `modifying` for this long (it still takes writes). */
  newWriterModifyingSeconds?: number;
  /**
   * Rows the limitation query finds in the source's database ({kind, name, db}, as
   * lambda/verify-writer/limitations.ts reads them).
   */
  blueFindings?: { kind: string; name: string; db: string }[];
  /**
   * MySQL: blue replicates from this host outside RDS (SHOW REPLICA STATUS shows it), and
   * "the blue DB instance can't be an external binlog replica".
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-mysql
   */
  externalReplicaSource?: string;
  /**
   * After a rename, clients that cached the old name's address still reach the renamed
   * instance through the old name for this long. AWS does not say how long caches keep it.
   */
  renameDnsCacheSeconds?: number;
  /**
   * Green's storage is still being loaded from its snapshot for this long after green is
   * available (StorageOperationStatus Initializing).
   */
  greenStorageInitSeconds?: number;
  /** Green is `backing-up` for this long after the deployment becomes AVAILABLE. */
  greenBackingUpSeconds?: number;
  /** Green becomes INVALID_CONFIGURATION instead of AVAILABLE. */
  greenInvalid?: boolean;
  /**
   * Errors RDS answers the create calls with, in order: the first call still creates the
   * deployment (its answer is lost); the later ones change nothing.
   */
  createErrors?: string[];
  /** The switchover never finishes: neither completed nor failed. */
  switchoverHangs?: boolean;
  /** The switchover fails (RDS rolls it back). */
  switchoverFails?: boolean;
  /**
   * RDS takes the first switchover call but its answer is lost: the caller gets this error
   * (a 5xx) while the switchover runs.
   */
  switchoverAnswerLost?: string;
  /** Green's parameter group leaves it read-only: the new writer refuses writes. */
  badWriter?: boolean;
  /** Someone deletes the blue/green deployment this long after it switched over. */
  deploymentDeletedAfterSeconds?: number;
  /** The quiet gate's traffic alarm was deleted (DescribeAlarms finds no such alarm). */
  trafficAlarmMissing?: boolean;
  /** Someone removes the blue/green deployment's tags this long after it switched over. */
  deploymentUntaggedAfterSeconds?: number;
  /** The writer check has no network route to the database (its connections time out). */
  writerCheckUnreachable?: boolean;
  /** The new writer takes writes, but the writer check cannot query it. */
  writerCheckFails?: boolean;
  /** The first N connections to the endpoint after a switchover still reach old blue. */
  staleDnsConnects?: number;
  /** The operator rejects the approval request. */
  rejectApproval?: boolean;
  noBackups?: boolean;
  managedPassword?: boolean;
  parameterGroupPending?: boolean;
  /** An old blue from an earlier upgrade is still there, as `<source>-old1`. */
  leftoverOldBlue?: boolean;
  /** Another blue/green deployment already exists for the source. */
  existingDeployment?: boolean;
  /** Another upgrade execution is already running. */
  otherExecutionRunning?: boolean;
  /** Blue's OldestReplicationSlotLag while green replicates, in MB. Default 1. */
  replicationLagMb?: number;
  /** Green's ReplicaLag while it replicates (physical replication), in seconds. Default 1. */
  replicaLagSeconds?: number;
  /** Messages that break their contract, sent at the start: they must end in the DLQ. */
  poison?: number;
}

/** What happened, when: the invariants read this, not what the run says about itself. */
export type WorldEvent = { t: number } & (
  | { kind: 'task'; machine: string; execution: string; state: string }
  | { kind: 'routing'; page: boolean; captureDown: string[] }
  | { kind: 'switchover-start'; deployment: string }
  | { kind: 'switchover-end'; deployment: string; completed: boolean }
  | { kind: 'batch-start'; batch: number; mapping: string }
  | { kind: 'batch-end'; batch: number; mapping: string }
  | { kind: 'mapping-state'; uuid: string; state: string }
  | { kind: 'update-mapping'; uuid: string; enabled: boolean }
  | { kind: 'function-result'; function: string; result: unknown }
  /** A new execution environment of this function started (its init took `seconds`). */
  | { kind: 'cold-start'; function: string; seconds: number }
  | { kind: 'writer'; resourceId: string | null }
  | { kind: 'sessions-ended'; instance: string; count: number }
  /** Green deleted with its deployment; `busy` says why it was not ready yet, if it was only busy. */
  | { kind: 'green-deleted'; busy: string | null }
  | {
      kind: 'access-denied';
      principal: string;
      action: string;
      resource: string;
      /**
       * Denied on a resource that is gone, only because a condition reads its tags: allowed
       * were the tags there (assumption tag-condition-on-missing-resource).
       */
      missingResourceTags?: boolean;
    }
  | { kind: 'execution'; arn: string; status: string }
  | { kind: 'notification'; subject: string }
);

/** The resource a list call without an identifier is authorized on (see assumptions.ts). */
export function listResource(assumption: string, typeWildcard: string): string {
  return assumption === 'type-wildcard' ? typeWildcard : '*';
}

/** The init a new execution environment of a bundle this size pays (Latencies.coldStartBase). */
export function coldStartSeconds(bytes: number, latency: Latencies): number {
  return latency.coldStartBase + (latency.coldStartPerMb * bytes) / 1_000_000;
}

/** What every service model shares: time, settings, and the timeline. */
export interface ModelContext {
  now(): number;
  /** Runs `fn` this many virtual seconds from now. */
  after(seconds: number, fn: () => void): void;
  sleep(seconds: number): Promise<void>;
  draw(): number;
  latency: Latencies;
  scenario: Scenario;
  assumption(name: string): string;
  emit(event: UntimedEvent): void;
}

/** A timeline event before the model stamps it with the time. */
export type UntimedEvent = WorldEvent extends unknown ? DistributiveOmit<WorldEvent, 't'> : never;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Wakes whoever waits for something to happen (a message, a state change). */
export class Signal {
  private waiters: (() => void)[] = [];

  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves at the next notify, or after `seconds` if given. */
  wait(seconds?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const wake = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.waiters.push(wake);
      if (seconds !== undefined) {
        timer = setTimeout(
          () => {
            this.waiters = this.waiters.filter((w) => w !== wake);
            resolve();
          },
          Math.max(0, seconds) * 1000,
        );
      }
    });
  }
}
