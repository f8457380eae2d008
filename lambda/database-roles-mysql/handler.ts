// AWS API actions called: secretsmanager:GetSecretValue on DB_SECRET_ARN (../shared/mysql)
// and on each consumer's secret (../database-roles/request.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as v from 'valibot';
import { PHYSICAL_ID, parseRequest, passwordOf, removedRoles } from '../database-roles/request';
import * as mysqlRoles from '../database-roles/roles-mysql';
import { logger } from '../shared/logger';
import { mysqlDatabase } from '../shared/mysql';

/**
 * DB_ENGINE: 'mysql' (the default: RDS for MySQL, Aurora MySQL), or 'mariadb', a MariaDB
 * server, which sets passwords differently (roles-mysql.ts). Both read the master secret's
 * host, port, username, password and dbname (../shared/mysql).
 */
const Flavor = v.picklist(['mysql', 'mariadb']);

/**
 * The consumer roles on MySQL: one user per consumer (../database-roles/roles-mysql.ts), made,
 * changed and dropped as the PostgreSQL roles are (../database-roles/handler.ts), by the same
 * custom resource request. The statements run one by one on the master's connection, in the
 * session every MySQL connection here starts with (SESSION_SETUP). Its own function, so each
 * engine's bundle carries only its own driver.
 */
export const handler = async (event: unknown): Promise<{ PhysicalResourceId: string }> => {
  const request = parseRequest(event);
  const flavor = v.safeParse(Flavor, process.env.DB_ENGINE ?? 'mysql');
  if (!flavor.success) {
    throw new Error(
      `DB_ENGINE must be mysql or mariadb, got: ${JSON.stringify(process.env.DB_ENGINE)}`,
    );
  }
  const props = request.ResourceProperties;
  const runAll = async (statements: string[]) => {
    for (const text of statements) {
      try {
        await mysqlDatabase.query(text);
      } catch (err) {
        // The server's message may quote the statement, password and all (a syntax error
        // does), and this error reaches CloudFormation's events and the logs: say only what
        // failed and the server's error number.
        const e = err as { errno?: unknown; sqlState?: unknown };
        // No `cause`: it would carry the server's message, which is what must not travel.
        // eslint-disable-next-line preserve-caught-error
        throw new Error(
          `a consumer user statement (${text.split(' ').slice(0, 2).join(' ')} …) failed: MySQL error ${String(e.errno)} (${String(e.sqlState)})`,
        );
      }
    }
  };
  if (request.RequestType === 'Delete') {
    await runAll(props.Roles.flatMap((r) => mysqlRoles.dropStatements(r.role)));
    logger.info('consumer users dropped', { users: props.Roles.map((r) => r.role) });
    return { PhysicalResourceId: PHYSICAL_ID };
  }
  if (props.Schema === 'demo') {
    await runAll(
      mysqlRoles.sqlStatements(readFileSync(join(__dirname, 'schema-mysql.sql'), 'utf8')),
    );
  }
  for (const r of props.Roles) {
    const password = await passwordOf(r.secretArn, r.role);
    await runAll(
      mysqlRoles.grantStatements({ role: r.role, table: r.table, password }, flavor.output),
    );
  }
  const gone = removedRoles(request);
  await runAll(gone.flatMap((r) => mysqlRoles.dropStatements(r)));
  if (gone.length > 0) logger.info('consumer users dropped', { users: gone });
  logger.info('consumer users set', { users: props.Roles.map((r) => `${r.role} → ${r.table}`) });
  return { PhysicalResourceId: PHYSICAL_ID };
};
