// AWS API actions this function calls: see ./preflight.ts (this file calls none itself).
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import * as v from 'valibot';
import { deployedPlan } from '../shared/deployed';
import { ENGINES } from '../shared/engines';
import { logger } from '../shared/logger';
import { preflight, type PreflightEvent, type PreflightResult } from './preflight';

const clients = {
  rds: new RDSClient({}),
  sfn: new SFNClient({}),
  sqs: new SQSClient({}),
  lambda: new LambdaClient({}),
  elb: new ElasticLoadBalancingV2Client({}),
};

const text = v.pipe(v.string(), v.minLength(1));
/** Only the fields this function reads; validate-input has already checked the whole plan. */
const Event = v.object({
  plan: v.looseObject({
    sourceIdentifier: text,
    sourceArn: text,
    // Every engine: preflight itself answers an unsupported one with a failure that says so.
    engine: v.picklist(ENGINES),
    currentEngineVersion: text,
    targetEngineVersion: text,
    listenerArn: text,
    queues: v.array(v.looseObject({ name: text, url: text, arn: text })),
    mappings: v.array(v.looseObject({ name: text, uuid: text })),
  }),
  stateMachineArn: text,
  executionArn: text,
});

/** The upgrade's first check: is everything in place before anything changes? */
export const handler = async (event: unknown): Promise<PreflightResult> => {
  const parsed = v.safeParse(Event, event);
  if (!parsed.success) throw new Error(`invalid preflight event: ${v.summarize(parsed.issues)}`);
  // The identifiers come from the environment (../shared/deployed), never from the event.
  const plan = deployedPlan((event as PreflightEvent).plan);
  const result = await preflight(clients, { ...(event as PreflightEvent), plan });
  logger.info('preflight', { passed: result.passed, failures: result.failures });
  return result;
};
