import { fenceOldBlue } from './fence-old-blue';
import { Arn, ArnFormat, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { PlanDefaults } from '../../lambda/validate-input/validate';
import type { DatabaseEngine } from '../engines';
import { blueGreenGrants, rdsVocabulary, wildcardResources } from '../rds-access';
import {
  awsCall,
  endSessions,
  incrementCount,
  invoke,
  maintenance,
  notify,
  OWN_DEPLOYMENT,
  report,
  setConsumers,
  startCount,
  protectWriter,
  unprotectGreen,
} from './upgrade-steps';

export interface UpgradeWatchdogProps {
  /** The upgrade state machine it watches, and its (fixed) name. */
  readonly upgrade: sfn.IStateMachine;
  readonly upgradeMachineName: string;
  readonly stateMachineName: string;
  /**
   * The database's engine: what deleting green takes differs for an Aurora DB cluster
   * (lib/rds-access.ts). It must be the plan's.
   */
  readonly engine: DatabaseEngine;
  readonly planDefaults: PlanDefaults;
  readonly validateInput: lambda.IFunction;
  readonly inspect: lambda.IFunction;
  readonly verifyWriter: lambda.IFunction;
  /** Reboots old blue when its client sessions cannot be ended one by one. */
  readonly restoreOldBlue: lambda.IFunction;
  /** Deletion protection off on green before it is deleted, on for the new writer. */
  readonly deletionProtection: lambda.IFunction;
  readonly toggle: lambda.IFunction;
  readonly topic: sns.ITopic;
  readonly mappingArns: string[];
}

export const WATCHDOG_POLL = Duration.seconds(30);
export const MAX_WATCHDOG_POLLS = 40;

/**
 * Recovers after an upgrade execution that ended without running its own rollback (aborted,
 * timed out, or failed on an unexpected error). It looks at the real state (maintenance
 * rules, mappings, the blue/green deployment, the writer) and restores a safe state by the
 * rollback's rules, or pages the operator.
 */
export class UpgradeWatchdog extends Construct {
  readonly stateMachine: sfn.StateMachine;
  readonly rule: events.Rule;
  /** The RDS resources the role names by wildcard besides deployments: green's. */
  readonly greenWildcards: string[];

  constructor(scope: Construct, id: string, props: UpgradeWatchdogProps) {
    super(scope, id);
    if (props.engine !== props.planDefaults.engine) {
      throw new Error(
        `engine must be the plan's engine (${props.planDefaults.engine}), got: ${props.engine}`,
      );
    }
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- a short scope name for many states
    const s = this;
    const { topic, toggle } = props;
    const stack = Stack.of(this);
    const rdsArn = (resource: string, name: string) =>
      Arn.format(
        { service: 'rds', resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME },
        stack,
      );
    const deployments = rdsArn('deployment', '*');
    // Recovery deletes green only before a switchover, as the runbook's rollback does.
    const deleteTarget = blueGreenGrants(rdsVocabulary(props.engine).level, {
      arn: rdsArn,
      sourceArn: props.planDefaults.sourceArn,
    }).deleteTarget;
    this.greenWildcards = wildcardResources(deleteTarget, [deployments]);

    const page = report(
      s,
      'Report: watchdog needs an operator',
      'NEEDS_OPERATOR',
      'An upgrade run stopped and the watchdog could not restore a safe state by itself. ' +
        'Maintenance and consumers are as its last steps left them (the failure names the ' +
        'step that failed). See observed in this message.',
    );
    page
      .next(
        notify(s, 'watchdog needs an operator', {
          topic,
          phase: 'watchdog',
          subject: 'NEEDS AN OPERATOR (watchdog)',
        }),
      )
      .next(sfn.Succeed.jsonPath(s, 'Stopped: watchdog needs an operator'));
    const toPage = <T extends sfn.TaskStateBase | sfn.Map>(task: T): T => {
      task.addCatch(page, { errors: ['States.ALL'], resultPath: '$.failure' });
      return task;
    };

    const describe = toPage(
      // Its Error, Input and ExecutionArn, as the SDK names them.
      // https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
      awsCall(s, 'Describe the stopped execution', {
        service: 'sfn',
        action: 'describeExecution',
        parameters: { 'ExecutionArn.$': '$.detail.executionArn' },
        iamResources: [
          Arn.format(
            {
              service: 'states',
              resource: 'execution',
              resourceName: `${props.upgradeMachineName}:*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            },
            stack,
          ),
        ],
        resultPath: '$.stopped',
      }),
    );
    const nothing = report(
      s,
      'Report: nothing to recover',
      'NOTHING_TO_RECOVER',
      'The run stopped before changing anything, or everything is already safe.',
    );
    nothing
      .next(
        notify(s, 'nothing to recover', {
          topic,
          phase: 'watchdog',
          subject: 'watchdog: nothing to recover',
        }),
      )
      .next(sfn.Succeed.jsonPath(s, 'Nothing to recover'));
    const changedNothing = sfn.Choice.jsonPath(s, 'Did the run change anything?').when(
      sfn.Condition.and(
        sfn.Condition.isPresent('$.stopped.Error'),
        sfn.Condition.or(
          sfn.Condition.stringMatches('$.stopped.Error', 'InvalidInput*'),
          sfn.Condition.stringEquals('$.stopped.Error', 'PreflightFailed'),
        ),
      ),
      nothing,
    );
    const rebuild = toPage(
      invoke(
        s,
        'Rebuild the plan',
        props.validateInput,
        {
          'input.$': 'States.StringToJson($.stopped.Input)',
          defaults: props.planDefaults,
          'startTime.$': '$$.Execution.StartTime',
          recovery: true,
        },
        '$.rebuilt',
      ),
    );
    const keepPlan = sfn.Pass.jsonPath(s, 'Keep the plan', {
      parameters: { 'plan.$': '$.rebuilt.plan', 'stopped.$': '$.stopped' },
    });
    const inspect = toPage(
      invoke(
        s,
        'Inspect the real state',
        props.inspect,
        { 'plan.$': '$.plan', 'stoppedExecutionArn.$': '$.stopped.ExecutionArn' },
        '$.inspection',
      ),
    );
    const wait = sfn.Wait.jsonPath(s, 'Wait before inspecting again', {
      time: sfn.WaitTime.duration(WATCHDOG_POLL),
    });

    // The rollback's rules: maintenance off, consumers on, then the deployment deleted
    // (with green only if it never switched over).
    const recovered = report(
      s,
      'Report: recovered',
      'RECOVERED',
      'The watchdog restored a safe state: maintenance is off and consumers run against a verified writer.',
    );
    recovered
      .next(
        notify(s, 'recovered', {
          topic,
          phase: 'watchdog',
          subject: 'watchdog recovered the upgrade',
        }),
      )
      .next(sfn.Succeed.jsonPath(s, 'Recovered'));
    const deleteDeployment = toPage(
      awsCall(s, 'Recover: delete the blue-green deployment', {
        service: 'rds',
        action: 'deleteBlueGreenDeployment',
        parameters: {
          'BlueGreenDeploymentIdentifier.$': '$.inspection.blueGreenDeploymentIdentifier',
          'DeleteTarget.$': '$.target.deleteTarget',
        },
        iamResources: [deployments],
        // Only a deployment tagged by a run of this app (OWN_DEPLOYMENT), as inspect already
        // requires in code (the stopped run's own).
        // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment
        iamConditions: OWN_DEPLOYMENT,
        // Green's resources, for DeleteTarget=true (lib/rds-access.ts). No tag condition: see
        // OWN_DEPLOYMENT.
        additionalIamStatements: deleteTarget,
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );
    deleteDeployment.next(recovered);
    // Aurora, after a switchover (green kept): old blue fenced by its own parameter group
    // before the delete lifts the read-only state RDS gave it (./fence-old-blue.ts).
    const toDelete =
      rdsVocabulary(props.engine).level === 'cluster'
        ? sfn.Choice.jsonPath(s, 'Recover: must old blue be fenced first?')
            .when(
              sfn.Condition.booleanEquals('$.target.deleteTarget', false),
              fenceOldBlue(
                s,
                'Recover',
                { restoreOldBlue: props.restoreOldBlue, toOperator: toPage, stuck: page },
                deleteDeployment,
              ),
            )
            .otherwise(deleteDeployment)
        : deleteDeployment;
    const unprotect = unprotectGreen(
      s,
      'Recover',
      {
        fn: props.deletionProtection,
        deploymentId: '$.inspection.blueGreenDeploymentIdentifier',
        deleteTarget: '$.target.deleteTarget',
        withoutTarget: { path: '$.target', parameters: { deleteTarget: false } },
        keptPath: '$.keptGreen',
      },
      toDelete,
      toPage,
    );
    const deleteChoice = sfn.Choice.jsonPath(s, 'Recover: is there a deployment to delete?')
      .when(sfn.Condition.isString('$.inspection.blueGreenDeploymentIdentifier'), unprotect)
      .otherwise(recovered);
    // A new writer verified here is protected from deletion once the page is off and the
    // consumers run again, as the runbook does: a step less while users wait, and a failure to
    // protect it leaves nothing paused.
    const resume = toPage(maintenance(s, 'Recover: turn maintenance off', toggle, 'off'))
      .next(
        toPage(setConsumers(s, 'Recover: resume consumers', 'Recover', true, props.mappingArns)),
      )
      .next(
        sfn.Choice.jsonPath(s, 'Recover: is there a new writer to protect?')
          .when(
            sfn.Condition.and(
              sfn.Condition.isPresent('$.protectWriter'),
              sfn.Condition.booleanEquals('$.protectWriter', true),
            ),
            protectWriter(
              s,
              'Recover: protect the new writer from deletion',
              props.deletionProtection,
              deleteChoice,
              toPage,
            ),
          )
          .otherwise(deleteChoice),
      );
    const withTarget = (id: string, value: boolean) =>
      sfn.Pass.jsonPath(s, id, {
        result: sfn.Result.fromObject({ deleteTarget: value }),
        resultPath: '$.target',
      });

    const verify = toPage(
      invoke(
        s,
        'Recover: verify the writer',
        props.verifyWriter,
        { 'plan.$': '$.plan' },
        '$.writerCheck',
      ),
    );
    verify.next(
      sfn.Choice.jsonPath(s, 'Recover: is the writer healthy?')
        .when(
          sfn.Condition.booleanEquals('$.writerCheck.passed', true),
          endSessions(
            s,
            'Recover: end client sessions on old blue',
            {
              fn: props.verifyWriter,
              on: 'old-blue',
              rebootFn: props.restoreOldBlue,
              resultPath: '$.oldSessions',
              onFailure: page,
            },
            withTarget('Recover: keep green', false)
              .next(
                sfn.Pass.jsonPath(s, 'Recover: note the new writer', {
                  result: sfn.Result.fromBoolean(true),
                  resultPath: '$.protectWriter',
                }),
              )
              .next(resume),
          ),
        )
        .otherwise(page),
    );

    const decide = sfn.Choice.jsonPath(s, 'What does recovery need?')
      .when(sfn.Condition.stringEquals('$.inspection.action', 'nothing'), nothing)
      .when(
        sfn.Condition.stringEquals('$.inspection.action', 'resume'),
        withTarget('Recover: blue is the writer', false).next(resume),
      )
      .when(
        sfn.Condition.stringEquals('$.inspection.action', 'resume-and-delete-green'),
        withTarget('Recover: delete green too', true).next(resume),
      )
      .when(sfn.Condition.stringEquals('$.inspection.action', 'verify-then-resume'), verify)
      .when(
        sfn.Condition.and(
          sfn.Condition.stringEquals('$.inspection.action', 'wait'),
          sfn.Condition.numberLessThan('$.inspectPoll.count', MAX_WATCHDOG_POLLS),
        ),
        wait,
      )
      .otherwise(page);

    const definition = describe.next(changedNothing);
    changedNothing.otherwise(rebuild);
    rebuild.next(
      sfn.Choice.jsonPath(s, 'Was the plan rebuilt?')
        .when(sfn.Condition.booleanEquals('$.rebuilt.valid', true), keepPlan)
        .otherwise(page),
    );
    keepPlan
      .next(startCount(s, 'Start counting inspections', '$.inspectPoll'))
      .next(inspect)
      .next(incrementCount(s, 'Count inspections', '$.inspectPoll'))
      .next(decide);
    wait.next(inspect);

    const logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${props.stateMachineName}`,
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: props.stateMachineName,
      queryLanguage: sfn.QueryLanguage.JSON_PATH,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      comment: 'Restores a safe state after an upgrade run stopped without its own rollback.',
    });
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Log delivery and X-Ray actions support no resource-level permissions. ' +
        'https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html#cloudwatch-iam-policy',
    });

    // https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html#cw-events-events
    this.rule = new events.Rule(this, 'StoppedRuns', {
      description: 'An upgrade run was aborted, timed out or failed: start the watchdog',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: {
          status: ['ABORTED', 'TIMED_OUT', 'FAILED'],
          stateMachineArn: [props.upgrade.stateMachineArn],
        },
      },
      targets: [new targets.SfnStateMachine(this.stateMachine)],
    });
  }
}
