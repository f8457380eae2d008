import { type Instance, pgError, type RdsModel } from './world/rds';

/**
 * What `require('pg')` gives a function in the rehearsal: a Pool that reaches the modelled
 * RDS instance its host name resolves to, one statement at a time (the functions use one
 * connection). A connection lasts until its instance drops it (a switchover, a reboot, a
 * rename); like pg's Pool, an idle connection that was dropped is replaced on the next query,
 * and a statement cut off by the drop fails with "Connection terminated unexpectedly".
 * https://node-postgres.com/apis/pool
 */
export function pgModule(
  rds: RdsModel,
  sleep: (s: number) => Promise<void>,
  queryLatency: number,
  /** False: no network route to the database (connections time out). */
  reachable = true,
) {
  class Pool {
    private connection: { instance: Instance; epoch: number } | undefined;
    private queue: Promise<unknown> = Promise.resolve();

    constructor(private readonly config: { host?: string }) {}

    on(): this {
      return this;
    }

    query(text: string, values: unknown[] = []): Promise<{ rows: unknown[]; rowCount: number }> {
      const result = this.queue.then(() => this.run(text, values));
      this.queue = result.catch(() => undefined);
      return result;
    }

    private async run(text: string, values: unknown[]) {
      const c = this.connection;
      if (c === undefined || c.epoch !== c.instance.epoch) {
        this.connection = undefined;
        // Opening a connection costs a round trip before the statement's own.
        await sleep(queryLatency);
        if (!reachable) {
          throw pgError('ETIMEDOUT', `connect ETIMEDOUT ${this.config.host ?? 'localhost'}:5432`);
        }
        this.connection = rds.connect(this.config.host ?? 'localhost');
      }
      const open = this.connection;
      if (open === undefined) throw new Error('no connection');
      await sleep(queryLatency);
      try {
        return rds.execute(open, text, values);
      } catch (err) {
        if ((err as { code?: string }).code === '57P01') this.connection = undefined;
        throw err;
      }
    }

    async end(): Promise<void> {
      this.connection = undefined;
    }
  }
  return { Pool, default: { Pool } };
}
