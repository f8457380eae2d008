import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';

/**
 * Left out of every bundle: the AWS SDK v3, which the Node.js runtime ships, and the parts of
 * `pg` that load only on demand and that no function uses: its native client (`pg.native`,
 * which would need pg-native) and pgpass (read only when a connection has no password; ours
 * always has one, from the database secret).
 */
export const BUNDLE_EXTERNALS = ['@aws-sdk/*', 'pg-native', './native', 'pgpass'];

/**
 * The Amazon certificate authorities (RDS's among them) that the Lambda Node.js runtime
 * carries but does not load since Node.js 20: set on every function that reaches the
 * database (it has DB_SECRET_ARN), so TLS to RDS verifies without a bundled CA list.
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-nodejs.html
 */
export const RUNTIME_CA_CERTS = '/var/runtime/ca-cert.pem';

/** Where function code lives: `lambda/<name>/handler.ts`. */
export const LAMBDA_ROOT = path.join(__dirname, '..', '..', 'lambda');

export interface NodeFunctionProps extends Omit<
  nodejs.NodejsFunctionProps,
  'entry' | 'runtime' | 'architecture' | 'role'
> {
  /** The folder under `lambda/` whose `handler.ts` exports `handler`. */
  readonly functionDir: string;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * A NodejsFunction with this project's defaults: the latest Node.js runtime, ARM64, X-Ray
 * tracing, its own log group with retention, source maps, the AWS SDK left external (the
 * runtime provides it), and a role with no AWS managed policies: logs go only to its own
 * log group.
 */
export class NodeFunction extends nodejs.NodejsFunction {
  /** The folder under `lambda/` the code comes from (the rehearsal bundles it again). */
  readonly functionDir: string;

  constructor(scope: Construct, id: string, props: NodeFunctionProps) {
    const { functionDir, logRetention, bundling, environment, ...rest } = props;
    const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
      retention: logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(scope, `${id}Role`, {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs ${functionDir}`,
    });
    super(scope, id, {
      timeout: Duration.seconds(30),
      memorySize: 256,
      ...rest,
      entry: path.join(LAMBDA_ROOT, functionDir, 'handler.ts'),
      handler: 'handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      tracing: lambda.Tracing.ACTIVE,
      logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      role,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_SERVICE_NAME: functionDir,
        ...(environment?.DB_SECRET_ARN !== undefined
          ? { NODE_EXTRA_CA_CERTS: RUNTIME_CA_CERTS }
          : {}),
        ...environment,
      },
      bundling: {
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        target: 'node24',
        externalModules: BUNDLE_EXTERNALS,
        logLevel: nodejs.LogLevel.ERROR,
        ...bundling,
      },
    });
    this.functionDir = functionDir;

    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [logGroup.logGroupArn],
      }),
    );
    if (props.vpc !== undefined) {
      // Lambda creates and removes the function's network interfaces with these actions,
      // which support no resource-level permissions.
      // https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
    }
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray PutTraceSegments/PutTelemetryRecords and the Lambda VPC network-interface ' +
        'actions support no resource-level permissions. ' +
        'https://docs.aws.amazon.com/xray/latest/devguide/security_iam_id-based-policy-examples.html ' +
        'https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html#configuration-vpc-permissions',
    });
  }

  /**
   * Lets the code read one secret's value: GetSecretValue, which is all Powertools' getSecret
   * calls, and the secret's key when a customer managed key encrypts it. (`grantRead` also
   * allows DescribeSecret, which no function here calls.)
   * https://docs.aws.amazon.com/secretsmanager/latest/userguide/auth-and-access_examples.html
   */
  readSecret(secret: secretsmanager.ISecret): void {
    this.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['secretsmanager:GetSecretValue'],
        resources: [secret.secretArn],
      }),
    );
    secret.encryptionKey?.grantDecrypt(this);
  }
}
