import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { requiredEnv } from '../shared/env';
import { parseLinkKeys } from '../shared/link-signing';
import { logger } from '../shared/logger';
import { CAPTURE_BUFFERS, type CaptureBuffer } from './buffers';
import { capture, type CaptureRoutes } from './capture';

const sqs = new SQSClient({});
const routes = JSON.parse(requiredEnv('CAPTURE_ROUTES')) as CaptureRoutes;
const queueUrls = parseQueueUrls(requiredEnv('QUEUE_URLS'));
const linkKeySecret = requiredEnv('LINK_KEY_SECRET_ARN');

/**
 * The capture endpoints behind the load balancer: tracked clicks, open pixels, opt-in
 * confirmations, unsubscribes and sign-up posts. They buffer to SQS, so they keep working
 * while the database switches over.
 */
export const handler = async (event: ALBEvent): Promise<ALBResult> =>
  capture(event, routes, {
    // Cached at module scope by Powertools for 5 minutes.
    linkKeys: async () => {
      const secret = await getSecret(linkKeySecret, { maxAge: 300 });
      if (typeof secret !== 'string' || secret === '') throw new Error('link signing key is empty');
      return parseLinkKeys(secret);
    },
    enqueue: async (buffer, message) => {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrls[buffer],
          MessageBody: JSON.stringify(message),
        }),
      );
    },
    now: () => new Date(),
    log: (message, details) => logger.warn(message, details),
  });

/** The URL of each buffer the endpoints write to, and of no other. */
function parseQueueUrls(json: string): Record<CaptureBuffer, string> {
  const urls = JSON.parse(json) as Record<string, string>;
  const names = Object.keys(urls).sort().join(', ');
  if (names !== [...CAPTURE_BUFFERS].sort().join(', ')) {
    throw new Error(`QUEUE_URLS must name ${CAPTURE_BUFFERS.join(', ')}, got: ${names}`);
  }
  return urls as Record<CaptureBuffer, string>;
}
