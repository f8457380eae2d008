import { z } from 'zod';

/**
 * Message contracts for the write buffers, version 1.
 *
 * Producers (the platform, and the capture function behind the load balancer) build these
 * messages; consumers validate them before any write. A change that old consumers cannot
 * read needs a new `v`, with both versions accepted until the queues have drained.
 *
 * Every message carries an `idempotencyKey`: the consumer's effect is keyed by it, so a
 * redelivered or duplicated message changes nothing the second time.
 */

/** The buffers, one SQS queue (and DLQ, and consumer) each. */
export const BUFFER_NAMES = ['sends', 'opt-ins', 'sign-ups', 'unsubscribes', 'tracking'] as const;
export type BufferName = (typeof BUFFER_NAMES)[number];

const id = z.string().min(1).max(128);
const email = z.email().max(254);
const timestamp = z.iso.datetime({ offset: true });

function envelope<T extends string, D extends z.ZodType>(type: T, data: D) {
  return z.strictObject({
    v: z.literal(1),
    type: z.literal(type),
    /** Same key, same effect: a retry of the same logical write reuses its key. */
    idempotencyKey: id,
    /** When the write happened at the producer (not when it was consumed). */
    occurredAt: timestamp,
    data,
  });
}

/** A scheduled or automation email send to one recipient. */
export const SendMessage = envelope(
  'send',
  z.strictObject({
    campaignId: id,
    recipient: email,
    templateId: id,
    scheduledAt: timestamp,
  }),
);

/** A double-opt-in confirmation: the person clicked the link in the confirmation email. */
export const OptInConfirmationMessage = envelope(
  'opt-in-confirmation',
  z.strictObject({
    listId: id,
    email,
  }),
);

/** A sign-up form post. Field values are size-limited here and at the capture endpoint. */
export const SignUpMessage = envelope(
  'sign-up',
  z.strictObject({
    listId: id,
    email,
    name: z.string().max(200).optional(),
    /** Extra form fields, at most 20, each value at most 500 characters. */
    fields: z
      .record(z.string().min(1).max(64), z.string().max(500))
      .refine((f) => Object.keys(f).length <= 20, { error: 'at most 20 fields' })
      .optional(),
  }),
);

/** An unsubscribe; without `listId` it is from every list. */
export const UnsubscribeMessage = envelope(
  'unsubscribe',
  z.strictObject({
    email,
    listId: id.optional(),
    campaignId: id.optional(),
  }),
);

/** A tracked link click. */
export const ClickMessage = envelope(
  'click',
  z.strictObject({
    campaignId: id,
    subscriberId: id,
    url: z.url({ protocol: /^https?$/ }).max(2048),
  }),
);

/** An open pixel load. */
export const OpenMessage = envelope(
  'open',
  z.strictObject({
    campaignId: id,
    subscriberId: id,
    userAgent: z.string().max(512).optional(),
  }),
);

/** What each buffer accepts. Clicks and opens share the tracking buffer. */
export const BUFFER_CONTRACTS = {
  sends: SendMessage,
  'opt-ins': OptInConfirmationMessage,
  'sign-ups': SignUpMessage,
  unsubscribes: UnsubscribeMessage,
  tracking: z.discriminatedUnion('type', [ClickMessage, OpenMessage]),
} as const satisfies Record<BufferName, z.ZodType>;

export type BufferMessage<B extends BufferName> = z.infer<(typeof BUFFER_CONTRACTS)[B]>;
export type AnyBufferMessage = BufferMessage<BufferName>;

export function isBufferName(value: unknown): value is BufferName {
  return typeof value === 'string' && (BUFFER_NAMES as readonly string[]).includes(value);
}

/** Validates a raw SQS body against a buffer's contract; the error names each bad field. */
export function parseBufferMessage(
  buffer: BufferName,
  body: string,
): { ok: true; message: AnyBufferMessage } | { ok: false; reason: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, reason: `body is not JSON, got: ${JSON.stringify(body.slice(0, 100))}` };
  }
  const parsed = BUFFER_CONTRACTS[buffer].safeParse(json);
  if (parsed.success) return { ok: true, message: parsed.data };
  return {
    ok: false,
    reason: parsed.error.issues
      .map((issue) => `${issue.path.join('.') || '(body)'}: ${issue.message}`)
      .join('; '),
  };
}
