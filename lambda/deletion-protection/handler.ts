// AWS API actions this function calls: see ./protection.ts; and states:DescribeExecution
// (../shared/caller).
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import * as v from 'valibot';
import { requireRunningExecution, upgradeRunOf } from '../shared/caller';
import { deployedPlan } from '../shared/deployed';
import { requiredEnv } from '../shared/env';
import { logger } from '../shared/logger';
import { protectWriter, unprotectGreen, type UnprotectGreenResult } from './protection';

const rds = new RDSClient({});
const sfn = new SFNClient({});
/** The state machines whose RUNNING executions may call this function. */
const callers = JSON.parse(requiredEnv('CALLER_STATE_MACHINES')) as string[];
/** The upgrade machine: the runs whose deployments this function may change. */
const upgradeMachine = requiredEnv('UPGRADE_STATE_MACHINE');

const text = v.pipe(v.string(), v.minLength(1));
const Plan = v.looseObject({ sourceIdentifier: text, sourceArn: text });
const Event = v.variant('action', [
  v.object({
    action: v.literal('unprotect-green'),
    plan: Plan,
    blueGreenDeploymentIdentifier: text,
  }),
  v.object({ action: v.literal('protect-writer'), plan: Plan }),
]);

/**
 * Deletion protection around the blue/green deployment: off on green before it is deleted
 * (`unprotect-green`), on for the new writer after a switchover (`protect-writer`).
 */
export const handler = async (
  event: unknown,
): Promise<UnprotectGreenResult | { protected: true; changed: boolean }> => {
  const parsed = v.safeParse(Event, event);
  if (!parsed.success) {
    throw new Error(`invalid deletion-protection event: ${v.summarize(parsed.issues)}`);
  }
  // The instance (Aurora: cluster) names and the engine come from the environment
  // (../shared/deployed), never from the event.
  const plan = deployedPlan(parsed.output.plan);
  const caller = await requireRunningExecution(
    sfn,
    (event as { execution?: unknown }).execution,
    callers,
  );
  const e = parsed.output;
  if (e.action === 'unprotect-green') {
    // Only the deployment of the run the caller acts for (itself, or the run the watchdog
    // recovers): the one carrying that run's name in its tag.
    const owner = upgradeRunOf(caller, upgradeMachine);
    const result = await unprotectGreen(rds, plan, e.blueGreenDeploymentIdentifier, owner);
    logger.info('unprotect green', { result });
    return result;
  }
  const changed = await protectWriter(rds, plan);
  logger.info('protect writer', { changed });
  return { protected: true, changed };
};
