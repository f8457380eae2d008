import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { BUFFER_NAMES, type BufferName } from '../../lambda/shared/contracts';
import type { AppConfig } from '../config';
import { NotificationTopic } from '../constructs/notification-topic';
import { SUBNETS } from '../constructs/platform-network';
import { WriteBuffer } from '../constructs/write-buffer';

export interface BuffersStackProps extends StackProps {
  /** The validated app config. */
  readonly config: AppConfig;
  /** The platform VPC. */
  readonly vpc: ec2.IVpc;
  /** Lets the consumers reach the database. */
  readonly databaseClients: ec2.ISecurityGroup;
  /** The database credentials. */
  readonly databaseSecret: secretsmanager.ISecret;
}

/**
 * The write buffers: one queue, DLQ and throttled consumer per write type that can wait,
 * and the notification topic their alarms (and the upgrade) report to.
 */
export class BuffersStack extends Stack {
  readonly buffers: Record<BufferName, WriteBuffer>;
  readonly notifications: NotificationTopic;

  constructor(scope: Construct, id: string, props: BuffersStackProps) {
    super(scope, id, props);
    this.notifications = new NotificationTopic(this, 'Notifications', {
      email: props.config.notificationEmail,
    });

    const buffers: Partial<Record<BufferName, WriteBuffer>> = {};
    for (const name of BUFFER_NAMES) {
      const buffer = new WriteBuffer(this, pascal(name), {
        bufferName: name,
        vpc: props.vpc,
        vpcSubnets: { subnetGroupName: SUBNETS.app },
        securityGroups: [props.databaseClients],
        databaseSecret: props.databaseSecret,
        alarmTopic: this.notifications.topic,
      });
      buffers[name] = buffer;
      // What the upgrade state machine pauses, resumes and measures.
      new CfnOutput(this, `${pascal(name)}QueueUrl`, { value: buffer.queue.queueUrl });
      new CfnOutput(this, `${pascal(name)}MappingId`, {
        value: buffer.eventSource.eventSourceMappingId,
      });
    }
    this.buffers = buffers as Record<BufferName, WriteBuffer>;
    new CfnOutput(this, 'NotificationTopicArn', { value: this.notifications.topic.topicArn });
  }

  /** The queues, by buffer name. */
  queues(): Record<BufferName, sqs.IQueue> {
    const b = this.buffers;
    return {
      sends: b.sends.queue,
      'opt-ins': b['opt-ins'].queue,
      'sign-ups': b['sign-ups'].queue,
      unsubscribes: b.unsubscribes.queue,
      tracking: b.tracking.queue,
    };
  }
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());
}
