import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { isBufferName } from '../shared/contracts';
import { type EffectWriter, recordHandler } from './record';

/**
 * The handler of the queue of the buffer BUFFER_NAME names, writing with `writer`. Failed
 * records are reported one by one (ReportBatchItemFailures), so one bad message never holds
 * back the others.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
 */
export function consumerHandler(
  writer: EffectWriter,
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const bufferName = process.env.BUFFER_NAME;
  if (!isBufferName(bufferName)) {
    throw new Error(`BUFFER_NAME must name a buffer, got: ${JSON.stringify(bufferName)}`);
  }
  const processor = new BatchProcessor(EventType.SQS);
  const processRecord = recordHandler(bufferName, writer);
  return async (event, context) =>
    processPartialResponse(event, processRecord, processor, {
      context,
      // Report even a wholly failed batch item by item rather than throwing: the outcome for
      // SQS is the same, and the function never ends in an error for bad input.
      throwOnFullBatchFailure: false,
    });
}
