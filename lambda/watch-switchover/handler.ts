// AWS API actions this function calls: rds:DescribeBlueGreenDeployments (./watch.ts).
import { RDSClient } from '@aws-sdk/client-rds';
import type { Context } from 'aws-lambda';
import * as v from 'valibot';
import { ISO_DATETIME } from '../shared/formats';
import { logger } from '../shared/logger';
import { type WatchResult, watchSwitchover } from './watch';

const rds = new RDSClient({});

const Event = v.union([
  // Called before the page goes on, so the watch starts warm (upgrade-runbook.ts).
  v.strictObject({ warm: v.literal(true) }),
  v.strictObject({
    deploymentId: v.pipe(v.string(), v.minLength(1)),
    startedAt: v.pipe(v.string(), v.regex(ISO_DATETIME, 'must be an ISO 8601 time')),
    maxSeconds: v.pipe(v.number(), v.integer(), v.minValue(1)),
    running: v.boolean(),
  }),
]);

/** Watches a running switchover until it ends (./watch.ts). */
export const handler = async (
  event: unknown,
  context: Pick<Context, 'getRemainingTimeInMillis'>,
): Promise<WatchResult | { warm: true }> => {
  const parsed = v.safeParse(Event, event);
  if (!parsed.success) {
    throw new Error(
      `invalid watch-switchover event: ${v.summarize(parsed.issues)}; got: ${JSON.stringify(event)}`,
    );
  }
  if ('warm' in parsed.output) return { warm: true };
  const result = await watchSwitchover(
    { rds, remainingMs: () => context.getRemainingTimeInMillis() },
    parsed.output,
  );
  logger.info('switchover watched', { ...result });
  return result;
};
