import { CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { BufferName } from '../../lambda/shared/contracts';
import type { AppConfig } from '../config';
import { DemoLoadBalancer } from '../constructs/demo-load-balancer';
import { MaintenanceEdge } from '../constructs/maintenance-edge';

/** The maintenance toggle's fixed name: the upgrade stack calls it by name. */
export const TOGGLE_FUNCTION_NAME = 'QuietUpgrade-MaintenanceToggle';

export interface EdgeStackProps extends StackProps {
  /** The validated app config. */
  readonly config: AppConfig;
  /** The platform VPC (for the demo load balancer). */
  readonly vpc: ec2.IVpc;
  /** The buffers' queues. */
  readonly queues: Record<BufferName, sqs.IQueue>;
}

/**
 * The front door and its maintenance mode: the demo ALB (or a real platform's listener),
 * the capture endpoints, and the maintenance toggle the upgrade calls.
 */
export class EdgeStack extends Stack {
  readonly maintenance: MaintenanceEdge;
  readonly demo?: DemoLoadBalancer;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { edge, operatorBypass } = props.config;

    let listenerArn: string;
    let appTargetGroupArn: string;
    if (edge.existingListener !== undefined) {
      ({ listenerArn, appTargetGroupArn } = edge.existingListener);
    } else {
      this.demo = new DemoLoadBalancer(this, 'Demo', {
        vpc: props.vpc,
        certificateArn: edge.certificateArn || undefined,
      });
      listenerArn = this.demo.listener.listenerArn;
      appTargetGroupArn = this.demo.appTargetGroup.targetGroupArn;
      new CfnOutput(this, 'LoadBalancerDnsName', {
        value: this.demo.loadBalancer.loadBalancerDnsName,
      });
    }

    this.maintenance = new MaintenanceEdge(this, 'Maintenance', {
      listenerArn,
      appTargetGroupArn,
      queues: props.queues,
      capturePaths: edge.capturePaths,
      firstPriority: edge.maintenanceRulePriority,
      bypassHeaderName: operatorBypass.headerName,
      bypassSourceCidrs: operatorBypass.sourceCidrs,
      expectedDuration: Duration.minutes(edge.expectedMaintenanceMinutes),
      toggleFunctionName: TOGGLE_FUNCTION_NAME,
    });

    new CfnOutput(this, 'ListenerArn', { value: listenerArn });
    new CfnOutput(this, 'MaintenanceToggleFunction', {
      value: this.maintenance.toggleFunction.functionName,
      description: 'aws lambda invoke --payload \'{"action":"status"}\' (or on / off)',
    });
    new CfnOutput(this, 'LinkSigningKeySecretArn', {
      value: this.maintenance.linkSigningKey.secretArn,
    });
    new CfnOutput(this, 'BypassHeaderSecretArn', {
      value: this.maintenance.bypassSecret.secretArn,
    });
  }
}
