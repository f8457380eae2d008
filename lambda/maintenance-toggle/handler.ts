import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { z } from 'zod';
import { requiredEnv } from '../shared/env';
import { logger } from '../shared/logger';
import { maintenancePage } from '../shared/maintenance-page';
import type { RuleSpec } from './rule-specs';
import { maintenanceOff, maintenanceOn, status, type ToggleResult } from './toggle';

const elb = new ElasticLoadBalancingV2Client({});
const listenerArn = requiredEnv('LISTENER_ARN');
const specs = JSON.parse(requiredEnv('MAINTENANCE_RULES')) as RuleSpec[];
const bypassSecretArn = process.env.BYPASS_SECRET_ARN;
const expectedMinutes = Number(process.env.EXPECTED_MAINTENANCE_MINUTES ?? '5');

const Input = z.strictObject({
  action: z.enum(['on', 'off', 'status'], { error: 'must be "on", "off" or "status"' }),
  /** When the page should say to come back; defaults to now + the expected duration. */
  until: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time' }).optional(),
});

/**
 * Turns the maintenance rules on or off (idempotent), or reports their state. Called by the
 * upgrade state machine, the watchdog, and operators (aws lambda invoke).
 */
export const handler = async (
  event: unknown,
): Promise<ToggleResult | Omit<ToggleResult, 'created' | 'deleted'>> => {
  const parsed = Input.safeParse(event);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || 'input';
    const got = (event as Record<string, unknown> | null)?.[String(issue?.path[0])];
    throw new Error(`${field} ${issue?.message ?? 'is invalid'}, got: ${JSON.stringify(got)}`);
  }
  const { action, until } = parsed.data;
  const ctx = {
    elb,
    listenerArn,
    specs,
    bypassValue: async () => {
      if (bypassSecretArn === undefined) throw new Error('BYPASS_SECRET_ARN is not set');
      const value = await getSecret(bypassSecretArn, { maxAge: 60 });
      if (typeof value !== 'string' || value === '') throw new Error('bypass secret is empty');
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
