/**
 * One structured logger for every function, on `console`. With the JSON log format (set in
 * NodeFunction), Lambda's Node.js runtime writes each console call as a record with timestamp,
 * level and requestId, and drops calls below the function's application log level. It embeds a
 * single object argument as JSON in "message" but stringifies two or more arguments, so each
 * call passes one object: the text, the service and the attributes, queryable as `message.*`.
 * https://docs.aws.amazon.com/lambda/latest/dg/nodejs-logging.html#nodejs-logging-advanced-JSON
 */
const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

/** Below POWERTOOLS_LOG_LEVEL (or SILENT) nothing is written; the tests set it. */
function enabled(level: Level): boolean {
  const min = process.env.POWERTOOLS_LOG_LEVEL?.toLowerCase();
  if (min === 'silent') return false;
  return LEVELS.indexOf(level) >= LEVELS.indexOf(min as Level);
}

function log(level: Level, message: string, attributes?: Record<string, unknown>): void {
  if (!enabled(level)) return;
  // The text and the service come last so that an attribute cannot overwrite them.
  // eslint-disable-next-line no-console -- the one place the functions write their logs
  console[level]({ ...attributes, message, service: process.env.POWERTOOLS_SERVICE_NAME });
}

export const logger = {
  debug: (message: string, attributes?: Record<string, unknown>) =>
    log('debug', message, attributes),
  info: (message: string, attributes?: Record<string, unknown>) => log('info', message, attributes),
  warn: (message: string, attributes?: Record<string, unknown>) => log('warn', message, attributes),
  error: (message: string, attributes?: Record<string, unknown>) =>
    log('error', message, attributes),
};
