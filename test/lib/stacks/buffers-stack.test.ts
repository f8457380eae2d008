import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { App } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { BUFFER_NAMES } from '../../../lambda/shared/contracts';
import { demoStacks, nagViolations, synthApp, templateOf } from '../../helpers/app';

type Resource = { Type: string; Properties: Record<string, unknown> };
type Resources = Record<string, Resource>;

const { buffers: stack } = demoStacks(synthApp());
const template = templateOf(stack);
const resources = template.toJSON().Resources as Resources;
const FOURTEEN_DAYS = 14 * 24 * 3600;

/** The queues the consumers read (the ones with a redrive policy), by logical id. */
const sourceQueues = Object.entries(resources).filter(
  ([, r]) => r.Type === 'AWS::SQS::Queue' && r.Properties.RedrivePolicy !== undefined,
);
const allQueues = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::SQS::Queue');

function ref(value: unknown): string {
  const v = value as { Ref?: string; 'Fn::GetAtt'?: string[] };
  return v.Ref ?? v['Fn::GetAtt']?.[0] ?? '';
}

type Statement = Record<string, unknown>;
const statementsOf = (policy: Resource) =>
  (policy.Properties.PolicyDocument as { Statement: Statement[] }).Statement;
const pascal = (name: string) =>
  name.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
/** The logical id of the secret attachment the buffer's consumer logs in with. */
const attachmentOf = (name: string) => {
  const id = Object.keys(resources).find(
    (k) =>
      resources[k]?.Type === 'AWS::SecretsManager::SecretTargetAttachment' &&
      k.startsWith(`ConsumerRoles${name.replace(/-/g, '')}Secret`),
  );
  if (id === undefined) throw new Error(`no secret for ${name}`);
  return id;
};
function consumerPolicy(name: string): [string, Resource] {
  const found = Object.entries(resources).find(
    ([id, r]) => r.Type === 'AWS::IAM::Policy' && id.startsWith(`${pascal(name)}ConsumerRole`),
  );
  if (found === undefined) throw new Error(`no policy for the ${name} consumer`);
  return found;
}

function mappingFor(queueId: string): Resource {
  const found = Object.values(resources).find(
    (r) =>
      r.Type === 'AWS::Lambda::EventSourceMapping' && ref(r.Properties.EventSourceArn) === queueId,
  );
  if (found === undefined) throw new Error(`no mapping for ${queueId}`);
  return found;
}

describe('BuffersStack queues', () => {
  it('has one buffer (queue + DLQ) per write type', () => {
    expect(sourceQueues).toHaveLength(BUFFER_NAMES.length);
    expect(allQueues).toHaveLength(2 * BUFFER_NAMES.length);
  });

  it('keeps messages 14 days in every queue and DLQ, encrypted at rest', () => {
    for (const [, queue] of allQueues) {
      expect(queue.Properties.MessageRetentionPeriod).toBe(FOURTEEN_DAYS);
      expect(queue.Properties.SqsManagedSseEnabled).toBe(true);
    }
  });

  it('sends a message to its DLQ after 5 receives, with the DLQ keeping it at least as long', () => {
    for (const [, queue] of sourceQueues) {
      const redrive = queue.Properties.RedrivePolicy as {
        maxReceiveCount: number;
        deadLetterTargetArn: unknown;
      };
      expect(redrive.maxReceiveCount).toBeGreaterThanOrEqual(5);
      const dlq = resources[ref(redrive.deadLetterTargetArn)];
      expect(dlq?.Type).toBe('AWS::SQS::Queue');
      expect(dlq?.Properties.MessageRetentionPeriod).toBeGreaterThanOrEqual(
        queue.Properties.MessageRetentionPeriod as number,
      );
    }
  });

  it('denies every queue action without TLS', () => {
    const policies = Object.values(resources).filter((r) => r.Type === 'AWS::SQS::QueuePolicy');
    const covered = new Set<string>();
    for (const policy of policies) {
      const statements = (policy.Properties.PolicyDocument as { Statement: unknown[] }).Statement;
      expect(statements).toContainEqual(
        expect.objectContaining({
          Effect: 'Deny',
          Action: 'sqs:*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
        }),
      );
      for (const q of policy.Properties.Queues as unknown[]) covered.add(ref(q));
    }
    expect([...covered].sort()).toEqual(allQueues.map(([id]) => id).sort());
  });

  it('sets visibility timeout >= 6 x consumer timeout + batching window', () => {
    for (const [id, queue] of sourceQueues) {
      const mapping = mappingFor(id);
      const fn = resources[ref(mapping.Properties.FunctionName)];
      const timeout = fn?.Properties.Timeout as number;
      const window = mapping.Properties.MaximumBatchingWindowInSeconds as number;
      expect(timeout).toBeGreaterThan(0);
      expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout + window);
    }
  });
});

describe('BuffersStack consumers', () => {
  it('reports batch item failures and caps concurrency on every mapping', () => {
    for (const [id] of sourceQueues) {
      expect(mappingFor(id).Properties).toMatchObject({
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: 2 },
        BatchSize: 10,
      });
      expect(mappingFor(id).Properties.Enabled).not.toBe(false);
    }
  });

  it('runs each consumer on the latest Node.js, ARM64, traced, with source maps', () => {
    for (const name of BUFFER_NAMES) {
      template.hasResourceProperties('AWS::Lambda::Function', {
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: Match.objectLike({ LogFormat: 'JSON', LogGroup: Match.anyValue() }),
        VpcConfig: Match.objectLike({ SubnetIds: Match.anyValue() }),
        Environment: {
          Variables: Match.objectLike({
            BUFFER_NAME: name,
            NODE_OPTIONS: '--enable-source-maps',
            DB_SECRET_ARN: Match.anyValue(),
          }),
        },
      });
    }
  });

  it('gives each function its own log group with a retention', () => {
    const groups = Object.values(resources).filter((r) => r.Type === 'AWS::Logs::LogGroup');
    // The consumers, the roles function and the Provider framework's.
    expect(groups).toHaveLength(BUFFER_NAMES.length + 2);
    for (const group of groups) expect(group.Properties.RetentionInDays).toBe(30);
  });

  it('uses roles without AWS managed policies, each consumer reading only its own secret', () => {
    for (const role of Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Role')) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
    for (const name of BUFFER_NAMES) {
      const [, policy] = consumerPolicy(name);
      const reads = statementsOf(policy).filter((s) =>
        ([] as unknown[]).concat(s.Action).includes('secretsmanager:GetSecretValue'),
      );
      // One secret: the consumer's own, never the master (the database stack's).
      expect(reads.map((s) => s.Resource)).toEqual([{ Ref: attachmentOf(name) }]);
      const logs = statementsOf(policy).find((s) =>
        ([] as unknown[]).concat(s.Action).includes('logs:PutLogEvents'),
      );
      expect(JSON.stringify(logs?.Resource)).toContain('Logs');
    }
    // Only the function that creates the roles reads the master credentials.
    const readers = Object.entries(resources).filter(
      ([, r]) =>
        r.Type === 'AWS::IAM::Policy' &&
        JSON.stringify(r.Properties).includes('DatabaseInstanceSecretAttachment'),
    );
    expect(readers.map(([id]) => id)).toEqual([
      expect.stringMatching(/^ConsumerRolesFunctionRole/),
    ]);
  });

  it('exports each queue URL and mapping id for the upgrade', () => {
    for (const name of ['Sends', 'OptIns', 'SignUps', 'Unsubscribes', 'Tracking']) {
      template.hasOutput(`${name}QueueUrl`, { Value: Match.anyValue() });
      template.hasOutput(`${name}MappingId`, { Value: { Ref: Match.stringLikeRegexp(name) } });
    }
  });
});

describe('BuffersStack consumer roles', () => {
  const [, roles] =
    Object.entries(resources).find(([, r]) => r.Type === 'Custom::ConsumerRoles') ?? [];

  it('gives each consumer its own database role on its own table, with its own secret', () => {
    expect(roles?.Properties.Schema).toBe('demo');
    expect(roles?.Properties.Roles).toEqual(
      BUFFER_NAMES.map((name) => ({
        role: `quiet_upgrade_${name.replace(/-/g, '_')}`,
        table: expect.stringMatching(/^[a-z_]+$/),
        secretArn: { Ref: attachmentOf(name) },
      })),
    );
    for (const name of BUFFER_NAMES) {
      const fn = Object.entries(resources).find(
        ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(`${pascal(name)}Consumer`),
      );
      const env = (fn?.[1].Properties.Environment as { Variables: Record<string, unknown> })
        .Variables;
      expect(env.DB_SECRET_ARN).toEqual({ Ref: attachmentOf(name) });
    }
  });

  it('starts no consumer, nor its mapping, before the roles exist', () => {
    const rolesId = Object.keys(resources).find((k) => resources[k] === roles);
    const json = template.toJSON() as { Resources: Record<string, { DependsOn?: string[] }> };
    for (const name of BUFFER_NAMES) {
      const [id] =
        Object.entries(resources).find(
          ([k, r]) => r.Type === 'AWS::Lambda::Function' && k.startsWith(`${pascal(name)}Consumer`),
        ) ?? [];
      expect(json.Resources[id ?? '']?.DependsOn).toContain(rolesId);
      const [mappingId] =
        Object.entries(resources).find(
          ([k, r]) =>
            r.Type === 'AWS::Lambda::EventSourceMapping' && k.startsWith(`${pascal(name)}Consumer`),
        ) ?? [];
      expect(json.Resources[mappingId ?? '']?.DependsOn).toContain(rolesId);
    }
  });
});

describe('BuffersStack security checks', () => {
  it('has no unacknowledged cdk-nag AwsSolutions findings', () => {
    expect(nagViolations(stack)).toEqual([]);
  });
});

describe('consumer bundle', () => {
  it('bundles minified code with a source map and leaves the AWS SDK to the runtime', () => {
    const { buffers } = demoStacks(synthApp(undefined, { bundle: [stack.stackName] }));
    const assembly = (buffers.node.root as App).synth();
    const fn = templateOf(buffers).findResources('AWS::Lambda::Function');
    const assetHash = Object.values(fn)
      .map((r) => (r as Resource).Properties.Code as { S3Key: string })[0]
      ?.S3Key.replace('.zip', '');
    const dir = join(assembly.directory, `asset.${assetHash}`);
    expect(existsSync(join(dir, 'index.js.map'))).toBe(true);
    const code = readFileSync(join(dir, 'index.js'), 'utf8');
    expect(code).toContain('require("@aws-sdk/client-secrets-manager")');
    expect(code).not.toContain('class SecretsManagerClient');
  });
});
