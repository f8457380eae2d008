import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { isBufferName } from '../shared/contracts';
import { database, resetDatabase } from '../shared/database';
import { recordHandler } from './record';

const bufferName = process.env.BUFFER_NAME;
if (!isBufferName(bufferName)) {
  throw new Error(`BUFFER_NAME must name a buffer, got: ${JSON.stringify(bufferName)}`);
}
const processor = new BatchProcessor(EventType.SQS);
const processRecord = recordHandler(bufferName, database, resetDatabase);

/**
 * Consumes one buffer's queue. Failed records are reported one by one
 * (ReportBatchItemFailures), so one bad message never holds back the others.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
 */
export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  processPartialResponse(event, processRecord, processor, {
    context,
    // Report even a wholly failed batch item by item rather than throwing: the outcome for
    // SQS is the same, and the function never ends in an error for bad input.
    throwOnFullBatchFailure: false,
  });
