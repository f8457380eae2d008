import { createHash, randomBytes } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { applyMysqlEffect, utcDatetime } from '../../../lambda/buffer-consumer/effects-mysql';
import { BUFFER_NAMES, type AnyBufferMessage } from '../../../lambda/shared/contracts';
import { logger } from '../../../lambda/shared/logger';
import { isMysqlAuthFailure, SESSION_SETUP } from '../../../lambda/shared/mysql';
import { MysqlConnection, MysqlError, scramble } from '../../../lambda/shared/mysql-client';
import { messageFor } from '../../helpers/messages';
import {
  createConsumerUser,
  describeWithMysql,
  MYSQL_MASTER,
  startMysql,
  type TestMysql,
} from '../../helpers/mysql';
import { sqsEvent, sqsRecord } from '../../helpers/sqs';
import { drainThroughQueue } from './queue-model';

/**
 * The MySQL consumer (lambda/buffer-consumer-mysql/) on a real MySQL-compatible server:
 * Debian's MariaDB, started for this file (test/helpers/mysql.ts). Without the server the
 * suite does not run, and says so; in CI it must.
 */
const describeMysql = describeWithMysql();

const secrets = mockClient(SecretsManagerClient);
const context = { functionName: 'sends-consumer', awsRequestId: 'req-1' } as Context;
type Handler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

let mysql: TestMysql;
/** The master's connection, with the consumers' session. */
let db: MysqlConnection;

const connect = (user: string, password: string, session = true) =>
  MysqlConnection.connect({
    host: '127.0.0.1',
    port: mysql.port,
    user,
    password,
    database: mysql.database,
    tls: false,
  }).then(async (c) => {
    if (session) await c.query(SESSION_SETUP);
    return c;
  });

const TABLE: Record<AnyBufferMessage['type'], string> = {
  send: 'email_sends',
  'opt-in-confirmation': 'opt_in_confirmations',
  'sign-up': 'sign_ups',
  unsubscribe: 'unsubscribes',
  click: 'tracking_events',
  open: 'tracking_events',
};

const open: AnyBufferMessage = {
  v: 1,
  type: 'open',
  idempotencyKey: 'open-1',
  occurredAt: '2026-11-22T05:30:01.1234567+01:30',
  data: { campaignId: 'c-1', subscriberId: 's-1', userAgent: 'Mail/1.0' },
};

/** A send whose fields are set as given, bypassing the contract (as a buggy producer might). */
function sendWith(key: string, data: Record<string, unknown>): AnyBufferMessage {
  const send = messageFor('sends', key);
  return { ...send, data: { ...send.data, ...data } } as AnyBufferMessage;
}

describe('what the MySQL path computes without a server', () => {
  it('converts a time with an offset to UTC across a day, and keeps microseconds', () => {
    expect(utcDatetime('2026-01-01T01:30:00.5-02:00')).toBe('2026-01-01 03:30:00.500000');
    expect(utcDatetime('2026-03-01T00:30:00+01:00')).toBe('2026-02-28 23:30:00.000000');
    expect(utcDatetime('2026-02-30T04:00:00Z')).toBe('2026-02-30 04:00:00.000000');
  });

  it('scrambles a caching_sha2_password password as the server checks it', () => {
    // MariaDB has no caching_sha2_password, so the server's check is done here: it keeps
    // SHA256(SHA256(password)), unmasks the client's answer with SHA256(kept + nonce), and
    // compares the SHA256 of the result with what it keeps.
    // https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
    const sha256 = (b: Buffer) => createHash('sha256').update(b).digest();
    const nonce = randomBytes(20);
    const kept = sha256(sha256(Buffer.from('sends-password')));
    const answer = scramble('caching_sha2_password', 'sends-password', nonce);
    const mask = sha256(Buffer.concat([kept, nonce]));
    const unmasked = Buffer.from(answer.map((v, i) => v ^ (mask[i] ?? 0)));
    expect(sha256(unmasked)).toEqual(kept);
    expect(() => scramble('sha256_password', 'sends-password', nonce)).toThrow(/sha256_password/);
  });
});

describeMysql('the MySQL consumer on a real server', () => {
  beforeAll(async () => {
    mysql = await startMysql();
    db = await connect(MYSQL_MASTER.user, MYSQL_MASTER.password);
  });

  afterAll(async () => {
    await db?.close();
    await mysql?.stop();
  });

  describe('applyMysqlEffect', () => {
    it.each([...BUFFER_NAMES.map((b) => messageFor(b, `key-${b}`)), open])(
      'writes one $type row, and nothing on redelivery',
      async (message) => {
        const table = TABLE[message.type];
        const before = await mysql.count(table);
        expect(await applyMysqlEffect(db, message)).toBe('recorded');
        expect(await applyMysqlEffect(db, message)).toBe('duplicate');
        expect(await mysql.count(table)).toBe(before + 1);
      },
    );

    it('stores what the message says, times in UTC to the microsecond', async () => {
      await applyMysqlEffect(db, messageFor('sign-ups', 'signup-fields'));
      await applyMysqlEffect(db, open);
      expect(
        await mysql.sql(
          "SELECT email, name, fields, occurred_at FROM sign_ups WHERE idempotency_key = 'signup-fields'",
        ),
      ).toEqual([['ana@example.com', 'Ana', '{"city":"Porto"}', '2026-11-22 04:00:00.000000']]);
      expect(
        await mysql.sql(
          "SELECT kind, url IS NULL, user_agent, occurred_at FROM tracking_events WHERE idempotency_key = 'open-1'",
        ),
      ).toEqual([['open', '1', 'Mail/1.0', '2026-11-22 04:00:01.123456']]);
    });

    it('keeps an unsubscribe from every list as a NULL list', async () => {
      const all = messageFor('unsubscribes', 'unsub-all');
      if (all.type !== 'unsubscribe') throw new Error('expected an unsubscribe');
      delete all.data.listId;
      await applyMysqlEffect(db, all);
      expect(
        await mysql.sql(
          "SELECT list_id IS NULL FROM unsubscribes WHERE idempotency_key = 'unsub-all'",
        ),
      ).toEqual([['1']]);
    });

    it('has no unique key but the idempotency key, which ON DUPLICATE KEY UPDATE relies on', async () => {
      expect(
        await mysql.sql(
          `SELECT table_name, index_name FROM information_schema.STATISTICS
           WHERE table_schema = DATABASE() AND non_unique = 0 ORDER BY 1`,
        ),
      ).toEqual([...new Set(Object.values(TABLE))].sort().map((t) => [t, 'PRIMARY']));
    });

    it('tells keys apart byte for byte: case and trailing spaces are other keys', async () => {
      for (const key of ['Key-1', 'key-1', 'key-1 ']) {
        expect(await applyMysqlEffect(db, messageFor('opt-ins', key))).toBe('recorded');
      }
    });

    it.each([
      ['a NULL in a NOT NULL column', { campaignId: null }, 1048],
      ['a value too long for its column', { templateId: 't'.repeat(129) }, 1406],
      ['an impossible date', { scheduledAt: '2026-02-30T04:00:00Z' }, 1292],
    ])('fails on %s, and writes nothing', async (_, data, errno) => {
      const key = `bad-${errno}`;
      const failure = applyMysqlEffect(db, sendWith(key, data));
      await expect(failure).rejects.toBeInstanceOf(MysqlError);
      await expect(failure).rejects.toMatchObject({ errno });
      expect(
        await mysql.sql(`SELECT COUNT(*) FROM email_sends WHERE idempotency_key = '${key}'`),
      ).toEqual([['0']]);
    });

    it("stays strict when the server's own sql_mode is not", async () => {
      await mysql.sql("SET GLOBAL sql_mode = ''");
      try {
        const lax = await connect(MYSQL_MASTER.user, MYSQL_MASTER.password, false);
        const strict = await connect(MYSQL_MASTER.user, MYSQL_MASTER.password);
        try {
          const tooLong = { templateId: 't'.repeat(129) };
          // Without the consumers' session the server cuts the value and says nothing…
          expect(await applyMysqlEffect(lax, sendWith('lax-1', tooLong))).toBe('recorded');
          // …with it, the same write is an error.
          await expect(
            applyMysqlEffect(strict, sendWith('strict-1', tooLong)),
          ).rejects.toMatchObject({
            errno: 1406,
          });
        } finally {
          await lax.close();
          await strict.close();
        }
      } finally {
        await mysql.sql('SET GLOBAL sql_mode = DEFAULT');
      }
    });
  });

  describe('the connection', () => {
    it("lets a consumer's user write its own table and no other", async () => {
      await createConsumerUser(mysql, 'optins_consumer', 'optins-password', 'opt_in_confirmations');
      const consumer = await connect('optins_consumer', 'optins-password');
      try {
        expect(await applyMysqlEffect(consumer, messageFor('opt-ins', 'own-1'))).toBe('recorded');
        expect(await applyMysqlEffect(consumer, messageFor('opt-ins', 'own-1'))).toBe('duplicate');
        await expect(
          applyMysqlEffect(consumer, messageFor('sends', 'other-1')),
        ).rejects.toMatchObject({
          errno: 1142, // ER_TABLEACCESS_DENIED_ERROR
        });
      } finally {
        await consumer.close();
      }
    });

    it('says a refused password is an auth failure, and other errors are not', async () => {
      const refused = await connect(MYSQL_MASTER.user, 'wrong').catch((err: unknown) => err);
      expect(refused).toMatchObject({ errno: 1045 });
      expect(isMysqlAuthFailure(refused)).toBe(true);
      const other = await applyMysqlEffect(db, sendWith('k-null', { recipient: null })).catch(
        (err: unknown) => err,
      );
      expect(isMysqlAuthFailure(other)).toBe(false);
    });

    it('speaks TLS and verifies the server against the CA it is given', async () => {
      await mysql.sql(
        `CREATE USER 'tls_only'@'127.0.0.1' IDENTIFIED BY 'tls-password' REQUIRE SSL;
         GRANT INSERT, UPDATE, SELECT (idempotency_key) ON ${mysql.database}.unsubscribes TO 'tls_only'@'127.0.0.1';`,
      );
      const options = {
        host: '127.0.0.1',
        port: mysql.port,
        user: 'tls_only',
        password: 'tls-password',
        database: mysql.database,
      };
      // REQUIRE SSL: the login itself proves the session is inside TLS.
      const secure = await MysqlConnection.connect({ ...options, tls: { ca: mysql.ca } });
      try {
        expect(await applyMysqlEffect(secure, messageFor('unsubscribes', 'tls-1'))).toBe(
          'recorded',
        );
      } finally {
        await secure.close();
      }
      // The certificate names 127.0.0.1, not localhost (the same server).
      await expect(
        MysqlConnection.connect({ ...options, host: 'localhost', tls: { ca: mysql.ca } }),
      ).rejects.toThrow(/altnames/);
      // Production's options: Node's CAs, which do not include this test CA.
      await expect(
        MysqlConnection.connect({ ...options, tls: { rejectUnauthorized: true } }),
      ).rejects.toThrow(/self[- ]signed|unable to verify|unable to get/i);
      await expect(MysqlConnection.connect({ ...options, tls: false })).rejects.toMatchObject({
        errno: 1045,
      });
    });
  });

  describe('buffer consumer handler on MySQL', () => {
    let handler: Handler;
    let resetMysqlDatabase: () => Promise<void>;

    beforeAll(async () => {
      await createConsumerUser(mysql, 'sends_consumer', 'sends-password', 'email_sends');
      process.env.DB_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db';
      process.env.DB_TLS = 'disable'; // the TLS path is tested above, with the test CA
      process.env.BUFFER_NAME = 'sends';
      secrets.on(GetSecretValueCommand).resolves({
        SecretString: JSON.stringify({
          host: '127.0.0.1',
          port: mysql.port,
          username: 'sends_consumer',
          password: 'sends-password',
          dbname: mysql.database,
        }),
      });
      // Imported after the environment is set, as Lambda would load it.
      ({ handler } = await import('../../../lambda/buffer-consumer-mysql/handler'));
      ({ resetMysqlDatabase } = await import('../../../lambda/shared/mysql'));
    });

    afterAll(async () => {
      await resetMysqlDatabase?.();
    });

    beforeEach(async () => {
      await mysql.sql('DELETE FROM email_sends');
      jest.restoreAllMocks();
    });

    const send = (key: string) => JSON.stringify(messageFor('sends', key));

    it('records a message once when it is delivered twice', async () => {
      const first = await handler(sqsEvent([sqsRecord(send('k-1'), 'm-1')]), context);
      const again = await handler(sqsEvent([sqsRecord(send('k-1'), 'm-1', 2)]), context);
      expect(first.batchItemFailures).toEqual([]);
      expect(again.batchItemFailures).toEqual([]);
      expect(await mysql.count('email_sends')).toBe(1);
    });

    it('records a duplicate within one batch once', async () => {
      const result = await handler(
        sqsEvent([sqsRecord(send('k-1'), 'm-1'), sqsRecord(send('k-1'), 'm-2')]),
        context,
      );
      expect(result.batchItemFailures).toEqual([]);
      expect(await mysql.count('email_sends')).toBe(1);
    });

    it('reports exactly the poison record as failed and commits the others', async () => {
      // Valid by contract, refused by MySQL: in UTC it is in the year 10000, past DATETIME.
      const poison = messageFor('sends', 'k-poison');
      if (poison.type !== 'send') throw new Error('expected a send');
      poison.data.scheduledAt = '9999-12-31T23:30:00-01:00';
      const warn = jest.spyOn(logger, 'warn');
      const result = await handler(
        sqsEvent([
          sqsRecord(send('k-1'), 'm-1'),
          sqsRecord(JSON.stringify(poison), 'm-poison'),
          sqsRecord(send('k-2'), 'm-2'),
        ]),
        context,
      );
      expect(result.batchItemFailures).toEqual([{ itemIdentifier: 'm-poison' }]);
      expect(await mysql.sql('SELECT idempotency_key FROM email_sends ORDER BY 1')).toEqual([
        ['k-1'],
        ['k-2'],
      ]);
      expect(warn).toHaveBeenCalledWith(
        'effect failed; the message will be retried',
        expect.objectContaining({
          messageId: 'm-poison',
          error: expect.stringContaining('Incorrect datetime value'),
        }),
      );
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
      expect(await mysql.count('email_sends')).toBe(1);
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

    it('reconnects after the server drops the connection', async () => {
      await handler(sqsEvent([sqsRecord(send('k-1'), 'm-1')]), context);
      const sessions = await mysql.sql(
        "SELECT id FROM information_schema.PROCESSLIST WHERE user = 'sends_consumer'",
      );
      expect(sessions).toHaveLength(1);
      for (const [id] of sessions) await mysql.sql(`KILL ${id}`);
      const after = await handler(sqsEvent([sqsRecord(send('k-2'), 'm-2')]), context);
      expect(after.batchItemFailures).toEqual([]);
      expect(await mysql.count('email_sends')).toBe(2);
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
        expect(await mysql.count('email_sends')).toBe(n);
      });

      it('parks every invalid or poison message in the DLQ after maxReceiveCount, and records the rest', async () => {
        const poison = JSON.parse(send('poison')) as { data: { scheduledAt: string } };
        poison.data.scheduledAt = '9999-12-31T23:30:00-01:00';
        const bodies = [
          send('ok-1'),
          'not json',
          send('ok-2'),
          JSON.stringify(poison),
          send('ok-3'),
        ];
        const { dlq } = await drainThroughQueue(handler, context, bodies, {
          maxReceiveCount: 5,
          duplicateEvery: 1000,
          loseDeleteEvery: 1000,
        });
        expect(dlq.sort()).toEqual(['m-1', 'm-3']);
        expect(await mysql.sql('SELECT idempotency_key FROM email_sends ORDER BY 1')).toEqual([
          ['ok-1'],
          ['ok-2'],
          ['ok-3'],
        ]);
      });
    });
  });
});
