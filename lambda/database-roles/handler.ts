// AWS API actions called: secretsmanager:GetSecretValue on DB_SECRET_ARN (../shared/database)
// and on each consumer's secret (below).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { escapeIdentifier, escapeLiteral } from 'pg';
import * as v from 'valibot';
import { database } from '../shared/database';
import { logger } from '../shared/logger';
import { mysqlDatabase } from '../shared/mysql';
import { dropStatements, grantStatements, run } from './roles';
import * as mysqlRoles from './roles-mysql';

const secrets = new SecretsManagerClient({});
const quoting = { escapeIdentifier, escapeLiteral };

const text = v.pipe(v.string(), v.minLength(1));
const Properties = v.object({
  /** One per consumer: its role, its table, and the secret that holds its password. */
  Roles: v.pipe(
    v.array(v.object({ role: text, table: text, secretArn: text })),
    v.minLength(1, 'must name at least one role'),
  ),
  /** "demo": the demo platform is ours, so its tables are created here (schema.sql). */
  Schema: v.picklist(['demo', 'none']),
});
type Request = v.InferOutput<typeof Event>;
const Event = v.variant('RequestType', [
  v.object({ RequestType: v.picklist(['Create', 'Delete']), ResourceProperties: Properties }),
  v.object({
    RequestType: v.literal('Update'),
    ResourceProperties: Properties,
    /**
     * What the last Create or Update set: roles named there and no longer are dropped. Only
     * the role names are read, so a property added later does not fail every Update after it.
     */
    OldResourceProperties: v.object({ Roles: v.array(v.object({ role: text })) }),
  }),
]);

/** The physical id: one set of roles per stack; an update applies the new set in place. */
const PHYSICAL_ID = 'quiet-upgrade-consumer-roles';

/**
 * DB_ENGINE: which database the roles are made in. 'postgres' (the default): RDS for
 * PostgreSQL, Aurora PostgreSQL (roles.ts). 'mysql': RDS for MySQL, Aurora MySQL; 'mariadb':
 * a MariaDB server, which sets passwords differently (roles-mysql.ts); both read the master
 * secret's host, port, username, password and dbname (../shared/mysql).
 */
const Engine = v.picklist(['postgres', 'mysql', 'mariadb']);

/**
 * The consumer roles, as a CloudFormation custom resource (the CDK Provider framework calls
 * this function and answers CloudFormation; this one runs in the VPC, with no internet route).
 * Create and Update make every role match its secret and its table, and an Update drops the
 * roles the old properties named and the new ones do not (CloudFormation sends the previous
 * properties as OldResourceProperties); Delete drops them all. Run
 * it outside an upgrade window: role changes on blue are not replicated to green by logical
 * replication.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.custom_resources-readme.html#provider-framework
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-requesttypes-update.html
 */
export const handler = async (event: unknown): Promise<{ PhysicalResourceId: string }> => {
  const parsed = v.safeParse(Event, event);
  if (!parsed.success) {
    throw new Error(`invalid consumer roles request: ${v.summarize(parsed.issues)}`);
  }
  const request = parsed.output;
  const engine = v.safeParse(Engine, process.env.DB_ENGINE ?? 'postgres');
  if (!engine.success) {
    throw new Error(
      `DB_ENGINE must be postgres, mysql or mariadb, got: ${JSON.stringify(process.env.DB_ENGINE)}`,
    );
  }
  if (engine.output !== 'postgres') return mysqlUsers(request, engine.output);
  const props = request.ResourceProperties;
  const db = await database();
  if (request.RequestType === 'Delete') {
    await run(
      db,
      props.Roles.flatMap((r) => dropStatements(r.role, quoting)),
    );
    logger.info('consumer roles dropped', { roles: props.Roles.map((r) => r.role) });
    return { PhysicalResourceId: PHYSICAL_ID };
  }
  if (props.Schema === 'demo') {
    await db.query(readFileSync(join(__dirname, 'schema.sql'), 'utf8'));
  }
  for (const r of props.Roles) {
    const password = await passwordOf(r.secretArn, r.role);
    await run(db, grantStatements({ role: r.role, table: r.table, password }, quoting));
  }
  if (request.RequestType === 'Update') {
    const kept = new Set(props.Roles.map((r) => r.role));
    const gone = request.OldResourceProperties.Roles.filter((r) => !kept.has(r.role));
    await run(
      db,
      gone.flatMap((r) => dropStatements(r.role, quoting)),
    );
    if (gone.length > 0) logger.info('consumer roles dropped', { roles: gone.map((r) => r.role) });
  }
  logger.info('consumer roles set', { roles: props.Roles.map((r) => `${r.role} → ${r.table}`) });
  return { PhysicalResourceId: PHYSICAL_ID };
};

/**
 * The same resource on MySQL: one user per consumer (roles-mysql.ts), made, changed and
 * dropped as the PostgreSQL roles are above. The statements run one by one on the master's
 * connection, in the session every MySQL connection here starts with (SESSION_SETUP).
 */
async function mysqlUsers(
  request: Request,
  flavor: mysqlRoles.MysqlFlavor,
): Promise<{ PhysicalResourceId: string }> {
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
    await runAll(mysqlRoles.grantStatements({ role: r.role, table: r.table, password }, flavor));
  }
  if (request.RequestType === 'Update') {
    const kept = new Set(props.Roles.map((r) => r.role));
    const gone = request.OldResourceProperties.Roles.filter((r) => !kept.has(r.role));
    await runAll(gone.flatMap((r) => mysqlRoles.dropStatements(r.role)));
    if (gone.length > 0) logger.info('consumer users dropped', { users: gone.map((r) => r.role) });
  }
  logger.info('consumer users set', { users: props.Roles.map((r) => `${r.role} → ${r.table}`) });
  return { PhysicalResourceId: PHYSICAL_ID };
}

async function passwordOf(secretArn: string, role: string): Promise<string> {
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
  let value: { username?: unknown; password?: unknown };
  try {
    value = JSON.parse(out.SecretString ?? '') as typeof value;
  } catch {
    throw new Error(`secret ${secretArn} is not JSON (username, password)`);
  }
  if (value.username !== role || typeof value.password !== 'string') {
    throw new Error(
      `secret ${secretArn} must hold the username ${JSON.stringify(role)} and a password, got username: ${JSON.stringify(value.username)}`,
    );
  }
  return value.password;
}
