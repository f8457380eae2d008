import { Match } from 'aws-cdk-lib/assertions';
import type { RuleSpec } from '../../../lambda/maintenance-toggle/rule-specs';
import {
  adoptExisting,
  EXISTING_PLATFORM,
  nagViolations,
  synthApp,
  templateOf,
} from '../../helpers/app';

type Resource = { Type: string; Properties: Record<string, unknown> };

const { edge } = synthApp((c) => {
  (c.operatorBypass as Record<string, unknown>).sourceCidrs = ['203.0.113.0/24'];
});
const template = templateOf(edge);
const resources = template.toJSON().Resources as Record<string, Resource>;

function functionNamed(fragment: string): Resource {
  const found = Object.entries(resources).find(
    ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.includes(fragment),
  );
  if (found === undefined) throw new Error(`no function ${fragment}`);
  return found[1];
}

/** The rule specs the toggle creates, from its environment, with tokens as JSON text. */
function toggleRules(): RuleSpec[] {
  const env = (
    functionNamed('Toggle').Properties.Environment as { Variables: Record<string, unknown> }
  ).Variables;
  const raw = env.MAINTENANCE_RULES as { 'Fn::Join': [string, unknown[]] };
  const text = raw['Fn::Join'][1]
    .map((part) =>
      typeof part === 'string' ? part : `TOKEN:${JSON.stringify(part).replace(/"/g, "'")}`,
    )
    .join('');
  return JSON.parse(text) as RuleSpec[];
}

describe('EdgeStack load balancer', () => {
  it('is internet-facing with access logs on and invalid headers dropped', () => {
    for (const attribute of [
      { Key: 'access_logs.s3.enabled', Value: 'true' },
      { Key: 'routing.http.drop_invalid_header_fields.enabled', Value: 'true' },
    ]) {
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
        Scheme: 'internet-facing',
        LoadBalancerAttributes: Match.arrayWith([attribute]),
      });
    }
  });

  it('listens on HTTP with no certificate, forwarding to the app', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      Protocol: 'HTTP',
      DefaultActions: [
        { Type: 'forward', TargetGroupArn: { Ref: Match.stringLikeRegexp('AppTargets') } },
      ],
    });
  });

  it('listens on HTTPS with a configured certificate, and redirects HTTP to it', () => {
    const cert =
      'arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012';
    const https = templateOf(
      synthApp((c) => ((c.edge as Record<string, unknown>).certificateArn = cert)).edge,
    );
    https.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: cert }],
    });
    https.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 80,
      DefaultActions: [
        Match.objectLike({ Type: 'redirect', RedirectConfig: Match.objectLike({ Port: '443' }) }),
      ],
    });
  });

  it('declares no listener rules: maintenance rules exist only while maintenance is on', () => {
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::ListenerRule', 0);
  });

  it('puts the capture function behind a Lambda target group', () => {
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      TargetType: 'lambda',
      Targets: [{ Id: { 'Fn::GetAtt': [Match.stringLikeRegexp('MaintenanceCapture'), 'Arn'] } }],
    });
  });
});

describe('EdgeStack maintenance rules', () => {
  const rules = toggleRules();

  it('orders the rules bypass, capture, page from the configured priority', () => {
    expect(rules.map((r) => [r.name, r.priority])).toEqual([
      ['bypass-header', 1],
      ['bypass-source-ip', 2],
      ['capture-1', 3],
      ['maintenance-page', 4],
    ]);
  });

  it('lets operators through by header or source CIDR, to the app', () => {
    expect(rules[0]?.conditions).toEqual([
      {
        Field: 'http-header',
        HttpHeaderConfig: {
          HttpHeaderName: 'x-maintenance-bypass',
          Values: ['{{bypassHeaderValue}}'],
        },
      },
    ]);
    expect(rules[1]?.conditions).toEqual([
      { Field: 'source-ip', SourceIpConfig: { Values: ['203.0.113.0/24'] } },
    ]);
    for (const rule of rules.slice(0, 2)) {
      expect(rule.actions[0]?.TargetGroupArn).toContain('AppTargets');
    }
  });

  it('sends the configured capture paths to the capture target group', () => {
    expect(rules[2]?.conditions).toEqual([
      {
        Field: 'path-pattern',
        PathPatternConfig: {
          Values: ['/t/click', '/t/open', '/confirm', '/unsubscribe', '/signup'],
        },
      },
    ]);
    expect(rules[2]?.actions[0]?.TargetGroupArn).toContain('MaintenanceCaptureTargets');
  });

  it('answers everything else with a 503 text/html page', () => {
    expect(rules[3]).toMatchObject({
      conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['*'] } }],
      actions: [
        {
          Type: 'fixed-response',
          FixedResponseConfig: {
            StatusCode: '503',
            ContentType: 'text/html',
            MessageBody: '{{maintenancePage}}',
          },
        },
      ],
    });
  });
});

describe('EdgeStack permissions', () => {
  it('lets the capture function only send messages to the buffers it writes, not sends', () => {
    const policy = Object.entries(resources).find(
      ([id, r]) => r.Type === 'AWS::IAM::Policy' && id.startsWith('MaintenanceCaptureRole'),
    )?.[1];
    const statements = (
      policy?.Properties.PolicyDocument as { Statement: Record<string, unknown>[] }
    ).Statement;
    const sqsStatements = statements.filter((s) => JSON.stringify(s.Action).includes('sqs:'));
    expect(sqsStatements).toHaveLength(1);
    expect(sqsStatements[0]?.Action).toBe('sqs:SendMessage');
    const queues = sqsStatements[0]?.Resource as unknown[];
    expect(queues).toHaveLength(4);
    for (const name of ['OptIns', 'SignUps', 'Unsubscribes', 'Tracking']) {
      expect(JSON.stringify(queues)).toContain(`${name}Queue`);
    }
    expect(JSON.stringify(queues)).not.toContain('SendsQueue');
  });

  it("lets the toggle create rules on the listener and delete only that listener's rules", () => {
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Sid: 'CreateMaintenanceRules',
            Action: 'elasticloadbalancing:CreateRule',
            Resource: { Ref: Match.stringLikeRegexp('DemoLoadBalancerHttp') },
          }),
          Match.objectLike({
            Sid: 'TagRulesOnCreate',
            Condition: { StringEquals: { 'elasticloadbalancing:CreateAction': 'CreateRule' } },
          }),
          Match.objectLike({
            Sid: 'DeleteRulesOfThisListener',
            Action: 'elasticloadbalancing:DeleteRule',
            Resource: { 'Fn::Join': ['', Match.arrayWith([':listener-rule/', '/*'])] },
          }),
        ]),
      },
    });
  });

  it('has no unacknowledged cdk-nag AwsSolutions findings', () => {
    expect(nagViolations(edge)).toEqual([]);
  });
});

describe('EdgeStack on an existing platform', () => {
  const { listenerArn } = EXISTING_PLATFORM.listener;
  const adopted = synthApp(adoptExisting).edge;
  const t = templateOf(adopted);

  it('builds no load balancer and points the toggle at the given listener', () => {
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 0);
    t.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 0);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ LISTENER_ARN: listenerArn }) },
    });
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'elasticloadbalancing:DeleteRule',
            Resource:
              'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/platform/50dc6c495c0c9188/f2f7dc8efc522ab2/*',
          }),
        ]),
      },
    });
  });

  it('still passes cdk-nag', () => {
    expect(nagViolations(adopted)).toEqual([]);
  });

  it('counts the adopted load balancer’s requests for the quiet gate', () => {
    // The LoadBalancer dimension, app/NAME/ID, cut from the listener's ARN.
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Dimensions: [{ Name: 'LoadBalancer', Value: 'app/platform/50dc6c495c0c9188' }],
    });
    expect(listenerArn).toContain(':listener/app/platform/50dc6c495c0c9188/');
  });
});

describe('EdgeStack quiet gate', () => {
  it('deploys the traffic alarm the runbook reads: busy while any of 3 minutes is over the threshold', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'QuietUpgrade-Traffic',
      Namespace: 'AWS/ApplicationELB',
      MetricName: 'RequestCount',
      Statistic: 'Sum',
      Period: 60,
      Threshold: 6000,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 1,
      TreatMissingData: 'notBreaching',
      Dimensions: [
        {
          Name: 'LoadBalancer',
          Value: { 'Fn::GetAtt': [Match.anyValue(), 'LoadBalancerFullName'] },
        },
      ],
    });
    // It pages no one: the runbook reads its state.
    const alarm = Object.values(resources).find((r) => r.Type === 'AWS::CloudWatch::Alarm');
    expect(alarm?.Properties.AlarmActions).toBeUndefined();
  });

  it('deploys no alarm when the config has no quiet gate', () => {
    const { edge: without } = synthApp((c) => {
      delete (c.upgrade as Record<string, unknown>).quietGate;
    });
    templateOf(without).resourceCountIs('AWS::CloudWatch::Alarm', 0);
  });
});
