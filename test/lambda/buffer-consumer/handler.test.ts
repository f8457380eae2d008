import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { logger } from '../../../lambda/shared/logger';
import { messageFor } from '../../helpers/messages';
import { connectFunctionsTo, startPostgres, type TestPostgres } from '../../helpers/postgres';
import { sqsEvent, sqsRecord } from '../../helpers/sqs';
import { drainThroughQueue } from './queue-model';

const secrets = mockClient(SecretsManagerClient);
const context = { functionName: 'sends-consumer', awsRequestId: 'req-1' } as Context;
type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

let pg: TestPostgres;
let handler: Handler;
let resetDatabase: () => Promise<void>;

beforeAll(async () => {
  pg = await startPostgres();
  secrets.on(GetSecretValueCommand).resolves({ SecretString: connectFunctionsTo(pg) });
  process.env.BUFFER_NAME = 'sends';
  // Imported after the environment is set, as Lambda would load it.
  ({ handler } = await import('../../../lambda/buffer-consumer/handler'));
  ({ resetDatabase } = await import('../../../lambda/shared/database'));
});

afterAll(async () => {
  await resetDatabase();
  await pg.stop();
});

beforeEach(async () => {
  await pg.db.exec('TRUNCATE email_sends');
  jest.restoreAllMocks();
});

const send = (key: string) => JSON.stringify(messageFor('sends', key));

describe('buffer consumer handler', () => {
  it('records a message once when it is delivered twice', async () => {
    const first = await handler(sqsEvent([sqsRecord(send('k-1'), 'm-1')]), context);
    const again = await handler(sqsEvent([sqsRecord(send('k-1'), 'm-1', 2)]), context);
    expect(first.batchItemFailures).toEqual([]);
    expect(again.batchItemFailures).toEqual([]);
    expect(await pg.count('email_sends')).toBe(1);
  });

  it('records a duplicate within one batch once', async () => {
    const result = await handler(
      sqsEvent([sqsRecord(send('k-1'), 'm-1'), sqsRecord(send('k-1'), 'm-2')]),
      context,
    );
    expect(result.batchItemFailures).toEqual([]);
    expect(await pg.count('email_sends')).toBe(1);
  });

  it('reports exactly the poison record as failed and commits the others', async () => {
    // Valid by contract, refused by PostgreSQL: text cannot hold a NUL byte.
    const poison = messageFor('sends', 'k-poison');
    if (poison.type !== 'send') throw new Error('expected a send');
    poison.data.templateId = 'bad\u0000template';
    const result = await handler(
      sqsEvent([
        sqsRecord(send('k-1'), 'm-1'),
        sqsRecord(JSON.stringify(poison), 'm-poison'),
        sqsRecord(send('k-2'), 'm-2'),
      ]),
      context,
    );
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm-poison' }]);
    const keys = await pg.db.query<{ idempotency_key: string }>(
      'SELECT idempotency_key FROM email_sends ORDER BY 1',
    );
    expect(keys.rows.map((r) => r.idempotency_key)).toEqual(['k-1', 'k-2']);
  });

  it('fails only a malformed record, and logs why', async () => {
    const error = jest.spyOn(logger, 'error');
    const result = await handler(
      sqsEvent([
        sqsRecord('{"v":1,"type":"send"', 'm-not-json'),
        sqsRecord(JSON.stringify({ ...messageFor('sends', 'k-x'), v: 2 }), 'm-wrong-version'),
        sqsRecord(send('k-1'), 'm-1'),
      ]),
      context,
    );
    expect(result.batchItemFailures).toEqual([
      { itemIdentifier: 'm-not-json' },
      { itemIdentifier: 'm-wrong-version' },
    ]);
    expect(await pg.count('email_sends')).toBe(1);
    expect(error).toHaveBeenCalledWith(
      'message breaks its contract; it goes to the DLQ after maxReceiveCount',
      expect.objectContaining({
        messageId: 'm-not-json',
        reason: expect.stringContaining('not JSON'),
      }),
    );
    expect(error).toHaveBeenCalledWith(
      'message breaks its contract; it goes to the DLQ after maxReceiveCount',
      expect.objectContaining({
        messageId: 'm-wrong-version',
        reason: expect.stringContaining('v:'),
      }),
    );
  });

  it('returns a partial response, not an error, when every record fails', async () => {
    const result = await handler(
      sqsEvent([sqsRecord('nope', 'm-1'), sqsRecord('{}', 'm-2')]),
      context,
    );
    expect(result.batchItemFailures).toEqual([
      { itemIdentifier: 'm-1' },
      { itemIdentifier: 'm-2' },
    ]);
  });

  it('reads the credentials from the database secret once, not per batch', async () => {
    await handler(sqsEvent([sqsRecord(send('k-1'), 'm-1')]), context);
    await handler(sqsEvent([sqsRecord(send('k-2'), 'm-2')]), context);
    expect(secrets).toHaveReceivedCommandWith(GetSecretValueCommand, {
      SecretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db',
    });
    // Mocks are not reset between tests: one call in the whole file means the cache held.
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });
});

describe('nothing lost, nothing doubled', () => {
  it('turns N distinct messages into exactly N effects across redeliveries', async () => {
    const n = 60;
    const bodies = Array.from({ length: n }, (_, i) => send(`send-${i}`));
    const { dlq, deliveries } = await drainThroughQueue(handler, context, bodies, {
      maxReceiveCount: 5,
      duplicateEvery: 7,
      loseDeleteEvery: 5,
    });
    expect(deliveries).toBeGreaterThan(n); // redeliveries really happened
    expect(dlq).toEqual([]);
    expect(await pg.count('email_sends')).toBe(n);
  });

  it('parks every invalid message in the DLQ after maxReceiveCount, and records the rest', async () => {
    const bodies = [send('ok-1'), 'not json', send('ok-2'), JSON.stringify({ v: 1 }), send('ok-3')];
    const { dlq } = await drainThroughQueue(handler, context, bodies, {
      maxReceiveCount: 5,
      duplicateEvery: 1000,
      loseDeleteEvery: 1000,
    });
    expect(dlq.sort()).toEqual(['m-1', 'm-3']);
    expect(await pg.count('email_sends')).toBe(3);
  });
});
