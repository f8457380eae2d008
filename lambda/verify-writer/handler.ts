// AWS API actions this function calls: see ./verify-writer.ts (rds:DescribeDBInstances), plus
// secretsmanager:GetSecretValue on DB_SECRET_ARN through ../shared/database.ts.
import { RDSClient } from '@aws-sdk/client-rds';
import * as v from 'valibot';
import { database, databaseAt, resetDatabase, warmDatabase } from '../shared/database';
import { deployedPlan } from '../shared/deployed';
import { logger } from '../shared/logger';
import { type EndOldSessionsResult, endOldSessions } from './old-sessions';
import { verifyWriter, type VerifyWriterEvent, type VerifyWriterResult } from './verify-writer';

/** A writer check that also ended the sessions on a former writer, or says why it could not. */
export type WithOldSessions = VerifyWriterResult & {
  oldSessions: EndOldSessionsResult | { error: string };
};

const deps = { rds: new RDSClient({}), db: database, resetDb: resetDatabase, dbAt: databaseAt };

const text = v.pipe(v.string(), v.minLength(1));
/** Only the fields this function reads; validate-input has already checked the whole plan. */
const Event = v.pipe(
  v.object({
    plan: v.looseObject({
      sourceIdentifier: text,
      targetEngineVersion: v.optional(text),
      currentEngineVersion: v.optional(text),
    }),
    expect: v.optional(v.picklist(['current', 'target'])),
    limitations: v.optional(v.boolean()),
    restored: v.optional(v.boolean()),
    /** Not a check: end the client sessions left on old blue (see ./old-sessions.ts). */
    action: v.optional(v.literal('end-old-sessions')),
    on: v.optional(v.picklist(['old-blue', 'failed-writer'])),
    /** With a check: also end the client sessions left on this former writer, at once. */
    endSessionsOn: v.optional(v.picklist(['old-blue'])),
  }),
  // The version the check holds the writer to must be in the plan.
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const { plan, expect } = dataset.value;
    const field = expect === 'current' ? 'currentEngineVersion' : 'targetEngineVersion';
    if (plan[field] === undefined) {
      addIssue({
        message: `required to check the writer against the ${expect ?? 'target'} version`,
        path: [
          { type: 'object', origin: 'value', input: dataset.value, key: 'plan', value: plan },
          { type: 'object', origin: 'value', input: plan, key: field, value: undefined },
        ],
      });
    }
  }),
);

/**
 * In the VPC, the writer's database: is production the writable primary on the expected
 * version? Or, with `action: 'end-old-sessions'`, end the client sessions left on old blue.
 */
export const handler = async (
  event: unknown,
): Promise<VerifyWriterResult | EndOldSessionsResult | WithOldSessions | { warm: true }> => {
  // Called before the maintenance page goes on, so the window's check starts warm
  // (upgrade-runbook.ts): the module is loaded by now, and the credentials are read now (the
  // pool connects only at its first query), so none is read while users wait.
  if (JSON.stringify(event) === '{"warm":true}') {
    await warmDatabase();
    return { warm: true };
  }
  const parsed = v.safeParse(Event, event);
  if (!parsed.success) {
    throw new Error(`invalid verify-writer event: ${v.summarize(parsed.issues)}`);
  }
  // The instance names and versions come from the environment (../shared/deployed).
  const plan = deployedPlan((event as VerifyWriterEvent).plan);
  const checked: VerifyWriterEvent = { ...(event as VerifyWriterEvent), plan };
  if (parsed.output.action === 'end-old-sessions') {
    const ended = await endOldSessions(deps, plan, parsed.output.on);
    logger.info('end old sessions', { ...ended });
    return ended;
  }
  const on = parsed.output.endSessionsOn;
  if (on !== undefined) {
    // Beside the check, not after it: with the page on, the two cost one round of calls. A
    // failure to end them is reported, not thrown: the state machine ends them on their own.
    const [result, oldSessions] = await Promise.all([
      verifyWriter(deps, checked),
      endOldSessions(deps, plan, on).catch((err: unknown) => ({
        error: err instanceof Error ? err.message : String(err),
      })),
    ]);
    logger.info('verify writer and end old sessions', {
      passed: result.passed,
      failures: result.failures,
      writer: result.writer,
      oldSessions,
    });
    return { ...result, oldSessions };
  }
  const result = await verifyWriter(deps, checked);
  logger.info('verify writer', {
    passed: result.passed,
    failures: result.failures,
    writer: result.writer,
  });
  return result;
};
