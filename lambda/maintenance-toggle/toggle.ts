import {
  CreateRuleCommand,
  DeleteRuleCommand,
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTagsCommand,
  type ElasticLoadBalancingV2Client,
  type Rule,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { BYPASS_VALUE, MAINTENANCE_TAG, PAGE_BODY, type RuleSpec } from './rule-specs';

/** Rules per Application Load Balancer, not counting default rules (adjustable quota). */
// https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html#rules-quotas
export const DEFAULT_MAX_RULES = 100;

export interface ToggleContext {
  elb: ElasticLoadBalancingV2Client;
  listenerArn: string;
  specs: RuleSpec[];
  /**
   * Makes a fresh operator bypass header value, stores it where operators read it (the
   * bypass secret), and returns it; called only when the bypass rule is created.
   */
  newBypassValue(): Promise<string>;
  /** Renders the fixed-response page. */
  page(): string;
  maxRules?: number;
}

export type MaintenanceState = 'on' | 'off' | 'partial';

export interface ToggleResult {
  maintenance: MaintenanceState;
  /** Our rules on the listener after the call, in priority order. */
  rules: { name: string; priority: number; ruleArn: string }[];
  /**
   * The maintenance page rule's ARN while it is on the listener, else null: the runbook
   * deletes it by this ARN to end the page with one call.
   */
  pageRuleArn: string | null;
  created: string[];
  deleted: string[];
}

/**
 * The bypass value is in plain text in the rule's condition, which anyone allowed
 * elasticloadbalancing:DescribeRules can read, and ALB compares header values "case
 * insensitive" with "*" and "?" as wildcards. So it is fresh for every window, long, and
 * of letters and digits only: a "*" in it would let any value through.
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_HttpHeaderConditionConfig.html
 */
export const BYPASS_VALUE_PATTERN = /^[a-z0-9]{32,128}$/;

function checkBypassValue(value: string): string {
  if (!BYPASS_VALUE_PATTERN.test(value)) {
    throw new MaintenanceToggleError(
      'cannot turn maintenance on: the bypass value must be 32-128 lower-case letters and ' +
        `digits, got ${value.length} characters`,
    );
  }
  return value;
}

/** A precondition failed; nothing was changed. */
export class MaintenanceToggleError extends Error {
  override readonly name = 'MaintenanceToggleError';
}

/**
 * Turns the maintenance rules on: creates whichever of them are missing. Calling it again
 * changes nothing. Before creating anything it checks that the priorities are free and the
 * load balancer stays within its rule quota, so a failed call leaves the listener as it was.
 * The other rules (the operators' bypass, the capture paths) are created together, and the
 * page last, once they are all in place; the page's rule is the last call, so the page is on
 * for no longer than it must be (the result is built from the answers, not read again).
 */
export async function maintenanceOn(ctx: ToggleContext): Promise<ToggleResult> {
  const { all, ours } = await listRules(ctx);
  const missing = ctx.specs.filter((spec) => !ours.has(spec.name));
  if (missing.length > 0) {
    const clashes = missing.flatMap((spec) => {
      const taken = all.find((r) => r.Priority === String(spec.priority) && !isOurs(r, ours));
      return taken
        ? [`priority ${spec.priority} (for ${spec.name}) is taken by ${taken.RuleArn}`]
        : [];
    });
    if (clashes.length > 0) {
      throw new MaintenanceToggleError(`cannot turn maintenance on: ${clashes.join('; ')}`);
    }
    const maxRules = ctx.maxRules ?? DEFAULT_MAX_RULES;
    const used = await rulesOnLoadBalancer(ctx);
    if (used + missing.length > maxRules) {
      throw new MaintenanceToggleError(
        `cannot turn maintenance on: the load balancer has ${used} rules and needs ` +
          `${missing.length} more, over its quota of ${maxRules}`,
      );
    }
  }
  const needsBypass = missing.some((s) => JSON.stringify(s.conditions).includes(BYPASS_VALUE));
  const bypass = needsBypass ? checkBypassValue(await ctx.newBypassValue()) : '';
  const create = async (spec: RuleSpec): Promise<Rule> => {
    const out = await ctx.elb.send(
      new CreateRuleCommand({
        ListenerArn: ctx.listenerArn,
        Priority: spec.priority,
        Conditions: JSON.parse(JSON.stringify(spec.conditions).replaceAll(BYPASS_VALUE, bypass)),
        Actions: spec.actions.map((action) =>
          action.FixedResponseConfig?.MessageBody === PAGE_BODY
            ? {
                ...action,
                FixedResponseConfig: { ...action.FixedResponseConfig, MessageBody: ctx.page() },
              }
            : action,
        ),
        Tags: [{ Key: MAINTENANCE_TAG, Value: spec.name }],
      }),
    );
    const rule = out.Rules?.[0];
    if (rule?.RuleArn === undefined) {
      throw new MaintenanceToggleError(`CreateRule for ${spec.name} returned no rule`);
    }
    return rule;
  };
  const after = new Map(ours);
  const others = missing.filter((spec) => !isPage(spec));
  const rules = await Promise.all(others.map(create));
  others.forEach((spec, i) => after.set(spec.name, rules[i] as Rule));
  for (const spec of missing.filter(isPage)) after.set(spec.name, await create(spec));
  return { ...summarize(ctx, after), created: missing.map((s) => s.name), deleted: [] };
}

/** The catch-all rule that answers with the page; the others keep paths working. */
function isPage(spec: RuleSpec): boolean {
  return spec.actions.some((a) => a.FixedResponseConfig?.MessageBody === PAGE_BODY);
}

/**
 * Turns the maintenance rules off: deletes every rule tagged as ours, the catch-all page
 * first. Calling it again changes nothing.
 */
export async function maintenanceOff(ctx: ToggleContext): Promise<ToggleResult> {
  const { ours } = await listRules(ctx);
  const order = [...ctx.specs].reverse().map((s) => s.name);
  const names = [...ours.keys()].sort(
    (a, b) => rank(order, a) - rank(order, b) || a.localeCompare(b),
  );
  const deleted: string[] = [];
  for (const name of names) {
    const rule = ours.get(name);
    if (rule?.RuleArn === undefined) continue;
    try {
      await ctx.elb.send(new DeleteRuleCommand({ RuleArn: rule.RuleArn }));
    } catch (err) {
      // Already gone (a concurrent off): that is the state we want. The role may delete only
      // rules tagged as ours; for a rule that is gone, whether ELB answers RuleNotFound or
      // AccessDenied (no tag to match) AWS does not say, so a denial is checked against the
      // listener's rules before it counts.
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html#awselasticloadbalancingv2-DeleteRule
      const code = (err as { name?: string }).name ?? '';
      if (code !== 'RuleNotFoundException') {
        if (!/^AccessDenied(Exception)?$/.test(code)) throw err;
        const still = await describeRules(ctx.elb, ctx.listenerArn);
        if (still.some((r) => r.RuleArn === rule.RuleArn)) throw err;
      }
    }
    deleted.push(name);
  }
  return { ...(await status(ctx)), created: [], deleted };
}

/** Which of our rules are on the listener: all of them, none, or some. */
export async function status(
  ctx: ToggleContext,
): Promise<Omit<ToggleResult, 'created' | 'deleted'>> {
  const { ours } = await listRules(ctx);
  return summarize(ctx, ours);
}

function summarize(
  ctx: ToggleContext,
  ours: Map<string, Rule>,
): Omit<ToggleResult, 'created' | 'deleted'> {
  const rules = [...ours.entries()]
    .map(([name, r]) => ({ name, priority: Number(r.Priority), ruleArn: r.RuleArn ?? '' }))
    .sort((a, b) => a.priority - b.priority);
  const maintenance: MaintenanceState =
    rules.length === 0 ? 'off' : ctx.specs.every((s) => ours.has(s.name)) ? 'on' : 'partial';
  const page = ctx.specs.find(isPage);
  const pageRuleArn = (page && ours.get(page.name)?.RuleArn) ?? null;
  return { maintenance, rules, pageRuleArn };
}

function rank(order: string[], name: string): number {
  const i = order.indexOf(name);
  return i === -1 ? -1 : i; // unknown (older) rules of ours go first
}

function isOurs(rule: Rule, ours: Map<string, Rule>): boolean {
  return [...ours.values()].some((r) => r.RuleArn === rule.RuleArn);
}

async function listRules(ctx: ToggleContext): Promise<{ all: Rule[]; ours: Map<string, Rule> }> {
  const all = await describeRules(ctx.elb, ctx.listenerArn);
  const ours = new Map<string, Rule>();
  const arns = all.filter((r) => !r.IsDefault).map((r) => r.RuleArn ?? '');
  // DescribeTags takes at most 20 resource ARNs per call.
  // https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DescribeTags.html
  for (let i = 0; i < arns.length; i += 20) {
    const { TagDescriptions = [] } = await ctx.elb.send(
      new DescribeTagsCommand({ ResourceArns: arns.slice(i, i + 20) }),
    );
    for (const description of TagDescriptions) {
      const name = description.Tags?.find((t) => t.Key === MAINTENANCE_TAG)?.Value;
      const rule = all.find((r) => r.RuleArn === description.ResourceArn);
      if (name !== undefined && rule !== undefined) ours.set(name, rule);
    }
  }
  return { all, ours };
}

async function describeRules(
  elb: ElasticLoadBalancingV2Client,
  listenerArn: string,
): Promise<Rule[]> {
  const rules: Rule[] = [];
  let marker: string | undefined;
  do {
    const page = await elb.send(
      new DescribeRulesCommand({ ListenerArn: listenerArn, Marker: marker }),
    );
    rules.push(...(page.Rules ?? []));
    marker = page.NextMarker;
  } while (marker !== undefined);
  return rules;
}

/** Non-default rules on every listener of the listener's load balancer. */
async function rulesOnLoadBalancer(ctx: ToggleContext): Promise<number> {
  const { Listeners: [listener] = [] } = await ctx.elb.send(
    new DescribeListenersCommand({ ListenerArns: [ctx.listenerArn] }),
  );
  if (listener?.LoadBalancerArn === undefined) {
    throw new MaintenanceToggleError(`listener ${ctx.listenerArn} not found`);
  }
  let count = 0;
  let marker: string | undefined;
  do {
    const page = await ctx.elb.send(
      new DescribeListenersCommand({ LoadBalancerArn: listener.LoadBalancerArn, Marker: marker }),
    );
    for (const l of page.Listeners ?? []) {
      if (l.ListenerArn === undefined) continue;
      count += (await describeRules(ctx.elb, l.ListenerArn)).filter((r) => !r.IsDefault).length;
    }
    marker = page.NextMarker;
  } while (marker !== undefined);
  return count;
}
