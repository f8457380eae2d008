// The statements the MySQL writer check runs, in one place, so that the rehearsal's database
// model (rehearsal/) recognises them by identity, as it does the PostgreSQL ones.
// CONTRACT: the names below stay; every statement the function runs is exported from here
// (and SESSION_SETUP, from ../shared/mysql.ts, which every connection starts with).

/**
 * Is this server the writable primary, and which version does it run? One row: ro and
 * innodb_ro "0" or "1", version as the server reports it ("8.4.5"; MariaDB
 * "10.11.6-MariaDB-0+deb12u1"). After a switchover RDS leaves old blue read-only through
 * read_only: it "only allows read operations until you set the read_only parameter (for
 * RDS for MySQL) ... to 0 and reboot the DB instance".
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 * https://dev.mysql.com/doc/refman/8.4/en/server-system-variables.html#sysvar_read_only
 * https://dev.mysql.com/doc/refman/8.4/en/innodb-parameters.html#sysvar_innodb_read_only
 */
export const MYSQL_WRITER_SQL =
  'SELECT @@global.read_only AS ro, @@global.innodb_read_only AS innodb_ro, @@version AS version';

/**
 * MYSQL_WRITER_SQL for Aurora MySQL, with Aurora's own version: @@version is the MySQL version
 * Aurora is compatible with ("Aurora MySQL 3.10 versions are compatible with MySQL 8.0.42"),
 * which two Aurora versions can share, while RDS spells the version
 * "mysql-major-version.mysql_aurora.aurora-mysql-version" (8.0.mysql_aurora.3.10.0). "You can
 * get this version number for any DB instance in your Aurora MySQL cluster by querying the
 * AURORA_VERSION system variable": `select @@aurora_version;` (3.10.0). Only Aurora has it.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Updates.Versions.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraMySQLReleaseNotes/AuroraMySQL.Updates.3100.html
 */
export const AURORA_MYSQL_WRITER_SQL =
  'SELECT @@global.read_only AS ro, @@global.innodb_read_only AS innodb_ro, @@version AS version, @@aurora_version AS aurora_version';

/**
 * The client sessions on a former writer, other than this one: rows of { id }. Left alone:
 * RDS's own sessions (rdsadmin), the server's threads (system user, event_scheduler, Daemon)
 * and replicas reading the binlog (Binlog Dump, as RDS's read replicas do). The master user
 * sees every session through its PROCESS privilege.
 * https://dev.mysql.com/doc/refman/8.4/en/information-schema-processlist-table.html
 * https://dev.mysql.com/doc/refman/8.4/en/thread-commands.html
 */
export const MYSQL_CLIENT_SESSIONS_SQL = `SELECT id FROM information_schema.processlist
 WHERE id <> CONNECTION_ID()
   AND user NOT IN ('rdsadmin', 'system user', 'event_scheduler')
   AND command NOT IN ('Daemon', 'Binlog Dump', 'Binlog Dump GTID')`;

/**
 * Ends one session, by the RDS procedure: the master user has no KILL on others' sessions.
 * "To end a connection, use the mysql.rds_kill procedure and pass in the thread ID of that
 * connection."
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mysql_rds_kill.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.MySQL.CommonDBATasks.End.html
 */
export function mysqlKillSql(id: number): string {
  if (!Number.isSafeInteger(id) || id <= 0) {
    throw new Error(`session id must be a positive integer, got: ${id}`);
  }
  return `CALL mysql.rds_kill(${id})`;
}

/**
 * Blue/green limitations visible in blue's database before anything changes: "The blue DB
 * instance can't be an external binlog replica." A replica has a row per replication
 * channel here (MySQL 8.0.22+, MariaDB 10.5.1+), none otherwise.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-mysql
 * https://dev.mysql.com/doc/refman/8.4/en/show-replica-status.html
 */
export const MYSQL_LIMITATION_SQL = 'SHOW REPLICA STATUS';
