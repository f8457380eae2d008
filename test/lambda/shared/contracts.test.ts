import { parseBufferMessage } from '../../../lambda/shared/contracts';
import { messageFor } from '../../helpers/messages';

describe('buffer contracts', () => {
  it('accepts each buffer its own message', () => {
    for (const buffer of ['sends', 'opt-ins', 'sign-ups', 'unsubscribes', 'tracking'] as const) {
      expect(parseBufferMessage(buffer, JSON.stringify(messageFor(buffer, 'k')))).toMatchObject({
        ok: true,
      });
    }
  });

  it("refuses another buffer's message, naming the field", () => {
    const result = parseBufferMessage('tracking', JSON.stringify(messageFor('sends', 'k')));
    expect(result).toEqual({ ok: false, reason: expect.stringContaining('type') });
  });

  it('refuses a non-http click destination', () => {
    const click = messageFor('tracking', 'k');
    const body = JSON.stringify({ ...click, data: { ...click.data, url: 'javascript:alert(1)' } });
    expect(parseBufferMessage('tracking', body)).toEqual({
      ok: false,
      reason: expect.stringContaining('data.url'),
    });
  });

  it('refuses unknown fields, oversize values and too many form fields', () => {
    const signUp = messageFor('sign-ups', 'k');
    const tooMany = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`f${i}`, 'x']));
    for (const data of [
      { ...signUp.data, admin: true },
      { ...signUp.data, name: 'x'.repeat(201) },
      { ...signUp.data, fields: tooMany },
    ]) {
      const result = parseBufferMessage('sign-ups', JSON.stringify({ ...signUp, data }));
      expect(result.ok).toBe(false);
    }
  });

  it('keeps form fields named __proto__ and constructor, and names a bad field', () => {
    const signUp = messageFor('sign-ups', 'k');
    const fields = JSON.parse('{"__proto__":"x","constructor":"y","city":"Porto"}') as object;
    const ok = parseBufferMessage(
      'sign-ups',
      JSON.stringify({ ...signUp, data: { ...signUp.data, fields } }),
    );
    expect(ok.ok && Object.keys((ok.message.data as { fields: object }).fields)).toEqual([
      '__proto__',
      'constructor',
      'city',
    ]);
    const long = { ...signUp, data: { ...signUp.data, fields: { city: 'x'.repeat(501) } } };
    expect(parseBufferMessage('sign-ups', JSON.stringify(long))).toEqual({
      ok: false,
      reason: expect.stringContaining('field city must be at most 500 characters, got 501'),
    });
  });

  it('names a subscriber in confirmations and unsubscribes, never an address', () => {
    for (const buffer of ['opt-ins', 'unsubscribes'] as const) {
      const message = messageFor(buffer, 'k');
      const { subscriberId: _id, ...rest } = message.data as { subscriberId: string };
      const withAddress = { ...message, data: { ...rest, email: 'ana@example.com' } };
      expect(parseBufferMessage(buffer, JSON.stringify(withAddress))).toEqual({
        ok: false,
        reason: expect.stringMatching(/subscriberId|email/),
      });
    }
  });

  it('refuses a body that is not JSON, quoting the start of it', () => {
    expect(parseBufferMessage('sends', 'hello')).toEqual({
      ok: false,
      reason: 'body is not JSON, got: "hello"',
    });
  });

  it('refuses a message without an idempotency key', () => {
    const keyless: Record<string, unknown> = { ...messageFor('opt-ins', 'k') };
    delete keyless.idempotencyKey;
    expect(parseBufferMessage('opt-ins', JSON.stringify(keyless))).toEqual({
      ok: false,
      reason: expect.stringContaining('idempotencyKey'),
    });
  });
});
