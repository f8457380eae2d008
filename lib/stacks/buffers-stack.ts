import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { BUFFER_NAMES, type BufferName } from '../../lambda/shared/contracts';
import { ConsumerRoles } from '../constructs/consumer-roles';
import { SUBNETS } from '../constructs/platform-network';
import { WriteBuffer } from '../constructs/write-buffer';
import type { DatabaseEngine } from '../engines';

export interface BuffersStackProps extends StackProps {
  /** The platform VPC. */
  readonly vpc: ec2.IVpc;
  /** Lets the consumers reach the database. */
  readonly databaseClients: ec2.ISecurityGroup;
  /** The master credentials: only the function that creates the consumers' roles reads them. */
  readonly databaseSecret: secretsmanager.ISecret;
  /** The database (instance or Aurora cluster), whose connection fields each consumer's secret gets. */
  readonly databaseInstance: secretsmanager.ISecretAttachmentTarget;
  /** The database's engine (config `database.engine`): picks the consumers' and roles' SQL. */
  readonly engine: DatabaseEngine;
}

/**
 * The demo platform's write buffers: one queue, DLQ and throttled consumer per write type
 * that can wait. A platform adopted with `platform: "existing"` brings its own.
 */
export class BuffersStack extends Stack {
  readonly buffers: Record<BufferName, WriteBuffer>;

  constructor(scope: Construct, id: string, props: BuffersStackProps) {
    super(scope, id, props);
    // Each consumer logs in as its own role, allowed to insert into its own table only.
    const roles = new ConsumerRoles(this, 'ConsumerRoles', {
      buffers: BUFFER_NAMES,
      vpc: props.vpc,
      vpcSubnets: { subnetGroupName: SUBNETS.app },
      securityGroups: [props.databaseClients],
      masterSecret: props.databaseSecret,
      instance: props.databaseInstance,
      engine: props.engine,
    });
    const buffers: Partial<Record<BufferName, WriteBuffer>> = {};
    for (const name of BUFFER_NAMES) {
      const buffer = new WriteBuffer(this, pascal(name), {
        bufferName: name,
        vpc: props.vpc,
        vpcSubnets: { subnetGroupName: SUBNETS.app },
        securityGroups: [props.databaseClients],
        databaseSecret: roles.secrets[name],
        engine: props.engine,
      });
      // No message is consumed before the role exists (the mapping is the function's child).
      buffer.consumer.node.addDependency(roles.resource);
      buffers[name] = buffer;
      // What the upgrade state machine pauses, resumes and measures.
      new CfnOutput(this, `${pascal(name)}QueueUrl`, { value: buffer.queue.queueUrl });
      new CfnOutput(this, `${pascal(name)}MappingId`, {
        value: buffer.eventSource.eventSourceMappingId,
      });
    }
    this.buffers = buffers as Record<BufferName, WriteBuffer>;
  }
}

function pascal(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, _dash, c: string) => c.toUpperCase());
}
