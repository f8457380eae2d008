// AWS API actions called (in ./restore): rds:DescribeDBInstances, rds:DescribeDBParameters,
// rds:ModifyDBParameterGroup, rds:RebootDBInstance, rds:ModifyDBInstance.
import { RDSClient } from '@aws-sdk/client-rds';
import { logger } from '../shared/logger';
import { type RestoreOldBlueEvent, type RestoreOldBlueResult, restoreOldBlue } from './restore';

const rds = new RDSClient({});

/**
 * Restores the old blue as the writer after the new writer failed verification, one step per
 * call. The state machine calls it in a Wait → Task → Choice loop until `done`; an error means
 * an operator is needed.
 */
export const handler = async (event: RestoreOldBlueEvent): Promise<RestoreOldBlueResult> => {
  const result = await restoreOldBlue(rds, event.plan);
  logger.info('restore old blue', { result });
  return result;
};
