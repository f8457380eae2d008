import { Fn } from 'aws-cdk-lib';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import {
  CAPTURE_PATH_GROUPS,
  type CapturePathGroup,
  type CapturePaths,
  type WafConfig,
} from '../config';

export interface CaptureFirewallProps {
  /** Exact paths the capture function answers; each group of them gets its own limit. */
  readonly capturePaths: CapturePaths;
  /** The evaluation window and the limit per group of paths. */
  readonly limits: Pick<WafConfig, 'evaluationWindowSeconds' | 'requestsPerWindow'>;
  /**
   * The load balancer that gets a web ACL running the rule group.
   * @default - no web ACL: only the rule group, for a web ACL the load balancer already has
   */
  readonly loadBalancerArn?: string;
}

/**
 * Per-address rate limits on the capture paths, in AWS WAF: a rule group with one rate-based
 * rule per group of paths and, for a load balancer that has no web ACL of its own, a web ACL
 * that runs it. A load balancer takes one web ACL, so a platform that has one adds the rule
 * group to it instead; the rules stay this app's, and follow the configured paths.
 * https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-associating-aws-resource.html
 */
export class CaptureFirewall extends Construct {
  readonly ruleGroup: wafv2.CfnRuleGroup;
  readonly webAcl?: wafv2.CfnWebACL;

  constructor(scope: Construct, id: string, props: CaptureFirewallProps) {
    super(scope, id);
    const { evaluationWindowSeconds: window, requestsPerWindow } = props.limits;

    this.ruleGroup = new wafv2.CfnRuleGroup(this, 'RateLimits', {
      scope: 'REGIONAL',
      description: 'Per-address rate limits on the quiet-upgrade capture paths',
      capacity: CAPTURE_RULES_CAPACITY,
      visibilityConfig: visibility('QuietUpgradeCaptureRateLimits'),
      customResponseBodies: {
        [TOO_MANY_REQUESTS]: {
          contentType: 'TEXT_PLAIN',
          content: 'Too many requests from your address. Please try again in a few minutes.',
        },
      },
      rules: (Object.keys(CAPTURE_PATH_GROUPS) as CapturePathGroup[]).map((group, i) => ({
        name: `capture-${group}`,
        priority: i,
        statement: {
          rateBasedStatement: {
            // Each address on its own: the demo ALB, and an adopted one not behind a proxy,
            // see the client's own address. Behind CloudFront or another proxy every request
            // would come from the proxy's; see docs/abuse-controls.md.
            aggregateKeyType: 'IP',
            limit: requestsPerWindow[group],
            evaluationWindowSec: window,
            scopeDownStatement: anyOfPaths(
              CAPTURE_PATH_GROUPS[group].map((endpoint) => props.capturePaths[endpoint]),
            ),
          },
        },
        // 429 and when to come back: a rate-based rule blocks an address until its count
        // over the window falls below the limit, so one window is the longest wait.
        // https://docs.aws.amazon.com/waf/latest/developerguide/customizing-the-response-for-blocked-requests.html
        // https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html
        // A rule group's rule action is untyped in CDK and passed through as written, so its
        // keys are CloudFormation's own (PascalCase).
        action: {
          block: {
            CustomResponse: {
              ResponseCode: 429,
              CustomResponseBodyKey: TOO_MANY_REQUESTS,
              ResponseHeaders: [{ Name: 'Retry-After', Value: String(window) }],
            },
          },
        },
        visibilityConfig: visibility(`QuietUpgradeCapture-${group}`),
      })),
    });

    if (props.loadBalancerArn === undefined) return;
    // Everything else is allowed: these rules limit the capture paths, nothing more.
    this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
      scope: 'REGIONAL',
      description: 'Runs the quiet-upgrade capture rate limits on the load balancer',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('QuietUpgradeWebAcl'),
      rules: [
        {
          name: 'capture-rate-limits',
          priority: 0,
          // The rule group's own actions (block with 429) apply as they are.
          overrideAction: { none: {} },
          statement: { ruleGroupReferenceStatement: { arn: this.ruleGroup.attrArn } },
          visibilityConfig: visibility('QuietUpgradeCaptureRateLimitsInAcl'),
        },
      ],
    });
    new wafv2.CfnWebACLAssociation(this, 'Association', {
      resourceArn: props.loadBalancerArn,
      webAclArn: this.webAcl.attrArn,
    });
  }
}

/** The key of the body blocked requests get. */
const TOO_MANY_REQUESTS = 'too-many-requests';

/**
 * The path's text transformations: the app behind the listener decodes percent-encoding,
 * so "/sign%75p" is counted as "/signup". Each adds 10 WCUs.
 * https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-transformation.html
 */
const PATH_TRANSFORMATIONS = [{ priority: 0, type: 'URL_DECODE' }];

/**
 * The rule group's capacity, fixed when it is created: a change replaces the group, which
 * fails while another web ACL references it. The rules need 2 WCUs per rate-based rule and
 * 2 per exact string match, plus 10 per text transformation (64 for five paths); the rest is
 * room for more paths. A web ACL counts this capacity, not the rules', against its 1,500.
 * https://docs.aws.amazon.com/waf/latest/developerguide/aws-waf-capacity-units.html
 * https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based.html
 * https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-string-match.html
 */
export const CAPTURE_RULES_CAPACITY = 100;

/** Matches a request whose path is exactly one of `paths` (as the ALB rule does). */
function anyOfPaths(paths: string[]): wafv2.CfnRuleGroup.StatementProperty {
  const statements = paths.map((path): wafv2.CfnRuleGroup.StatementProperty => ({
    byteMatchStatement: {
      fieldToMatch: { uriPath: {} },
      positionalConstraint: 'EXACTLY',
      searchString: path,
      textTransformations: PATH_TRANSFORMATIONS,
    },
  }));
  // An OR statement needs at least two statements.
  // https://docs.aws.amazon.com/waf/latest/APIReference/API_OrStatement.html
  const [only] = statements;
  return statements.length === 1 && only !== undefined ? only : { orStatement: { statements } };
}

/** CloudWatch metrics and sampled requests on, under `metricName`. */
function visibility(metricName: string): wafv2.CfnRuleGroup.VisibilityConfigProperty {
  return { cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName };
}

/**
 * The load balancer of a listener, for a web ACL association, which takes the load balancer.
 * listener:      arn:...:listener/app/<name>/<lb-id>/<listener-id>
 * load balancer: arn:...:loadbalancer/app/<name>/<lb-id>
 * Works on a token too; a literal ARN resolves to a literal.
 * https://docs.aws.amazon.com/waf/latest/APIReference/API_AssociateWebACL.html
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html#awselasticloadbalancingv2-resources-for-iam-policies
 */
export function loadBalancerArnOf(listenerArn: string): string {
  const [head, tail] = [0, 1].map((i) => Fn.select(i, Fn.split(':listener/', listenerArn)));
  const parts = Fn.split('/', tail ?? '');
  return Fn.join('', [
    head ?? '',
    ':loadbalancer/',
    Fn.join(
      '/',
      [0, 1, 2].map((i) => Fn.select(i, parts)),
    ),
  ]);
}
