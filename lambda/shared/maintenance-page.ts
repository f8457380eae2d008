/**
 * The page the load balancer serves itself (a fixed response) while the database switches
 * over. An ALB fixed-response body holds at most 1024 characters, so the page is one small
 * document with inline CSS and nothing to fetch.
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_FixedResponseActionConfig.html
 */
export const MAX_FIXED_RESPONSE_BODY = 1024;

/** The look shared by every page people see during maintenance. Inline CSS only. */
export const PAGE_STYLE =
  'body{margin:0;font:18px/1.5 system-ui,sans-serif;background:#eef2f5;color:#1f2933;' +
  'display:flex;min-height:100vh;align-items:center;justify-content:center}' +
  'main{max-width:30em;margin:1em;padding:1.5em 2em;background:#fff;border-radius:12px}' +
  'h1{font-size:1.4em;margin:0 0 .4em}p{margin:.5em 0}small{color:#52606d}';

/** "04:07 UTC": when to come back, in the one time zone every reader can convert. */
export function backBy(until: Date): string {
  return `${until.toISOString().slice(11, 16)} UTC`;
}

/**
 * The maintenance page. `until` is when the switchover should be over; the page asks
 * people to come back then, and reloads itself every 30 seconds meanwhile.
 */
export function maintenancePage(until: Date): string {
  return (
    '<!doctype html><html lang="en"><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width,initial-scale=1">' +
    '<meta http-equiv="refresh" content="30">' +
    `<title>Back in a few minutes</title><style>${PAGE_STYLE}</style><main>` +
    "<h1>We'll be right back</h1>" +
    "<p>We're upgrading our database. It takes a few minutes.</p>" +
    `<p><b>Please try again after ${backBy(until)}.</b> This page reloads by itself.</p>` +
    '<p><small>Emails, tracked links, sign-ups and unsubscribes keep working. ' +
    'Your data is safe.</small></p></main>'
  );
}
