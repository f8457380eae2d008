import type { AnyBufferMessage } from '../shared/contracts';

/**
 * A value as the message gives it. Times and JSON are tagged because each engine writes them
 * in its own form (effects.ts for PostgreSQL, effects-mysql.ts for MySQL).
 */
export type Cell = string | null | { readonly time: string } | { readonly json: unknown };

/** The row a message's effect inserts: its table, and each column's value, in order. */
export interface EffectRow {
  readonly table: string;
  readonly cells: Readonly<Record<string, Cell>>;
}

/**
 * The one place that maps a message to its row, for every engine. Every table is keyed by
 * the idempotency key (lambda/database-roles/schema.sql, schema-mysql.sql).
 */
export function effectRow(message: AnyBufferMessage): EffectRow {
  const idempotency_key = message.idempotencyKey;
  const occurred_at = { time: message.occurredAt };
  switch (message.type) {
    case 'send':
      return {
        table: 'email_sends',
        cells: {
          idempotency_key,
          campaign_id: message.data.campaignId,
          recipient: message.data.recipient,
          template_id: message.data.templateId,
          scheduled_at: { time: message.data.scheduledAt },
          occurred_at,
        },
      };
    case 'opt-in-confirmation':
      return {
        table: 'opt_in_confirmations',
        cells: {
          idempotency_key,
          list_id: message.data.listId,
          subscriber_id: message.data.subscriberId,
          occurred_at,
        },
      };
    case 'sign-up':
      return {
        table: 'sign_ups',
        cells: {
          idempotency_key,
          list_id: message.data.listId,
          email: message.data.email,
          name: message.data.name ?? null,
          fields: { json: message.data.fields ?? {} },
          occurred_at,
        },
      };
    case 'unsubscribe':
      return {
        table: 'unsubscribes',
        cells: {
          idempotency_key,
          subscriber_id: message.data.subscriberId,
          list_id: message.data.listId ?? null,
          campaign_id: message.data.campaignId ?? null,
          occurred_at,
        },
      };
    case 'click':
    case 'open':
      return {
        table: 'tracking_events',
        cells: {
          idempotency_key,
          kind: message.type,
          campaign_id: message.data.campaignId,
          subscriber_id: message.data.subscriberId,
          url: message.type === 'click' ? message.data.url : null,
          user_agent: message.type === 'open' ? (message.data.userAgent ?? null) : null,
          occurred_at,
        },
      };
  }
}
