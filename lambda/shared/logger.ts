import { Logger } from '@aws-lambda-powertools/logger';

/** One structured logger per function, at module scope. The service name comes from env. */
export const logger = new Logger();
