import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CustomResource, Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { BUFFER_TABLES, consumerRole } from '../../lambda/database-roles/roles';
import { mysqlAccount } from '../../lambda/database-roles/roles-mysql';
import type { BufferName } from '../../lambda/shared/contracts';
import { type DatabaseEngine, demoDatabaseName } from '../engines';
import { acknowledgeWildcards } from '../nag';
import { LAMBDA_ROOT, NodeFunction } from './node-function';

export interface ConsumerRolesProps {
  readonly buffers: readonly BufferName[];
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly securityGroups: ec2.ISecurityGroup[];
  /** The master credentials: only the function that creates the roles reads them. */
  readonly masterSecret: secretsmanager.ISecret;
  /** The instance (or Aurora cluster) whose connection fields each consumer's secret gets. */
  readonly instance: secretsmanager.ISecretAttachmentTarget;
  /**
   * The database's engine: which SQL the roles function speaks.
   * @default 'postgres'
   */
  readonly engine?: DatabaseEngine;
}

/** The roles function for each engine: its code, its schema, and what its roles are made from. */
interface RolesDialect {
  readonly dbEngine: 'postgres' | 'mysql';
  /** The function's folder under lambda/: each engine's carries only its own driver. */
  readonly dir: string;
  /** The schema the handler reads from beside itself, from its folder. */
  readonly schema: string;
  /** What the roles are made from (under lambda/): a change to any re-runs the custom resource. */
  readonly sources: readonly string[];
}

const POSTGRES: RolesDialect = {
  dbEngine: 'postgres',
  dir: 'database-roles',
  schema: 'schema.sql',
  sources: ['roles.ts', 'schema.sql', 'handler.ts', 'request.ts'].map((f) => `database-roles/${f}`),
};
// roles.ts too: it names the users and their tables (consumerRole, BUFFER_TABLES).
const MYSQL: RolesDialect = {
  dbEngine: 'mysql',
  dir: 'database-roles-mysql',
  schema: 'schema-mysql.sql',
  sources: [
    'database-roles/roles.ts',
    'database-roles/roles-mysql.ts',
    'database-roles/request.ts',
    'database-roles-mysql/schema-mysql.sql',
    'database-roles-mysql/handler.ts',
  ],
};
const DIALECTS: Record<DatabaseEngine, RolesDialect> = {
  postgres: POSTGRES,
  'aurora-postgresql': POSTGRES,
  mysql: MYSQL,
  'aurora-mysql': MYSQL,
};

/**
 * The demo database's tables and one login role per buffer consumer, allowed to insert into
 * its own table and nothing else (lambda/database-roles/roles.ts), each with its own secret.
 * The secrets follow CDK's pattern for another user of an instance: a DatabaseSecret
 * attached to the instance, which adds its host and port.
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_rds-readme.html#rotating-credentials
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secrettargetattachment.html
 */
export class ConsumerRoles extends Construct {
  /** Each consumer's credentials, with the instance's connection fields. */
  readonly secrets: Record<BufferName, secretsmanager.ISecret>;
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: ConsumerRolesProps) {
    super(scope, id);
    const dialect = DIALECTS[props.engine ?? 'postgres'];
    const dbName = demoDatabaseName(props.engine ?? 'postgres');
    const secrets: Partial<Record<BufferName, secretsmanager.ISecret>> = {};
    for (const buffer of props.buffers) {
      // A MySQL user name has at most 32 characters: fail the synth, not the deployment.
      // https://dev.mysql.com/doc/refman/8.0/en/user-names.html
      if (dialect.dbEngine === 'mysql') mysqlAccount(consumerRole(buffer));
      // The generated password (30 characters of printable ASCII, without
      // DEFAULT_PASSWORD_EXCLUDE_CHARS) is what both roles.ts and roles-mysql.ts accept.
      const secret = new rds.DatabaseSecret(this, `${buffer}Secret`, {
        username: consumerRole(buffer),
        masterSecret: props.masterSecret,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'As for the master secret: a rotation during a blue/green deployment would change ' +
          'the role on blue only (logical replication carries no role changes), so green ' +
          'would switch over with a stale password. Rotate outside upgrade windows. ' +
          'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres',
      });
      secrets[buffer] = secret.attach(props.instance);
    }
    this.secrets = secrets as Record<BufferName, secretsmanager.ISecret>;

    const fn = new NodeFunction(this, 'Function', {
      functionDir: dialect.dir,
      description: 'Creates the demo tables and one database role per buffer consumer',
      timeout: Duration.minutes(2),
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      environment: {
        DB_SECRET_ARN: props.masterSecret.secretArn,
        // For the MySQL function: MySQL's statements, not MariaDB's (roles-mysql.ts).
        ...(dialect.dbEngine === 'postgres' ? {} : { DB_ENGINE: dialect.dbEngine }),
        ...(dbName === undefined ? {} : { DB_NAME: dbName }),
      },
      bundling: {
        // The handler reads the schema from beside itself.
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_input: string, output: string) => [
            `cp "${path.join(LAMBDA_ROOT, dialect.dir, dialect.schema)}" "${output}/${dialect.schema}"`,
          ],
        },
      },
    });
    fn.readSecret(props.masterSecret);
    for (const secret of Object.values(this.secrets)) fn.readSecret(secret);

    // The Provider framework answers CloudFormation from outside the VPC: the function in
    // the VPC has no internet route to the response URL. Its own role, instead of CDK's
    // default with an AWS managed policy, may write only to its own log group.
    const frameworkLogs = new logs.LogGroup(this, 'ProviderLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const frameworkRole = new iam.Role(this, 'ProviderRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Runs the CDK Provider framework for the consumer roles',
    });
    frameworkRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [frameworkLogs.logGroupArn],
      }),
    );
    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: fn,
      frameworkOnEventRole: frameworkRole,
      logGroup: frameworkLogs,
    });
    acknowledgeWildcards(
      frameworkRole,
      [`${fn.functionArn}:*`],
      'The CDK Provider framework grants itself the handler function and its versions; it ' +
        'invokes only that function.',
    );
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::ConsumerRoles',
      properties: {
        Roles: props.buffers.map((b) => ({
          role: consumerRole(b),
          table: BUFFER_TABLES[b],
          secretArn: this.secrets[b].secretArn,
        })),
        Schema: 'demo',
        Version: createHash('sha256')
          .update(dialect.sources.map((f) => readFileSync(path.join(LAMBDA_ROOT, f))).join('\n'))
          .digest('hex')
          .slice(0, 16),
      },
    });
  }
}
