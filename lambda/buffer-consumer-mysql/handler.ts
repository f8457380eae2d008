import { consumerHandler } from '../buffer-consumer/consumer';
import { applyMysqlEffect } from '../buffer-consumer/effects-mysql';
import { isMysqlAuthFailure, mysqlDatabase, resetMysqlDatabase } from '../shared/mysql';

/**
 * Consumes one buffer's queue into MySQL (RDS for MySQL, Aurora MySQL): the PostgreSQL
 * consumer's handler (lambda/buffer-consumer/) with the MySQL effect and connection. A
 * function of its own because the PostgreSQL driver and this one would not fit one bundle of
 * under 100 KB; each function carries only its engine's.
 */
export const handler = consumerHandler({
  apply: async (message) => applyMysqlEffect(mysqlDatabase, message),
  isAuthFailure: isMysqlAuthFailure,
  reset: resetMysqlDatabase,
});
