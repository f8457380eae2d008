import { createHash } from 'node:crypto';
import { PAGE_STYLE } from '../shared/maintenance-page';

/** Small self-contained pages the capture function answers people with. */

/**
 * What the pages may load and do: nothing but their own inline style (by its hash) and a
 * form posted back here; no scripts, frames or base URL. A script injected into a page
 * would not run.
 * https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Security-Policy
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(PAGE_STYLE).digest('base64')}'`,
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

function page(title: string, ...paragraphs: string[]): string {
  return (
    '<!doctype html><html lang="en"><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    `<title>${title}</title><style>${PAGE_STYLE}</style><main><h1>${title}</h1>` +
    paragraphs.map((p) => `<p>${p}</p>`).join('') +
    '</main>'
  );
}

export type DoneKind = 'confirm' | 'unsubscribe' | 'sign-up';

/** What a person sees once their action is safely recorded. */
export function donePage(kind: DoneKind): string {
  switch (kind) {
    case 'confirm':
      return page(
        'Subscription confirmed',
        'Thank you. Your subscription is confirmed.',
        'You can close this page.',
      );
    case 'unsubscribe':
      return page(
        'You are unsubscribed',
        'You will not receive these emails any more.',
        'You can close this page.',
      );
    case 'sign-up':
      return page(
        'Thanks for signing up',
        'Please check your inbox: we have sent you an email to confirm your address.',
      );
  }
}

export type AskKind = 'confirm' | 'unsubscribe';

/**
 * What a GET of a confirm or unsubscribe link shows: a button that POSTs the signed link
 * (`action`, a path and query the caller built from the signed fields; escaped here).
 */
export function askPage(kind: AskKind, action: string): string {
  const [title, text, button] =
    kind === 'confirm'
      ? ['Confirm your subscription', 'Press the button to confirm it.', 'Confirm']
      : ['Unsubscribe', 'Press the button to stop receiving these emails.', 'Unsubscribe'];
  // An unsubscribe posts the same body as RFC 8058's one-click POST: one request, two ways.
  const oneClick =
    kind === 'unsubscribe' ? '<input type="hidden" name="List-Unsubscribe" value="One-Click">' : '';
  const form =
    `<form method="post" action="${escapeHtml(action)}">${oneClick}` +
    `<button type="submit">${button}</button></form>`;
  return page(title, text, form);
}

const ERRORS: Record<number, [string, string]> = {
  400: [
    'This link is not valid',
    'The link may be incomplete. Please use the link from your email as it is.',
  ],
  404: ['Page not found', 'There is nothing at this address.'],
  405: ['Not allowed', 'This address does not accept that kind of request.'],
  410: [
    'This link has expired',
    'Confirmation links work for a limited time. Please sign up again to get a new one.',
  ],
  413: ['Too much data', 'The form sent more than we accept. Please shorten it and try again.'],
  503: [
    'Please try again in a minute',
    'We could not record this just now, and nothing was changed. Please try again in a minute.',
  ],
};

/** An error page. `detail` says what to fix; it never echoes what the request sent. */
export function errorPage(status: keyof typeof ERRORS, detail?: string): string {
  const [title, text] = ERRORS[status] ?? ['Error', 'Something went wrong.'];
  return detail === undefined ? page(title, text) : page(title, text, escapeHtml(detail));
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
