// AWS API actions this function calls: see ./verify-green.ts (this file calls none itself).
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import * as v from 'valibot';
import { deployedPlan } from '../shared/deployed';
import { logger } from '../shared/logger';
import { verifyGreen, type VerifyGreenEvent, type VerifyGreenResult } from './verify-green';

const clients = { rds: new RDSClient({}), cloudwatch: new CloudWatchClient({}) };

const text = v.pipe(v.string(), v.minLength(1));
/** Only the fields this function reads; validate-input has already checked the whole plan. */
const Event = v.object({
  plan: v.looseObject({
    sourceIdentifier: text,
    sourceArn: text,
    currentEngineVersion: text,
    targetEngineVersion: text,
    maxReplicationLagMb: v.pipe(v.number(), v.gtValue(0)),
  }),
  blueGreenDeploymentIdentifier: text,
});

/** Before the switchover: is green ready to take over? */
export const handler = async (event: unknown): Promise<VerifyGreenResult> => {
  const parsed = v.safeParse(Event, event);
  if (!parsed.success) {
    throw new Error(`invalid verify-green event: ${v.summarize(parsed.issues)}`);
  }
  // The identifiers come from the environment (../shared/deployed), never from the event.
  const plan = deployedPlan((event as VerifyGreenEvent).plan);
  const result = await verifyGreen(clients, { ...(event as VerifyGreenEvent), plan });
  logger.info('verify green', {
    passed: result.passed,
    transient: result.transient,
    failures: result.failures,
    replication: result.replication,
    lag: result.lag,
    green: result.green,
  });
  return result;
};
