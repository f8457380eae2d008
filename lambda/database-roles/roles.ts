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

function checkName(kind: string, name: string): void {
  if (!NAME.test(name)) {
    throw new Error(`${kind} must be a lower-case PostgreSQL name, got: ${JSON.stringify(name)}`);
  }
}

/**
 * The statements that make `grant.role` able to log in with its password and insert into its
 * table, and nothing else in the schema: run again, they set the same state (a changed
 * password, a table granted before and now not). No statement is logged: one holds a password.
 */
export function grantStatements(grant: ConsumerGrant, q: Quoting): string[] {
  checkName('role', grant.role);
  checkName('table', grant.table);
  if (grant.password.length < 16) {
    throw new Error(`the password of ${grant.role} must be at least 16 characters`);
  }
  const role = q.escapeIdentifier(grant.role);
  const table = q.escapeIdentifier(grant.table);
  return [
    // CREATE ROLE has no IF NOT EXISTS.
    // https://www.postgresql.org/docs/current/sql-createrole.html
    `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${q.escapeLiteral(grant.role)}) THEN CREATE ROLE ${role}; END IF; END $$`,
    `ALTER ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD ${q.escapeLiteral(grant.password)}`,
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
