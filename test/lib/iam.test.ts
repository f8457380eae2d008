import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { allStates } from '../../rehearsal/definition';
import { bundleFunctions, type FunctionCode } from '../../rehearsal/functions';
import {
  DEPENDENT_ACTIONS,
  allowedActions,
  allowsActionAnywhere,
  authorize,
  glob,
  type Statement,
} from '../../rehearsal/iam';
import {
  MAINTENANCE_TAG,
  PAGE_BODY,
  maintenanceRuleSpecs,
} from '../../lambda/maintenance-toggle/rule-specs';
import { EXECUTION_TAG } from '../../lambda/watchdog-inspect/inspect';
import { PAGE_RULE_NAME } from '../../lib/constructs/upgrade-runbook';
import { ENGINE_SPECS, type DatabaseEngine } from '../../lib/engines';
import { RDS_VOCABULARY } from '../../lib/rds-access';
import { sdkOperations } from '../../rehearsal/sdk';
import { CONFIGURED_ENGINE, type SynthesizedApp, synthesizeApp } from '../../rehearsal/synthesized';
import { adoptExisting } from '../helpers/app';

/*
 * What each function's code can call, read from its bundle, against what its synthesized role
 * allows; and what each state machine's definition calls, against its role. Both ways: a call
 * the role does not allow fails on AWS, and a permission nothing calls is a grant too many.
 */

/** What Lambda itself does with a function's role, whatever the code. */
const RUNTIME_ACTIONS: Record<string, string> = {
  'logs:CreateLogStream': 'the runtime writes the function logs',
  'logs:PutLogEvents': 'the runtime writes the function logs',
  'xray:PutTraceSegments': 'active tracing',
  'xray:PutTelemetryRecords': 'active tracing',
  'ec2:CreateNetworkInterface':
    'a function in a VPC (configuration-vpc.html#configuration-vpc-permissions)',
  'ec2:DescribeNetworkInterfaces': 'a function in a VPC',
  'ec2:DescribeSubnets': 'a function in a VPC',
  'ec2:DeleteNetworkInterface': 'a function in a VPC',
  'ec2:AssignPrivateIpAddresses': 'a function in a VPC',
  'ec2:UnassignPrivateIpAddresses': 'a function in a VPC',
};

/**
 * What an SQS event source mapping does with its function's role: Lambda documents
 * ReceiveMessage, DeleteMessage and GetQueueAttributes; aws-cdk-lib's SqsEventSource grants
 * its queue's consume permissions, which add ChangeMessageVisibility and GetQueueUrl.
 * https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions
 */
const MAPPING_ACTIONS = [
  'sqs:ReceiveMessage',
  'sqs:DeleteMessage',
  'sqs:GetQueueAttributes',
  'sqs:ChangeMessageVisibility',
  'sqs:GetQueueUrl',
];

/**
 * Calls the functions make only for an Aurora DB cluster: the code branches on the engine's
 * level (lambda/shared/cluster.ts isClusterEngine), so one bundle holds both levels' calls, and
 * an instance engine's role grants none of these (test/lib/stacks/upgrade-aurora.test.ts holds
 * each role to exactly its level's). The cluster's own vocabulary (lib/rds-access.ts), and
 * DescribeIntegrations (preflight's zero-ETL check, for Aurora only).
 */
const instanceCalls: string[] = Object.values(RDS_VOCABULARY.instance);
const CLUSTER_ONLY_CALLS = new Set([
  ...Object.values(RDS_VOCABULARY.cluster).filter(
    (a) => a.startsWith('rds:') && !instanceCalls.includes(a),
  ),
  'rds:DescribeIntegrations',
]);
const levelOnly = (action: string) =>
  ENGINE_SPECS[CONFIGURED_ENGINE as DatabaseEngine].level === 'instance' &&
  CLUSTER_ONLY_CALLS.has(action);

const apps: [string, SynthesizedApp][] = [
  ['demo platform', synthesizeApp()],
  ['adopted platform', synthesizeApp(adoptExisting)],
];

let code: Map<string, FunctionCode>;
beforeAll(async () => {
  code = await bundleFunctions([
    ...new Set(apps.flatMap(([, a]) => a.functions.map((f) => f.dir))),
  ]);
});

function statementsOf(app: SynthesizedApp, roleArn: string): Statement[] {
  const role = app.roles.get(roleArn);
  if (role === undefined) throw new Error(`no role ${roleArn}`);
  return role.statements;
}

/** Every action a role allows, expanded where it names a wildcard of known actions. */
function granted(statements: Statement[]): string[] {
  return allowedActions(statements);
}

describe.each(apps)('IAM of the %s', (_name, app) => {
  const consumers = new Set(app.mappings.map((m) => m.functionName));

  it.each(app.functions.map((f) => [f.dir, f] as const))(
    'the role of %s allows every AWS SDK operation its code can call',
    (_dir, fn) => {
      const statements = statementsOf(app, fn.roleArn);
      const operations = sdkOperations(code.get(fn.dir)?.source ?? '');
      const missing = operations
        .map((o) => o.action)
        .filter((a) => !levelOnly(a) && !allowsActionAnywhere(statements, a));
      expect(missing).toEqual([]);
    },
  );

  it.each(app.functions.map((f) => [f.dir, f] as const))(
    'the role of %s allows nothing but what its code, Lambda and its mapping use',
    (_dir, fn) => {
      const statements = statementsOf(app, fn.roleArn);
      const used = new Set([
        ...sdkOperations(code.get(fn.dir)?.source ?? '').flatMap((o) =>
          [o.action, ...(DEPENDENT_ACTIONS[o.action] ?? [])].map((a) => a.toLowerCase()),
        ),
        ...Object.keys(RUNTIME_ACTIONS).map((a) => a.toLowerCase()),
        ...(consumers.has(fn.name) || consumers.has(fn.arn)
          ? MAPPING_ACTIONS.map((a) => a.toLowerCase())
          : []),
      ]);
      const extra = granted(statements).filter((a) => ![...used].some((u) => glob(a, u, true)));
      expect(extra).toEqual([]);
    },
  );

  /*
   * Where the Service Authorization Reference lists aws:ResourceTag/${TagKey} for a wildcard
   * grant and the app sets the tag, every Allow of the action, in every role, is conditioned
   * on it: IAM allows an action if any statement does, so one bare grant would undo the rest.
   * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment
   * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-SwitchoverBlueGreenDeployment
   * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html#awselasticloadbalancingv2-DeleteRule
   */
  describe('tag conditions', () => {
    const toggleRole = app.functions.find((f) => f.dir === 'maintenance-toggle')?.roleArn;
    const ownDeployment = { Null: { [`aws:ResourceTag/${EXECUTION_TAG}`]: 'false' } };
    const taggedRule = { Null: { [`aws:ResourceTag/${MAINTENANCE_TAG}`]: 'false' } };
    const pageRule = { StringEquals: { [`aws:ResourceTag/${MAINTENANCE_TAG}`]: PAGE_RULE_NAME } };
    /** The conditions of every Allow, in any role, that grants the action. */
    const grantsOf = (action: string) =>
      [...app.roles.values()].flatMap((role) =>
        role.statements
          .filter((s) => s.Effect === 'Allow' && allowsActionAnywhere([s], action))
          .map((s) => ({ role: role.arn, condition: s.Condition })),
      );

    it.each(['rds:DeleteBlueGreenDeployment', 'rds:SwitchoverBlueGreenDeployment'])(
      'grants %s only on deployments with the execution tag',
      (action) => {
        const grants = grantsOf(action);
        expect(grants.map((g) => g.role)).toContain(app.machines.upgrade.roleArn);
        for (const g of grants) expect(g).toEqual({ role: g.role, condition: ownDeployment });
      },
    );

    it('lets the watchdog delete only deployments with the execution tag', () => {
      expect(grantsOf('rds:DeleteBlueGreenDeployment')).toContainEqual({
        role: app.machines.watchdog.roleArn,
        condition: ownDeployment,
      });
    });

    it('grants DeleteRule to the toggle on tagged rules and to the runbook on the page rule only', () => {
      expect(grantsOf('elasticloadbalancing:DeleteRule')).toEqual(
        expect.arrayContaining([
          { role: toggleRole, condition: taggedRule },
          { role: app.machines.upgrade.roleArn, condition: pageRule },
        ]),
      );
      expect(grantsOf('elasticloadbalancing:DeleteRule')).toHaveLength(2);
    });

    it("names the page rule by the toggle's own name for it", () => {
      const specs = maintenanceRuleSpecs({
        firstPriority: 1,
        appTargetGroupArn: 'app',
        captureTargetGroupArn: 'capture',
        capturePaths: [],
        bypassSourceCidrs: [],
      });
      // The toggle's own test for the page rule (toggle.ts isPage).
      const page = specs.filter((s) =>
        s.actions.some((a) => a.FixedResponseConfig?.MessageBody === PAGE_BODY),
      );
      expect(page.map((s) => s.name)).toEqual([PAGE_RULE_NAME]);
    });
  });

  const machines = Object.entries(app.machines);
  it.each(machines)(
    'the %s state machine role allows every call its definition makes',
    (_m, machine) => {
      const statements = statementsOf(app, machine.roleArn);
      const denied = integrationCalls(machine.definition).filter(
        (c) =>
          !(c.resource === undefined
            ? allowsActionAnywhere(statements, c.action)
            : authorize(statements, { action: c.action, resource: c.resource }).allowed),
      );
      expect(denied).toEqual([]);
    },
  );

  it.each(machines)(
    'the %s state machine role allows nothing its definition does not call',
    (_m, machine) => {
      const statements = statementsOf(app, machine.roleArn);
      const used = integrationCalls(machine.definition).flatMap((c) => [
        c.action,
        ...(DEPENDENT_ACTIONS[c.action] ?? []),
      ]);
      // Logs and tracing for the machine itself, and the topic's key for SNS publishing.
      const own = ['logs:*', 'xray:*', 'kms:GenerateDataKey', 'kms:Decrypt'];
      const extra = granted(statements).filter(
        (a) => ![...used, ...own].some((u) => glob(a, u, true) || glob(u, a, true)),
      );
      expect(extra).toEqual([]);
    },
  );
});

/** The IAM action (and resource, where the definition fixes it) of every Task. */
function integrationCalls(
  definition: StateMachineDefinition,
): { action: string; resource?: string }[] {
  const calls: { action: string; resource?: string }[] = [];
  for (const state of allStates(definition).values()) {
    if (state.Type !== 'Task') continue;
    const resource = state.Resource ?? '';
    const params = (state.Parameters ?? {}) as Record<string, unknown>;
    const sdk = /^arn:aws:states:::aws-sdk:([a-z0-9]+):([A-Za-z0-9]+)$/.exec(resource);
    if (sdk !== null) {
      // The SDK integration's service name, where IAM's prefix differs.
      const iamPrefix: Record<string, string> = {
        sfn: 'states',
        elasticloadbalancingv2: 'elasticloadbalancing',
      };
      const service = iamPrefix[sdk[1] ?? ''] ?? sdk[1] ?? '';
      const action = `${service}:${(sdk[2] ?? '').charAt(0).toUpperCase()}${(sdk[2] ?? '').slice(1)}`;
      calls.push({ action });
    } else if (resource === 'arn:aws:states:::lambda:invoke') {
      calls.push({ action: 'lambda:InvokeFunction', resource: String(params.FunctionName) });
    } else if (resource.startsWith('arn:aws:states:::sns:publish')) {
      calls.push({ action: 'sns:Publish', resource: String(params.TopicArn) });
    } else if (resource === 'arn:aws:states:::events:putEvents') {
      calls.push({ action: 'events:PutEvents' });
    } else {
      calls.push({ action: 'lambda:InvokeFunction', resource });
    }
  }
  return calls;
}
