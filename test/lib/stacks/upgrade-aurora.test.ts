import type { Stack } from 'aws-cdk-lib';
import { MAX_FENCE_POLLS } from '../../../lib/constructs/fence-old-blue';
import { ENGINE_SPECS, type DatabaseEngine } from '../../../lib/engines';
import { allStates, definitionOf, resolveIn } from '../../../rehearsal/definition';
import { ACCOUNT, REGION } from '../../../rehearsal/synthesized';
import { adoptExisting, nagViolations, synthApp, templateOf } from '../../helpers/app';

const AURORA = ['aurora-postgresql', 'aurora-mysql'] as const;
const INSTANCE = ['postgres', 'mysql'] as const;
const MODES = ['demo', 'existing'] as const;
type Mode = (typeof MODES)[number];

/** The groups an adopted platform names, per engine: distinct, so each grant can be traced. */
const ADOPTED_GROUPS: Record<DatabaseEngine, [string, string]> = {
  postgres: ['platform-db-pg16', 'platform-db-pg17'],
  mysql: ['platform-db-mysql80', 'platform-db-mysql84'],
  'aurora-postgresql': ['platform-db-apg16', 'platform-db-apg17'],
  'aurora-mysql': ['platform-db-ams80', 'platform-db-ams80-green'],
};

function build(engine: DatabaseEngine, mode: Mode) {
  return synthApp((c) => {
    const db = c.database as Record<string, unknown>;
    db.engine = engine;
    Object.assign(db, ENGINE_SPECS[engine].defaults);
    if (mode === 'existing') {
      adoptExisting(c);
      const existing = (c.existing as { database: Record<string, string> }).database;
      [existing.parameterGroupName, existing.targetParameterGroupName] = ADOPTED_GROUPS[engine];
    }
  });
}
type Built = ReturnType<typeof build>;

/** Blue's and green's parameter group names as deployed (demo: CloudFormation's names). */
function groupNames(built: Built, engine: DatabaseEngine): { blue: string; target: string } {
  const { database } = built;
  if (database === undefined) {
    const [blue, target] = ADOPTED_GROUPS[engine];
    return { blue, target };
  }
  const name = (ref: string | undefined) =>
    String(resolveIn(database, database.resolve(ref ?? '')));
  return {
    blue: name(database.database.parameterGroup.ref),
    target: name(database.database.targetParameterGroup?.ref),
  };
}

type Statement = {
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
};

/** The statements of the policies of the role whose logical id starts with `role`. */
function statementsOf(stack: Stack, role: string): Statement[] {
  return Object.entries(templateOf(stack).findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.startsWith(`${role}DefaultPolicy`))
    .flatMap(
      ([, p]) =>
        (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties
          .PolicyDocument.Statement,
    );
}

/** Each RDS action the role allows, with the resources it is allowed on, resolved, sorted. */
function rdsGrants(stack: Stack, role: string): Record<string, string[]> {
  const grants: Record<string, Set<string>> = {};
  for (const s of statementsOf(stack, role)) {
    const resources = [s.Resource].flat().map((r) => String(resolveIn(stack, r)));
    for (const action of [s.Action].flat().filter((a) => a.startsWith('rds:'))) {
      for (const r of resources) (grants[action] ??= new Set()).add(r);
    }
  }
  return Object.fromEntries(
    Object.entries(grants)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([action, rs]) => [action, [...rs].sort()]),
  );
}

const ROLES = {
  preflight: 'PreflightRole',
  verifyGreen: 'VerifyGreenRole',
  verifyWriter: 'VerifyWriterRole',
  restoreOldBlue: 'RestoreOldBlueRole',
  deletionProtection: 'DeletionProtectionRole',
  watchSwitchover: 'WatchSwitchoverRole',
  inspect: 'WatchdogInspectRole',
  runbook: 'RunbookStateMachineRole',
  watchdog: 'WatchdogStateMachineRole',
} as const;
type RoleKey = keyof typeof ROLES;

const ARN = `arn:aws:rds:${REGION}:${ACCOUNT}:`;
const SOURCE = 'platform-db';
const sorted = (...rs: string[]) => [...new Set(rs)].sort();
const byAction = (entries: [string[], string[]][]) => {
  const out: Record<string, string[]> = {};
  for (const [actions, resources] of entries) {
    for (const a of actions) out[a] = sorted(...(out[a] ?? []), ...resources);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
};

/**
 * What each role may do in RDS, written out from the Service Authorization Reference and the
 * RDS and Aurora guides' blue/green "authorizing access" pages, independently of lib/: a grant
 * the code adds or drops, or an ARN of the wrong type, makes the comparison fail.
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-authorizing-access.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-authorizing-access.html
 */
function expectedGrants(
  engine: DatabaseEngine,
  groups: { blue: string; target: string },
): Record<RoleKey, Record<string, string[]>> {
  const any = (type: string) => `${ARN}${type}:*`;
  const deployments = any('deployment');
  const groupNames = sorted(groups.blue, groups.target);
  const mysqlLike = engine === 'mysql' || engine === 'aurora-mysql';
  if (ENGINE_SPECS[engine].level === 'cluster') {
    const cluster = (n: string) => `${ARN}cluster:${n}`;
    const group = (n: string) => `${ARN}cluster-pg:${n}`;
    const former = [SOURCE, `${SOURCE}-old1`, `${SOURCE}-failed1`].map(cluster);
    const copies = groupNames.flatMap((g) => [group(`${g}-restore`), group(`${g}-fence`)]);
    return {
      preflight: byAction([
        [['rds:DescribeDBClusters'], former],
        // Aurora reads green's group for both engines.
        [['rds:DescribeDBClusterParameters'], groupNames.map(group)],
        [['rds:DescribeDBInstances'], [any('db')]],
        [
          [
            'rds:DescribeBlueGreenDeployments',
            'rds:DescribeDBEngineVersions',
            'rds:DescribeIntegrations',
            'rds:DescribeDBProxies',
            'rds:DescribeDBProxyTargets',
          ],
          ['*'],
        ],
      ]),
      verifyGreen: byAction([
        [['rds:DescribeBlueGreenDeployments'], [deployments]],
        [['rds:DescribeDBClusters'], [any('cluster')]],
        [['rds:DescribeDBInstances'], ['*']],
      ]),
      verifyWriter: byAction([[['rds:DescribeDBClusters'], former]]),
      restoreOldBlue: byAction([
        [['rds:DescribeDBClusters'], former],
        [['rds:ModifyDBCluster'], [...former, ...copies]],
        [['rds:DescribeDBInstances', 'rds:RebootDBInstance'], [any('db')]],
        [['rds:CopyDBClusterParameterGroup'], [...groupNames.map(group), ...copies]],
        [['rds:ModifyDBClusterParameterGroup'], copies],
      ]),
      deletionProtection: byAction([
        [['rds:DescribeBlueGreenDeployments'], [deployments]],
        [['rds:DescribeDBClusters', 'rds:ModifyDBCluster'], [any('cluster')]],
      ]),
      watchSwitchover: byAction([[['rds:DescribeBlueGreenDeployments'], [deployments]]]),
      inspect: byAction([
        [['rds:DescribeBlueGreenDeployments'], ['*']],
        [['rds:DescribeDBClusters'], [cluster(SOURCE), cluster(`${SOURCE}-failed1`)]],
      ]),
      runbook: byAction([
        [['rds:CreateBlueGreenDeployment'], [deployments, cluster(SOURCE), group(groups.target)]],
        [['rds:CreateDBCluster'], [any('cluster'), group(groups.target), any('og'), any('subgrp')]],
        [['rds:CreateDBInstance'], ['db', 'cluster', 'pg', 'og', 'subgrp'].map(any)],
        [['rds:CreateDBClusterEndpoint'], [any('cluster'), any('cluster-endpoint')]],
        [['rds:AddTagsToResource'], ['cluster', 'db', 'cluster-endpoint', 'deployment'].map(any)],
        [['rds:DescribeBlueGreenDeployments'], ['*', deployments]],
        [['rds:SwitchoverBlueGreenDeployment', 'rds:DeleteBlueGreenDeployment'], [deployments]],
        [['rds:ModifyDBCluster', 'rds:PromoteReadReplicaDBCluster'], [any('cluster')]],
        [['rds:DeleteDBCluster'], [any('cluster')]],
        [['rds:DeleteDBInstance'], [any('db')]],
        [['rds:DeleteDBClusterEndpoint'], [any('cluster-endpoint')]],
      ]),
      watchdog: byAction([
        [['rds:DeleteBlueGreenDeployment'], [deployments]],
        [['rds:DeleteDBCluster'], [any('cluster')]],
        [['rds:DeleteDBInstance'], [any('db')]],
        [['rds:DeleteDBClusterEndpoint'], [any('cluster-endpoint')]],
      ]),
    };
  }
  const db = (n: string) => `${ARN}db:${n}`;
  const group = (n: string) => `${ARN}pg:${n}`;
  const former = [SOURCE, `${SOURCE}-old1`, `${SOURCE}-failed1`].map(db);
  const copies = groupNames.flatMap((g) => [group(`${g}-restore`), group(`${g}-fence`)]);
  return {
    preflight: byAction([
      [['rds:DescribeDBInstances'], former],
      [['rds:DescribeDBParameters'], (mysqlLike ? groupNames : [groups.blue]).map(group)],
      [
        [
          'rds:DescribeBlueGreenDeployments',
          'rds:DescribeDBEngineVersions',
          'rds:DescribeDBProxies',
          'rds:DescribeDBProxyTargets',
        ],
        ['*'],
      ],
    ]),
    verifyGreen: byAction([
      [['rds:DescribeBlueGreenDeployments'], [deployments]],
      [['rds:DescribeDBInstances'], [any('db')]],
    ]),
    verifyWriter: byAction([[['rds:DescribeDBInstances'], former]]),
    restoreOldBlue: byAction([
      [['rds:DescribeDBInstances', 'rds:RebootDBInstance'], former],
      [['rds:ModifyDBInstance'], [...former, ...copies]],
      [['rds:CopyDBParameterGroup'], [...groupNames.map(group), ...copies]],
      [['rds:ModifyDBParameterGroup'], copies],
    ]),
    deletionProtection: byAction([
      [['rds:DescribeBlueGreenDeployments'], [deployments]],
      [['rds:DescribeDBInstances', 'rds:ModifyDBInstance'], [any('db')]],
    ]),
    watchSwitchover: byAction([[['rds:DescribeBlueGreenDeployments'], [deployments]]]),
    inspect: byAction([
      [['rds:DescribeBlueGreenDeployments'], ['*']],
      [['rds:DescribeDBInstances'], [db(SOURCE), db(`${SOURCE}-failed1`)]],
    ]),
    runbook: byAction([
      [['rds:CreateBlueGreenDeployment'], [deployments, db(SOURCE), any('pg')]],
      [
        ['rds:AddTagsToResource', 'rds:CreateDBInstanceReadReplica'],
        ['db', 'deployment', 'pg', 'subgrp', 'og'].map(any),
      ],
      [['rds:DescribeBlueGreenDeployments'], ['*', deployments]],
      [['rds:SwitchoverBlueGreenDeployment', 'rds:DeleteBlueGreenDeployment'], [deployments]],
      [['rds:ModifyDBInstance', 'rds:PromoteReadReplica', 'rds:DeleteDBInstance'], [any('db')]],
    ]),
    watchdog: byAction([
      [['rds:DeleteBlueGreenDeployment'], [deployments]],
      [['rds:DeleteDBInstance'], [any('db')]],
    ]),
  };
}

/** The actions that exist only for RDS DB instances, and only for Aurora DB clusters. */
const INSTANCE_ONLY = [
  'rds:DescribeDBParameters',
  'rds:ModifyDBInstance',
  'rds:CopyDBParameterGroup',
  'rds:ModifyDBParameterGroup',
  'rds:CreateDBInstanceReadReplica',
  'rds:PromoteReadReplica',
];
const CLUSTER_ONLY = /^rds:\w*Cluster/;

/** Every RDS action and resource the stack's policies name. */
function everyGrant(stack: Stack): { actions: string[]; resources: string[] } {
  const statements = Object.values(templateOf(stack).findResources('AWS::IAM::Policy')).flatMap(
    (p) =>
      (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties
        .PolicyDocument.Statement,
  );
  const rds = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('rds:')));
  return {
    actions: [...new Set(rds.flatMap((s) => [s.Action].flat()))].filter((a) =>
      a.startsWith('rds:'),
    ),
    resources: rds.flatMap((s) => [s.Resource].flat().map((r) => String(resolveIn(stack, r)))),
  };
}

type Widget = { type: string; properties: { title?: string; metrics?: unknown[][] } };
function dashboardWidgets(stack: Stack): Widget[] {
  const [dashboard] = Object.values(templateOf(stack).findResources('AWS::CloudWatch::Dashboard'));
  const body = (dashboard as { Properties: { DashboardBody: unknown } }).Properties.DashboardBody;
  return (JSON.parse(String(resolveIn(stack, body))) as { widgets: Widget[] }).widgets;
}

const postgresRunbook = definitionOf(build('postgres', 'demo').upgrade, 'RunbookStateMachine');

describe.each(AURORA)('the app on %s', (engine) => {
  describe.each(MODES)('platform %s', (mode) => {
    const built = build(engine, mode);
    const { upgrade } = built;
    const groups = groupNames(built, engine);
    const runbook = definitionOf(upgrade, 'RunbookStateMachine');

    it('synthesizes every stack with no unacknowledged cdk-nag finding', () => {
      const stacks = [built.database, built.buffers, built.edge, upgrade].filter(
        (s): s is NonNullable<typeof s> => s !== undefined,
      );
      expect(stacks).toHaveLength(mode === 'demo' ? 4 : 2);
      for (const stack of stacks) expect(nagViolations(stack)).toEqual([]);
    });

    it("plans the cluster: its ARN as the source, green's DB cluster parameter group", () => {
      const plan = upgrade.planDefaults;
      expect(resolveIn(upgrade, upgrade.resolve(plan.sourceArn))).toBe(`${ARN}cluster:${SOURCE}`);
      expect(plan.sourceIdentifier).toBe(SOURCE);
      expect(plan.engine).toBe(engine);
      expect(resolveIn(upgrade, upgrade.resolve(plan.targetParameterGroupName))).toBe(
        groups.target,
      );
      if (built.database !== undefined) {
        // The demo's own DB cluster parameter group, not a DB parameter group (the resolver
        // names a group "<stack>-<logical id>", lowercase, as CloudFormation does).
        const clusterGroups = Object.keys(
          templateOf(built.database).findResources('AWS::RDS::DBClusterParameterGroup'),
        ).map((id) => `QuietUpgradeDatabase-${id}`.toLowerCase());
        expect(clusterGroups).toContain(groups.target);
      }
      // The functions trust the same values (DEPLOYED_RESOURCES).
      const preflight = Object.values(
        templateOf(upgrade).findResources('AWS::Lambda::Function', {
          Properties: { Description: 'Checks every blue/green prerequisite before an upgrade' },
        }),
      );
      expect(preflight).toHaveLength(1);
      const env = (
        preflight[0] as { Properties: { Environment: { Variables: Record<string, unknown> } } }
      ).Properties.Environment.Variables;
      const deployed = JSON.parse(String(resolveIn(upgrade, env.DEPLOYED_RESOURCES))) as Record<
        string,
        unknown
      >;
      expect(deployed).toMatchObject({
        engine,
        sourceIdentifier: SOURCE,
        sourceArn: `${ARN}cluster:${SOURCE}`,
        targetParameterGroupName: groups.target,
      });
    });

    it('creates green with TargetDBClusterParameterGroupName, never TargetDBParameterGroupName', () => {
      const create = allStates(runbook).get('Create blue-green deployment');
      expect(create?.Resource).toBe('arn:aws:states:::aws-sdk:rds:createBlueGreenDeployment');
      expect(create?.Parameters).toEqual({
        'BlueGreenDeploymentName.$': '$.blueGreen.name',
        'Source.$': '$.plan.sourceArn',
        'TargetEngineVersion.$': '$.plan.targetEngineVersion',
        'TargetDBClusterParameterGroupName.$': '$.plan.targetParameterGroupName',
        Tags: [{ Key: 'quiet-upgrade:execution', 'Value.$': '$$.Execution.Name' }],
      });
    });

    it('keeps every state name of the runbook, and adds the fence of old blue: prepared before the page, applied before each delete after a switchover', () => {
      const fence = (prefix: string) => [
        `${prefix}: old blue not fenced yet`,
        `${prefix}: start counting fence steps`,
        `${prefix}: fence old blue`,
        `${prefix}: count fence steps`,
        `${prefix}: is old blue fenced?`,
        `${prefix}: wait for old blue's fence`,
        `Note: ${prefix.toLowerCase()}: old blue was not fenced in time`,
      ];
      expect([...allStates(runbook).keys()].sort()).toEqual(
        [
          ...allStates(postgresRunbook).keys(),
          ...fence('Clean up'),
          ...fence('Restore'),
          "Prepare old blue's fence",
          "Prepare old blue's fence: skipped",
        ].sort(),
      );
      // Each fence loop is bounded as historyWorstCase counts it.
      for (const prefix of ['Clean up', 'Restore']) {
        const choice = allStates(runbook).get(`${prefix}: is old blue fenced?`) as {
          Choices: { Variable?: string; NumericGreaterThanEquals?: number }[];
        };
        expect(choice.Choices).toContainEqual(
          expect.objectContaining({
            Variable: '$.fencePoll.count',
            NumericGreaterThanEquals: MAX_FENCE_POLLS,
          }),
        );
      }
    });

    it.each(Object.entries(ROLES) as [RoleKey, string][])(
      'lets %s do exactly its cluster calls, on cluster ARNs',
      (key, role) => {
        expect(rdsGrants(upgrade, role)).toEqual(expectedGrants(engine, groups)[key]);
      },
    );

    it('holds switchover and delete to its own deployments', () => {
      for (const role of [ROLES.runbook, ROLES.watchdog]) {
        const own = statementsOf(upgrade, role).filter((s) =>
          [s.Action].flat().some((a) => /^rds:(Switchover|Delete)BlueGreenDeployment$/.test(a)),
        );
        expect(own.length).toBeGreaterThan(0);
        for (const s of own) {
          expect(s.Condition).toEqual({
            Null: { 'aws:ResourceTag/quiet-upgrade:execution': 'false' },
          });
        }
      }
    });

    it('grants no instance-only action, and names no DB instance or DB parameter group by name', () => {
      const { actions, resources } = everyGrant(upgrade);
      expect(actions.filter((a) => INSTANCE_ONLY.includes(a))).toEqual([]);
      // db: only as "*" (green's, or the cluster's instances), pg: only as "*" (green's
      // instances' groups, which RDS chooses).
      expect(resources.filter((r) => /:(db|pg):(?!\*$)/.test(r))).toEqual([]);
    });

    it("graphs the cluster's lag by cluster and writer role, not by instance", () => {
      const widgets = dashboardWidgets(upgrade);
      const rows = widgets.slice(-3).map((w) => ({
        title: w.properties.title,
        metrics: JSON.stringify(w.properties.metrics),
      }));
      const lag =
        engine === 'aurora-mysql'
          ? {
              green: "Binlog replica lag (s): green's writer behind blue",
              greenMetric: `SEARCH('{AWS/RDS,DBClusterIdentifier,Role} MetricName=\\"AuroraBinlogReplicaLag\\" Role=\\"WRITER\\" ${SOURCE}', 'Maximum', 60)`,
              blue: "Binary log size (bytes) on blue's writer",
              blueMetric: 'SumBinaryLogSize',
            }
          : {
              green: "Oldest replication slot lag (bytes) on blue's writer",
              greenMetric: `["AWS/RDS","OldestReplicationSlotLag","DBClusterIdentifier","${SOURCE}","Role","WRITER"`,
              blue: "Replication slot disk usage (bytes) on blue's writer",
              blueMetric: 'ReplicationSlotDiskUsage',
            };
      expect(rows.map((r) => r.title)).toEqual([lag.green, lag.blue, 'Database connections']);
      expect(rows[0]?.metrics).toContain(lag.greenMetric);
      expect(rows[1]?.metrics).toContain(
        `["AWS/RDS","${lag.blueMetric}","DBClusterIdentifier","${SOURCE}","Role","WRITER"`,
      );
      expect(rows[2]?.metrics).toContain(
        `SEARCH('{AWS/RDS,DBClusterIdentifier,Role} MetricName=\\"DatabaseConnections\\" ${SOURCE}', 'Maximum', 60)`,
      );
      // No database metric by instance: Aurora's instances change roles.
      expect(JSON.stringify(widgets)).not.toContain('DBInstanceIdentifier');
      expect(JSON.stringify(widgets)).not.toMatch(/"ReplicaLag"|BinLogDiskUsage/);
    });
  });
});

describe.each(INSTANCE)('the app on %s (a DB instance)', (engine) => {
  describe.each(MODES)('platform %s', (mode) => {
    const built = build(engine, mode);
    const { upgrade } = built;
    const groups = groupNames(built, engine);

    it.each(Object.entries(ROLES) as [RoleKey, string][])(
      'lets %s do exactly its instance calls, as before Aurora',
      (key, role) => {
        expect(rdsGrants(upgrade, role)).toEqual(expectedGrants(engine, groups)[key]);
      },
    );

    it('grants no cluster action and names no cluster', () => {
      const { actions, resources } = everyGrant(upgrade);
      expect(actions.filter((a) => CLUSTER_ONLY.test(a))).toEqual([]);
      expect(resources.filter((r) => /:cluster(-pg|-endpoint)?:/.test(r))).toEqual([]);
    });

    it('creates green with TargetDBParameterGroupName', () => {
      const create = allStates(definitionOf(upgrade, 'RunbookStateMachine')).get(
        'Create blue-green deployment',
      );
      expect(Object.keys(create?.Parameters ?? {})).toEqual([
        'BlueGreenDeploymentName.$',
        'Source.$',
        'TargetEngineVersion.$',
        'TargetDBParameterGroupName.$',
        'Tags',
      ]);
    });

    it("graphs the instance's lag by instance", () => {
      const widgets = dashboardWidgets(upgrade);
      expect(widgets.slice(-3).map((w) => w.properties.title)).toEqual([
        'Replica lag (s): green behind blue',
        engine === 'mysql'
          ? 'Binary log disk usage (bytes) on blue'
          : 'Oldest replication slot lag (bytes) on blue',
        'Database connections',
      ]);
      expect(JSON.stringify(widgets)).not.toContain('DBClusterIdentifier');
    });
  });
});
