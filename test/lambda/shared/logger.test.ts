import { logger } from '../../../lambda/shared/logger';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

describe('logger', () => {
  const env = { ...process.env };
  let spies: Record<(typeof LEVELS)[number], jest.SpyInstance>;

  beforeEach(() => {
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    process.env.POWERTOOLS_SERVICE_NAME = 'sends-consumer';
    spies = {
      debug: jest.spyOn(console, 'debug').mockImplementation(() => undefined),
      info: jest.spyOn(console, 'info').mockImplementation(() => undefined),
      warn: jest.spyOn(console, 'warn').mockImplementation(() => undefined),
      error: jest.spyOn(console, 'error').mockImplementation(() => undefined),
    };
  });

  afterEach(() => {
    jest.restoreAllMocks();
    process.env = { ...env };
  });

  it("writes one JSON object per call through its level's console method", () => {
    for (const level of LEVELS) {
      logger[level]('effect failed', {
        messageId: 'm-1',
        attempt: 2,
        detail: { codes: ['23505'] },
      });
      for (const other of LEVELS) {
        expect(spies[other]).toHaveBeenCalledTimes(other === level ? 1 : 0);
      }
      // One argument: Lambda embeds it as JSON in "message"; with two it would stringify them.
      const args: unknown[] = spies[level].mock.calls[0];
      expect(args).toHaveLength(1);
      expect(JSON.parse(JSON.stringify(args[0]))).toEqual({
        message: 'effect failed',
        service: 'sends-consumer',
        messageId: 'm-1',
        attempt: 2,
        detail: { codes: ['23505'] },
      });
      jest.clearAllMocks();
    }
  });

  it('keeps the message and the service when an attribute has their names', () => {
    logger.info('switchover watched', { message: 'from the result', service: 'other', done: true });
    expect(spies.info).toHaveBeenCalledWith({
      message: 'switchover watched',
      service: 'sends-consumer',
      done: true,
    });
  });

  it('writes nothing below POWERTOOLS_LOG_LEVEL, and nothing at all when it is SILENT', () => {
    process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
    for (const level of LEVELS) logger[level]('x');
    expect(spies.debug).not.toHaveBeenCalled();
    expect(spies.info).not.toHaveBeenCalled();
    expect(spies.warn).toHaveBeenCalledWith({ message: 'x', service: 'sends-consumer' });
    expect(spies.error).toHaveBeenCalledTimes(1);

    jest.clearAllMocks();
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    for (const level of LEVELS) logger[level]('x');
    for (const level of LEVELS) expect(spies[level]).not.toHaveBeenCalled();
  });
});
