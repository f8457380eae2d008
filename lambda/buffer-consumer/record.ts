import type { SQSRecord } from 'aws-lambda';
import { type AnyBufferMessage, type BufferName, parseBufferMessage } from '../shared/contracts';
import { logger } from '../shared/logger';
import type { EffectResult } from './effects';

/** A message that breaks its contract. It is retried, then lands in the DLQ: never dropped. */
export class InvalidMessageError extends Error {
  override readonly name = 'InvalidMessageError';
}

/** What a consumer needs from its database engine (handler.ts: PostgreSQL; MySQL beside it). */
export interface EffectWriter {
  /** Writes the message's effect once, idempotently. */
  apply(message: AnyBufferMessage): Promise<EffectResult>;
  /** Whether an error says the credentials were refused: they may have been rotated. */
  isAuthFailure(err: unknown): boolean;
  /** Drops the connection and the cached credentials, so the next message reads them anew. */
  reset(): Promise<void>;
}

/**
 * The per-record function for one buffer: validate against the contract, then apply the
 * idempotent effect. Throwing marks only this record as failed in the batch response.
 */
export function recordHandler(buffer: BufferName, writer: EffectWriter) {
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
      const result = await writer.apply(message);
      // Per record at debug: at info a busy buffer writes a line per message, and CloudWatch
      // Logs charges per GB ingested. https://aws.amazon.com/cloudwatch/pricing/
      logger.debug(result === 'recorded' ? 'effect recorded' : 'duplicate, nothing changed', {
        ...context,
        type: message.type,
        idempotencyKey: message.idempotencyKey,
      });
    } catch (err) {
      if (writer.isAuthFailure(err)) await writer.reset();
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
