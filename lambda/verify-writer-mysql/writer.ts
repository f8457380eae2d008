// The MySQL side of the writer check (../verify-writer/writer-check.ts): the writer's state
// and the blue/green limitations seen in blue's database. Calls no AWS API.
import { compareEngineVersions, ENGINE_SPECS } from '../shared/engines';
import type { MysqlConnection, MysqlRows } from '../shared/mysql-client';
import type { UpgradePlan } from '../shared/upgrade-plan';
import type { WriterDialect } from '../verify-writer/writer-check';
import { AURORA_MYSQL_WRITER_SQL, MYSQL_LIMITATION_SQL, MYSQL_WRITER_SQL } from './sql';

/** The one call the checks need; MysqlConnection fits. */
export type Selectable = Pick<MysqlConnection, 'select'>;

/** A row as { column: value }. */
function records({ columns, rows }: MysqlRows): Record<string, string | null>[] {
  return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i] ?? null])));
}

/**
 * The server's words without its `'user'@'host'`: the reason is logged, and the logs carry
 * no `@` (test/setup-log-scan.ts: an address is personal data, and a scan cannot tell them
 * apart). "Access denied for user 'admin' (host '10.0.1.5') to database 'platform'".
 */
export function withoutAt(err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  return new Error(message.replace(/'([^']*)'@'([^']*)'/g, "'$1' (host '$2')"));
}

/** Runs `select`, giving its failure in words without an `@`. */
export async function selectRows(db: Selectable, sql: string): Promise<MysqlRows> {
  try {
    return await db.select(sql);
  } catch (err) {
    throw withoutAt(err);
  }
}

/** A 0/1 system variable, as the server's text. */
function flag(name: string, value: string | null | undefined): boolean {
  if (value === '0') return false;
  if (value === '1') return true;
  throw new Error(`${name} must be 0 or 1, got: ${JSON.stringify(value)}`);
}

/**
 * Whether the version the server reports is the plan's, to the plan's precision: "8.4.5"
 * runs "8.4.5" (and "8.4"), "8.4.5-log" too, MariaDB's "10.11.6-MariaDB-0+deb12u1" runs
 * "10.11.6". To the patch, not only major.minor: after a minor upgrade (8.0.40 to 8.0.42)
 * old blue and the new writer share 8.0, and a connection still reaching old blue (read-only)
 * would be taken for a new writer that refuses writes, a failure that restores old blue,
 * rather than for the wrong instance, which waits and checks again.
 */
export function mysqlRuns(reported: string, expected: string): boolean {
  const numbers = /^\d+(?:\.\d+)*/.exec(reported)?.[0];
  if (numbers === undefined) return false;
  return numbers.split('.').slice(0, expected.split('.').length).join('.') === expected;
}

/** The writer's read-only flags, as the server reports them in MYSQL_WRITER_SQL's columns. */
function writableOf(row: Record<string, string | null>): { writable: boolean; settings: string } {
  // read_only refuses writes from ordinary users; innodb_read_only refuses them from all.
  const ro = flag('@@global.read_only', row.ro);
  const innodbRo = flag('@@global.innodb_read_only', row.innodb_ro);
  return {
    writable: !ro && !innodbRo,
    settings: `read_only=${row.ro}, innodb_read_only=${row.innodb_ro}`,
  };
}

function present(name: string, value: string | null | undefined): string {
  if (value === undefined || value === null || value === '') {
    throw new Error(`${name} must be a version, got: ${JSON.stringify(value)}`);
  }
  return value;
}

/** The MySQL side of the writer check. */
export const MYSQL_WRITER: WriterDialect<Selectable> = {
  versionSetting: 'version',
  // After a switchover old blue "only allows read operations until you set the read_only
  // parameter (for RDS for MySQL) ... to 0 and reboot the DB instance".
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
  readOnlyParameter: 'read_only',
  async readWriter(db) {
    const [row] = records(await selectRows(db, MYSQL_WRITER_SQL));
    if (row === undefined) throw new Error('the query returned no row');
    return { version: present('@@version', row.version), ...writableOf(row) };
  },
  runs: mysqlRuns,
  limitations: replicaLimitations,
};

/**
 * The version an Aurora MySQL server runs, as RDS spells it: the first two numbers of
 * @@version, ".mysql_aurora.", then @@aurora_version ("8.0.39" and "3.10.0" give
 * "8.0.mysql_aurora.3.10.0"). See AURORA_MYSQL_WRITER_SQL.
 */
export function auroraMysqlVersion(version: string, auroraVersion: string): string {
  const major = /^\d+\.\d+/.exec(version)?.[0];
  if (major === undefined)
    throw new Error(`@@version must be a version, got: ${JSON.stringify(version)}`);
  return `${major}.mysql_aurora.${auroraVersion}`;
}

/**
 * Whether an Aurora MySQL server runs `expected` (8.0.mysql_aurora.3.10.0): its MySQL major
 * version and its Aurora version both, number by number ("3.08.0" is "3.8.0"). By @@version
 * alone a connection still reaching old blue after a minor upgrade (3.10.0 to 3.10.1, both
 * MySQL 8.0.42) would be taken for a new writer that refuses writes, rather than for the wrong
 * server (mysqlRuns).
 */
export function auroraMysqlRuns(reported: string, expected: string): boolean {
  const { versionPattern } = ENGINE_SPECS['aurora-mysql'];
  if (!versionPattern.test(reported) || !versionPattern.test(expected)) return false;
  return compareEngineVersions('aurora-mysql', reported, expected) === 0;
}

/**
 * The MySQL side of the writer check on Aurora MySQL: the same flags, and the version by
 * @@aurora_version (AURORA_MYSQL_WRITER_SQL). Aurora MySQL's read_only is a DB cluster
 * parameter, which "doesn't apply for users who have the CONNECTION_ADMIN privilege. This
 * includes the Aurora master user"; innodb_read_only is Aurora's own (1 on a reader).
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Reference.ParameterGroups.html
 */
export const AURORA_MYSQL_WRITER: WriterDialect<Selectable> = {
  versionSetting: '@@version and @@aurora_version',
  readOnlyParameter: 'read_only',
  async readWriter(db) {
    const [row] = records(await selectRows(db, AURORA_MYSQL_WRITER_SQL));
    if (row === undefined) throw new Error('the query returned no row');
    const version = auroraMysqlVersion(
      present('@@version', row.version),
      present('@@aurora_version', row.aurora_version),
    );
    return { version, ...writableOf(row) };
  },
  runs: auroraMysqlRuns,
  limitations: replicaLimitations,
};

/** The MySQL dialect for the plan's engine: Aurora MySQL's, or RDS for MySQL's. */
export function mysqlWriterFor(
  engine: UpgradePlan['engine'] | undefined,
): WriterDialect<Selectable> {
  return engine === 'aurora-mysql' ? AURORA_MYSQL_WRITER : MYSQL_WRITER;
}

/**
 * "The blue DB instance can't be an external binlog replica": one failure per replication
 * channel SHOW REPLICA STATUS lists, naming its source and how to remove it. Other documented
 * MySQL limitations (a custom option group with a major upgrade, ...) are seen through the RDS
 * API, by preflight.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-mysql
 * The procedures that stop and remove replication from an external source: "Reconfigures an
 * RDS for MySQL DB instance to no longer be a read replica of an instance of MySQL running
 * external to Amazon RDS" (mysql.rds_reset_external_source on 8.4 and higher,
 * mysql.rds_reset_external_master on 8.0 and lower; a channel's own on a multi-source replica).
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mysql-stored-proc-replicating.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mysql-stored-proc-multi-source-replication.html
 */
export async function replicaLimitations(
  db: Selectable,
  plan: Pick<UpgradePlan, 'sourceIdentifier' | 'currentEngineVersion'>,
): Promise<string[]> {
  const channels = records(await selectRows(db, MYSQL_LIMITATION_SQL));
  // MySQL 8.0.22+ names the columns Source_* and Replica_*, MariaDB and older MySQL Master_*
  // and Slave_*.
  const column = (row: Record<string, string | null>, ...names: string[]) =>
    names.map((n) => row[n]).find((v) => v !== undefined && v !== null && v !== '') ?? '?';
  const word =
    compareEngineVersions('mysql', plan.currentEngineVersion, '8.4.0') >= 0 ? 'source' : 'master';
  return channels.map((row) => {
    const source = `${column(row, 'Source_Host', 'Master_Host')}:${column(row, 'Source_Port', 'Master_Port')}`;
    const channel = row.Channel_Name ?? row.Connection_name ?? '';
    const io = column(row, 'Replica_IO_Running', 'Slave_IO_Running');
    const sql = column(row, 'Replica_SQL_Running', 'Slave_SQL_Running');
    const fix =
      channel === ''
        ? `CALL mysql.rds_stop_replication and CALL mysql.rds_reset_external_${word}`
        : `CALL mysql.rds_stop_replication_for_channel('${channel}') and ` +
          `CALL mysql.rds_reset_external_source_for_channel('${channel}')`;
    return (
      `"${plan.sourceIdentifier}" is a binlog replica of ${source}` +
      (channel === '' ? '' : ` (channel ${channel})`) +
      ` (replica I/O thread running: ${io}, SQL thread running: ${sql}), and the blue DB ` +
      "instance of an RDS for MySQL blue/green deployment can't be an external binlog " +
      `replica: stop and remove the replication with ${fix} before the upgrade (set it up ` +
      'again after the switchover if still needed).'
    );
  });
}
