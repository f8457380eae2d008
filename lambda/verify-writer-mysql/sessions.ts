// The MySQL side of ending the sessions on a former writer (../verify-writer/former-writer.ts).
// Calls no AWS API.
import { MysqlError, type MysqlConnection } from '../shared/mysql-client';
import type { SessionDialect } from '../verify-writer/former-writer';
import { MYSQL_CLIENT_SESSIONS_SQL, mysqlKillSql } from './sql';
import { selectRows, withoutAt } from './writer';

/** The calls ending sessions needs; MysqlConnection fits. */
export type SessionConnection = Pick<MysqlConnection, 'select' | 'query' | 'close' | 'closed'>;

/**
 * ER_NO_SUCH_THREAD, "Unknown thread id": the session ended between the list and the kill
 * (its client closed it). Not a failure: it is gone, as wanted.
 * https://dev.mysql.com/doc/mysql-errors/8.4/en/server-error-reference.html#error_er_no_such_thread
 */
export const UNKNOWN_THREAD = 1094;

/**
 * Ends the listed client sessions one by one with mysql.rds_kill (sql.ts). A session already
 * gone is counted apart; any other refusal is collected and thrown after the rest were tried,
 * naming each session and why.
 */
export const MYSQL_SESSIONS: SessionDialect<SessionConnection> = {
  async endSessions(db) {
    const { rows } = await selectRows(db, MYSQL_CLIENT_SESSIONS_SQL);
    let ended = 0;
    const gone: string[] = [];
    const refused: string[] = [];
    for (const [id] of rows) {
      try {
        await db.query(mysqlKillSql(Number(id)));
        ended += 1;
      } catch (err) {
        if (err instanceof MysqlError && err.errno === UNKNOWN_THREAD) {
          gone.push(String(id));
          continue;
        }
        refused.push(`${String(id)} (${withoutAt(err).message})`);
        // A connection the error broke runs nothing more.
        if (db.closed) break;
      }
    }
    if (refused.length > 0) {
      throw new Error(
        `could not end session(s) ${refused.join(', ')}; ended ${ended} of ${rows.length}`,
      );
    }
    return {
      ended,
      ...(gone.length > 0 && {
        note: `${gone.length} more had already closed (${gone.join(', ')})`,
      }),
    };
  },
  close: (db) => db.close(),
};
