// AWS API actions called (in ./restore): rds:DescribeDBInstances, rds:CopyDBParameterGroup,
// rds:ModifyDBParameterGroup, rds:ModifyDBInstance, rds:RebootDBInstance; for an Aurora plan
// (./restore-cluster) rds:DescribeDBClusters, rds:DescribeDBInstances,
// rds:CopyDBClusterParameterGroup, rds:ModifyDBClusterParameterGroup, rds:ModifyDBCluster,
// rds:RebootDBInstance (the clusters' writer instances); and states:DescribeExecution
// (../shared/caller).
import { RDSClient, RebootDBInstanceCommand } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { requireRunningExecution } from '../shared/caller';
import { isClusterEngine } from '../shared/cluster';
import { deployedPlan } from '../shared/deployed';
import { requiredEnv } from '../shared/env';
import { logger } from '../shared/logger';
import { FAILED_WRITER_SUFFIX, OLD_BLUE_SUFFIX, type UpgradePlan } from '../shared/upgrade-plan';
import {
  type RestoreOldBlueEvent,
  type RestoreOldBlueResult,
  type RestoreProgress,
  restoreOldBlue,
} from './restore';
import { fenceOldBlueCluster, formerWriterInstance, prepareFence } from './restore-cluster';

const rds = new RDSClient({});
const sfn = new SFNClient({});
/** The state machines whose RUNNING executions may call this function. */
const callers = JSON.parse(requiredEnv('CALLER_STATE_MACHINES')) as string[];

/**
 * Ends every session on a former writer the hard way, when they could not be ended one by
 * one: a reboot restarts the engine. The state machine's fallback; RDS calls that name a DB
 * instance are made here, with the SDK, not as Step Functions SDK integrations (see README).
 * For an Aurora plan the former writer is a DB cluster, and its writer instance is rebooted
 * (RebootDBCluster is "only for a non-Aurora Multi-AZ DB cluster").
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RebootInstance.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBCluster.html
 */
export interface RebootFormerWriterEvent {
  action: 'reboot-former-writer';
  /** The calling execution's ARN ($$.Execution.Id). */
  execution: string;
  plan: { sourceIdentifier: string };
  on: 'old-blue' | 'failed-writer';
}

/**
 * Aurora only: old blue fenced by its own DB cluster parameter group, one step per call, before
 * the deployment is deleted (fenceOldBlueCluster). The state machine loops until `done`.
 */
export interface FenceOldBlueEvent {
  /** prepare-fence: before the page goes on, the fence group made but not attached. */
  action: 'fence-old-blue' | 'prepare-fence';
  /** The calling execution's ARN ($$.Execution.Id). */
  execution: string;
  plan: Pick<UpgradePlan, 'sourceIdentifier' | 'engine'>;
  /** The previous call's result; absent on the first call. */
  progress?: Partial<RestoreProgress>;
}

export interface RebootFormerWriterResult {
  /** The instance rebooted: for Aurora, the former writer cluster's writer instance. */
  instance: string;
  /** Not counted: a reboot ends them all. */
  ended: null;
  detail: string;
}

/**
 * Restores the old blue as the writer after the new writer failed verification, one step per
 * call. The state machine calls it in a Wait → Task → Choice loop until `done`; an error means
 * an operator is needed. With `action: 'reboot-former-writer'` it reboots old blue or the
 * failed writer instead.
 */
export const handler = async (
  event: RestoreOldBlueEvent | RebootFormerWriterEvent | FenceOldBlueEvent,
): Promise<RestoreOldBlueResult | RebootFormerWriterResult> => {
  // The instance names and the version blue runs come from the environment (../shared/deployed).
  const plan = deployedPlan(event.plan);
  await requireRunningExecution(sfn, (event as { execution?: unknown }).execution, callers);
  if ('action' in event && event.action === 'reboot-former-writer') {
    const suffix = event.on === 'failed-writer' ? FAILED_WRITER_SUFFIX : OLD_BLUE_SUFFIX;
    const former = `${plan.sourceIdentifier}${suffix}`;
    const cluster = isClusterEngine(plan.engine);
    const instance = cluster ? await formerWriterInstance(rds, plan, event.on) : former;
    await rds.send(new RebootDBInstanceCommand({ DBInstanceIdentifier: instance }));
    logger.info('reboot former writer', { instance });
    return {
      instance,
      ended: null,
      detail: cluster
        ? `rebooted ${instance}, the writer instance of DB cluster ${former}, which ends every session on it`
        : `rebooted ${instance}, which ends every session on it`,
    };
  }
  if (
    'action' in event &&
    (event.action === 'fence-old-blue' || event.action === 'prepare-fence')
  ) {
    if (!isClusterEngine(plan.engine)) {
      // "Deleting a blue/green deployment doesn't affect the blue environment."
      // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html
      throw new Error(
        `${event.action} is for Aurora DB clusters; engine ${plan.engine} keeps old blue read-only without the deployment`,
      );
    }
    if (event.action === 'prepare-fence') {
      const prepared = await prepareFence(rds, plan);
      logger.info('prepared old blue fence', prepared);
      return {
        done: true,
        step: 'fence-prepared',
        detail: `${prepared.group} is ready to fence old blue`,
        fenced: false,
        unlocked: false,
      };
    }
    const result = await fenceOldBlueCluster(rds, plan, event.progress);
    logger.info('fence old blue', { result });
    return result;
  }
  const { progress } = event as RestoreOldBlueEvent;
  const result = await restoreOldBlue(rds, plan as RestoreOldBlueEvent['plan'], progress);
  logger.info('restore old blue', { result });
  return result;
};
