import type { AnyBufferMessage } from '../shared/contracts';
import { type Cell, effectRow } from './rows';

/** The one database call the effects need; `pg`'s Pool and Client both fit. */
export interface Queryable {
  query(text: string, values: unknown[]): Promise<{ rowCount: number | null }>;
}

/** `recorded` if this message wrote its row, `duplicate` if its key was already there. */
export type EffectResult = 'recorded' | 'duplicate';

/**
 * Writes one message's effect on PostgreSQL. Each is a single INSERT … ON CONFLICT DO NOTHING
 * keyed by the idempotency key, so it commits on its own and a redelivery changes nothing.
 */
export async function applyEffect(db: Queryable, message: AnyBufferMessage): Promise<EffectResult> {
  const { table, cells } = effectRow(message);
  const columns = Object.keys(cells);
  const result = await db.query(
    `INSERT INTO ${table} (${columns.join(', ')})
     VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})
     ON CONFLICT (idempotency_key) DO NOTHING`,
    Object.values(cells).map(postgresValue),
  );
  return result.rowCount === 1 ? 'recorded' : 'duplicate';
}

/** timestamptz reads an RFC 3339 time as it is; jsonb reads JSON text. */
function postgresValue(cell: Cell): unknown {
  if (cell === null || typeof cell === 'string') return cell;
  return 'time' in cell ? cell.time : JSON.stringify(cell.json);
}
