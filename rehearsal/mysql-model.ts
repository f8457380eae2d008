import { type Connection, type RdsModel } from './world/rds';

/**
 * What `lambda/shared/mysql-client.ts` is in the rehearsal's bundles (functions.ts replaces
 * the module, as it replaces `pg`): a `MysqlConnection` with the same surface (connect, query,
 * execute, select, close, closed) that reaches the modelled RDS instance its host name
 * resolves to, and answers at the statement level (RdsModel.executeMysql). No packets: the
 * client's own protocol code is tested against a real server (test/lambda/shared/).
 *
 * What the code sees is what our client gives it on a real network:
 * - a server error is a `MysqlError` (errno, sqlState, message), this module's own class, so
 *   `err instanceof MysqlError` holds in the bundle as it does with the real module;
 * - a connection the server drops (a switchover, a reboot, a rename, a KILL) turns `closed`,
 *   as the client sees its socket close, and a statement cut off by the drop, or sent after
 *   it, fails with the client's own `mysql: connection closed` (not CR_SERVER_LOST 2013: that
 *   is libmysqlclient's error, and this client raises none of its own numbers);
 * - a host with no route (scenario formerWritersUnreachable, writerCheckUnreachable) fails
 *   with the client's connect-timeout message after the client's own connect timeout
 *   (`connectTimeoutMs`): a security group drops such packets silently, so no answer comes
 *   and the client's timer is what ends the attempt (pg-model.ts does the same for `pg`);
 *   https://docs.aws.amazon.com/vpc/latest/userguide/vpc-security-groups.html
 *   a name that does not resolve fails with Node's ENOTFOUND; an instance that takes no
 *   connections (switching over, rebooting, renaming) with ECONNREFUSED: how RDS refuses
 *   them is not documented, and a refused TCP connection is the plainest reading.
 * - commands on one connection run one at a time, each a round trip (`latency`), opening a
 *   connection one more, and a statement's first `execute` on a connection one more to
 *   prepare it, as the client prepares once per connection.
 */
export interface MysqlModelOptions {
  rds: RdsModel;
  sleep: (seconds: number) => Promise<void>;
  /** One round trip: a statement, the connection's opening, a prepare. */
  latency: number;
  /** False: no network route to the database (connections time out). */
  reachable?: boolean;
}

/** The surface of lambda/shared/mysql-client.ts the functions use, answered by the model. */
export function mysqlModule({ rds, sleep, latency, reachable = true }: MysqlModelOptions) {
  class MysqlError extends Error {
    override readonly name = 'MysqlError';
    constructor(
      readonly errno: number,
      readonly sqlState: string,
      message: string,
    ) {
      super(message);
    }
  }

  /** The model's errors as the client raises them. */
  const asClientError = (err: unknown): Error => {
    const e = err as { errno?: unknown; sqlState?: unknown; code?: unknown; message?: string };
    if (typeof e.errno === 'number' && typeof e.sqlState === 'string') {
      return new MysqlError(e.errno, e.sqlState, String(e.message));
    }
    if (e.code === 'CONNECTION_LOST') return new Error('mysql: connection closed');
    return err instanceof Error ? err : new Error(String(err));
  };

  class MysqlConnection {
    private queue: Promise<unknown> = Promise.resolve();
    private ended = false;

    private constructor(private readonly connection: Connection) {}

    get closed(): boolean {
      return this.ended || !rds.alive(this.connection);
    }

    static async connect(options: {
      host: string;
      port: number;
      connectTimeoutMs?: number;
    }): Promise<MysqlConnection> {
      const timeoutMs = options.connectTimeoutMs ?? 5_000;
      // The round trip the attempt took is slept already; the rest of the timeout, if waited.
      const timedOut = async () => {
        await sleep(Math.max(0, timeoutMs / 1000 - latency));
        return new Error(
          `mysql: connecting to ${options.host}:${options.port} timed out after ${timeoutMs} ms`,
        );
      };
      // Opening a connection costs a round trip before the statement's own (as pg-model's).
      await sleep(latency);
      if (!reachable) throw await timedOut();
      let connection: Connection;
      try {
        connection = rds.connect(options.host);
      } catch (err) {
        const code = (err as { code?: string }).code;
        // No route: the SYN goes unanswered until the client's own timer gives up.
        if (code === 'ETIMEDOUT') throw await timedOut();
        if (code === 'ENOTFOUND') {
          throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${options.host}`), {
            code: 'ENOTFOUND',
          });
        }
        throw Object.assign(new Error(`connect ECONNREFUSED ${options.host}:${options.port}`), {
          code: 'ECONNREFUSED',
        });
      }
      return new MysqlConnection(connection);
    }

    /**
     * One command: after those before it, its round trips (counted when its turn comes, as
     * the client decides then whether to prepare), then the server's answer.
     */
    private command<T>(run: () => T, roundTrips: () => number = () => 1): Promise<T> {
      const result = this.queue.then(async () => {
        if (this.closed) throw new Error('mysql: connection closed');
        await sleep(latency * roundTrips());
        try {
          return run();
        } catch (err) {
          throw asClientError(err);
        }
      });
      this.queue = result.catch(() => undefined);
      return result;
    }

    /** A statement that returns no rows, as text. */
    query(sql: string): Promise<{ affectedRows: number; warnings: number }> {
      return this.command(() => this.ok(rds.executeMysql(this.connection, sql)));
    }

    /** A statement that returns rows, as text: every value the server's text, or null. */
    select(sql: string): Promise<{ columns: string[]; rows: (string | null)[][] }> {
      return this.command(() => {
        const answer = rds.executeMysql(this.connection, sql);
        return 'rows' in answer ? answer : { columns: [], rows: [] };
      });
    }

    /** A prepared statement with text parameters, prepared once per connection. */
    execute(
      sql: string,
      values: readonly (string | null)[],
    ): Promise<{ affectedRows: number; warnings: number }> {
      const prepared = (this.connection.prepared ??= new Set());
      return this.command(
        () => {
          prepared.add(sql);
          return this.ok(rds.executeMysql(this.connection, sql, values));
        },
        // COM_STMT_PREPARE first, once per text per connection, then COM_STMT_EXECUTE.
        () => (prepared.has(sql) ? 1 : 2),
      );
    }

    /** The client refuses rows where it reads none, and closes the connection (its state is unknown). */
    private ok(answer: ReturnType<RdsModel['executeMysql']>) {
      if ('rows' in answer) {
        this.ended = true;
        this.connection.closed = true;
        throw new Error(
          'mysql: a statement that returns rows is not supported (select reads rows)',
        );
      }
      return { affectedRows: answer.affectedRows, warnings: 0 };
    }

    /** COM_QUIT: the server ends the session (it leaves the processlist). */
    async close(): Promise<void> {
      this.ended = true;
      this.connection.closed = true;
    }
  }

  return {
    MysqlConnection,
    MysqlError,
    // The client's exported constant (it never sends it), for code that reads it.
    CLIENT_FOUND_ROWS: 0x2,
  };
}
