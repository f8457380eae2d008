import type { SQSRecord } from 'aws-lambda';
import { type BufferName, parseBufferMessage } from '../shared/contracts';
import { logger } from '../shared/logger';
import { applyEffect, type Queryable } from './effects';

/** A message that breaks its contract. It is retried, then lands in the DLQ: never dropped. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

/** PostgreSQL's "invalid password" SQLSTATE: the credentials changed under us. */
const INVALID_PASSWORD = '28P01';

/**
 * The per-record function for one buffer: validate against the contract, then apply the
 * idempotent effect. Throwing marks only this record as failed in the batch response.
 */
export function recordHandler(
  buffer: BufferName,
  db: () => Promise<Queryable>,
  onAuthFailure: () => Promise<void> = async () => undefined,
) {
  return async (record: SQSRecord): Promise<void> => {
    const context = {
      buffer,
      messageId: record.messageId,
      receiveCount: Number(record.attributes.ApproximateReceiveCount),
    };
    const parsed = parseBufferMessage(buffer, record.body);
    if (!parsed.ok) {
      logger.error('message breaks its contract; it goes to the DLQ after maxReceiveCount', {
        ...context,
        reason: parsed.reason,
      });
      throw new InvalidMessageError(parsed.reason);
    }
    const { message } = parsed;
    try {
      const result = await applyEffect(await db(), message);
      // Per record at debug: at info a busy buffer writes a line per message, and CloudWatch
      // Logs charges per GB ingested. https://aws.amazon.com/cloudwatch/pricing/
      logger.debug(result === 'recorded' ? 'effect recorded' : 'duplicate, nothing changed', {
        ...context,
        type: message.type,
        idempotencyKey: message.idempotencyKey,
      });
    } catch (err) {
      if ((err as { code?: unknown }).code === INVALID_PASSWORD) await onAuthFailure();
      logger.warn('effect failed; the message will be retried', {
        ...context,
        type: message.type,
        idempotencyKey: message.idempotencyKey,
        error: err instanceof Error ? err.message : String(err),
      });
      throw err;
    }
  };
}
