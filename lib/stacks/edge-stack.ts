import { Annotations, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { type AppConfig, reservation } from '../config';
import { CaptureFirewall, loadBalancerArnOf } from '../constructs/capture-firewall';
import { DemoLoadBalancer } from '../constructs/demo-load-balancer';
import { MaintenanceEdge } from '../constructs/maintenance-edge';
import { type PlatformSource, queuesOf } from '../platform';

/** The export that carries the listener's ARN to the upgrade stack. */
export const LISTENER_EXPORT = 'QuietUpgrade-ListenerArn';

/** The maintenance toggle's fixed name: the upgrade stack calls it by name. */
export const TOGGLE_FUNCTION_NAME = 'QuietUpgrade-MaintenanceToggle';

export interface EdgeStackProps extends StackProps {
  /** The validated app config. */
  readonly config: AppConfig;
  /** The platform: its VPC (for the demo load balancer), queues and existing listener. */
  readonly platform: PlatformSource;
}

/**
 * The front door and its maintenance mode: the demo ALB (or a real platform's listener),
 * the capture endpoints, the maintenance toggle the upgrade calls, and the rate limits on the
 * capture paths.
 */
export class EdgeStack extends Stack {
  readonly maintenance: MaintenanceEdge;
  readonly firewall: CaptureFirewall;
  readonly demo?: DemoLoadBalancer;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { edge, operatorBypass } = props.config;
    const platform = props.platform(this);

    let listenerArn: string;
    let appTargetGroupArn: string;
    // The load balancer that gets this app's web ACL; undefined when it keeps its own.
    let firewalled: string | undefined;
    if (platform.listener !== undefined) {
      ({ listenerArn, appTargetGroupArn } = platform.listener);
      if (edge.waf.associateAdoptedLoadBalancer) firewalled = loadBalancerArnOf(listenerArn);
    } else {
      this.demo = new DemoLoadBalancer(this, 'Demo', {
        vpc: platform.network.vpc,
        certificateArn: edge.certificateArn || undefined,
      });
      listenerArn = this.demo.listener.listenerArn;
      appTargetGroupArn = this.demo.appTargetGroup.targetGroupArn;
      firewalled = this.demo.loadBalancer.loadBalancerArn;
      new CfnOutput(this, 'LoadBalancerDnsName', {
        value: this.demo.loadBalancer.loadBalancerDnsName,
      });
    }

    this.maintenance = new MaintenanceEdge(this, 'Maintenance', {
      listenerArn,
      appTargetGroupArn,
      queues: queuesOf(platform),
      capturePaths: edge.capturePaths,
      firstPriority: edge.maintenanceRulePriority,
      bypassHeaderName: operatorBypass.headerName,
      bypassSourceCidrs: operatorBypass.sourceCidrs,
      expectedDuration: Duration.minutes(edge.expectedMaintenanceMinutes),
      toggleFunctionName: TOGGLE_FUNCTION_NAME,
      captureReservedConcurrency: reservation(edge.reservedConcurrency.capture),
      toggleReservedConcurrency: reservation(edge.reservedConcurrency.maintenanceToggle),
    });

    this.firewall = new CaptureFirewall(this, 'CaptureFirewall', {
      capturePaths: edge.capturePaths,
      limits: edge.waf,
      loadBalancerArn: firewalled,
    });
    new CfnOutput(this, 'CaptureRateLimitsRuleGroupArn', {
      value: this.firewall.ruleGroup.attrArn,
      description: "The capture rate limits; reference it from the load balancer's own web ACL",
    });
    if (this.firewall.webAcl !== undefined) {
      new CfnOutput(this, 'WebAclArn', { value: this.firewall.webAcl.attrArn });
    } else {
      Annotations.of(this.firewall).addWarningV2(
        'quiet-upgrade:captureRateLimitsNotOnLoadBalancer',
        'The capture rate limits are not on the adopted load balancer: add the rule group ' +
          '(output CaptureRateLimitsRuleGroupArn) to its web ACL, or set ' +
          'edge.waf.associateAdoptedLoadBalancer to true if it has none. ' +
          'See docs/abuse-controls.md.',
      );
    }

    // Exported by name: the upgrade stack's policy names the listener's rules from it.
    new CfnOutput(this, 'ListenerArn', { value: listenerArn, exportName: LISTENER_EXPORT });
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
