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
