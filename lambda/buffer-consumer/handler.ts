import { database, resetDatabase } from '../shared/database';
import { consumerHandler } from './consumer';
import { applyEffect } from './effects';

/** PostgreSQL's "invalid password" SQLSTATE: the credentials changed under us. */
const INVALID_PASSWORD = '28P01';

/** Consumes one buffer's queue into PostgreSQL. */
export const handler = consumerHandler({
  apply: async (message) => applyEffect(await database(), message),
  isAuthFailure: (err) => (err as { code?: unknown }).code === INVALID_PASSWORD,
  reset: resetDatabase,
});
