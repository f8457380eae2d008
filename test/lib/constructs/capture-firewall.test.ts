import { App, Stack, Token } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import {
  CAPTURE_RULES_CAPACITY,
  CaptureFirewall,
  type CaptureFirewallProps,
  loadBalancerArnOf,
} from '../../../lib/constructs/capture-firewall';

type Json = Record<string, unknown>;
type Statement = {
  ByteMatchStatement?: {
    SearchString: string;
    FieldToMatch: Json;
    PositionalConstraint: string;
    TextTransformations: { Type: string }[];
  };
  OrStatement?: { Statements: Statement[] };
};
type Rule = {
  Name: string;
  Statement: {
    RateBasedStatement: {
      AggregateKeyType: string;
      Limit: number;
      EvaluationWindowSec: number;
      ScopeDownStatement: Statement;
    };
  };
  Action: {
    Block: {
      CustomResponse: {
        ResponseCode: number;
        CustomResponseBodyKey: string;
        ResponseHeaders: { Name: string; Value: string }[];
      };
    };
  };
};

const PATHS = {
  click: '/c',
  open: '/o',
  confirm: '/yes',
  unsubscribe: '/bye',
  signUp: '/join',
};
const LIMITS: CaptureFirewallProps['limits'] = {
  evaluationWindowSeconds: 120,
  requestsPerWindow: { tracking: 700, subscriptions: 30 },
};

// Without CDK's template lint, which costs seconds per stack and only warns; npm run synth
// runs it. What it caught here (descriptions) is checked below.
function build(props: Partial<CaptureFirewallProps> = {}): Template {
  const stack = new Stack(new App({ builtinCloudFormationValidation: false }), 'Test');
  new CaptureFirewall(stack, 'Firewall', { capturePaths: PATHS, limits: LIMITS, ...props });
  return Template.fromStack(stack);
}

function only(template: Template, type: string): Json {
  const found = Object.values(template.findResources(type));
  expect(found).toHaveLength(1);
  return (found[0] as { Properties: Json }).Properties;
}

/** The exact-match statements of a scope-down: one, or the members of an OR. */
function matchesOf(statement: Statement): NonNullable<Statement['ByteMatchStatement']>[] {
  const all = statement.OrStatement?.Statements ?? [statement];
  return all.map((s) => {
    if (s.ByteMatchStatement === undefined) throw new Error(`not a string match: ${String(s)}`);
    return s.ByteMatchStatement;
  });
}

describe('CaptureFirewall rule group', () => {
  const template = build();
  const group = only(template, 'AWS::WAFv2::RuleGroup');
  const rules = group.Rules as Rule[];

  it('limits each group of capture paths per address, over the configured window', () => {
    expect(group.Scope).toBe('REGIONAL');
    expect(rules.map((r) => r.Name)).toEqual(['capture-tracking', 'capture-subscriptions']);
    const [tracking, subscriptions] = rules.map((r) => r.Statement.RateBasedStatement);
    expect(tracking).toMatchObject({
      AggregateKeyType: 'IP',
      Limit: 700,
      EvaluationWindowSec: 120,
    });
    expect(subscriptions).toMatchObject({
      AggregateKeyType: 'IP',
      Limit: 30,
      EvaluationWindowSec: 120,
    });
  });

  it('scopes each rule down to exactly its paths, compared whole', () => {
    const paths = rules.map((r) =>
      matchesOf(r.Statement.RateBasedStatement.ScopeDownStatement).map((m) => m.SearchString),
    );
    expect(paths).toEqual([
      ['/c', '/o'],
      ['/yes', '/bye', '/join'],
    ]);
    for (const rule of rules) {
      for (const match of matchesOf(rule.Statement.RateBasedStatement.ScopeDownStatement)) {
        expect(match.FieldToMatch).toEqual({ UriPath: {} });
        expect(match.PositionalConstraint).toBe('EXACTLY');
      }
    }
  });

  it('answers a limited address with 429, a body, and Retry-After of one window', () => {
    const bodies = group.CustomResponseBodies as Record<string, { ContentType: string }>;
    for (const rule of rules) {
      const response = rule.Action.Block.CustomResponse;
      expect(response.ResponseCode).toBe(429);
      expect(response.ResponseHeaders).toEqual([{ Name: 'Retry-After', Value: '120' }]);
      expect(bodies[response.CustomResponseBodyKey]?.ContentType).toBe('TEXT_PLAIN');
    }
  });

  it('fits its rules in the capacity fixed when the group is created', () => {
    // WCUs as AWS documents them: 2 per rate-based rule, 2 per exact string match, and 10 per
    // text transformation.
    // https://docs.aws.amazon.com/waf/latest/developerguide/aws-waf-capacity-units.html
    const needed = rules
      .map((r) =>
        matchesOf(r.Statement.RateBasedStatement.ScopeDownStatement).reduce(
          (sum, m) => sum + 2 + 10 * m.TextTransformations.filter((t) => t.Type !== 'NONE').length,
          2,
        ),
      )
      .reduce((a, b) => a + b, 0);
    expect(needed).toBe(64);
    expect(group.Capacity).toBe(CAPTURE_RULES_CAPACITY);
    expect(needed).toBeLessThanOrEqual(CAPTURE_RULES_CAPACITY);
  });

  it('builds no web ACL when the load balancer keeps its own', () => {
    template.resourceCountIs('AWS::WAFv2::WebACL', 0);
    template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 0);
  });
});

describe('CaptureFirewall web ACL', () => {
  const lb =
    'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef';
  const template = build({ loadBalancerArn: lb });
  const groupId = Object.keys(template.findResources('AWS::WAFv2::RuleGroup'))[0];
  const aclId = Object.keys(template.findResources('AWS::WAFv2::WebACL'))[0];

  it('runs the rule group as it is and allows everything else', () => {
    const acl = only(template, 'AWS::WAFv2::WebACL');
    expect(acl).toMatchObject({
      Scope: 'REGIONAL',
      DefaultAction: { Allow: {} },
      VisibilityConfig: { CloudWatchMetricsEnabled: true, SampledRequestsEnabled: true },
    });
    expect(acl.Rules).toEqual([
      expect.objectContaining({
        OverrideAction: { None: {} },
        Statement: { RuleGroupReferenceStatement: { Arn: { 'Fn::GetAtt': [groupId, 'Arn'] } } },
      }),
    ]);
  });

  it('is associated with the given load balancer', () => {
    expect(only(template, 'AWS::WAFv2::WebACLAssociation')).toEqual({
      ResourceArn: lb,
      WebACLArn: { 'Fn::GetAtt': [aclId, 'Arn'] },
    });
  });
});

describe('loadBalancerArnOf', () => {
  const listener =
    'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/platform/50dc6c495c0c9188/f2f7dc8efc522ab2';
  const loadBalancer =
    'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/platform/50dc6c495c0c9188';

  it('gives a literal load balancer ARN for a literal listener ARN', () => {
    expect(
      new Stack(new App({ builtinCloudFormationValidation: false }), 'Test').resolve(
        loadBalancerArnOf(listener),
      ),
    ).toBe(loadBalancer);
  });

  it('gives the same load balancer when the listener ARN is known only at deploy time', () => {
    const stack = new Stack(new App({ builtinCloudFormationValidation: false }), 'Test');
    const deployed = stack.resolve(loadBalancerArnOf(Token.asString({ Ref: 'Listener' })));
    expect(typeof deployed).not.toBe('string');
    expect(evaluate(deployed, { Listener: listener })).toBe(loadBalancer);
  });
});

/** Evaluates Fn::Join, Fn::Select and Fn::Split, with `refs` for Ref. */
function evaluate(node: unknown, refs: Record<string, string>): unknown {
  if (typeof node !== 'object' || node === null) return node;
  if (Array.isArray(node)) return node.map((n) => evaluate(n, refs));
  const fn = node as Record<string, unknown>;
  if (typeof fn.Ref === 'string') return refs[fn.Ref];
  const join = fn['Fn::Join'] as [string, unknown[]] | undefined;
  if (join !== undefined) return (evaluate(join[1], refs) as string[]).join(join[0]);
  const select = fn['Fn::Select'] as [number, unknown] | undefined;
  if (select !== undefined) return (evaluate(select[1], refs) as string[])[select[0]];
  const split = fn['Fn::Split'] as [string, unknown] | undefined;
  if (split !== undefined) return (evaluate(split[1], refs) as string).split(split[0]);
  return node;
}

it('describes its rule group and web ACL in the characters AWS WAF accepts', () => {
  // CloudFormation's schema for both (as CDK's template lint reported it): no parentheses.
  // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-wafv2-rulegroup.html#cfn-wafv2-rulegroup-description
  // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-wafv2-webacl.html#cfn-wafv2-webacl-description
  const pattern = /^[a-zA-Z0-9=:#@/\-,.][a-zA-Z0-9+=:#@/\-,.\s]+[a-zA-Z0-9+=:#@/\-,.]{1,256}$/;
  const lb = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/demo/1';
  const template = build({ loadBalancerArn: lb });
  for (const type of ['AWS::WAFv2::RuleGroup', 'AWS::WAFv2::WebACL']) {
    expect(String(only(template, type).Description)).toMatch(pattern);
  }
});
