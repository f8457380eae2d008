import { createHash } from 'node:crypto';
import type { ConsumerGrant } from './roles';

/**
 * roles.ts for MySQL (RDS for MySQL, Aurora MySQL; MariaDB in the tests): one user per buffer
 * consumer, e.g. 'quiet_upgrade_sends'@'%', that logs in with its password over TLS only and
 * may run its effect (lambda/buffer-consumer/effects-mysql.ts) on its own table, nothing else:
 *
 *   INSERT INTO t (c1, …, cn) VALUES (…) ON DUPLICATE KEY UPDATE idempotency_key = idempotency_key
 *
 * What that needs:
 * - MySQL 8.0/8.4 (as documented; no MySQL server here to check it): INSERT on the table (or
 *   on the columns inserted); UPDATE on the columns to be updated when a duplicate key turns it
 *   into an UPDATE, here idempotency_key; and SELECT on a column only read, on the right of
 *   `col = expr` (idempotency_key again). Column privileges exist for INSERT, SELECT, UPDATE.
 *   https://dev.mysql.com/doc/refman/8.0/en/insert.html
 *   https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html
 *   https://dev.mysql.com/doc/refman/8.4/en/grant.html#grant-column-privileges
 * - MariaDB 10.11 (checked on the test server): UPDATE on *every* inserted column, on a new
 *   row as on a duplicate, and SELECT (idempotency_key); UPDATE (idempotency_key) alone is
 *   refused ("UPDATE command denied … for column 'campaign_id'").
 * Granted, the narrowest that works on both: INSERT and UPDATE on exactly the columns the
 * effect inserts (EFFECT_COLUMNS, which a test compares with rows.ts), SELECT on
 * idempotency_key. So MySQL's user may UPDATE those columns of a row it finds by key, which
 * MySQL alone would not need; it still cannot read any other column, set recorded_at, delete,
 * touch another table or run DDL. (PostgreSQL's roles get INSERT and SELECT (idempotency_key):
 * roles.ts.)
 */
export const EFFECT_COLUMNS: Readonly<Record<string, readonly string[]>> = {
  email_sends: [
    'idempotency_key',
    'campaign_id',
    'recipient',
    'template_id',
    'scheduled_at',
    'occurred_at',
  ],
  opt_in_confirmations: ['idempotency_key', 'list_id', 'subscriber_id', 'occurred_at'],
  sign_ups: ['idempotency_key', 'list_id', 'email', 'name', 'fields', 'occurred_at'],
  unsubscribes: ['idempotency_key', 'subscriber_id', 'list_id', 'campaign_id', 'occurred_at'],
  tracking_events: [
    'idempotency_key',
    'kind',
    'campaign_id',
    'subscriber_id',
    'url',
    'user_agent',
    'occurred_at',
  ],
};

/**
 * Which server speaks: they differ in how a password is set without sending it in clear.
 * - 'mysql' (RDS for MySQL 8.0/8.4, Aurora MySQL): `IDENTIFIED WITH caching_sha2_password BY
 *   '<password>'`. MySQL rewrites it before logging: "Passwords in those statements are
 *   rewritten to not appear literally in statement text written to the general query log,
 *   slow query log, and binary log", and a statement it cannot parse is not written to the
 *   general query log at all (the page says so for 8.0); one that parses and then fails is
 *   not mentioned, and could not be checked here. caching_sha2_password is named because it is 8.4's default and
 *   mysql_native_password is "disabled by default in MySQL 8.4": a user made with it on an
 *   8.0 blue could not log in on the upgraded 8.4 green. Not tested here (no MySQL server:
 *   MariaDB has no caching_sha2_password); MySQL's pre-hashed `AS '$A$005$…'` form is not
 *   used because it could not be checked here either.
 *   https://dev.mysql.com/doc/refman/8.0/en/password-logging.html
 *   https://dev.mysql.com/doc/refman/8.4/en/native-pluggable-authentication.html
 *   https://dev.mysql.com/doc/refman/8.4/en/caching-sha2-pluggable-authentication.html
 * - 'mariadb': MariaDB 10.11 does not rewrite: on the test server `IDENTIFIED BY '<password>'`
 *   showed in clear in the general and slow logs, failed statements included, and in the
 *   binary log (a test shows the general log). So the
 *   statement carries the mysql_native_password hash, `IDENTIFIED WITH mysql_native_password
 *   AS '*<hex>'`, which the server stores as it is (a test logs in with the password).
 *   https://mariadb.com/kb/en/create-user/#identified-viawith-authentication_plugin
 */
export type MysqlFlavor = 'mysql' | 'mariadb';

/**
 * MySQL user names have at most 32 characters; tables here are lower-case names. Every user
 * these statements touch starts quiet_upgrade_: they revoke and drop, and must never reach
 * the master or a platform's own users.
 */
const USER = /^quiet_upgrade_[a-z0-9_]{1,18}$/;
const TABLE = /^[a-z_][a-z0-9_]{0,63}$/;
/** Printable ASCII: what Secrets Manager generates, and the same bytes in any character set. */
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

function checkUser(user: string): void {
  if (!USER.test(user)) {
    throw new Error(
      `user must be quiet_upgrade_ and a lower-case name, up to 32 characters, got: ${JSON.stringify(user)}`,
    );
  }
}

/**
 * A string literal. Backslash escapes it as MySQL reads it unless sql_mode has
 * NO_BACKSLASH_ESCAPES; the statements run in SESSION_SETUP's sql_mode (TRADITIONAL), which
 * does not. https://dev.mysql.com/doc/refman/8.0/en/string-literals.html
 */
export function mysqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** The account, from any host: the consumers run in Lambda, whose addresses change. */
export function mysqlAccount(user: string): string {
  checkUser(user);
  return `${mysqlString(user)}@'%'`;
}

/**
 * The mysql_native_password hash MySQL and MariaDB store: '*' and the upper-case hex of
 * SHA1(SHA1(password)).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods_native_password_authentication.html
 */
export function nativePasswordHash(password: string): string {
  const once = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(once).digest('hex').toUpperCase()}`;
}

/**
 * The statements that make `grant.role` a user that logs in with its password over TLS only
 * and may run its effect on its table, and nothing else. Run again, they set the same state:
 * the password is set anew, and every privilege is revoked before the one table's are
 * granted, so a table granted before and now not is revoked. They run as the RDS master user,
 * which has CREATE USER and the table privileges WITH GRANT OPTION on *.*, not SUPER
 * (REVOKE ALL PRIVILEGES, GRANT OPTION FROM needs CREATE USER).
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.MasterAccounts.html
 * https://dev.mysql.com/doc/refman/8.0/en/revoke.html
 *
 * REQUIRE SSL: the account may connect only over an encrypted connection (CREATE USER's TLS
 * options; a test shows MariaDB refusing a plain login).
 * https://dev.mysql.com/doc/refman/8.0/en/create-user.html#create-user-tls
 */
export function grantStatements(grant: ConsumerGrant, flavor: MysqlFlavor): string[] {
  const account = mysqlAccount(grant.role);
  if (!TABLE.test(grant.table)) {
    throw new Error(`table must be a lower-case MySQL name, got: ${JSON.stringify(grant.table)}`);
  }
  const columns = EFFECT_COLUMNS[grant.table];
  if (columns === undefined) {
    throw new Error(
      `table ${grant.table} is not a buffer's table (one of: ${Object.keys(EFFECT_COLUMNS).join(', ')})`,
    );
  }
  if (grant.password.length < 16) {
    throw new Error(`the password of ${grant.role} must be at least 16 characters`);
  }
  if (!PRINTABLE_ASCII.test(grant.password)) {
    throw new Error(`the password of ${grant.role} must be printable ASCII`);
  }
  const identified =
    flavor === 'mariadb'
      ? `IDENTIFIED WITH mysql_native_password AS ${mysqlString(nativePasswordHash(grant.password))}`
      : `IDENTIFIED WITH caching_sha2_password BY ${mysqlString(grant.password)}`;
  const list = columns.map((c) => `\`${c}\``).join(', ');
  return [
    `CREATE USER IF NOT EXISTS ${account} ${identified} REQUIRE SSL`,
    // An existing user: its password (and plugin) set anew, TLS required again.
    `ALTER USER ${account} ${identified} REQUIRE SSL`,
    `REVOKE ALL PRIVILEGES, GRANT OPTION FROM ${account}`,
    // Unqualified: the table in the connection's database (the secret's dbname).
    `GRANT INSERT (${list}), UPDATE (${list}), SELECT (\`idempotency_key\`) ON \`${grant.table}\` TO ${account}`,
  ];
}

/** Drops the user with its privileges; one that is gone already is skipped. */
export function dropStatements(user: string): string[] {
  return [`DROP USER IF EXISTS ${mysqlAccount(user)}`];
}

/**
 * The statements of a schema file, one by one (the client sends one statement a query):
 * `-- ` comments dropped (MySQL's form: two dashes and a space), then split at a `;` that
 * ends a line. Enough for schema-mysql.sql, whose strings hold neither.
 * https://dev.mysql.com/doc/refman/8.0/en/comments.html
 */
export function sqlStatements(script: string): string[] {
  return script
    .replace(/(^|\s)-- .*$/gm, '$1')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
