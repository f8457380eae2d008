import { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { CALLER, incrementCount, invoke, reason, startCount } from './upgrade-steps';

/**
 * The fence is checked this often, at most this many times (15 minutes: a DB cluster
 * parameter group attached, then a reboot of old blue's writer). 11 history events a round:
 * 330 at most, which keeps the worst-case history under half the quota (historyWorstCase).
 */
export const FENCE_POLL = Duration.seconds(30);
export const MAX_FENCE_POLLS = 30;

/**
 * Aurora only, after a switchover and before the blue/green deployment is deleted: old blue
 * (`<id>-old1`) made read-only by its own DB cluster parameter group, one step per call of the
 * restore function (`action: fence-old-blue`), until its writer runs it. Deleting the
 * deployment lifts the read-only state RDS gave old blue: "After you delete a blue/green
 * deployment, RDS removes read-only protections from the previous production DB cluster. If
 * the read_only parameter is disabled for the DB cluster, it starts to allow write operations
 * again." An RDS DB instance needs no fence: "Deleting a blue/green deployment doesn't affect
 * the blue environment."
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-deleting.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html
 *
 * `prefix` names the states ("Clean up", "Restore", "Recover"). A failed step goes where
 * `toOperator` sends it; a fence not in place within MAX_FENCE_POLLS records FenceTimedOut and
 * goes to `stuck`. Either way the deployment is not deleted. Returns the loop's first state.
 */
export function fenceOldBlue(
  scope: Construct,
  prefix: string,
  props: {
    restoreOldBlue: lambda.IFunction;
    toOperator: <T extends sfn.TaskStateBase>(task: T) => T;
    stuck: sfn.IChainable;
  },
  next: sfn.IChainable,
): sfn.Pass {
  const fence = props.toOperator(
    invoke(
      scope,
      `${prefix}: fence old blue`,
      props.restoreOldBlue,
      { action: 'fence-old-blue', ...CALLER, 'plan.$': '$.plan', 'progress.$': '$.fence' },
      '$.fence',
    ),
  );
  const wait = sfn.Wait.jsonPath(scope, `${prefix}: wait for old blue's fence`, {
    time: sfn.WaitTime.duration(FENCE_POLL),
  });
  const start = sfn.Pass.jsonPath(scope, `${prefix}: old blue not fenced yet`, {
    result: sfn.Result.fromObject({ done: false, fenced: false }),
    resultPath: '$.fence',
  });
  start
    .next(startCount(scope, `${prefix}: start counting fence steps`, '$.fencePoll'))
    .next(fence)
    .next(incrementCount(scope, `${prefix}: count fence steps`, '$.fencePoll'))
    .next(
      sfn.Choice.jsonPath(scope, `${prefix}: is old blue fenced?`)
        .when(sfn.Condition.booleanEquals('$.fence.done', true), next)
        .when(
          sfn.Condition.numberGreaterThanEquals('$.fencePoll.count', MAX_FENCE_POLLS),
          reason(
            scope,
            `Note: ${prefix.toLowerCase()}: old blue was not fenced in time`,
            'FenceTimedOut',
            "Old blue's writer did not run its read-only DB cluster parameter group within 15 " +
              'minutes, so the blue/green deployment was kept: deleting it would let old blue ' +
              'take writes again (AWS). Check the -old1 DB cluster in the RDS console ' +
              '(docs/runbook.md 3.6.1).',
          ).next(props.stuck),
        )
        .otherwise(wait.next(fence)),
    );
  return start;
}
