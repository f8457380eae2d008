import {
  FORMER_WRITER_CONNECT_TIMEOUT_MS,
  forgetDatabaseSecret,
  readDatabaseSecret,
  tlsWanted,
} from './database-secret';
import { MysqlConnection, MysqlError, type MysqlResult, type MysqlRows } from './mysql-client';

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

/**
 * A connection to `host` (the secret's when not given) with the secret's credentials, to the
 * database DB_NAME (else the secret's dbname) names. The consumers write tables, so they need
 * one; the writer check reads only server-wide state, so it connects to none when none is
 * named (an adopted platform's databases are its own).
 */
async function open(
  host?: string,
  databaseRequired = true,
  connectTimeoutMs = 5_000,
): Promise<MysqlConnection> {
  const secret = await readDatabaseSecret();
  const named = process.env.DB_NAME ?? secret.dbname;
  const database = named === '' ? undefined : named;
  if (database === undefined && databaseRequired) {
    throw new Error('the MySQL database is not named: set DB_NAME, or dbname in the secret');
  }
  const to = host ?? secret.host;
  const opened = await MysqlConnection.connect({
    host: to,
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
    tls: tlsWanted(to) ? { rejectUnauthorized: true } : false,
    connectTimeoutMs,
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
async function connected(databaseRequired = true): Promise<MysqlConnection> {
  const pending = connection;
  if (pending !== undefined) {
    const current = await pending.catch(() => undefined);
    const idle = Date.now() - lastUsed > IDLE_MS;
    if (current !== undefined && !current.closed && !idle) return current;
    // Another record of the batch may have replaced it meanwhile: use that one.
    if (connection !== pending) return connected(databaseRequired);
    void current?.close();
  }
  const fresh = open(undefined, databaseRequired);
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
  /** Runs one statement that returns rows, as text (the writer check's SELECTs). */
  async select(sql: string): Promise<MysqlRows> {
    const db = await connected(false);
    lastUsed = Date.now();
    return db.select(sql);
  },
  /** Runs one statement with no parameters and no rows (account management, DDL) as text. */
  async query(sql: string): Promise<MysqlResult> {
    const db = await connected();
    lastUsed = Date.now();
    return db.query(sql);
  },
};

/**
 * The consumer's database, for a function that reads rows (the writer check,
 * lambda/verify-writer-mysql/), once the credentials are read: an error reading them is thrown
 * here, one connecting at the first statement (as `pg`'s Pool does for verify-writer).
 */
export async function mysqlReader(): Promise<Pick<typeof mysqlDatabase, 'select'>> {
  await readDatabaseSecret();
  return mysqlDatabase;
}

/**
 * A new connection to a former writer's own endpoint with the same credentials, database, TLS
 * and session: not kept, the caller closes it. It must open within
 * FORMER_WRITER_CONNECT_TIMEOUT_MS.
 */
export function mysqlConnectionAt(host: string): Promise<MysqlConnection> {
  return open(host, false, FORMER_WRITER_CONNECT_TIMEOUT_MS);
}

/** Reads the credentials now, even if cached, so they stay cached for the calls that follow. */
export async function warmMysqlDatabase(): Promise<void> {
  await readDatabaseSecret(true);
}

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
