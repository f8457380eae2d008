import type { ALBResult } from 'aws-lambda';

/**
 * The demo platform's app: a placeholder target so the load balancer has something to
 * forward to. A real platform adopts the stack with its own listener and target group.
 */
export const handler = async (): Promise<ALBResult> => ({
  statusCode: 200,
  statusDescription: '200 OK',
  headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' },
  body:
    '<!doctype html><html lang="en"><meta charset="utf-8"><title>Platform</title>' +
    '<h1>Email platform (demo app)</h1><p>This placeholder stands in for the web app.</p>',
  isBase64Encoded: false,
});
