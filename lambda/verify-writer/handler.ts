// AWS API actions this function calls: see ./verify-writer.ts (rds:DescribeDBInstances), plus
// secretsmanager:GetSecretValue on DB_SECRET_ARN through ../shared/database.ts.
import { RDSClient } from '@aws-sdk/client-rds';
import { z } from 'zod';
import { database, databaseAt, resetDatabase } from '../shared/database';
import { logger } from '../shared/logger';
import { type EndOldSessionsResult, endOldSessions } from './old-sessions';
import { verifyWriter, type VerifyWriterEvent, type VerifyWriterResult } from './verify-writer';

const deps = { rds: new RDSClient({}), db: database, resetDb: resetDatabase, dbAt: databaseAt };

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
    limitations: z.boolean().optional(),
    restored: z.boolean().optional(),
    /** Not a check: end the client sessions left on old blue (see ./old-sessions.ts). */
    action: z.literal('end-old-sessions').optional(),
    on: z.enum(['old-blue', 'failed-writer']).optional(),
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

/**
 * In the VPC, the writer's database: is production the writable primary on the expected
 * version? Or, with `action: 'end-old-sessions'`, end the client sessions left on old blue.
 */
export const handler = async (
  event: unknown,
): Promise<VerifyWriterResult | EndOldSessionsResult> => {
  const parsed = Event.safeParse(event);
  if (!parsed.success) {
    throw new Error(`invalid verify-writer event: ${z.prettifyError(parsed.error)}`);
  }
  if (parsed.data.action === 'end-old-sessions') {
    const ended = await endOldSessions(deps, parsed.data.plan, parsed.data.on);
    logger.info('end old sessions', { ...ended });
    return ended;
  }
  const result = await verifyWriter(deps, event as VerifyWriterEvent);
  logger.info('verify writer', {
    passed: result.passed,
    failures: result.failures,
    writer: result.writer,
  });
  return result;
};
