import { PGlite } from '@electric-sql/pglite';
import {
  LIMITATION_SQL,
  type Queryable,
  replicationLimitations,
} from '../../../lambda/verify-writer/limitations';

// One PostgreSQL (PGlite) for the file, each test in a transaction that is rolled back.
// wal_level=logical, as on an RDS instance with rds.logical_replication on, so that a logical
// replication slot can be created.
let pglite: PGlite;
let db: Queryable;

beforeAll(async () => {
  pglite = await PGlite.create({ postgresqlconf: ['wal_level = logical'] });
  db = { query: (text) => pglite.query(text) };
});

afterAll(async () => {
  await pglite.close();
});

beforeEach(async () => {
  await pglite.exec('BEGIN');
});

afterEach(async () => {
  await pglite.exec('ROLLBACK');
  // Replication slots outlive a rollback.
  await pglite.exec('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots');
});

const logical = () => replicationLimitations(db, 'logical');
const physical = () => replicationLimitations(db, 'physical');

/** A Queryable that answers every statement with these rows and records what it was sent. */
function fake(rows: unknown[]): Queryable & { sent: string[] } {
  const sent: string[] = [];
  return {
    sent,
    async query(text) {
      sent.push(text);
      return { rows };
    },
  };
}

test('a clean database has no limitations under either replication', async () => {
  expect(await logical()).toEqual([]);
  expect(await physical()).toEqual([]);
});

test('a table without a primary key is reported under logical replication, not physical', async () => {
  await pglite.exec('CREATE TABLE events (id int, body text)');

  expect(await logical()).toEqual([
    'Table public.events in database postgres has no primary key or other replica identity, ' +
      "so UPDATE and DELETE aren't permitted on such tables under blue/green logical " +
      'replication: add a primary key, or if it has no unique key run ' +
      'ALTER TABLE public.events REPLICA IDENTITY FULL.',
  ]);
  expect(await physical()).toEqual([]);
});

test.each([
  ['has a primary key', 'CREATE TABLE t (id int PRIMARY KEY)'],
  ['uses REPLICA IDENTITY FULL', 'CREATE TABLE t (id int); ALTER TABLE t REPLICA IDENTITY FULL'],
  [
    'uses REPLICA IDENTITY USING INDEX',
    `CREATE TABLE t (id int NOT NULL);
     CREATE UNIQUE INDEX t_id ON t (id);
     ALTER TABLE t REPLICA IDENTITY USING INDEX t_id`,
  ],
  ['is unlogged (never published)', 'CREATE UNLOGGED TABLE t (id int)'],
  ['is temporary (never published)', 'CREATE TEMPORARY TABLE t (id int)'],
  [
    'is partitioned, with keys on its partitions',
    `CREATE TABLE t (id int NOT NULL, k int NOT NULL) PARTITION BY RANGE (k);
     CREATE TABLE t_1 PARTITION OF t FOR VALUES FROM (0) TO (10);
     ALTER TABLE t_1 ADD PRIMARY KEY (id)`,
  ],
])('a table that %s is not reported', async (_, sql) => {
  await pglite.exec(sql);

  expect(await logical()).toEqual([]);
});

test.each([
  ['has only a non-unique index', 'CREATE TABLE t (id int); CREATE INDEX t_id ON t (id)'],
  [
    'has a unique index but no REPLICA IDENTITY USING INDEX',
    'CREATE TABLE t (id int NOT NULL); CREATE UNIQUE INDEX t_id ON t (id)',
  ],
  [
    'has a primary key but REPLICA IDENTITY NOTHING',
    'CREATE TABLE t (id int PRIMARY KEY); ALTER TABLE t REPLICA IDENTITY NOTHING',
  ],
])('a table that %s is reported', async (_, sql) => {
  await pglite.exec(sql);

  expect(await logical()).toEqual([expect.stringContaining('Table public.t in database')]);
});

test('a name that needs quoting is reported ready to paste', async () => {
  await pglite.exec('CREATE SCHEMA "Sales"; CREATE TABLE "Sales"."Order Lines" (qty int)');

  expect(await logical()).toEqual([
    expect.stringContaining('run ALTER TABLE "Sales"."Order Lines" REPLICA IDENTITY FULL.'),
  ]);
});

test('many tables are one message naming ten of them and counting the rest', async () => {
  for (let i = 1; i <= 12; i++) {
    await pglite.exec(`CREATE TABLE t${String(i).padStart(2, '0')} (id int)`);
  }

  const found = await logical();

  expect(found).toHaveLength(1);
  expect(found[0]).toMatch(/^12 tables in database postgres have no primary key/);
  expect(found[0]).toContain(
    'public.t01, public.t02, public.t03, public.t04, public.t05, public.t06, public.t07, ' +
      'public.t08, public.t09, public.t10 and 2 more; add a primary key to each',
  );
  expect(found[0]).not.toContain('public.t11');
});

test('tables in a schema an extension created are not reported', async () => {
  // PGlite has no extension that creates a schema with tables; record one as created by the
  // plpgsql extension, as CREATE EXTENSION does for a schema its script creates.
  await pglite.exec(`CREATE SCHEMA ext_internal;
    CREATE TABLE ext_internal.state (v int);
    INSERT INTO pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype)
    VALUES ('pg_namespace'::regclass, 'ext_internal'::regnamespace, 0, 'pg_extension'::regclass,
            (SELECT oid FROM pg_extension WHERE extname = 'plpgsql'), 0, 'e')`);

  expect(await logical()).toEqual([]);
});

test('large objects are reported under logical replication, not physical', async () => {
  await pglite.exec('SELECT lo_create(0); SELECT lo_create(0)');

  expect(await logical()).toEqual([
    expect.stringMatching(
      /^Database postgres has 2 large objects, which blue\/green logical replication doesn't copy.*lo_unlink/,
    ),
  ]);
  expect(await physical()).toEqual([]);
});

test('pg_partman, pglogical and pgactive are reported under logical replication, not physical', async () => {
  // PGlite cannot install these; as superuser, record them in pg_extension as CREATE EXTENSION
  // would, so that the real query finds them.
  await pglite.exec(`INSERT INTO pg_extension
      (oid, extname, extowner, extnamespace, extrelocatable, extversion)
    SELECT 900000 + n, name, (SELECT oid FROM pg_roles WHERE rolname = current_user),
           'public'::regnamespace, false, '1.0'
      FROM unnest(ARRAY['pg_partman', 'pglogical', 'pgactive', 'pg_trgm']) WITH ORDINALITY AS e(name, n)`);

  const found = await logical();

  expect(found).toEqual([
    expect.stringMatching(/^Extension pg_partman is installed.*DROP EXTENSION pg_partman/),
    expect.stringMatching(
      /^Extension pgactive is installed in database postgres.*DROP EXTENSION pgactive/,
    ),
    expect.stringMatching(/^Extension pglogical is installed.*enable it again after switchover\.$/),
  ]);
  expect(await physical()).toEqual([]);
});

test('a publication is reported under both replications', async () => {
  await pglite.exec(
    'CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION orders_pub FOR TABLE t',
  );

  const expected = [
    "Publication orders_pub exists in database postgres, and AWS doesn't allow the blue " +
      'instance to be a logical replication publisher in a blue/green deployment: move its ' +
      'subscribers off, run DROP PUBLICATION orders_pub before creating the deployment, and ' +
      'recreate it after switchover if still needed.',
  ];
  expect(await logical()).toEqual(expected);
  expect(await physical()).toEqual(expected);
});

test('a logical replication slot is reported under both replications, a physical one is not', async () => {
  await pglite.exec(`SELECT pg_create_logical_replication_slot('dms_slot', 'pgoutput');
    SELECT pg_create_physical_replication_slot('replica_slot')`);

  const expected = [
    expect.stringMatching(
      /^Logical replication slot dms_slot \(database postgres\) .*SELECT pg_drop_replication_slot\('dms_slot'\)\.$/,
    ),
  ];
  expect(await logical()).toEqual(expected);
  expect(await physical()).toEqual(expected);
});

test('a subscription is reported under both replications', async () => {
  // PGlite cannot create a subscription (it has no libpqwalreceiver), so this feeds the row the
  // query returns for one.
  const source = fake([{ kind: 'subscription', name: 'orders_sub', db: 'app' }]);

  const expected = [
    'Subscription orders_sub in database app makes the instance a logical replication ' +
      "subscriber, which AWS doesn't allow for the blue instance of a blue/green deployment: " +
      'run DROP SUBSCRIPTION orders_sub in database app before creating the deployment.',
  ];
  expect(await replicationLimitations(source, 'logical')).toEqual(expected);
  expect(await replicationLimitations(source, 'physical')).toEqual(expected);
  expect(source.sent).toEqual([LIMITATION_SQL.all, LIMITATION_SQL.all]);
});

test('the query runs for a role that is not a superuser, like the RDS master user', async () => {
  await pglite.exec(`CREATE TABLE events (id int);
    CREATE ROLE app NOLOGIN;
    SET ROLE app`);

  expect(await logical()).toEqual([expect.stringContaining('Table public.events')]);
});

test.each(['something_else', 'toString'])(
  'a row of kind %s is an error, not a pass',
  async (kind) => {
    await expect(
      replicationLimitations(fake([{ kind, name: 'x', db: 'app' }]), 'logical'),
    ).rejects.toThrow('unexpected row');
  },
);
