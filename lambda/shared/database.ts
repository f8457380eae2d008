import {
  type DatabaseSecret,
  FORMER_WRITER_CONNECT_TIMEOUT_MS,
  forgetDatabaseSecret,
  readDatabaseSecret,
  tlsWanted,
} from './database-secret';
import { Pool } from 'pg';
import { logger } from './logger';

let pool: Pool | undefined;

function newPool(secret: DatabaseSecret, host: string, connectTimeoutMs = 5_000): Pool {
  const p = new Pool({
    host,
    port: Number(secret.port),
    user: secret.username,
    password: secret.password,
    database: process.env.DB_NAME ?? secret.dbname ?? 'postgres',
    max: 1,
    connectionTimeoutMillis: connectTimeoutMs,
    idleTimeoutMillis: 60_000,
    // RDS for PostgreSQL 15+ requires TLS (rds.force_ssl=1); verify the server against the
    // RDS certificate authorities. The Lambda Node.js runtime carries every Amazon CA in
    // /var/runtime/ca-cert.pem; NODE_EXTRA_CA_CERTS (set by NodeFunction for functions that
    // reach the database) adds them to Node's own list, so no bundle carries them.
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html
    // https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html
    ssl: tlsWanted(host) ? { rejectUnauthorized: true } : false,
  });
  // A connection dropped while idle (as at a switchover) must not crash the function; the
  // next query opens a new one, to whichever instance the endpoint names then.
  p.on('error', (err) => logger.warn('idle database connection closed', { error: err.message }));
  return p;
}

/**
 * A pool of one connection, kept at module scope across invocations. One is enough: an
 * invocation handles one batch, and the event source mapping's MaximumConcurrency bounds the
 * number of invocations, and so of connections, the drain can open.
 */
export async function database(): Promise<Pool> {
  if (pool !== undefined) return pool;
  const secret = await readDatabaseSecret();
  pool = newPool(secret, secret.host);
  return pool;
}

/**
 * A pool of one connection to a former writer's own endpoint with the same credentials, not
 * kept: the caller ends it. It must open within FORMER_WRITER_CONNECT_TIMEOUT_MS.
 */
export async function databaseAt(host: string): Promise<Pool> {
  return newPool(await readDatabaseSecret(), host, FORMER_WRITER_CONNECT_TIMEOUT_MS);
}

/**
 * Reads the credentials now, even if cached, so they stay cached (maxAge above) for the calls
 * that follow soon, and makes the pool (it connects at its first query).
 */
export async function warmDatabase(): Promise<void> {
  await readDatabaseSecret(true);
  await database();
}

/** Drops the pool so the next call reconnects with freshly read credentials. */
export async function resetDatabase(): Promise<void> {
  const old = pool;
  pool = undefined;
  forgetDatabaseSecret();
  await old?.end().catch(() => undefined);
}
