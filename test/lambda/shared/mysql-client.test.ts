import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { MysqlConnection } from '../../../lambda/shared/mysql-client';
import { describeWithMysql, makeCertificates, mysqlPrograms } from '../../helpers/mysql';

/*
 * The client's handshake against a server that misbehaves on purpose: what a real MariaDB
 * never does, and an attacker on the path, or a broken server, might. Packets are built as
 * the protocol documents them.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html
 */
const packet = (payload: Buffer, sequence: number) => {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = sequence;
  return Buffer.concat([header, payload]);
};
const CAPABILITIES = 0x1 | 0x4 | 0x8 | 0x200 | 0x800 | 0x2000 | 0x8000 | 0x80000 | 0x200000;
function greeting(capabilities: number, plugin: string): Buffer {
  return packet(
    Buffer.concat([
      Buffer.from([10]),
      Buffer.from('8.4.0\0'),
      Buffer.from([1, 0, 0, 0]),
      Buffer.alloc(8, 0x41),
      Buffer.from([0]),
      Buffer.from([capabilities & 0xff, (capabilities >> 8) & 0xff]),
      Buffer.from([45]),
      Buffer.from([2, 0]),
      Buffer.from([(capabilities >> 16) & 0xff, (capabilities >> 24) & 0xff]),
      Buffer.from([21]),
      Buffer.alloc(10),
      Buffer.alloc(12, 0x42),
      Buffer.from([0]),
      Buffer.from(`${plugin}\0`),
    ]),
    0,
  );
}
const OK = Buffer.from([0, 0, 0, 2, 0, 0, 0]);
const PASSWORD = 'the-consumer-password';
/** The SSLRequest the client sends before TLS: a 32-byte payload, 36 bytes on the wire. */
const SSL_REQUEST_BYTES = 36;

let dir: string;
let ca: Buffer;
let key: Buffer;
let cert: Buffer;

describeWithMysql()('the MySQL client against a misbehaving server', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mysql-client-'));
    await makeCertificates(mysqlPrograms()?.openssl ?? 'openssl', dir);
    ca = readFileSync(join(dir, 'ca.pem'));
    key = readFileSync(join(dir, 'server-key.pem'));
    cert = readFileSync(join(dir, 'server.pem'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Serves one connection with `serve`; returns what the plain socket received. */
  async function connectTo(
    serve: (socket: net.Socket, received: Buffer[]) => void,
    connectTimeoutMs = 1000,
  ): Promise<{ outcome: unknown; received: Buffer[]; ms: number }> {
    const received: Buffer[] = [];
    const server = net.createServer((socket) => {
      socket.on('data', (d) => received.push(d));
      serve(socket, received);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const started = Date.now();
    const outcome = await MysqlConnection.connect({
      host: '127.0.0.1',
      port,
      user: 'quiet_upgrade_sends',
      password: PASSWORD,
      database: 'platform',
      tls: { ca },
      connectTimeoutMs,
    }).then(
      async (c) => {
        await c.close();
        return 'connected';
      },
      (err: Error) => err.message,
    );
    server.close();
    return { outcome, received, ms: Date.now() - started };
  }

  /** Answers the SSLRequest with TLS, then `inside` for each packet inside it. */
  function startTls(socket: net.Socket, inside: (secure: tls.TLSSocket, data: Buffer) => void) {
    socket.once('data', (d) => {
      socket.pause();
      if (d.length > SSL_REQUEST_BYTES) socket.unshift(d.subarray(SSL_REQUEST_BYTES));
      const secure = new tls.TLSSocket(socket, { isServer: true, key, cert });
      secure.on('data', (data) => inside(secure, data));
    });
  }

  it('refuses a server that offers no TLS, before it sends any credential', async () => {
    const r = await connectTo((socket) =>
      socket.write(greeting(CAPABILITIES & ~0x800, 'mysql_native_password')),
    );
    expect(r.outcome).toBe('mysql: 127.0.0.1 does not offer TLS');
    expect(Buffer.concat(r.received).toString('latin1')).not.toContain('quiet_upgrade_sends');
  });

  it('refuses data sent in the clear before TLS, which could forge the answers', async () => {
    const r = await connectTo((socket) => {
      // A forged OK right after the greeting, then a genuine TLS server.
      socket.write(Buffer.concat([greeting(CAPABILITIES, 'mysql_native_password'), packet(OK, 2)]));
      startTls(socket, (secure, data) => secure.write(packet(OK, (data[3] ?? 0) + 1)));
    });
    expect(r.outcome).toBe('mysql: 127.0.0.1 sent data before TLS started');
  });

  it('gives up on a TLS handshake that never answers, at the connect timeout', async () => {
    const r = await connectTo((socket) => {
      socket.write(greeting(CAPABILITIES, 'mysql_native_password'));
      // Reads the SSLRequest and the ClientHello, and answers nothing.
    }, 500);
    expect(r.outcome).toMatch(/^mysql: connecting to 127\.0\.0\.1:\d+ timed out after 500 ms$/);
    expect(r.ms).toBeLessThan(3000);
  });

  it('sends the caching_sha2 password only inside TLS, when the server asks for it', async () => {
    const insideTls: string[] = [];
    const r = await connectTo((socket) => {
      socket.write(greeting(CAPABILITIES, 'caching_sha2_password'));
      let n = 0;
      startTls(socket, (secure, data) => {
        insideTls.push(data.subarray(4).toString('latin1'));
        n += 1;
        // First the scrambled answer: ask for the full password (0x01 0x04), then accept.
        secure.write(packet(n === 1 ? Buffer.from([1, 4]) : OK, (data[3] ?? 0) + 1));
      });
    });
    expect(r.outcome).toBe('connected');
    expect(insideTls[1]).toBe(`${PASSWORD}\0`);
    expect(Buffer.concat(r.received).toString('latin1')).not.toContain(PASSWORD);
  });
});

/*
 * `select` against a server that answers with packets built here, as the text resultset is
 * documented: both list endings (with and without CLIENT_DEPRECATE_EOF), and packets cut
 * short or padded, which a real server never sends.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset.html
 */
const CLIENT_DEPRECATE_EOF = 0x1000000;
const text = (value: string) => {
  const bytes = Buffer.from(value);
  if (bytes.length >= 251) throw new Error(`the fake server's strings are short, got ${value}`);
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
};
/** ColumnDefinition41 of a VARCHAR column: six strings, then 0x0c and 12 fixed bytes. */
const column = (name: string) =>
  Buffer.concat([
    ...['def', 'platform', 't', 't', name, name].map(text),
    Buffer.from([0x0c, 45, 0, 80, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0]),
  ]);
const row = (...values: (string | null)[]) =>
  Buffer.concat(values.map((v) => (v === null ? Buffer.from([0xfb]) : text(v))));
/** EOF: 0xfe, warnings, status (SERVER_STATUS_AUTOCOMMIT). */
const EOF = Buffer.from([0xfe, 0, 0, 2, 0]);
/** The OK that ends rows under CLIENT_DEPRECATE_EOF: 0xfe, affected rows, insert id, status, warnings. */
const OK_END = Buffer.from([0xfe, 0, 0, 2, 0, 0, 0]);

describe('select against a server that answers as built here', () => {
  /**
   * Connects without TLS to a server that sends `greet`, accepts the login, and answers the
   * select (or the commands `run` sends) with `answers`, one list of payloads per command.
   */
  async function runAgainst(
    greet: Buffer,
    answer: Buffer[],
    run = (db: MysqlConnection): Promise<unknown> => db.select('SELECT a, b FROM t'),
    ...answers: Buffer[][]
  ): Promise<{ outcome: unknown; closed: boolean }> {
    const server = net.createServer((socket) => {
      let received = 0;
      socket.write(greet);
      socket.on('data', () => {
        received += 1;
        const reply = received === 1 ? [OK] : [answer, ...answers][received - 2];
        const first = received === 1 ? 2 : 1;
        socket.write(Buffer.concat((reply ?? []).map((p, i) => packet(p, i + first))));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const db = await MysqlConnection.connect({
        host: '127.0.0.1',
        port,
        user: 'writer_check',
        password: PASSWORD,
        tls: false,
      });
      const outcome = await run(db).catch((err: Error) => err.message);
      const closed = db.closed;
      await db.close();
      return { outcome, closed };
    } catch (err) {
      return { outcome: (err as Error).message, closed: true };
    } finally {
      server.close();
    }
  }
  const without = greeting(CAPABILITIES, 'mysql_native_password');
  const withDeprecateEof = greeting(CAPABILITIES | CLIENT_DEPRECATE_EOF, 'mysql_native_password');
  const ROWS = {
    columns: ['a', 'b'],
    rows: [
      ['1', null],
      ['', 'x'],
    ],
  };

  it('reads rows ended by EOF packets from a server without CLIENT_DEPRECATE_EOF', async () => {
    const r = await runAgainst(without, [
      Buffer.from([2]),
      column('a'),
      column('b'),
      EOF,
      row('1', null),
      row('', 'x'),
      EOF,
    ]);
    expect(r).toEqual({ outcome: ROWS, closed: false });
  });

  it('reads rows ended by an OK packet, with no EOF, under CLIENT_DEPRECATE_EOF', async () => {
    const r = await runAgainst(withDeprecateEof, [
      Buffer.from([2]),
      column('a'),
      column('b'),
      row('1', null),
      row('', 'x'),
      OK_END,
    ]);
    expect(r).toEqual({ outcome: ROWS, closed: false });
  });

  const [a, b] = [column('a'), column('b')];
  it.each([
    ['a column definition cut in its name', [a, b.subarray(0, 20)], 'column definition'],
    ['a column definition without its last byte', [a, b.subarray(0, -1)], 'column definition'],
    [
      'a row whose value is shorter than its length',
      [a, b, EOF, row('1', 'abc').subarray(0, -1)],
      'row',
    ],
    ['a row cut inside a 2-byte length', [a, b, EOF, Buffer.from([0xfc, 0x2c])], 'row'],
    ['a row with one value of two', [a, b, EOF, row('1')], 'row'],
    ['a row with bytes after its values', [a, b, EOF, row('1', '2', '3')], 'row'],
    ['an EOF packet cut short', [a, b, Buffer.from([0xfe, 0])], 'EOF'],
    ['an ERR packet cut inside its error number', [a, b, EOF, Buffer.from([0xff, 0x1e])], 'ERR'],
  ])('refuses %s and closes the connection', async (_, after, what) => {
    const r = await runAgainst(without, [Buffer.from([2]), ...after, EOF]);
    expect(r).toEqual({ outcome: `mysql: malformed ${what} packet`, closed: true });
  });

  it('refuses a second resultset, which would leave its packets unread', async () => {
    const moreResults = Buffer.from([0xfe, 0, 0, 2 | 8, 0]);
    const r = await runAgainst(without, [Buffer.from([1]), column('a'), EOF, moreResults]);
    expect(r).toEqual({
      outcome: 'mysql: the statement returned more than one resultset',
      closed: true,
    });
  });

  it('refuses a greeting cut short, where a read past its end once gave zeros', async () => {
    const r = await runAgainst(packet(without.subarray(4, 4 + 20), 0), []);
    expect(r.outcome).toBe('mysql: malformed handshake packet');
  });

  it('prepares against a server without CLIENT_DEPRECATE_EOF, reading the EOF after the parameters', async () => {
    // COM_STMT_PREPARE_OK: statement 1, no columns, one parameter; its definition, then EOF.
    const prepared = Buffer.from([0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    const r = await runAgainst(
      without,
      [prepared, column('?'), EOF],
      (db) => db.execute('INSERT INTO t (a) VALUES (?)', ['1']),
      [Buffer.from([0, 1, 0, 2, 0, 0, 0])],
    );
    expect(r).toEqual({ outcome: { affectedRows: 1, warnings: 0 }, closed: false });
  });
});
