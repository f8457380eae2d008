import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { hashInputs, readEntry, writeEntry } from '../../rehearsal/cache';

/** A real PostgreSQL engine (PGlite) with the consumers' schema, served on a loopback port. */
export interface TestPostgres {
  readonly db: PGlite;
  readonly port: number;
  count(table: string): Promise<number>;
  stop(): Promise<void>;
}

const SCHEMA_FILE = join(__dirname, '..', '..', 'lambda', 'database-roles', 'schema.sql');
const SCHEMA = readFileSync(SCHEMA_FILE, 'utf8');

/**
 * A new PGlite with the schema. Creating one runs initdb, about 3 s of the 4 s a new instance
 * takes here; so the data directory as the schema leaves it is kept in the rehearsal's cache
 * (rehearsal/cache.ts), keyed on the schema and PGlite's version, and later instances load it
 * (about 1.3 s). Each instance still has a data directory of its own, in memory.
 * https://pglite.dev/docs/api#dumpdatadir
 */
async function newDatabase(): Promise<PGlite> {
  const key = hashInputs([SCHEMA_FILE, 'node_modules/@electric-sql/pglite/package.json'], 'pglite');
  const cached = readEntry('pglite-data', key);
  if (cached !== undefined) {
    return PGlite.create({ loadDataDir: new Blob([Buffer.from(cached, 'base64')]) });
  }
  const db = await PGlite.create();
  await db.exec(SCHEMA);
  const dump = await db.dumpDataDir('gzip');
  writeEntry('pglite-data', key, Buffer.from(await dump.arrayBuffer()).toString('base64'));
  return db;
}

export async function startPostgres(): Promise<TestPostgres> {
  const db = await newDatabase();
  // Port 0 is not supported; pick a free one by probing a short range.
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const server = new PGLiteSocketServer({ db, port, host: '127.0.0.1', maxConnections: 4 });
    try {
      await server.start();
    } catch {
      continue;
    }
    return {
      db,
      port,
      async count(table) {
        const result = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
        return result.rows[0]?.n ?? 0;
      },
      async stop() {
        await server.stop();
        await db.close();
      },
    };
  }
  throw new Error('no free loopback port for PGlite');
}

export const TEST_DB_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db';

/**
 * Points functions that use lambda/shared/database.ts at this PGlite and returns the value
 * the (mocked) database secret should hold: its loopback port. TLS is off because PGlite
 * speaks none; production always verifies TLS.
 */
export function connectFunctionsTo(pg: TestPostgres): string {
  process.env.DB_SECRET_ARN = TEST_DB_SECRET_ARN;
  process.env.DB_TLS = 'disable';
  return JSON.stringify({
    host: '127.0.0.1',
    port: pg.port,
    username: 'platform_admin',
    password: 'not-checked-by-pglite',
    dbname: 'postgres',
  });
}

/** The master user's name in the tests, as the database secret above names it. */
export const RDS_MASTER = 'platform_admin';

/**
 * Makes RDS_MASTER what the RDS for PostgreSQL master user is: not a superuser, but a role with
 * CREATEROLE and CREATEDB that owns the platform's tables. PGlite's own user is a superuser,
 * which can do what the master cannot (change SUPERUSER, for one), so statements that run as
 * the master in production run as this role in the tests (SET ROLE makes PostgreSQL check this
 * role's privileges and attributes).
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html
 */
export async function makeRdsLikeMaster(pg: TestPostgres): Promise<void> {
  await pg.db.exec(`
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${RDS_MASTER}') THEN
        CREATE ROLE ${RDS_MASTER} LOGIN CREATEROLE CREATEDB NOSUPERUSER;
      END IF;
    END $$;
    GRANT USAGE, CREATE ON SCHEMA public TO ${RDS_MASTER};
    DO $$ DECLARE t record; BEGIN
      FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER TABLE %I OWNER TO ${RDS_MASTER}', t.tablename);
      END LOOP;
    END $$;
  `);
}
