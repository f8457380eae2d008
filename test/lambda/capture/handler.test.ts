import { createHash } from 'node:crypto';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { ALBEvent, ALBResult } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { BUFFER_CONTRACTS, type BufferName } from '../../../lambda/shared/contracts';
import { capture } from '../../../lambda/capture/capture';
import {
  parseLinkKeys,
  signature,
  signedQuery,
  type SignedKind,
} from '../../../lambda/shared/link-signing';
import { albEvent, type AlbRequest } from '../../helpers/alb';

const KEY = 'test-link-signing-key-0123456789';
/** When confirmation links expire: after every test has run (Unix seconds). */
const LATER = String(Math.floor(Date.parse('2099-01-01T00:00:00Z') / 1000));
const QUEUES: Record<BufferName, string> = {
  sends: 'https://sqs.eu-west-1.amazonaws.com/123456789012/sends',
  'opt-ins': 'https://sqs.eu-west-1.amazonaws.com/123456789012/opt-ins',
  'sign-ups': 'https://sqs.eu-west-1.amazonaws.com/123456789012/sign-ups',
  unsubscribes: 'https://sqs.eu-west-1.amazonaws.com/123456789012/unsubscribes',
  tracking: 'https://sqs.eu-west-1.amazonaws.com/123456789012/tracking',
};
const ROUTES = {
  click: '/t/click',
  open: '/t/open',
  confirm: '/confirm',
  unsubscribe: '/unsubscribe',
  signUp: '/signup',
};

const sqs = mockClient(SQSClient);
const secrets = mockClient(SecretsManagerClient);
let handler: (event: ALBEvent) => Promise<ALBResult>;

beforeAll(async () => {
  process.env.CAPTURE_ROUTES = JSON.stringify(ROUTES);
  const { sends: _sends, ...written } = QUEUES;
  process.env.QUEUE_URLS = JSON.stringify(written);
  process.env.LINK_KEY_SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:links';
  ({ handler } = await import('../../../lambda/capture/handler'));
});

beforeEach(() => {
  sqs.reset();
  sqs.on(SendMessageCommand).resolves({ MessageId: 'sqs-1' });
  secrets.on(GetSecretValueCommand).resolves({ SecretString: KEY });
});

function signed(kind: SignedKind, params: Record<string, string>): Record<string, string> {
  return { ...params, sig: signature(KEY, kind, params) };
}

async function call(request: AlbRequest): Promise<ALBResult> {
  return handler(albEvent(request));
}

/** The one message sent to SQS, checked against its buffer's contract. */
function sentMessage(buffer: BufferName): Record<string, unknown> {
  const calls = sqs.commandCalls(SendMessageCommand);
  expect(calls).toHaveLength(1);
  const input = calls[0]?.args[0].input;
  expect(input?.QueueUrl).toBe(QUEUES[buffer]);
  const body = JSON.parse(input?.MessageBody ?? '') as Record<string, unknown>;
  expect(BUFFER_CONTRACTS[buffer].safeParse(body).success).toBe(true);
  return body;
}

const click = { c: 'c-42', s: 's-9001', u: 'https://shop.example.com/sale?utm=mail' };

describe('click', () => {
  it('buffers the click and redirects to the signed destination', async () => {
    const result = await call({ path: '/t/click', query: signed('click', click) });
    expect(result.statusCode).toBe(302);
    expect(result.headers?.location).toBe(click.u);
    expect(result.headers?.['cache-control']).toContain('no-store');
    expect(sentMessage('tracking')).toMatchObject({
      type: 'click',
      data: { campaignId: 'c-42', subscriberId: 's-9001', url: click.u },
    });
  });

  it.each([
    ['a changed destination', { ...signed('click', click), u: 'https://evil.example.net/' }],
    ['a changed subscriber', { ...signed('click', click), s: 's-1' }],
    ['a missing signature', click],
    ['a signature from another key', { ...click, sig: signature('other-key', 'click', click) }],
    ['a truncated signature', { ...click, sig: signature(KEY, 'click', click).slice(0, 20) }],
  ])('refuses %s with 400 and never redirects', async (_case, query) => {
    const result = await call({ path: '/t/click', query });
    expect(result.statusCode).toBe(400);
    expect(result.headers?.location).toBeUndefined();
    expect(result.body).toContain('This link is not valid');
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('never redirects to a non-http destination, even when signed', async () => {
    const query = signed('click', { ...click, u: 'javascript:alert(document.cookie)' });
    const result = await call({ path: '/t/click', query });
    expect(result.statusCode).toBe(400);
    expect(result.headers?.location).toBeUndefined();
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('redirects to the destination as the URL parser writes it: no line break in Location', async () => {
    const u = 'https://shop.example.com/sale\r\nSet-Cookie: session=stolen';
    const result = await call({ path: '/t/click', query: signed('click', { ...click, u }) });
    expect(result.statusCode).toBe(302);
    expect(result.headers?.location).toBe(
      'https://shop.example.com/saleSet-Cookie:%20session=stolen',
    );
    expect(result.headers?.location).not.toMatch(/[\r\n]/);
  });

  it('refuses a query parameter with broken URL encoding', async () => {
    const event = albEvent({ path: '/t/click', query: signed('click', click) });
    event.queryStringParameters = { ...event.queryStringParameters, u: '%E0%A4%A' };
    const result = await handler(event);
    expect(result.statusCode).toBe(400);
    expect(result.body).toContain('not valid URL encoding');
  });
});

describe('open pixel', () => {
  it('buffers the open and returns a 1x1 GIF that is never cached', async () => {
    const result = await call({
      path: '/t/open',
      query: signed('open', { c: 'c-42', s: 's-9001' }),
    });
    expect(result.statusCode).toBe(200);
    expect(result.headers?.['content-type']).toBe('image/gif');
    expect(result.headers?.['cache-control']).toContain('no-store');
    expect(result.isBase64Encoded).toBe(true);
    const gif = Buffer.from(result.body ?? '', 'base64');
    expect(gif.subarray(0, 6).toString('ascii')).toBe('GIF89a');
    expect([gif.readUInt16LE(6), gif.readUInt16LE(8)]).toEqual([1, 1]);
    expect(sentMessage('tracking')).toMatchObject({
      type: 'open',
      data: {
        campaignId: 'c-42',
        subscriberId: 's-9001',
        userAgent: expect.stringContaining('iPhone'),
      },
    });
  });

  it('refuses a forged open', async () => {
    const result = await call({ path: '/t/open', query: { c: 'c-42', s: 's-9001', sig: 'x' } });
    expect(result.statusCode).toBe(400);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });
});

/** A POST of a signed link, as the page's button or RFC 8058's one-click sends it. */
function post(path: string, query: Record<string, string>): AlbRequest {
  return {
    method: 'POST',
    path,
    query,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'List-Unsubscribe=One-Click',
  };
}

/** The form's action on a page, unescaped, as a browser would post it. */
function formAction(body: string | undefined): URL {
  const action = /<form method="post" action="([^"]*)">/.exec(body ?? '')?.[1];
  if (action === undefined) throw new Error(`no form on the page: ${body}`);
  return new URL(action.replace(/&#38;/g, '&'), 'https://mail.example.com');
}

describe('confirmation and unsubscribe', () => {
  it.each([
    ['confirm', '/confirm', { l: 'l-1', s: 's-ana', x: LATER }, 'Confirm your subscription'],
    ['unsubscribe', '/unsubscribe', { s: 's-ana', l: 'l-1', c: 'c-42' }, 'Unsubscribe'],
  ] as const)(
    'a GET of a %s link (a mail scanner) only shows a button that posts the same link',
    async (kind, path, params, title) => {
      const query = signed(kind, params);
      const result = await call({ path, query });
      expect(result.statusCode).toBe(200);
      expect(result.body).toContain(title);
      expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
      const action = formAction(result.body);
      expect(action.pathname).toBe(path);
      expect(Object.fromEntries(action.searchParams)).toEqual(query);
      // The button's POST acts.
      const posted = Object.fromEntries(action.searchParams);
      expect((await call(post(path, posted))).statusCode).toBe(200);
      expect(sqs).toHaveReceivedCommandTimes(SendMessageCommand, 1);
    },
  );

  it('refuses a forged link on a GET too, without showing a button', async () => {
    const query = {
      ...signed('confirm', { l: 'l-1', s: 's-ana', x: LATER }),
      s: 's-bob',
    };
    const result = await call({ path: '/confirm', query });
    expect(result.statusCode).toBe(400);
    expect(result.body).not.toContain('<form');
  });

  it('confirms a double opt-in on POST and says so', async () => {
    const query = signed('confirm', { l: 'l-1', s: 's-ana', x: LATER });
    const result = await call(post('/confirm', query));
    expect(result.statusCode).toBe(200);
    expect(result.body).toContain('Subscription confirmed');
    expect(result.body).not.toMatch(/maintenance/i);
    expect(sentMessage('opt-ins')).toMatchObject({
      type: 'opt-in-confirmation',
      idempotencyKey: expect.stringMatching(/^opt-in:[\w-]{32}:\d{4}-\d\d-\d\d$/),
      data: { listId: 'l-1', subscriberId: 's-ana' },
    });
  });

  it('unsubscribes on an RFC 8058 one-click POST', async () => {
    const query = signed('unsubscribe', { s: 's-ana', l: 'l-1', c: 'c-42' });
    const result = await call(post('/unsubscribe', query));
    expect(result.statusCode).toBe(200);
    expect(result.body).toContain('You are unsubscribed');
    expect(sentMessage('unsubscribes')).toMatchObject({
      idempotencyKey: expect.stringMatching(/^unsubscribe:[\w-]{32}:\d{4}-\d\d-\d\d$/),
      data: { subscriberId: 's-ana', listId: 'l-1', campaignId: 'c-42' },
    });
  });

  it('unsubscribes from every list when the link names none', async () => {
    const result = await call(post('/unsubscribe', signed('unsubscribe', { s: 's-ana' })));
    expect(result.statusCode).toBe(200);
    const message = sentMessage('unsubscribes');
    expect(message.data).toEqual({ subscriberId: 's-ana' });
    expect(message.idempotencyKey).toMatch(/^unsubscribe:[\w-]{32}:\d{4}-\d\d-\d\d$/);
  });

  it('refuses an unsubscribe for another subscriber than the signed one', async () => {
    const query = { ...signed('unsubscribe', { s: 's-ana' }), s: 's-bob' };
    expect((await call(post('/unsubscribe', query))).statusCode).toBe(400);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });
});

/** The form token the platform puts in a list's sign-up form. */
const token = (list: string) => signature(KEY, 'sign-up', { l: list });

describe('sign-up form', () => {
  const form = { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' };
  const t1 = `token=${token('l-1')}`;
  const body = `email=Ana%40Example.com&list=l-1&name=Ana+Silva&city=Porto&${t1}`;

  it('buffers a valid sign-up and thanks the person', async () => {
    const result = await call({ method: 'POST', path: '/signup', headers: form, body });
    expect(result.statusCode).toBe(200);
    expect(result.body).toContain('Thanks for signing up');
    expect(sentMessage('sign-ups')).toMatchObject({
      type: 'sign-up',
      data: {
        listId: 'l-1',
        email: 'ana@example.com',
        name: 'Ana Silva',
        fields: { city: 'Porto' },
      },
    });
  });

  const keys = () =>
    sqs
      .commandCalls(SendMessageCommand)
      .map(
        (c) =>
          (JSON.parse(c.args[0].input.MessageBody ?? '') as { idempotencyKey: string })
            .idempotencyKey,
      );

  it('gives one key to a list and address a day, whatever else the form carries', async () => {
    await call({ method: 'POST', path: '/signup', headers: form, body });
    await call({ method: 'POST', path: '/signup', headers: form, body, base64: true });
    const other = `email=+ANA%40example.COM&list=l-1&city=Lisboa&extra=1&${t1}`;
    await call({ method: 'POST', path: '/signup', headers: form, body: other });
    const elsewhere = `email=ana%40example.com&list=l-2&token=${token('l-2')}`;
    await call({ method: 'POST', path: '/signup', headers: form, body: elsewhere });
    const [first, again, changed, otherList] = keys();
    expect(keys()).toHaveLength(4);
    expect(again).toBe(first);
    expect(changed).toBe(first);
    expect(otherList).not.toBe(first);
    expect(first).toMatch(
      new RegExp(`^sign-up:[\\w-]{32}:${new Date().toISOString().slice(0, 10)}$`),
    );
    expect(keys().join(' ')).not.toMatch(/ana|example/i);
  });

  it.each([
    ['no token', 'email=ana%40example.com&list=l-1'],
    ['the token of another list', `email=ana%40example.com&list=l-1&token=${token('l-2')}`],
    [
      'a token from another key',
      `email=ana%40example.com&list=l-1&token=${signature('k', 'sign-up', { l: 'l-1' })}`,
    ],
  ])('refuses a form with %s, naming the token', async (_case, b) => {
    const result = await call({ method: 'POST', path: '/signup', headers: form, body: b });
    expect(result.statusCode).toBe(400);
    expect(result.body).toContain('token: missing, or not the form token of this list');
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('thanks a bot that filled the honeypot field, and records nothing', async () => {
    const b = `${body}&website=http%3A%2F%2Fspam.example`;
    const result = await call({ method: 'POST', path: '/signup', headers: form, body: b });
    expect(result.statusCode).toBe(200);
    expect(result.body).toContain('Thanks for signing up');
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it.each([
    ['an invalid email', `email=not-an-email&list=l-1&${t1}`, 'email'],
    ['no list', `email=ana%40example.com&token=${token('')}`, 'listId'],
    [
      'a name over 200 characters',
      `email=ana%40example.com&list=l-1&${t1}&name=${'x'.repeat(201)}`,
      'name',
    ],
    ['a repeated field', `email=ana%40example.com&list=l-1&list=l-2&${t1}`, 'list is sent twice'],
  ])('refuses %s with a 400 that says what is wrong, enqueuing nothing', async (_c, b, field) => {
    const result = await call({ method: 'POST', path: '/signup', headers: form, body: b });
    expect(result.statusCode).toBe(400);
    expect(result.body).toContain(field);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('refuses an oversized body with 413', async () => {
    const big = `email=ana%40example.com&list=l-1&notes=${'x'.repeat(9000)}`;
    const result = await call({ method: 'POST', path: '/signup', headers: form, body: big });
    expect(result.statusCode).toBe(413);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('refuses a body that is not a form', async () => {
    const result = await call({
      method: 'POST',
      path: '/signup',
      headers: { 'content-type': 'application/json' },
      body: '{"email":"ana@example.com"}',
    });
    expect(result.statusCode).toBe(400);
    expect(result.body).toContain('application/x-www-form-urlencoded');
  });

  it('takes fields named __proto__, constructor and toString as fields', async () => {
    const b = `email=ana%40example.com&list=l-1&${t1}&__proto__=x&constructor=y&toString=z`;
    const result = await call({ method: 'POST', path: '/signup', headers: form, body: b });
    expect(result.statusCode).toBe(200);
    const fields = (sentMessage('sign-ups').data as { fields: Record<string, string> }).fields;
    expect(Object.entries(fields)).toEqual([
      ['__proto__', 'x'],
      ['constructor', 'y'],
      ['toString', 'z'],
    ]);
  });

  it('never echoes what the request sent into the page', async () => {
    const result = await call({
      method: 'POST',
      path: '/signup',
      headers: { 'content-type': '<script>alert(1)</script>' },
      body: '',
    });
    expect(result.statusCode).toBe(400);
    expect(result.body).not.toContain('<script>');
  });
});

describe('routing and failures', () => {
  it.each([
    ['POST', '/t/click', 'GET'],
    ['GET', '/signup', 'POST'],
    ['DELETE', '/unsubscribe', 'GET, POST'],
    ['PUT', '/confirm', 'GET, POST'],
  ])('answers %s %s with 405 and Allow: %s', async (method, path, allow) => {
    const result = await call({ method, path });
    expect(result.statusCode).toBe(405);
    expect(result.headers?.allow).toBe(allow);
    expect(sqs).not.toHaveReceivedCommand(SendMessageCommand);
  });

  it('answers an unknown path with 404', async () => {
    const result = await call({ path: '/admin' });
    expect(result.statusCode).toBe(404);
  });

  it('shows a 503 page, never "done", when SQS refuses the message', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('ServiceUnavailable'));
    const result = await call(post('/unsubscribe', signed('unsubscribe', { s: 's-ana' })));
    expect(result.statusCode).toBe(503);
    expect(result.headers?.['retry-after']).toBe('60');
    expect(result.body).toContain('Please try again in a minute');
    expect(result.body).not.toContain('unsubscribed');
  });

  it('does not redirect a click when SQS refuses it', async () => {
    sqs.on(SendMessageCommand).rejects(new Error('ServiceUnavailable'));
    const result = await call({ path: '/t/click', query: signed('click', click) });
    expect(result.statusCode).toBe(503);
    expect(result.headers?.location).toBeUndefined();
  });

  it('read the link key from Secrets Manager once in this whole file, then from its cache', async () => {
    await call({ path: '/t/open', query: signed('open', { c: 'c', s: 's' }) });
    // The mock's history is never reset: every signed request above checked the key.
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
  });
});

describe('pages', () => {
  it('forbid scripts, frames and foreign forms, allowing only their own inline style', async () => {
    const pages = [
      await call(post('/confirm', signed('confirm', { l: 'l-1', s: 's-ana', x: LATER }))),
      await call({
        path: '/confirm',
        query: signed('confirm', { l: 'l-1', s: 's-a', x: LATER }),
      }),
      await call({ path: '/nowhere' }),
    ];
    for (const page of pages) {
      const csp = String(page.headers?.['content-security-policy']);
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("form-action 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      // The hash names the style the page really has, so the browser applies it.
      const style = /<style>(.*?)<\/style>/.exec(page.body ?? '')?.[1] ?? '';
      const hash = createHash('sha256').update(style).digest('base64');
      expect(csp).toContain(`style-src 'sha256-${hash}'`);
    }
  });
});

describe('clicks and opens of one link', () => {
  /** The keys `capture` gives these requests at these times (minutes after 04:00). */
  async function keysAt(requests: [AlbRequest, number][]): Promise<string[]> {
    const keys: string[] = [];
    for (const [request, minutes] of requests) {
      await capture(albEvent(request), ROUTES, {
        linkKeys: async () => parseLinkKeys(KEY),
        enqueue: async (_buffer, message) => void keys.push(message.idempotencyKey),
        now: () => new Date(Date.parse('2026-11-22T04:00:00Z') + minutes * 60_000),
        log: () => undefined,
      });
    }
    return keys;
  }
  const clickOf = (u: string): AlbRequest => ({
    path: '/t/click',
    query: signed('click', { ...click, u }),
  });
  const open: AlbRequest = { path: '/t/open', query: signed('open', { c: 'c-42', s: 's-9001' }) };

  it('count once within the hour, replays included, and again in the next hour', async () => {
    const [first, replay, otherLink, nextHour] = await keysAt([
      [clickOf(click.u), 1],
      [clickOf(click.u), 59],
      [clickOf('https://shop.example.com/other'), 2],
      [clickOf(click.u), 61],
    ]);
    expect(replay).toBe(first);
    expect(otherLink).not.toBe(first);
    expect(nextHour).not.toBe(first);
    const [o1, o2, o3] = await keysAt([
      [open, 0],
      [open, 30],
      [open, 60],
    ]);
    expect(o2).toBe(o1);
    expect(o3).not.toBe(o1);
    expect(o1).not.toBe(first);
  });
});

describe('the keys of confirmations and unsubscribes', () => {
  /** The key `capture` gives this request on this day. */
  async function keyOn(request: AlbRequest, day: string): Promise<string> {
    let key = '';
    await capture(albEvent(request), ROUTES, {
      linkKeys: async () => parseLinkKeys(KEY),
      enqueue: async (_buffer, message) => void (key = message.idempotencyKey),
      now: () => new Date(`${day}T04:00:00Z`),
      log: () => undefined,
    });
    return key;
  }
  const unsubscribe = (subscriber: string, l?: string) =>
    post('/unsubscribe', signed('unsubscribe', { s: subscriber, ...(l ? { l } : {}) }));

  it('hold only a keyed hash of the person, and a later unsubscribe is no duplicate of an earlier one', async () => {
    const first = await keyOn(unsubscribe('s-ana', 'l-1'), '2026-11-22');
    expect(first).not.toMatch(/s-ana/);
    expect(await keyOn(unsubscribe('s-ana', 'l-1'), '2026-11-22')).toBe(first);
    // Re-subscribed, then unsubscribed again weeks later: a new unsubscribe.
    expect(await keyOn(unsubscribe('s-ana', 'l-1'), '2026-12-20')).not.toBe(first);
    expect(await keyOn(unsubscribe('s-bob', 'l-1'), '2026-11-22')).not.toBe(first);
    expect(await keyOn(unsubscribe('s-ana'), '2026-11-22')).not.toBe(first);
    const confirm = post('/confirm', signed('confirm', { l: 'l-1', s: 's-ana', x: LATER }));
    const confirmed = await keyOn(confirm, '2026-11-22');
    expect(confirmed).not.toMatch(/s-ana/);
    expect(await keyOn(confirm, '2026-11-23')).not.toBe(confirmed);
  });
});

describe('link lifecycle', () => {
  /** What `capture` answers, with this link key secret, at this time. */
  async function answer(request: AlbRequest, secret: string, at = '2026-11-22T04:00:00Z') {
    const sent: string[] = [];
    const result = await capture(albEvent(request), ROUTES, {
      linkKeys: async () => parseLinkKeys(secret),
      enqueue: async (_buffer, message) => void sent.push(message.idempotencyKey),
      now: () => new Date(at),
      log: () => undefined,
    });
    return { status: result.statusCode, sent: sent.length };
  }
  const query = (link: string) => Object.fromEntries(new URLSearchParams(link));
  const expires = String(Date.parse('2026-11-29T04:00:00Z') / 1000);
  const confirmParams = { l: 'l-1', s: 's-ana', x: expires };

  it('expires a confirmation link, on GET and POST, and names no link without an expiry', async () => {
    const link = query(signedQuery(parseLinkKeys(KEY), 'confirm', confirmParams));
    expect(await answer(post('/confirm', link), KEY, '2026-11-29T03:59:59Z')).toEqual({
      status: 200,
      sent: 1,
    });
    for (const request of [post('/confirm', link), { path: '/confirm', query: link }]) {
      expect(await answer(request, KEY, '2026-11-29T04:00:01Z')).toEqual({ status: 410, sent: 0 });
    }
    const { x: _x, ...noExpiry } = confirmParams;
    const unexpiring = query(signedQuery(parseLinkKeys(KEY), 'confirm', noExpiry));
    expect(await answer(post('/confirm', unexpiring), KEY)).toEqual({ status: 400, sent: 0 });
  });

  it('accepts links signed with the current and the previous key, so the key can rotate', async () => {
    const old = query(signedQuery(parseLinkKeys(KEY), 'unsubscribe', { s: 's-ana' }));
    expect(old.k).toBe('1');
    const rotated = JSON.stringify({
      id: '2',
      key: 'new-key-0123',
      previous: { id: '1', key: KEY },
    });
    const fresh = query(signedQuery(parseLinkKeys(rotated), 'unsubscribe', { s: 's-bob' }));
    expect(fresh.k).toBe('2');
    expect(await answer(post('/unsubscribe', old), rotated)).toEqual({ status: 200, sent: 1 });
    expect(await answer(post('/unsubscribe', fresh), rotated)).toEqual({ status: 200, sent: 1 });
    // A link names its key: the same signature under another key id is refused.
    expect(await answer(post('/unsubscribe', { ...old, k: '2' }), rotated)).toEqual({
      status: 400,
      sent: 0,
    });
    // Once the previous key is retired, its links stop working.
    const retired = JSON.stringify({ id: '2', key: 'new-key-0123' });
    expect(await answer(post('/unsubscribe', old), retired)).toEqual({ status: 400, sent: 0 });
    expect(await answer(post('/unsubscribe', fresh), retired)).toEqual({ status: 200, sent: 1 });
  });

  it('refuses a link key secret it cannot read, naming what is missing', () => {
    expect(() => parseLinkKeys('{"id":"2"}')).toThrow('the link key secret needs "id" and "key"');
    expect(() => parseLinkKeys('{"id":"2","key":"k","previous":{"id":"2","key":"j"}}')).toThrow(
      "previous key has the current key's id 2",
    );
  });
});
