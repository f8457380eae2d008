import type { AnyBufferMessage } from '../shared/contracts';
import type { EffectResult } from './effects';
import { type Cell, effectRow } from './rows';

/** The one database call the MySQL effect needs (lambda/shared/mysql-client.ts fits). */
export interface MysqlExecutor {
  execute(sql: string, values: readonly (string | null)[]): Promise<{ affectedRows: number }>;
}

/**
 * Writes one message's effect on MySQL: a single INSERT that, when the idempotency key is
 * already there, sets the key to itself, which changes nothing. The server then reports 0
 * affected rows, and 1 for a new row: "the affected-rows value per row is 1 if the row is
 * inserted as a new row, 2 if an existing row is updated, and 0 if an existing row is set to
 * its current values" (when the client does not set CLIENT_FOUND_ROWS; ours does not).
 * https://dev.mysql.com/doc/refman/8.0/en/insert-on-duplicate.html
 *
 * Not INSERT IGNORE: IGNORE downgrades errors to warnings even in strict mode, and "invalid
 * values are adjusted to the closest values and inserted": a NULL in a NOT NULL column
 * becomes '', a value too long is cut, an impossible time becomes a zero date, and the
 * message would count as written (the tests show each on a real server). Here only a duplicate key is not an error; every
 * other error fails the message, which is retried and then lands in the DLQ.
 * https://dev.mysql.com/doc/refman/8.0/en/insert.html
 * https://dev.mysql.com/doc/refman/8.0/en/sql-mode.html#ignore-effect-on-execution
 */
export async function applyMysqlEffect(
  db: MysqlExecutor,
  message: AnyBufferMessage,
): Promise<EffectResult> {
  const { table, cells } = effectRow(message);
  const columns = Object.keys(cells);
  const { affectedRows } = await db.execute(
    `INSERT INTO ${table} (${columns.join(', ')})
     VALUES (${columns.map(() => '?').join(', ')})
     ON DUPLICATE KEY UPDATE idempotency_key = idempotency_key`,
    Object.values(cells).map(mysqlValue),
  );
  if (affectedRows === 1) return 'recorded';
  if (affectedRows === 0) return 'duplicate';
  throw new Error(`${table}: expected 0 or 1 affected rows, got ${affectedRows}`);
}

/** DATETIME(6) holds UTC (schema-mysql.sql); JSON columns read JSON text. */
function mysqlValue(cell: Cell): string | null {
  if (cell === null || typeof cell === 'string') return cell;
  return 'time' in cell ? utcDatetime(cell.time) : JSON.stringify(cell.json);
}

const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:Z|([+-])(\d\d):(\d\d))$/;

/**
 * An RFC 3339 time (as the contracts accept it) as a MySQL DATETIME literal in UTC, to the
 * microsecond (DATETIME(6)'s precision; further digits are dropped): MySQL stores no offset,
 * and MariaDB and MySQL before 8.0.19 accept none in a literal.
 * https://dev.mysql.com/doc/refman/8.0/en/date-and-time-literals.html
 * The contracts accept only real dates; a time in UTC is passed as written all the same, so
 * the server, not this function, judges its date, as PostgreSQL does.
 */
export function utcDatetime(time: string): string {
  const m = RFC3339.exec(time);
  if (m === null) throw new Error(`not an RFC 3339 time: ${JSON.stringify(time)}`);
  const [, year, month, day, hour, minute, second, fraction = '', sign, offsetH, offsetM] = m;
  const offset =
    sign === undefined ? 0 : Number(`${sign}1`) * (Number(offsetH) * 60 + Number(offsetM));
  if (offset === 0) {
    return `${year}-${month}-${day} ${hour}:${minute}:${second}.${fraction.padEnd(6, '0').slice(0, 6)}`;
  }
  const utc = new Date(0);
  utc.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  utc.setUTCHours(Number(hour), Number(minute) - offset, Number(second));
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return (
    `${pad(utc.getUTCFullYear(), 4)}-${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())} ` +
    `${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}.` +
    fraction.padEnd(6, '0').slice(0, 6)
  );
}
