import {
  CreateRuleCommand,
  DeleteRuleCommand,
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  ElasticLoadBalancingV2Client,
  type Rule,
  type Tag,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  MAINTENANCE_TAG,
  maintenanceRuleSpecs,
} from '../../../lambda/maintenance-toggle/rule-specs';
import {
  MaintenanceToggleError,
  maintenanceOff,
  maintenanceOn,
  status,
  type ToggleContext,
} from '../../../lambda/maintenance-toggle/toggle';

const LB =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/demo/50dc6c495c0c9188';
const LISTENER =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/demo/50dc6c495c0c9188/f2f7dc8efc522ab2';
const OTHER_LISTENER = LISTENER.replace('f2f7dc8efc522ab2', '0000000000000000');
const APP_TG =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/app/0123456789abcdef';
const CAPTURE_TG =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/capture/fedcba9876543210';

const specs = maintenanceRuleSpecs({
  firstPriority: 1,
  appTargetGroupArn: APP_TG,
  captureTargetGroupArn: CAPTURE_TG,
  capturePaths: ['/t/click', '/t/open', '/confirm', '/unsubscribe', '/signup'],
  bypassHeaderName: 'x-maintenance-bypass',
  bypassSourceCidrs: ['203.0.113.0/24'],
});

/** A fake ELBv2 API that keeps the listeners' rules and tags in memory. */
class FakeElb {
  readonly mock = mockClient(ElasticLoadBalancingV2Client);
  rules = new Map<string, { listener: string; rule: Rule; tags: Tag[] }>();
  private next = 1;

  constructor() {
    this.mock.on(DescribeRulesCommand).callsFake(({ ListenerArn }) => ({
      Rules: [
        { RuleArn: `${ListenerArn}/default`, Priority: 'default', IsDefault: true },
        ...[...this.rules.values()].filter((r) => r.listener === ListenerArn).map((r) => r.rule),
      ],
    }));
    this.mock.on(DescribeTagsCommand).callsFake(({ ResourceArns = [] }) => {
      if (ResourceArns.length > 20) throw new Error('at most 20 ARNs');
      return {
        TagDescriptions: ResourceArns.map((arn: string) => ({
          ResourceArn: arn,
          Tags: this.rules.get(arn)?.tags ?? [],
        })),
      };
    });
    this.mock.on(DescribeListenersCommand).callsFake(({ ListenerArns, LoadBalancerArn }) => ({
      Listeners: (LoadBalancerArn ? [LISTENER, OTHER_LISTENER] : ListenerArns).map(
        (arn: string) => ({
          ListenerArn: arn,
          LoadBalancerArn: LB,
        }),
      ),
    }));
    this.mock.on(CreateRuleCommand).callsFake((input) => {
      const taken = [...this.rules.values()].some(
        (r) => r.listener === input.ListenerArn && r.rule.Priority === String(input.Priority),
      );
      if (taken)
        throw Object.assign(new Error('PriorityInUse'), { name: 'PriorityInUseException' });
      const arn = `${input.ListenerArn.replace(':listener/', ':listener-rule/')}/${this.next++}`;
      const rule: Rule = {
        RuleArn: arn,
        Priority: String(input.Priority),
        Conditions: input.Conditions,
        Actions: input.Actions,
      };
      this.rules.set(arn, { listener: input.ListenerArn, rule, tags: input.Tags ?? [] });
      return { Rules: [rule] };
    });
    this.mock.on(DeleteRuleCommand).callsFake(({ RuleArn }) => {
      if (!this.rules.delete(RuleArn)) {
        throw Object.assign(new Error('not found'), { name: 'RuleNotFoundException' });
      }
      return {};
    });
  }

  /** A rule someone else (the app's own stack) put on a listener. */
  addForeign(listener: string, priority: number): string {
    const arn = `${listener.replace(':listener/', ':listener-rule/')}/foreign-${priority}`;
    this.rules.set(arn, { listener, rule: { RuleArn: arn, Priority: String(priority) }, tags: [] });
    return arn;
  }

  ours(): Rule[] {
    return [...this.rules.values()].filter((r) => r.tags.length > 0).map((r) => r.rule);
  }
}

/** A value as the handler makes them: 48 hex digits. */
const BYPASS = '0123456789abcdef0123456789abcdef0123456789abcdef';

let elb: FakeElb;
let ctx: ToggleContext;

beforeEach(() => {
  elb = new FakeElb();
  elb.mock.resetHistory();
  ctx = {
    elb: new ElasticLoadBalancingV2Client({}),
    listenerArn: LISTENER,
    specs,
    newBypassValue: async () => BYPASS,
    page: () => '<!doctype html><title>page</title>',
  };
});

afterEach(() => elb.mock.restore());

describe('maintenance on', () => {
  it('creates the rule set, tagged, in order, with the bypass value and page filled in', async () => {
    const result = await maintenanceOn(ctx);
    expect(result.maintenance).toBe('on');
    expect(result.created).toEqual([
      'bypass-header',
      'bypass-source-ip',
      'capture-1',
      'maintenance-page',
    ]);
    expect(result.rules.map((r) => r.priority)).toEqual([1, 2, 3, 4]);
    expect(elb.mock).toHaveReceivedCommandWith(CreateRuleCommand, {
      Priority: 1,
      Conditions: [
        {
          Field: 'http-header',
          HttpHeaderConfig: {
            HttpHeaderName: 'x-maintenance-bypass',
            Values: [BYPASS],
          },
        },
      ],
      Actions: [{ Type: 'forward', TargetGroupArn: APP_TG }],
      Tags: [{ Key: MAINTENANCE_TAG, Value: 'bypass-header' }],
    });
    expect(elb.mock).toHaveReceivedCommandWith(CreateRuleCommand, {
      Priority: 4,
      Actions: [
        {
          Type: 'fixed-response',
          FixedResponseConfig: {
            StatusCode: '503',
            ContentType: 'text/html',
            MessageBody: '<!doctype html><title>page</title>',
          },
        },
      ],
    });
    // The catch-all comes last, once bypass and capture are in place.
    const order = elb.mock.commandCalls(CreateRuleCommand).map((c) => c.args[0].input.Priority);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('creates the page last and makes no call after it, and names the page rule', async () => {
    const calls: string[] = [];
    const send = ctx.elb.send.bind(ctx.elb);
    let othersInFlight = 0;
    ctx.elb.send = (async (command: {
      constructor: { name: string };
      input: { Priority?: number };
    }) => {
      const page = command.input.Priority === 4;
      calls.push(`${command.constructor.name}${command.input.Priority ?? ''}`);
      if (command.constructor.name === 'CreateRuleCommand' && !page) {
        othersInFlight += 1;
        // The bypass and capture rules answer late; the page must still wait for them.
        await new Promise((resolve) => setTimeout(resolve, 5));
        othersInFlight -= 1;
      }
      if (page) expect(othersInFlight).toBe(0);
      return send(command as never);
    }) as typeof ctx.elb.send;
    const result = await maintenanceOn(ctx);
    expect(calls.at(-1)).toBe('CreateRuleCommand4');
    const page = elb.ours().find((r) => r.Priority === '4');
    expect(result.pageRuleArn).toBe(page?.RuleArn);
    expect(result.rules.find((r) => r.name === 'maintenance-page')?.ruleArn).toBe(page?.RuleArn);
    expect((await status(ctx)).pageRuleArn).toBe(page?.RuleArn);
    await maintenanceOff(ctx);
    expect((await status(ctx)).pageRuleArn).toBeNull();
  });

  it('is idempotent: on twice is on, with no second rule', async () => {
    await maintenanceOn(ctx);
    const again = await maintenanceOn(ctx);
    expect(again.created).toEqual([]);
    expect(again.maintenance).toBe('on');
    expect(elb.mock.commandCalls(CreateRuleCommand)).toHaveLength(4);
    expect(elb.ours()).toHaveLength(4);
  });

  it('completes a half-applied rule set, creating only what is missing', async () => {
    await maintenanceOn(ctx);
    const page = elb.ours().find((r) => r.Priority === '4');
    elb.rules.delete(page?.RuleArn ?? '');
    expect((await status(ctx)).maintenance).toBe('partial');
    elb.mock.resetHistory();
    const result = await maintenanceOn(ctx);
    expect(result.created).toEqual(['maintenance-page']);
    expect(result.maintenance).toBe('on');
  });

  it("refuses when a priority is taken by someone else's rule, and changes nothing", async () => {
    const foreign = elb.addForeign(LISTENER, 3);
    await expect(maintenanceOn(ctx)).rejects.toThrow(
      new MaintenanceToggleError(
        `cannot turn maintenance on: priority 3 (for capture-1) is taken by ${foreign}`,
      ),
    );
    expect(elb.mock).not.toHaveReceivedCommand(CreateRuleCommand);
  });

  it('refuses when the load balancer would pass its rule quota, and changes nothing', async () => {
    for (let p = 10; p < 60; p++) elb.addForeign(LISTENER, p);
    for (let p = 10; p < 58; p++) elb.addForeign(OTHER_LISTENER, p);
    await expect(maintenanceOn(ctx)).rejects.toThrow(
      'the load balancer has 98 rules and needs 4 more, over its quota of 100',
    );
    expect(elb.mock).not.toHaveReceivedCommand(CreateRuleCommand);
  });

  it('finds its rules among more than 20 (DescribeTags pages of 20)', async () => {
    for (let p = 10; p < 40; p++) elb.addForeign(LISTENER, p);
    await maintenanceOn(ctx);
    expect((await maintenanceOn(ctx)).created).toEqual([]);
    expect(elb.ours()).toHaveLength(4);
  });
});

describe('maintenance off', () => {
  it('deletes only our rules, the page first', async () => {
    const foreign = elb.addForeign(LISTENER, 10);
    await maintenanceOn(ctx);
    const result = await maintenanceOff(ctx);
    expect(result.maintenance).toBe('off');
    expect(result.deleted).toEqual([
      'maintenance-page',
      'capture-1',
      'bypass-source-ip',
      'bypass-header',
    ]);
    expect(elb.rules.has(foreign)).toBe(true);
    expect(elb.ours()).toEqual([]);
  });

  it('is idempotent: off twice is off, with nothing to delete', async () => {
    await maintenanceOn(ctx);
    await maintenanceOff(ctx);
    elb.mock.resetHistory();
    const again = await maintenanceOff(ctx);
    expect(again).toMatchObject({ maintenance: 'off', deleted: [] });
    expect(elb.mock).not.toHaveReceivedCommand(DeleteRuleCommand);
  });

  it('treats a rule deleted under it as deleted', async () => {
    await maintenanceOn(ctx);
    elb.mock
      .on(DeleteRuleCommand)
      .rejectsOnce(Object.assign(new Error('gone'), { name: 'RuleNotFoundException' }));
    const result = await maintenanceOff(ctx);
    expect(result.deleted).toHaveLength(4);
  });

  // For a rule that is gone, a DeleteRule conditioned on its tags may be denied rather than
  // answered RuleNotFound (AWS does not say which): the listener decides.
  const denied = () => Object.assign(new Error('not authorized'), { name: 'AccessDenied' });

  it('treats a denied delete of a rule that is gone as deleted', async () => {
    await maintenanceOn(ctx);
    let first = true;
    elb.mock.on(DeleteRuleCommand).callsFake(({ RuleArn }: { RuleArn: string }) => {
      elb.rules.delete(RuleArn);
      if (first) {
        first = false;
        throw denied(); // a concurrent off got there first
      }
      return {};
    });
    const result = await maintenanceOff(ctx);
    expect(result).toMatchObject({ maintenance: 'off' });
    expect(result.deleted).toHaveLength(4);
  });

  it('fails on a denied delete of a rule that is still there', async () => {
    await maintenanceOn(ctx);
    elb.mock.on(DeleteRuleCommand).rejectsOnce(denied());
    await expect(maintenanceOff(ctx)).rejects.toThrow('not authorized');
  });
});

describe('maintenanceRuleSpecs', () => {
  it('splits more than 5 capture paths over several rules (5 condition values each)', () => {
    const many = maintenanceRuleSpecs({
      firstPriority: 100,
      appTargetGroupArn: APP_TG,
      captureTargetGroupArn: CAPTURE_TG,
      capturePaths: ['/a', '/b', '/c', '/d', '/e', '/f', '/g'],
      bypassSourceCidrs: [],
    });
    expect(many.map((s) => [s.name, s.priority])).toEqual([
      ['capture-1', 100],
      ['capture-2', 101],
      ['maintenance-page', 102],
    ]);
    expect(many[1]?.conditions[0]?.PathPatternConfig?.Values).toEqual(['/f', '/g']);
  });
});

describe('the bypass value', () => {
  it.each([
    ['a wildcard, which would let any value through', `${'a'.repeat(40)}*`],
    ['too short', 'abc123'],
    ['upper case, which ALB would match case-insensitively', 'A'.repeat(40)],
  ])('is refused when %s, and nothing is created', async (_case, value) => {
    await expect(maintenanceOn({ ...ctx, newBypassValue: async () => value })).rejects.toThrow(
      'the bypass value must be 32-128 lower-case letters and digits',
    );
    expect(elb.mock).not.toHaveReceivedCommand(CreateRuleCommand);
  });

  it('is asked for only when the bypass rule is created, not when it is already on', async () => {
    let made = 0;
    const counting = { ...ctx, newBypassValue: async () => (made++, BYPASS) };
    await maintenanceOn(counting);
    await maintenanceOn(counting);
    expect(made).toBe(1);
  });
});
