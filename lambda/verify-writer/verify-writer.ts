// AWS API actions this file calls (for least-privilege IAM):
//   rds:DescribeDBInstances
// (The handler's database connection also reads the database secret:
//  secretsmanager:GetSecretValue, in ../shared/database.ts.)
import { type DBInstance, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { type CheckResult, replicationOf, type UpgradePlan } from '../shared/upgrade-plan';
import { replicationLimitations } from './limitations';

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
  /** The instance under the production name; null when RDS does not know it. */
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

/** The one database call this needs; `pg`'s Pool fits. */
export interface Queryable {
  query(text: string): Promise<{ rows: unknown[] }>;
}

export interface VerifyWriterDeps {
  rds: RDSClient;
  /** The database behind the production endpoint (the stack's secret names its host). */
  db: () => Promise<Queryable>;
  /** Drops the connection so the next attempt opens a new one. */
  resetDb: () => Promise<void>;
}

export const WRITER_SQL = `SELECT current_setting('transaction_read_only') AS ro,
       pg_is_in_recovery() AS recovery,
       current_setting('server_version') AS version`;

interface WriterRow {
  ro: string;
  recovery: boolean;
  version: string;
}

/**
 * After the switchover: is production (green, now carrying blue's name) the upgraded,
 * writable primary? Asks RDS and the database itself. Every check runs and every failure is
 * reported; it throws only for unexpected SDK errors, which the state machine retries.
 */
export async function verifyWriter(
  deps: VerifyWriterDeps,
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
  // A switchover renames green to blue's identifier, so the name now means the new writer.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html
  // RDS and the database are asked at once: with the maintenance page on, every round trip
  // the check saves is a moment less of it.
  const [instance, db] = await Promise.all([describeInstance(deps.rds, id), database(deps, id)]);
  if (instance === undefined) {
    failures.push(
      {
        new:
          `DB instance "${id}" was not found after the switchover. Open Blue/Green ` +
          'deployments in the RDS console to see which instance now serves production before ' +
          'doing anything else.',
        blue: `DB instance "${id}" was not found: check database.instanceIdentifier and the region.`,
        restored:
          `DB instance "${id}" was not found after the restore: find the instance that runs ` +
          `${target} (${id}-old1?) before doing anything else.`,
      }[context],
    );
  } else {
    failures.push(...instanceProblems(instance, id, target, context));
  }

  if ('problem' in db) {
    unchecked.push(db.problem);
  } else {
    const problems = databaseProblems(db.row, id, target, context);
    // A pooled connection opened before the switchover can still reach the old instance;
    // drop it so the next attempt resolves the endpoint again.
    if (problems.found.length + problems.unchecked.length > 0) await deps.resetDb();
    failures.push(...problems.found);
    unchecked.push(...problems.unchecked);
  }

  if (event.limitations === true && 'row' in db) {
    try {
      failures.push(...(await replicationLimitations(await deps.db(), replicationOf(plan))));
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
            writable: 'row' in db && isWritable(db.row),
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

function instanceProblems(db: DBInstance, id: string, target: string, context: Context): string[] {
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
          'database. Find out which instance answers to the name before anything else is changed.',
      }[context],
    );
  }
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status
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
  return problems;
}

async function database(
  deps: VerifyWriterDeps,
  id: string,
): Promise<{ row: WriterRow } | { problem: string }> {
  // Reading the secret is outside the try: an SDK error there is unexpected and is thrown.
  const db = await deps.db();
  try {
    const { rows } = await db.query(WRITER_SQL);
    const row = rows[0] as WriterRow | undefined;
    if (row === undefined) throw new Error('the query returned no row');
    return { row };
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

function isWritable(row: WriterRow): boolean {
  return row.ro === 'off' && !row.recovery;
}

/** "17.2" from "17.2" or "17.2 (Debian 17.2-1)"; "17" from a bare major. */
export function majorMinor(serverVersion: string): string | undefined {
  const m = /^(\d+)(?:\.(\d+))?/.exec(serverVersion);
  if (m === null) return undefined;
  return m[2] === undefined ? m[1] : `${m[1]}.${m[2]}`;
}

function databaseProblems(
  row: WriterRow,
  id: string,
  target: string,
  context: Context,
): { found: string[]; unchecked: string[] } {
  const found: string[] = [];
  const unchecked: string[] = [];
  const behind = `The database behind "${id}"`;
  if (majorMinor(row.version) !== target) {
    // Whatever this instance says is not about the writer the check is for.
    unchecked.push(
      `${behind} reports server_version ${row.version}, not ${target}: the connection ` +
        {
          new:
            'reached the old instance. Wait a minute for the endpoint to follow the switchover ' +
            'and verify again (the next attempt reconnects).',
          blue: `reached another instance than ${id}. Check the host in the database secret.`,
          restored:
            'reached another instance: the endpoint has not yet followed the last rename, ' +
            'which takes about 10 minutes (the next attempt reconnects).',
        }[context],
    );
    return { found, unchecked };
  }
  if (!isWritable(row)) {
    const state = `(transaction_read_only=${row.ro}, pg_is_in_recovery=${row.recovery})`;
    found.push(
      {
        new:
          `${behind} refuses writes ${state}. Keep the consumers paused and check the ` +
          'blue/green deployment in the RDS console.',
        blue:
          `${behind} refuses writes ${state}: blue must take writes before an upgrade. Check ` +
          'default_transaction_read_only in its parameter group.',
        restored:
          `${behind} refuses writes ${state}. Check that ${id} uses its "-restore" parameter ` +
          'group, in-sync, with default_transaction_read_only=0, and was rebooted since ' +
          '(docs/runbook.md 3.2).',
      }[context],
    );
  }
  return { found, unchecked };
}
