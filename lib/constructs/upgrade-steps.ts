import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { EXECUTION_TAG } from '../../lambda/watchdog-inspect/inspect';

/**
 * The names Step Functions may give an AWS SDK integration error with this code. AWS says
 * the name is "ServiceName.ErrorName", both PascalCase, always with the Exception suffix,
 * "even if the suffix is not part of the error name provided by the service". AWS does not
 * say what an RDS "...Fault" becomes: "...FaultException" by that rule, or, on the reading
 * that the names follow the AWS SDK for Java's exception classes (not documented), the class
 * name "...Exception", with errors the service does not model (throttling, internal
 * failures) as the service's generic exception. So a Retry or Catch names every form, and
 * the rehearsal runs under each (assumption sdk-integration-error-names).
 * https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
 */
export function sdkErrorNames(service: string, code: string): string[] {
  const withSuffix = code.endsWith('Exception') ? code : `${code}Exception`;
  const javaClass = code.endsWith('Fault')
    ? `${code.slice(0, -'Fault'.length)}Exception`
    : withSuffix;
  return [...new Set([`${service}.${withSuffix}`, `${service}.${javaClass}`])];
}

/**
 * Errors worth retrying: throttling and transient service faults, in each of the names an
 * SDK integration may give them (see sdkErrorNames), including the service's generic
 * exception, and Lambda invocation errors as documented for lambda:invoke.
 * https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
 */
export function transientErrors(...services: string[]): string[] {
  return [
    ...new Set(
      services.flatMap((s) => [
        ...['Throttling', 'ThrottlingException', 'TooManyRequestsException']
          .concat(['ServiceUnavailable', 'InternalFailure'])
          .flatMap((code) => sdkErrorNames(s, code)),
        `${s}.${s}Exception`,
      ]),
    ),
    'Lambda.ServiceException',
    'Lambda.AWSLambdaException',
    'Lambda.SdkClientException',
    'Lambda.TooManyRequestsException',
  ];
}

/** Backoff with full jitter, so parallel retries (a Map over mappings) spread out. */
export function retryTransient<T extends sfn.TaskStateBase>(task: T, ...services: string[]): T {
  task.addRetry({
    errors: transientErrors(...services),
    interval: Duration.seconds(2),
    maxAttempts: 5,
    backoffRate: 2,
    maxDelay: Duration.seconds(30),
    jitterStrategy: sfn.JitterType.FULL,
  });
  return task;
}

/** Every Task has a timeout; locally, a Task without one times out after 60 s. */
export const TASK_TIMEOUT = sfn.Timeout.duration(Duration.minutes(2));

// The SDK integration's service name, where IAM's differs.
const IAM_PREFIX: Record<string, string> = {
  sfn: 'states',
  elasticloadbalancingv2: 'elasticloadbalancing',
};

/** Checks of each consumer's state while it stops (5 s apart). */
export const MAX_PAUSE_CHECKS = 36;

/** IAM condition operators, each with its keys and values, as a policy statement writes them. */
export type IamConditions = Record<string, Record<string, unknown>>;

export { EXECUTION_TAG };

/**
 * Only a blue/green deployment this app created: one that carries EXECUTION_TAG, which the
 * runbook sets at CreateBlueGreenDeployment (its value, the execution name, is not known at
 * synth, so only its presence is required). A deployment without the tag (a person's, or
 * another tool's) is refused by IAM. Another run's deployment carries the tag too: telling
 * runs apart stays with the code (the runbook acts on the id it created, the watchdog only on
 * the stopped run's tag value).
 * The Service Authorization Reference lists aws:ResourceTag/${TagKey} for both actions this is
 * used on, and for the `deployment` resource type:
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-SwitchoverBlueGreenDeployment
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-resources-for-iam-policies
 *
 * The grants on green that go with these calls (lib/rds-access.ts: DeleteDBInstance,
 * ModifyDBInstance, PromoteReadReplica on `db:*`; for Aurora, the cluster actions on
 * `cluster:*`, `db:*` and `cluster-endpoint:*`) carry no tag condition: for RDS DB instances
 * AWS does not document that green carries any tag before the switchover ("tags from the blue
 * environment replace all tags on resources in the green environment" only during it); the
 * Aurora guide says blue's tags are copied to green at creation, but blue has no tag of this
 * app's when the platform is adopted, so no tag could be required.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-considerations.html
 */
export const OWN_DEPLOYMENT: IamConditions = {
  Null: { [`aws:ResourceTag/${EXECUTION_TAG}`]: 'false' },
};

export interface AwsCallProps extends Omit<tasks.CallAwsServiceJsonPathProps, 'taskTimeout'> {
  /**
   * Conditions on the statement that grants the call itself (its action on `iamResources`).
   * @default - none
   */
  readonly iamConditions?: IamConditions;
}

/**
 * A CallAwsService whose own statement carries conditions. aws-cdk-lib builds that statement
 * as `{ actions: [iamAction], resources: iamResources }` with no way to pass a condition
 * (aws-stepfunctions-tasks/lib/aws-sdk/call-aws-service.ts); the state machine collects the
 * task's statements only when it is built, so adding the conditions here makes the one
 * statement that allows the call the one that limits it (no Deny beside it to read).
 */
class ConditionalCallAwsService extends tasks.CallAwsService {
  constructor(
    scope: Construct,
    id: string,
    props: tasks.CallAwsServiceJsonPathProps,
    conditions: IamConditions,
  ) {
    super(scope, id, props);
    const own = (this.taskPolicies ?? []).filter(
      (s) =>
        s.actions.length === 1 &&
        s.actions[0] === props.iamAction &&
        s.resources.join() === props.iamResources.join(),
    );
    const [statement] = own;
    if (own.length !== 1 || statement === undefined) {
      throw new Error(`${id}: found ${own.length} statements for ${props.iamAction}, expected 1`);
    }
    statement.addConditions(structuredClone(conditions));
  }
}

/** A plain AWS API call (SDK integration) with retries on transient errors. */
export function awsCall(scope: Construct, id: string, props: AwsCallProps): tasks.CallAwsService {
  // IAM actions are case-insensitive, but the policy reads as AWS documents them.
  const iamAction = `${IAM_PREFIX[props.service] ?? props.service}:${pascal(props.action)}`;
  const { iamConditions, ...callProps } = props;
  const taskProps = { taskTimeout: TASK_TIMEOUT, iamAction, ...callProps };
  const task =
    iamConditions === undefined
      ? tasks.CallAwsService.jsonPath(scope, id, taskProps)
      : new ConditionalCallAwsService(scope, id, taskProps, iamConditions);
  retryTransient(task, pascal(props.service));
  // A read changes nothing, so a timeout is worth another try too.
  if (/^(describe|get|list)/.test(props.action)) {
    task.addRetry({
      errors: ['States.Timeout'],
      interval: Duration.seconds(3),
      maxAttempts: 3,
      backoffRate: 2,
      jitterStrategy: sfn.JitterType.FULL,
    });
  }
  return task;
}

/** A Lambda call whose result (the function's return value) lands at `resultPath`. */
/**
 * The calling execution, for the functions that change the database: they act only for a
 * RUNNING execution of the upgrade or the watchdog (lambda/shared/caller.ts).
 */
export const CALLER = { 'execution.$': '$$.Execution.Id' } as const;

export function invoke(
  scope: Construct,
  id: string,
  fn: lambda.IFunction,
  payload: Record<string, unknown>,
  resultPath: string | undefined,
  resultSelector?: Record<string, unknown>,
  taskTimeout: sfn.Timeout = TASK_TIMEOUT,
): tasks.LambdaInvoke {
  const task = tasks.LambdaInvoke.jsonPath(scope, id, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject(payload),
    payloadResponseOnly: resultSelector === undefined,
    resultSelector,
    resultPath,
    retryOnServiceExceptions: false,
    taskTimeout,
  });
  return retryTransient(task);
}

export interface NotifyProps {
  readonly topic: sns.ITopic;
  /** The phase, as people read it: "maintenance on". */
  readonly phase: string;
  /** Subject line. */
  readonly subject: string;
}

/**
 * One notification: an SNS message for people and an EventBridge event for status pages.
 * A failed notification never stops the upgrade: the Catch moves on.
 */
export function notify(scope: Construct, id: string, props: NotifyProps): sfn.Chain {
  const detail = {
    phase: props.phase,
    'execution.$': '$$.Execution.Id',
    'at.$': '$$.State.EnteredTime',
    'outcome.$': '$.report.outcome',
    'summary.$': '$.report.summary',
  };
  const publish = tasks.SnsPublish.jsonPath(scope, `Notify: ${id}`, {
    topic: props.topic,
    subject: `Database upgrade: ${props.subject}`,
    message: sfn.TaskInput.fromObject(detail),
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: TASK_TIMEOUT,
  });
  const emit = tasks.EventBridgePutEvents.jsonPath(scope, `Emit event: ${id}`, {
    entries: [
      {
        source: 'quiet-upgrade',
        detailType: 'Database upgrade phase',
        detail: sfn.TaskInput.fromObject(detail),
      },
    ],
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: TASK_TIMEOUT,
  });
  retryTransient(publish, 'Sns');
  retryTransient(emit, 'EventBridge');
  // Documented catch-all: a notification is best-effort and must never change the outcome.
  publish.addCatch(emit, { errors: ['States.ALL'], resultPath: sfn.JsonPath.DISCARD });
  const after = sfn.Pass.jsonPath(scope, `Notified: ${id}`);
  emit.addCatch(after, { errors: ['States.ALL'], resultPath: sfn.JsonPath.DISCARD });
  return sfn.Chain.start(publish).next(emit).next(after);
}

/** A Pass that writes `{ outcome, summary }` to `$.report` for the next notification. */
export function report(scope: Construct, id: string, outcome: string, summary: string): sfn.Pass {
  return sfn.Pass.jsonPath(scope, id, {
    result: sfn.Result.fromObject({ outcome, summary }),
    resultPath: '$.report',
  });
}

/** A Pass that records why the run is rolling back, in the same shape a Catch writes. */
export function reason(scope: Construct, id: string, error: string, cause: string): sfn.Pass {
  return sfn.Pass.jsonPath(scope, id, {
    result: sfn.Result.fromObject({ Error: error, Cause: cause }),
    resultPath: '$.failure',
  });
}

/** A counter for a bounded polling loop, at `path` (`{ count, now }`). */
export function startCount(scope: Construct, id: string, path: string): sfn.Pass {
  return sfn.Pass.jsonPath(scope, id, {
    parameters: { count: 0, 'now.$': '$$.State.EnteredTime' },
    resultPath: path,
  });
}

export function incrementCount(scope: Construct, id: string, path: string): sfn.Pass {
  return sfn.Pass.jsonPath(scope, id, {
    parameters: {
      'count.$': `States.MathAdd(${path}.count, 1)`,
      'now.$': '$$.State.EnteredTime',
    },
    resultPath: path,
  });
}

function pascal(service: string): string {
  return service.charAt(0).toUpperCase() + service.slice(1);
}

/** Turns the maintenance rules on or off through the toggle function (idempotent). */
export function maintenance(
  scope: Construct,
  id: string,
  toggle: lambda.IFunction,
  action: 'on' | 'off',
): tasks.LambdaInvoke {
  return invoke(scope, id, toggle, { action }, '$.maintenance', {
    'state.$': '$.Payload.maintenance',
  });
}

/**
 * A Map over `$.plan.mappings` that enables or disables each consumer's event source
 * mapping and, when disabling, waits until the mapping reports `Disabled` (bounded).
 * https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html
 * https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html#event-source-mapping-states
 */
export function setConsumers(
  scope: Construct,
  id: string,
  prefix: string,
  enabled: boolean,
  mappingArns: string[],
): sfn.Map {
  const map = sfn.Map.jsonPath(scope, id, {
    itemsPath: '$.plan.mappings',
    itemSelector: { 'uuid.$': '$$.Map.Item.Value.uuid', 'name.$': '$$.Map.Item.Value.name' },
    resultPath: sfn.JsonPath.DISCARD,
  });
  const update = awsCall(scope, `${prefix}: ${enabled ? 'enable' : 'disable'} consumer`, {
    service: 'lambda',
    action: 'updateEventSourceMapping',
    parameters: { 'UUID.$': '$.uuid', Enabled: enabled },
    iamResources: mappingArns,
    resultPath: sfn.JsonPath.DISCARD,
  });
  // A mapping still Disabling (or Enabling) refuses updates with ResourceInUseException:
  // try again until it settles (a minute at most).
  // https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#API_UpdateEventSourceMapping_Errors
  update.addRetry({
    errors: ['Lambda.ResourceInUseException', 'Lambda.ResourceConflictException'],
    interval: Duration.seconds(5),
    maxAttempts: 12,
    backoffRate: 1,
    jitterStrategy: sfn.JitterType.FULL,
  });
  if (enabled) {
    map.itemProcessor(update);
    return map;
  }
  // Disabling is asynchronous: the mapping goes Disabling, then Disabled. MAX_PAUSE_CHECKS
  // checks 5 s apart bound the wait at 3 minutes.
  const counter = `${prefix}: start counting consumer checks`;
  const wait = sfn.Wait.jsonPath(scope, `${prefix}: wait for consumer to stop`, {
    time: sfn.WaitTime.duration(Duration.seconds(5)),
  });
  const check = awsCall(scope, `${prefix}: check consumer state`, {
    service: 'lambda',
    action: 'getEventSourceMapping',
    parameters: { 'UUID.$': '$.uuid' },
    iamResources: mappingArns,
    resultSelector: { 'state.$': '$.State' },
    resultPath: '$.mapping',
  });
  const count = incrementCount(scope, `${prefix}: count consumer checks`, '$.checks');
  const stopped = sfn.Choice.jsonPath(scope, `${prefix}: has consumer stopped?`)
    .when(
      sfn.Condition.stringEquals('$.mapping.state', 'Disabled'),
      sfn.Succeed.jsonPath(scope, `${prefix}: consumer stopped`),
    )
    .when(
      sfn.Condition.numberGreaterThanEquals('$.checks.count', MAX_PAUSE_CHECKS),
      sfn.Fail.jsonPath(scope, `${prefix}: consumer did not stop`, {
        error: 'ConsumerDidNotStop',
        cause: 'An event source mapping did not reach Disabled within 3 minutes.',
      }),
    )
    .otherwise(wait);
  map.itemProcessor(
    sfn.Chain.start(update)
      .next(startCount(scope, counter, '$.checks'))
      .next(wait)
      .next(check)
      .next(count)
      .next(stopped),
  );
  return map;
}

export interface UnprotectGreenProps {
  /** The deletion-protection function (lambda/deletion-protection). */
  readonly fn: lambda.IFunction;
  /** Where the deployment's identifier is. */
  readonly deploymentId: string;
  /** Where the boolean DeleteTarget the deletion will use is. */
  readonly deleteTarget: string;
  /**
   * How to set it to false: the object that holds it, written whole (a Pass whose Result is
   * `false` itself is ignored by the rehearsal's interpreter; rehearsal/run.ts refuses one).
   */
  readonly withoutTarget: { path: string; parameters: Record<string, unknown> };
  /** Where to note the green instances kept, when they cannot be changed. */
  readonly keptPath: string;
}

/**
 * Before a deployment is deleted with its target: deletion protection off on the green
 * instances, never on blue ("If you choose to delete the DB instances in the green
 * environment (--delete-target), they must have deletion protection turned off"; whether
 * green inherits blue's, AWS does not say: rehearsal assumption green-deletion-protection).
 * A protected green instance that is not available yet (still being created) is waited for,
 * an hour at most (nobody waits on it: the page is off and consumers run); then the
 * deployment is deleted without green and the instances are noted at `keptPath`.
 * The calls are the function's, not SDK integrations: how Step Functions spells RDS's
 * "DB..." members is not documented.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html
 * Returns the first state; `next` is the deletion.
 */
export function unprotectGreen(
  scope: Construct,
  prefix: string,
  props: UnprotectGreenProps,
  next: sfn.IChainable,
  wrap: <T extends sfn.TaskStateBase>(task: T) => T,
): sfn.Choice {
  const call = wrap(
    invoke(
      scope,
      `${prefix}: turn deletion protection off on green`,
      props.fn,
      {
        action: 'unprotect-green',
        ...CALLER,
        'plan.$': '$.plan',
        'blueGreenDeploymentIdentifier.$': props.deploymentId,
      },
      '$.protection',
    ),
  );
  const wait = sfn.Wait.jsonPath(scope, `${prefix}: wait for green to be available`, {
    time: sfn.WaitTime.duration(Duration.seconds(60)),
  });
  const keep = sfn.Pass.jsonPath(scope, `${prefix}: keep the protected green`, {
    parameters: { 'instances.$': '$.protection.waiting' },
    resultPath: props.keptPath,
  })
    .next(
      sfn.Pass.jsonPath(scope, `${prefix}: delete the deployment without green`, {
        parameters: props.withoutTarget.parameters,
        resultPath: props.withoutTarget.path,
      }),
    )
    .next(next);
  call
    .next(incrementCount(scope, `${prefix}: count green protection checks`, '$.protectPoll'))
    .next(
      sfn.Choice.jsonPath(scope, `${prefix}: is green unprotected?`)
        .when(sfn.Condition.booleanEquals('$.protection.done', true), next)
        .when(sfn.Condition.numberGreaterThanEquals('$.protectPoll.count', 60), keep)
        .otherwise(wait.next(call)),
    );
  return sfn.Choice.jsonPath(scope, `${prefix}: delete green too?`)
    .when(
      sfn.Condition.booleanEquals(props.deleteTarget, true),
      startCount(scope, `${prefix}: start counting green protection checks`, '$.protectPoll').next(
        call,
      ),
    )
    .otherwise(next);
}

/**
 * Deletion protection on for the writer under the original name, after a switchover made
 * green that writer: green may not have inherited blue's (rehearsal assumption
 * green-deletion-protection). Outside the maintenance window, and not a reason to undo a good
 * upgrade; but an upgrade whose writer can be deleted is not done either, so a failure goes
 * where `wrap` sends it (an operator), with the page off and consumers on.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBInstance.html (DeletionProtection)
 */
export function protectWriter(
  scope: Construct,
  id: string,
  fn: lambda.IFunction,
  next: sfn.IChainable,
  wrap: <T extends sfn.TaskStateBase>(task: T) => T,
): sfn.IChainable {
  return wrap(
    invoke(
      scope,
      id,
      fn,
      { action: 'protect-writer', ...CALLER, 'plan.$': '$.plan' },
      sfn.JsonPath.DISCARD,
    ),
  ).next(next);
}

/**
 * Ends the client sessions left on an instance that is no longer the writer (`old-blue`:
 * `<id>-old1` after a switchover; `failed-writer`: `<id>-failed1` after a restore), then goes
 * on to `next`. When the function cannot (no route to that instance, say), the instance is
 * rebooted instead, which ends every session on it too, without counting them. When that
 * fails as well, the run stops for an operator (`onFailure`) with the page still on: a
 * session left there would fail users' writes once the page is off.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-best-practices
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RebootInstance.html
 */
export function endSessions(
  scope: Construct,
  id: string,
  props: {
    fn: lambda.IFunction;
    /** The function that reboots the instance when its sessions cannot be ended. */
    rebootFn: lambda.IFunction;
    on: 'old-blue' | 'failed-writer';
    resultPath: string;
    /** Where the run goes when neither worked; `$.failure` says why. */
    onFailure: sfn.IChainable;
  },
  next: sfn.IChainable,
): sfn.TaskStateBase {
  const suffix = props.on === 'old-blue' ? '-old1' : '-failed1';
  const lower = `${id.charAt(0).toLowerCase()}${id.slice(1)}`;
  const task = invoke(
    scope,
    id,
    props.fn,
    { 'plan.$': '$.plan', action: 'end-old-sessions', on: props.on },
    props.resultPath,
  );
  const note = (noteId: string, detail: string) =>
    sfn.Pass.jsonPath(scope, noteId, {
      parameters: {
        'instance.$': `States.Format('{}${suffix}', $.plan.sourceIdentifier)`,
        ended: null,
        'detail.$': detail,
      },
      resultPath: props.resultPath,
    }).next(next);
  const reboot = invoke(
    scope,
    `${id}: reboot instead`,
    props.rebootFn,
    { action: 'reboot-former-writer', ...CALLER, 'plan.$': '$.plan', on: props.on },
    sfn.JsonPath.DISCARD,
  );
  reboot.next(
    note(
      `Note: ${lower} rebooted`,
      "States.Format('the sessions could not be ended ({}), so the instance was rebooted, which ends them all', $.sessionsError.Cause)",
    ),
  );
  reboot.addCatch(
    sfn.Pass.jsonPath(scope, `Note: ${lower} failed`, {
      parameters: {
        Error: 'SessionsNotEnded',
        'Cause.$': `States.Format('The client sessions on {}${suffix} could not be ended ({}), nor the instance rebooted ({}). The page stays on: a session left there would fail the writes of users. End them by hand (docs/runbook.md 3.1), then turn maintenance off and resume the consumers.', $.plan.sourceIdentifier, $.sessionsError.Cause, $.rebootError.Cause)`,
      },
      resultPath: '$.failure',
    }).next(props.onFailure),
    { errors: ['States.ALL'], resultPath: '$.rebootError' },
  );
  task.addCatch(reboot, { errors: ['States.ALL'], resultPath: '$.sessionsError' });
  task.next(next);
  return task;
}

/** The deployment's deletion is checked this often, at most this many times (30 min). */
export const DELETE_POLL = Duration.seconds(30);
export const MAX_DELETE_POLLS = 60;

/** The names of one wait-until-deleted loop's states, as operators read them. */
export interface GoneLoopNames {
  start: string;
  wait: string;
  check: string;
  count: string;
  choice: string;
  /** The Pass that records DeploymentNotDeleted before the page. */
  note: string;
}

/**
 * Describes this run's deployment ($.blueGreen.id) into $.deleting; when RDS answers
 * BlueGreenDeploymentNotFound, goes to `gone` instead.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeBlueGreenDeployments.html#API_DescribeBlueGreenDeployments_Errors
 */
export function describeRunDeployment(
  scope: Construct,
  id: string,
  deployments: string,
  gone: sfn.IChainable,
): tasks.CallAwsService {
  const check = awsCall(scope, id, {
    service: 'rds',
    action: 'describeBlueGreenDeployments',
    parameters: { 'BlueGreenDeploymentIdentifier.$': '$.blueGreen.id' },
    iamResources: [deployments],
    resultSelector: { 'status.$': '$.BlueGreenDeployments[0].Status' },
    resultPath: '$.deleting',
  });
  check.addCatch(gone, {
    errors: sdkErrorNames('Rds', 'BlueGreenDeploymentNotFoundFault'),
    resultPath: sfn.JsonPath.DISCARD,
  });
  return check;
}

/**
 * After DeleteBlueGreenDeployment: describes this run's deployment every DELETE_POLL until
 * RDS answers BlueGreenDeploymentNotFound, then goes to `gone`. Past MAX_DELETE_POLLS it
 * records DeploymentNotDeleted with `cause` and goes to `stuck`; any other error goes where
 * `toOperator` sends it. Returns the loop's first state.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeBlueGreenDeployments.html#API_DescribeBlueGreenDeployments_Errors
 */
export function untilDeploymentGone(
  scope: Construct,
  names: GoneLoopNames,
  props: {
    /** The ARN pattern of blue/green deployments. */
    deployments: string;
    gone: sfn.IChainable;
    stuck: sfn.IChainable;
    cause: string;
    toOperator: (task: sfn.TaskStateBase) => sfn.TaskStateBase;
  },
): sfn.Pass {
  const wait = sfn.Wait.jsonPath(scope, names.wait, {
    time: sfn.WaitTime.duration(DELETE_POLL),
  });
  const check = describeRunDeployment(scope, names.check, props.deployments, props.gone);
  props.toOperator(check);
  const start = startCount(scope, names.start, '$.deletePoll');
  start
    .next(wait)
    .next(check)
    .next(incrementCount(scope, names.count, '$.deletePoll'))
    .next(
      sfn.Choice.jsonPath(scope, names.choice)
        .when(
          sfn.Condition.numberGreaterThanEquals('$.deletePoll.count', MAX_DELETE_POLLS),
          reason(scope, names.note, 'DeploymentNotDeleted', props.cause).next(props.stuck),
        )
        .otherwise(wait),
    );
  return start;
}
