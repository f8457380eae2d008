import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';

/**
 * A private MySQL-compatible server for the tests: Debian's MariaDB (`apt-get install
 * mariadb-server`; .ci/run installs it), started by the test file that needs it with a data
 * directory of its own in a temp dir, on a free loopback port, and stopped and removed at the
 * end. Real users with passwords, not --skip-grant-tables: the consumers log in as a user
 * allowed only what their effect needs.
 * https://mariadb.com/kb/en/mariadb-install-db/
 * https://mariadb.com/kb/en/mariadbd-options/
 */
export interface TestMysql {
  readonly port: number;
  /** The PEM of the CA that signed the server's TLS certificate (for 127.0.0.1). */
  readonly ca: string;
  /** The database the schema is in. */
  readonly database: string;
  /** Runs SQL as root, over the server's socket, with the `mariadb` client; returns its rows. */
  sql(text: string): Promise<string[][]>;
  count(table: string): Promise<number>;
  stop(): Promise<void>;
}

const run = promisify(execFile);

/** The master user, as RDS creates it, and a consumer's user, as in the database secret. */
export const MYSQL_MASTER = { user: 'platform_admin', password: 'master-password' } as const;

const SCHEMA_FILE = join(
  __dirname,
  '..',
  '..',
  'lambda',
  'database-roles-mysql',
  'schema-mysql.sql',
);
const SCHEMA = readFileSync(SCHEMA_FILE, 'utf8');

/** The first of `names` found on PATH or in the sbin directories (where Debian puts mariadbd). */
function findProgram(names: string[]): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? '').split(delimiter),
    '/usr/sbin',
    '/usr/local/sbin',
    '/sbin',
  ];
  for (const name of names) {
    for (const dir of dirs.filter((d) => d !== '')) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

interface Programs {
  server: string;
  installDb: string;
  client: string;
  /** Makes the server's TLS certificate (Debian's ca-certificates depends on it). */
  openssl: string;
}

/** The programs, or undefined when MariaDB (or openssl) is not installed on this machine. */
export function mysqlPrograms(): Programs | undefined {
  const server = findProgram(['mariadbd', 'mysqld']);
  const installDb = findProgram(['mariadb-install-db', 'mysql_install_db']);
  const client = findProgram(['mariadb', 'mysql']);
  const openssl = findProgram(['openssl']);
  return server && installDb && client && openssl
    ? { server, installDb, client, openssl }
    : undefined;
}

export const MYSQL_NOT_INSTALLED =
  'the MySQL consumer tests did not run: no MySQL-compatible server on this machine ' +
  '(apt-get install mariadb-server openssl installs one)';

/**
 * Which describe the MySQL suite uses. With the server installed: `describe`. Without it, in
 * CI (CI=true): an error, so the file fails and says why; CI installs the server (.ci/run)
 * and must run this suite. Elsewhere: `describe.skip`, and one line on stderr saying the
 * suite did not run and how to install the server.
 */
export function describeWithMysql(): jest.Describe {
  if (mysqlPrograms() !== undefined) return describe;
  if (process.env.CI === 'true') throw new Error(`${MYSQL_NOT_INSTALLED}; CI must install it`);
  process.stderr.write(`${MYSQL_NOT_INSTALLED}\n`);
  return describe.skip;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        resolve(typeof address === 'object' && address !== null ? address.port : 0),
      );
    });
  });
}

/** Resolves once the server sends its greeting on the port. */
async function greeted(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('data', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// Small and quick: a throwaway server needs no durability and little memory.
const SERVER_OPTIONS = [
  '--innodb-buffer-pool-size=16M',
  '--innodb-log-file-size=8M',
  '--innodb-flush-log-at-trx-commit=0',
  '--innodb-fast-shutdown=2',
  '--skip-log-bin',
  '--skip-name-resolve',
  '--character-set-server=utf8mb4',
];

/**
 * A CA and a server certificate it signs for 127.0.0.1, made for this server alone (EC keys:
 * quick), so the tests check that the client verifies the server.
 */
export async function makeCertificates(openssl: string, dir: string): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2'];
  await run(openssl, [
    'req',
    '-x509',
    ...ec,
    '-subj',
    '/CN=quiet-upgrade test CA',
    '-keyout',
    join(dir, 'ca-key.pem'),
    '-out',
    join(dir, 'ca.pem'),
  ]);
  await run(openssl, [
    'req',
    '-x509',
    ...ec,
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-CA',
    join(dir, 'ca.pem'),
    '-CAkey',
    join(dir, 'ca-key.pem'),
    '-keyout',
    join(dir, 'server-key.pem'),
    '-out',
    join(dir, 'server.pem'),
  ]);
}

export async function startMysql(): Promise<TestMysql> {
  const programs = mysqlPrograms();
  if (programs === undefined) throw new Error(MYSQL_NOT_INSTALLED);
  const dir = mkdtempSync(join(tmpdir(), 'quiet-upgrade-mysql-'));
  const data = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  const asRoot = process.getuid?.() === 0 ? ['--user=root'] : [];
  let server: ChildProcess | undefined;
  const stop = async () => {
    const child = server;
    server = undefined;
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A test run that ends without afterAll still stops the server and removes its files.
  const onExit = () => {
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    await Promise.all([
      run(programs.installDb, [
        '--no-defaults',
        `--datadir=${data}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        ...asRoot,
        ...SERVER_OPTIONS,
      ]),
      makeCertificates(programs.openssl, dir),
    ]);
    let port = 0;
    for (let attempt = 0; attempt < 5 && server === undefined; attempt++) {
      port = await freePort();
      const child = spawn(
        programs.server,
        [
          '--no-defaults',
          `--datadir=${data}`,
          `--socket=${socket}`,
          `--pid-file=${join(dir, 'mysqld.pid')}`,
          `--log-error=${join(dir, 'error.log')}`,
          `--tmpdir=${dir}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          `--ssl-ca=${join(dir, 'ca.pem')}`,
          `--ssl-cert=${join(dir, 'server.pem')}`,
          `--ssl-key=${join(dir, 'server-key.pem')}`,
          ...asRoot,
          ...SERVER_OPTIONS,
        ],
        { stdio: 'ignore' },
      );
      const deadline = Date.now() + 20_000;
      while (child.exitCode === null && !(await greeted(port))) {
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      if (child.exitCode === null && Date.now() <= deadline) server = child;
      else child.kill('SIGKILL'); // lost the port to another process, or never came up
    }
    if (server === undefined) {
      const log = readFileSync(join(dir, 'error.log'), 'utf8').split('\n').slice(-15).join('\n');
      throw new Error(`mariadbd did not start:\n${log}`);
    }
    const sql = async (text: string, database = 'platform'): Promise<string[][]> => {
      const { stdout } = await run(programs.client, [
        '--no-defaults',
        `--socket=${socket}`,
        '--user=root',
        '--batch',
        '--raw',
        '--skip-column-names',
        ...(database === '' ? [] : [`--database=${database}`]),
        `--execute=${text}`,
      ]);
      return stdout
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => line.split('\t'));
    };
    // The master as RDS makes it: all privileges on the platform's database, not SUPER.
    await sql(
      `CREATE DATABASE platform;
       CREATE USER '${MYSQL_MASTER.user}'@'127.0.0.1' IDENTIFIED BY '${MYSQL_MASTER.password}';
       GRANT ALL PRIVILEGES ON platform.* TO '${MYSQL_MASTER.user}'@'127.0.0.1';`,
      '',
    );
    await sql(SCHEMA);
    return {
      port,
      ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
      database: 'platform',
      sql: (text) => sql(text),
      async count(table) {
        const rows = await sql(`SELECT COUNT(*) FROM ${table}`);
        return Number(rows[0]?.[0]);
      },
      async stop() {
        process.off('exit', onExit);
        await stop();
      },
    };
  } catch (err) {
    process.off('exit', onExit);
    await stop();
    throw err;
  }
}

/**
 * Creates a consumer's user, allowed only what the MySQL effect needs on its one table:
 * INSERT; for `ON DUPLICATE KEY UPDATE idempotency_key = idempotency_key`, UPDATE and SELECT
 * on the column it reads. MySQL documents UPDATE "for the columns to be updated"; MariaDB
 * (checked here) asks UPDATE on every inserted column, so UPDATE is granted on the table.
 * No DELETE, no other table, no DDL.
 * https://dev.mysql.com/doc/refman/8.0/en/insert.html
 */
export async function createConsumerUser(
  mysql: TestMysql,
  user: string,
  password: string,
  table: string,
): Promise<void> {
  await mysql.sql(
    `CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}';
     GRANT INSERT, UPDATE, SELECT (idempotency_key)
       ON ${mysql.database}.${table} TO '${user}'@'127.0.0.1';`,
  );
}
