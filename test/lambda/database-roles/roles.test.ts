import { escapeIdentifier, escapeLiteral } from 'pg';
import { applyEffect } from '../../../lambda/buffer-consumer/effects';
import {
  BUFFER_TABLES,
  consumerRole,
  dropStatements,
  grantStatements,
  run,
  scramVerifier,
} from '../../../lambda/database-roles/roles';
import { BUFFER_NAMES, type BufferName } from '../../../lambda/shared/contracts';
import { messageFor } from '../../helpers/messages';
import {
  RDS_MASTER,
  makeRdsLikeMaster,
  startPostgres,
  type TestPostgres,
} from '../../helpers/postgres';

const q = { escapeIdentifier, escapeLiteral };
let pg: TestPostgres;
const password = 'rehearsal-password-0123456789';
/** The statements' runner, on PGlite as the RDS master user is: no superuser. */
const admin = {
  query: (text: string) => as(RDS_MASTER, () => pg.db.exec(text)),
};

/** Runs `body` as `role` (SET ROLE: PostgreSQL checks the role's privileges, not ours). */
async function as<T>(role: string, body: () => Promise<T>): Promise<T> {
  await pg.db.exec(`SET ROLE ${escapeIdentifier(role)}`);
  try {
    return await body();
  } finally {
    await pg.db.exec('RESET ROLE');
  }
}

const consumerDb = {
  query: async (text: string, values: unknown[]) => {
    const r = await pg.db.query(text, values);
    return { rowCount: r.affectedRows ?? 0 };
  },
};

async function refusal(role: string, text: string): Promise<string | undefined> {
  return as(role, () =>
    pg.db.query(text).then(
      () => undefined,
      (err: { code?: string }) => err.code,
    ),
  );
}

beforeAll(async () => {
  pg = await startPostgres();
  await makeRdsLikeMaster(pg);
  for (const buffer of BUFFER_NAMES) {
    await run(
      admin,
      grantStatements({ role: consumerRole(buffer), table: BUFFER_TABLES[buffer], password }, q),
    );
  }
});
afterAll(async () => pg.stop());

describe.each(BUFFER_NAMES.map((b) => [b] as [BufferName]))('the %s consumer role', (buffer) => {
  const role = consumerRole(buffer);
  const table = BUFFER_TABLES[buffer];

  it('applies its own effects once: recorded, then duplicate', async () => {
    const message = messageFor(buffer, `${buffer}-key-1`);
    await expect(as(role, () => applyEffect(consumerDb, message))).resolves.toBe('recorded');
    await expect(as(role, () => applyEffect(consumerDb, message))).resolves.toBe('duplicate');
    expect(await pg.count(table)).toBe(1);
  });

  it('may not write another buffer’s table, read its own rows, change them or the schema', async () => {
    const other = BUFFER_NAMES.find((b) => b !== buffer) ?? 'sends';
    const otherMessage = messageFor(other, `${buffer}-trespass`);
    await expect(as(role, () => applyEffect(consumerDb, otherMessage))).rejects.toMatchObject({
      code: '42501',
    });
    // 42501: insufficient_privilege. https://www.postgresql.org/docs/current/errcodes-appendix.html
    expect(await refusal(role, `SELECT * FROM ${table}`)).toBe('42501');
    expect(await refusal(role, `DELETE FROM ${table}`)).toBe('42501');
    expect(await refusal(role, `UPDATE ${table} SET occurred_at = now()`)).toBe('42501');
    expect(await refusal(role, 'CREATE TABLE intruder (x int)')).toBe('42501');
    // A plain insert: refused for want of the privilege (42501), not for the empty row (23502).
    expect(await refusal(role, `INSERT INTO ${BUFFER_TABLES[other]} DEFAULT VALUES`)).toBe('42501');
    // Reading another buffer's table: none of its columns is granted.
    expect(await refusal(role, `SELECT idempotency_key FROM ${BUFFER_TABLES[other]}`)).toBe(
      '42501',
    );
  });
});

describe('grant statements', () => {
  it('can run again, and take back a table granted before', async () => {
    const role = consumerRole('sends');
    // As if an earlier version had granted the sign-ups table too.
    await pg.db.exec(`GRANT INSERT ON sign_ups TO ${role}`);
    await run(
      admin,
      grantStatements({ role, table: 'email_sends', password: `${password}-new` }, q),
    );
    // Refused for want of the privilege (42501), not for the empty row (23502).
    expect(await refusal(role, 'INSERT INTO sign_ups DEFAULT VALUES')).toBe('42501');
    expect(await refusal(role, 'INSERT INTO email_sends DEFAULT VALUES')).toBe('23502');
    await expect(
      as(role, () => applyEffect(consumerDb, messageFor('sends', 'again'))),
    ).resolves.toBe('recorded');
  });

  it('refuses names that are not plain PostgreSQL names, and short passwords', () => {
    expect(() =>
      grantStatements({ role: 'x"; DROP TABLE sign_ups; --', table: 'sign_ups', password }, q),
    ).toThrow('role must be a lower-case PostgreSQL name, got: "x\\"; DROP TABLE sign_ups; --"');
    // Only the app's own roles: these statements revoke and drop.
    expect(() =>
      grantStatements({ role: 'platform_admin', table: 'sign_ups', password }, q),
    ).toThrow(
      'role must start quiet_upgrade_: these statements revoke and drop, got: "platform_admin"',
    );
    expect(() => dropStatements('platform_admin', q)).toThrow('role must start quiet_upgrade_');
    expect(() =>
      grantStatements({ role: 'quiet_upgrade_ok', table: 'Sign_Ups', password }, q),
    ).toThrow('table must be a lower-case PostgreSQL name, got: "Sign_Ups"');
    expect(() =>
      grantStatements({ role: 'quiet_upgrade_ok', table: 'sign_ups', password: 'short' }, q),
    ).toThrow('the password of quiet_upgrade_ok must be at least 16 characters');
  });

  it('set the SCRAM verifier PostgreSQL itself computes, and never hold the password', async () => {
    const role = 'quiet_upgrade_verifier';
    const secret = "it's-a-long-pass\\word with $ and :";
    // PostgreSQL's own verifier for the password, with a salt of its choosing.
    await admin.query(`CREATE ROLE ${role} PASSWORD ${escapeLiteral(secret)}`);
    const stored = async () =>
      (
        await pg.db.query<{ p: string }>(
          'SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1',
          [role],
        )
      ).rows[0]?.p ?? '';
    const theirs = await stored();
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(theirs) ?? [];
    expect(scramVerifier(secret, Buffer.from(salt ?? '', 'base64'), Number(iterations))).toBe(
      theirs,
    );

    const statements = grantStatements({ role, table: 'email_sends', password: secret }, q);
    expect(statements.join('\n')).not.toContain(secret);
    await run(admin, statements);
    const ours = await stored();
    expect(ours).not.toBe(theirs); // a fresh salt
    expect(statements.join('\n')).toContain(ours); // stored as it was sent
    await run(admin, dropStatements(role, q));
  });

  it('refuse a password SASLprep could change, and a role with a superuser’s attributes', async () => {
    expect(() =>
      grantStatements(
        { role: 'quiet_upgrade_ok', table: 'sign_ups', password: `${password}\u00e9` },
        q,
      ),
    ).toThrow('the password of quiet_upgrade_ok must be printable ASCII');
    await pg.db.exec('CREATE ROLE quiet_upgrade_mighty BYPASSRLS');
    await expect(
      run(admin, grantStatements({ role: 'quiet_upgrade_mighty', table: 'sign_ups', password }, q)),
    ).rejects.toThrow(
      'role quiet_upgrade_mighty exists with SUPERUSER, REPLICATION or BYPASSRLS: not a consumer role',
    );
    await pg.db.exec('DROP ROLE quiet_upgrade_mighty');
  });
});

describe('drop statements', () => {
  it('drop the role with what it was granted, and do nothing the second time', async () => {
    const role = consumerRole('tracking');
    await run(admin, dropStatements(role, q));
    await run(admin, dropStatements(role, q));
    const found = await pg.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_roles WHERE rolname = '${role}'`,
    );
    expect(found.rows[0]?.n).toBe(0);
  });
});
