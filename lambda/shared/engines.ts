/**
 * The database engines, and what differs between them for a blue/green upgrade (shared by
 * the stacks, lib/engines.ts, and the functions that check versions): how a version
 * is spelled, what its major version and parameter group family are, and whether RDS runs it
 * as a DB instance or an Aurora DB cluster.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-overview.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-overview.html
 */
export const ENGINES = ['postgres', 'mysql', 'aurora-postgresql', 'aurora-mysql'] as const;
export type DatabaseEngine = (typeof ENGINES)[number];

export interface EngineSpec {
  /** How RDS runs it: a DB instance, or an Aurora DB cluster with a writer instance. */
  readonly level: 'instance' | 'cluster';
  /** A version as RDS spells it (EngineVersion). */
  readonly versionPattern: RegExp;
  /** Says what a version looks like, for error messages. */
  readonly versionExample: string;
  /** The versions the demo runs and upgrades to when the config names none. */
  readonly defaults: { readonly engineVersion: string; readonly targetEngineVersion: string };
  /** The major version: a change of it is a major upgrade, with a new parameter group family. */
  major(version: string): string;
  /** The numbers that order versions, most significant first. */
  order(version: string): number[];
  /** The DB parameter group family (for Aurora, the DB cluster parameter group's too). */
  family(version: string): string;
}

const numbers = (text: string) => text.split('.').map(Number);

/**
 * RDS for PostgreSQL and Aurora PostgreSQL: "16.6"; the major version is the first number
 * (PostgreSQL 10 and later). Families postgres16, aurora-postgresql16.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.PostgreSQL.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraPostgreSQL.Updates.html
 */
const postgresLike = (prefix: string, defaults: EngineSpec['defaults']): EngineSpec => ({
  level: prefix === 'postgres' ? 'instance' : 'cluster',
  versionPattern: /^\d{1,3}\.\d{1,3}$/,
  versionExample: `a major.minor version such as "${defaults.engineVersion}"`,
  defaults,
  major: (v) => v.split('.')[0] ?? v,
  order: numbers,
  family: (v) => `${prefix}${v.split('.')[0] ?? v}`,
});

export const ENGINE_SPECS: Record<DatabaseEngine, EngineSpec> = {
  postgres: postgresLike('postgres', { engineVersion: '16.6', targetEngineVersion: '17.2' }),
  /**
   * RDS for MySQL: "8.0.40"; the major version is the first two numbers (8.0, 8.4), the
   * family mysql8.0, mysql8.4.
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/MySQL.Concepts.VersionMgmt.html
   */
  mysql: {
    level: 'instance',
    versionPattern: /^\d{1,2}\.\d{1,2}\.\d{1,3}$/,
    versionExample: 'a version such as "8.0.42"',
    defaults: { engineVersion: '8.0.42', targetEngineVersion: '8.4.5' },
    major: (v) => v.split('.').slice(0, 2).join('.'),
    order: numbers,
    family: (v) => `mysql${v.split('.').slice(0, 2).join('.')}`,
  },
  'aurora-postgresql': postgresLike('aurora-postgresql', {
    engineVersion: '16.6',
    targetEngineVersion: '17.4',
  }),
  /**
   * Aurora MySQL: "8.0.mysql_aurora.3.08.0", the MySQL version it is compatible with, then
   * Aurora's own; the family follows the MySQL version (aurora-mysql8.0).
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Updates.Versions.html
   */
  'aurora-mysql': {
    level: 'cluster',
    versionPattern: /^\d{1,2}\.\d{1,2}\.mysql_aurora\.\d{1,2}\.\d{1,2}\.\d{1,2}$/,
    versionExample: 'a version such as "8.0.mysql_aurora.3.10.0"',
    // A minor upgrade: Aurora MySQL 8.4 is reached from version 3 "using an in-place major
    // version upgrade", and AWS does not say a blue/green deployment does it.
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.mysql84-upgrade-procedure.html
    defaults: {
      engineVersion: '8.0.mysql_aurora.3.10.0',
      targetEngineVersion: '8.0.mysql_aurora.3.12.0',
    },
    major: (v) => v.split('.').slice(0, 2).join('.'),
    order: (v) => [
      ...numbers(v.split('.mysql_aurora.')[0] ?? ''),
      ...numbers(v.split('.mysql_aurora.')[1] ?? ''),
    ],
    family: (v) => `aurora-mysql${v.split('.').slice(0, 2).join('.')}`,
  },
};

/** Negative if `a` is older than `b`, 0 if the same, positive if newer. */
export function compareEngineVersions(engine: DatabaseEngine, a: string, b: string): number {
  const x = ENGINE_SPECS[engine].order(a);
  const y = ENGINE_SPECS[engine].order(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The database the MySQL engines' demo platform creates and its functions use (DB_NAME): a
 * MySQL server has no default database to connect to, unlike PostgreSQL's `postgres`.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html (DBName)
 */
export const MYSQL_DATABASE = 'platform';

/** The database name the demo's functions connect to: only the MySQL engines need one. */
export function demoDatabaseName(engine: DatabaseEngine): string | undefined {
  return engine === 'mysql' || engine === 'aurora-mysql' ? MYSQL_DATABASE : undefined;
}
