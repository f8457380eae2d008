import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { BufferName } from '../shared/contracts';

/**
 * One database role per buffer consumer, allowed only what its effect needs: to insert into
 * its own table (lambda/buffer-consumer/effects.ts). Not the master credentials: a consumer
 * that is compromised, or a bug in one, cannot read subscribers, write another buffer's
 * table, or change the schema.
 *
 * `INSERT … ON CONFLICT (idempotency_key) DO NOTHING` needs INSERT on the table and SELECT on
 * the conflict target's column: "all forms of ON CONFLICT also require SELECT privilege on
 * any column whose values are read. This includes any column mentioned in conflict_target".
 * https://www.postgresql.org/docs/current/sql-insert.html
 * https://www.postgresql.org/docs/current/ddl-priv.html
 */
export const BUFFER_TABLES: Record<BufferName, string> = {
  sends: 'email_sends',
  'opt-ins': 'opt_in_confirmations',
  'sign-ups': 'sign_ups',
  unsubscribes: 'unsubscribes',
  tracking: 'tracking_events',
};

/** The role a buffer's consumer logs in as, e.g. quiet_upgrade_sign_ups. */
export function consumerRole(buffer: BufferName): string {
  return `quiet_upgrade_${buffer.replace(/-/g, '_')}`;
}

export interface ConsumerGrant {
  role: string;
  table: string;
  password: string;
}

/** What the two statements below need to quote names and values as PostgreSQL reads them. */
export interface Quoting {
  escapeIdentifier(name: string): string;
  escapeLiteral(value: string): string;
}

export interface Queryable {
  query(text: string): Promise<unknown>;
}

const NAME = /^[a-z_][a-z0-9_]{0,62}$/;
/** Every role these statements touch starts quiet_upgrade_: they revoke and drop. */
const ROLE = /^quiet_upgrade_[a-z0-9_]{1,49}$/;

function checkName(kind: string, name: string): void {
  if (!NAME.test(name)) {
    throw new Error(`${kind} must be a lower-case PostgreSQL name, got: ${JSON.stringify(name)}`);
  }
  if (kind === 'role' && !ROLE.test(name)) {
    throw new Error(
      `role must start quiet_upgrade_: these statements revoke and drop, got: ${JSON.stringify(name)}`,
    );
  }
}

/** Printable ASCII: what Secrets Manager generates, and what SASLprep leaves as it is. */
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/**
 * The SCRAM-SHA-256 verifier PostgreSQL would store for `password`, so the statement that
 * sets it never holds the password itself (PostgreSQL logs a failing statement's text, and
 * RDS ships that log to CloudWatch). PostgreSQL stores a verifier given to ALTER ROLE … PASSWORD
 * as it is: "If the presented password string is already in MD5-encrypted or SCRAM-encrypted
 * format, then it is stored as-is". The format is `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`,
 * the keys as RFC 5802 §3 defines them; PostgreSQL's default is 4096 iterations
 * (scram_iterations). SASLprep (RFC 4013) leaves printable ASCII unchanged, so the password
 * must be printable ASCII (a test compares with the verifier PostgreSQL itself computes).
 * https://www.postgresql.org/docs/current/sql-createrole.html
 * https://www.postgresql.org/docs/current/auth-password.html
 * https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-SCRAM-ITERATIONS
 * https://www.rfc-editor.org/rfc/rfc5802#section-3
 */
export function scramVerifier(
  password: string,
  salt: Uint8Array = randomBytes(16),
  iterations = 4096,
): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const hmac = (key: Buffer, text: string) => createHmac('sha256', key).update(text).digest();
  const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest('base64');
  const serverKey = hmac(salted, 'Server Key').toString('base64');
  return `SCRAM-SHA-256$${iterations}:${Buffer.from(salt).toString('base64')}$${storedKey}:${serverKey}`;
}

/**
 * The statements that make `grant.role` able to log in with its password and insert into its
 * table, and nothing else in the schema: run again, they set the same state (a changed
 * password, a table granted before and now not). They run as the RDS master user, which is not
 * a superuser ("CREATE ROLE postgres WITH LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE
 * NOREPLICATION", and a member of rds_superuser), so they change no
 * attribute only a superuser may change (SUPERUSER, REPLICATION, BYPASSRLS: a new role has none
 * of them, and a role of this name that has one is refused). They hold the password's SCRAM
 * verifier, never the password.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html
 * https://www.postgresql.org/docs/current/sql-alterrole.html
 */
export function grantStatements(grant: ConsumerGrant, q: Quoting): string[] {
  checkName('role', grant.role);
  checkName('table', grant.table);
  if (grant.password.length < 16) {
    throw new Error(`the password of ${grant.role} must be at least 16 characters`);
  }
  if (!PRINTABLE_ASCII.test(grant.password)) {
    throw new Error(`the password of ${grant.role} must be printable ASCII`);
  }
  const role = q.escapeIdentifier(grant.role);
  const table = q.escapeIdentifier(grant.table);
  const name = q.escapeLiteral(grant.role);
  return [
    // CREATE ROLE has no IF NOT EXISTS.
    // https://www.postgresql.org/docs/current/sql-createrole.html
    `DO $$ BEGIN ` +
      `IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${name} AND (rolsuper OR rolreplication OR rolbypassrls)) THEN ` +
      `RAISE EXCEPTION 'role % exists with SUPERUSER, REPLICATION or BYPASSRLS: not a consumer role; drop it or rename it', ${name}; END IF; ` +
      `IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${name}) THEN CREATE ROLE ${role}; END IF; END $$`,
    `ALTER ROLE ${role} WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD ${q.escapeLiteral(scramVerifier(grant.password))}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${role}`,
    `GRANT USAGE ON SCHEMA public TO ${role}`,
    `GRANT INSERT ON TABLE ${table} TO ${role}`,
    `GRANT SELECT (idempotency_key) ON TABLE ${table} TO ${role}`,
  ];
}

/** Each role loses what it was granted, then is dropped; one that is gone already is skipped. */
export function dropStatements(role: string, q: Quoting): string[] {
  checkName('role', role);
  const r = q.escapeIdentifier(role);
  return [
    `DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${q.escapeLiteral(role)}) THEN ` +
      `REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${r}; REVOKE USAGE ON SCHEMA public FROM ${r}; ` +
      `DROP ROLE ${r}; END IF; END $$`,
  ];
}

/** Runs the statements one by one, in order; the first that fails stops the rest. */
export async function run(db: Queryable, statements: string[]): Promise<void> {
  for (const text of statements) await db.query(text);
}
