import type { AnyBufferMessage, BufferName } from '../../lambda/shared/contracts';

const at = '2026-11-22T04:00:00Z';

/** A valid message for each buffer, with key `key`. */
export function messageFor(buffer: BufferName, key: string): AnyBufferMessage {
  switch (buffer) {
    case 'sends':
      return {
        v: 1,
        type: 'send',
        idempotencyKey: key,
        occurredAt: at,
        data: {
          campaignId: 'c-1',
          recipient: 'ana@example.com',
          templateId: 't-1',
          scheduledAt: at,
        },
      };
    case 'opt-ins':
      return {
        v: 1,
        type: 'opt-in-confirmation',
        idempotencyKey: key,
        occurredAt: at,
        data: { listId: 'l-1', subscriberId: 's-9001' },
      };
    case 'sign-ups':
      return {
        v: 1,
        type: 'sign-up',
        idempotencyKey: key,
        occurredAt: at,
        data: { listId: 'l-1', email: 'ana@example.com', name: 'Ana', fields: { city: 'Porto' } },
      };
    case 'unsubscribes':
      return {
        v: 1,
        type: 'unsubscribe',
        idempotencyKey: key,
        occurredAt: at,
        data: { subscriberId: 's-9001', listId: 'l-1' },
      };
    case 'tracking':
      return {
        v: 1,
        type: 'click',
        idempotencyKey: key,
        occurredAt: at,
        data: { campaignId: 'c-1', subscriberId: 's-1', url: 'https://shop.example.com/sale' },
      };
  }
}
