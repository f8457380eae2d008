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
  cached = { secret, until: Date.now() + SECRET_MAX_AGE_MS };
  return secret;
}

/** Forgets the cached credentials: the next read fetches them. */
export function forgetDatabaseSecret(): void {
  cached = undefined;
}
