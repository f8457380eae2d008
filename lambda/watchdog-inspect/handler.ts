// AWS API actions called (in ./inspect): lambda:InvokeFunction (Invoke),
// lambda:GetEventSourceMapping, rds:DescribeBlueGreenDeployments, rds:DescribeDBInstances,
// rds:DescribeDBClusters (Aurora), states:ListExecutions.
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { deployedPlan } from '../shared/deployed';
import { logger } from '../shared/logger';
import { inspect, type WatchdogInspectEvent, type WatchdogInspectResult } from './inspect';

const lambda = new LambdaClient({});
const rds = new RDSClient({});
const sfn = new SFNClient({});

/**
 * Inspects the real state after an upgrade execution ended ABORTED, TIMED_OUT or FAILED
 * without running its own rollback, and says what the recovery state machine should do.
 * It changes nothing.
 */
export const handler = async (event: WatchdogInspectEvent): Promise<WatchdogInspectResult> => {
  // The identifiers come from the environment (../shared/deployed), never from the event.
  const plan = deployedPlan(event.plan);
  const result = await inspect({ lambda, rds, sfn }, plan, event.stoppedExecutionArn);
  logger.info('watchdog inspection', { result });
  return result;
};
