import { Match } from 'aws-cdk-lib/assertions';
import type { Template } from 'aws-cdk-lib/assertions';
import { demoStacks, nagViolations, synthApp, templateOf } from '../../helpers/app';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

function onlyResource(template: Template, type: string): [string, Record<string, unknown>] {
  const found = Object.entries(template.findResources(type) as Resources);
  expect(found).toHaveLength(1);
  const [logicalId, resource] = found[0] ?? ['', { Properties: {} }];
  return [logicalId, resource.Properties];
}

function parameterGroupId(template: Template, family: string): string {
  const groups = template.findResources('AWS::RDS::DBParameterGroup', {
    Properties: { Family: family },
  });
  const ids = Object.keys(groups);
  expect(ids).toHaveLength(1);
  return ids[0] ?? '';
}

describe('DatabaseStack', () => {
  const { database } = demoStacks(synthApp());
  const template = templateOf(database);

  it('turns on logical replication in the running and the target parameter groups', () => {
    for (const family of ['postgres16', 'postgres17']) {
      template.hasResourceProperties('AWS::RDS::DBParameterGroup', {
        Family: family,
        Parameters: Match.objectLike({
          'rds.logical_replication': '1',
          max_replication_slots: '10',
          max_wal_senders: '10',
          max_logical_replication_workers: '10',
          max_worker_processes: '21',
        }),
      });
    }
  });

  it('runs the instance on the current version with the current family parameter group', () => {
    const [, instance] = onlyResource(template, 'AWS::RDS::DBInstance');
    expect(instance.Engine).toBe('postgres');
    expect(instance.EngineVersion).toBe('16.6');
    expect(instance.DBParameterGroupName).toEqual({
      Ref: parameterGroupId(template, 'postgres16'),
    });
  });

  it('keeps the target parameter group ready and exports its name for green', () => {
    template.hasOutput('TargetParameterGroupName', {
      Value: { Ref: parameterGroupId(template, 'postgres17') },
    });
  });

  it('meets the blue/green prerequisites: backups, encryption, deletion protection', () => {
    template.hasResourceProperties('AWS::RDS::DBInstance', {
      BackupRetentionPeriod: 7,
      StorageEncrypted: true,
      DeletionProtection: true,
      MultiAZ: true,
      AutoMinorVersionUpgrade: false,
      AllowMajorVersionUpgrade: true,
      PubliclyAccessible: false,
      DBInstanceIdentifier: 'platform-db',
      PreferredMaintenanceWindow: 'sun:04:00-sun:05:00',
    });
    template.hasResource('AWS::RDS::DBInstance', {
      DeletionPolicy: 'Snapshot',
      UpdateReplacePolicy: 'Snapshot',
    });
  });

  it('uses a CloudFormation-generated secret, not the RDS-managed master password', () => {
    const [, instance] = onlyResource(template, 'AWS::RDS::DBInstance');
    expect(instance.ManageMasterUserPassword).toBeUndefined();
    expect(instance.MasterUserSecret).toBeUndefined();
    const [secretId, secret] = onlyResource(template, 'AWS::SecretsManager::Secret');
    expect(secret.GenerateSecretString).toMatchObject({
      GenerateStringKey: 'password',
      SecretStringTemplate: '{"username":"platform_admin"}',
    });
    expect(JSON.stringify(instance.MasterUserPassword)).toContain(secretId);
  });

  it('places the database in isolated subnets, with no NAT gateway', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 0);
    const [, subnetGroup] = onlyResource(template, 'AWS::RDS::DBSubnetGroup');
    const subnetIds = (subnetGroup.SubnetIds as { Ref: string }[]).map((s) => s.Ref);
    expect(subnetIds).toHaveLength(2);
    for (const id of subnetIds) {
      expect(id).toMatch(/^NetworkVpcDatabaseSubnet\d/);
      template.hasResourceProperties('AWS::EC2::Subnet', {
        MapPublicIpOnLaunch: false,
      });
    }
    // Isolated: the database subnets' route tables have no default route.
    const routes = template.findResources('AWS::EC2::Route') as Resources;
    for (const route of Object.values(routes)) {
      expect(JSON.stringify(route.Properties.RouteTableId)).not.toContain('Database');
    }
  });

  it('admits only the database clients group, on the PostgreSQL port', () => {
    const ingress = Object.values(
      template.findResources('AWS::EC2::SecurityGroupIngress') as Resources,
    ).filter((r) => JSON.stringify(r.Properties.GroupId).includes('DatabaseInstanceSecurityGroup'));
    expect(ingress).toHaveLength(1);
    expect(ingress[0]?.Properties).toMatchObject({
      IpProtocol: 'tcp',
      SourceSecurityGroupId: {
        'Fn::GetAtt': [expect.stringMatching(/^DatabaseClients/), 'GroupId'],
      },
    });
    expect(JSON.stringify(ingress[0]?.Properties.FromPort)).toContain('Endpoint.Port');
  });

  it('reaches Secrets Manager, X-Ray and the RDS API through private endpoints, not the internet', () => {
    for (const service of ['secretsmanager', 'xray', 'rds']) {
      template.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        VpcEndpointType: 'Interface',
        PrivateDnsEnabled: true,
        ServiceName: Match.stringLikeRegexp(`\\.${service}$`),
      });
    }
  });

  it('has no unacknowledged cdk-nag AwsSolutions findings', () => {
    expect(nagViolations(database)).toEqual([]);
  });

  it('gives green the running group for a minor upgrade in the same family', () => {
    const minor = templateOf(
      demoStacks(
        synthApp((c) => ((c.database as Record<string, unknown>).targetEngineVersion = '16.8')),
      ).database,
    );
    minor.resourceCountIs('AWS::RDS::DBParameterGroup', 1);
    const [groupId] = Object.keys(minor.findResources('AWS::RDS::DBParameterGroup'));
    expect(minor.findOutputs('TargetParameterGroupName')).toEqual({
      TargetParameterGroupName: expect.objectContaining({ Value: { Ref: groupId } }),
    });
  });

  it('creates no target parameter group when no target version is configured', () => {
    const noTarget = templateOf(
      demoStacks(
        synthApp((c) => delete (c.database as Record<string, unknown>).targetEngineVersion),
      ).database,
    );
    noTarget.resourceCountIs('AWS::RDS::DBParameterGroup', 1);
    expect(noTarget.findOutputs('TargetParameterGroupName')).toEqual({});
  });
});

describe('engine version bump after an upgrade', () => {
  // Before: running 16.6, target 17.2. After the switchover the operator records the new
  // version in cdk.json: running 17.2 (no target yet).
  const before = templateOf(demoStacks(synthApp()).database);
  const after = templateOf(
    demoStacks(
      synthApp((c) => {
        const db = c.database as Record<string, unknown>;
        db.engineVersion = '17.2';
        delete db.targetEngineVersion;
      }),
    ).database,
  );

  it('updates the instance in place: same logical id and identifier', () => {
    const [beforeId, beforeInstance] = onlyResource(before, 'AWS::RDS::DBInstance');
    const [afterId, afterInstance] = onlyResource(after, 'AWS::RDS::DBInstance');
    expect(afterId).toBe(beforeId);
    expect(afterInstance.DBInstanceIdentifier).toBe(beforeInstance.DBInstanceIdentifier);
    expect(afterInstance.EngineVersion).toBe('17.2');
    // Every property whose change forces a replacement is untouched.
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-rds-dbinstance.html
    for (const key of ['DBName', 'DBSubnetGroupName', 'KmsKeyId', 'MasterUsername', 'Engine']) {
      expect(afterInstance[key]).toEqual(beforeInstance[key]);
    }
  });

  it('moves the instance onto the group green already used, with the secret unchanged', () => {
    const [, afterInstance] = onlyResource(after, 'AWS::RDS::DBInstance');
    const greenGroup = parameterGroupId(before, 'postgres17');
    expect(afterInstance.DBParameterGroupName).toEqual({ Ref: greenGroup });
    expect(parameterGroupId(after, 'postgres17')).toBe(greenGroup);
    // The old family's group leaves the stack; no new group is created.
    after.resourceCountIs('AWS::RDS::DBParameterGroup', 1);
    const [beforeSecret] = onlyResource(before, 'AWS::SecretsManager::Secret');
    const [afterSecret] = onlyResource(after, 'AWS::SecretsManager::Secret');
    expect(afterSecret).toBe(beforeSecret);
  });
});
