import { Duration, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { BufferName } from '../../lambda/shared/contracts';
import { type DatabaseEngine, demoDatabaseName } from '../engines';
import { NodeFunction } from './node-function';

/** SQS keeps a message at most 14 days. */
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
export const MAX_RETENTION = Duration.days(14);

export interface WriteBufferProps {
  /** Which buffer this is; picks the message contract and the effect. */
  readonly bufferName: BufferName;
  /** The VPC the consumer runs in, to reach the database. */
  readonly vpc: ec2.IVpc;
  /** The consumer's subnets. */
  readonly vpcSubnets: ec2.SubnetSelection;
  /** Security groups that let the consumer reach the database. */
  readonly securityGroups: ec2.ISecurityGroup[];
  /** The database credentials (host, port, username, password). */
  readonly databaseSecret: secretsmanager.ISecret;
  /**
   * The database's engine: picks the consumer's code, which carries only its engine's driver.
   * @default 'postgres'
   */
  readonly engine?: DatabaseEngine;
  /**
   * The consumer's timeout.
   * @default Duration.seconds(30)
   */
  readonly consumerTimeout?: Duration;
  /**
   * Records per batch.
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * How long the mapping gathers records before invoking.
   * @default Duration.seconds(1)
   */
  readonly maxBatchingWindow?: Duration;
  /**
   * At most this many consumers run at once, so a drain after maintenance cannot stampede
   * the new database. 2-1000.
   * https://docs.aws.amazon.com/lambda/latest/api/API_ScalingConfig.html
   * @default 2
   */
  readonly maxConcurrency?: number;
  /**
   * Receives before a message moves to the DLQ. At least 5, so transient failures (a
   * switchover, throttling) never send a good message there.
   * @default 5
   */
  readonly maxReceiveCount?: number;
}

/**
 * One buffered write type: a standard SQS queue with a DLQ, and a consumer that applies each
 * message's effect idempotently and reports failures record by record.
 *
 * The upgrade pauses the consumer by disabling `eventSourceMapping` while the database
 * switches over; messages wait in the queue (up to 14 days) and drain afterwards. Its alarms
 * (a message in the DLQ, a stalled drain) are on the upgrade's dashboard, which watches
 * adopted buffers the same way.
 */
export class WriteBuffer extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly consumer: NodeFunction;
  /** The consumer's event source mapping; `eventSourceMappingId` is its UUID. */
  readonly eventSource: sources.SqsEventSource;

  constructor(scope: Construct, id: string, props: WriteBufferProps) {
    super(scope, id);
    const consumerTimeout = props.consumerTimeout ?? Duration.seconds(30);
    const batchingWindow = props.maxBatchingWindow ?? Duration.seconds(1);
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    const maxConcurrency = props.maxConcurrency ?? 2;
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 5 || maxReceiveCount > 1000) {
      throw new Error(`maxReceiveCount must be a whole number 5-1000, got: ${maxReceiveCount}`);
    }
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 2 || maxConcurrency > 1000) {
      throw new Error(`maxConcurrency must be a whole number 2-1000, got: ${maxConcurrency}`);
    }

    // A standard queue measures expiry from the original enqueue time, so the DLQ keeps the
    // longest retention SQS allows (no shorter than the source's) or messages could expire
    // on arrival.
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/setting-up-dead-letter-queue-retention.html
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      retentionPeriod: MAX_RETENTION,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      retentionPeriod: MAX_RETENTION,
      // SSE-SQS: producers need only sqs:SendMessage, no KMS grant.
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // At least six times the consumer timeout, so a message is not redelivered while a
      // throttled or retried invocation still holds it; plus the batching window, during
      // which received records already count against visibility.
      // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html#events-sqs-queueconfig
      visibilityTimeout: Duration.seconds(
        6 * consumerTimeout.toSeconds() + batchingWindow.toSeconds(),
      ),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
    });

    const dbName = demoDatabaseName(props.engine ?? 'postgres');
    this.consumer = new NodeFunction(this, 'Consumer', {
      functionDir: CONSUMER_DIRS[props.engine ?? 'postgres'],
      description: `Applies buffered ${props.bufferName} writes to the platform database`,
      timeout: consumerTimeout,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups,
      environment: {
        BUFFER_NAME: props.bufferName,
        DB_SECRET_ARN: props.databaseSecret.secretArn,
        POWERTOOLS_SERVICE_NAME: `${props.bufferName}-consumer`,
        ...(dbName === undefined ? {} : { DB_NAME: dbName }),
      },
    });
    this.consumer.readSecret(props.databaseSecret);

    this.eventSource = new sources.SqsEventSource(this.queue, {
      batchSize: props.batchSize ?? 10,
      maxBatchingWindow: batchingWindow,
      reportBatchItemFailures: true,
      maxConcurrency,
    });
    this.consumer.addEventSource(this.eventSource);

    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is the dead-letter queue of the buffer; it needs none of its own.',
    });
  }
}

/**
 * The consumer's code per engine. MySQL's (RDS for MySQL, Aurora MySQL) is a function of its
 * own with the same environment (lambda/buffer-consumer-mysql/handler.ts), so each bundle
 * carries only its engine's driver.
 */
export const CONSUMER_DIRS: Record<DatabaseEngine, string> = {
  postgres: 'buffer-consumer',
  'aurora-postgresql': 'buffer-consumer',
  mysql: 'buffer-consumer-mysql',
  'aurora-mysql': 'buffer-consumer-mysql',
};
