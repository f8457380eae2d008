// AWS API actions this file calls (for least-privilege IAM):
//   rds:DescribeDBInstances (in ./writer-check.ts)
// (The handler's database connection also reads the database secret:
//  secretsmanager:GetSecretValue, in ../shared/database.ts.)
import { replicationOf } from '../shared/upgrade-plan';
import { replicationLimitations } from './limitations';
import {
  checkWriter,
  majorMinor,
  type VerifyWriterEvent,
  type VerifyWriterResult,
  type WriterDeps,
  type WriterDialect,
} from './writer-check';

export { majorMinor, type VerifyWriterEvent, type VerifyWriterResult } from './writer-check';

/** The one database call this needs; `pg`'s Pool fits. */
export interface Queryable {
  query(text: string): Promise<{ rows: unknown[] }>;
}

export type VerifyWriterDeps = WriterDeps<Queryable>;

export const WRITER_SQL = `SELECT current_setting('transaction_read_only') AS ro,
       pg_is_in_recovery() AS recovery,
       current_setting('server_version') AS version`;

interface WriterRow {
  ro: string;
  recovery: boolean;
  version: string;
}

/** The PostgreSQL side of the writer check. */
export const POSTGRES_WRITER: WriterDialect<Queryable> = {
  versionSetting: 'server_version',
  // After a switchover old blue "only allows read operations until you set ... the
  // default_transaction_read_only parameter (for RDS for PostgreSQL) to 0 and reboot".
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
  readOnlyParameter: 'default_transaction_read_only',
  async readWriter(db) {
    const { rows } = await db.query(WRITER_SQL);
    const row = rows[0] as WriterRow | undefined;
    if (row === undefined) throw new Error('the query returned no row');
    return {
      version: row.version,
      writable: row.ro === 'off' && !row.recovery,
      settings: `transaction_read_only=${row.ro}, pg_is_in_recovery=${row.recovery}`,
    };
  },
  runs: (reported, expected) => majorMinor(reported) === expected,
  limitations: (db, plan) => replicationLimitations(db, replicationOf(plan)),
};

/** The writer check on RDS for PostgreSQL (./writer-check.ts). */
export function verifyWriter(
  deps: VerifyWriterDeps,
  event: VerifyWriterEvent,
): Promise<VerifyWriterResult> {
  return checkWriter(deps, POSTGRES_WRITER, event);
}
