import { createHash } from 'node:crypto';
import { glob, resourceTagContext } from '../iam';
import type { ListenerSpec } from '../synthesized';
import { AwsError, type Service } from './core';

/**
 * An Application Load Balancer listener and its rules, as the maintenance toggle changes
 * them and as requests meet them: rules in priority order (lowest first), every condition of
 * a rule must match, the default action last.
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-update-rules.html
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html
 */
interface Rule {
  arn: string;
  priority: number;
  conditions: Condition[];
  actions: Action[];
}

interface Condition {
  Field: string;
  Values?: string[];
  PathPatternConfig?: { Values: string[] };
  HostHeaderConfig?: { Values: string[] };
  HttpHeaderConfig?: { HttpHeaderName: string; Values: string[] };
  SourceIpConfig?: { Values: string[] };
}

interface Action {
  Type: string;
  TargetGroupArn?: string;
  ForwardConfig?: { TargetGroups?: { TargetGroupArn: string }[] };
  FixedResponseConfig?: { StatusCode: string; ContentType?: string; MessageBody?: string };
}

interface Listener {
  arn: string;
  loadBalancerArn: string;
  defaultActions: Action[];
  rules: Rule[];
}

export interface Request {
  path: string;
  headers?: Record<string, string>;
  sourceIp?: string;
}

export type Routed =
  | { type: 'forward'; targetGroupArn: string }
  | { type: 'fixed-response'; statusCode: string; body: string }
  | { type: 'other'; actionType: string };

export class ElbModel {
  readonly listeners = new Map<string, Listener>();
  private readonly tags = new Map<string, { Key: string; Value: string }[]>();
  private nextRule = 1;

  constructor(
    specs: ListenerSpec[],
    private readonly onChange: () => void,
  ) {
    for (const s of specs) {
      this.listeners.set(s.arn, {
        arn: s.arn,
        loadBalancerArn: s.loadBalancerArn,
        defaultActions: s.defaultActions as unknown as Action[],
        rules: [],
      });
    }
  }

  private ruleExists(arn: string): boolean {
    return [...this.listeners.values()].some((l) => l.rules.some((r) => r.arn === arn));
  }

  private listener(arn: unknown): Listener {
    const l = this.listeners.get(String(arn));
    if (l === undefined)
      throw new AwsError('ListenerNotFoundException', `Listener '${String(arn)}' not found`);
    return l;
  }

  private ruleArn(listener: Listener, n: number): string {
    const id = createHash('sha1').update(`${listener.arn}/${n}`).digest('hex').slice(0, 16);
    return `${listener.arn.replace(':listener/', ':listener-rule/')}/${id}`;
  }

  /**
   * Describe* support no resource-level permissions; CreateRule is authorized on the listener
   * and, with tags, needs elasticloadbalancing:AddTags with the CreateAction condition key.
   * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html
   * https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/tagging-resources-during-creation.html
   */
  readonly service: Service = {
    CreateRule: {
      iam: (i) => {
        const listener = this.listener(i.ListenerArn);
        const requests = [{ action: 'elasticloadbalancing:CreateRule', resource: listener.arn }];
        if (Array.isArray(i.Tags) && i.Tags.length > 0) {
          requests.push({
            action: 'elasticloadbalancing:AddTags',
            resource: this.ruleArn(listener, this.nextRule),
            context: { 'elasticloadbalancing:CreateAction': 'CreateRule' },
          } as (typeof requests)[number]);
        }
        return requests;
      },
      run: (i) => {
        const listener = this.listener(i.ListenerArn);
        const priority = Number(i.Priority);
        if (listener.rules.some((r) => r.priority === priority)) {
          throw new AwsError(
            'PriorityInUseException',
            `Priority '${priority}' is currently in use`,
          );
        }
        const rule: Rule = {
          arn: this.ruleArn(listener, this.nextRule++),
          priority,
          conditions: (i.Conditions ?? []) as Condition[],
          actions: (i.Actions ?? []) as Action[],
        };
        listener.rules.push(rule);
        listener.rules.sort((a, b) => a.priority - b.priority);
        this.tags.set(rule.arn, (i.Tags ?? []) as { Key: string; Value: string }[]);
        this.onChange();
        return { Rules: [this.describeRule(rule)] };
      },
    },
    DeleteRule: {
      // The rule's tags (from CreateRule's Tags) are in the request context: DeleteRule and
      // the listener-rule resource type take aws:ResourceTag/${TagKey}.
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html#awselasticloadbalancingv2-DeleteRule
      iam: (i) => [
        {
          action: 'elasticloadbalancing:DeleteRule',
          resource: String(i.RuleArn),
          context: resourceTagContext(this.tags.get(String(i.RuleArn))),
          ...(this.ruleExists(String(i.RuleArn)) ? {} : { resourceMissing: true }),
        },
      ],
      run: (i) => {
        for (const l of this.listeners.values()) {
          const index = l.rules.findIndex((r) => r.arn === i.RuleArn);
          if (index >= 0) {
            l.rules.splice(index, 1);
            this.tags.delete(String(i.RuleArn));
            this.onChange();
            return {};
          }
        }
        throw new AwsError('RuleNotFoundException', `One or more rules not found`);
      },
    },
    DescribeRules: {
      iam: () => [{ action: 'elasticloadbalancing:DescribeRules', resource: '*' }],
      run: (i) => {
        const l = this.listener(i.ListenerArn);
        return {
          Rules: [
            ...l.rules.map((r) => this.describeRule(r)),
            {
              RuleArn: `${l.arn.replace(':listener/', ':listener-rule/')}/default`,
              Priority: 'default',
              Conditions: [],
              Actions: l.defaultActions,
              IsDefault: true,
            },
          ],
        };
      },
    },
    DescribeTags: {
      iam: () => [{ action: 'elasticloadbalancing:DescribeTags', resource: '*' }],
      run: (i) => {
        const arns = (i.ResourceArns ?? []) as string[];
        // At most 20 resources per call.
        // https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTags.html
        if (arns.length > 20) throw new AwsError('ValidationError', 'At most 20 resource ARNs');
        return {
          TagDescriptions: arns
            .filter((a) => this.tags.has(a))
            .map((a) => ({ ResourceArn: a, Tags: this.tags.get(a) })),
        };
      },
    },
    DescribeListeners: {
      iam: () => [{ action: 'elasticloadbalancing:DescribeListeners', resource: '*' }],
      run: (i) => {
        const wanted = i.ListenerArns as string[] | undefined;
        const found =
          wanted !== undefined
            ? wanted.map((a) => this.listener(a))
            : [...this.listeners.values()].filter((l) => l.loadBalancerArn === i.LoadBalancerArn);
        return {
          Listeners: found.map((l) => ({
            ListenerArn: l.arn,
            LoadBalancerArn: l.loadBalancerArn,
            DefaultActions: l.defaultActions,
          })),
        };
      },
    },
  };

  private describeRule(r: Rule) {
    return {
      RuleArn: r.arn,
      Priority: String(r.priority),
      Conditions: r.conditions,
      Actions: r.actions,
      IsDefault: false,
    };
  }

  /** Where a request goes now. */
  route(listenerArn: string, request: Request): Routed {
    const l = this.listener(listenerArn);
    const rule = l.rules.find((r) => r.conditions.every((c) => matches(c, request)));
    return actionOf(rule?.actions ?? l.defaultActions);
  }
}

function actionOf(actions: Action[]): Routed {
  // Authentication actions come first; the last action decides.
  const a = actions.find((x) => ['forward', 'fixed-response', 'redirect'].includes(x.Type));
  if (a?.Type === 'forward') {
    return {
      type: 'forward',
      targetGroupArn: a.TargetGroupArn ?? a.ForwardConfig?.TargetGroups?.[0]?.TargetGroupArn ?? '',
    };
  }
  if (a?.Type === 'fixed-response') {
    return {
      type: 'fixed-response',
      statusCode: a.FixedResponseConfig?.StatusCode ?? '',
      body: a.FixedResponseConfig?.MessageBody ?? '',
    };
  }
  return { type: 'other', actionType: a?.Type ?? 'none' };
}

function matches(c: Condition, r: Request): boolean {
  switch (c.Field) {
    case 'path-pattern':
      // Path patterns are case-sensitive, with * and ? wildcards.
      return (c.PathPatternConfig?.Values ?? c.Values ?? []).some((v) => glob(v, r.path, false));
    case 'http-header': {
      const name = c.HttpHeaderConfig?.HttpHeaderName.toLowerCase() ?? '';
      const value = Object.entries(r.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];
      return (
        value !== undefined && (c.HttpHeaderConfig?.Values ?? []).some((v) => glob(v, value, true))
      );
    }
    case 'source-ip':
      return (c.SourceIpConfig?.Values ?? []).some((cidr) => inCidr(r.sourceIp ?? '', cidr));
    default:
      throw new Error(`the rehearsal does not route on the ${c.Field} condition`);
  }
}

function inCidr(ip: string, cidr: string): boolean {
  const [base = '', bits = '32'] = cidr.split('/');
  const toInt = (a: string) => a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || !/^\d+\.\d+\.\d+\.\d+$/.test(base)) return false;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (toInt(ip) & mask) === (toInt(base) & mask);
}
