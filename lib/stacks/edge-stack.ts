import { Annotations, CfnOutput, Duration, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import { type AppConfig, reservation } from '../config';
import { CaptureFirewall, loadBalancerArnOf } from '../constructs/capture-firewall';
import { DemoLoadBalancer } from '../constructs/demo-load-balancer';
import { MaintenanceEdge } from '../constructs/maintenance-edge';
import { type PlatformSource, queuesOf } from '../platform';

/** The export that carries the listener's ARN to the upgrade stack. */
export const LISTENER_EXPORT = 'QuietUpgrade-ListenerArn';

/** The quiet gate's alarm, by a fixed name: the runbook reads its state by name. */
export const TRAFFIC_ALARM_NAME = 'QuietUpgrade-Traffic';
/** Minutes the quiet gate's alarm looks back: any one busier than the threshold is busy. */
export const TRAFFIC_ALARM_MINUTES = 3;

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
  /** The quiet gate's alarm on the load balancer's requests, when the gate is configured. */
  readonly trafficAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { edge, operatorBypass } = props.config;
    const platform = props.platform(this);

    let listenerArn: string;
    let appTargetGroupArn: string;
    /** The LoadBalancer dimension of its metrics: app/NAME/ID. */
    let loadBalancerFullName: string;
    // The load balancer that gets this app's web ACL; undefined when it keeps its own.
    let firewalled: string | undefined;
    if (platform.listener !== undefined) {
      ({ listenerArn, appTargetGroupArn } = platform.listener);
      if (edge.waf.associateAdoptedLoadBalancer) firewalled = loadBalancerArnOf(listenerArn);
      // arn:…:listener/app/NAME/LB-ID/LISTENER-ID → app/NAME/LB-ID
      const parts = Fn.split('/', Fn.select(1, Fn.split(':listener/', listenerArn)));
      loadBalancerFullName = Fn.join(
        '/',
        [0, 1, 2].map((i) => Fn.select(i, parts)),
      );
    } else {
      this.demo = new DemoLoadBalancer(this, 'Demo', {
        vpc: platform.network.vpc,
        certificateArn: edge.certificateArn || undefined,
      });
      listenerArn = this.demo.listener.listenerArn;
      appTargetGroupArn = this.demo.appTargetGroup.targetGroupArn;
      firewalled = this.demo.loadBalancer.loadBalancerArn;
      loadBalancerFullName = this.demo.loadBalancer.loadBalancerFullName;
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

    const gate = props.config.upgrade.quietGate;
    if (gate !== undefined) {
      // The quiet gate's signal: ALARM while any of the last 3 minutes saw more requests than
      // the threshold, OK once none did. The load balancer reports RequestCount every 60 s
      // and nothing for a minute without requests, so a missing datapoint is a quiet minute
      // (notBreaching). The alarm notifies no one: the runbook reads its state.
      // https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
      // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation
      // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
      this.trafficAlarm = new cloudwatch.Alarm(this, 'TrafficAlarm', {
        alarmName: TRAFFIC_ALARM_NAME,
        alarmDescription:
          `Busy: over ${gate.requestsPerMinute} requests in one of the last ` +
          `${TRAFFIC_ALARM_MINUTES} minutes. The upgrade's quiet gate waits for OK.`,
        metric: new cloudwatch.Metric({
          namespace: 'AWS/ApplicationELB',
          metricName: 'RequestCount',
          dimensionsMap: { LoadBalancer: loadBalancerFullName },
          statistic: cloudwatch.Stats.SUM,
          period: Duration.minutes(1),
        }),
        threshold: gate.requestsPerMinute,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: TRAFFIC_ALARM_MINUTES,
        datapointsToAlarm: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
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
