// AWS API actions this function calls: see ./verify-writer.ts (rds:DescribeDBInstances), plus
// secretsmanager:GetSecretValue on DB_SECRET_ARN through ../shared/database.ts.
import { RDSClient } from '@aws-sdk/client-rds';
import { z } from 'zod';
import { database, resetDatabase } from '../shared/database';
import { logger } from '../shared/logger';
import { verifyWriter, type VerifyWriterEvent, type VerifyWriterResult } from './verify-writer';

const deps = { rds: new RDSClient({}), db: database, resetDb: resetDatabase };

const text = z.string().min(1);
/** Only the fields this function reads; validate-input has already checked the whole plan. */
const Event = z
  .object({
    plan: z.looseObject({
      sourceIdentifier: text,
      targetEngineVersion: text.optional(),
      currentEngineVersion: text.optional(),
    }),
    expect: z.enum(['current', 'target']).optional(),
  })
  // The version the check holds the writer to must be in the plan.
  .superRefine((e, ctx) => {
    const field = e.expect === 'current' ? 'currentEngineVersion' : 'targetEngineVersion';
    if (e.plan[field] === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['plan', field],
        message: `required to check the writer against the ${e.expect ?? 'target'} version`,
      });
    }
  });

/** After the switchover, in the VPC: is production the upgraded, writable primary? */
export const handler = async (event: unknown): Promise<VerifyWriterResult> => {
  const parsed = Event.safeParse(event);
  if (!parsed.success) {
    throw new Error(`invalid verify-writer event: ${z.prettifyError(parsed.error)}`);
  }
  const result = await verifyWriter(deps, event as VerifyWriterEvent);
  logger.info('verify writer', {
    passed: result.passed,
    failures: result.failures,
    writer: result.writer,
  });
  return result;
};
