// Documented RDS for PostgreSQL blue/green limitations that can be seen in the blue (source)
// database before the deployment is created, so that preflight fails on them instead of
// replication breaking hours later. Calls no AWS API.
//
// Scope: tables, large objects, extensions and publications belong to one database, so this
// checks only the database it is connected to: run it once per database on the instance.
// Subscriptions (pg_subscription is a shared catalog) and replication slots are instance-wide
// and are found from any database.
//
// Which replication a deployment uses (logical for a major version upgrade from a supported
// source version, physical otherwise):
// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-replication-type.html

import type { Replication } from '../shared/upgrade-plan';

/** One statement; pg's Pool fits. */
export interface Queryable {
  query(text: string): Promise<{ rows: unknown[] }>;
}

/** What each row of the query reports; `name` is ready to paste into SQL (quoted as needed). */
type Kind =
  | 'no_replica_identity'
  | 'large_objects'
  | 'extension'
  | 'publication'
  | 'subscription'
  | 'logical_slot';

/** Extensions the logical-replication limitations name; see the `extension` check below. */
const PG_PARTMAN = 'pg_partman';
const REPLICATION_EXTENSIONS = ['pglogical', 'pgactive'];

// One SELECT per check, joined with UNION ALL into one statement of rows {kind, name, db}.
// Every catalog read here is granted to PUBLIC (pg_subscription only column by column, so only
// subname and subdbid are read): the RDS master user, not a superuser, can run it.
const CHECKS: Record<Kind, string> = {
  // Logical only.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres
  // (table "Logical replication-specific limitations"): "UPDATE and DELETE operations aren't
  // permitted on tables that don't have a primary key." / "Before you create a blue/green
  // deployment, make sure that all tables have a primary key or use REPLICA IDENTITY FULL.
  // However, only use REPLICA IDENTITY FULL if no primary or unique key exists".
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing-postgres-logical
  // "Make sure that all tables in the DB instance have a primary key."
  // The rule AWS links (PostgreSQL "Restrictions") is about the replica identity, so a table with
  // REPLICA IDENTITY USING INDEX passes and one whose identity is NOTHING fails even with a
  // primary key. Only permanent ordinary tables: partitions are ordinary tables and carry the
  // rows (a partitioned parent holds none), and unlogged and temporary tables are never
  // published, so UPDATE and DELETE on them are not refused. Skipped: system schemas and
  // schemas an extension created (its own, e.g. pglogical's).
  no_replica_identity: `SELECT 'no_replica_identity' AS kind, format('%I.%I', n.nspname, c.relname) AS name,
       current_database()::text AS db
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND c.relpersistence = 'p'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
                      AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')
   AND NOT (c.relreplident = 'f'
        OR (c.relreplident = 'd' AND EXISTS (SELECT 1 FROM pg_index i
                                              WHERE i.indrelid = c.oid AND i.indisprimary))
        OR (c.relreplident = 'i' AND EXISTS (SELECT 1 FROM pg_index i
                                              WHERE i.indrelid = c.oid AND i.indisreplident)))`,

  // Logical only.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres
  // "Large objects in the blue environment aren't replicated to the green environment. This
  // includes both existing large objects and any newly created or modified large objects during
  // the blue/green deployment process." One row with the count, not one per object.
  large_objects: `SELECT 'large_objects', count(*)::text, current_database()::text
  FROM pg_largeobject_metadata
HAVING count(*) > 0`,

  // Logical only.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres-logical
  // "The pg_partman extension must be disabled in the blue environment when you create a blue/green
  // deployment. The extension performs DDL operations such as CREATE TABLE, which break logical
  // replication" / "The pglogical and pgactive extensions must be disabled on the blue
  // environment when you create a blue/green deployment. After you switch over the green
  // environment to be the new production environment, you can enable the extensions again."
  // AWS does not define "disabled"; installed in this database counts as not disabled.
  // Not checked: pg_cron ("must remain disabled on all green databases") and pgAudit (must stay
  // in shared_preload_libraries of both parameter groups) are about green and parameter groups,
  // not about anything in the blue database.
  extension: `SELECT 'extension', extname::text, current_database()::text
  FROM pg_extension
 WHERE extname IN (${[PG_PARTMAN, ...REPLICATION_EXTENSIONS].map((e) => `'${e}'`).join(', ')})`,

  // Both. These two sections both say "The blue DB instance can't be a logical source
  // (publisher) or replica (subscriber).":
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres-physical
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-considerations.html#blue-green-deployments-limitations-postgres-logical
  // and these two both say "Confirm that the DB instance isn't the source or target of external
  // replication.":
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing-postgres-physical
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing-postgres-logical
  publication: `SELECT 'publication', format('%I', pubname), current_database()::text
  FROM pg_publication`,

  // Both; the same four sections as publications. pg_subscription is shared, so this lists the
  // subscriptions of every database on the instance.
  subscription: `SELECT 'subscription', format('%I', s.subname), d.datname::text
  FROM pg_subscription s
  JOIN pg_database d ON d.oid = s.subdbid`,

  // Both; the same four sections as publications. AWS names publishers and subscribers, not
  // slots: a logical slot is how any outside consumer (AWS DMS, a CDC connector, a subscriber
  // elsewhere) reads changes, which makes the instance "a logical source" and "the source ... of
  // external replication". Physical slots (e.g. for read replicas) are not, and are left alone.
  logical_slot: `SELECT 'logical_slot', slot_name::text, database::text
  FROM pg_replication_slots
 WHERE slot_type = 'logical'`,
};

/** SQL statements the module runs, exported so a simulator can recognise them. */
export const LIMITATION_SQL: Record<string, string> = {
  // Byte order ("C"), so that names sort the same whatever the database's collation.
  all: `SELECT kind, name, db FROM (
${Object.values(CHECKS).join('\nUNION ALL\n')}
) AS found
ORDER BY kind, name COLLATE "C"`,
};

/** Checks that apply only when RDS replicates blue to green logically. */
const LOGICAL_ONLY: ReadonlySet<Kind> = new Set([
  'no_replica_identity',
  'large_objects',
  'extension',
]);

interface Finding {
  kind: Kind;
  name: string;
  db: string;
}

/** Each problem as a sentence that names the object and says how to fix it; [] when none. */
export async function replicationLimitations(
  db: Queryable,
  replication: Replication,
): Promise<string[]> {
  const { rows } = await db.query(LIMITATION_SQL.all);
  const byKind = new Map<Kind, Finding[]>();
  for (const row of rows) {
    const finding = parseRow(row);
    if (replication === 'physical' && LOGICAL_ONLY.has(finding.kind)) continue;
    byKind.set(finding.kind, [...(byKind.get(finding.kind) ?? []), finding]);
  }
  return (Object.keys(CHECKS) as Kind[]).flatMap((kind) => {
    const found = byKind.get(kind);
    return found === undefined ? [] : messages(kind, found);
  });
}

function parseRow(row: unknown): Finding {
  const r = row as Partial<Record<keyof Finding, unknown>> | null;
  if (
    typeof r?.kind === 'string' &&
    Object.hasOwn(CHECKS, r.kind) &&
    typeof r.name === 'string' &&
    typeof r.db === 'string'
  ) {
    return { kind: r.kind as Kind, name: r.name, db: r.db };
  }
  throw new Error(`unexpected row from the blue/green limitation query: ${JSON.stringify(row)}`);
}

const MAX_NAMES = 10;

/** "a, b, c" or "a, …, j and 5 more". */
function list(names: string[]): string {
  const shown = names.slice(0, MAX_NAMES).join(', ');
  return names.length > MAX_NAMES ? `${shown} and ${names.length - MAX_NAMES} more` : shown;
}

const NOT_PUBLISHER =
  "AWS doesn't allow the blue instance to be a logical replication publisher in a blue/green deployment";
const NOT_ALLOWED = "which AWS doesn't allow for the blue instance of a blue/green deployment";

function messages(kind: Kind, found: Finding[]): string[] {
  const db = found[0]?.db ?? '';
  const names = found.map((f) => f.name);
  const one = found.length === 1 ? found[0] : undefined;
  switch (kind) {
    case 'no_replica_identity': {
      const rule =
        "UPDATE and DELETE aren't permitted on such tables under blue/green logical replication";
      return [
        one
          ? `Table ${one.name} in database ${db} has no primary key or other replica identity, so ` +
            `${rule}: add a primary key, or if it has no unique key run ` +
            `ALTER TABLE ${one.name} REPLICA IDENTITY FULL.`
          : `${found.length} tables in database ${db} have no primary key or other replica ` +
            `identity, so ${rule}: ${list(names)}; add a primary key to each, or run ` +
            'ALTER TABLE <table> REPLICA IDENTITY FULL on those with no unique key.',
      ];
    }
    case 'large_objects': {
      const count = Number(one?.name ?? 0);
      return [
        `Database ${db} has ${count} large ${count === 1 ? 'object' : 'objects'}, which ` +
          "blue/green logical replication doesn't copy to green and whose creation or change " +
          'during the deployment degrades replication: move their data into ordinary columns ' +
          '(e.g. bytea) and remove them with lo_unlink before creating the deployment.',
      ];
    }
    case 'extension':
      return found.map(({ name }) =>
        name === PG_PARTMAN
          ? `Extension pg_partman is installed in database ${db}, and AWS requires it disabled ` +
            'on blue when a blue/green deployment with logical replication is created because ' +
            'the CREATE TABLE it runs breaks replication: create the partitions needed until ' +
            'switchover, then save its part_config table and run DROP EXTENSION pg_partman ' +
            '(reinstall it after switchover).'
          : `Extension ${name} is installed in database ${db}, and AWS requires pglogical and ` +
            'pgactive disabled on blue when a blue/green deployment with logical replication ' +
            `is created: stop its replication and run DROP EXTENSION ${name} before creating ` +
            'the deployment, then enable it again after switchover.',
      );
    case 'publication':
      return [
        one
          ? `Publication ${one.name} exists in database ${db}, and ${NOT_PUBLISHER}: move its ` +
            `subscribers off, run DROP PUBLICATION ${one.name} before creating the deployment, ` +
            'and recreate it after switchover if still needed.'
          : `${found.length} publications exist in database ${db} (${list(names)}), and ` +
            `${NOT_PUBLISHER}: move their subscribers off, drop each with DROP PUBLICATION ` +
            'before creating the deployment, and recreate them after switchover if still needed.',
      ];
    case 'subscription':
      return [
        one
          ? `Subscription ${one.name} in database ${one.db} makes the instance a logical ` +
            `replication subscriber, ${NOT_ALLOWED}: run DROP SUBSCRIPTION ${one.name} in ` +
            `database ${one.db} before creating the deployment.`
          : `${found.length} subscriptions make the instance a logical replication subscriber, ` +
            `${NOT_ALLOWED}: ${list(found.map((f) => `${f.name} (database ${f.db})`))}; run ` +
            'DROP SUBSCRIPTION for each in its database before creating the deployment.',
      ];
    case 'logical_slot':
      return [
        one
          ? `Logical replication slot ${one.name} (database ${one.db}) makes the instance a ` +
            `logical replication source, ${NOT_ALLOWED}: stop its consumer (e.g. an AWS DMS ` +
            `task or CDC connector) and run SELECT pg_drop_replication_slot('${one.name}').`
          : `${found.length} logical replication slots make the instance a logical replication ` +
            `source, ${NOT_ALLOWED}: ${list(found.map((f) => `${f.name} (database ${f.db})`))}; ` +
            'stop their consumers (e.g. AWS DMS tasks or CDC connectors) and drop each with ' +
            "SELECT pg_drop_replication_slot('<slot>').",
      ];
  }
}
