import type { Action, RuleCondition } from '@aws-sdk/client-elastic-load-balancing-v2';

/** Tag key that marks a listener rule as one of ours; its value is the spec's name. */
export const MAINTENANCE_TAG = 'quiet-upgrade:maintenance';

/** Placeholders filled in when maintenance turns on, so no secret sits in the template. */
export const BYPASS_VALUE = '{{bypassHeaderValue}}';
export const PAGE_BODY = '{{maintenancePage}}';

/**
 * One maintenance rule, created when maintenance turns on and deleted when it turns off.
 * Conditions and actions are in the ELBv2 API's own shapes.
 */
export interface RuleSpec {
  /** Stable name, stored in the MAINTENANCE_TAG tag. */
  name: string;
  priority: number;
  conditions: RuleCondition[];
  actions: Action[];
}

export interface MaintenanceRuleInputs {
  /** First priority of the block the maintenance rules use (lower wins). */
  firstPriority: number;
  /** The app's target group: operators who pass the bypass reach it. */
  appTargetGroupArn: string;
  /** The capture function's target group. */
  captureTargetGroupArn: string;
  /** Exact paths the capture function answers (at most 5 per rule). */
  capturePaths: string[];
  /** Operators send this header with the value from the bypass secret. */
  bypassHeaderName?: string;
  /** Operators from these CIDRs get through. */
  bypassSourceCidrs: string[];
}

/**
 * The maintenance rule set, in the order it is created (bypass and capture before the
 * catch-all, so no one is locked out mid-way) and the reverse of the order it is deleted
 * (the catch-all first, so users get the app back at once).
 */
export function maintenanceRuleSpecs(inputs: MaintenanceRuleInputs): RuleSpec[] {
  const specs: RuleSpec[] = [];
  let priority = inputs.firstPriority;
  const forwardTo = (arn: string): Action[] => [{ Type: 'forward', TargetGroupArn: arn }];
  if (inputs.bypassHeaderName !== undefined) {
    specs.push({
      name: 'bypass-header',
      priority: priority++,
      conditions: [
        {
          Field: 'http-header',
          HttpHeaderConfig: { HttpHeaderName: inputs.bypassHeaderName, Values: [BYPASS_VALUE] },
        },
      ],
      actions: forwardTo(inputs.appTargetGroupArn),
    });
  }
  if (inputs.bypassSourceCidrs.length > 0) {
    specs.push({
      name: 'bypass-source-ip',
      priority: priority++,
      conditions: [{ Field: 'source-ip', SourceIpConfig: { Values: inputs.bypassSourceCidrs } }],
      actions: forwardTo(inputs.appTargetGroupArn),
    });
  }
  // A rule takes at most 5 condition values.
  // https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html#rules-quotas
  for (let i = 0; i < inputs.capturePaths.length; i += 5) {
    specs.push({
      name: `capture-${i / 5 + 1}`,
      priority: priority++,
      conditions: [
        {
          Field: 'path-pattern',
          PathPatternConfig: { Values: inputs.capturePaths.slice(i, i + 5) },
        },
      ],
      actions: forwardTo(inputs.captureTargetGroupArn),
    });
  }
  specs.push({
    name: 'maintenance-page',
    priority,
    conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['*'] } }],
    actions: [
      {
        Type: 'fixed-response',
        FixedResponseConfig: {
          StatusCode: '503',
          ContentType: 'text/html',
          MessageBody: PAGE_BODY,
        },
      },
    ],
  });
  return specs;
}
