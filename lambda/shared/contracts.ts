import * as v from 'valibot';
import { EMAIL, ISO_DATETIME } from './formats';

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

const id = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
const email = v.pipe(v.string(), v.regex(EMAIL, 'must be an email address'), v.maxLength(254));
const timestamp = v.pipe(
  v.string(),
  v.regex(ISO_DATETIME, 'must be an ISO 8601 time with a Z or an offset'),
);

function envelope<T extends string, D extends v.GenericSchema>(type: T, data: D) {
  return v.strictObject({
    v: v.literal(1),
    type: v.literal(type),
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
  v.strictObject({
    campaignId: id,
    recipient: email,
    templateId: id,
    scheduledAt: timestamp,
  }),
);

/** A double-opt-in confirmation: the person clicked the link in the confirmation email. */
/**
 * A double opt-in confirmed. The person is named by the platform's opaque subscriber id, as
 * in the link they clicked: links carry no email address (it would sit in access logs).
 */
export const OptInConfirmationMessage = envelope(
  'opt-in-confirmation',
  v.strictObject({
    listId: id,
    subscriberId: id,
  }),
);

/** What is wrong with the first bad form field, or undefined when every one is good. */
function badField(fields: Record<string, unknown>): string | undefined {
  for (const [name, value] of Object.entries(fields)) {
    if (name.length < 1 || name.length > 64) {
      return `field name must be 1-64 characters, got ${name.length}: ${JSON.stringify(name.slice(0, 64))}`;
    }
    if (typeof value !== 'string') return `field ${name} must be a string, got ${typeof value}`;
    if (value.length > 500) {
      return `field ${name} must be at most 500 characters, got ${value.length}`;
    }
  }
  return undefined;
}

/** A sign-up form post. Field values are size-limited here and at the capture endpoint. */
export const SignUpMessage = envelope(
  'sign-up',
  v.strictObject({
    listId: id,
    email,
    name: v.optional(v.pipe(v.string(), v.maxLength(200))),
    /** Extra form fields, at most 20, each value at most 500 characters. */
    fields: v.optional(
      v.pipe(
        // Checked entry by entry rather than with valibot's record(), which drops the keys
        // __proto__, prototype and constructor without a word: a form field of that name is
        // a field like any other, and is kept. (record() would also take an array.)
        v.custom<Record<string, string>>(
          (f) => typeof f === 'object' && f !== null && !Array.isArray(f),
          'must be an object of field names to values',
        ),
        v.check(
          (f) => badField(f) === undefined,
          (issue) => `${String(badField(issue.input as Record<string, unknown>))}`,
        ),
        v.check((f) => Object.keys(f).length <= 20, 'at most 20 fields'),
      ),
    ),
  }),
);

/** An unsubscribe; without `listId` it is from every list. */
export const UnsubscribeMessage = envelope(
  'unsubscribe',
  v.strictObject({
    /** The platform's opaque subscriber id, as in the link. */
    subscriberId: id,
    listId: v.optional(id),
    campaignId: v.optional(id),
  }),
);

/** A tracked link click. */
export const ClickMessage = envelope(
  'click',
  v.strictObject({
    campaignId: id,
    subscriberId: id,
    // Trimmed, checked, then stripped of tabs and newlines (which the URL parser ignores),
    // as zod's url() did.
    url: v.pipe(
      v.string(),
      v.trim(),
      v.check(isHttpUrl, 'must be an http or https URL'),
      v.transform((url) => url.replace(/[\t\n\r]/g, '')),
      v.maxLength(2048),
    ),
  }),
);

/** An open pixel load. */
export const OpenMessage = envelope(
  'open',
  v.strictObject({
    campaignId: id,
    subscriberId: id,
    userAgent: v.optional(v.pipe(v.string(), v.maxLength(512))),
  }),
);

/** The schema of each buffer. Clicks and opens share the tracking buffer. */
const SCHEMAS = {
  sends: SendMessage,
  'opt-ins': OptInConfirmationMessage,
  'sign-ups': SignUpMessage,
  unsubscribes: UnsubscribeMessage,
  tracking: v.variant('type', [ClickMessage, OpenMessage]),
} as const satisfies Record<BufferName, v.GenericSchema>;

export type BufferMessage<B extends BufferName> = v.InferOutput<(typeof SCHEMAS)[B]>;
export type AnyBufferMessage = BufferMessage<BufferName>;

/** One problem with a message: the path to the field, and what is wrong with it. */
export interface ContractIssue {
  path: PropertyKey[];
  message: string;
}

/** A buffer's contract: `safeParse` returns the message as validated, or every problem found. */
export interface BufferContract<T> {
  safeParse(
    input: unknown,
  ): { success: true; data: T } | { success: false; error: { issues: ContractIssue[] } };
}

function contract<S extends v.GenericSchema>(schema: S): BufferContract<v.InferOutput<S>> {
  return {
    safeParse(input) {
      const parsed = v.safeParse(schema, input);
      if (parsed.success) return { success: true, data: parsed.output };
      return {
        success: false,
        error: {
          issues: parsed.issues.map((issue) => ({
            path: (issue.path ?? []).map((item) => item.key as PropertyKey),
            message: issue.message,
          })),
        },
      };
    },
  };
}

/** What each buffer accepts. */
export const BUFFER_CONTRACTS: { [B in BufferName]: BufferContract<BufferMessage<B>> } = {
  sends: contract(SCHEMAS.sends),
  'opt-ins': contract(SCHEMAS['opt-ins']),
  'sign-ups': contract(SCHEMAS['sign-ups']),
  unsubscribes: contract(SCHEMAS.unsubscribes),
  tracking: contract(SCHEMAS.tracking),
};

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
      .map((issue) => `${issue.path.map(String).join('.') || '(body)'}: ${issue.message}`)
      .join('; '),
  };
}

/**
 * An absolute http(s) URL. The "://" is required: the URL parser alone would read
 * "http:example.com" as http://example.com/.
 */
function isHttpUrl(url: string): boolean {
  return /^https?:\/\//i.test(url) && URL.canParse(url);
}
