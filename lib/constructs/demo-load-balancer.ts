import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { NodeFunction } from './node-function';

export interface DemoLoadBalancerProps {
  /** The VPC; the load balancer goes in its public subnets. */
  readonly vpc: ec2.IVpc;
  /**
   * An ACM certificate ARN: HTTPS on 443 (and HTTP redirected to it).
   * @default - HTTP on port 80 only
   */
  readonly certificateArn?: string;
}

/**
 * The demo platform's front door: an internet-facing ALB with access logs, one listener, and
 * a placeholder app behind it. A real platform brings its own listener and target group.
 */
export class DemoLoadBalancer extends Construct {
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly listener: elbv2.ApplicationListener;
  readonly appTargetGroup: elbv2.ApplicationTargetGroup;

  constructor(scope: Construct, id: string, props: DemoLoadBalancerProps) {
    super(scope, id);
    // ALB access logs support SSE-S3 only.
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
    const logs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This bucket receives the load balancer access logs; logging access to it would need yet another bucket.',
    });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      internetFacing: true,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      dropInvalidHeaderFields: true,
    });
    this.loadBalancer.logAccessLogs(logs, 'alb');
    Validations.of(this.loadBalancer).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: 'The public web entry point of the platform: it must accept HTTP(S) from anywhere.',
    });

    const app = new NodeFunction(this, 'DemoApp', {
      functionDir: 'demo-app',
      description: 'Placeholder for the platform web app behind the demo load balancer',
      timeout: Duration.seconds(5),
    });
    this.appTargetGroup = new elbv2.ApplicationTargetGroup(this, 'AppTargets', {
      targets: [new targets.LambdaTarget(app)],
    });

    if (props.certificateArn) {
      this.listener = this.loadBalancer.addListener('Https', {
        port: 443,
        certificates: [elbv2.ListenerCertificate.fromArn(props.certificateArn)],
        sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
        defaultTargetGroups: [this.appTargetGroup],
      });
      this.loadBalancer.addRedirect({ sourcePort: 80, targetPort: 443 });
    } else {
      this.listener = this.loadBalancer.addListener('Http', {
        port: 80,
        defaultTargetGroups: [this.appTargetGroup],
      });
    }
  }
}
