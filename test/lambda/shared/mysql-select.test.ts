import { MysqlConnection, MysqlError } from '../../../lambda/shared/mysql-client';
import { describeWithMysql, MYSQL_MASTER, startMysql, type TestMysql } from '../../helpers/mysql';

/*
 * The client's `select` on a real MySQL-compatible server (Debian's MariaDB, started for this
 * file by test/helpers/mysql.ts), over verified TLS as the functions connect: the rows the
 * runbook's writer check reads (issue 15). What the server sends is checked against the
 * `mariadb` command-line client where the value is the server's own.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response_text_resultset.html
 */
let mysql: TestMysql;
let db: MysqlConnection;

describeWithMysql()('select on a real MySQL-compatible server', () => {
  beforeAll(async () => {
    mysql = await startMysql();
    await mysql.sql('CREATE TABLE select_probe (id INT PRIMARY KEY, note VARCHAR(20) NULL)');
    db = await MysqlConnection.connect({
      host: '127.0.0.1',
      port: mysql.port,
      ...MYSQL_MASTER,
      database: mysql.database,
      tls: { ca: mysql.ca },
    });
  });
  afterAll(async () => {
    await db?.close();
    await mysql?.stop();
  });

  it('reads SELECT VERSION() as one row with the server version', async () => {
    const [[version]] = await mysql.sql('SELECT VERSION()');
    expect(version).toMatch(/MariaDB/);
    expect(await db.select('SELECT VERSION()')).toEqual({
      columns: ['VERSION()'],
      rows: [[version]],
    });
  });

  it('reads NULL as null, apart from an empty string and the text NULL', async () => {
    expect(await db.select("SELECT NULL AS a, '' AS b, 'NULL' AS c, NULL AS d")).toEqual({
      columns: ['a', 'b', 'c', 'd'],
      rows: [[null, '', 'NULL', null]],
    });
  });

  it('reads several rows and columns in order, numbers as text', async () => {
    const sql =
      "SELECT 1 AS n, 'one' AS word, 1.5 AS x UNION ALL SELECT 2, NULL, -0.25 " +
      "UNION ALL SELECT 3, 'drei – 三', 1000.00 ORDER BY n";
    expect(await db.select(sql)).toEqual({
      columns: ['n', 'word', 'x'],
      rows: [
        ['1', 'one', '1.50'],
        ['2', null, '-0.25'],
        ['3', 'drei – 三', '1000.00'],
      ],
    });
  });

  it("reads the writer check's variables and its own line in the processlist", async () => {
    expect(await db.select('SELECT @@global.read_only, @@global.innodb_read_only')).toEqual({
      columns: ['@@global.read_only', '@@global.innodb_read_only'],
      rows: [['0', '0']],
    });
    const [[connectionId]] = (await db.select('SELECT CONNECTION_ID()')).rows;
    const mine = await db.select(
      'SELECT ID, USER, DB, COMMAND FROM information_schema.processlist ' +
        `WHERE ID = ${connectionId ?? 'NULL'}`,
    );
    expect(mine).toEqual({
      columns: ['ID', 'USER', 'DB', 'COMMAND'],
      rows: [[connectionId, MYSQL_MASTER.user, mysql.database, 'Query']],
    });
  });

  it('reads a query with zero rows as its columns and no rows', async () => {
    expect(await db.select('SELECT id, note FROM select_probe WHERE id < 0')).toEqual({
      columns: ['id', 'note'],
      rows: [],
    }); // A statement that makes no resultset at all answers OK: no columns either.
    expect(await db.select('DO 1')).toEqual({ columns: [], rows: [] });
  });

  it('raises the server error 1054 for an unknown column, and stays usable', async () => {
    const err = await db.select('SELECT no_such_column FROM select_probe').catch((e) => e);
    expect(err).toBeInstanceOf(MysqlError);
    expect(err).toMatchObject({ errno: 1054, sqlState: '42S22' });
    expect(await db.select("SELECT 'still here' AS s")).toEqual({
      columns: ['s'],
      rows: [['still here']],
    });
  });

  // Lengths past 250 take a 2-byte (0xfc) length, from 65536 a 3-byte (0xfd) one; 251 is
  // the first after the NULL marker 0xfb. é is two bytes: the length counts bytes.
  it.each([250, 251, 252, 300, 65535, 65536, 70000])(
    'reads a value of %i bytes whole',
    async (bytes) => {
      const sql = `SELECT REPEAT('x', ${bytes}) AS a, REPEAT('é', ${Math.floor(bytes / 2)}) AS b, 'after' AS c`;
      const { rows } = await db.select(sql);
      expect(rows).toEqual([['x'.repeat(bytes), 'é'.repeat(Math.floor(bytes / 2)), 'after']]);
    },
  );

  it('runs a CALL whose procedure sends resultsets, as RDS procedures may, and stays usable', async () => {
    // Without CLIENT_MULTI_RESULTS the server refuses it: 1312, "can't return a result set
    // in the given context".
    await mysql.sql(
      `DELIMITER //
       CREATE PROCEDURE ${mysql.database}.two_selects() BEGIN SELECT 1 AS a; SELECT 'x' AS b, 2 AS c; END//`,
    );
    await expect(db.query(`CALL ${mysql.database}.two_selects()`)).resolves.toEqual({
      affectedRows: 0,
      warnings: 0,
    });
    expect(await db.select('SELECT 3 AS n')).toEqual({ columns: ['n'], rows: [['3']] });
  });

  it('raises the error a procedure signals after a resultset, and stays usable', async () => {
    await mysql.sql(
      `DELIMITER //
       CREATE PROCEDURE ${mysql.database}.select_then_fail() BEGIN SELECT 1 AS a; ` +
        "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the procedure', MYSQL_ERRNO = 1644; END//",
    );
    const err = await db
      .query(`CALL ${mysql.database}.select_then_fail()`)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MysqlError);
    expect(err).toMatchObject({
      errno: 1644,
      sqlState: '45000',
      message: 'refused by the procedure',
    });
    expect(await db.select('SELECT 4 AS n')).toEqual({ columns: ['n'], rows: [['4']] });
  });

  it('runs an INSERT after a select on the same connection, in the order called', async () => {
    const [before, inserted, after] = await Promise.all([
      db.select('SELECT COUNT(*) FROM select_probe'),
      db.execute('INSERT INTO select_probe (id, note) VALUES (?, ?)', ['7', null]),
      db.select('SELECT id, note FROM select_probe'),
    ]);
    expect(before.rows).toEqual([['0']]);
    expect(inserted).toEqual({ affectedRows: 1, warnings: 0 });
    expect(after.rows).toEqual([['7', null]]);
    expect(await mysql.count('select_probe')).toBe(1);
  });
});
