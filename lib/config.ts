import { isIPv4, isIPv6 } from 'node:net';
import * as v from 'valibot';
import { BUFFER_NAMES, type BufferName } from '../lambda/shared/contracts';
import { EMAIL, shown as show, valueAt } from '../lambda/shared/formats';
import { QUIET_GATE_MAX_WAIT_MINUTES } from '../lambda/shared/upgrade-plan';
import { ENGINES, ENGINE_SPECS, type DatabaseEngine, compareEngineVersions } from './engines';

/** The cdk.json context key that holds the whole configuration. */
export const CONFIG_CONTEXT_KEY = 'quietUpgrade';

export { ENGINES, type DatabaseEngine } from './engines';
/** RDS preferred maintenance window: ddd:hh24:mi-ddd:hh24:mi, in UTC. */
const WINDOW =
  /^(mon|tue|wed|thu|fri|sat|sun):(\d{2}):(\d{2})-(mon|tue|wed|thu|fri|sat|sun):(\d{2}):(\d{2})$/;
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** A string matching `pattern`; `message` says what it must be. */
const matching = (pattern: RegExp, message: string) =>
  v.pipe(v.string(), v.regex(pattern, message));

/** A whole number from `min` to `max`; `range` says so, such as "must be 1-900". */
const wholeNumber = (min: number, max: number, range: string, whole = 'must be a whole number') =>
  v.pipe(
    v.number('must be a number'),
    v.integer(whole),
    v.minValue(min, range),
    v.maxValue(max, range),
  );

/** An engine version; its form depends on the engine, so it is checked after (checkVersions). */
const engineVersion = matching(/^[0-9][0-9a-z_.]{0,39}$/, 'must be an engine version');

const arn = (service: string, resource: string, example: string, note = '') =>
  matching(
    new RegExp(`^arn:aws[a-z-]*:${service}:[a-z0-9-]+:\\d{12}:${resource}$`),
    `must be an ARN such as "${example}"${note}`,
  );
// The capture function sends without a MessageGroupId, which a FIFO queue requires.
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
const STANDARD_QUEUE = ' (a standard queue: FIFO queues are not supported)';
const awsId = (prefix: string) =>
  matching(
    new RegExp(`^${prefix}-[0-9a-f]{8,17}$`),
    `must be an id such as "${prefix}-0123456789abcdef0"`,
  );
const parameterGroupName = matching(
  /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{0,254}(?<!-)$/,
  'must be a DB parameter group name: letters, digits, hyphens; first a letter',
);

/** One buffer of an existing platform: its queue, DLQ, and the consumer that drains it. */
const existingBuffer = v.strictObject({
  queueArn: arn('sqs', '[\\w-]{1,80}', 'arn:aws:sqs:eu-west-1:123456789012:sends', STANDARD_QUEUE),
  deadLetterQueueArn: arn(
    'sqs',
    '[\\w-]{1,80}',
    'arn:aws:sqs:eu-west-1:123456789012:sends-dlq',
    STANDARD_QUEUE,
  ),
  // https://docs.aws.amazon.com/lambda/latest/api/API_EventSourceMappingConfiguration.html (UUID)
  eventSourceMappingId: matching(
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    'must be an event source mapping UUID',
  ),
  // https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html (FunctionName)
  consumerFunctionName: matching(
    /^[A-Za-z0-9_-]{1,64}$/,
    'must be a Lambda function name (1-64 letters, digits, - or _)',
  ),
});

/**
 * A platform that already runs: its database, network, listener and queues are adopted, not
 * built. Only the upgrade's own parts (functions, state machines, topic, dashboard) are created.
 */
const existingPlatform = v.strictObject({
  /**
   * For Aurora (engines aurora-postgresql, aurora-mysql) the database is a DB cluster: the
   * config's `database.instanceIdentifier` names the cluster, and both parameter groups below
   * are DB cluster parameter groups, where Aurora keeps every blue/green prerequisite.
   * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html
   */
  database: v.strictObject({
    /**
     * The master secret (host, port, username, password), as RDS or CloudFormation made it.
     * For Aurora its host is the cluster (writer) endpoint, which the switchover hands to green.
     * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.Endpoints.html
     */
    secretArn: arn(
      'secretsmanager',
      'secret:[\\w/+=.@-]+-[A-Za-z0-9]{6}',
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:platform-db-AbCdEf',
    ),
    /**
     * The parameter group blue uses now (preflight reads it; a restore resets it). For Aurora,
     * the cluster's DB cluster parameter group.
     */
    parameterGroupName,
    /**
     * The group green gets, in the target's family, with rds.logical_replication=1. For Aurora,
     * the DB cluster parameter group green's cluster gets (TargetDBClusterParameterGroupName),
     * with Aurora PostgreSQL's rds.logical_replication=1 or Aurora MySQL's binlog_format set.
     * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateBlueGreenDeployment.html
     */
    targetParameterGroupName: v.optional(parameterGroupName),
  }),
  network: v.strictObject({
    vpcId: awsId('vpc'),
    /** Private subnets that reach the database and the RDS and Secrets Manager APIs. */
    subnetIds: v.pipe(v.array(awsId('subnet')), v.minLength(1, 'must list at least one subnet')),
    /** A security group the database already accepts connections from. */
    databaseClientSecurityGroupId: awsId('sg'),
  }),
  listener: v.strictObject({
    listenerArn: arn(
      'elasticloadbalancing',
      'listener/app/[\\w-]+/[0-9a-f]+/[0-9a-f]+',
      'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/0123456789abcdef/0123456789abcdef',
    ),
    appTargetGroupArn: arn(
      'elasticloadbalancing',
      'targetgroup/[\\w-]+/[0-9a-f]+',
      'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/0123456789abcdef',
    ),
  }),
  buffers: v.strictObject(
    Object.fromEntries(BUFFER_NAMES.map((name) => [name, existingBuffer])) as Record<
      BufferName,
      typeof existingBuffer
    >,
  ),
  /** The longest a consumer invocation runs: the pause waits this long for in-flight batches. */
  // https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html (at most 900 s)
  consumerTimeoutSeconds: wholeNumber(1, 900, 'must be 1-900'),
});

/** What the quiet gate does when traffic is not quiet in time. */
export const QUIET_GATE_CHOICES = ['roll-back', 'switch-anyway'] as const;
export { QUIET_GATE_MAX_WAIT_MINUTES } from '../lambda/shared/upgrade-plan';

/** The one switch between the demo platform and adopting an existing one. */
export const PLATFORMS = ['demo', 'existing'] as const;

const CAPTURE_PATH =
  'must be a path such as "/t/click": "/" then up to 127 of A-Z a-z 0-9 _ . ~ / -';

/** The capture endpoints, by their config key under `edge.capturePaths`. */
export const CAPTURE_ENDPOINTS = ['click', 'open', 'confirm', 'unsubscribe', 'signUp'] as const;
export type CaptureEndpoint = (typeof CAPTURE_ENDPOINTS)[number];

/**
 * The capture paths in groups, each with its own rate limit: tracking pixels and clicks come
 * in bursts from mail clients and their image proxies, while a person confirms, unsubscribes
 * or signs up a few times at most, so a flood there is abuse.
 */
export const CAPTURE_PATH_GROUPS = {
  tracking: ['click', 'open'],
  subscriptions: ['confirm', 'unsubscribe', 'signUp'],
} as const satisfies Record<string, readonly CaptureEndpoint[]>;
export type CapturePathGroup = keyof typeof CAPTURE_PATH_GROUPS;

// The windows AWS WAF counts a rate-based rule's requests over, and its lowest limit, 10.
// https://docs.aws.amazon.com/waf/latest/developerguide/waf-rule-statement-type-rate-based-high-level-settings.html
export const WAF_EVALUATION_WINDOWS = [60, 120, 300, 600] as const;
export const WAF_MIN_RATE_LIMIT = 10;
// Ours, not AWS WAF's: one address sending more than this in a window is no person.
export const WAF_MAX_RATE_LIMIT = 100_000;
const RATE_LIMIT =
  `must be ${WAF_MIN_RATE_LIMIT}-${WAF_MAX_RATE_LIMIT} requests per window per address ` +
  `(AWS WAF's lowest limit is ${WAF_MIN_RATE_LIMIT})`;
const rateLimit = (fallback: number) =>
  v.optional(wholeNumber(WAF_MIN_RATE_LIMIT, WAF_MAX_RATE_LIMIT, RATE_LIMIT), fallback);

/**
 * Reserved concurrency, where 0 means "no reservation": never Lambda's own 0, which would
 * stop the function. Lambda keeps at least 100 of the account's concurrency unreserved, so in
 * an account with a low quota every reservation fails to deploy; 0 is for such accounts.
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
 * https://docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html
 */
const reservedConcurrency = (max: number, fallback: number) =>
  v.optional(wholeNumber(0, max, `must be 0-${max} (0: no reservation)`), fallback);

const NOTIFICATION_EMAIL = 'must be an email address or ""';
const CERTIFICATE_ARN = 'must be an ACM certificate ARN or ""';
const SCHEDULE =
  'must be "", at(yyyy-mm-ddThh:mm:ss) or cron(minutes hours day month weekday year)';

const schema = v.strictObject({
  /** "demo" builds a whole platform to upgrade; "existing" adopts the one in `existing`. */
  platform: v.picklist(PLATFORMS, `must be one of: ${PLATFORMS.join(', ')}`),
  /** Read when `platform` is "existing"; may stay filled in while trying the demo. */
  existing: v.optional(existingPlatform),
  env: v.strictObject({
    account: v.optional(matching(/^\d{12}$/, 'must be a 12-digit AWS account id')),
    region: matching(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as "eu-west-1"'),
  }),
  database: v.strictObject({
    engine: v.picklist(ENGINES, `must be one of: ${ENGINES.join(', ')}`),
    /** Blue's version now; with neither version set, the engine's demo pair (lib/engines.ts). */
    engineVersion: v.optional(engineVersion),
    targetEngineVersion: v.optional(engineVersion),
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html
    // (DBInstanceIdentifier: 1-63 letters, digits or hyphens; first a letter; no trailing
    // or double hyphen). Lowercase because RDS stores it lowercase. For Aurora it names the DB
    // cluster, whose identifier has the same constraints.
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html
    instanceIdentifier: matching(
      /^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$/,
      'must be 1-63 lowercase letters, digits or hyphens, starting with a letter',
    ),
    instanceClass: matching(
      /^[a-z][a-z0-9-]*\.[a-z0-9]+$/,
      'must be an instance class without the "db." prefix, such as "r6g.large"',
    ),
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/CHAP_Storage.html
    // (General Purpose SSD storage for RDS for PostgreSQL: 20 GiB to 64 TiB).
    allocatedStorageGiB: wholeNumber(20, 65536, 'must be 20-65536 GiB'),
    // 0 turns automated backups off, which blue/green with physical replication refuses;
    // RDS allows at most 35 days.
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-creating.html#blue-green-deployments-creating-preparing-postgres
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html (BackupRetentionPeriod)
    backupRetentionDays: wholeNumber(1, 35, 'must be 1-35 (blue/green needs automated backups)'),
    multiAz: v.boolean('must be true or false'),
  }),
  maintenanceWindow: matching(
    WINDOW,
    'must be ddd:hh24:mi-ddd:hh24:mi in UTC, such as "sun:04:00-sun:05:00"',
  ),
  // SwitchoverTimeout: 30 to 3600 seconds, default 300.
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-timeout
  switchoverTimeoutSeconds: wholeNumber(
    30,
    3600,
    'must be 30-3600',
    'must be a whole number of seconds',
  ),
  // Each option of a union carries the union's message: valibot reports the message of the
  // one option whose type matched, when only one did.
  notificationEmail: v.union(
    [v.literal(''), matching(EMAIL, NOTIFICATION_EMAIL)],
    NOTIFICATION_EMAIL,
  ),
  edge: v.strictObject({
    /** HTTPS with this ACM certificate; "" for HTTP only (a demo without a domain). */
    certificateArn: v.union(
      [
        v.literal(''),
        matching(
          /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/,
          CERTIFICATE_ARN,
        ),
      ],
      CERTIFICATE_ARN,
    ),
    // Exact paths (no wildcards) the capture function answers during maintenance.
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html#path-conditions
    capturePaths: v.strictObject(
      Object.fromEntries(
        CAPTURE_ENDPOINTS.map((k) => [k, matching(/^\/[A-Za-z0-9_.~/-]{0,127}$/, CAPTURE_PATH)]),
      ) as Record<CaptureEndpoint, ReturnType<typeof matching>>,
    ),
    /** Per-address rate limits on the capture paths, in an AWS WAF rule group. */
    waf: v.optional(
      v.strictObject({
        /** How far back AWS WAF counts each address's requests. */
        evaluationWindowSeconds: v.optional(
          v.picklist(
            WAF_EVALUATION_WINDOWS,
            `must be one of: ${WAF_EVALUATION_WINDOWS.join(', ')} (seconds)`,
          ),
          300,
        ),
        /** Requests one address may send to each group of paths within the window. */
        requestsPerWindow: v.optional(
          v.strictObject({ tracking: rateLimit(1000), subscriptions: rateLimit(100) }),
          {},
        ),
        /**
         * Adopted platforms only: give the adopted load balancer this app's web ACL. Off unless
         * set, because a load balancer takes one web ACL and associating another replaces the
         * one it has; leave it off and add the rule group to that web ACL instead. The demo
         * load balancer always gets the web ACL.
         * https://docs.aws.amazon.com/waf/latest/developerguide/web-acl-associating-aws-resource.html
         * https://github.com/pulumi/pulumi-aws/issues/4782 (a second association replaces the first)
         */
        associateAdoptedLoadBalancer: v.optional(v.boolean('must be true or false'), false),
      }),
      {},
    ),
    /**
     * Reserved concurrency: a cap on the capture function, so a flood cannot take the
     * account's concurrency, and a floor under the toggle and the writer check, which must
     * run during the switchover whatever else runs.
     */
    reservedConcurrency: v.optional(
      v.strictObject({
        capture: reservedConcurrency(1000, 50),
        maintenanceToggle: reservedConcurrency(20, 5),
        verifyWriter: reservedConcurrency(20, 5),
      }),
      {},
    ),
    /**
     * Serve the demo's listener over plain HTTP when there is no certificate. Off unless set:
     * links in email travel over it, and RFC 8058 one-click unsubscribe requires HTTPS.
     * https://www.rfc-editor.org/rfc/rfc8058
     */
    allowPlainHttp: v.optional(v.boolean('must be true or false'), false),
    /** The maintenance rules take this priority and the next few; lower wins. */
    maintenanceRulePriority: wholeNumber(1, 49990, 'must be 1-49990'),
    /** What the maintenance page promises: "try again after now + this". */
    expectedMaintenanceMinutes: wholeNumber(1, 60, 'must be 1-60'),
  }),
  upgrade: v.strictObject({
    /** Without a deadline in the input, a run never switches over after start + this. */
    deadlineMinutes: wholeNumber(30, 1440, 'must be 30-1440'),
    /** Wait for an operator's approval before the maintenance window starts. */
    requireApproval: v.boolean('must be true or false'),
    /** Green is verified only if blue's oldest replication slot lags less than this. */
    maxReplicationLagMb: wholeNumber(1, 100000, 'must be 1-100000'),
    // EventBridge Scheduler: a one-time at() or a recurring cron(); "" keeps the schedule
    // disabled. https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
    schedule: v.union(
      [
        v.literal(''),
        matching(/^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$/, SCHEDULE),
        matching(/^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$/, SCHEDULE),
      ],
      SCHEDULE,
    ),
    scheduleTimeZone: v.pipe(
      v.string(),
      v.check(isTimeZone, 'must be an IANA time zone such as "UTC"'),
    ),
    /**
     * The quiet gate: before pausing the consumers, wait until the load balancer has served
     * at most this many requests a minute for 3 minutes, re-checking every minute. Left out,
     * there is no gate; set, its traffic alarm is deployed, and `enabled` says whether runs
     * use it unless their input says otherwise. `npm run quiet-window` shows what a quiet
     * minute looks like.
     */
    quietGate: v.optional(
      v.strictObject({
        requestsPerMinute: wholeNumber(1, 10_000_000, 'must be 1-10000000'),
        enabled: v.optional(v.boolean('must be true or false'), false),
        /** What the run does if traffic is not quiet by the gate's limit. */
        onDeadline: v.optional(
          v.picklist(QUIET_GATE_CHOICES, `must be one of: ${QUIET_GATE_CHOICES.join(', ')}`),
          'roll-back',
        ),
        /** The longest the gate waits; the run's deadline bounds it too. */
        maxWaitMinutes: v.optional(
          wholeNumber(1, QUIET_GATE_MAX_WAIT_MINUTES, `must be 1-${QUIET_GATE_MAX_WAIT_MINUTES}`),
          60,
        ),
      }),
    ),
  }),
  alarms: v.strictObject({
    /**
     * A buffered message older than this means its consumer is paused or failing. Longer than
     * a normal switchover pause; far below SQS's 14-day retention, so nothing expires unseen.
     */
    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
    // (MessageRetentionPeriod: at most 1,209,600 s = 14 days)
    maxMessageAgeMinutes: wholeNumber(5, 10080, 'must be 5-10080 (5 minutes to 7 days)'),
  }),
  operatorBypass: v.strictObject({
    // An HTTP field name is an RFC 9110 token.
    headerName: v.optional(
      matching(
        /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}$/,
        'must be an HTTP header name of 1-40 token characters',
      ),
    ),
    // A source-ip rule condition takes at most 5 CIDRs.
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_SourceIpConditionConfig.html
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html#rules-quotas
    sourceCidrs: v.pipe(
      v.array(v.pipe(v.string(), v.check(isCidr, 'must be an IPv4 or IPv6 CIDR'))),
      v.maxLength(5, 'must list at most 5 CIDRs (ALB condition values per rule)'),
    ),
  }),
});

type ParsedConfig = v.InferOutput<typeof schema>;
/** The config with the engine's default versions filled in (parseConfig). */
export type AppConfig = Omit<ParsedConfig, 'database'> & {
  database: ParsedConfig['database'] & { engineVersion: string };
};
export type CapturePaths = AppConfig['edge']['capturePaths'];
export type WafConfig = AppConfig['edge']['waf'];

/** A reservation as Lambda takes it: undefined for none (config 0), never Lambda's 0. */
export function reservation(concurrency: number): number | undefined {
  return concurrency > 0 ? concurrency : undefined;
}

/** Thrown when the configuration is invalid; the message lists every problem found. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid ${CONFIG_CONTEXT_KEY} config:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates raw context (as read from cdk.json) and returns the typed config.
 * Every problem is reported at once, each naming the key and the value received.
 */
export function parseConfig(raw: unknown): AppConfig {
  const parsed = v.safeParse(schema, raw);
  if (!parsed.success) {
    // An array where an object belongs gives one problem per key; say it once.
    throw new ConfigError([...new Set(parsed.issues.map((issue) => problem(raw, issue)))]);
  }
  const config = withDefaultVersions(parsed.output);
  const problems = [
    ...checkVersions(config),
    ...checkWindow(config.maintenanceWindow),
    ...checkEdge(config),
    ...checkPlatform(config),
  ];
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/**
 * Reads the config from a construct tree's context: the one place that does. On the command
 * line, `cdk synth -c quietUpgrade='{...}'` passes a string, which replaces cdk.json's value
 * (https://docs.aws.amazon.com/cdk/v2/guide/context.html): it is read as changes to `shipped`
 * (cdk.json's config), so `{"database":{"engine":"mysql"}}` is the shipped app on MySQL.
 */
export function configFromContext(
  tryGetContext: (key: string) => unknown,
  shipped?: unknown,
): AppConfig {
  const raw = tryGetContext(CONFIG_CONTEXT_KEY);
  if (raw === undefined) {
    throw new ConfigError([`${CONFIG_CONTEXT_KEY} is missing from cdk.json context`]);
  }
  if (typeof raw !== 'string') return parseConfig(raw);
  const changes = parseJson(raw);
  return parseConfig(shipped === undefined ? changes : withChanges(shipped, changes));
}

/**
 * `changes` over `base`: objects merge key by key; anything else (arrays too) replaces. The
 * versions belong to an engine: with another engine, only the versions the changes give are
 * kept (none: the engine's demo pair), never the shipped engine's.
 */
export function withChanges(base: unknown, changes: unknown): unknown {
  const merged = merge(base, changes);
  const db = (changes as { database?: Record<string, unknown> } | null)?.database;
  const baseDb = (base as { database?: Record<string, unknown> } | null)?.database;
  const target = (merged as { database?: Record<string, unknown> } | null)?.database;
  if (isObject(db) && isObject(target) && db.engine !== undefined && db.engine !== baseDb?.engine) {
    if (db.engineVersion === undefined) delete target.engineVersion;
    if (db.targetEngineVersion === undefined) delete target.targetEngineVersion;
  }
  return merged;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function merge(base: unknown, changes: unknown): unknown {
  if (!isObject(base) || !isObject(changes)) return structuredClone(changes);
  const out: Record<string, unknown> = structuredClone(base);
  for (const [key, value] of Object.entries(changes)) out[key] = merge(base[key], value);
  return out;
}

/** The major version, e.g. "16" for PostgreSQL "16.6", "8.0" for MySQL "8.0.40". */
export function majorVersion(version: string, engine: DatabaseEngine = 'postgres'): string {
  return ENGINE_SPECS[engine].major(version);
}

/** RDS parameter group family for an engine version, e.g. "postgres17", "mysql8.4". */
export function parameterGroupFamily(engine: DatabaseEngine, version: string): string {
  return ENGINE_SPECS[engine].family(version);
}

/** Compares engine versions numerically: negative if a < b, 0 if equal, positive if a > b. */
export function compareVersions(a: string, b: string, engine: DatabaseEngine = 'postgres'): number {
  return compareEngineVersions(engine, a, b);
}

/** With no version set, the engine's demo pair: blue's version and the one to upgrade to. */
function withDefaultVersions(config: ParsedConfig): AppConfig {
  const { engineVersion, targetEngineVersion } = config.database;
  if (engineVersion !== undefined)
    return { ...config, database: { ...config.database, engineVersion } };
  const defaults = ENGINE_SPECS[config.database.engine].defaults;
  return {
    ...config,
    database: {
      ...config.database,
      engineVersion: defaults.engineVersion,
      targetEngineVersion: targetEngineVersion ?? defaults.targetEngineVersion,
    },
  };
}

function checkVersions(config: AppConfig): string[] {
  const { engine, engineVersion: current, targetEngineVersion: target } = config.database;
  const spec = ENGINE_SPECS[engine];
  const key = `${CONFIG_CONTEXT_KEY}.database`;
  const malformed = [
    ['engineVersion', current],
    ['targetEngineVersion', target],
  ].flatMap(([name, version]) =>
    version === undefined || spec.versionPattern.test(version)
      ? []
      : [
          `${key}.${name} must be ${spec.versionExample} for engine ${engine}, got: ${show(version)}`,
        ],
  );
  if (malformed.length > 0) return malformed;
  if (target === undefined || compareEngineVersions(engine, target, current) > 0) return [];
  return [
    `${key}.targetEngineVersion must be newer than engineVersion (${current}), got: ${show(target)}`,
  ];
}

function checkEdge(config: AppConfig): string[] {
  const problems: string[] = [];
  const paths = Object.values(config.edge.capturePaths);
  const repeated = paths.filter((p, i) => paths.indexOf(p) !== i);
  if (repeated.length > 0) {
    problems.push(
      `${CONFIG_CONTEXT_KEY}.edge.capturePaths must be five different paths, got: ` +
        `${show(config.edge.capturePaths)}`,
    );
  }
  if (
    config.platform === 'demo' &&
    config.edge.certificateArn === '' &&
    !config.edge.allowPlainHttp
  ) {
    problems.push(
      `${CONFIG_CONTEXT_KEY}.edge.certificateArn must be an ACM certificate ARN, so that the ` +
        'links in email use HTTPS (RFC 8058 one-click unsubscribe requires it), or set ' +
        `edge.allowPlainHttp to true to serve plain HTTP on purpose, got: ${show(config.edge.certificateArn)}`,
    );
  }
  const { headerName, sourceCidrs } = config.operatorBypass;
  if (headerName === undefined && sourceCidrs.length === 0) {
    problems.push(
      `${CONFIG_CONTEXT_KEY}.operatorBypass needs a headerName or sourceCidrs, or operators ` +
        `cannot get past the maintenance page, got: ${show(config.operatorBypass)}`,
    );
  }
  return problems;
}

function checkPlatform(config: AppConfig): string[] {
  if (config.platform !== 'existing') return [];
  const key = `${CONFIG_CONTEXT_KEY}.existing`;
  if (config.existing === undefined) {
    return [
      `${key} must describe the platform to adopt when platform is "existing" ` +
        '(database, network, listener, buffers, consumerTimeoutSeconds), got: (missing)',
    ];
  }
  const { engineVersion: current, targetEngineVersion: target } = config.database;
  const { engine } = config.database;
  const sameFamily =
    target === undefined || majorVersion(target, engine) === majorVersion(current, engine);
  if (!sameFamily && config.existing.database.targetParameterGroupName === undefined) {
    // Aurora's green takes a DB cluster parameter group, with the engine's prerequisites.
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html
    const group =
      engine === 'aurora-mysql'
        ? 'DB cluster parameter group with binlog_format set and event_scheduler OFF'
        : engine === 'mysql'
          ? 'parameter group with event_scheduler OFF'
          : ENGINE_SPECS[engine].level === 'cluster'
            ? 'DB cluster parameter group with rds.logical_replication=1'
            : 'parameter group with rds.logical_replication=1';
    return [
      `${key}.database.targetParameterGroupName must name a ` +
        `${parameterGroupFamily(config.database.engine, target)} ${group} ` +
        `for green (a major upgrade to ${target}), got: (missing)`,
    ];
  }
  return [];
}

function checkWindow(window: string): string[] {
  const key = `${CONFIG_CONTEXT_KEY}.maintenanceWindow`;
  const match = WINDOW.exec(window);
  if (!match) return [];
  const [, startDay = '', startH, startM, endDay = '', endH, endM] = match;
  if (Number(startH) > 23 || Number(endH) > 23 || Number(startM) > 59 || Number(endM) > 59) {
    return [`${key} has an hour above 23 or a minute above 59, got: ${show(window)}`];
  }
  const week = 7 * 24 * 60;
  const start = DAYS.indexOf(startDay) * 1440 + Number(startH) * 60 + Number(startM);
  const end = DAYS.indexOf(endDay) * 1440 + Number(endH) * 60 + Number(endM);
  const minutes = (end - start + week) % week;
  // RDS requires at least 30 minutes.
  // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html (PreferredMaintenanceWindow)
  if (minutes < 30) return [`${key} must last at least 30 minutes, got: ${show(window)}`];
  // A window longer than a day is no longer a quiet-hours window.
  if (minutes > 24 * 60) return [`${key} must last at most 24 hours, got: ${show(window)}`];
  return [];
}

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: value });
    return value !== '';
  } catch {
    return false;
  }
}

function isCidr(value: string): boolean {
  const [ip = '', bits, ...rest] = value.split('/');
  if (bits === undefined || rest.length > 0 || !/^\d{1,3}$/.test(bits)) return false;
  if (isIPv4(ip)) return Number(bits) <= 32;
  if (isIPv6(ip)) return Number(bits) <= 128;
  return false;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ConfigError([`${CONFIG_CONTEXT_KEY} must be a JSON object, got: ${show(text)}`]);
  }
}

/** One problem, naming the key and showing the value received. */
function problem(raw: unknown, issue: v.InferIssue<typeof schema>): string {
  const keys = (issue.path ?? []).map((item) => String(item.key));
  const path = [CONFIG_CONTEXT_KEY, ...keys].join('.');
  // valibot reports an unknown key, and a missing one, on the object with the key in the path.
  if (issue.path?.at(-1)?.origin === 'key') {
    const parentKeys = keys.slice(0, -1);
    const parentPath = [CONFIG_CONTEXT_KEY, ...parentKeys].join('.');
    const parent = valueAt(raw, parentKeys);
    // valibot takes an array for an object, then finds every key missing.
    if (Array.isArray(parent)) return `${parentPath} must be an object, got: ${show(parent)}`;
    if (issue.expected === 'never') {
      return `${parentPath} has unknown key(s): ${unknownKeys(parent, parentKeys).join(', ')}`;
    }
    return `${path} is required, got: (missing)`;
  }
  return `${path} ${issue.message}, got: ${show(valueAt(raw, keys))}`;
}

/**
 * The keys of the object at `keys` that its schema does not know; valibot names only the
 * first one it meets.
 */
function unknownKeys(value: unknown, keys: readonly string[]): string[] {
  let node: unknown = schema;
  for (const key of keys) node = entriesOf(node)[key];
  const known = entriesOf(node);
  return Object.keys(value ?? {}).filter((key) => !Object.hasOwn(known, key));
}

/** The entries of an object schema, through `optional()`. */
function entriesOf(node: unknown): Record<string, unknown> {
  const schema = node as { entries?: Record<string, unknown>; wrapped?: unknown } | undefined;
  if (schema?.entries !== undefined) return schema.entries;
  return schema?.wrapped === undefined ? {} : entriesOf(schema.wrapped);
}
