import type { Stack } from 'aws-cdk-lib';
import { NodeFunction } from '../../../lib/constructs/node-function';
import { ENGINE_SPECS, type DatabaseEngine } from '../../../lib/engines';
import { adoptExisting, nagViolations, synthApp, templateOf } from '../../helpers/app';

// The whole app, as `cdk synth -c quietUpgrade='{"database":{"engine":"NAME"}}'` builds it,
// for each RDS DB instance engine, on the demo platform and on an adopted one (the Aurora
// engines: upgrade-aurora.test.ts).
const RUNBOOK = ['postgres', 'mysql'] as const;
const MODES = ['demo', 'existing'] as const;

type Statement = { Action: string | string[]; Resource: unknown };

function build(engine: DatabaseEngine, mode: (typeof MODES)[number]) {
  return synthApp((c) => {
    const db = c.database as Record<string, unknown>;
    db.engine = engine;
    Object.assign(db, ENGINE_SPECS[engine].defaults);
    if (mode === 'existing') {
      adoptExisting(c);
      // An adopted MySQL instance's groups are in the MySQL families.
      if (engine === 'mysql') {
        const existing = (c.existing as { database: Record<string, string> }).database;
        existing.parameterGroupName = 'platform-db-mysql80';
        existing.targetParameterGroupName = 'platform-db-mysql84';
      }
    }
  });
}

/** The function folders the upgrade stack deploys, by construct id. */
function functionDirs(stack: Stack): Record<string, string> {
  return Object.fromEntries(
    stack.node
      .findAll()
      .filter((c): c is NodeFunction => c instanceof NodeFunction)
      .map((f) => [f.node.id, f.functionDir]),
  );
}

/** The resources `action` is allowed on in the role policy of the construct `id`. */
function allowed(stack: Stack, id: string, action: string): string[] {
  const policies = templateOf(stack).findResources('AWS::IAM::Policy');
  const statements = Object.entries(policies)
    .filter(([logicalId]) => logicalId.startsWith(id))
    .flatMap(
      ([, p]) =>
        (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties
          .PolicyDocument.Statement,
    );
  return statements
    .filter((s) => [s.Action].flat().includes(action))
    .flatMap((s) => [s.Resource].flat())
    .map((r) => JSON.stringify(r));
}

describe.each(RUNBOOK)('the app on %s', (engine) => {
  describe.each(MODES)('platform %s', (mode) => {
    const built = build(engine, mode);
    const stacks = [built.database, built.buffers, built.edge, built.upgrade].filter(
      (s): s is NonNullable<typeof s> => s !== undefined,
    );

    it('synthesizes every stack with no unacknowledged cdk-nag finding', () => {
      expect(stacks.map((s) => s.stackName)).toEqual(
        mode === 'demo'
          ? [
              'QuietUpgradeDatabase',
              'QuietUpgradeBuffers',
              'QuietUpgradeEdge',
              'QuietUpgradeOrchestration',
            ]
          : ['QuietUpgradeEdge', 'QuietUpgradeOrchestration'],
      );
      for (const stack of stacks) expect(nagViolations(stack)).toEqual([]);
      expect(built.config.database.engine).toBe(engine);
    });

    it("runs the writer check in the engine's own function, with no database named", () => {
      const dirs = functionDirs(built.upgrade);
      expect(dirs.VerifyWriter).toBe(engine === 'mysql' ? 'verify-writer-mysql' : 'verify-writer');
      const writer = templateOf(built.upgrade).findResources('AWS::Lambda::Function', {
        Properties: {
          Description: 'Verifies the new writer after switchover: version, status, writable',
        },
      });
      const env = Object.values(writer).map(
        (f) =>
          (f as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties
            .Environment.Variables,
      );
      expect(env).toHaveLength(1);
      expect(Object.keys(env[0] ?? {})).not.toContain('DB_NAME');
      // The plan the functions trust names the engine.
      expect(JSON.stringify(env[0]?.DEPLOYED_RESOURCES)).toContain(`\\"engine\\":\\"${engine}\\"`);
    });

    it("lets preflight read the parameter groups the engine's checks read, and no other", () => {
      const groups = allowed(built.upgrade, 'Preflight', 'rds:DescribeDBParameters');
      const blue = mode === 'demo' ? undefined : built.config.existing?.database.parameterGroupName;
      const target =
        mode === 'demo' ? undefined : built.config.existing?.database.targetParameterGroupName;
      // PostgreSQL reads blue's group (rds.logical_replication); MySQL also green's
      // (event_scheduler), and only MySQL.
      expect(groups).toHaveLength(engine === 'mysql' ? 2 : 1);
      if (blue !== undefined) expect(groups.join(' ')).toContain(`:pg:${blue}`);
      if (target !== undefined) {
        expect(groups.join(' ').includes(`:pg:${target}`)).toBe(engine === 'mysql');
      }
    });
  });
});
