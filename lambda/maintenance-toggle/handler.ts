import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { randomBytes } from 'node:crypto';
import * as v from 'valibot';
import { requiredEnv } from '../shared/env';
import { ISO_DATETIME } from '../shared/formats';
import { logger } from '../shared/logger';
import { maintenancePage } from '../shared/maintenance-page';
import type { RuleSpec } from './rule-specs';
import { maintenanceOff, maintenanceOn, status, type ToggleResult } from './toggle';

const elb = new ElasticLoadBalancingV2Client({});
const secrets = new SecretsManagerClient({});
const listenerArn = requiredEnv('LISTENER_ARN');
const specs = JSON.parse(requiredEnv('MAINTENANCE_RULES')) as RuleSpec[];
const bypassSecretArn = process.env.BYPASS_SECRET_ARN;
const expectedMinutes = Number(process.env.EXPECTED_MAINTENANCE_MINUTES ?? '5');

const ACTION = 'must be "on", "off" or "status"';
const ISO_TIME = 'must be an ISO 8601 time';
const Input = v.strictObject({
  action: v.picklist(['on', 'off', 'status'], ACTION),
  /** When the page should say to come back; defaults to now + the expected duration. */
  until: v.optional(v.pipe(v.string(ISO_TIME), v.regex(ISO_DATETIME, ISO_TIME))),
});

/**
 * Turns the maintenance rules on or off (idempotent), or reports their state. Called by the
 * upgrade state machine, the watchdog, and operators (aws lambda invoke).
 */
export const handler = async (
  event: unknown,
): Promise<ToggleResult | Omit<ToggleResult, 'created' | 'deleted'>> => {
  const parsed = v.safeParse(Input, event);
  if (!parsed.success) throw new Error(problem(parsed.issues[0], event));
  const { action, until } = parsed.output;
  const ctx = {
    elb,
    listenerArn,
    specs,
    // 24 random bytes as 48 hex digits: lower case, so ALB's case-insensitive match keeps
    // all 192 bits. Stored first: a rule whose value no operator can read is no bypass.
    newBypassValue: async () => {
      if (bypassSecretArn === undefined) throw new Error('BYPASS_SECRET_ARN is not set');
      const value = randomBytes(24).toString('hex');
      await secrets.send(
        new PutSecretValueCommand({ SecretId: bypassSecretArn, SecretString: value }),
      );
      return value;
    },
    page: () =>
      maintenancePage(until ? new Date(until) : new Date(Date.now() + expectedMinutes * 60_000)),
  };
  const result =
    action === 'on'
      ? await maintenanceOn(ctx)
      : action === 'off'
        ? await maintenanceOff(ctx)
        : await status(ctx);
  logger.info(`maintenance ${action}`, { result });
  return result;
};

/** The first problem with the input, naming the field and showing the value received. */
function problem(issue: v.InferIssue<typeof Input>, event: unknown): string {
  const key = issue.path?.[0]?.key;
  if (typeof key !== 'string') {
    return `the input must be an object such as {"action":"status"}, got: ${JSON.stringify(event)}`;
  }
  const got = JSON.stringify((event as Record<string, unknown>)[key]);
  // valibot reports an unknown key, and a missing one, on the object rather than the field.
  if (issue.expected === 'never') {
    return `${key} is not a field (only action and until are), got: ${got}`;
  }
  const message = key === 'action' ? ACTION : issue.message;
  return `${key} ${message}, got: ${got}`;
}
