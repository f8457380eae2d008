import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { sqsEvent, sqsRecord } from '../../helpers/sqs';

type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/**
 * A small model of a standard SQS queue with a redrive policy: at-least-once delivery
 * (a message may be delivered twice), lost deletes (processed but redelivered), and a DLQ
 * after maxReceiveCount receives. Drains `bodies` through `handler`.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html
 */
export async function drainThroughQueue(
  handler: Handler,
  context: Context,
  bodies: string[],
  options: { maxReceiveCount: number; duplicateEvery: number; loseDeleteEvery: number },
): Promise<{ dlq: string[]; deliveries: number }> {
  const queue = bodies.map((body, i) => ({ id: `m-${i}`, body, receives: 0 }));
  const dlq: string[] = [];
  let deliveries = 0;
  let turn = 0;
  while (queue.length > 0) {
    const batch = queue.splice(0, 10);
    const records: SQSRecord[] = [];
    for (const message of batch) {
      message.receives += 1;
      records.push(sqsRecord(message.body, message.id, message.receives));
      // At-least-once: now and then the same message arrives twice in one receive.
      if (++turn % options.duplicateEvery === 0) {
        records.push(sqsRecord(message.body, message.id, message.receives));
      }
    }
    deliveries += records.length;
    const { batchItemFailures } = await handler(sqsEvent(records), context);
    const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
    for (const message of batch) {
      const deleteLost = ++turn % options.loseDeleteEvery === 0;
      if (!failed.has(message.id) && !deleteLost) continue;
      if (message.receives >= options.maxReceiveCount) dlq.push(message.id);
      else queue.push(message);
    }
  }
  return { dlq, deliveries };
}
