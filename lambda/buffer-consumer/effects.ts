import type { AnyBufferMessage } from '../shared/contracts';

/** The one database call the effects need; `pg`'s Pool and Client both fit. */
export interface Queryable {
  query(text: string, values: unknown[]): Promise<{ rowCount: number | null }>;
}

/** `recorded` if this message wrote its row, `duplicate` if its key was already there. */
export type EffectResult = 'recorded' | 'duplicate';

/**
 * Writes one message's effect. Each is a single INSERT … ON CONFLICT DO NOTHING keyed by
 * the idempotency key, so it commits on its own and a redelivery changes nothing.
 */
export async function applyEffect(db: Queryable, message: AnyBufferMessage): Promise<EffectResult> {
  const { text, values } = statementFor(message);
  const result = await db.query(text, values);
  return result.rowCount === 1 ? 'recorded' : 'duplicate';
}

function statementFor(message: AnyBufferMessage): { text: string; values: unknown[] } {
  const key = message.idempotencyKey;
  const at = message.occurredAt;
  switch (message.type) {
    case 'send':
      return {
        text: `INSERT INTO email_sends
                 (idempotency_key, campaign_id, recipient, template_id, scheduled_at, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (idempotency_key) DO NOTHING`,
        values: [
          key,
          message.data.campaignId,
          message.data.recipient,
          message.data.templateId,
          message.data.scheduledAt,
          at,
        ],
      };
    case 'opt-in-confirmation':
      return {
        text: `INSERT INTO opt_in_confirmations (idempotency_key, list_id, subscriber_id, occurred_at)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (idempotency_key) DO NOTHING`,
        values: [key, message.data.listId, message.data.subscriberId, at],
      };
    case 'sign-up':
      return {
        text: `INSERT INTO sign_ups (idempotency_key, list_id, email, name, fields, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (idempotency_key) DO NOTHING`,
        values: [
          key,
          message.data.listId,
          message.data.email,
          message.data.name ?? null,
          JSON.stringify(message.data.fields ?? {}),
          at,
        ],
      };
    case 'unsubscribe':
      return {
        text: `INSERT INTO unsubscribes (idempotency_key, subscriber_id, list_id, campaign_id, occurred_at)
               VALUES ($1, $2, $3, $4, $5)
               ON CONFLICT (idempotency_key) DO NOTHING`,
        values: [
          key,
          message.data.subscriberId,
          message.data.listId ?? null,
          message.data.campaignId ?? null,
          at,
        ],
      };
    case 'click':
    case 'open':
      return {
        text: `INSERT INTO tracking_events
                 (idempotency_key, kind, campaign_id, subscriber_id, url, user_agent, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (idempotency_key) DO NOTHING`,
        values: [
          key,
          message.type,
          message.data.campaignId,
          message.data.subscriberId,
          message.type === 'click' ? message.data.url : null,
          message.type === 'open' ? (message.data.userAgent ?? null) : null,
          at,
        ],
      };
  }
}
