import { createHash, createHmac } from 'node:crypto';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { type AnyBufferMessage, BUFFER_CONTRACTS } from '../shared/contracts';
import type { CaptureBuffer } from './buffers';
import {
  type LinkKeys,
  type LinkParams,
  SIGNED_FIELDS,
  type SignedKind,
  verifyWithKeys,
} from '../shared/link-signing';
import {
  type AskKind,
  askPage,
  CONTENT_SECURITY_POLICY,
  type DoneKind,
  donePage,
  errorPage,
} from './pages';

/** The paths the capture function answers, exact matches. Configured in cdk.json. */
export interface CaptureRoutes {
  click: string;
  open: string;
  confirm: string;
  unsubscribe: string;
  signUp: string;
}

export interface CaptureDeps {
  /** The HMAC keys that sign links: the current one, and the previous one in a rotation. */
  linkKeys(): Promise<LinkKeys>;
  /** Puts a message on a buffer's queue; rejects if SQS did not take it. */
  enqueue(buffer: CaptureBuffer, message: AnyBufferMessage): Promise<void>;
  now(): Date;
  /** Reports why a request was refused or failed; never shown to the person. */
  log(message: string, details: Record<string, unknown>): void;
}

/** Sign-up form bodies above this are refused (413) before parsing. */
export const MAX_FORM_BYTES = 8 * 1024;

/**
 * The sign-up form's honeypot: a field the form hides from people (CSS), which bots that fill
 * in every field fill in. A post with it filled is thanked and dropped.
 */
export const HONEYPOT_FIELD = 'website';

/** Clicks and opens of one link within this many minutes count once (replays included). */
export const TRACKING_BUCKET_MINUTES = 60;

/** A 1×1 transparent GIF. */
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

const NO_STORE = { 'cache-control': 'no-store, max-age=0', 'x-content-type-options': 'nosniff' };

const REASONS: Record<number, string> = {
  200: 'OK',
  302: 'Found',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  410: 'Gone',
  413: 'Payload Too Large',
  503: 'Service Unavailable',
};

function html(statusCode: number, body: string, headers: Record<string, string> = {}): ALBResult {
  return {
    statusCode,
    statusDescription: `${statusCode} ${REASONS[statusCode] ?? ''}`.trim(),
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': CONTENT_SECURITY_POLICY,
      ...NO_STORE,
      ...headers,
    },
    body,
    isBase64Encoded: false,
  };
}

class Refusal extends Error {
  constructor(
    readonly status: 400 | 404 | 405 | 410 | 413,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * Answers one request behind the load balancer: checks it, buffers what it records, and
 * tells the person the outcome. A person is told "done" only after SQS has the message.
 */
export async function capture(
  event: ALBEvent,
  routes: CaptureRoutes,
  deps: CaptureDeps,
): Promise<ALBResult> {
  try {
    return await route(event, routes, deps);
  } catch (err) {
    if (err instanceof Refusal) {
      deps.log('request refused', { path: event.path, status: err.status, reason: err.message });
      return html(
        err.status,
        errorPage(err.status, err.status === 400 ? err.message : undefined),
        err.headers,
      );
    }
    deps.log('could not buffer the request', {
      path: event.path,
      error: err instanceof Error ? err.message : String(err),
    });
    return html(503, errorPage(503), { 'retry-after': '60' });
  }
}

async function route(
  event: ALBEvent,
  routes: CaptureRoutes,
  deps: CaptureDeps,
): Promise<ALBResult> {
  const method = event.httpMethod.toUpperCase();
  const now = deps.now();
  const at = now.toISOString();
  const day = at.slice(0, 10);
  switch (event.path) {
    case routes.click: {
      allow(method, ['GET']);
      const [q] = await signedParams(event, 'click', ['c', 's', 'u'], deps);
      await buffer(deps, 'tracking', {
        v: 1,
        type: 'click',
        idempotencyKey: trackingKey('click', [q.c, q.s, q.u], now),
        occurredAt: at,
        data: { campaignId: q.c, subscriberId: q.s, url: q.u },
      });
      // Only ever to the signed destination, which the contract has checked is http(s), as
      // the URL parser writes it: it drops tabs and line breaks, so none reaches the header.
      // https://url.spec.whatwg.org/#concept-basic-url-parser
      return { ...html(302, ''), headers: { ...NO_STORE, location: new URL(q.u).href } };
    }
    case routes.open: {
      allow(method, ['GET']);
      const [q] = await signedParams(event, 'open', ['c', 's'], deps);
      const userAgent = event.headers?.['user-agent']?.slice(0, 512);
      await buffer(deps, 'tracking', {
        v: 1,
        type: 'open',
        idempotencyKey: trackingKey('open', [q.c, q.s], now),
        occurredAt: at,
        data: { campaignId: q.c, subscriberId: q.s, ...(userAgent ? { userAgent } : {}) },
      });
      return {
        statusCode: 200,
        statusDescription: '200 OK',
        headers: { 'content-type': 'image/gif', ...NO_STORE, pragma: 'no-cache', expires: '0' },
        body: PIXEL.toString('base64'),
        isBase64Encoded: true,
      };
    }
    case routes.confirm: {
      allow(method, ['GET', 'POST']);
      const [q, keys] = await signedParams(event, 'confirm', ['l', 's', 'x'], deps);
      // A confirmation link expires: a stale one (a forwarded mail, an old inbox) confirms
      // nobody. On GET too, so the page does not offer a button that cannot work.
      const expires = Number(q.x);
      if (!/^\d{1,12}$/.test(q.x)) throw new Refusal(400, `x must be Unix seconds, got: "${q.x}"`);
      if (now.getTime() > expires * 1000) {
        throw new Refusal(410, `the link expired at ${new Date(expires * 1000).toISOString()}`);
      }
      if (method === 'GET') return ask('confirm', routes.confirm, q);
      await buffer(deps, 'opt-ins', {
        v: 1,
        type: 'opt-in-confirmation',
        idempotencyKey: `opt-in:${personKey(keys, q.l, q.s)}:${day}`,
        occurredAt: at,
        data: { listId: q.l, subscriberId: q.s },
      });
      return done('confirm');
    }
    case routes.unsubscribe: {
      // POST is RFC 8058 one-click unsubscribe from the List-Unsubscribe header, or the
      // button on the page a GET shows.
      allow(method, ['GET', 'POST']);
      const [q, keys] = await signedParams(event, 'unsubscribe', ['s'], deps);
      if (method === 'GET') return ask('unsubscribe', routes.unsubscribe, q);
      await buffer(deps, 'unsubscribes', {
        v: 1,
        type: 'unsubscribe',
        // Per day: an unsubscribe after a later re-subscription is a new one, not a duplicate.
        idempotencyKey: `unsubscribe:${personKey(keys, q.l ?? '*', q.s)}:${day}`,
        occurredAt: at,
        data: {
          subscriberId: q.s,
          ...(q.l ? { listId: q.l } : {}),
          ...(q.c ? { campaignId: q.c } : {}),
        },
      });
      return done('unsubscribe');
    }
    case routes.signUp: {
      allow(method, ['POST']);
      const form = formFields(event);
      const {
        email = '',
        list = '',
        name,
        token = '',
        [HONEYPOT_FIELD]: honeypot,
        ...fields
      } = form;
      // A token signed for this list, which the platform puts in the list's form: nobody can
      // sign people up to a list whose form they were not given.
      const keys = await deps.linkKeys();
      if (!token || !verifyWithKeys(keys, 'sign-up', { l: list }, token)) {
        throw new Refusal(400, 'token: missing, or not the form token of this list');
      }
      if (honeypot) {
        // Thanked like a person, so the bot learns nothing; nothing is recorded.
        deps.log('sign-up dropped: honeypot field filled', { path: event.path });
        return done('sign-up');
      }
      const address = email.trim().toLowerCase();
      const data = {
        listId: list,
        email: address,
        ...(name ? { name: name.trim() } : {}),
        ...(Object.keys(fields).length > 0 ? { fields } : {}),
      };
      // One sign-up per list and address a day, whatever else the form carries: posting the
      // form again (or a bot posting it a thousand times) sends one confirmation email. The
      // address enters the key only through a keyed hash.
      await buffer(deps, 'sign-ups', {
        v: 1,
        type: 'sign-up',
        idempotencyKey: `sign-up:${personKey(keys, list, address)}:${day}`,
        occurredAt: at,
        data,
      });
      return done('sign-up');
    }
    default:
      throw new Refusal(404, `no capture route for ${event.path}`);
  }
}

/**
 * A list (or "*") and a person (a sign-up's address, or a subscriber id) as they may appear
 * in an idempotency key, which the consumers log: a keyed hash (HMAC with the link key),
 * never the address itself, and short whatever the ids. The same list and person always give
 * the same value, so keys still deduplicate.
 */
function personKey(keys: LinkKeys, list: string, person: string): string {
  return createHmac('sha256', keys.current.key)
    .update(`${list}\n${person.trim().toLowerCase()}`)
    .digest('base64url')
    .slice(0, 32);
}

/**
 * One key per link and hour: the same signed link clicked or fetched again within the hour
 * (a double click, a replay, a scanner) is one event. The link's fields enter only hashed.
 */
function trackingKey(kind: 'click' | 'open', fields: string[], now: Date): string {
  const link = createHash('sha256').update(fields.join('\n')).digest('base64url').slice(0, 32);
  const bucket = Math.floor(now.getTime() / (TRACKING_BUCKET_MINUTES * 60_000));
  return `${kind}:${link}:${bucket}`;
}

function done(kind: DoneKind): ALBResult {
  return html(200, donePage(kind));
}

/**
 * A GET of a confirm or unsubscribe link only asks: mail security scanners fetch every link
 * in a message, so a GET that acted would confirm and unsubscribe people who never clicked.
 * The page's button POSTs the same signed link, which acts. RFC 8058 exists for this: "mail
 * software sometimes fetches URLs in mail header fields, and thereby accidentally triggers
 * unsubscriptions"; its one-click unsubscribe is a POST.
 * https://www.rfc-editor.org/rfc/rfc8058
 */
function ask(kind: AskKind & SignedKind, path: string, params: LinkParams): ALBResult {
  const query = new URLSearchParams();
  for (const field of SIGNED_FIELDS[kind]) {
    const value = params[field];
    if (value) query.set(field, value);
  }
  if (params.k) query.set('k', params.k);
  query.set('sig', params.sig ?? '');
  return html(200, askPage(kind, `${path}?${query.toString()}`));
}

function allow(method: string, allowed: string[]): void {
  if (!allowed.includes(method)) {
    throw new Refusal(405, `method ${method} not allowed`, { allow: allowed.join(', ') });
  }
}

/** Validates against the buffer's contract (a 400 naming the field), then enqueues. */
async function buffer(deps: CaptureDeps, name: CaptureBuffer, message: AnyBufferMessage) {
  const parsed = BUFFER_CONTRACTS[name].safeParse(message);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    const field = first?.path.at(-1) ?? 'request';
    throw new Refusal(400, `${String(field)}: ${first?.message ?? 'invalid'}`);
  }
  await deps.enqueue(name, parsed.data);
}

type Params = Record<string, string | undefined> & Record<'c' | 's' | 'u' | 'l' | 'x', string>;

/**
 * The query parameters of a signed link, after checking the signature, and the link key
 * (the keys of confirmations and unsubscribes hash with it). The ALB passes query parameters
 * to Lambda still URL-encoded.
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/application/lambda-functions.html#receive-event-from-load-balancer
 */
async function signedParams(
  event: ALBEvent,
  kind: SignedKind,
  required: string[],
  deps: CaptureDeps,
): Promise<[Params, LinkKeys]> {
  const params: LinkParams = {};
  for (const [key, raw] of Object.entries(event.queryStringParameters ?? {})) {
    if (raw === undefined) continue;
    try {
      params[key] = decodeURIComponent(raw.replace(/\+/g, ' '));
    } catch {
      throw new Refusal(400, `query parameter ${key} is not valid URL encoding`);
    }
  }
  const missing = required.filter((k) => !params[k]);
  if (missing.length > 0) throw new Refusal(400, `missing ${missing.join(', ')}`);
  const sig = params.sig;
  const keys = await deps.linkKeys();
  if (!sig || !verifyWithKeys(keys, kind, params, sig)) {
    throw new Refusal(400, 'missing or wrong signature');
  }
  return [params as Params, keys];
}

function formFields(event: ALBEvent): Record<string, string> {
  const type = (event.headers?.['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new Refusal(
      400,
      `content-type must be application/x-www-form-urlencoded, got: ${type || '(none)'}`,
    );
  }
  const raw = event.body ?? '';
  const body = event.isBase64Encoded ? Buffer.from(raw, 'base64') : Buffer.from(raw, 'utf8');
  if (body.length > MAX_FORM_BYTES) {
    throw new Refusal(413, `form is ${body.length} bytes, more than ${MAX_FORM_BYTES}`);
  }
  // Without a prototype: a field named __proto__, constructor or toString is a field.
  const fields = Object.create(null) as Record<string, string>;
  for (const [key, value] of new URLSearchParams(body.toString('utf8'))) {
    if (Object.hasOwn(fields, key)) throw new Refusal(400, `field ${key} is sent twice`);
    fields[key] = value;
  }
  return fields;
}
