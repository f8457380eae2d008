import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { requiredEnv } from './env';

/** The fields of the secret that CloudFormation generates and attaches to the instance. */
export interface DatabaseSecret {
  host: string;
  port: number;
  username: string;
  password: string;
  dbname?: string;
}

/** How long the credentials are reused before they are read again (a rotation shows by then). */
const SECRET_MAX_AGE_MS = 300_000;
let secrets: SecretsManagerClient | undefined;
let cached: { secret: DatabaseSecret; until: number } | undefined;

/**
 * The credentials DB_SECRET_ARN names, read with the SDK the runtime ships and kept for
 * SECRET_MAX_AGE_MS; `forceFetch` reads them now. The PostgreSQL and MySQL connections
 * (database.ts, mysql.ts) both use it. (Not Powertools' getSecret: it and what it pulls in
 * were 8 KB of bundles that must stay under 100 KB.)
 */
export async function readDatabaseSecret(forceFetch = false): Promise<DatabaseSecret> {
  if (!forceFetch && cached !== undefined && cached.until > Date.now()) return cached.secret;
  const secretArn = requiredEnv('DB_SECRET_ARN');
  secrets ??= new SecretsManagerClient({});
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
  if (out.SecretString === undefined || out.SecretString === '') {
    throw new Error(`database secret ${secretArn} has no value`);
  }
  let secret: DatabaseSecret;
  try {
    secret = JSON.parse(out.SecretString) as DatabaseSecret;
  } catch {
    throw new Error(`database secret ${secretArn} is not JSON (host, port, username, password)`);
  }
  // A missing host would connect to localhost without a word: name what is missing.
  for (const field of ['host', 'port', 'username', 'password'] as const) {
    const value = secret[field] as unknown;
    if ((typeof value !== 'string' && typeof value !== 'number') || value === '') {
      throw new Error(`database secret ${secretArn} has no ${field}`);
    }
  }
  cached = { secret, until: Date.now() + SECRET_MAX_AGE_MS };
  return secret;
}

/**
 * TLS, verified, unless DB_TLS=disable and the database is on this machine's loopback (the
 * tests' PGlite and MariaDB). Anywhere else, disabling it is refused.
 */
export function tlsWanted(host: string): boolean {
  if (process.env.DB_TLS !== 'disable') return true;
  if (host === '127.0.0.1' || host === '::1' || host === 'localhost') return false;
  throw new Error(
    `DB_TLS=disable is for a database on loopback only, got host: ${JSON.stringify(host)}`,
  );
}

/** Forgets the cached credentials: the next read fetches them. */
export function forgetDatabaseSecret(): void {
  cached = undefined;
}

/**
 * How long a connection to a former writer (old blue, the failed writer: an instance's own
 * endpoint) may take to open. Its sessions are ended while the maintenance page is on, and a
 * security group that does not admit the function drops the packets without an answer, so
 * only the client's timer ends the attempt. Inside the VPC, an instance that answers opens a
 * connection in milliseconds (a TCP and a TLS handshake in the same region); AWS states no
 * figure, so this one is ours. A slower answer counts as none, and the runbook then reboots
 * the former writer, which ends every session on it as surely.
 * https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RebootInstance.html
 */
export const FORMER_WRITER_CONNECT_TIMEOUT_MS = 1_000;
