// AWS API actions this function calls: see ./verify-green.ts (this file calls none itself).
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { RDSClient } from '@aws-sdk/client-rds';
import { z } from 'zod';
import { logger } from '../shared/logger';
import { verifyGreen, type VerifyGreenEvent, type VerifyGreenResult } from './verify-green';

const clients = { rds: new RDSClient({}), cloudwatch: new CloudWatchClient({}) };

const text = z.string().min(1);
/** Only the fields this function reads; validate-input has already checked the whole plan. */
const Event = z.object({
  plan: z.looseObject({
    sourceIdentifier: text,
    sourceArn: text,
    currentEngineVersion: text,
    targetEngineVersion: text,
    maxReplicationLagMb: z.number().positive(),
  }),
  blueGreenDeploymentIdentifier: text,
});

/** Before the switchover: is green ready to take over? */
export const handler = async (event: unknown): Promise<VerifyGreenResult> => {
  const parsed = Event.safeParse(event);
  if (!parsed.success) {
    throw new Error(`invalid verify-green event: ${z.prettifyError(parsed.error)}`);
  }
  const result = await verifyGreen(clients, event as VerifyGreenEvent);
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
