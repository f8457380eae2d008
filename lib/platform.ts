import { Annotations, Duration, Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { BUFFER_NAMES, type BufferName } from '../lambda/shared/contracts';
import type { AppConfig } from './config';

/** One write buffer as the upgrade sees it: what it pauses, measures and alarms on. */
export interface BufferRefs {
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  /** The consumer's event source mapping, which the upgrade disables and re-enables. */
  readonly eventSourceMappingId: string;
  readonly consumer: lambda.IFunction;
  /** The longest a consumer invocation runs; the pause waits this long for in-flight batches. */
  readonly consumerTimeout: Duration;
}

/**
 * The platform the upgrade works on, whether this app built it (demo) or adopted it. Stacks
 * ask for it with their own scope, so imported resources live in the stack that uses them.
 */
export interface PlatformRefs {
  /**
   * The database: an RDS DB instance, or for Aurora a DB cluster, whose identifier
   * `instanceIdentifier` holds and whose DB cluster parameter groups the group names are.
   */
  readonly database: {
    readonly instanceIdentifier: string;
    /** The master secret; for Aurora its host is the cluster (writer) endpoint. */
    readonly secret: secretsmanager.ISecret;
    /** The parameter group blue uses now (Aurora: the DB cluster parameter group). */
    readonly parameterGroupName: string;
    /**
     * The group green gets (Aurora: its DB cluster parameter group); undefined when no target
     * version is configured.
     */
    readonly targetParameterGroupName?: string;
  };
  readonly network: {
    readonly vpc: ec2.IVpc;
    readonly subnets: ec2.SubnetSelection;
    /** A security group the database accepts connections from. */
    readonly databaseClients: ec2.ISecurityGroup;
  };
  readonly buffers: Record<BufferName, BufferRefs>;
  /** An existing listener and app target group; undefined when the demo ALB is built. */
  readonly listener?: { readonly listenerArn: string; readonly appTargetGroupArn: string };
}

/** Returns the platform's resources as seen from `scope`'s stack. */
export type PlatformSource = (scope: Construct) => PlatformRefs;

/**
 * Adopts an existing platform (`platform: "existing"`): every resource is imported by id or
 * ARN, nothing is created, and the imports need no AWS call, so synth stays offline.
 */
export function existingPlatform(
  config: AppConfig,
  existing: NonNullable<AppConfig['existing']>,
): PlatformSource {
  return (parent) => {
    const scope = new Construct(parent, 'ExistingPlatform');
    // Imports by id work offline; CDK warns because it cannot read their route tables or the
    // VPC's zones, which nothing here needs.
    Annotations.of(scope).acknowledgeWarning(
      '@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones',
      'Only the VPC id is used; functions get their subnets explicitly.',
    );
    Annotations.of(scope).acknowledgeWarning(
      '@aws-cdk/aws-ec2:noSubnetRouteTableId',
      "Only the subnet ids are used, for the functions' VPC configuration.",
    );
    const { database, network, listener } = existing;
    // Only the id matters: functions get their subnets and group explicitly, and nothing here
    // reads the VPC's own subnets or zones (the region's, as a deploy-time list).
    const vpc = ec2.Vpc.fromVpcAttributes(scope, 'Vpc', {
      vpcId: network.vpcId,
      availabilityZones: Fn.getAzs(),
    });
    const buffers = perBuffer((name): BufferRefs => {
      const b = existing.buffers[name];
      return {
        queue: sqs.Queue.fromQueueArn(scope, `${name}Queue`, b.queueArn),
        deadLetterQueue: sqs.Queue.fromQueueArn(scope, `${name}Dlq`, b.deadLetterQueueArn),
        eventSourceMappingId: b.eventSourceMappingId,
        consumer: lambda.Function.fromFunctionName(
          scope,
          `${name}Consumer`,
          b.consumerFunctionName,
        ),
        consumerTimeout: Duration.seconds(existing.consumerTimeoutSeconds),
      };
    });
    return {
      database: {
        instanceIdentifier: config.database.instanceIdentifier,
        secret: secretsmanager.Secret.fromSecretCompleteArn(scope, 'Secret', database.secretArn),
        parameterGroupName: database.parameterGroupName,
        targetParameterGroupName:
          config.database.targetEngineVersion === undefined
            ? undefined
            : (database.targetParameterGroupName ?? database.parameterGroupName),
      },
      network: {
        vpc,
        subnets: {
          subnets: network.subnetIds.map((id, i) =>
            ec2.Subnet.fromSubnetId(scope, `Subnet${i}`, id),
          ),
        },
        databaseClients: ec2.SecurityGroup.fromSecurityGroupId(
          scope,
          'DatabaseClients',
          network.databaseClientSecurityGroupId,
          // Adding rules to a group this app does not own would be drift in someone else's stack.
          { mutable: false },
        ),
      },
      buffers,
      listener,
    };
  };
}

/** Builds a record with one entry per buffer. */
export function perBuffer<T>(entry: (name: BufferName) => T): Record<BufferName, T> {
  return Object.fromEntries(BUFFER_NAMES.map((name) => [name, entry(name)])) as Record<
    BufferName,
    T
  >;
}

/** The buffers' queues, by buffer name. */
export function queuesOf(platform: PlatformRefs): Record<BufferName, sqs.IQueue> {
  return perBuffer((name) => platform.buffers[name].queue);
}
