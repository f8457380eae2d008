// The engine-neutral handler of the writer check: the event contract, and what each kind of
// call does. Each engine's function (./handler.ts for PostgreSQL, ../verify-writer-mysql/) gives
// it its own database side, so that each bundle carries one database client.
import * as v from 'valibot';
import { deployedPlan } from '../shared/deployed';
import type { DatabaseEngine } from '../shared/engines';
import { logger } from '../shared/logger';
import type { EndOldSessionsResult, FormerWriter } from './former-writer';
import type { VerifyWriterEvent, VerifyWriterResult } from './writer-check';

/** A writer check that also ended the sessions on a former writer, or says why it could not. */
export type WithOldSessions = VerifyWriterResult & {
  oldSessions: EndOldSessionsResult | { error: string };
};

export type VerifyWriterOutput =
  VerifyWriterResult | EndOldSessionsResult | WithOldSessions | { warm: true };

/** What an engine gives the handler. */
export interface WriterEngine {
  /** The function's name, for the words of a refused event. */
  name: string;
  /**
   * The engines it speaks to (a family's RDS and Aurora engines: the database side is the
   * family's dialect), the first naming the family: a deployment for another is refused.
   */
  engines?: readonly [DatabaseEngine, ...DatabaseEngine[]];
  /** Reads the database credentials now (and makes what connects at the first query). */
  warm(): Promise<void>;
  verify(event: VerifyWriterEvent): Promise<VerifyWriterResult>;
  endSessions(
    plan: Pick<VerifyWriterEvent['plan'], 'sourceIdentifier' | 'engine'>,
    on: FormerWriter | undefined,
  ): Promise<EndOldSessionsResult>;
}

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
    /** Not a check: end the client sessions left on old blue (see ./former-writer.ts). */
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
export function verifyWriterHandler(
  engine: WriterEngine,
): (event: unknown) => Promise<VerifyWriterOutput> {
  return async (event) => {
    // Called before the maintenance page goes on, so the window's check starts warm
    // (upgrade-runbook.ts): the module is loaded by now, and the credentials are read now,
    // so none is read while users wait.
    if (JSON.stringify(event) === '{"warm":true}') {
      await engine.warm();
      return { warm: true };
    }
    const parsed = v.safeParse(Event, event);
    if (!parsed.success) {
      throw new Error(`invalid ${engine.name} event: ${v.summarize(parsed.issues)}`);
    }
    // The instance names and versions come from the environment (../shared/deployed).
    const plan = deployedPlan((event as VerifyWriterEvent).plan);
    if (engine.engines !== undefined && !engine.engines.includes(plan.engine)) {
      const [family, ...others] = engine.engines;
      throw new Error(
        `${engine.name} checks engine ${family}, but it is deployed for engine: ${JSON.stringify(plan.engine)}` +
          (others.length > 0 ? ` (it checks ${engine.engines.join(', ')})` : ''),
      );
    }
    const checked: VerifyWriterEvent = { ...(event as VerifyWriterEvent), plan };
    if (parsed.output.action === 'end-old-sessions') {
      const ended = await engine.endSessions(plan, parsed.output.on);
      logger.info('end old sessions', { ...ended });
      return ended;
    }
    const on = parsed.output.endSessionsOn;
    if (on !== undefined) {
      // Beside the check, not after it: with the page on, the two cost one round of calls. A
      // failure to end them is reported, not thrown: the state machine ends them on their own.
      const [result, oldSessions] = await Promise.all([
        engine.verify(checked),
        engine.endSessions(plan, on).catch((err: unknown) => ({
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
    const result = await engine.verify(checked);
    logger.info('verify writer', {
      passed: result.passed,
      failures: result.failures,
      writer: result.writer,
    });
    return result;
  };
}
