import { forgetDatabaseSecret, readDatabaseSecret, tlsWanted } from './database-secret';
import { MysqlConnection, MysqlError, type MysqlResult } from './mysql-client';

/**
 * database.ts for MySQL (RDS for MySQL, Aurora MySQL): the consumer's one connection, opened
 * with the credentials in the database secret DB_SECRET_ARN names, kept across invocations,
 * and opened again when it was dropped (as at a switchover) or idle for a minute.
 */

/** A connection idle this long is not trusted (the environment may have been frozen meanwhile). */
const IDLE_MS = 60_000;

let connection: Promise<MysqlConnection> | undefined;
let lastUsed = 0;

/**
 * The session every connection starts with, whatever the parameter group says:
 * - sql_mode TRADITIONAL, strict mode: "give an error instead of a warning" for an invalid or
 *   missing value, rather than store an adjusted one. RDS's default parameter groups keep
 *   MySQL's default sql_mode, which has STRICT_TRANS_TABLES, but a platform's own group may
 *   not; the consumers must not depend on it.
 *   https://dev.mysql.com/doc/refman/8.0/en/sql-mode.html#sqlmode_traditional
 *   https://dev.mysql.com/doc/refman/8.0/en/sql-mode.html#sql-mode-strict
 * - time_zone UTC: the DATETIME columns hold UTC (schema-mysql.sql), their defaults too.
 *   https://dev.mysql.com/doc/refman/8.0/en/time-zone-support.html
 */
export const SESSION_SETUP = "SET time_zone = '+00:00', sql_mode = 'TRADITIONAL'";

/** The server's "access denied" error (ER_ACCESS_DENIED_ERROR): the password was refused. */
const ACCESS_DENIED = 1045;

async function open(): Promise<MysqlConnection> {
  const secret = await readDatabaseSecret();
  const database = process.env.DB_NAME ?? secret.dbname;
  if (database === undefined || database === '') {
    throw new Error('the MySQL database is not named: set DB_NAME, or dbname in the secret');
  }
  const opened = await MysqlConnection.connect({
    host: secret.host,
    port: Number(secret.port),
    user: secret.username,
    password: secret.password,
    database,
    // TLS, verified against the RDS certificate authorities and the endpoint's name. The
    // Lambda Node.js runtime carries every Amazon CA in /var/runtime/ca-cert.pem;
    // NODE_EXTRA_CA_CERTS (set by NodeFunction for functions that reach the database) adds
    // them to Node's own list, which `tls.connect` verifies against by default.
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/mysql-ssl-connections.html
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Security.html
    // https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html
    tls: tlsWanted(secret.host) ? { rejectUnauthorized: true } : false,
    connectTimeoutMs: 5_000,
  });
  try {
    await opened.query(SESSION_SETUP);
  } catch (err) {
    await opened.close();
    throw err;
  }
  return opened;
}

/** The open connection, or a new one when there is none, it was dropped, or it sat idle. */
async function connected(): Promise<MysqlConnection> {
  const pending = connection;
  if (pending !== undefined) {
    const current = await pending.catch(() => undefined);
    const idle = Date.now() - lastUsed > IDLE_MS;
    if (current !== undefined && !current.closed && !idle) return current;
    // Another record of the batch may have replaced it meanwhile: use that one.
    if (connection !== pending) return connected();
    void current?.close();
  }
  const fresh = open();
  connection = fresh;
  lastUsed = Date.now();
  fresh.catch(() => {
    if (connection === fresh) connection = undefined;
  });
  return fresh;
}

/** The consumer's database: one connection, statements one at a time. */
export const mysqlDatabase = {
  async execute(sql: string, values: readonly (string | null)[]): Promise<MysqlResult> {
    const db = await connected();
    lastUsed = Date.now();
    return db.execute(sql, values);
  },
  /** Runs one statement with no parameters and no rows (account management, DDL) as text. */
  async query(sql: string): Promise<MysqlResult> {
    const db = await connected();
    lastUsed = Date.now();
    return db.query(sql);
  },
};

/** Whether an error says the credentials were refused (they may have been rotated). */
export function isMysqlAuthFailure(err: unknown): boolean {
  return err instanceof MysqlError && err.errno === ACCESS_DENIED;
}

/** Drops the connection and the cached credentials: the next statement reads them anew. */
export async function resetMysqlDatabase(): Promise<void> {
  const old = connection;
  connection = undefined;
  forgetDatabaseSecret();
  const current = await old?.catch(() => undefined);
  await current?.close();
}
