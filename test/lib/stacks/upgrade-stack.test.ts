import { Match } from 'aws-cdk-lib/assertions';
import { MAX_FENCE_POLLS } from '../../../lib/constructs/fence-old-blue';
import { historyWorstCase, MAX_GREEN_POLLS } from '../../../lib/constructs/upgrade-runbook';
import { POLL_MS, RETURN_MARGIN_MS } from '../../../lambda/watch-switchover/watch';
import { QUIET_GATE_MAX_WAIT_MINUTES } from '../../../lambda/shared/upgrade-plan';
import { allStates, definitionOf } from '../../../rehearsal/definition';
import { nagViolations, synthApp, templateOf } from '../../helpers/app';

const { upgrade } = synthApp();
const template = templateOf(upgrade);
const runbook = definitionOf(upgrade, 'RunbookStateMachine');
const watchdog = definitionOf(upgrade, 'WatchdogStateMachine');

type Statement = { Action: string | string[]; Resource: unknown };

function statementsOf(roleFragment: string): Statement[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.entries(policies)
    .filter(([id]) => id.startsWith(roleFragment))
    .flatMap(
      ([, p]) =>
        (p as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties
          .PolicyDocument.Statement,
    );
}

function actionsOf(roleFragment: string): string[] {
  return statementsOf(roleFragment).flatMap((s) => ([] as string[]).concat(s.Action));
}

describe('UpgradeStack state machines', () => {
  it('runs a Standard machine with a timeout, full logs under /aws/vendedlogs/states and tracing', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineName: 'QuietUpgrade-Upgrade',
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true }),
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      LogGroupName: '/aws/vendedlogs/states/QuietUpgrade-Upgrade',
    });
    expect((runbook as { TimeoutSeconds?: number }).TimeoutSeconds).toBe(28 * 3600);
  });

  it('uses JSONPath only: no JSONata and no Assign, so the local interpreter runs it as deployed', () => {
    for (const definition of [runbook, watchdog]) {
      const text = JSON.stringify(definition);
      expect(text).not.toContain('JSONata');
      expect(text).not.toContain('"Assign"');
      expect(text).not.toContain('"Arguments"');
    }
  });

  it('names every state as a readable phrase', () => {
    for (const definition of [runbook, watchdog]) {
      for (const name of allStates(definition).keys()) {
        expect(name).toMatch(/^[A-Z][A-Za-z0-9 ,:?'-]+$/);
      }
    }
  });

  it('gives every Task a jittered Retry on transient errors and a Catch', () => {
    for (const definition of [runbook, watchdog]) {
      for (const [name, state] of allStates(definition)) {
        if (state.Type !== 'Task') continue;
        const task = state as {
          Retry?: { JitterStrategy?: string; ErrorEquals: string[] }[];
          Catch?: unknown[];
        };
        expect({ name, jitter: task.Retry?.[0]?.JitterStrategy }).toEqual({ name, jitter: 'FULL' });
        const mapInner =
          name.includes(': ') &&
          /^(Pause|Resume|Roll back|Recover): (enable|disable|check) consumer/.test(name);
        const measure = name === 'Measure queue backlog';
        if (!mapInner && !measure)
          expect({ name, catches: (task.Catch ?? []).length > 0 }).toEqual({ name, catches: true });
      }
    }
  });

  it('grants the extra actions AWS documents for each blue/green operation', () => {
    const actions = actionsOf('RunbookStateMachineRole');
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-authorizing-access.html
    for (const action of [
      'rds:CreateBlueGreenDeployment',
      'rds:AddTagsToResource',
      'rds:CreateDBInstanceReadReplica',
      'rds:SwitchoverBlueGreenDeployment',
      'rds:ModifyDBInstance',
      'rds:PromoteReadReplica',
      'rds:DeleteBlueGreenDeployment',
      'rds:DeleteDBInstance',
      'rds:DescribeBlueGreenDeployments',
      'lambda:UpdateEventSourceMapping',
      'lambda:GetEventSourceMapping',
      'sqs:GetQueueAttributes',
      'sns:Publish',
      'events:PutEvents',
    ]) {
      expect(actions).toContain(action);
    }
    expect(actions).not.toContain('rds:*');
    expect(actions).not.toContain('*');
  });

  it('lets both machines publish to the KMS-encrypted topic', () => {
    for (const role of ['RunbookStateMachineRole', 'WatchdogStateMachineRole']) {
      const kms = statementsOf(role).find((st) =>
        JSON.stringify(st.Action).includes('kms:GenerateDataKey'),
      );
      expect(([] as string[]).concat(kms?.Action ?? []).sort()).toEqual([
        'kms:Decrypt',
        'kms:GenerateDataKey',
      ]);
      expect(JSON.stringify(kms?.Resource)).toContain('NotificationsKey');
    }
  });

  it('lets the preflight list executions of the upgrade machine only', () => {
    const statement = statementsOf('PreflightRole').find(
      (s) => s.Action === 'states:ListExecutions',
    );
    expect(JSON.stringify(statement?.Resource)).toContain(':stateMachine:QuietUpgrade-Upgrade');
  });

  it('keeps the worst-case history of one run well under the 25,000-event quota', () => {
    // Every bound as the definition states it: the count each loop's Choice gives up at.
    const states = allStates(runbook);
    const bound = (choice: string): number => {
      const rules = (
        states.get(choice) as {
          Choices: {
            Variable?: string;
            NumericGreaterThanEquals?: number;
            Or?: { NumericGreaterThanEquals?: number }[];
          }[];
        }
      ).Choices;
      const values = rules.flatMap((r) => [
        r.NumericGreaterThanEquals,
        ...(r.Or ?? []).map((o) => o.NumericGreaterThanEquals),
      ]);
      const found = values.find((v): v is number => typeof v === 'number');
      if (found === undefined) throw new Error(`no numeric bound in ${choice}`);
      return found;
    };
    // The watch function returns before its own timeout and is called again.
    const watch = Object.values(template.findResources('AWS::Lambda::Function')).find((f) =>
      JSON.stringify(f).includes('every second while it switches over'),
    ) as { Properties: { Timeout: number } } | undefined;
    if (watch === undefined) throw new Error('no watch-switchover function');
    const watchCalls = Math.ceil(
      (3600 + 120) / ((watch.Properties.Timeout * 1000 - RETURN_MARGIN_MS - POLL_MS) / 1000),
    );
    const parts = {
      // A round in which green is busy runs Verify green too: 28 events.
      greenBuild: bound('Is green available?') * 28,
      // Task (5) + Choice (2) per watch call.
      switchover: watchCalls * 7,
      consumersStopping: 5 * bound('Pause: has consumer stopped?') * 11,
      draining: 5 * bound('Is the queue drained?') * 11,
      // A run deletes its deployment once: before the restore, or in the rollback.
      restore:
        Math.max(
          bound('Roll back: is the deployment gone?'),
          bound('Restore: is the deployment gone?') +
            bound('Is old blue restored?') +
            bound('Is the restored writer verified?'),
        ) * 11,
    };
    // The quiet gate's bound is the plan's maxChecks, which validate-input and the config
    // cap at QUIET_GATE_MAX_WAIT_MINUTES; a round is Wait, count, Task and Choice: 11.
    const gate = (
      states.get('Is traffic quiet?') as {
        Choices: { Or?: { Variable: string; NumericGreaterThanEqualsPath?: string }[] }[];
      }
    ).Choices.flatMap((c) => c.Or ?? []);
    expect(gate).toContainEqual({
      Variable: '$.quietPoll.count',
      NumericGreaterThanEqualsPath: '$.plan.quietGate.maxChecks',
    });
    Object.assign(parts, { quietGate: QUIET_GATE_MAX_WAIT_MINUTES * 11 });
    // Aurora's fence of old blue before the restore (its bound: upgrade-aurora.test.ts).
    Object.assign(parts, { fence: MAX_FENCE_POLLS * 11 });
    expect(bound('Is green available?')).toBe(MAX_GREEN_POLLS);
    // The figures the code comment and the bench give are the definition's.
    const { parts: claimed, total } = historyWorstCase();
    expect(claimed).toEqual({ ...parts, rest: claimed.rest });
    // The rest: every state once, at most (a Map's states once per mapping).
    const once = (machine: { States: Record<string, unknown> }, times: number): number =>
      Object.values(machine.States).reduce<number>((sum, state) => {
        const s = state as {
          Type: string;
          ItemProcessor?: { States: Record<string, unknown> };
          Branches?: { States: Record<string, unknown> }[];
        };
        const own = s.Type === 'Task' ? 5 : s.Type === 'Map' || s.Type === 'Parallel' ? 4 : 2;
        const inner =
          (s.ItemProcessor ? once(s.ItemProcessor, 5) : 0) +
          (s.Branches ?? []).reduce((n, b) => n + once(b, 1), 0);
        return sum + times * own + inner;
      }, 0);
    expect(once(runbook, 1)).toBeLessThanOrEqual(claimed.rest ?? 0);
    expect(total).toBeLessThanOrEqual(0.5 * 25_000);
    const seconds = (name: string) => (states.get(name) as { Seconds?: number }).Seconds;
    expect(seconds('Wait for green to build')).toBe(600);
    expect(states.has('Wait for the switchover')).toBe(false);
  });
});

describe('UpgradeStack triggers', () => {
  it('creates the schedule disabled when no window is configured', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      State: 'DISABLED',
      ScheduleExpression: 'cron(0 4 ? * SUN *)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: Match.objectLike({ Input: '{}', RetryPolicy: { MaximumRetryAttempts: 0 } }),
    });
  });

  it('enables the schedule with the configured window and time zone', () => {
    const scheduled = templateOf(
      synthApp((c) => {
        const u = c.upgrade as Record<string, unknown>;
        u.schedule = 'at(2026-11-29T04:00:00)';
        u.scheduleTimeZone = 'Europe/Lisbon';
      }).upgrade,
    );
    scheduled.hasResourceProperties('AWS::Scheduler::Schedule', {
      State: 'ENABLED',
      ScheduleExpression: 'at(2026-11-29T04:00:00)',
      ScheduleExpressionTimezone: 'Europe/Lisbon',
      Target: Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('RunbookStateMachine') } }),
    });
  });

  it('starts the watchdog when an upgrade run is aborted, times out or fails', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.states'],
        'detail-type': ['Step Functions Execution Status Change'],
        detail: {
          status: ['ABORTED', 'TIMED_OUT', 'FAILED'],
          stateMachineArn: [{ Ref: Match.stringLikeRegexp('RunbookStateMachine') }],
        },
      },
      Targets: [Match.objectLike({ Arn: { Ref: Match.stringLikeRegexp('WatchdogStateMachine') } })],
    });
  });

  it('has no unacknowledged cdk-nag AwsSolutions findings', () => {
    expect(nagViolations(upgrade)).toEqual([]);
  });
});
