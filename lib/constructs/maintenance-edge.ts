import { Duration, Fn, Stack, Validations } from 'aws-cdk-lib';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { BufferName } from '../../lambda/shared/contracts';
import { maintenanceRuleSpecs, type RuleSpec } from '../../lambda/maintenance-toggle/rule-specs';
import type { CapturePaths } from '../config';
import { NodeFunction } from './node-function';

export interface MaintenanceEdgeProps {
  /** The listener that gets the maintenance rules while maintenance is on. */
  readonly listenerArn: string;
  /** The app's target group: where bypassing operators go. */
  readonly appTargetGroupArn: string;
  /** The buffers' queues, by name; the capture function may only send to them. */
  readonly queues: Record<BufferName, sqs.IQueue>;
  /** Exact paths the capture function answers. */
  readonly capturePaths: CapturePaths;
  /** First of the listener rule priorities the maintenance rules use. */
  readonly firstPriority: number;
  /**
   * Operators who send this header, with the value in `bypassSecret`, reach the app.
   * @default - no header bypass
   */
  readonly bypassHeaderName?: string;
  /**
   * Operators from these CIDRs reach the app.
   * @default []
   */
  readonly bypassSourceCidrs?: string[];
  /**
   * What the page says about when to come back: now + this, unless the caller says.
   * @default Duration.minutes(5)
   */
  readonly expectedDuration?: Duration;
}

/**
 * The maintenance mode of the edge: the capture function for buffered endpoints, the secrets
 * it and the bypass use, and the toggle that adds and removes the maintenance rules.
 *
 * The rules are created at runtime by the toggle and found by tag, never declared in
 * CloudFormation: outside the window the listener has exactly what the template says (no
 * drift), and a `cdk deploy` during the window leaves them alone.
 */
export class MaintenanceEdge extends Construct {
  readonly captureFunction: NodeFunction;
  readonly captureTargetGroup: elbv2.ApplicationTargetGroup;
  readonly toggleFunction: NodeFunction;
  /** The HMAC key the platform signs links with and the capture function checks. */
  readonly linkSigningKey: secretsmanager.Secret;
  /** The value operators send in the bypass header. */
  readonly bypassSecret: secretsmanager.Secret;
  /** The rules the toggle creates, in creation order (placeholders for secrets and page). */
  readonly ruleSpecs: RuleSpec[];
  readonly listenerArn: string;

  constructor(scope: Construct, id: string, props: MaintenanceEdgeProps) {
    super(scope, id);
    this.listenerArn = props.listenerArn;

    this.linkSigningKey = new secretsmanager.Secret(this, 'LinkSigningKey', {
      description: 'HMAC key for tracked links (clicks, opens, confirmations, unsubscribes)',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    Validations.of(this.linkSigningKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotating the link signing key would break every tracked link in every email already ' +
        'sent. Rotation is a planned change: sign with the new key, accept both, retire the old.',
    });
    this.bypassSecret = new secretsmanager.Secret(this, 'BypassHeaderValue', {
      description: 'Value of the operator bypass header during maintenance',
      // At most 128 characters fit an ALB http-header condition value.
      // https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_HttpHeaderConditionConfig.html
      generateSecretString: { passwordLength: 40, excludePunctuation: true },
    });
    Validations.of(this.bypassSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Operators copy this value into their browser before a window; it is read when ' +
        'maintenance turns on. Change it between windows (put-secret-value), not on a schedule.',
    });

    this.captureFunction = new NodeFunction(this, 'Capture', {
      functionDir: 'capture',
      description:
        'Buffers clicks, opens, confirmations, unsubscribes and sign-ups during maintenance',
      timeout: Duration.seconds(10),
      environment: {
        CAPTURE_ROUTES: Stack.of(this).toJsonString(props.capturePaths),
        QUEUE_URLS: Stack.of(this).toJsonString(
          Object.fromEntries(Object.entries(props.queues).map(([n, q]) => [n, q.queueUrl])),
        ),
        LINK_KEY_SECRET_ARN: this.linkSigningKey.secretArn,
      },
    });
    // Only SendMessage: SSE-SQS queues need no KMS grant, and the function reads nothing.
    this.captureFunction.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['sqs:SendMessage'],
        resources: Object.values(props.queues).map((q) => q.queueArn),
      }),
    );
    this.linkSigningKey.grantRead(this.captureFunction);
    this.captureTargetGroup = new elbv2.ApplicationTargetGroup(this, 'CaptureTargets', {
      targets: [new targets.LambdaTarget(this.captureFunction)],
    });

    this.ruleSpecs = maintenanceRuleSpecs({
      firstPriority: props.firstPriority,
      appTargetGroupArn: props.appTargetGroupArn,
      captureTargetGroupArn: this.captureTargetGroup.targetGroupArn,
      capturePaths: Object.values(props.capturePaths),
      bypassHeaderName: props.bypassHeaderName,
      bypassSourceCidrs: props.bypassSourceCidrs ?? [],
    });

    this.toggleFunction = new NodeFunction(this, 'Toggle', {
      functionDir: 'maintenance-toggle',
      description: 'Turns the maintenance rules on the listener on or off (idempotent)',
      timeout: Duration.seconds(30),
      environment: {
        LISTENER_ARN: props.listenerArn,
        MAINTENANCE_RULES: Stack.of(this).toJsonString(this.ruleSpecs),
        BYPASS_SECRET_ARN: this.bypassSecret.secretArn,
        EXPECTED_MAINTENANCE_MINUTES: String(
          (props.expectedDuration ?? Duration.minutes(5)).toMinutes(),
        ),
      },
    });
    this.bypassSecret.grantRead(this.toggleFunction);

    // listener ARN: arn:...:listener/app/<lb>/<lb-id>/<listener-id>
    // its rules:    arn:...:listener-rule/app/<lb>/<lb-id>/<listener-id>/<rule-id>
    const [arnHead, arnTail] = [0, 1].map((i) =>
      Fn.select(i, Fn.split(':listener/', props.listenerArn)),
    );
    const listenerRules = Fn.join('', [arnHead ?? '', ':listener-rule/', arnTail ?? '', '/*']);
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html
    const rulesPolicy = new iam.Policy(this, 'ToggleRulesPolicy', {
      statements: [
        new iam.PolicyStatement({
          sid: 'CreateMaintenanceRules',
          actions: ['elasticloadbalancing:CreateRule'],
          resources: [props.listenerArn],
        }),
        new iam.PolicyStatement({
          // CreateRule with Tags also needs AddTags, here only as part of CreateRule.
          sid: 'TagRulesOnCreate',
          actions: ['elasticloadbalancing:AddTags'],
          resources: [listenerRules],
          conditions: { StringEquals: { 'elasticloadbalancing:CreateAction': 'CreateRule' } },
        }),
        new iam.PolicyStatement({
          sid: 'DeleteRulesOfThisListener',
          actions: ['elasticloadbalancing:DeleteRule'],
          resources: [listenerRules],
        }),
        new iam.PolicyStatement({
          sid: 'DescribeHasNoResourceLevelPermissions',
          actions: [
            'elasticloadbalancing:DescribeRules',
            'elasticloadbalancing:DescribeTags',
            'elasticloadbalancing:DescribeListeners',
          ],
          resources: ['*'],
        }),
      ],
    });
    rulesPolicy.attachToRole(this.toggleFunction.role as iam.IRole);
    Validations.of(rulesPolicy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'ELBv2 Describe* actions support no resource-level permissions. ' +
        'https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html',
    });
    Validations.of(rulesPolicy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagResource(Stack.of(this).resolve(listenerRules))}]`,
      reason:
        "Rule ids are assigned when a rule is created, so only this listener's rules " +
        '(listener-rule/<listener>/*) can be named; the toggle deletes only rules it tagged.',
    });
  }
}

/** How cdk-nag prints a resource in a finding id: literal text, intrinsics as JSON. */
function nagResource(resolved: unknown): string {
  const join = (resolved as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (join === undefined) return typeof resolved === 'string' ? resolved : JSON.stringify(resolved);
  return join[1]
    .map((part) => (typeof part === 'string' ? part : JSON.stringify(part)))
    .join(join[0]);
}
