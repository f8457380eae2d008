import { fenceOldBlue, MAX_FENCE_POLLS } from './fence-old-blue';
import { Arn, ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { BUFFER_NAMES } from '../../lambda/shared/contracts';
import { SWITCHOVER_MARGIN_SECONDS } from '../../lambda/shared/upgrade-plan';
import { POLL_MS, RETURN_MARGIN_MS } from '../../lambda/watch-switchover/watch';
import type { PlanDefaults } from '../../lambda/validate-input/validate';
import { MAINTENANCE_TAG } from '../../lambda/maintenance-toggle/rule-specs';
import type { DatabaseEngine } from '../engines';
import { blueGreenGrants, rdsVocabulary, wildcardResources } from '../rds-access';
import {
  awsCall,
  CALLER,
  incrementCount,
  invoke,
  maintenance,
  notify,
  reason,
  report,
  retryTransient,
  sdkErrorNames,
  setConsumers,
  startCount,
  protectWriter,
  endSessions,
  untilDeploymentGone,
  EXECUTION_TAG,
  OWN_DEPLOYMENT,
  unprotectGreen,
  MAX_DELETE_POLLS,
  MAX_PAUSE_CHECKS,
} from './upgrade-steps';
import { MAX_RESTORE_POLLS, MAX_RESTORED_CHECKS, restorePath } from './runbook-restore';
import { QUIET_GATE_WORST_EVENTS, quietGate } from './runbook-quiet-gate';

/**
 * The MAINTENANCE_TAG value the toggle gives the page rule: its spec's name
 * (lambda/maintenance-toggle/rule-specs.ts). The runbook may delete only that rule.
 */
/** $.blueGreen with deleteTarget false: written whole, never as a Pass Result of `false`. */
const WITHOUT_TARGET = {
  'id.$': '$.blueGreen.id',
  'name.$': '$.blueGreen.name',
  deleteTarget: false,
};

export const PAGE_RULE_NAME = 'maintenance-page';

/** The functions with real logic that the runbook calls. */
export interface UpgradeFunctions {
  readonly validateInput: lambda.IFunction;
  readonly preflight: lambda.IFunction;
  readonly verifyGreen: lambda.IFunction;
  readonly verifyWriter: lambda.IFunction;
  readonly restoreOldBlue: lambda.IFunction;
  /** Deletion protection off on green before it is deleted, on for the new writer. */
  readonly deletionProtection: lambda.IFunction;
  /** Describes the deployment every second while the switchover runs. */
  readonly watchSwitchover: lambda.IFunction;
}

export interface UpgradeRunbookProps {
  /** Fixed, so preflight's single-flight check can name the machine in its policy. */
  readonly stateMachineName: string;
  /**
   * The database's engine: an RDS DB instance's blue/green calls and grants, or an Aurora DB
   * cluster's (lib/rds-access.ts). It must be the plan's.
   */
  readonly engine: DatabaseEngine;
  /** Deploy-time defaults; an execution started with `{}` runs with these. */
  readonly planDefaults: PlanDefaults;
  readonly functions: UpgradeFunctions;
  /** The maintenance toggle function. */
  readonly toggle: lambda.IFunction;
  /**
   * The listener's rules (listener-rule/<listener>/*): the runbook deletes the maintenance
   * page rule itself, by the ARN the toggle returned, to end the page one call sooner.
   */
  readonly listenerRules: string;
  /** Where people are told. */
  readonly topic: sns.ITopic;
  /** ARNs of the consumers' event source mappings. */
  readonly mappingArns: string[];
  /** ARNs of the buffer queues. */
  readonly queueArns: string[];
  /** How long a consumer batch may run: in-flight batches get this long to finish. */
  readonly consumerTimeout: Duration;
}

/*
 * Polling intervals and bounds, and the execution history they cost.
 * A Standard execution holds at most 25,000 history events.
 * https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html#service-limits-state-machine-executions
 * One polling round is Wait (2 events) + Task (5: entered, scheduled, started, succeeded,
 * exited) + count Pass (2) + Choice (2) = 11 events. historyWorstCase() adds them up.
 * - Green build: every 10 minutes, at most 144 rounds (24 h) = 1,584 events. Nobody waits on
 *   green (maintenance is not on yet), so a coarse interval costs nothing. A round in which
 *   the deployment is AVAILABLE but green is only busy or catching up also runs Verify green
 *   and its choices: 28 events, so up to 4,032 if green is not ready for a whole 24 h.
 * - Switchover: described every second while it runs, from the watch function
 *   (lambda/watch-switchover), which returns before its 5-minute timeout and is called
 *   again: at most 13 calls (3,600 s timeout + 120 s margin) of Task (5) + Choice (2) = 91
 *   events. (Every 5 s from a Wait state, as before, cost up to 8,184.)
 * - Consumers stopping: 36 rounds x 5 mappings = 1,980; draining: 40 x 5 = 2,200;
 *   restoring old blue (runbook-restore.ts): 210 rounds = 2,310, in place of the rollback's
 *   deletion (60 rounds = 660); the rest of the run is under 800 (REST_OF_RUN_EVENTS).
 * - Quiet gate (runbook-quiet-gate.ts): the traffic alarm read once a minute, at most 60
 *   rounds = 660.
 * Worst case, every loop at its bound: 4,032 + 91 + 1,980 + 2,200 + 2,310 + 660 + 800 =
 * 12,073 events, 48% of the quota (before this count: about 23,100, 92%). A 24 h green build
 * on the happy path: about 2,300.
 */
export const GREEN_POLL = Duration.minutes(10);
export const MAX_GREEN_POLLS = 144;
/** Events of one green round in which Verify green runs too (see above). */
const GREEN_BUSY_ROUND_EVENTS = 28;
/** The watch function's own timeout; it returns RETURN_MARGIN_MS before it. */
export const WATCH_FUNCTION_TIMEOUT = Duration.minutes(5);
const WATCH_TASK_TIMEOUT = sfn.Timeout.duration(WATCH_FUNCTION_TIMEOUT.plus(Duration.minutes(1)));
/** Watch calls for the longest switchover: its 3,600 s timeout plus the margin. */
export const MAX_WATCH_CALLS = Math.ceil(
  (3600 + SWITCHOVER_MARGIN_SECONDS) /
    ((WATCH_FUNCTION_TIMEOUT.toMilliseconds() - RETURN_MARGIN_MS - POLL_MS) / 1000),
);
/**
 * Everything else in a run: at most every state of the definition once (2 events, a Task 5,
 * a Map or Parallel 4; a Map's states once per mapping), 774 today, which no run reaches
 * (its outcomes exclude each other). The stack test recounts it from the definition.
 */
export const REST_OF_RUN_EVENTS = 800;

/**
 * The execution history of the longest run the bounds above allow, in events, by part, as
 * the comment above counts it: each loop at its bound, and the restore of old blue in place
 * of the rollback's deletion.
 */
export function historyWorstCase(mappings = BUFFER_NAMES.length): {
  parts: Record<string, number>;
  total: number;
} {
  const round = 11;
  const parts = {
    greenBuild: MAX_GREEN_POLLS * GREEN_BUSY_ROUND_EVENTS,
    switchover: MAX_WATCH_CALLS * 7,
    consumersStopping: MAX_PAUSE_CHECKS * mappings * round,
    draining: MAX_DRAIN_POLLS * mappings * round,
    restore: (MAX_DELETE_POLLS + MAX_RESTORE_POLLS + MAX_RESTORED_CHECKS) * round,
    // Aurora: old blue fenced before the restore deletes the deployment (./fence-old-blue.ts).
    fence: MAX_FENCE_POLLS * round,
    quietGate: QUIET_GATE_WORST_EVENTS,
    rest: REST_OF_RUN_EVENTS,
  };
  return { parts, total: Object.values(parts).reduce((a, b) => a + b, 0) };
}

export const DRAIN_POLL = Duration.seconds(15);
/** A queue with at most this many messages waiting is drained: a few seconds of traffic. */
export const DRAINED_AT_MOST = 100;
/** Each verification is tried this many times before the run rolls back. */
export const VERIFY_ATTEMPTS = 3;
export const GREEN_RECHECK = Duration.seconds(60);
export const WRITER_RECHECK = Duration.seconds(10);
export const MAX_DRAIN_POLLS = 40;
/**
 * Longer than any deadline (24 h) plus the switchover, a restore of old blue (up to 2 h:
 * runbook-restore.ts; 15 minutes more on Aurora to fence old blue first), the drain and
 * clean-up.
 */
export const RUNBOOK_TIMEOUT = Duration.hours(28);

/**
 * The upgrade runbook: one Standard state machine that takes the database from its version to
 * the target with a blue/green deployment, keeps the maintenance page to the switchover, and
 * rolls back by itself. Phases and invariants: DESIGN.md and the README.
 */
export class UpgradeRunbook extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  /**
   * The RDS resources the role names by wildcard besides deployments: green's, whose names RDS
   * chooses (lib/rds-access.ts).
   */
  readonly greenWildcards: string[];

  constructor(scope: Construct, id: string, props: UpgradeRunbookProps) {
    super(scope, id);
    if (props.engine !== props.planDefaults.engine) {
      throw new Error(
        `engine must be the plan's engine (${props.planDefaults.engine}), got: ${props.engine}`,
      );
    }
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- a short scope name for many states
    const s = this;
    const stack = Stack.of(this);
    const { functions: fn, toggle, topic } = props;
    const rdsArn = (resource: string, name: string) =>
      Arn.format(
        { service: 'rds', resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME },
        stack,
      );
    const deployments = rdsArn('deployment', '*');
    const { level } = rdsVocabulary(props.engine);
    // A minor upgrade may keep blue's group: then there is none to name.
    const target = props.planDefaults.targetParameterGroupName;
    const grants = blueGreenGrants(level, {
      arn: rdsArn,
      sourceArn: props.planDefaults.sourceArn,
      clusterParameterGroups: target === '' ? [] : [target],
    });
    this.greenWildcards = wildcardResources(
      [...grants.create, ...grants.switchover, ...grants.deleteTarget],
      [deployments],
    );
    // The status of this run's deployment, at `resultPath` as `{ status }`.
    const describeDeployment = (id: string, resultPath: string) =>
      awsCall(s, id, {
        service: 'rds',
        action: 'describeBlueGreenDeployments',
        parameters: { 'BlueGreenDeploymentIdentifier.$': '$.blueGreen.id' },
        iamResources: [deployments],
        resultSelector: { 'status.$': '$.BlueGreenDeployments[0].Status' },
        resultPath,
      });
    // This run's deployment, by the name the run gave it. Listed by name (a filter, no
    // identifier): see WILDCARD_REASONS.listCalls.
    const findByName = (id: string, resultSelector: Record<string, unknown>, resultPath: string) =>
      awsCall(s, id, {
        service: 'rds',
        action: 'describeBlueGreenDeployments',
        parameters: {
          Filters: [
            { Name: 'blue-green-deployment-name', 'Values.$': 'States.Array($.blueGreen.name)' },
          ],
        },
        iamResources: ['*'],
        resultSelector,
        resultPath,
      });

    // ---------------------------------------------------------------- end states
    const needsOperator = report(
      s,
      'Report: needs an operator',
      'NEEDS_OPERATOR',
      'A step failed that the runbook cannot undo by itself. Nothing more was changed after ' +
        'it: maintenance and the consumers are as "maintenance" and the mappings show, so ' +
        'nothing writes to an unverified database. Read "failure", check the blue/green ' +
        'deployment and the writer in the RDS console, then follow the README (NEEDS_OPERATOR).',
    );
    const pageOperator = sfn.Pass.jsonPath(s, 'Page the operator', {
      parameters: {
        'plan.$': '$.plan',
        'failure.$': '$.failure',
        'maintenance.$': '$.maintenance',
        'blueGreen.$': '$.blueGreen',
      },
    });
    pageOperator
      .next(needsOperator)
      .next(
        notify(s, 'needs an operator', { topic, phase: 'outcome', subject: 'NEEDS AN OPERATOR' }),
      )
      .next(
        sfn.Pass.jsonPath(s, 'Output: needs an operator', {
          parameters: {
            outcome: 'NEEDS_OPERATOR',
            'failure.$': '$.failure',
            'maintenance.$': '$.maintenance',
            'blueGreen.$': '$.blueGreen',
            'plan.$': '$.plan',
          },
        }),
      )
      .next(sfn.Succeed.jsonPath(s, 'Stopped: needs an operator'));
    type Catchable = sfn.TaskStateBase | sfn.Map | sfn.Parallel;
    const toOperator = <T extends Catchable>(task: T): T => {
      task.addCatch(pageOperator, { errors: ['States.ALL'], resultPath: '$.failure' });
      return task;
    };

    // ----------------------------------------------------- rollback (shared by every phase)
    // Maintenance off, consumers on, and the blue/green deployment deleted: with its green
    // target before the switchover, without it after (when old blue has been restored).
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html
    const rollbackOff = toOperator(
      maintenance(s, 'Roll back: turn maintenance off', toggle, 'off'),
    );
    const rollbackResume = setConsumers(
      s,
      'Roll back: resume consumers',
      'Roll back',
      true,
      props.mappingArns,
    );
    toOperator(rollbackResume);
    const deleteDeployment = toOperator(
      awsCall(s, 'Roll back: delete the blue-green deployment', {
        service: 'rds',
        action: 'deleteBlueGreenDeployment',
        parameters: {
          'BlueGreenDeploymentIdentifier.$': '$.blueGreen.id',
          'DeleteTarget.$': '$.blueGreen.deleteTarget',
        },
        iamResources: [deployments],
        // Only a deployment tagged by a run of this app (OWN_DEPLOYMENT).
        // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment
        iamConditions: OWN_DEPLOYMENT,
        // DeleteTarget=true deletes green (its instances; for Aurora its cluster, instances
        // and custom endpoints); their names are chosen by RDS. No tag condition: see
        // OWN_DEPLOYMENT.
        additionalIamStatements: grants.deleteTarget,
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );
    const unprotect = unprotectGreen(
      s,
      'Roll back',
      {
        fn: fn.deletionProtection,
        deploymentId: '$.blueGreen.id',
        deleteTarget: '$.blueGreen.deleteTarget',
        withoutTarget: { path: '$.blueGreen', parameters: WITHOUT_TARGET },
        keptPath: '$.keptGreen',
      },
      deleteDeployment,
      toOperator,
    );
    const rolledBack = report(
      s,
      'Report: rolled back',
      'ROLLED_BACK',
      'The upgrade was rolled back: the original database is the writer, maintenance is off ' +
        'and consumers are draining. See failure for why.',
    );
    rolledBack
      .next(notify(s, 'rolled back', { topic, phase: 'outcome', subject: 'rolled back' }))
      .next(
        sfn.Pass.jsonPath(s, 'Output: rolled back', {
          parameters: {
            outcome: 'ROLLED_BACK',
            'failure.$': '$.failure',
            // Green instances kept because they could not be unprotected: delete them by hand.
            'keptGreen.$': '$.keptGreen.instances',
            'plan.$': '$.plan',
          },
        }),
      )
      .next(sfn.Succeed.jsonPath(s, 'Rolled back'));
    deleteDeployment.next(
      untilDeploymentGone(
        s,
        {
          start: 'Roll back: start counting deletion checks',
          wait: 'Roll back: wait for the deployment to go',
          check: 'Roll back: check the deployment is gone',
          count: 'Roll back: count deletion checks',
          choice: 'Roll back: is the deployment gone?',
          note: 'Note: the deployment was not deleted',
        },
        {
          deployments,
          gone: rolledBack,
          stuck: pageOperator,
          cause: 'The blue/green deployment was still there 30 minutes after deletion started.',
          toOperator,
        },
      ),
    );
    // A create whose answer never came back may still have made the deployment: without its
    // id, look for it by the name this run gave it, so none is left behind.
    const lookUp = toOperator(
      findByName(
        'Roll back: look for the deployment by name',
        { 'found.$': '$.BlueGreenDeployments' },
        '$.lookup',
      ),
    );
    lookUp.next(
      sfn.Choice.jsonPath(s, 'Roll back: did this run create one?')
        .when(
          sfn.Condition.isPresent('$.lookup.found[0]'),
          sfn.Pass.jsonPath(s, 'Roll back: note the deployment found', {
            parameters: {
              'id.$': '$.lookup.found[0].BlueGreenDeploymentIdentifier',
              'name.$': '$.blueGreen.name',
              deleteTarget: true,
            },
            resultPath: '$.blueGreen',
          }).next(unprotect),
        )
        .otherwise(rolledBack),
    );
    const rollback = rollbackOff.next(rollbackResume).next(
      sfn.Choice.jsonPath(s, 'Roll back: was a deployment created?')
        // Deleted already, before old blue was restored.
        .when(sfn.Condition.isPresent('$.blueGreen.deleted'), rolledBack)
        .when(sfn.Condition.isPresent('$.blueGreen.id'), unprotect)
        .otherwise(lookUp),
    );
    const toRollback = <T extends Catchable>(task: T): T => {
      task.addCatch(rollbackOff, { errors: ['States.ALL'], resultPath: '$.failure' });
      return task;
    };

    // ------------------------------------------------------------ 1. validate input
    // The result replaces the input (no ResultPath: aws-local-stepfunctions 3.0.0 mishandles
    // an explicit "$").
    const validate = invoke(
      s,
      'Validate input',
      fn.validateInput,
      {
        'input.$': '$',
        defaults: props.planDefaults,
        'startTime.$': '$$.Execution.StartTime',
      },
      undefined,
    );
    validate.addCatch(
      sfn.Fail.jsonPath(s, 'Reject: the input could not be checked', {
        error: 'InvalidInput',
        cause: 'The input check itself failed; nothing was changed. See the execution history.',
      }),
      { errors: ['States.ALL'] },
    );
    const inputValid = sfn.Choice.jsonPath(s, 'Is the input valid?').when(
      sfn.Condition.booleanEquals('$.valid', false),
      sfn.Fail.jsonPath(s, 'Reject invalid input', { errorPath: '$.error', causePath: '$.cause' }),
    );
    // Before anything changes: the deployment is deleted with its target if we roll back.
    const prepare = sfn.Pass.jsonPath(s, 'Prepare the run', {
      parameters: {
        'plan.$': '$.plan',
        maintenance: { state: 'off' },
        // Derived from the execution, so a retried create names the same deployment.
        blueGreen: {
          deleteTarget: true,
          'name.$': "States.Format('upgrade-{}', States.Hash($$.Execution.Id, 'SHA-1'))",
        },
        failure: { Error: 'None', Cause: 'Nothing failed.' },
        keptGreen: { instances: [] },
      },
    });

    // ------------------------------------------------------------ 2. preflight
    const preflight = invoke(
      s,
      'Run preflight checks',
      fn.preflight,
      {
        'plan.$': '$.plan',
        'stateMachineArn.$': '$$.StateMachine.Id',
        'executionArn.$': '$$.Execution.Id',
      },
      '$.preflight',
    );
    const rejected = sfn.Pass.jsonPath(s, 'Report: rejected', {
      parameters: {
        outcome: 'REJECTED',
        'summary.$':
          "States.Format('Preflight failed, nothing was changed: {}', States.JsonToString($.preflight.failures))",
      },
      resultPath: '$.report',
    });
    const rejectedFail = sfn.Fail.jsonPath(s, 'Reject: preflight failed', {
      error: 'PreflightFailed',
      causePath: '$.report.summary',
    });
    rejected
      .next(notify(s, 'rejected', { topic, phase: 'outcome', subject: 'rejected by preflight' }))
      .next(rejectedFail);
    preflight.addCatch(
      sfn.Pass.jsonPath(s, 'Note: preflight could not run', {
        parameters: {
          passed: false,
          failures: ['The preflight checks could not run; see the error in the execution history.'],
          'error.$': '$.preflightError.Cause',
        },
        resultPath: '$.preflight',
      }).next(rejected),
      { errors: ['States.ALL'], resultPath: '$.preflightError' },
    );
    const preflightPassed = sfn.Choice.jsonPath(s, 'Did preflight pass?').when(
      sfn.Condition.booleanEquals('$.preflight.passed', false),
      rejected,
    );
    // The writer check, run against blue while nothing has changed: a missing network route,
    // endpoint, secret or KMS grant shows now, not after the switchover with the page on.
    const reachBlue = invoke(
      s,
      'Run the writer check against blue',
      fn.verifyWriter,
      // Also the documented limitations of the replication RDS will use, found in blue's
      // database before anything changes.
      { 'plan.$': '$.plan', expect: 'current', limitations: true },
      '$.blueCheck',
    );
    reachBlue.addCatch(
      sfn.Pass.jsonPath(s, 'Note: the writer check could not run against blue', {
        parameters: {
          passed: false,
          'failures.$':
            "States.Array(States.Format('The writer check could not run against blue, so it could not run after the switchover either. Check its network route to the database, the database secret and its KMS key; the error: {}', $.blueCheckError.Cause))",
        },
        resultPath: '$.preflight',
      }).next(rejected),
      { errors: ['States.ALL'], resultPath: '$.blueCheckError' },
    );
    const blueChecked = sfn.Choice.jsonPath(s, 'Did the writer check pass against blue?').when(
      sfn.Condition.booleanEquals('$.blueCheck.passed', false),
      sfn.Pass.jsonPath(s, 'Note: the writer check failed against blue', {
        parameters: { passed: false, 'failures.$': '$.blueCheck.failures' },
        resultPath: '$.preflight',
      }).next(rejected),
    );
    const dryRun = sfn.Choice.jsonPath(s, 'Is this a dry run?').when(
      sfn.Condition.booleanEquals('$.plan.dryRun', true),
      sfn.Pass.jsonPath(s, 'Output: dry-run plan', {
        parameters: { outcome: 'DRY_RUN', 'plan.$': '$.plan', 'checks.$': '$.preflight.checks' },
      }).next(sfn.Succeed.jsonPath(s, 'Dry run done')),
    );

    // ------------------------------------------------------------ 3. prepare green
    const started = report(
      s,
      'Report: upgrade started',
      'IN_PROGRESS',
      'Preflight passed. Building the upgraded copy (green) while production keeps serving.',
    );
    const create = awsCall(s, 'Create blue-green deployment', {
      service: 'rds',
      action: 'createBlueGreenDeployment',
      parameters: {
        'BlueGreenDeploymentName.$': '$.blueGreen.name',
        'Source.$': '$.plan.sourceArn',
        'TargetEngineVersion.$': '$.plan.targetEngineVersion',
        // An instance's green takes a DB parameter group, an Aurora cluster's green a DB
        // cluster parameter group ("The DB cluster parameter group associated with the Aurora
        // DB cluster in the green environment").
        // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateBlueGreenDeployment.html
        [level === 'cluster'
          ? 'TargetDBClusterParameterGroupName.$'
          : 'TargetDBParameterGroupName.$']: '$.plan.targetParameterGroupName',
        // The tag that lets this app's role switch the deployment over and delete it
        // (OWN_DEPLOYMENT), and lets the watchdog tell this run's deployment from others.
        Tags: [{ Key: EXECUTION_TAG, 'Value.$': '$$.Execution.Name' }],
      },
      iamResources: [deployments, ...grants.createResources],
      // What CreateBlueGreenDeployment needs besides itself (lib/rds-access.ts).
      additionalIamStatements: grants.create,
      resultSelector: {
        'id.$': '$.BlueGreenDeployment.BlueGreenDeploymentIdentifier',
        'name.$': '$.BlueGreenDeployment.BlueGreenDeploymentName',
        deleteTarget: true,
      },
      resultPath: '$.blueGreen',
    });
    // A create whose answer was lost (timeout, 5xx) may have succeeded: the retry then finds
    // the name taken. The deployment is this run's own: find it by name and carry on.
    const findOwn = toRollback(
      findByName(
        'Find the deployment this run created',
        {
          'id.$': '$.BlueGreenDeployments[0].BlueGreenDeploymentIdentifier',
          'name.$': '$.BlueGreenDeployments[0].BlueGreenDeploymentName',
          deleteTarget: true,
        },
        '$.blueGreen',
      ),
    );
    create.addCatch(findOwn, {
      errors: sdkErrorNames('Rds', 'BlueGreenDeploymentAlreadyExistsFault'),
      resultPath: sfn.JsonPath.DISCARD,
    });
    toRollback(create);
    const greenCount = startCount(s, 'Start counting green checks', '$.greenPoll');
    const greenAvailable = sfn.Pass.jsonPath(s, 'Green is available');
    const greenWait = sfn.Wait.jsonPath(s, 'Wait for green to build', {
      time: sfn.WaitTime.duration(GREEN_POLL),
    });
    const greenCheck = toRollback(describeDeployment('Check green status', '$.green'));
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_BlueGreenDeployment.html (Status)
    const greenReady = sfn.Choice.jsonPath(s, 'Is green available?')
      .when(sfn.Condition.stringEquals('$.green.status', 'AVAILABLE'), greenAvailable)
      .when(
        sfn.Condition.stringEquals('$.green.status', 'INVALID_CONFIGURATION'),
        reason(
          s,
          'Note: green is invalid',
          'GreenInvalidConfiguration',
          'RDS reports the green environment as INVALID_CONFIGURATION; it cannot be switched over.',
        ).next(rollback),
      )
      .when(
        sfn.Condition.or(
          sfn.Condition.timestampGreaterThanEqualsJsonPath('$.greenPoll.now', '$.plan.deadline'),
          sfn.Condition.numberGreaterThanEquals('$.greenPoll.count', MAX_GREEN_POLLS),
        ),
        reason(
          s,
          'Note: green was not ready in time',
          'GreenNotReadyInTime',
          'Green was not AVAILABLE before the deadline; the switchover will not start after it.',
        ).next(rollback),
      )
      .otherwise(greenWait);

    // ------------------------------------------------------------ 4. verify green
    const verifyGreen = toRollback(
      invoke(
        s,
        'Verify green',
        fn.verifyGreen,
        {
          'plan.$': '$.plan',
          'blueGreenDeploymentIdentifier.$': '$.blueGreen.id',
        },
        '$.greenCheck',
      ),
    );
    const approval = toRollback(
      tasks.SnsPublish.jsonPath(s, 'Wait for operator approval', {
        topic,
        integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
        subject: 'Database upgrade: approval needed',
        message: sfn.TaskInput.fromObject({
          request:
            'Green is built and verified. Approve to start the switchover (a few seconds of maintenance page).',
          approve:
            'aws stepfunctions send-task-success --task-token <taskToken> --task-output "{}"',
          reject: 'aws stepfunctions send-task-failure --task-token <taskToken> --error Rejected',
          'taskToken.$': sfn.JsonPath.taskToken,
          'execution.$': '$$.Execution.Id',
        }),
        resultPath: sfn.JsonPath.DISCARD,
        taskTimeout: sfn.Timeout.duration(Duration.hours(2)),
      }),
    );
    retryTransient(approval, 'Sns');
    const clock = sfn.Pass.jsonPath(s, 'Note the time', {
      parameters: { 'now.$': '$$.State.EnteredTime' },
      resultPath: '$.clock',
    });
    // Before the deadline check, so the check covers the time the gate waited.
    const gate = quietGate(s, { topic, toRollback, rollback, next: clock });

    // ------------------------------------------------------------ 5. enter maintenance
    const pause = toRollback(setConsumers(s, 'Pause consumers', 'Pause', false, props.mappingArns));
    // A disabled mapping pauses polling and invocation. Lambda does not say whether an
    // invocation already running finishes or is abandoned (rehearsal assumption
    // running-batches-on-disable); either way none runs longer than the consumer's timeout,
    // so after this wait no batch is running and the switchover may start.
    // https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#lambda-UpdateEventSourceMapping-request-Enabled
    // https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html
    const inFlight = sfn.Wait.jsonPath(s, 'Let in-flight batches finish', {
      time: sfn.WaitTime.duration(props.consumerTimeout),
    });
    // Beside that wait, everything that need not happen with the page on. The functions the
    // window calls start an execution environment now, so none starts cold while users wait:
    // Lambda keeps an environment for later invocations after one ends. A warm-up that fails
    // costs the window one cold start at most, so the run goes on without it.
    // https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-shutdown
    const warmUp = (id: string, f: lambda.IFunction, payload: Record<string, unknown>) => {
      const task = invoke(s, id, f, payload, sfn.JsonPath.DISCARD);
      task.addCatch(sfn.Pass.jsonPath(s, `${id}: skipped`), {
        errors: ['States.ALL'],
        resultPath: sfn.JsonPath.DISCARD,
      });
      return task;
    };
    const getReady = toRollback(
      sfn.Parallel.jsonPath(s, 'Get ready to switch over', { resultPath: sfn.JsonPath.DISCARD })
        .branch(inFlight)
        .branch(warmUp('Warm up the maintenance toggle', toggle, { action: 'status' }))
        .branch(warmUp('Warm up the writer check', fn.verifyWriter, { warm: true }))
        .branch(warmUp('Warm up the switchover watch', fn.watchSwitchover, { warm: true }))
        .branch(
          report(
            s,
            'Report: switching over',
            'IN_PROGRESS',
            'Consumers are paused. The maintenance page goes on for the switchover, seconds from now.',
          ).next(
            notify(s, 'switching over', {
              topic,
              phase: 'switching over',
              subject: 'switching over now',
            }),
          ),
        ),
    );
    // Aurora: old blue's fence group made now, so that fencing it while users wait is one call
    // (./fence-old-blue.ts); without it, that call makes the group itself.
    if (level === 'cluster') {
      getReady.branch(
        warmUp("Prepare old blue's fence", fn.restoreOldBlue, {
          action: 'prepare-fence',
          ...CALLER,
          'plan.$': '$.plan',
        }),
      );
    }
    // The page goes on with the last call the toggle makes; the result names the page rule.
    const maintenanceOn = toRollback(
      invoke(s, 'Turn maintenance on', toggle, { action: 'on' }, '$.maintenance', {
        'state.$': '$.Payload.maintenance',
        'pageRuleArn.$': '$.Payload.pageRuleArn',
      }),
    );

    // ------------------------------------------------------------ 6. switch over
    // From here until the page is off, the runbook does only what must happen with it on:
    // the switchover, noticing its end, the writer check, and taking the page rule away.
    // Reports and notifications for these phases come after the page is off.
    // Not toRollback: an error does not say that the switchover did not start (see below).
    const switchover = awsCall(s, 'Switch over to green', {
      service: 'rds',
      action: 'switchoverBlueGreenDeployment',
      parameters: {
        'BlueGreenDeploymentIdentifier.$': '$.blueGreen.id',
        // 30-3600 s; past it RDS rolls the switchover back.
        // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-timeout
        'SwitchoverTimeout.$': '$.plan.switchoverTimeoutSeconds',
      },
      iamResources: [deployments],
      // Only a deployment tagged by a run of this app (OWN_DEPLOYMENT).
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-SwitchoverBlueGreenDeployment
      iamConditions: OWN_DEPLOYMENT,
      // What the switchover needs besides itself (lib/rds-access.ts). No tag condition: see
      // OWN_DEPLOYMENT.
      additionalIamStatements: grants.switchover,
      resultPath: sfn.JsonPath.DISCARD,
    });
    // The watch function describes the deployment every second and returns when the
    // switchover has ended, at its deadline, or before its own timeout (then it is called
    // again). `running` carries over: only a return to AVAILABLE after the switchover was
    // seen running means RDS rolled it back.
    const startWatching = (id: string) =>
      sfn.Pass.jsonPath(s, id, {
        parameters: {
          running: false,
          'startedAt.$': '$$.State.EnteredTime',
          'maxSeconds.$': `States.MathAdd($.plan.switchoverTimeoutSeconds, ${SWITCHOVER_MARGIN_SECONDS})`,
        },
        resultPath: '$.switchPoll',
      });
    const switchCheck = toOperator(
      invoke(
        s,
        'Check switchover status',
        fn.watchSwitchover,
        {
          'deploymentId.$': '$.blueGreen.id',
          'startedAt.$': '$.switchPoll.startedAt',
          'maxSeconds.$': '$.switchPoll.maxSeconds',
          'running.$': '$.switchPoll.running',
        },
        '$.switchPoll',
        undefined,
        WATCH_TASK_TIMEOUT,
      ),
    );
    // An error from the switchover call does not mean RDS did not take it: a 5xx or a
    // timeout can come after RDS accepted it, and a retry of an accepted call is refused
    // because the switchover is running. So on any error the runbook asks RDS, with the page
    // still on and consumers paused, and follows what the deployment's status says.
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_SwitchoverBlueGreenDeployment.html#API_SwitchoverBlueGreenDeployment_Errors
    switchover.addCatch(
      startWatching('Start watching the switchover after an error').next(switchCheck),
      {
        errors: ['States.ALL'],
        resultPath: '$.switchoverError',
      },
    );
    // After the switchover the deployment can only be deleted without its target.
    const switched = sfn.Pass.jsonPath(s, 'Note: switched over', {
      parameters: WITHOUT_TARGET,
      resultPath: '$.blueGreen',
    });

    // ------------------------------------------------------------ 7. verify new writer
    // The same call ends the client sessions left on old blue, beside the check: a pool that
    // reconnected to its cached address, or a session that overrides the read-only setting
    // (PostgreSQL's default_transaction_read_only; MySQL's read_only is global, but a user
    // with CONNECTION_ADMIN passes it), would take users' writes there and fail them.
    const verifyWriter = invoke(
      s,
      'Verify new writer',
      fn.verifyWriter,
      { 'plan.$': '$.plan', endSessionsOn: 'old-blue' },
      '$.writerCheck',
    );
    // Checked up to three times, 10 s apart, before old blue is restored: a stale DNS answer
    // or a brief "modifying" must not undo a good upgrade.
    const writerCount = startCount(s, 'Start counting writer checks', '$.writerVerify');
    const countWriter = incrementCount(s, 'Count writer checks', '$.writerVerify');
    const writerWait = sfn.Wait.jsonPath(s, 'Wait before checking the writer again', {
      time: sfn.WaitTime.duration(WRITER_RECHECK),
    });
    verifyWriter.addCatch(
      sfn.Pass.jsonPath(s, 'Note: the writer check did not run', {
        parameters: {
          passed: false,
          inconclusive: true,
          'failures.$': 'States.Array($.failure.Cause)',
          writer: null,
        },
        resultPath: '$.writerCheck',
      }).next(countWriter),
      { errors: ['States.ALL'], resultPath: '$.failure' },
    );
    // ------------------------------------------------------------ 8. exit maintenance
    // The page rule goes first, in one call from here (an SDK integration is one API round
    // trip; invoking the toggle would add another). The toggle then takes away the rest of
    // its rules; it also takes the page away if this call failed.
    // https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
    // https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_DeleteRule.html
    const maintenanceOff = toOperator(maintenance(s, 'Turn maintenance off', toggle, 'off'));
    const pageOff = awsCall(s, 'Turn the maintenance page off', {
      service: 'elasticloadbalancingv2',
      action: 'deleteRule',
      parameters: { 'RuleArn.$': '$.maintenance.pageRuleArn' },
      iamResources: [props.listenerRules],
      // Only the page rule: the toggle tags each rule it creates with its spec's name.
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html#awselasticloadbalancingv2-DeleteRule
      iamConditions: {
        StringEquals: { [`aws:ResourceTag/${MAINTENANCE_TAG}`]: PAGE_RULE_NAME },
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
    pageOff.addCatch(maintenanceOff, { errors: ['States.ALL'], resultPath: '$.pageOffError' });
    pageOff.next(maintenanceOff);
    // When the writer check could not end old blue's sessions, they are ended (or old blue
    // rebooted) on their own before the page goes off.
    const endOldSessions = endSessions(
      s,
      'End client sessions on old blue',
      {
        fn: fn.verifyWriter,
        on: 'old-blue',
        rebootFn: fn.restoreOldBlue,
        resultPath: '$.writerCheck.oldSessions',
        onFailure: pageOperator,
      },
      pageOff,
    );
    const resume = toOperator(
      setConsumers(s, 'Resume consumers', 'Resume', true, props.mappingArns),
    );
    // Measuring the drain is reporting only: consumers are on by now, so a failed measure
    // does not change the outcome.
    const drain = this.drain(props.queueArns);

    // ------------------------------------------------------------ 9. clean up and report
    const cleanUp = toOperator(
      awsCall(s, 'Delete the blue-green deployment', {
        service: 'rds',
        action: 'deleteBlueGreenDeployment',
        // After a switchover the target cannot be deleted with it; old blue (-old1) stays
        // for a retention period, to be deleted only after a final snapshot.
        parameters: { 'BlueGreenDeploymentIdentifier.$': '$.blueGreen.id', DeleteTarget: false },
        iamResources: [deployments],
        // Only a deployment tagged by a run of this app (OWN_DEPLOYMENT).
        // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment
        iamConditions: OWN_DEPLOYMENT,
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );
    // Aurora: old blue fenced by its own parameter group first, as deleting the deployment
    // lifts the read-only state RDS gave it (./fence-old-blue.ts). Users are not waiting: the
    // page is off and the consumers run.
    const toCleanUp =
      level === 'cluster'
        ? fenceOldBlue(
            s,
            'Clean up',
            { restoreOldBlue: fn.restoreOldBlue, toOperator, stuck: pageOperator },
            cleanUp,
          )
        : cleanUp;
    drain.addCatch(
      sfn.Pass.jsonPath(s, 'Note: the backlog could not be measured', {
        result: sfn.Result.fromString('not measured'),
        resultPath: '$.drain',
      }).next(toCleanUp),
      { errors: ['States.ALL'], resultPath: '$.drainError' },
    );
    const upgraded = report(
      s,
      'Report: upgraded',
      'UPGRADED',
      'The database runs the target version. Maintenance is off and the buffers are draining.',
    );

    // ------------------------------------------------------------ the main line
    const definition = validate.next(inputValid);
    inputValid.otherwise(prepare);
    prepare.next(preflight).next(preflightPassed);
    preflightPassed.otherwise(reachBlue);
    reachBlue.next(blueChecked);
    blueChecked.otherwise(dryRun);
    dryRun.otherwise(started);
    started
      .next(notify(s, 'upgrade started', { topic, phase: 'started', subject: 'started' }))
      .next(create)
      .next(greenCount);
    findOwn.next(greenCount);
    greenCount
      .next(greenWait)
      .next(greenCheck)
      .next(incrementCount(s, 'Count green checks', '$.greenPoll'))
      .next(greenReady);
    // A check is repeated before a destructive step: one lag spike must not delete a green
    // that took hours to build.
    const greenVerifyWait = sfn.Wait.jsonPath(s, 'Wait before verifying green again', {
      time: sfn.WaitTime.duration(GREEN_RECHECK),
    });
    greenAvailable
      .next(startCount(s, 'Start counting green verifications', '$.greenVerify'))
      .next(verifyGreen)
      .next(incrementCount(s, 'Count green verifications', '$.greenVerify'))
      .next(
        sfn.Choice.jsonPath(s, 'Is green ready?')
          .when(
            sfn.Condition.booleanEquals('$.greenCheck.passed', true),
            sfn.Choice.jsonPath(s, 'Is approval required?')
              .when(
                sfn.Condition.booleanEquals('$.plan.requireApproval', true),
                approval.next(gate),
              )
              .otherwise(gate),
          )
          // Still initializing its storage, busy (modifying, backing-up), no lag datapoints
          // yet, or lag over the limit: green will get there; wait for it as for the build,
          // until the deadline. Only a permanent problem deletes a green.
          .when(
            sfn.Condition.booleanEquals('$.greenCheck.transient', true),
            sfn.Pass.jsonPath(s, 'Note the time green is not ready', {
              parameters: { 'now.$': '$$.State.EnteredTime' },
              resultPath: '$.clock',
            }).next(
              sfn.Choice.jsonPath(s, 'Is there time to wait for green?')
                .when(
                  sfn.Condition.timestampGreaterThanEqualsJsonPath(
                    '$.clock.now',
                    '$.plan.deadline',
                  ),
                  sfn.Pass.jsonPath(s, 'Note: green was not ready by the deadline', {
                    parameters: {
                      Error: 'GreenNotReadyInTime',
                      'Cause.$':
                        "States.Format('Green was not ready before the deadline; the switchover will not start after it. Last check: {}', States.JsonToString($.greenCheck.failures))",
                    },
                    resultPath: '$.failure',
                  }).next(rollback),
                )
                .otherwise(greenWait),
            ),
          )
          .when(
            sfn.Condition.numberLessThan('$.greenVerify.count', VERIFY_ATTEMPTS),
            greenVerifyWait,
          )
          .otherwise(
            sfn.Pass.jsonPath(s, 'Note: green failed verification', {
              parameters: {
                Error: 'GreenFailedVerification',
                'Cause.$': 'States.JsonToString($.greenCheck.failures)',
              },
              resultPath: '$.failure',
            }).next(rollback),
          ),
      );
    greenVerifyWait.next(verifyGreen);
    clock.next(
      sfn.Choice.jsonPath(s, 'Is there time to switch over?')
        .when(
          sfn.Condition.timestampGreaterThanEqualsJsonPath('$.clock.now', '$.plan.deadline'),
          reason(
            s,
            'Note: the deadline has passed',
            'DeadlinePassed',
            'The deadline passed before the switchover could start; it never starts after it.',
          ).next(rollback),
        )
        .otherwise(pause),
    );
    pause.next(getReady).next(maintenanceOn).next(switchover);
    switchover
      .next(startWatching('Start watching the switchover'))
      .next(switchCheck)
      .next(
        // RDS documents that a switchover past its timeout is rolled back and changes
        // nothing, not which status the deployment shows then: SWITCHOVER_FAILED, or
        // AVAILABLE again (rehearsal assumption switchover-timeout-status). Either, and
        // INVALID_CONFIGURATION, mean blue is still the writer: roll back at once.
        // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-timeout
        // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_BlueGreenDeployment.html (Status)
        sfn.Choice.jsonPath(s, 'Has the switchover finished?')
          .when(sfn.Condition.stringEquals('$.switchPoll.status', 'SWITCHOVER_COMPLETED'), switched)
          .when(
            sfn.Condition.or(
              sfn.Condition.stringEquals('$.switchPoll.status', 'SWITCHOVER_FAILED'),
              sfn.Condition.stringEquals('$.switchPoll.status', 'INVALID_CONFIGURATION'),
            ),
            reason(
              s,
              'Note: the switchover failed',
              'SwitchoverFailed',
              'RDS reports the switchover failed (SWITCHOVER_FAILED or INVALID_CONFIGURATION) and has rolled it back; blue is still the writer.',
            ).next(rollback),
          )
          .when(
            sfn.Condition.and(
              sfn.Condition.stringEquals('$.switchPoll.status', 'AVAILABLE'),
              sfn.Condition.booleanEquals('$.switchPoll.running', true),
            ),
            reason(
              s,
              'Note: the switchover was rolled back',
              'SwitchoverRolledBack',
              'The switchover was running and the deployment is AVAILABLE again: RDS rolled it back (for example at its timeout); blue is still the writer.',
            ).next(rollback),
          )
          .when(
            sfn.Condition.booleanEquals('$.switchPoll.pastDeadline', true),
            sfn.Choice.jsonPath(s, 'Did the switchover ever start?')
              // AVAILABLE all along, past the timeout: a switchover RDS took would have
              // finished or been rolled back by now, so blue is the writer.
              .when(
                sfn.Condition.stringEquals('$.switchPoll.status', 'AVAILABLE'),
                reason(
                  s,
                  'Note: the switchover never started',
                  'SwitchoverNotStarted',
                  'The switchover call failed and the deployment stayed AVAILABLE past the switchover timeout: RDS never switched over; blue is still the writer.',
                ).next(rollback),
              )
              .otherwise(
                reason(
                  s,
                  'Note: the switchover did not finish',
                  'SwitchoverStuck',
                  'The switchover neither completed nor failed within its timeout plus two minutes.',
                ).next(pageOperator),
              ),
          )
          // Still running, or not started yet: the watch returned before its own timeout.
          .when(
            sfn.Condition.or(
              sfn.Condition.stringEquals('$.switchPoll.status', 'SWITCHOVER_IN_PROGRESS'),
              sfn.Condition.stringEquals('$.switchPoll.status', 'AVAILABLE'),
            ),
            switchCheck,
          )
          .otherwise(
            sfn.Pass.jsonPath(s, 'Note: the switchover status is unexpected', {
              parameters: {
                Error: 'SwitchoverStatusUnexpected',
                'Cause.$':
                  "States.Format('During the switchover RDS reported the blue/green deployment as {}, which the runbook does not expect. The page stays on and consumers stay paused: check the deployment in the RDS console.', $.switchPoll.status)",
              },
              resultPath: '$.failure',
            }).next(pageOperator),
          ),
      );
    switched
      .next(writerCount)
      .next(verifyWriter)
      .next(countWriter)
      .next(
        sfn.Choice.jsonPath(s, 'Is the new writer healthy?')
          .when(
            sfn.Condition.booleanEquals('$.writerCheck.passed', true),
            // Only a count of ended sessions lets the page go off; anything else (an error,
            // no answer at all) ends them in a step of their own first.
            sfn.Choice.jsonPath(s, 'Were the sessions on old blue ended?')
              .when(sfn.Condition.isPresent('$.writerCheck.oldSessions.ended'), pageOff)
              .otherwise(endOldSessions),
          )
          .when(sfn.Condition.numberLessThan('$.writerVerify.count', VERIFY_ATTEMPTS), writerWait)
          // A check that could not run (the function failed or timed out, the database
          // could not be reached) says nothing against the new writer, and restoring old
          // blue would throw a good upgrade away: stop with the page on and the consumers
          // paused, so nothing writes to an unverified database, and page an operator.
          .when(
            sfn.Condition.booleanEquals('$.writerCheck.inconclusive', true),
            sfn.Pass.jsonPath(s, 'Note: the new writer could not be checked', {
              parameters: {
                Error: 'WriterNotChecked',
                'Cause.$':
                  "States.Format('RDS switched over, but the writer check could not run, so the new writer was neither verified nor found bad. Maintenance stays on and consumers stay paused until an operator checks the writer. Last attempt: {}', States.JsonToString($.writerCheck.failures))",
              },
              resultPath: '$.failure',
            }).next(pageOperator),
          )
          .otherwise(
            sfn.Pass.jsonPath(s, 'Note: the new writer failed verification', {
              parameters: {
                Error: 'NewWriterFailedVerification',
                'Cause.$': 'States.JsonToString($.writerCheck.failures)',
              },
              resultPath: '$.failure',
            }).next(
              restorePath(s, {
                restoreOldBlue: fn.restoreOldBlue,
                verifyWriter: fn.verifyWriter,
                deployments,
                level,
                toOperator,
                pageOperator,
                rollback,
              }),
            ),
          ),
      );
    writerWait.next(verifyWriter);
    maintenanceOff
      .next(resume)
      .next(
        report(
          s,
          'Report: switched over',
          'IN_PROGRESS',
          'Switched over: the new writer is verified, the maintenance page is off and the consumers are draining the buffers.',
        ),
      )
      .next(
        notify(s, 'switched over', {
          topic,
          phase: 'switched over',
          subject: 'switched over, maintenance page off',
        }),
      )
      .next(
        protectWriter(
          s,
          'Protect the new writer from deletion',
          fn.deletionProtection,
          drain,
          toOperator,
        ),
      )
      .next(toCleanUp);
    cleanUp.next(
      // Until the deployment object is gone, so none is left behind.
      untilDeploymentGone(
        s,
        {
          start: 'Start counting clean-up checks',
          wait: 'Wait for the deployment to go',
          check: 'Check the deployment is gone',
          count: 'Count clean-up checks',
          choice: 'Is the clean-up done?',
          note: 'Note: the deployment was not cleaned up',
        },
        {
          deployments,
          gone: upgraded,
          stuck: pageOperator,
          cause:
            'The upgrade succeeded, but the blue/green deployment was still there 30 minutes after deletion started.',
          toOperator,
        },
      ),
    );
    upgraded
      .next(notify(s, 'upgraded', { topic, phase: 'outcome', subject: 'upgraded' }))
      .next(
        sfn.Pass.jsonPath(s, 'Output: upgraded', {
          parameters: {
            outcome: 'UPGRADED',
            'writer.$': '$.writerCheck.writer',
            'oldSessions.$': '$.writerCheck.oldSessions',
            'backlog.$': '$.drain',
            // What the quiet gate did: off, quiet (after how many checks) or not quiet in time.
            'quietGate.$': '$.quietGate',
            'plan.$': '$.plan',
          },
        }),
      )
      .next(sfn.Succeed.jsonPath(s, 'Upgrade complete'));

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${props.stateMachineName}`,
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      queryLanguage: sfn.QueryLanguage.JSON_PATH,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: RUNBOOK_TIMEOUT,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      comment: 'Upgrades the platform database with a blue/green deployment; see the README.',
    });
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Log delivery and X-Ray actions support no resource-level permissions. ' +
        'https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy',
    });
  }

  /**
   * Waits for each buffer to drain (bounded: 10 minutes), reporting what is left. A queue
   * still draining is not a failure: consumers are on and will finish.
   */
  private drain(queueArns: string[]): sfn.Map {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- a short scope name for many states
    const s = this;
    const map = sfn.Map.jsonPath(s, 'Drain buffers', {
      itemsPath: '$.plan.queues',
      itemSelector: { 'name.$': '$$.Map.Item.Value.name', 'url.$': '$$.Map.Item.Value.url' },
      resultPath: '$.drain',
    });
    const measure = awsCall(s, 'Measure queue backlog', {
      service: 'sqs',
      action: 'getQueueAttributes',
      parameters: {
        'QueueUrl.$': '$.url',
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      },
      iamResources: queueArns,
      // SQS returns the counts as strings; StringToJson makes them numbers.
      // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html
      resultSelector: {
        'waiting.$': 'States.StringToJson($.Attributes.ApproximateNumberOfMessages)',
        'inFlight.$': 'States.StringToJson($.Attributes.ApproximateNumberOfMessagesNotVisible)',
      },
      resultPath: '$.backlog',
    });
    const wait = sfn.Wait.jsonPath(s, 'Wait while the queue drains', {
      time: sfn.WaitTime.duration(DRAIN_POLL),
    });
    const done = sfn.Pass.jsonPath(s, 'Queue drained', {
      parameters: {
        'name.$': '$.name',
        'waiting.$': '$.backlog.waiting',
        'inFlight.$': '$.backlog.inFlight',
      },
    });
    map.itemProcessor(
      sfn.Chain.start(startCount(s, 'Start counting drain checks', '$.drainPoll'))
        .next(measure)
        .next(incrementCount(s, 'Count drain checks', '$.drainPoll'))
        .next(
          sfn.Choice.jsonPath(s, 'Is the queue drained?')
            .when(
              // Traffic keeps arriving, so "drained" is the pause's backlog gone, not zero.
              sfn.Condition.numberLessThanEquals('$.backlog.waiting', DRAINED_AT_MOST),
              done,
            )
            .when(sfn.Condition.numberGreaterThanEquals('$.drainPoll.count', MAX_DRAIN_POLLS), done)
            .otherwise(wait.next(measure)),
        ),
    );
    return map;
  }
}
