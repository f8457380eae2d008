import { App } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { type AppConfig, CONFIG_CONTEXT_KEY, parseConfig } from '../../lib/config';
import type { DatabaseEngine } from '../../lib/engines';
import { ENGINE_SPECS } from '../../lib/engines';
import { DatabaseStack } from '../../lib/stacks/database-stack';
import cdkJson from '../../cdk.json';
import { defaultRawConfig, nagViolations, templateOf } from '../helpers/app';

// parseConfig refuses engines the runbook does not speak yet, so these tests build the
// database stack alone, from the shipped (postgres) config with the engine swapped in.
type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

interface Versions {
  readonly engineVersion: string;
  readonly targetEngineVersion?: string;
}

function databaseStack(engine: DatabaseEngine, versions: Versions): DatabaseStack {
  const shipped = parseConfig(defaultRawConfig());
  const config: AppConfig = {
    ...shipped,
    database: {
      ...shipped.database,
      engine,
      engineVersion: versions.engineVersion,
      targetEngineVersion: versions.targetEngineVersion,
    },
  };
  const app = new App({
    context: { ...cdkJson.context, [CONFIG_CONTEXT_KEY]: defaultRawConfig() },
    builtinCloudFormationValidation: false,
  });
  return new DatabaseStack(app, 'QuietUpgradeDatabase', {
    env: { region: shipped.env.region },
    config,
  });
}

function onlyResource(template: Template, type: string): [string, Record<string, unknown>] {
  const found = Object.entries(template.findResources(type) as Resources);
  expect(found).toHaveLength(1);
  const [logicalId, resource] = found[0] ?? ['', { Properties: {} }];
  return [logicalId, resource.Properties];
}

/** The logical id of the one group of `type` in `family`. */
function groupId(template: Template, type: string, family: string): string {
  const ids = Object.keys(template.findResources(type, { Properties: { Family: family } }));
  expect(ids).toHaveLength(1);
  return ids[0] ?? '';
}

/** The properties of the one group of `type` in `family`. */
function groupIn(template: Template, type: string, family: string): Record<string, unknown> {
  const found = Object.values(
    template.findResources(type, { Properties: { Family: family } }) as Resources,
  );
  expect(found).toHaveLength(1);
  return found[0]?.Properties ?? {};
}

/** The keys whose values differ between two property bags. */
function changedKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).sort();
}

/** Each engine: what blue/green needs, where, and what the bump after an upgrade changes. */
const CASES = [
  {
    engine: 'mysql',
    resourceType: 'AWS::RDS::DBInstance',
    groupType: 'AWS::RDS::DBParameterGroup',
    groupRef: 'DBParameterGroupName',
    identifier: 'DBInstanceIdentifier',
    before: { engineVersion: '8.0.42', targetEngineVersion: '8.4.5' },
    minor: '8.0.43',
    prerequisites: { require_secure_transport: '1', event_scheduler: 'OFF' },
    // Properties whose change replaces a DB instance.
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-rds-dbinstance.html
    replacing: [
      'DBInstanceIdentifier',
      'DBName',
      'DBSubnetGroupName',
      'Engine',
      'KmsKeyId',
      'MasterUsername',
      'StorageEncrypted',
    ],
  },
  {
    engine: 'aurora-postgresql',
    resourceType: 'AWS::RDS::DBCluster',
    groupType: 'AWS::RDS::DBClusterParameterGroup',
    groupRef: 'DBClusterParameterGroupName',
    identifier: 'DBClusterIdentifier',
    before: { engineVersion: '16.6', targetEngineVersion: '17.4' },
    minor: '16.8',
    prerequisites: {
      'rds.logical_replication': '1',
      synchronous_commit: 'on',
      'rds.force_ssl': '1',
      max_replication_slots: '10',
      max_logical_replication_workers: '10',
      max_worker_processes: '21',
    },
    // Properties whose change replaces a DB cluster.
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-rds-dbcluster.html
    replacing: [
      'DBClusterIdentifier',
      'DatabaseName',
      'DBSubnetGroupName',
      'Engine',
      'EngineMode',
      'KmsKeyId',
      'MasterUsername',
      'StorageEncrypted',
    ],
  },
  {
    engine: 'aurora-mysql',
    resourceType: 'AWS::RDS::DBCluster',
    groupType: 'AWS::RDS::DBClusterParameterGroup',
    groupRef: 'DBClusterParameterGroupName',
    identifier: 'DBClusterIdentifier',
    // A major target, to prove the target family's group; the shipped demo pair is a minor one.
    before: {
      engineVersion: '8.0.mysql_aurora.3.10.0',
      targetEngineVersion: '8.4.mysql_aurora.8.4.7',
    },
    minor: '8.0.mysql_aurora.3.12.0',
    prerequisites: { binlog_format: 'ROW', require_secure_transport: 'ON', event_scheduler: 'OFF' },
    replacing: [
      'DBClusterIdentifier',
      'DatabaseName',
      'DBSubnetGroupName',
      'Engine',
      'EngineMode',
      'KmsKeyId',
      'MasterUsername',
      'StorageEncrypted',
    ],
  },
] as const;

describe.each(CASES)('DatabaseStack for $engine', (c) => {
  const spec = ENGINE_SPECS[c.engine];
  const stack = databaseStack(c.engine, c.before);
  const template = templateOf(stack);
  const blueFamily = spec.family(c.before.engineVersion);
  const greenFamily = spec.family(c.before.targetEngineVersion);

  it('has no unacknowledged cdk-nag AwsSolutions findings', () => {
    expect(nagViolations(stack)).toEqual([]);
  });

  it('sets the blue/green prerequisites in the running and the target parameter groups', () => {
    expect(greenFamily).not.toBe(blueFamily);
    for (const family of [blueFamily, greenFamily]) {
      expect(groupIn(template, c.groupType, family).Parameters).toMatchObject(c.prerequisites);
    }
  });

  it('runs blue on the running family group and exports the target family group for green', () => {
    const [, resource] = onlyResource(template, c.resourceType);
    expect(resource.EngineVersion).toBe(c.before.engineVersion);
    expect(resource[c.groupRef]).toEqual({ Ref: groupId(template, c.groupType, blueFamily) });
    expect(template.findOutputs('TargetParameterGroupName')).toEqual({
      TargetParameterGroupName: expect.objectContaining({
        Value: { Ref: groupId(template, c.groupType, greenFamily) },
      }),
    });
  });

  it('meets the shared prerequisites: backups, encryption, deletion protection, a generated secret', () => {
    const [, resource] = onlyResource(template, c.resourceType);
    expect(resource).toMatchObject({
      BackupRetentionPeriod: 7,
      StorageEncrypted: true,
      DeletionProtection: true,
      [c.identifier]: 'platform-db',
    });
    expect(resource.ManageMasterUserPassword).toBeUndefined();
    const [secretId] = onlyResource(template, 'AWS::SecretsManager::Secret');
    expect(JSON.stringify(resource.MasterUserPassword)).toContain(secretId);
  });

  describe('engine version bump after an upgrade', () => {
    // After the switchover the operator records green's version as blue's, with no target.
    const after = templateOf(
      databaseStack(c.engine, { engineVersion: c.before.targetEngineVersion }),
    );

    it('updates in place: same logical id and identifier, only the version and group change', () => {
      const [beforeId, beforeProps] = onlyResource(template, c.resourceType);
      const [afterId, afterProps] = onlyResource(after, c.resourceType);
      expect(afterId).toBe(beforeId);
      expect(afterProps[c.identifier]).toBe(beforeProps[c.identifier]);
      expect(afterProps.EngineVersion).toBe(c.before.targetEngineVersion);
      for (const key of c.replacing) expect(afterProps[key]).toEqual(beforeProps[key]);
      expect(changedKeys(beforeProps, afterProps)).toEqual(['EngineVersion', c.groupRef].sort());
    });

    it('moves onto the group green already used, and drops the old one', () => {
      const [, afterProps] = onlyResource(after, c.resourceType);
      const greenGroup = groupId(template, c.groupType, greenFamily);
      expect(afterProps[c.groupRef]).toEqual({ Ref: greenGroup });
      expect(groupId(after, c.groupType, greenFamily)).toBe(greenGroup);
      after.resourceCountIs(c.groupType, 1);
      expect(onlyResource(after, 'AWS::SecretsManager::Secret')[0]).toBe(
        onlyResource(template, 'AWS::SecretsManager::Secret')[0],
      );
    });

    it('after a minor upgrade, keeps the same group and changes only EngineVersion', () => {
      const running = templateOf(
        databaseStack(c.engine, { engineVersion: c.before.engineVersion }),
      );
      const bumped = templateOf(databaseStack(c.engine, { engineVersion: c.minor }));
      expect(spec.family(c.minor)).toBe(blueFamily);
      const [runningId, runningProps] = onlyResource(running, c.resourceType);
      const [bumpedId, bumpedProps] = onlyResource(bumped, c.resourceType);
      expect(bumpedId).toBe(runningId);
      expect(changedKeys(runningProps, bumpedProps)).toEqual(['EngineVersion']);
      expect(groupId(bumped, c.groupType, blueFamily)).toBe(
        groupId(running, c.groupType, blueFamily),
      );
    });

    if (spec.level === 'cluster') {
      it('keeps every cluster instance in place', () => {
        const instances = (t: Template) =>
          Object.fromEntries(
            Object.entries(t.findResources('AWS::RDS::DBInstance') as Resources).map(([id, r]) => [
              id,
              r.Properties,
            ]),
          );
        const beforeInstances = instances(template);
        const afterInstances = instances(after);
        expect(Object.keys(afterInstances)).toEqual(Object.keys(beforeInstances));
        for (const [id, props] of Object.entries(afterInstances)) {
          expect(changedKeys(beforeInstances[id] ?? {}, props)).toEqual([]);
        }
      });
    }
  });
});

describe.each(['aurora-postgresql', 'aurora-mysql'] as const)('Aurora %s cluster', (engine) => {
  const template = templateOf(databaseStack(engine, ENGINE_SPECS[engine].defaults));

  it('has one provisioned writer and, Multi-AZ, one reader, with no instance parameter group', () => {
    const instances = Object.values(template.findResources('AWS::RDS::DBInstance') as Resources);
    expect(instances.map((i) => i.Properties.DBInstanceIdentifier).sort()).toEqual([
      'platform-db-reader',
      'platform-db-writer',
    ]);
    for (const instance of instances) {
      expect(instance.Properties).toMatchObject({ Engine: engine, PubliclyAccessible: false });
      expect(instance.Properties.DBParameterGroupName).toBeUndefined();
    }
    template.resourceCountIs('AWS::RDS::DBParameterGroup', 0);
  });

  it('turns IAM database authentication on', () => {
    template.hasResourceProperties('AWS::RDS::DBCluster', {
      EnableIAMDatabaseAuthentication: true,
    });
  });
});

it('gives green the running cluster group for a minor Aurora MySQL upgrade in the same family', () => {
  const minor = templateOf(databaseStack('aurora-mysql', ENGINE_SPECS['aurora-mysql'].defaults));
  minor.resourceCountIs('AWS::RDS::DBClusterParameterGroup', 1);
  expect(minor.findOutputs('TargetParameterGroupName')).toEqual({
    TargetParameterGroupName: expect.objectContaining({
      Value: { Ref: groupId(minor, 'AWS::RDS::DBClusterParameterGroup', 'aurora-mysql8.0') },
    }),
  });
});
