/**
 * No function logs an email address. For every test of a function (test/lambda/), the
 * functions' log level is DEBUG, every line they write is caught instead of printed, and a
 * test whose lines hold an `@` fails, naming the line. (Logs are kept for weeks and read by
 * many; an address is personal data.)
 */
const METHODS = ['debug', 'info', 'warn', 'error', 'log'] as const;
const scanned = (expect.getState().testPath ?? '').includes('/test/lambda/');
const lines: string[] = [];
const originals = new Map<(typeof METHODS)[number], (...args: unknown[]) => void>();
let level: string | undefined;

if (scanned) {
  beforeEach(() => {
    lines.length = 0;
    level = process.env.POWERTOOLS_LOG_LEVEL;
    process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
    for (const method of METHODS) {
      originals.set(method, console[method]);
      console[method] = (...args: unknown[]) => {
        lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      };
    }
  });

  afterEach(() => {
    for (const [method, original] of originals) console[method] = original;
    if (level === undefined) delete process.env.POWERTOOLS_LOG_LEVEL;
    else process.env.POWERTOOLS_LOG_LEVEL = level;
    const leaked = lines.filter((line) => line.includes('@'));
    if (leaked.length > 0) {
      throw new Error(`a function logged an email address:\n${leaked.join('\n')}`);
    }
  });
}
