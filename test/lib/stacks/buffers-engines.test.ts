import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Tags } from 'aws-cdk-lib';
import { type AppConfig, CONFIG_CONTEXT_KEY, parseConfig } from '../../../lib/config';
import { LAMBDA_ROOT } from '../../../lib/constructs/node-function';
import { ENGINE_SPECS, type DatabaseEngine } from '../../../lib/engines';
import { BuffersStack } from '../../../lib/stacks/buffers-stack';
import { DatabaseStack } from '../../../lib/stacks/database-stack';
import { grantStatements } from '../../../lambda/database-roles/roles-mysql';
import { BUFFER_NAMES } from '../../../lambda/shared/contracts';
import cdkJson from '../../../cdk.json';
import {
  defaultRawConfig,
  demoStacks,
  nagViolations,
  synthApp,
  templateOf,
} from '../../helpers/app';

// parseConfig refuses engines the runbook does not speak yet, so these tests build the
// database and buffers stacks alone, from the shipped (postgres) config with the engine and
// its default versions swapped in.
type Resource = { Type: string; Properties: Record<string, unknown> };
type Resources = Record<string, Resource>;

function build(engine: DatabaseEngine, { bundle = false } = {}) {
  const shipped = parseConfig(defaultRawConfig());
  const config: AppConfig = {
    ...shipped,
    database: { ...shipped.database, engine, ...ENGINE_SPECS[engine].defaults },
  };
  const app = new App({
    context: {
      ...cdkJson.context,
      [CONFIG_CONTEXT_KEY]: defaultRawConfig(),
      'aws:cdk:bundling-stacks': bundle ? ['QuietUpgradeBuffers'] : [],
    },
    builtinCloudFormationValidation: false,
  });
  // As lib/app.ts builds it, so the postgres stack can be compared with the app's.
  Tags.of(app).add('app', 'quiet-upgrade');
  const env = { region: shipped.env.region };
  const database = new DatabaseStack(app, 'QuietUpgradeDatabase', { env, config });
  const buffers = new BuffersStack(app, 'QuietUpgradeBuffers', {
    env,
    description: 'SQS write buffers with idempotent, throttled consumers',
    vpc: database.vpc,
    databaseClients: database.databaseClients,
    databaseSecret: database.database.secret,
    databaseInstance: database.database.instance,
    engine,
  });
  return { app, database, buffers };
}

const resourcesOf = (stack: BuffersStack | DatabaseStack) =>
  templateOf(stack).toJSON().Resources as Resources;
const pascal = (name: string) =>
  name.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
const envOf = (fn: Resource | undefined) =>
  (fn?.Properties.Environment as { Variables: Record<string, unknown> }).Variables;

/** The resource whose logical id starts with `prefix`, of `type`. */
function find(resources: Resources, type: string, prefix: string): Resource {
  const found = Object.entries(resources).find(
    ([id, r]) => r.Type === type && id.startsWith(prefix),
  );
  if (found === undefined) throw new Error(`no ${type} ${prefix}*`);
  return found[1];
}

/**
 * The port RDS gives a database created without one: 3306 for MySQL and Aurora MySQL, 5432 for
 * PostgreSQL and Aurora PostgreSQL (Port, in CreateDBInstance and CreateDBCluster).
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html
 */
const DEFAULT_PORTS: Record<string, number> = {
  postgres: 5432,
  'aurora-postgresql': 5432,
  mysql: 3306,
  'aurora-mysql': 3306,
};

/**
 * The ports the database stack opens for the buffer consumers (databaseClients). The rule
 * names the database's endpoint port; it is resolved here to the port the template sets, or
 * RDS's default for the engine.
 */
function consumerIngress(database: DatabaseStack): Record<string, unknown>[] {
  const resources = resourcesOf(database);
  const port = (value: unknown) => {
    const att = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    if (att === undefined || att[1] !== 'Endpoint.Port') return value;
    const db = resources[att[0]];
    return db?.Properties.Port ?? DEFAULT_PORTS[db?.Properties.Engine as string];
  };
  return Object.values(resources)
    .filter(
      (r) =>
        r.Type === 'AWS::EC2::SecurityGroupIngress' &&
        JSON.stringify(r.Properties.SourceSecurityGroupId).includes('DatabaseClients') &&
        r.Properties.Description === 'buffer consumers',
    )
    .map((r) => ({
      ...r.Properties,
      FromPort: port(r.Properties.FromPort),
      ToPort: port(r.Properties.ToPort),
    }));
}

/** The Version the roles resource must carry: a hash of exactly these files under lambda/. */
function versionOf(files: string[]): string {
  return createHash('sha256')
    .update(files.map((f) => readFileSync(join(LAMBDA_ROOT, f))).join('\n'))
    .digest('hex')
    .slice(0, 16);
}

const CASES = [
  {
    engine: 'postgres',
    consumerDir: 'buffer-consumer',
    dbEngine: undefined,
    dbName: undefined,
    port: 5432,
    rolesDir: 'database-roles',
    sources: [
      'database-roles/roles.ts',
      'database-roles/schema.sql',
      'database-roles/handler.ts',
      'database-roles/request.ts',
    ],
  },
  {
    engine: 'mysql',
    consumerDir: 'buffer-consumer-mysql',
    dbEngine: 'mysql',
    dbName: 'platform',
    port: 3306,
    rolesDir: 'database-roles-mysql',
    sources: [
      'database-roles/roles.ts',
      'database-roles/roles-mysql.ts',
      'database-roles/request.ts',
      'database-roles-mysql/schema-mysql.sql',
      'database-roles-mysql/handler.ts',
    ],
  },
  {
    engine: 'aurora-postgresql',
    consumerDir: 'buffer-consumer',
    dbEngine: undefined,
    dbName: undefined,
    port: 5432,
    rolesDir: 'database-roles',
    sources: [
      'database-roles/roles.ts',
      'database-roles/schema.sql',
      'database-roles/handler.ts',
      'database-roles/request.ts',
    ],
  },
  {
    engine: 'aurora-mysql',
    consumerDir: 'buffer-consumer-mysql',
    dbEngine: 'mysql',
    dbName: 'platform',
    port: 3306,
    rolesDir: 'database-roles-mysql',
    sources: [
      'database-roles/roles.ts',
      'database-roles/roles-mysql.ts',
      'database-roles/request.ts',
      'database-roles-mysql/schema-mysql.sql',
      'database-roles-mysql/handler.ts',
    ],
  },
] as const;

describe.each(CASES)('BuffersStack for $engine', (c) => {
  const { database, buffers } = build(c.engine);
  const resources = resourcesOf(buffers);
  const roles = Object.values(resources).find((r) => r.Type === 'Custom::ConsumerRoles');
  const rolesFn = find(resources, 'AWS::Lambda::Function', 'ConsumerRolesFunction');

  it(`runs every consumer from lambda/${c.consumerDir}, with the same environment`, () => {
    for (const name of BUFFER_NAMES) {
      expect(buffers.buffers[name].consumer.functionDir).toBe(c.consumerDir);
      // What the template shows of it: the role NodeFunction names after the code.
      const role = find(resources, 'AWS::IAM::Role', `${pascal(name)}ConsumerRole`);
      expect(role.Properties.Description).toBe(`Runs ${c.consumerDir}`);
      const env = envOf(find(resources, 'AWS::Lambda::Function', `${pascal(name)}Consumer`));
      expect(Object.keys(env).sort()).toEqual(
        [
          'BUFFER_NAME',
          'DB_SECRET_ARN',
          'NODE_EXTRA_CA_CERTS',
          'NODE_OPTIONS',
          'POWERTOOLS_SERVICE_NAME',
          // A MySQL server has no default database: the functions name the platform's.
          ...(c.dbName === undefined ? [] : ['DB_NAME']),
        ].sort(),
      );
      expect(env.BUFFER_NAME).toBe(name);
      expect(env.DB_NAME).toBe(c.dbName);
    }
  });

  it(`tells the roles function DB_ENGINE=${c.dbEngine ?? '(unset: postgres)'}`, () => {
    expect(envOf(rolesFn).DB_ENGINE).toBe(c.dbEngine);
    expect(envOf(rolesFn).DB_NAME).toBe(c.dbName);
  });

  it('creates the database the functions connect to', () => {
    const db = Object.values(resourcesOf(database)).find((r) =>
      ['AWS::RDS::DBInstance', 'AWS::RDS::DBCluster'].includes(r.Type),
    );
    expect(db?.Properties.DBName ?? db?.Properties.DatabaseName).toBe(c.dbName);
  });

  it('re-runs the roles resource when a file its SQL comes from changes', () => {
    expect(roles?.Properties.Version).toBe(versionOf([...c.sources]));
  });

  it(`lets the consumers reach the database on port ${c.port} only`, () => {
    expect(consumerIngress(database)).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: c.port, ToPort: c.port }),
    ]);
    // The consumers run in the group the rule admits.
    const consumer = find(resources, 'AWS::Lambda::Function', 'SendsConsumer');
    expect(JSON.stringify(consumer.Properties.VpcConfig)).toContain('DatabaseClients');
  });

  it('gives each consumer a user name and a generated password the roles function accepts', () => {
    const grants = roles?.Properties.Roles as { role: string; table: string }[];
    expect(grants).toHaveLength(BUFFER_NAMES.length);
    for (const grant of grants) {
      const secret = Object.values(resources).find(
        (r) =>
          r.Type === 'AWS::SecretsManager::Secret' &&
          JSON.stringify(r.Properties).includes(`"username\\":\\"${grant.role}\\"`),
      );
      const generate = secret?.Properties.GenerateSecretString as {
        ExcludeCharacters: string;
        PasswordLength: number;
      };
      // Every character Secrets Manager may generate (printable ASCII, no space by default)
      // but the excluded ones, repeated to the generated length.
      const allowed = [...Array(0x7f - 0x21).keys()]
        .map((i) => String.fromCharCode(0x21 + i))
        .filter((ch) => !generate.ExcludeCharacters.includes(ch))
        .join('');
      const password = allowed.repeat(2).slice(0, generate.PasswordLength);
      expect(password).toHaveLength(generate.PasswordLength);
      if (c.dbEngine === 'mysql') {
        expect(() => grantStatements({ ...grant, password }, 'mysql')).not.toThrow();
        expect(() =>
          grantStatements({ ...grant, password: allowed.slice(-generate.PasswordLength) }, 'mysql'),
        ).not.toThrow();
      }
    }
  });

  it('has no unacknowledged cdk-nag AwsSolutions findings', () => {
    expect(nagViolations(buffers)).toEqual([]);
  });
});

describe('BuffersStack for postgres, as before the engines', () => {
  // The app's template has exports for the other stacks too; its resources are these.
  it('has the resources the app builds from the shipped config', () => {
    const fromApp = resourcesOf(demoStacks(synthApp()).buffers);
    expect(resourcesOf(build('postgres').buffers)).toEqual(fromApp);
  });

  it('gives the roles function the environment it had, with no DB_ENGINE', () => {
    const resources = resourcesOf(build('postgres').buffers);
    const env = envOf(find(resources, 'AWS::Lambda::Function', 'ConsumerRolesFunction'));
    expect(Object.keys(env).sort()).toEqual([
      'DB_SECRET_ARN',
      'NODE_EXTRA_CA_CERTS',
      'NODE_OPTIONS',
      'POWERTOOLS_SERVICE_NAME',
    ]);
  });
});

describe.each([
  {
    engine: 'postgres',
    effect: 'ON CONFLICT',
    rolesDir: 'database-roles',
    schema: 'schema.sql',
    other: 'schema-mysql.sql',
  },
  {
    engine: 'mysql',
    effect: 'ON DUPLICATE KEY',
    rolesDir: 'database-roles-mysql',
    schema: 'schema-mysql.sql',
    other: 'schema.sql',
  },
] as const)('the $engine bundles', (c) => {
  const { app, buffers } = build(c.engine, { bundle: true });
  const assembly = app.synth();
  const resources = resourcesOf(buffers);
  const assetDir = (fn: Resource) =>
    join(
      assembly.directory,
      `asset.${(fn.Properties.Code as { S3Key: string }).S3Key.replace('.zip', '')}`,
    );

  it(`apply each message with ${c.effect}`, () => {
    const code = readFileSync(
      join(assetDir(find(resources, 'AWS::Lambda::Function', 'SendsConsumer')), 'index.js'),
      'utf8',
    );
    // Booleans, so a failure does not print the whole bundle.
    expect({
      'ON CONFLICT': code.includes('ON CONFLICT'),
      'ON DUPLICATE KEY': code.includes('ON DUPLICATE KEY'),
    }).toEqual({
      'ON CONFLICT': c.effect === 'ON CONFLICT',
      'ON DUPLICATE KEY': c.effect === 'ON DUPLICATE KEY',
    });
  });

  it(`put ${c.schema} beside the roles handler`, () => {
    const dir = assetDir(find(resources, 'AWS::Lambda::Function', 'ConsumerRolesFunction'));
    expect(readFileSync(join(dir, c.schema), 'utf8')).toBe(
      readFileSync(join(LAMBDA_ROOT, c.rolesDir, c.schema), 'utf8'),
    );
    expect(existsSync(join(dir, c.other))).toBe(false);
    // Each engine's roles function carries only its own driver.
    const code = readFileSync(join(dir, 'index.js'), 'utf8');
    expect({
      pg: code.includes('pg_roles'),
      mysql: code.includes('IDENTIFIED WITH'),
    }).toEqual({ pg: c.engine === 'postgres', mysql: c.engine === 'mysql' });
  });
});
