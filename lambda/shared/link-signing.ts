import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signed links. The platform signs the query parameters of every tracked link it puts in an
 * email; the capture function accepts only links whose signature matches, so nobody can make
 * our domain redirect to a site of their choosing (no open redirect) or forge an action.
 *
 * signature = base64url(HMAC-SHA256(key, kind + "\n" + each signed field's value, in order))
 */
export const SIGNED_FIELDS = {
  /** c: campaign id, s: subscriber id, u: destination URL */
  click: ['c', 's', 'u'],
  /** c: campaign id, s: subscriber id */
  open: ['c', 's'],
  /** l: list id, e: email address */
  confirm: ['l', 'e'],
  /** e: email address, l: list id (empty: every list), c: campaign id (may be empty) */
  unsubscribe: ['e', 'l', 'c'],
  /**
   * l: list id. Not a link: the token a sign-up form for that list carries (its `token`
   * field), so a form can only sign people up to the list it was made for.
   */
  'sign-up': ['l'],
} as const;

export type SignedKind = keyof typeof SIGNED_FIELDS;
export type LinkParams = Partial<Record<string, string>>;

export function signature(key: string, kind: SignedKind, params: LinkParams): string {
  const values = SIGNED_FIELDS[kind].map((field) => params[field] ?? '');
  return createHmac('sha256', key)
    .update([kind, ...values].join('\n'))
    .digest('base64url');
}

/** The query string the platform puts in a link: the fields and `sig`. */
export function signedQuery(key: string, kind: SignedKind, params: LinkParams): string {
  const query = new URLSearchParams();
  for (const field of SIGNED_FIELDS[kind]) {
    const value = params[field];
    if (value !== undefined && value !== '') query.set(field, value);
  }
  query.set('sig', signature(key, kind, params));
  return query.toString();
}

/** True only for the exact signature of these params; compared in constant time. */
export function verify(key: string, kind: SignedKind, params: LinkParams, sig: string): boolean {
  const expected = Buffer.from(signature(key, kind, params));
  const given = Buffer.from(sig);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
