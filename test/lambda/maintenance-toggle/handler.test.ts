import {
  CreateRuleCommand,
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  ElasticLoadBalancingV2Client,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { maintenanceRuleSpecs } from '../../../lambda/maintenance-toggle/rule-specs';

const LISTENER =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/demo/50dc6c495c0c9188/f2f7dc8efc522ab2';
const elb = mockClient(ElasticLoadBalancingV2Client);
const secrets = mockClient(SecretsManagerClient);
let handler: (event: unknown) => Promise<unknown>;

beforeAll(async () => {
  process.env.LISTENER_ARN = LISTENER;
  process.env.BYPASS_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:bypass';
  process.env.EXPECTED_MAINTENANCE_MINUTES = '5';
  process.env.MAINTENANCE_RULES = JSON.stringify(
    maintenanceRuleSpecs({
      firstPriority: 1,
      appTargetGroupArn: 'arn:app',
      captureTargetGroupArn: 'arn:capture',
      capturePaths: ['/t/click'],
      bypassHeaderName: 'x-maintenance-bypass',
      bypassSourceCidrs: [],
    }),
  );
  ({ handler } = await import('../../../lambda/maintenance-toggle/handler'));
});

beforeEach(() => {
  elb.reset();
  elb.on(DescribeRulesCommand).resolves({ Rules: [] });
  elb.on(DescribeTagsCommand).resolves({ TagDescriptions: [] });
  elb.on(DescribeListenersCommand).resolves({
    Listeners: [{ ListenerArn: LISTENER, LoadBalancerArn: 'arn:lb' }],
  });
  elb.on(CreateRuleCommand).callsFake((input) => ({
    Rules: [{ RuleArn: `rule-${String(input.Priority)}`, Priority: String(input.Priority) }],
  }));
  secrets.reset();
  secrets.on(PutSecretValueCommand).resolves({});
});

describe('maintenance toggle handler', () => {
  it.each([
    [{ action: 'sideways' }, 'action must be "on", "off" or "status", got: "sideways"'],
    [{}, 'action must be "on", "off" or "status", got: undefined'],
    [{ action: 'on', until: 'tomorrow' }, 'until must be an ISO 8601 time, got: "tomorrow"'],
    [{ action: 'on', extra: 1 }, 'extra'],
  ])('rejects %p before touching the listener', async (input, message) => {
    await expect(handler(input)).rejects.toThrow(message);
    expect(elb).not.toHaveReceivedCommand(DescribeRulesCommand);
  });

  it('renders the page with the time the caller gives', async () => {
    await handler({ action: 'on', until: '2026-11-22T04:12:00Z' });
    const page = elb
      .commandCalls(CreateRuleCommand)
      .map((c) => c.args[0].input.Actions?.[0]?.FixedResponseConfig?.MessageBody)
      .find((body) => body !== undefined);
    expect(page).toContain('Please try again after 04:12 UTC');
  });

  it('puts a fresh random bypass value in the secret each time it creates the bypass rule', async () => {
    const values: string[] = [];
    for (let window = 0; window < 2; window++) {
      elb.on(DescribeRulesCommand).resolves({ Rules: [] });
      await handler({ action: 'on' });
      const stored = secrets.commandCalls(PutSecretValueCommand).at(-1)?.args[0].input;
      expect(stored?.SecretId).toBe(process.env.BYPASS_SECRET_ARN);
      const value = String(stored?.SecretString);
      expect(value).toMatch(/^[0-9a-f]{48}$/);
      // The rule matches the value the secret holds.
      expect(elb).toHaveReceivedCommandWith(CreateRuleCommand, {
        Conditions: [
          {
            Field: 'http-header',
            HttpHeaderConfig: { HttpHeaderName: 'x-maintenance-bypass', Values: [value] },
          },
        ],
      });
      values.push(value);
    }
    expect(values[1]).not.toBe(values[0]);
  });
});
