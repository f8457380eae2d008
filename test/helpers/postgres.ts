import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/** A real PostgreSQL engine (PGlite) with the consumers' schema, served on a loopback port. */
export interface TestPostgres {
  readonly db: PGlite;
  readonly port: number;
  count(table: string): Promise<number>;
  stop(): Promise<void>;
}

const SCHEMA = readFileSync(
  join(__dirname, '..', '..', 'lambda', 'database-roles', 'schema.sql'),
  'utf8',
);

export async function startPostgres(): Promise<TestPostgres> {
  const db = await PGlite.create();
  await db.exec(SCHEMA);
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
