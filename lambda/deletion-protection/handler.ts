// AWS API actions this function calls: see ./protection.ts.
import { RDSClient } from '@aws-sdk/client-rds';
import { z } from 'zod';
import { logger } from '../shared/logger';
import { protectWriter, unprotectGreen, type UnprotectGreenResult } from './protection';

const rds = new RDSClient({});

const text = z.string().min(1);
const Plan = z.looseObject({ sourceIdentifier: text, sourceArn: text });
const Event = z.discriminatedUnion('action', [
  z.object({
    action: z.literal('unprotect-green'),
    plan: Plan,
    blueGreenDeploymentIdentifier: text,
  }),
  z.object({ action: z.literal('protect-writer'), plan: Plan }),
]);

/**
 * Deletion protection around the blue/green deployment: off on green before it is deleted
 * (`unprotect-green`), on for the new writer after a switchover (`protect-writer`).
 */
export const handler = async (
  event: unknown,
): Promise<UnprotectGreenResult | { protected: true; changed: boolean }> => {
  const parsed = Event.safeParse(event);
  if (!parsed.success) {
    throw new Error(`invalid deletion-protection event: ${z.prettifyError(parsed.error)}`);
  }
  const e = parsed.data;
  if (e.action === 'unprotect-green') {
    const result = await unprotectGreen(rds, e.plan, e.blueGreenDeploymentIdentifier);
    logger.info('unprotect green', { result });
    return result;
  }
  const changed = await protectWriter(rds, e.plan);
  logger.info('protect writer', { changed });
  return { protected: true, changed };
};
