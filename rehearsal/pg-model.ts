import { type Instance, type RdsModel } from './world/rds';

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

    constructor(private readonly config: { host?: string; connectionTimeoutMillis?: number }) {}

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
        // No route: a security group drops the packets without an answer, so the attempt
        // ends when pg-pool's connectionTimeoutMillis does, with its message.
        // https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html
        // https://node-postgres.com/apis/pool (connectionTimeoutMillis)
        const timedOut = async () => {
          const ms = this.config.connectionTimeoutMillis ?? 0;
          await sleep(Math.max(0, ms / 1000 - queryLatency));
          return new Error('timeout exceeded when trying to connect');
        };
        if (!reachable) throw await timedOut();
        try {
          this.connection = rds.connect(this.config.host ?? 'localhost');
        } catch (err) {
          if ((err as { code?: string }).code === 'ETIMEDOUT') throw await timedOut();
          throw err;
        }
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
