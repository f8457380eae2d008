import type { Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import {
  adoptExisting,
  EXISTING_PLATFORM,
  nagViolations,
  synthApp,
  templateOf,
} from '../helpers/app';

type Json = Record<string, unknown>;
type Resource = { Type: string; Properties: Json };

function resourcesOf(stack: Stack): Record<string, Resource> {
  return templateOf(stack).toJSON().Resources as Record<string, Resource>;
}

/** The one resource of `type` in `stack`, with its logical id. */
function only(stack: Stack, type: string): [string, Resource] {
  const found = Object.entries(resourcesOf(stack)).filter(([, r]) => r.Type === type);
  expect(found).toHaveLength(1);
  return found[0] as [string, Resource];
}

/** The reserved concurrency of the function whose logical id starts with `prefix`. */
function reservedConcurrency(stack: Stack, prefix: string): unknown {
  const found = Object.entries(resourcesOf(stack)).filter(
    ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(prefix),
  );
  expect(found).toHaveLength(1);
  return found[0]?.[1].Properties.ReservedConcurrentExecutions;
}

/** The exact paths each rate-based rule of the edge's rule group is scoped down to. */
function scopedPaths(stack: Stack): string[][] {
  const [, group] = only(stack, 'AWS::WAFv2::RuleGroup');
  type ByteMatch = { ByteMatchStatement: { SearchString: string } };
  return (group.Properties.Rules as Json[]).map((rule) => {
    const scope = (rule.Statement as { RateBasedStatement: { ScopeDownStatement: Json } })
      .RateBasedStatement.ScopeDownStatement as { OrStatement: { Statements: ByteMatch[] } };
    return scope.OrStatement.Statements.map((s) => s.ByteMatchStatement.SearchString);
  });
}

describe('abuse controls on the demo platform', () => {
  const { edge, upgrade } = synthApp();

  it('puts the web ACL with the capture rate limits on the demo load balancer', () => {
    const [lbId] = only(edge, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    const [aclId, acl] = only(edge, 'AWS::WAFv2::WebACL');
    const [groupId] = only(edge, 'AWS::WAFv2::RuleGroup');
    const [, association] = only(edge, 'AWS::WAFv2::WebACLAssociation');
    expect(association.Properties).toEqual({
      ResourceArn: { Ref: lbId },
      WebACLArn: { 'Fn::GetAtt': [aclId, 'Arn'] },
    });
    expect(acl.Properties.Rules).toEqual([
      expect.objectContaining({
        Statement: { RuleGroupReferenceStatement: { Arn: { 'Fn::GetAtt': [groupId, 'Arn'] } } },
      }),
    ]);
  });

  it('limits the shipped capture paths with the shipped limits', () => {
    expect(scopedPaths(edge)).toEqual([
      ['/t/click', '/t/open'],
      ['/confirm', '/unsubscribe', '/signup'],
    ]);
    templateOf(edge).hasResourceProperties('AWS::WAFv2::RuleGroup', {
      Rules: [
        Match.objectLike({
          Statement: {
            RateBasedStatement: Match.objectLike({ Limit: 1000, EvaluationWindowSec: 300 }),
          },
        }),
        Match.objectLike({
          Statement: {
            RateBasedStatement: Match.objectLike({ Limit: 100, EvaluationWindowSec: 300 }),
          },
        }),
      ],
    });
  });

  it('caps the capture function and keeps capacity for the toggle and the writer check', () => {
    expect(reservedConcurrency(edge, 'MaintenanceCapture')).toBe(50);
    expect(reservedConcurrency(edge, 'MaintenanceToggle')).toBe(5);
    expect(reservedConcurrency(upgrade, 'VerifyWriter')).toBe(5);
  });
});

describe('abuse controls follow the config', () => {
  const { edge, upgrade } = synthApp((c) => {
    const edgeConfig = c.edge as Json;
    Object.assign(edgeConfig.capturePaths as Json, { click: '/c', signUp: '/join' });
    edgeConfig.waf = {
      evaluationWindowSeconds: 60,
      requestsPerWindow: { tracking: 400, subscriptions: 10 },
    };
    edgeConfig.reservedConcurrency = { capture: 7, maintenanceToggle: 0, verifyWriter: 2 };
  });

  it('scopes the rules down to the configured paths', () => {
    expect(scopedPaths(edge)).toEqual([
      ['/c', '/t/open'],
      ['/confirm', '/unsubscribe', '/join'],
    ]);
  });

  it('uses the configured limits and window', () => {
    const [, group] = only(edge, 'AWS::WAFv2::RuleGroup');
    const limits = (group.Properties.Rules as Json[]).map(
      (r) => (r.Statement as { RateBasedStatement: Json }).RateBasedStatement,
    );
    expect(limits).toEqual([
      expect.objectContaining({ Limit: 400, EvaluationWindowSec: 60 }),
      expect.objectContaining({ Limit: 10, EvaluationWindowSec: 60 }),
    ]);
  });

  it('reserves what is configured, and nothing where the config says 0', () => {
    expect(reservedConcurrency(edge, 'MaintenanceCapture')).toBe(7);
    // 0 in the config is "no reservation", never Lambda's 0, which stops the function.
    expect(reservedConcurrency(edge, 'MaintenanceToggle')).toBeUndefined();
    expect(reservedConcurrency(upgrade, 'VerifyWriter')).toBe(2);
  });
});

describe('abuse controls on an adopted platform', () => {
  // EXISTING_PLATFORM's listener is listener/app/platform/50dc6c495c0c9188/f2f7dc8efc522ab2.
  const loadBalancer =
    'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/platform/50dc6c495c0c9188';

  it("by default leaves the load balancer's web ACL alone and offers the rule group", () => {
    const { edge } = synthApp(adoptExisting);
    const template = templateOf(edge);
    template.resourceCountIs('AWS::WAFv2::WebACL', 0);
    template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 0);
    const [groupId] = only(edge, 'AWS::WAFv2::RuleGroup');
    template.hasOutput('CaptureRateLimitsRuleGroupArn', {
      Value: { 'Fn::GetAtt': [groupId, 'Arn'] },
    });
    Annotations.fromStack(edge).hasWarning(
      '*',
      Match.stringLikeRegexp('capture rate limits are not on the adopted load balancer'),
    );
  });

  it("associates the web ACL with the adopted listener's load balancer when asked", () => {
    const { edge } = synthApp((c) => {
      adoptExisting(c);
      (c.edge as { waf: Json }).waf.associateAdoptedLoadBalancer = true;
    });
    const [aclId] = only(edge, 'AWS::WAFv2::WebACL');
    const [, association] = only(edge, 'AWS::WAFv2::WebACLAssociation');
    expect(EXISTING_PLATFORM.listener.listenerArn).toContain('/platform/50dc6c495c0c9188/');
    expect(association.Properties).toEqual({
      ResourceArn: loadBalancer,
      WebACLArn: { 'Fn::GetAtt': [aclId, 'Arn'] },
    });
    expect(nagViolations(edge)).toEqual([]);
  });
});
