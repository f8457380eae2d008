import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed links. No link carries an email address, only the platform's opaque ids: a URL is
 * kept in access logs, browser histories and mail scanners' records.
 *
 * The platform signs the query parameters of every tracked link it puts in an
 * email; the capture function accepts only links whose signature matches, so nobody can make
 * our domain redirect to a site of their choosing (no open redirect) or forge an action.
 *
 * signature = base64url(HMAC-SHA256(key, kind + "\n" + each signed field's value, in order))
 *
 * A link names the key that signed it (`k`), so the key can rotate without breaking links
 * already sent: verification accepts the current key and the previous one (LinkKeys).
 */
export const SIGNED_FIELDS = {
  /** c: campaign id, s: subscriber id, u: destination URL */
  click: ['c', 's', 'u'],
  /** c: campaign id, s: subscriber id */
  open: ['c', 's'],
  /** l: list id, s: subscriber id, x: when the link expires (Unix seconds) */
  confirm: ['l', 's', 'x'],
  /** s: subscriber id, l: list id (empty: every list), c: campaign id (may be empty) */
  unsubscribe: ['s', 'l', 'c'],
  /**
   * l: list id. Not a link: the token a sign-up form for that list carries (its `token`
   * field), so a form can only sign people up to the list it was made for.
   */
  'sign-up': ['l'],
} as const;

export type SignedKind = keyof typeof SIGNED_FIELDS;
export type LinkParams = Partial<Record<string, string>>;

/** A signing key and the id links carry to name it. */
export interface LinkKey {
  id: string;
  key: string;
}

/** The key that signs new links, and the one before it, still accepted during a rotation. */
export interface LinkKeys {
  current: LinkKey;
  previous?: LinkKey;
}

/** The id of the key the stack generates, a plain string in the secret. */
export const FIRST_KEY_ID = '1';

/**
 * The link key secret's value: the plain string the stack generates (key id "1"), or, to
 * rotate, JSON {"id": "2", "key": "<new>", "previous": {"id": "1", "key": "<old>"}}; once
 * the links signed with the old key have expired or stopped mattering, drop `previous`.
 */
export function parseLinkKeys(secret: string): LinkKeys {
  if (!secret.trimStart().startsWith('{')) return { current: { id: FIRST_KEY_ID, key: secret } };
  const json = JSON.parse(secret) as { id?: unknown; key?: unknown; previous?: unknown };
  const key = (k: { id?: unknown; key?: unknown } | undefined, where: string): LinkKey => {
    if (typeof k?.id !== 'string' || k.id === '' || typeof k.key !== 'string' || k.key === '') {
      throw new Error(`the link key secret needs ${where}"id" and ${where}"key" strings`);
    }
    return { id: k.id, key: k.key };
  };
  const current = key(json, '');
  if (json.previous === undefined) return { current };
  const previous = key(json.previous as { id?: unknown; key?: unknown }, 'previous.');
  if (previous.id === current.id) {
    throw new Error(`the link key secret's previous key has the current key's id ${current.id}`);
  }
  return { current, previous };
}

export function signature(key: string, kind: SignedKind, params: LinkParams): string {
  const values = SIGNED_FIELDS[kind].map((field) => params[field] ?? '');
  return createHmac('sha256', key)
    .update([kind, ...values].join('\n'))
    .digest('base64url');
}

/**
 * The query string the platform puts in a link: the fields, the current key's id `k` and
 * `sig`. A confirm link needs `x`, when it expires (Unix seconds).
 */
export function signedQuery(keys: LinkKeys, kind: SignedKind, params: LinkParams): string {
  const query = new URLSearchParams();
  for (const field of SIGNED_FIELDS[kind]) {
    const value = params[field];
    if (value !== undefined && value !== '') query.set(field, value);
  }
  query.set('k', keys.current.id);
  query.set('sig', signature(keys.current.key, kind, params));
  return query.toString();
}

/**
 * True only for the exact signature of these params by the key the link names (`k`), the
 * current or the previous one; a link without `k` (a form token) may be either.
 */
export function verifyWithKeys(
  keys: LinkKeys,
  kind: SignedKind,
  params: LinkParams,
  sig: string,
): boolean {
  const candidates = [keys.current, ...(keys.previous ? [keys.previous] : [])].filter(
    (k) => params.k === undefined || k.id === params.k,
  );
  return candidates.some((k) => verify(k.key, kind, params, sig));
}

/** True only for the exact signature of these params; compared in constant time. */
export function verify(key: string, kind: SignedKind, params: LinkParams, sig: string): boolean {
  const expected = Buffer.from(signature(key, kind, params));
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
