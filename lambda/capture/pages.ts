import { PAGE_STYLE } from '../shared/maintenance-page';

/** Small self-contained pages the capture function answers people with. */

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

const ERRORS: Record<number, [string, string]> = {
  400: [
    'This link is not valid',
    'The link may be incomplete. Please use the link from your email as it is.',
  ],
  404: ['Page not found', 'There is nothing at this address.'],
  405: ['Not allowed', 'This address does not accept that kind of request.'],
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
