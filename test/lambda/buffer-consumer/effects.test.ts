import { Client } from 'pg';
import { applyEffect } from '../../../lambda/buffer-consumer/effects';
import { BUFFER_NAMES, type AnyBufferMessage } from '../../../lambda/shared/contracts';
import { messageFor } from '../../helpers/messages';
import { startPostgres, type TestPostgres } from '../../helpers/postgres';

let pg: TestPostgres;
let client: Client;

beforeAll(async () => {
  pg = await startPostgres();
  client = new Client({ host: '127.0.0.1', port: pg.port, user: 'postgres', database: 'postgres' });
  await client.connect();
});

afterAll(async () => {
  await client.end();
  await pg.stop();
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
  occurredAt: '2026-11-22T04:00:01Z',
  data: { campaignId: 'c-1', subscriberId: 's-1', userAgent: 'Mail/1.0' },
};

describe('applyEffect against PostgreSQL', () => {
  it.each([...BUFFER_NAMES.map((b) => messageFor(b, `key-${b}`)), open])(
    'writes one $type row, and nothing on redelivery',
    async (message) => {
      const table = TABLE[message.type];
      const before = await pg.count(table);
      expect(await applyEffect(client, message)).toBe('recorded');
      expect(await applyEffect(client, message)).toBe('duplicate');
      expect(await pg.count(table)).toBe(before + 1);
    },
  );

  it('stores what the message says', async () => {
    await applyEffect(client, messageFor('sign-ups', 'signup-fields'));
    await applyEffect(client, open);
    const signUp = await pg.db.query<{ email: string; name: string; fields: unknown }>(
      "SELECT email, name, fields FROM sign_ups WHERE idempotency_key = 'signup-fields'",
    );
    expect(signUp.rows).toEqual([
      { email: 'ana@example.com', name: 'Ana', fields: { city: 'Porto' } },
    ]);
    const event = await pg.db.query<{ kind: string; url: string | null; user_agent: string }>(
      "SELECT kind, url, user_agent FROM tracking_events WHERE idempotency_key = 'open-1'",
    );
    expect(event.rows).toEqual([{ kind: 'open', url: null, user_agent: 'Mail/1.0' }]);
  });

  it('keeps an unsubscribe from every list as a NULL list', async () => {
    const all = messageFor('unsubscribes', 'unsub-all');
    if (all.type !== 'unsubscribe') throw new Error('expected an unsubscribe');
    delete all.data.listId;
    await applyEffect(client, all);
    const row = await pg.db.query<{ list_id: string | null }>(
      "SELECT list_id FROM unsubscribes WHERE idempotency_key = 'unsub-all'",
    );
    expect(row.rows).toEqual([{ list_id: null }]);
  });
});
