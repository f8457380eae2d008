import { fenceOldBlue } from './fence-old-blue';
import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import {
  describeRunDeployment,
  CALLER,
  awsCall,
  endSessions,
  incrementCount,
  invoke,
  OWN_DEPLOYMENT,
  reason,
  sdkErrorNames,
  startCount,
  untilDeploymentGone,
} from './upgrade-steps';

/*
 * Bounds of the restore path, and the history they cost (11 events a round): deleting the
 * deployment 60 rounds (MAX_DELETE_POLLS) = 660; restoring 120 rounds = 1,320; verifying the restored writer
 * 30 rounds = 330.
 */
export const RESTORE_POLL = Duration.seconds(30);
export const MAX_RESTORE_POLLS = 120;
/**
 * A rename "takes effect in about 10 minutes" and the old address may stay cached, so the
 * restored writer is checked through the original endpoint for up to 30 minutes.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html
 */
export const RESTORED_RECHECK = Duration.seconds(60);
export const MAX_RESTORED_CHECKS = 30;

type Catchable = sfn.TaskStateBase | sfn.Map;

export interface RestorePathProps {
  readonly restoreOldBlue: lambda.IFunction;
  readonly verifyWriter: lambda.IFunction;
  /** The ARN pattern of blue/green deployments, for the delete and describe calls. */
  readonly deployments: string;
  /** Aurora (`cluster`): old blue is fenced before the deployment is deleted. */
  readonly level: 'instance' | 'cluster';
  /** Adds the catch that stops the run for an operator, page still on. */
  readonly toOperator: <T extends Catchable>(task: T) => T;
  readonly pageOperator: sfn.IChainable;
  /** Where a verified restore goes on: maintenance off, consumers on. */
  readonly rollback: sfn.IChainable;
}

/**
 * After a switchover whose new writer failed verification: the original database back as
 * the writer, with the maintenance page on and the consumers paused throughout. AWS documents
 * no rollback after a switchover, so this is built from what it does document:
 * 1. delete the blue/green deployment, without its target (the only way after a switchover),
 *    before any member is renamed: renaming members of a deployment is not documented. On
 *    Aurora, old blue is fenced first (./fence-old-blue.ts): the delete would let it take writes
 *    while the failed writer still does;
 * 2. restore-old-blue, one step per call: fence the failed writer (read-only group, reboot),
 *    rename it away, make old blue writable (writable group, reboot), give it the name;
 * 3. check the restored writer through the original endpoint (old version, writable) until
 *    the renames have reached DNS; only then may the page go off.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
 */
export function restorePath(s: Construct, props: RestorePathProps): sfn.IChainable {
  const { toOperator, pageOperator } = props;

  // ------------------------------------------------------------ 1. delete the deployment
  const gone = sfn.Pass.jsonPath(s, 'Restore: note the deployment is gone', {
    parameters: {
      'id.$': '$.blueGreen.id',
      'name.$': '$.blueGreen.name',
      deleteTarget: false,
      deleted: true,
    },
    resultPath: '$.blueGreen',
  });
  const notFound = sdkErrorNames('Rds', 'BlueGreenDeploymentNotFoundFault');
  const del = awsCall(s, 'Restore: delete the switched-over deployment', {
    service: 'rds',
    action: 'deleteBlueGreenDeployment',
    // "You can't specify this option if the blue/green deployment status is
    // SWITCHOVER_COMPLETED": both environments' instances stay. The same call for an Aurora
    // DB cluster, so the role needs no grant on green's resources for it (lib/rds-access.ts).
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteBlueGreenDeployment.html
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-deleting.html
    parameters: { 'BlueGreenDeploymentIdentifier.$': '$.blueGreen.id', DeleteTarget: false },
    iamResources: [props.deployments],
    // Only a deployment tagged by a run of this app (OWN_DEPLOYMENT).
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment
    iamConditions: OWN_DEPLOYMENT,
    resultPath: sfn.JsonPath.DISCARD,
  });
  del.addCatch(gone, { errors: notFound, resultPath: sfn.JsonPath.DISCARD });
  // The delete may read the deployment's tags (OWN_DEPLOYMENT): for one that is gone already,
  // whether RDS answers NotFound or AccessDenied AWS does not say (rehearsal assumption
  // tag-condition-on-missing-resource). A denial is checked with one describe: gone, the
  // restore goes on; still there, the operator is paged at once. ("Rds.RdsException" is the
  // name AccessDenied may take, as RDS models no such error: see sdkErrorNames.)
  // https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag
  const denied = describeRunDeployment(
    s,
    'Restore: was the deployment gone already?',
    props.deployments,
    gone,
  );
  toOperator(denied);
  denied.next(
    sfn.Pass.jsonPath(s, 'Note: the deployment could not be deleted', {
      parameters: {
        Error: 'DeploymentNotDeleted',
        Cause: sfn.JsonPath.format(
          'The new writer failed verification and deleting the blue/green deployment was ' +
            'refused while it still exists, so old blue was not restored. Maintenance is on ' +
            'and consumers are paused. Check the deployment carries the ' +
            'quiet-upgrade:execution tag and the runbook role may delete it. RDS said: {}',
          sfn.JsonPath.stringAt('$.deleteError.Cause'),
        ),
      },
      resultPath: '$.failure',
    }).next(pageOperator),
  );
  // An AccessDenied that reaches the state machine as Rds.RdsException is one of the
  // transient errors retryTransient retries (5 attempts, up to about a minute) before it is
  // caught here; the catch keeps RDS's answer for the operator's note.
  del.addCatch(denied, {
    errors: [...sdkErrorNames('Rds', 'AccessDenied'), 'Rds.RdsException'],
    resultPath: '$.deleteError',
  });
  toOperator(del);
  del.next(
    untilDeploymentGone(
      s,
      {
        start: 'Restore: start counting deletion checks',
        wait: 'Restore: wait for the deployment to go',
        check: 'Restore: check the deployment is gone',
        count: 'Restore: count deletion checks',
        choice: 'Restore: is the deployment gone?',
        note: 'Note: the switched-over deployment was not deleted',
      },
      {
        deployments: props.deployments,
        gone,
        stuck: pageOperator,
        cause:
          'The new writer failed verification and the blue/green deployment was still there ' +
          '30 minutes after deletion started, so old blue was not restored. Maintenance is ' +
          'on and consumers are paused.',
        toOperator,
      },
    ),
  );

  // ------------------------------------------------------------ 2. restore, step by step
  const restore = toOperator(
    invoke(
      s,
      'Restore old blue as the writer',
      props.restoreOldBlue,
      { ...CALLER, 'plan.$': '$.plan', 'progress.$': '$.restore' },
      '$.restore',
    ),
  );
  const restoreWait = sfn.Wait.jsonPath(s, 'Wait for the restore to progress', {
    time: sfn.WaitTime.duration(RESTORE_POLL),
  });
  const verify = verifyRestored(s, props);
  gone
    .next(
      sfn.Pass.jsonPath(s, 'Restore: nothing restored yet', {
        result: sfn.Result.fromObject({
          done: false,
          step: 'wait',
          detail: 'not started',
          fenced: false,
          unlocked: false,
        }),
        resultPath: '$.restore',
      }),
    )
    .next(startCount(s, 'Start counting restore steps', '$.restorePoll'))
    .next(restore)
    .next(incrementCount(s, 'Count restore steps', '$.restorePoll'))
    .next(
      sfn.Choice.jsonPath(s, 'Is old blue restored?')
        .when(sfn.Condition.booleanEquals('$.restore.done', true), verify)
        .when(
          sfn.Condition.numberGreaterThanEquals('$.restorePoll.count', MAX_RESTORE_POLLS),
          reason(
            s,
            'Note: old blue was not restored in time',
            'RestoreTimedOut',
            'Old blue was not restored as the writer within an hour.',
          ).next(pageOperator),
        )
        .otherwise(restoreWait.next(restore)),
    );
  if (props.level === 'instance') return del;
  return fenceOldBlue(
    s,
    'Restore',
    { restoreOldBlue: props.restoreOldBlue, toOperator, stuck: pageOperator },
    del,
  );
}

/** Step 3: the restored writer, through the original endpoint, until it passes. */
function verifyRestored(s: Construct, props: RestorePathProps): sfn.IChainable {
  const check = invoke(
    s,
    'Verify the restored writer',
    props.verifyWriter,
    { 'plan.$': '$.plan', expect: 'current', restored: true },
    '$.restoredCheck',
  );
  const count = incrementCount(s, 'Count restored writer checks', '$.restoredVerify');
  check.addCatch(
    sfn.Pass.jsonPath(s, 'Note: the restored writer check did not run', {
      parameters: {
        passed: false,
        inconclusive: true,
        'failures.$': 'States.Array($.restoredCheckError.Cause)',
        writer: null,
      },
      resultPath: '$.restoredCheck',
    }).next(count),
    // Not $.failure: that says why the run is rolling back (NewWriterFailedVerification).
    { errors: ['States.ALL'], resultPath: '$.restoredCheckError' },
  );
  const wait = sfn.Wait.jsonPath(s, 'Wait before checking the restored writer again', {
    time: sfn.WaitTime.duration(RESTORED_RECHECK),
  });
  const start = startCount(s, 'Start counting restored writer checks', '$.restoredVerify');
  start
    .next(check)
    .next(count)
    .next(
      sfn.Choice.jsonPath(s, 'Is the restored writer verified?')
        .when(
          sfn.Condition.booleanEquals('$.restoredCheck.passed', true),
          // Clients that reached the failed writer through a cached address: their writes
          // would fail there (it is fenced), so end their sessions before the page goes off.
          endSessions(
            s,
            'Restore: end client sessions on the failed writer',
            {
              fn: props.verifyWriter,
              on: 'failed-writer',
              rebootFn: props.restoreOldBlue,
              resultPath: '$.failedWriterSessions',
              onFailure: props.pageOperator,
            },
            props.rollback,
          ),
        )
        .when(
          sfn.Condition.numberGreaterThanEquals('$.restoredVerify.count', MAX_RESTORED_CHECKS),
          sfn.Pass.jsonPath(s, 'Note: the restored writer was not verified', {
            parameters: {
              Error: 'RestoredWriterNotVerified',
              'Cause.$':
                "States.Format('Old blue is back under the original name, but 30 minutes of checks through the original endpoint did not find it writable on the old version, so maintenance stays on and consumers stay paused. Last check: {}', States.JsonToString($.restoredCheck.failures))",
            },
            resultPath: '$.failure',
          }).next(props.pageOperator),
        )
        .otherwise(wait.next(check)),
    );
  return start;
}
