import type { Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { BUFFER_NAMES } from '../../lambda/shared/contracts';
import type { PlanDefaults } from '../../lambda/validate-input/validate';
import { allStates, definitionOf } from '../../rehearsal/definition';
import {
  adoptExisting,
  EXISTING_PLATFORM,
  nagViolations,
  synthApp,
  templateOf,
} from '../helpers/app';

// platform: "existing" with the fixture's database, network, listener and queues.
const built = synthApp(adoptExisting);
const { edge, upgrade } = built;
const stacks = built.app.node.children as Stack[];
const template = templateOf(upgrade);
const runbook = definitionOf(upgrade, 'RunbookStateMachine');
const validate = runbook.States['Validate input'] as unknown as {
  Parameters: { defaults: PlanDefaults };
};
const defaults = validate.Parameters.defaults;
const { database, network, listener, buffers } = EXISTING_PLATFORM;
type ExistingBuffer = (typeof buffers)[string] & {
  queueArn: string;
  deadLetterQueueArn: string;
  eventSourceMappingId: string;
  consumerFunctionName: string;
};
const existing = (name: string) => buffers[name] as ExistingBuffer;

type Statement = { Action: string | string[]; Resource: unknown };
function statementsWith(action: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .flatMap(
      (p) =>
        (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties
          .PolicyDocument.Statement,
    )
    .filter((s) => ([] as string[]).concat(s.Action).includes(action));
}

describe('adopting an existing platform (platform: "existing")', () => {
  it('builds only the edge and upgrade stacks', () => {
    expect(stacks.map((s) => s.stackName).sort()).toEqual([
      'QuietUpgradeEdge',
      'QuietUpgradeOrchestration',
    ]);
    expect(built.database).toBeUndefined();
    expect(built.buffers).toBeUndefined();
  });

  it.each([
    'AWS::RDS::DBInstance',
    'AWS::RDS::DBParameterGroup',
    'AWS::EC2::VPC',
    'AWS::ElasticLoadBalancingV2::LoadBalancer',
    'AWS::ElasticLoadBalancingV2::Listener',
    'AWS::SQS::Queue',
    'AWS::Lambda::EventSourceMapping',
  ])('creates no %s in any stack', (type) => {
    for (const stack of stacks) templateOf(stack).resourceCountIs(type, 0);
  });

  it('wires the runbook defaults to the given database, queues, mappings and listener', () => {
    expect(defaults.sourceIdentifier).toBe('platform-db');
    expect(defaults.sourceArn).toBe('arn:aws:rds:eu-west-1:123456789012:db:platform-db');
    expect(defaults.targetParameterGroupName).toBe(database.targetParameterGroupName);
    expect(defaults.listenerArn).toBe(listener.listenerArn);
    expect(defaults.mappings).toEqual(
      BUFFER_NAMES.map((name) => ({ name, uuid: existing(name).eventSourceMappingId })),
    );
    expect(defaults.queues).toEqual(
      BUFFER_NAMES.map((name) => ({
        name,
        url: `https://sqs.eu-west-1.amazonaws.com/123456789012/platform-${name}`,
        arn: existing(name).queueArn,
      })),
    );
  });

  it('waits the given consumer timeout for in-flight batches after pausing', () => {
    expect(allStates(runbook).get('Let in-flight batches finish')?.Seconds).toBe(
      EXISTING_PLATFORM.consumerTimeoutSeconds,
    );
  });

  it('lets the runbook pause and resume exactly the given mappings', () => {
    const [statement] = statementsWith('lambda:UpdateEventSourceMapping');
    expect(statement?.Resource).toEqual(
      BUFFER_NAMES.map(
        (name) =>
          `arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:${existing(name).eventSourceMappingId}`,
      ),
    );
  });

  it('lets preflight read the given parameter group and nothing else', () => {
    const [statement] = statementsWith('rds:DescribeDBParameters');
    expect(statement?.Resource).toBe(
      `arn:aws:rds:eu-west-1:123456789012:pg:${database.parameterGroupName}`,
    );
  });

  it('lets the restore change only its own copies of the given parameter groups', () => {
    const copies = [database.parameterGroupName, database.targetParameterGroupName]
      .flatMap((g) => [`${g}-restore`, `${g}-fence`])
      .map((g) => `arn:aws:rds:eu-west-1:123456789012:pg:${g}`);
    const [statement] = statementsWith('rds:ModifyDBParameterGroup');
    expect([...(statement?.Resource as string[])].sort()).toEqual(copies.sort());
  });

  it('runs the writer check in the given subnets and security group, with the given secret', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: {
        SubnetIds: network.subnetIds,
        SecurityGroupIds: [network.databaseClientSecurityGroupId],
      },
      Environment: { Variables: Match.objectLike({ DB_SECRET_ARN: database.secretArn }) },
    });
    expect(statementsWith('secretsmanager:GetSecretValue').map((s) => s.Resource)).toEqual([
      database.secretArn,
    ]);
    // The adopted group is not changed: no ingress rule is added to someone else's group.
    template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
  });

  it('lets the capture function send only to the given queues it writes', () => {
    const policies = templateOf(edge).findResources('AWS::IAM::Policy');
    const send = Object.values(policies)
      .flatMap(
        (p) =>
          (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties
            .PolicyDocument.Statement,
      )
      .find((s) => ([] as string[]).concat(s.Action).includes('sqs:SendMessage'));
    expect(([] as unknown[]).concat(send?.Resource).sort()).toEqual(
      BUFFER_NAMES.filter((name) => name !== 'sends')
        .map((name) => existing(name).queueArn)
        .sort(),
    );
  });

  it('alarms on the given DLQs and graphs the given consumers', () => {
    for (const name of BUFFER_NAMES) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: `platform-${name}-dlq` }],
      });
    }
    const body = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));
    for (const name of BUFFER_NAMES) expect(body).toContain(existing(name).consumerFunctionName);
  });

  it('has no unacknowledged cdk-nag AwsSolutions findings', () => {
    for (const stack of stacks) expect(nagViolations(stack)).toEqual([]);
  });
});
