import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { applyMysqlEffect } from '../../../lambda/buffer-consumer/effects-mysql';
import { effectRow } from '../../../lambda/buffer-consumer/rows';
import { BUFFER_TABLES, consumerRole } from '../../../lambda/database-roles/roles';
import {
  EFFECT_COLUMNS,
  dropStatements,
  grantStatements,
  mysqlString,
  nativePasswordHash,
  sqlStatements,
} from '../../../lambda/database-roles/roles-mysql';
import { BUFFER_NAMES } from '../../../lambda/shared/contracts';
import { SESSION_SETUP } from '../../../lambda/shared/mysql';
import { MysqlConnection } from '../../../lambda/shared/mysql-client';
import { messageFor } from '../../helpers/messages';
import { describeWithMysql, startMysql, type TestMysql } from '../../helpers/mysql';

/**
 * The MySQL consumer users (lambda/database-roles/roles-mysql.ts) on a real MySQL-compatible
 * server: Debian's MariaDB, started for this file (test/helpers/mysql.ts). Without the server
 * the suite does not run, and says so; in CI it must.
 */
const describeMysql = describeWithMysql();

const secrets = mockClient(SecretsManagerClient);

/**
 * The master as RDS makes it, as far as MariaDB has the privileges: RDS for MariaDB's list,
 * on *.* WITH GRANT OPTION; no SUPER, FILE, SHUTDOWN or ALL PRIVILEGES. (RDS for MySQL 8.0.36+
 * adds CREATE ROLE, DROP ROLE, APPLICATION_PASSWORD_ADMIN, ROLE_ADMIN, SET_USER_ID,
 * XA_RECOVER_ADMIN and rds_superuser_role, none of which the statements use.)
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.MasterAccounts.html
 */
const RDS_MASTER = { user: 'rds_master', password: 'rds-master-password-1' } as const;
const RDS_MASTER_PRIVILEGES =
  'SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, RELOAD, PROCESS, REFERENCES, INDEX, ALTER, ' +
  'SHOW DATABASES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION CLIENT, ' +
  'CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER, ' +
  'REPLICATION SLAVE';

const SENDS = consumerRole('sends');
const PASSWORD = 'sends-password-0123456789';

const sendsGrant = (password = PASSWORD, table = 'email_sends') =>
  grantStatements({ role: SENDS, table, password }, 'mariadb');

describe('the MySQL consumer users, without a server', () => {
  it.each(BUFFER_NAMES)('grants the %s table exactly the columns its effect inserts', (buffer) => {
    const table = BUFFER_TABLES[buffer];
    const row = effectRow(messageFor(buffer, 'k'));
    expect(row.table).toBe(table);
    expect(EFFECT_COLUMNS[table]).toEqual(Object.keys(row.cells));
  });

  it('refuses a name that is not a lower-case identifier, a table of no buffer, a short password', () => {
    const grant = { role: SENDS, table: 'email_sends', password: PASSWORD };
    expect(() => grantStatements({ ...grant, role: "x'@'%" }, 'mysql')).toThrow(
      `user must be quiet_upgrade_ and a lower-case name, up to 32 characters, got: "x'@'%"`,
    );
    // Never the master or a platform's own user: these statements revoke and drop.
    expect(() => grantStatements({ ...grant, role: 'platform_admin' }, 'mysql')).toThrow(
      'user must be quiet_upgrade_',
    );
    expect(() => dropStatements('platform_admin')).toThrow('user must be quiet_upgrade_');
    expect(() => grantStatements({ ...grant, role: 'a'.repeat(33) }, 'mysql')).toThrow(/32/);
    expect(() => grantStatements({ ...grant, table: 'Email_Sends' }, 'mysql')).toThrow(
      'table must be a lower-case MySQL name, got: "Email_Sends"',
    );
    expect(() => grantStatements({ ...grant, table: 'subscribers' }, 'mysql')).toThrow(
      "table subscribers is not a buffer's table",
    );
    expect(() => grantStatements({ ...grant, password: 'short-pass-1234' }, 'mysql')).toThrow(
      `the password of ${SENDS} must be at least 16 characters`,
    );
    expect(() => dropStatements('Robert; DROP')).toThrow(
      /user must be quiet_upgrade_ and a lower-case name/,
    );
  });

  it('never holds the password on MariaDB, and names caching_sha2_password on MySQL', () => {
    expect(sendsGrant().join('\n')).not.toContain(PASSWORD);
    expect(sendsGrant()[0]).toContain(`AS '${nativePasswordHash(PASSWORD)}'`);
    const mysql = grantStatements(
      { role: SENDS, table: 'email_sends', password: PASSWORD },
      'mysql',
    );
    expect(mysql[0]).toBe(
      `CREATE USER IF NOT EXISTS '${SENDS}'@'%' IDENTIFIED WITH caching_sha2_password BY '${PASSWORD}' REQUIRE SSL`,
    );
  });

  it('splits the schema file into its statements', () => {
    const statements = sqlStatements(`-- a comment; with a semicolon
CREATE TABLE a (x INT); -- trailing
CREATE TABLE b (
  y VARCHAR(5) CHECK (y IN ('a;b'))
);
`);
    expect(statements).toEqual([
      'CREATE TABLE a (x INT)',
      "CREATE TABLE b (\n  y VARCHAR(5) CHECK (y IN ('a;b'))\n)",
    ]);
  });
});

describeMysql('the MySQL consumer users on a real server', () => {
  let mysql: TestMysql;
  /** The RDS-like master's connection, over TLS, with the consumers' session. */
  let master: MysqlConnection;

  const run = async (statements: string[]) => {
    for (const text of statements) await master.query(text);
  };

  const login = async (user: string, password: string, tls = true) => {
    const c = await MysqlConnection.connect({
      host: '127.0.0.1',
      port: mysql.port,
      user,
      password,
      database: mysql.database,
      tls: tls ? { ca: mysql.ca } : false,
    });
    await c.query(SESSION_SETUP);
    return c;
  };

  /** Runs `use` as the user, then closes its connection. */
  const as = async <T>(user: string, password: string, use: (c: MysqlConnection) => Promise<T>) => {
    const c = await login(user, password);
    try {
      return await use(c);
    } finally {
      await c.close();
    }
  };

  const userCount = async (user: string) =>
    Number((await mysql.sql(`SELECT COUNT(*) FROM mysql.user WHERE User = '${user}'`))[0]?.[0]);

  beforeAll(async () => {
    mysql = await startMysql();
    await mysql.sql(
      `CREATE USER '${RDS_MASTER.user}'@'127.0.0.1' IDENTIFIED BY '${RDS_MASTER.password}';
       GRANT ${RDS_MASTER_PRIVILEGES} ON *.* TO '${RDS_MASTER.user}'@'127.0.0.1' WITH GRANT OPTION;`,
    );
    master = await login(RDS_MASTER.user, RDS_MASTER.password);
  });

  afterAll(async () => {
    await master?.close();
    await mysql?.stop();
  });

  it('runs as a master with the RDS master’s privileges and no SUPER', async () => {
    const [[grants = '']] = (await mysql.sql(
      `SHOW GRANTS FOR '${RDS_MASTER.user}'@'127.0.0.1'`,
    )) as [[string]];
    expect(grants).toContain('CREATE USER');
    expect(grants).toContain('WITH GRANT OPTION');
    expect(grants).not.toMatch(/\bSUPER\b|ALL PRIVILEGES|\bFILE\b|SHUTDOWN/);
  });

  it.each(BUFFER_NAMES)(
    'lets the %s consumer apply its effect once, logged in as its own user over TLS',
    async (buffer) => {
      const user = consumerRole(buffer);
      const table = BUFFER_TABLES[buffer];
      await run(grantStatements({ role: user, table, password: PASSWORD }, 'mariadb'));
      const message = messageFor(buffer, `own-${buffer}`);
      const before = await mysql.count(table);
      await as(user, PASSWORD, async (c) => {
        expect(await applyMysqlEffect(c, message)).toBe('recorded');
        expect(await applyMysqlEffect(c, message)).toBe('duplicate');
      });
      expect(await mysql.count(table)).toBe(before + 1);
    },
  );

  it('refuses the consumer another buffer’s table, other columns, DELETE, UPDATE and DDL', async () => {
    await run(sendsGrant());
    await as(SENDS, PASSWORD, async (c) => {
      await applyMysqlEffect(c, messageFor('sends', 'refused-1'));
      const denied = async (attempt: Promise<unknown>, errno: number, text: RegExp) => {
        const err = await attempt.then(
          () => new Error('succeeded'),
          (e: unknown) => e,
        );
        expect(err).toMatchObject({ errno });
        expect(err instanceof Error ? err.message : err).toMatch(text);
      };
      // Another buffer's table, through the real effect.
      await denied(
        applyMysqlEffect(c, messageFor('unsubscribes', 'x-1')),
        1142,
        /INSERT(, UPDATE)? command denied .*`unsubscribes`/,
      );
      // Its own rows: only the key may be read (what the upsert compares), nothing else.
      await denied(
        c.query('SELECT recipient FROM email_sends'),
        1143,
        /SELECT command denied .*'recipient'/,
      );
      await denied(c.query('SELECT * FROM email_sends'), 1142, /SELECT command denied/);
      await denied(c.query('SELECT * FROM sign_ups'), 1142, /SELECT command denied/);
      await denied(
        c.query("DELETE FROM email_sends WHERE idempotency_key = 'refused-1'"),
        1142,
        /DELETE command denied/,
      );
      await denied(
        c.query("UPDATE email_sends SET recorded_at = NOW(6) WHERE idempotency_key = 'refused-1'"),
        1143,
        /UPDATE command denied .*'recorded_at'/,
      );
      await denied(
        c.query(
          "INSERT INTO email_sends (idempotency_key, campaign_id, recipient, template_id, scheduled_at, occurred_at, recorded_at) VALUES ('r', 'c', 'r', 't', NOW(), NOW(), NOW())",
        ),
        1143,
        /INSERT command denied .*'recorded_at'/,
      );
      await denied(c.query('CREATE TABLE stolen (x INT)'), 1142, /CREATE command denied/);
      await denied(c.query(`CREATE USER 'other'@'%'`), 1227, /CREATE USER/);
    });
  });

  it('sets the new password and revokes a table granted before when run again', async () => {
    await run(sendsGrant());
    const grantsOnce = await mysql.sql(`SHOW GRANTS FOR '${SENDS}'@'%'`);
    await run(sendsGrant());
    expect(await mysql.sql(`SHOW GRANTS FOR '${SENDS}'@'%'`)).toEqual(grantsOnce);

    const rotated = 'a-rotated-password-98765';
    await run(sendsGrant(rotated, 'unsubscribes'));
    await expect(login(SENDS, PASSWORD)).rejects.toMatchObject({ errno: 1045 });
    await as(SENDS, rotated, async (c) => {
      expect(await applyMysqlEffect(c, messageFor('unsubscribes', 'moved-1'))).toBe('recorded');
      await expect(applyMysqlEffect(c, messageFor('sends', 'moved-2'))).rejects.toMatchObject({
        errno: 1142,
      });
    });
  });

  it('lets a consumer log in only over TLS', async () => {
    await run(sendsGrant());
    await expect(login(SENDS, PASSWORD, false)).rejects.toMatchObject({ errno: 1045 });
    await as(SENDS, PASSWORD, async (c) => {
      expect(await applyMysqlEffect(c, messageFor('sends', 'tls-only-1'))).toBe('recorded');
    });
  });

  it('drops the user, and a second drop does nothing', async () => {
    await run(sendsGrant());
    expect(await userCount(SENDS)).toBe(1);
    await run(dropStatements(SENDS));
    expect(await userCount(SENDS)).toBe(0);
    await expect(run(dropStatements(SENDS))).resolves.toBeUndefined();
    await expect(login(SENDS, PASSWORD)).rejects.toMatchObject({ errno: 1045 });
  });

  it('keeps the password out of MariaDB’s general log, which would show it in clear', async () => {
    const hex = Buffer.from(PASSWORD).toString('hex');
    const logged = async () =>
      Number(
        (
          await mysql.sql(
            `SELECT COUNT(*) FROM mysql.general_log WHERE LOCATE(UNHEX('${hex}'), CONVERT(argument USING binary)) > 0`,
          )
        )[0]?.[0],
      );
    await mysql.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 'ON'");
    try {
      await run(sendsGrant());
      const statements = await mysql.sql(
        `SELECT COUNT(*) FROM mysql.general_log WHERE argument LIKE 'ALTER USER%${nativePasswordHash(PASSWORD)}%'`,
      );
      expect(Number(statements[0]?.[0])).toBe(1); // the log did record the statements
      expect(await logged()).toBe(0);
      // What MariaDB does with the password itself: logged as written, even when it fails.
      await expect(
        master.query(`ALTER USER 'nobody'@'%' IDENTIFIED BY '${PASSWORD}'`),
      ).rejects.toMatchObject({
        errno: 1396,
      });
      expect(await logged()).toBe(1);
    } finally {
      await mysql.sql("SET GLOBAL general_log = 'OFF'; TRUNCATE TABLE mysql.general_log");
    }
  });

  it('quotes a string as MySQL reads it', async () => {
    const tricky = String.raw`it's a \'quoted\\ value' -- ;`;
    expect(await mysql.sql(`SELECT ${mysqlString(tricky)}`)).toEqual([[tricky]]);
  });

  describe('the custom resource with DB_ENGINE mariadb', () => {
    let handler: (event: unknown) => Promise<{ PhysicalResourceId: string }>;
    let resetMysqlDatabase: () => Promise<void>;
    const SENDS_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:sends-user';
    const OPENS_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:opens-user';
    const OPENS = 'quiet_upgrade_opens';
    const OPENS_PASSWORD = 'opens-password-4567890';
    const sends = { role: SENDS, table: 'email_sends', secretArn: SENDS_SECRET };
    const opens = { role: OPENS, table: 'tracking_events', secretArn: OPENS_SECRET };
    const properties = (props: Record<string, unknown> = {}) => ({
      ServiceToken: 'arn:aws:lambda:::function:x',
      Roles: [sends],
      Schema: 'demo',
      ...props,
    });
    const request = (RequestType: string, props: Record<string, unknown> = {}, old = {}) => ({
      RequestType,
      ResourceProperties: properties(props),
      ...(RequestType === 'Update' ? { OldResourceProperties: properties(old) } : {}),
    });

    beforeAll(async () => {
      process.env.DB_ENGINE = 'mariadb';
      process.env.DB_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db';
      process.env.DB_TLS = 'disable'; // the master's TLS is the consumer's, tested in test/lambda/buffer-consumer
      secrets.on(GetSecretValueCommand, { SecretId: process.env.DB_SECRET_ARN }).resolves({
        SecretString: JSON.stringify({
          host: '127.0.0.1',
          port: mysql.port,
          username: RDS_MASTER.user,
          password: RDS_MASTER.password,
          dbname: mysql.database,
        }),
      });
      secrets.on(GetSecretValueCommand, { SecretId: SENDS_SECRET }).resolves({
        SecretString: JSON.stringify({ username: SENDS, password: PASSWORD }),
      });
      secrets.on(GetSecretValueCommand, { SecretId: OPENS_SECRET }).resolves({
        SecretString: JSON.stringify({ username: OPENS, password: OPENS_PASSWORD }),
      });
      ({ handler } = await import('../../../lambda/database-roles-mysql/handler'));
      ({ resetMysqlDatabase } = await import('../../../lambda/shared/mysql'));
    });

    afterAll(async () => {
      await resetMysqlDatabase?.();
      delete process.env.DB_ENGINE;
      delete process.env.DB_TLS;
    });

    it('creates the tables and the users on Create, and drops the users on Delete', async () => {
      await mysql.sql('DROP TABLE opt_in_confirmations');
      await expect(handler(request('Create', { Roles: [sends, opens] }))).resolves.toEqual({
        PhysicalResourceId: 'quiet-upgrade-consumer-roles',
      });
      expect(await mysql.count('opt_in_confirmations')).toBe(0);
      await as(OPENS, OPENS_PASSWORD, async (c) => {
        expect(await applyMysqlEffect(c, messageFor('tracking', 'handler-1'))).toBe('recorded');
      });
      await handler(request('Delete', { Roles: [sends, opens] }));
      expect(await userCount(SENDS)).toBe(0);
      expect(await userCount(OPENS)).toBe(0);
    });

    it('drops, on Update, a user the old properties named and the new ones do not', async () => {
      await handler(request('Create', { Roles: [sends, opens] }));
      expect(await userCount(OPENS)).toBe(1);
      await handler(request('Update', {}, { Roles: [sends, opens] }));
      expect(await userCount(OPENS)).toBe(0);
      expect(await userCount(SENDS)).toBe(1);
      await as(SENDS, PASSWORD, async (c) => {
        expect(await applyMysqlEffect(c, messageFor('sends', 'handler-2'))).toBe('recorded');
      });
    });

    it('keeps the password out of the error when the server refuses a statement', async () => {
      // MySQL's statement form on MariaDB: a syntax error (1064), whose message quotes the
      // statement, password and all. The error goes to CloudFormation's events.
      process.env.DB_ENGINE = 'mysql';
      try {
        const failure = handler(request('Create'));
        await expect(failure).rejects.toThrow(
          /^a consumer user statement \(CREATE USER …\) failed: MySQL error 1064 \(42000\)$/,
        );
        await expect(failure).rejects.not.toThrow(PASSWORD);
      } finally {
        process.env.DB_ENGINE = 'mariadb';
      }
    });

    it('refuses an unknown DB_ENGINE before touching the database', async () => {
      process.env.DB_ENGINE = 'oracle';
      secrets.resetHistory();
      try {
        await expect(handler(request('Create'))).rejects.toThrow(
          'DB_ENGINE must be mysql or mariadb, got: "oracle"',
        );
        expect(secrets).not.toHaveReceivedCommand(GetSecretValueCommand);
      } finally {
        process.env.DB_ENGINE = 'mariadb';
      }
    });
  });
});
