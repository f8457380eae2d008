// AWS API actions this file calls (for least-privilege IAM):
//   rds:DescribeDBInstances; for an Aurora plan rds:DescribeDBClusters
// The engine-neutral half of the writer check: what RDS says about the instance, what the
// database says about itself (read through a per-engine dialect), and the words of the result.
// The PostgreSQL dialect is in ./verify-writer.ts, the MySQL one in ../verify-writer-mysql/.
import { type DBInstance, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { describeCluster, isClusterEngine, writerOf } from '../shared/cluster';
import type { CheckResult, UpgradePlan } from '../shared/upgrade-plan';

export interface VerifyWriterEvent {
  plan: UpgradePlan;
  /**
   * The version the writer must run: `target` after the switchover (the default); `current`
   * before anything changes, so that a missing network route, endpoint, secret or KMS grant
   * is found while nothing has changed yet.
   */
  expect?: 'current' | 'target';
  /**
   * Also look in blue's database for the documented limitations of the replication RDS will
   * use (only before anything changes: a blocker found then costs nothing).
   */
  limitations?: boolean;
  /** With `current`: the writer is old blue, restored after a failed switchover. */
  restored?: boolean;
}

/** Which writer the check is about, for the words of its failures. */
type Context = 'new' | 'blue' | 'restored';

export type VerifyWriterResult = CheckResult & {
  /**
   * Not passed, and nothing found wrong with the writer: a check could not run (the database
   * could not be queried, or the connection reached the old instance). Not knowing is not a
   * failed writer: the runbook does not restore old blue for it.
   */
  inconclusive: boolean;
  /** The instance (Aurora: DB cluster) under the production name; null when RDS does not know it. */
  writer: {
    identifier: string;
    engineVersion: string;
    writable: boolean;
    /**
     * Reported, not required: green may not inherit blue's deletion protection, and the runbook
     * turns it on after the page is off. A missing flag is no reason to restore old blue.
     */
    deletionProtection: boolean;
  } | null;
};

/** What the database says about itself, whatever the engine. */
export interface WriterState {
  /** The server's version as it reports it ("17.2 (Debian …)", "8.4.5"). */
  version: string;
  /** Whether it is the primary and takes writes. */
  writable: boolean;
  /** The settings that say so, for the failure's words: "read_only=1, innodb_read_only=0". */
  settings: string;
}

/** The database side of the check: what differs between engines. `C` is a connection. */
export interface WriterDialect<C> {
  /** The name of the version the server reports, for the failure's words. */
  versionSetting: string;
  /** The parameter that makes the instance refuse writes, for the operator's advice. */
  readOnlyParameter: string;
  /** Reads the writer's state; throws when the database cannot be asked. */
  readWriter(db: C): Promise<WriterState>;
  /** Whether the version the server reports is `expected`, the plan's version. */
  runs(reported: string, expected: string): boolean;
  /** Blue/green limitations seen in blue's database, each a sentence; [] when none. */
  limitations(db: C, plan: UpgradePlan): Promise<string[]>;
}

export interface WriterDeps<C> {
  rds: RDSClient;
  /** The database behind the production endpoint (the stack's secret names its host). */
  db: () => Promise<C>;
  /** Drops the connection so the next attempt opens a new one. */
  resetDb: () => Promise<void>;
}

/**
 * After the switchover: is production (green, now carrying blue's name) the upgraded,
 * writable primary? Asks RDS and the database itself. Every check runs and every failure is
 * reported; it throws only for unexpected SDK errors, which the state machine retries.
 */
export async function checkWriter<C>(
  deps: WriterDeps<C>,
  dialect: WriterDialect<C>,
  event: VerifyWriterEvent,
): Promise<VerifyWriterResult> {
  const { plan } = event;
  const id = plan.sourceIdentifier;
  const target = event.expect === 'current' ? plan.currentEngineVersion : plan.targetEngineVersion;
  // What is wrong with the writer, and what could not be checked.
  const failures: string[] = [];
  const unchecked: string[] = [];

  const context: Context =
    event.expect !== 'current' ? 'new' : event.restored === true ? 'restored' : 'blue';
  // Aurora: the names, the version, the status and deletion protection are the DB cluster's.
  const cluster = isClusterEngine(plan.engine ?? 'postgres');
  // A switchover renames green to blue's identifier, so the name now means the new writer.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
  // RDS and the database are asked at once: with the maintenance page on, every round trip
  // the check saves is a moment less of it.
  const [instance, db] = await Promise.all([
    cluster ? describeWriterCluster(deps.rds, id) : describeInstance(deps.rds, id),
    database(deps, dialect, id),
  ]);
  const noun = cluster ? 'cluster' : 'instance';
  if (instance === undefined) {
    failures.push(
      {
        new:
          `DB ${noun} "${id}" was not found after the switchover. Open Blue/Green ` +
          `deployments in the RDS console to see which ${noun} now serves production before ` +
          'doing anything else.',
        blue: `DB ${noun} "${id}" was not found: check database.instanceIdentifier and the region.`,
        restored:
          `DB ${noun} "${id}" was not found after the restore: find the ${noun} that runs ` +
          `${target} (${id}-old1?) before doing anything else.`,
      }[context],
    );
  } else {
    failures.push(...instanceProblems(instance, id, target, context, noun));
  }

  if ('problem' in db) {
    unchecked.push(db.problem);
  } else {
    const problems = databaseProblems(dialect, db.state, id, target, context, cluster);
    // A pooled connection opened before the switchover can still reach the old instance;
    // drop it so the next attempt resolves the endpoint again.
    if (problems.found.length + problems.unchecked.length > 0) await deps.resetDb();
    failures.push(...problems.found);
    unchecked.push(...problems.unchecked);
  }

  if (event.limitations === true && 'state' in db) {
    try {
      failures.push(...(await dialect.limitations(await deps.db(), plan)));
    } catch (err) {
      await deps.resetDb();
      unchecked.push(
        `Could not check the database behind "${id}" for blue/green limitations ` +
          `(${err instanceof Error ? err.message : String(err)}); the next attempt reconnects.`,
      );
    }
  }

  return {
    passed: failures.length + unchecked.length === 0,
    inconclusive: failures.length === 0 && unchecked.length > 0,
    failures: [...failures, ...unchecked],
    writer:
      instance === undefined
        ? null
        : {
            identifier: instance.DBInstanceIdentifier ?? id,
            engineVersion: instance.EngineVersion ?? '',
            writable: 'state' in db && db.state.writable,
            deletionProtection: instance.DeletionProtection === true,
          },
  };
}

async function describeInstance(rds: RDSClient, id: string): Promise<DBInstance | undefined> {
  try {
    const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    return out.DBInstances?.[0];
  } catch (err) {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html#API_DescribeDBInstances_Errors
    if (
      err instanceof Error &&
      ['DBInstanceNotFoundFault', 'DBInstanceNotFound'].includes(err.name)
    ) {
      return undefined;
    }
    throw err;
  }
}

/** Aurora: the writer is the cluster, with a writer instance (`writer`) or none. */
type ClusterAsInstance = DBInstance & { writer?: string | undefined };

/**
 * Aurora: the cluster under the name, in the fields of a DB instance: its EngineVersion, Status
 * and DeletionProtection are the cluster's, ReplicationSourceIdentifier is set "if this DB
 * cluster is a read replica", and the writer is the member with IsClusterWriter.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html
 */
async function describeWriterCluster(
  rds: RDSClient,
  id: string,
): Promise<ClusterAsInstance | undefined> {
  const c = await describeCluster(rds, id);
  return (
    c && {
      DBInstanceIdentifier: c.DBClusterIdentifier,
      EngineVersion: c.EngineVersion,
      DBInstanceStatus: c.Status,
      ReadReplicaSourceDBInstanceIdentifier: c.ReplicationSourceIdentifier,
      DeletionProtection: c.DeletionProtection,
      writer: writerOf(c) ?? '',
    }
  );
}

function instanceProblems(
  db: ClusterAsInstance,
  id: string,
  target: string,
  context: Context,
  noun: string,
): string[] {
  const problems: string[] = [];
  if (db.EngineVersion !== target) {
    const runs = `RDS says "${id}" runs ${db.EngineVersion}, not`;
    problems.push(
      {
        new:
          `${runs} the target ${target}: the switchover has not moved production to green. ` +
          'Check the blue/green deployment in the RDS console before resuming writes.',
        blue:
          `${runs} ${target}, the version the stack says it runs (an automatic minor ` +
          'upgrade, or cdk.json out of date): set database.engineVersion to what runs, deploy, ' +
          'and start again (docs/after-upgrade.md).',
        restored:
          `${runs} ${target}, the version the upgrade started from: it is not the original ` +
          `database. Find out which ${noun} answers to the name before anything else is changed.`,
      }[context],
    );
  }
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
  // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/accessing-monitoring.html#Aurora.Status
  if (db.DBInstanceStatus !== 'available') {
    problems.push(
      `"${id}" is "${db.DBInstanceStatus}", not "available". Wait for it to become available ` +
        'and verify again.',
    );
  }
  // Before the switchover green is a replica of blue; after it, it must stand alone.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBInstance.html
  if (db.ReadReplicaSourceDBInstanceIdentifier !== undefined) {
    problems.push(
      `"${id}" is still a read replica of ${db.ReadReplicaSourceDBInstanceIdentifier}, so it ` +
        'cannot take writes. Check the blue/green deployment in the RDS console before resuming writes.',
    );
  }
  if (db.writer === '') problems.push(`DB cluster "${id}" has no writer instance.`);
  return problems;
}

async function database<C>(
  deps: WriterDeps<C>,
  dialect: WriterDialect<C>,
  id: string,
): Promise<{ state: WriterState } | { problem: string }> {
  // Reading the secret is outside the try: an SDK error there is unexpected and is thrown.
  const db = await deps.db();
  try {
    return { state: await dialect.readWriter(db) };
  } catch (err) {
    await deps.resetDb();
    const reason = err instanceof Error ? err.message : String(err);
    return {
      problem:
        `Could not query the database behind "${id}" (${reason}). Check that it accepts ` +
        'connections and that the database secret is current; the next attempt reconnects.',
    };
  }
}

/** "17.2" from "17.2" or "17.2 (Debian 17.2-1)"; "17" from a bare major. */
export function majorMinor(serverVersion: string): string | undefined {
  const m = /^(\d+)(?:\.(\d+))?/.exec(serverVersion);
  if (m === null) return undefined;
  return m[2] === undefined ? m[1] : `${m[1]}.${m[2]}`;
}

function databaseProblems<C>(
  dialect: WriterDialect<C>,
  state: WriterState,
  id: string,
  target: string,
  context: Context,
  cluster: boolean,
): { found: string[]; unchecked: string[] } {
  const found: string[] = [];
  const unchecked: string[] = [];
  const behind = `The database behind "${id}"`;
  if (!dialect.runs(state.version, target)) {
    // Whatever this instance says is not about the writer the check is for.
    unchecked.push(
      `${behind} reports ${dialect.versionSetting} ${state.version}, not ${target}: the connection ` +
        {
          new:
            'reached the old instance. Wait a minute for the endpoint to follow the switchover ' +
            'and verify again (the next attempt reconnects).',
          blue: `reached another instance than ${id}. Check the host in the database secret.`,
          // A renamed cluster's endpoints change; AWS does not say how soon the DNS name follows.
          // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Modifying.html#Aurora.Modifying.Settings
          restored:
            `reached another ${cluster ? 'cluster' : 'instance'}: the endpoint has not yet ` +
            `followed the last rename${cluster ? '' : ', which takes about 10 minutes'} (the ` +
            'next attempt reconnects).',
        }[context],
    );
    return { found, unchecked };
  }
  if (!state.writable) {
    const settings = `(${state.settings})`;
    const parameter = dialect.readOnlyParameter;
    found.push(
      {
        new:
          `${behind} refuses writes ${settings}. Keep the consumers paused and check the ` +
          'blue/green deployment in the RDS console.',
        blue:
          `${behind} refuses writes ${settings}: blue must take writes before an upgrade. Check ` +
          `${parameter} in its ${cluster ? 'DB cluster ' : ''}parameter group.`,
        restored:
          `${behind} refuses writes ${settings}. Check that ${id} uses its "-restore" ` +
          `${cluster ? 'DB cluster ' : ''}parameter group, in-sync, with ${parameter}=0, and ` +
          `${cluster ? 'its writer ' : ''}was rebooted since (docs/runbook.md 3.2).`,
      }[context],
    );
  }
  return { found, unchecked };
}
