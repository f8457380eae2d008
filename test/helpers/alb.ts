import type { ALBEvent } from 'aws-lambda';
import fixture from '../fixtures/alb-event.json';

export interface AlbRequest {
  method?: string;
  path: string;
  /** Query parameters, URL-encoded here as the ALB passes them (it does not decode). */
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
  base64?: boolean;
}

/** An ALB → Lambda event, from the fixture with this request's parts. */
export function albEvent(request: AlbRequest): ALBEvent {
  const event = structuredClone(fixture) as ALBEvent;
  event.httpMethod = request.method ?? 'GET';
  event.path = request.path;
  event.queryStringParameters = Object.fromEntries(
    Object.entries(request.query ?? {}).map(([k, v]) => [k, encodeURIComponent(v)]),
  );
  event.headers = { ...event.headers, ...request.headers };
  event.body = request.base64
    ? Buffer.from(request.body ?? '').toString('base64')
    : (request.body ?? '');
  event.isBase64Encoded = request.base64 ?? false;
  return event;
}
