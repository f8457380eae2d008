import type { BufferName } from '../shared/contracts';

/**
 * The buffers the capture endpoints write to; never `sends`, which only the platform fills.
 * The stack grants the function SendMessage on these queues alone and passes only their URLs.
 */
export const CAPTURE_BUFFERS = [
  'tracking',
  'opt-ins',
  'unsubscribes',
  'sign-ups',
] as const satisfies readonly BufferName[];
export type CaptureBuffer = (typeof CAPTURE_BUFFERS)[number];
