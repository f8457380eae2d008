import { createHash } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';

/**
 * A MySQL client for exactly what the functions need: connect (TLS, the
 * mysql_native_password and caching_sha2_password plugins), run a statement or two to set up
 * the session, execute prepared INSERTs with text parameters, reading the affected rows, and
 * read the rows of a query as text (the writer check's SELECTs).
 *
 * Why not a driver from npm: with the AWS SDK external, mysql2 bundles to about 1 MB minified
 * and the MariaDB connector to about 830 KB (iconv-lite alone is 480 KB of either), while
 * every function's bundle here stays under 100 KB. This is about 9 KB, and tested against a
 * real server (test/lambda/buffer-consumer/mysql.test.ts, test/lambda/shared/mysql-select.test.ts).
 *
 * The protocol, as documented by MySQL:
 * https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html
 */

/** Capability flags. https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html */
const CLIENT_LONG_PASSWORD = 0x1;
/**
 * Never sent: with it the server counts rows *found* rather than *changed*, and an
 * `INSERT … ON DUPLICATE KEY UPDATE` that finds its key reports 1 affected row instead of 0,
 * the same as an insert. The consumers tell a duplicate by that 0 (effects-mysql.ts).
 * (mysql2 and the MariaDB connector both send it by default.)
 * https://dev.mysql.com/doc/c-api/8.0/en/mysql-affected-rows.html
 */
export const CLIENT_FOUND_ROWS = 0x2;
const CLIENT_LONG_FLAG = 0x4;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
/**
 * The client reads every resultset a COM_QUERY answers with. A stored procedure may SELECT
 * (RDS's mysql.rds_kill is one: what its body does, AWS does not say), and without this flag
 * the server refuses a CALL whose procedure would send a resultset (ER_SP_BADSELECT, 1312).
 * `query` reads past such resultsets to the CALL's own OK packet.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html
 * https://dev.mysql.com/doc/refman/8.0/en/call.html
 */
const CLIENT_MULTI_RESULTS = 0x20000;
const CLIENT_PLUGIN_AUTH = 0x80000;
const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000;
/**
 * Asked for when the server offers it (MySQL 5.7.5+, MariaDB 10.2+): lists of rows then end
 * with an OK packet, and column definitions with nothing, instead of EOF packets, which MySQL
 * has deprecated since 5.7.5. It is what MySQL's and MariaDB's own client libraries ask for,
 * so the path RDS servers serve most. A server without it still gets the EOF form, and both
 * are read (`select`, `prepare`).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_eof_packet.html
 */
const CLIENT_DEPRECATE_EOF = 0x1000000;

/** What this client cannot do without. */
const REQUIRED = CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;

/** utf8mb4_general_ci: utf8mb4 on the connection, a collation MySQL and MariaDB both know. */
const UTF8MB4 = 45;
const MAX_PACKET = 0x1000000;

/** The longest one command may wait for its answer. */
const COMMAND_TIMEOUT_MS = 30_000;

const COM_QUIT = 0x01;
const COM_QUERY = 0x03;
const COM_STMT_PREPARE = 0x16;
const COM_STMT_EXECUTE = 0x17;
/** In a status flags field: another resultset follows this one. */
const SERVER_MORE_RESULTS_EXISTS = 0x8;
/** The parameter type sent for every value: the server converts text to the column's type. */
const MYSQL_TYPE_VAR_STRING = 0xfd;

/** An error the server returned: its number, SQLSTATE and message. */
export class MysqlError extends Error {
  override readonly name = 'MysqlError';
  constructor(
    /** The server's error number, e.g. 1048 (ER_BAD_NULL_ERROR). */
    readonly errno: number,
    readonly sqlState: string,
    message: string,
  ) {
    super(message);
  }
}

export interface MysqlConnectOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  database?: string;
  /**
   * TLS, verified: the options for `tls.connect` (its `host` and `socket` are set here).
   * `false` only for a server on the loopback in tests.
   */
  tls: tls.ConnectionOptions | false;
  /** @default 5000 */
  connectTimeoutMs?: number;
}

/** What a statement that returns no rows reports. */
export interface MysqlResult {
  affectedRows: number;
  warnings: number;
}

/** What a statement that returns rows read: every value as the server's text, or null. */
export interface MysqlRows {
  columns: string[];
  rows: (string | null)[][];
}

/** A packet reader over a socket: packets in order, each awaited by one `next()`. */
class Packets {
  private buffered = Buffer.alloc(0);
  private readonly ready: Buffer[] = [];
  private waiting: { resolve: (p: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private reading: net.Socket | undefined;

  private readonly onData = (chunk: Buffer) => {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    // Header: 3-byte length, 1-byte sequence id. A payload of 0xffffff continues in the next
    // packet; nothing this client reads is that long, so it is refused rather than joined.
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUIntLE(0, 3);
      if (length === 0xffffff) return this.fail(new Error('mysql: packet over 16 MB'));
      if (this.buffered.length < 4 + length) return;
      this.sequence = this.buffered[3] ?? 0;
      this.push(this.buffered.subarray(4, 4 + length));
      this.buffered = this.buffered.subarray(4 + length);
    }
  };
  private readonly onError = (err: Error) => this.fail(err);
  private readonly onClose = () => this.fail(new Error('mysql: connection closed'));

  /** The sequence id of the last packet read. */
  sequence = 0;

  /**
   * Reads packets from `socket` from now on. Errors and the close of every socket attached
   * stay watched: the plain socket under TLS fails the connection too.
   */
  attach(socket: net.Socket): void {
    this.reading?.off('data', this.onData);
    this.reading = socket;
    socket.on('data', this.onData).on('error', this.onError).on('close', this.onClose);
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** Bytes or packets read and not yet taken. */
  get pending(): boolean {
    return this.buffered.length > 0 || this.ready.length > 0;
  }

  next(): Promise<Buffer> {
    const packet = this.ready.shift();
    if (packet !== undefined) return Promise.resolve(packet);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  fail(err: Error): void {
    this.failure ??= err;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(err);
  }

  private push(packet: Buffer): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting !== undefined) waiting.resolve(packet);
    else this.ready.push(packet);
  }
}

/**
 * A packet that does not parse. Where the server's answer ends is then unknown, so a command
 * that meets one closes the connection (`serially`).
 */
class MalformedPacket extends Error {}

/**
 * A cursor over one packet's payload, named for the errors. A read past the end throws
 * `mysql: malformed <what> packet` rather than reading 0 or a short buffer.
 */
class Reader {
  constructor(
    private readonly b: Buffer,
    private readonly what: string,
    public pos = 0,
  ) {}
  malformed(): never {
    throw new MalformedPacket(`mysql: malformed ${this.what} packet`);
  }
  /** Moves past `n` bytes; returns where they start. */
  private take(n: number): number {
    const at = this.pos;
    if (n < 0 || at + n > this.b.length) this.malformed();
    this.pos += n;
    return at;
  }
  u8(): number {
    return this.b.readUInt8(this.take(1));
  }
  u16(): number {
    return this.b.readUInt16LE(this.take(2));
  }
  u32(): number {
    return this.b.readUInt32LE(this.take(4));
  }
  bytes(n: number): Buffer {
    const at = this.take(n);
    return this.b.subarray(at, at + n);
  }
  /** Up to the next NUL (or the end: some servers leave the last one out). */
  nulString(): string {
    const end = this.b.indexOf(0, this.pos);
    const stop = end === -1 ? this.b.length : end;
    const v = this.bytes(stop - this.pos).toString('utf8');
    if (end !== -1) this.pos += 1;
    return v;
  }
  /**
   * A length-encoded integer. 0xfb (NULL in a row) and 0xff are not integers.
   * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_dt_integers.html
   */
  lenenc(): number {
    const first = this.u8();
    if (first < 0xfb) return first;
    const size = first === 0xfc ? 2 : first === 0xfd ? 3 : first === 0xfe ? 8 : 0;
    if (size === 0) this.malformed();
    const at = this.take(size);
    return size === 8 ? Number(this.b.readBigUInt64LE(at)) : this.b.readUIntLE(at, size);
  }
  /** A length-encoded string, as UTF-8. */
  lenencString(): string {
    return this.bytes(this.lenenc()).toString('utf8');
  }
  rest(): Buffer {
    return this.b.subarray(this.pos);
  }
}

function lenencInt(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  const b = Buffer.alloc(4);
  b[0] = 0xfd;
  b.writeUIntLE(n, 1, 3);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** The ERR packet's error. https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_err_packet.html */
function errorOf(packet: Buffer): MysqlError {
  const r = new Reader(packet, 'ERR', 1);
  const errno = r.u16();
  let sqlState = 'HY000';
  if (packet[r.pos] === 0x23 /* # */) {
    r.pos += 1;
    sqlState = r.bytes(5).toString('latin1');
  }
  return new MysqlError(errno, sqlState, r.rest().toString('utf8'));
}

/** The OK packet. https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_ok_packet.html */
function resultOf(packet: Buffer): MysqlResult {
  return okOf(packet).result;
}

/** The OK packet, with its status flags (SERVER_MORE_RESULTS_EXISTS: another answer follows). */
function okOf(packet: Buffer): { result: MysqlResult; status: number } {
  const r = new Reader(packet, 'OK', 1);
  const affectedRows = r.lenenc();
  r.lenenc(); // last insert id
  const status = r.u16();
  return { result: { affectedRows, warnings: r.u16() }, status };
}

/**
 * The status flags of the packet that ends a list of column definitions or rows: an EOF
 * packet, or with CLIENT_DEPRECATE_EOF an OK packet with the header 0xfe.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_eof_packet.html
 */
function statusOfEnd(packet: Buffer, ok: boolean): number {
  const r = new Reader(packet, ok ? 'OK' : 'EOF');
  if (r.u8() !== 0xfe) r.malformed();
  if (ok) {
    r.lenenc(); // affected rows
    r.lenenc(); // last insert id
  } else r.u16(); // warnings
  return r.u16();
}

/**
 * A column's name, from its definition (ColumnDefinition41), read to its end so a short one
 * is found.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset_column_definition.html
 */
function columnName(packet: Buffer): string {
  const r = new Reader(packet, 'column definition');
  for (let i = 0; i < 4; i++) r.lenencString(); // catalog, schema, table, original table
  const name = r.lenencString();
  r.lenencString(); // original name
  r.bytes(r.lenenc()); // the fixed-length fields: character set, length, type, flags, decimals
  return name;
}

/** A text row: a length-encoded string per column, or 0xfb for NULL, and nothing more. */
function rowOf(packet: Buffer, columns: number): (string | null)[] {
  const r = new Reader(packet, 'row');
  const row: (string | null)[] = [];
  for (let i = 0; i < columns; i++) {
    if (packet[r.pos] === 0xfb) {
      r.pos += 1;
      row.push(null);
    } else row.push(r.lenencString());
  }
  if (r.pos !== packet.length) r.malformed();
  return row;
}

const sha1 = (...parts: Buffer[]) => createHash('sha1').update(Buffer.concat(parts)).digest();
const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const xor = (a: Buffer, b: Buffer) => Buffer.from(a.map((v, i) => v ^ (b[i] ?? 0)));

/**
 * The auth response for a plugin and the server's 20-byte nonce.
 * mysql_native_password: SHA1(password) XOR SHA1(nonce + SHA1(SHA1(password))).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_authentication_methods_native_password_authentication.html
 * caching_sha2_password: SHA256(password) XOR SHA256(SHA256(SHA256(password)) + nonce).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
 */
export function scramble(plugin: string, password: string, nonce: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0);
  const pw = Buffer.from(password, 'utf8');
  if (plugin === 'mysql_native_password') {
    const stage1 = sha1(pw);
    return xor(stage1, sha1(nonce, sha1(stage1)));
  }
  if (plugin === 'caching_sha2_password') {
    const stage1 = sha256(pw);
    return xor(stage1, sha256(sha256(stage1), nonce));
  }
  throw new Error(
    `mysql: the server asks for auth plugin ${plugin}, which this client does not speak`,
  );
}

/** One connection. Commands run one at a time, in the order they are called. */
export class MysqlConnection {
  private readonly packets = new Packets();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly statements = new Map<string, { id: number; params: number }>();
  private capabilities = 0;

  private constructor(private socket: net.Socket) {
    this.packets.attach(socket);
  }

  /** Whether the connection is gone (dropped, closed, or broken by an error). */
  get closed(): boolean {
    return this.packets.closed;
  }

  static async connect(options: MysqlConnectOptions): Promise<MysqlConnection> {
    const timeout = options.connectTimeoutMs ?? 5_000;
    const socket = net.connect({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    // Probes an idle connection, so one dropped without a word is found.
    socket.setKeepAlive(true, 30_000);
    const connection = new MysqlConnection(socket);
    const timer = setTimeout(
      () =>
        connection.destroy(
          new Error(
            `mysql: connecting to ${options.host}:${options.port} timed out after ${timeout} ms`,
          ),
        ),
      timeout,
    );
    try {
      await connection.handshake(options);
      return connection;
    } catch (err) {
      connection.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The connection phase.
   * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
   */
  private async handshake(options: MysqlConnectOptions): Promise<void> {
    const first = await this.packets.next();
    if (first[0] === 0xff) throw errorOf(first);
    // Initial Handshake Packet, protocol version 10.
    // https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html
    const r = new Reader(first, 'handshake');
    const version = r.u8();
    if (version !== 10) throw new Error(`mysql: unsupported protocol version ${version}`);
    r.nulString(); // server version
    r.u32(); // connection id
    const nonce1 = r.bytes(8);
    r.u8();
    let server = r.u16();
    r.u8(); // character set
    r.u16(); // status flags
    server |= r.u16() << 16;
    const authDataLength = r.u8();
    r.bytes(10);
    const nonce2 = r.bytes(Math.max(13, authDataLength - 8)).subarray(0, 12);
    const plugin = server & CLIENT_PLUGIN_AUTH ? r.nulString() : 'mysql_native_password';
    if ((server & REQUIRED) !== REQUIRED)
      throw new Error('mysql: the server is too old for this client');

    let wanted =
      REQUIRED |
      CLIENT_LONG_PASSWORD |
      CLIENT_LONG_FLAG |
      CLIENT_TRANSACTIONS |
      CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
      CLIENT_MULTI_RESULTS |
      CLIENT_DEPRECATE_EOF;
    if (options.database !== undefined) wanted |= CLIENT_CONNECT_WITH_DB;
    if (options.tls !== false) {
      if (!(server & CLIENT_SSL)) throw new Error(`mysql: ${options.host} does not offer TLS`);
      wanted |= CLIENT_SSL;
    }
    this.capabilities = wanted & server;
    let sequence = this.packets.sequence + 1;

    const head = Buffer.concat([
      u32(this.capabilities),
      u32(MAX_PACKET),
      Buffer.from([UTF8MB4]),
      Buffer.alloc(23),
    ]);
    if (options.tls !== false) {
      // SSLRequest, then TLS on the same socket, then the rest of the handshake inside it.
      // https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_ssl_request.html
      this.write(head, sequence++);
      await this.startTls(options.host, options.tls);
    }
    const nonce = Buffer.concat([nonce1, nonce2]);
    const auth = scramble(plugin, options.password, nonce);
    const response = Buffer.concat([
      head,
      Buffer.from(`${options.user}\0`, 'utf8'),
      this.capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
        ? lenencInt(auth.length)
        : Buffer.from([auth.length]),
      auth,
      options.database !== undefined
        ? Buffer.from(`${options.database}\0`, 'utf8')
        : Buffer.alloc(0),
      Buffer.from(`${plugin}\0`, 'latin1'),
    ]);
    this.write(response, sequence);
    await this.authenticate(options, plugin);
  }

  /** Reads the server's answers to the auth response until OK or an error. */
  private async authenticate(options: MysqlConnectOptions, firstPlugin: string): Promise<void> {
    let plugin = firstPlugin;
    for (;;) {
      const packet = await this.packets.next();
      const next = this.packets.sequence + 1;
      switch (packet[0]) {
        case 0x00:
          return;
        case 0xff:
          throw errorOf(packet);
        case 0xfe: {
          // Auth Switch Request: another plugin, with a new nonce.
          // https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_switch_request.html
          const r = new Reader(packet, 'auth switch', 1);
          plugin = r.nulString();
          const nonce = r.rest().subarray(0, 20);
          this.write(scramble(plugin, options.password, nonce), next);
          break;
        }
        case 0x01: {
          // caching_sha2_password's more data: 3 the cached fast path passed (OK follows), 4
          // the server wants the password itself, which is safe to send only inside TLS.
          if (plugin !== 'caching_sha2_password') {
            throw new Error(`mysql: unexpected auth data for plugin ${plugin}`);
          }
          const status = new Reader(packet, 'auth more data', 1).u8();
          if (status === 0x03) break;
          if (status === 0x04 && options.tls !== false) {
            this.write(Buffer.from(`${options.password}\0`, 'utf8'), next);
            break;
          }
          throw new Error('mysql: caching_sha2_password full authentication needs TLS');
        }
        default:
          throw new Error(
            `mysql: unexpected packet 0x${packet[0]?.toString(16) ?? ''} while authenticating`,
          );
      }
    }
  }

  private startTls(host: string, options: tls.ConnectionOptions): Promise<void> {
    // Anything the server sent after its greeting and before TLS was never protected: read
    // as if it came through TLS, a forged OK could stand in for the real answers.
    if (this.packets.pending) {
      return Promise.reject(new Error(`mysql: ${host} sent data before TLS started`));
    }
    // `host` is the name the certificate must carry; SNI takes only a DNS name.
    const secure = tls.connect({
      servername: net.isIP(host) ? undefined : host,
      ...options,
      host,
      socket: this.socket,
    });
    this.socket = secure;
    this.packets.attach(secure);
    return new Promise((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
      // Destroyed by the connect timeout, or closed by the server, mid-handshake.
      secure.once('close', () => reject(new Error(`mysql: ${host} closed the TLS handshake`)));
    });
  }

  /**
   * Runs a statement that returns no rows (`SET …`, `CALL …`) with COM_QUERY, text as given.
   * Resultsets a called procedure sends are read and dropped; its own OK is the result.
   * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query.html
   */
  query(sql: string): Promise<MysqlResult> {
    return this.serially(async () => {
      this.write(Buffer.concat([Buffer.from([COM_QUERY]), Buffer.from(sql, 'utf8')]), 0);
      // A CALL answers with each resultset its procedure sent, each flagged
      // SERVER_MORE_RESULTS_EXISTS, then its own OK packet; any answer may be an error.
      // https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response.html
      for (;;) {
        const packet = await this.packets.next();
        if (packet[0] === 0xff) throw errorOf(packet);
        if (packet[0] === 0x00) {
          const { result, status } = okOf(packet);
          if (!(status & SERVER_MORE_RESULTS_EXISTS)) return result;
          continue;
        }
        if (packet[0] === 0xfb) return this.broken('unexpected LOCAL INFILE request');
        if (!(await this.skipResultset(packet))) return { affectedRows: 0, warnings: 0 };
      }
    });
  }

  /**
   * Reads a text resultset to its end without keeping it (the rows a procedure sent); whether
   * another answer follows.
   */
  private async skipResultset(first: Buffer): Promise<boolean> {
    const count = new Reader(first, 'column count').lenenc();
    for (let i = 0; i < count; i++) columnName(await this.packets.next());
    const deprecateEof = (this.capabilities & CLIENT_DEPRECATE_EOF) !== 0;
    if (!deprecateEof) statusOfEnd(await this.packets.next(), false);
    for (;;) {
      const packet = await this.packets.next();
      if (packet[0] === 0xff) throw errorOf(packet);
      if (packet[0] === 0xfe) {
        return (statusOfEnd(packet, deprecateEof) & SERVER_MORE_RESULTS_EXISTS) !== 0;
      }
      rowOf(packet, count);
    }
  }

  /**
   * Runs a statement that returns rows (`SELECT …`) with COM_QUERY, text as given, and reads
   * its text resultset: the column names, and every value as the server's text for it
   * (numbers and times too), or null for NULL. A statement without rows gives none.
   * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset.html
   */
  select(sql: string): Promise<MysqlRows> {
    return this.serially(async () => {
      this.write(Buffer.concat([Buffer.from([COM_QUERY]), Buffer.from(sql, 'utf8')]), 0);
      const first = await this.packets.next();
      if (first[0] === 0xff) throw errorOf(first);
      if (first[0] === 0x00) {
        resultOf(first);
        return { columns: [], rows: [] };
      }
      // 0xfb would ask for a local file, which this client never offers to send.
      if (first[0] === 0xfb) return this.broken('unexpected LOCAL INFILE request');
      const count = new Reader(first, 'column count').lenenc();
      const columns: string[] = [];
      for (let i = 0; i < count; i++) columns.push(columnName(await this.packets.next()));
      const deprecateEof = (this.capabilities & CLIENT_DEPRECATE_EOF) !== 0;
      if (!deprecateEof) statusOfEnd(await this.packets.next(), false);
      const rows: (string | null)[][] = [];
      for (;;) {
        const packet = await this.packets.next();
        if (packet[0] === 0xff) throw errorOf(packet);
        // A row cannot start with 0xfe: its first value would be 16 MB or longer, more than
        // a packet this client reads holds.
        if (packet[0] === 0xfe) {
          const status = statusOfEnd(packet, deprecateEof);
          if (status & SERVER_MORE_RESULTS_EXISTS) {
            return this.broken('the statement returned more than one resultset');
          }
          return { columns, rows };
        }
        rows.push(rowOf(packet, count));
      }
    });
  }

  /**
   * Runs a statement that returns no rows with text (or NULL) parameters, as a prepared
   * statement, prepared once per connection: the values never become SQL text.
   * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_execute.html
   */
  execute(sql: string, values: readonly (string | null)[]): Promise<MysqlResult> {
    return this.serially(async () => {
      const statement = this.statements.get(sql) ?? (await this.prepare(sql));
      if (statement.params !== values.length) {
        throw new Error(
          `mysql: the statement takes ${statement.params} values, got ${values.length}`,
        );
      }
      const nulls = Buffer.alloc((values.length + 7) >> 3);
      const types: number[] = [];
      const data: Buffer[] = [];
      values.forEach((value, i) => {
        types.push(MYSQL_TYPE_VAR_STRING, 0);
        if (value === null) {
          nulls[i >> 3] = (nulls[i >> 3] ?? 0) | (1 << (i & 7));
        } else {
          const bytes = Buffer.from(value, 'utf8');
          data.push(lenencInt(bytes.length), bytes);
        }
      });
      const packet = Buffer.concat([
        Buffer.from([COM_STMT_EXECUTE]),
        u32(statement.id),
        Buffer.from([0]), // no cursor
        u32(1), // iteration count
        ...(values.length > 0 ? [nulls, Buffer.from([1, ...types]), ...data] : []),
      ]);
      this.write(packet, 0);
      return this.result(await this.packets.next());
    });
  }

  /** https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_prepare.html */
  private async prepare(sql: string): Promise<{ id: number; params: number }> {
    this.write(Buffer.concat([Buffer.from([COM_STMT_PREPARE]), Buffer.from(sql, 'utf8')]), 0);
    const ok = await this.packets.next();
    if (ok[0] === 0xff) throw errorOf(ok);
    if (ok[0] !== 0x00)
      return this.broken(`unexpected answer 0x${ok[0]?.toString(16) ?? ''} to a prepare`);
    const r = new Reader(ok, 'prepare OK', 1);
    const id = r.u32();
    const columns = r.u16();
    const params = r.u16();
    // A definition per parameter, then per column, each list ended by an EOF packet unless
    // CLIENT_DEPRECATE_EOF is on.
    const eof = this.capabilities & CLIENT_DEPRECATE_EOF ? 0 : 1;
    for (const count of [params, columns]) {
      if (count > 0) for (let i = 0; i < count + eof; i++) await this.packets.next();
    }
    if (columns > 0) return this.broken('a statement that returns rows is not supported');
    const statement = { id, params };
    this.statements.set(sql, statement);
    return statement;
  }

  private result(packet: Buffer): MysqlResult {
    if (packet[0] === 0x00) return resultOf(packet);
    if (packet[0] === 0xff) throw errorOf(packet);
    return this.broken('a statement that returns rows is not supported (select reads rows)');
  }

  /** The protocol state is unknown after an unexpected answer: the connection is closed. */
  private broken(reason: string): never {
    const err = new Error(`mysql: ${reason}`);
    this.destroy(err);
    throw err;
  }

  /**
   * Runs commands one at a time, each given COMMAND_TIMEOUT_MS: a connection that stops
   * answering (one cut off at a switchover, say) is destroyed, not waited on until the
   * function times out.
   */
  private serially<T>(run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      const timer = setTimeout(
        () => this.destroy(new Error(`mysql: no answer in ${COMMAND_TIMEOUT_MS} ms`)),
        COMMAND_TIMEOUT_MS,
      );
      try {
        return await run();
      } catch (err) {
        if (err instanceof MalformedPacket) this.destroy(err);
        throw err;
      } finally {
        clearTimeout(timer);
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  private write(payload: Buffer, sequence: number): void {
    if (payload.length >= 0xffffff) throw new Error('mysql: packet over 16 MB');
    const header = Buffer.alloc(4);
    header.writeUIntLE(payload.length, 0, 3);
    header[3] = sequence & 0xff;
    this.socket.write(Buffer.concat([header, payload]));
  }

  private destroy(err: Error): void {
    this.packets.fail(err);
    // With the error, so a TLS handshake under way fails rather than waits.
    this.socket.destroy(err);
  }

  /** Says goodbye (COM_QUIT) and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.serially(async () => {
      this.write(Buffer.from([COM_QUIT]), 0);
      this.packets.fail(new Error('mysql: connection closed'));
      await new Promise<void>((resolve) => this.socket.end(resolve));
    }).catch(() => undefined);
    this.socket.destroy();
  }
}
