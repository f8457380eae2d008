import { Duration } from 'aws-cdk-lib';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { QUIET_GATE_MAX_WAIT_MINUTES } from '../config';
import { awsCall, incrementCount, notify, reason, report, startCount } from './upgrade-steps';

/** The gate reads the traffic alarm once a minute, as its datapoints come. */
export const QUIET_GATE_RECHECK = Duration.minutes(1);
/** Events of one minute's round: Wait 2, count Pass 2, DescribeAlarms Task 5, Choice 2. */
export const QUIET_GATE_ROUND_EVENTS = 11;
/** The gate's share of the worst-case history: every round of the longest wait. */
export const QUIET_GATE_WORST_EVENTS = QUIET_GATE_MAX_WAIT_MINUTES * QUIET_GATE_ROUND_EVENTS;

type Catchable = sfn.TaskStateBase | sfn.Map;

export interface QuietGateProps {
  readonly topic: sns.ITopic;
  /** Adds the catch that rolls the run back. */
  readonly toRollback: <T extends Catchable>(task: T) => T;
  readonly rollback: sfn.IChainable;
  /** Where the run goes on: the deadline check, then pausing the consumers. */
  readonly next: sfn.IChainable;
}

/**
 * The quiet gate, before the deadline check and the pause: the page's seconds cost the users
 * of those seconds, so the switchover waits for a quiet minute. What follows it is the
 * deadline check ('Is there time to switch over?'), so a gate that gives up late, or a quiet
 * minute found after the deadline, never starts a switchover past it. It reads the traffic
 * alarm's state (OK: no minute of the last 3 over the threshold), once a minute, at most
 * `plan.quietGate.maxChecks` times and not past `plan.quietGate.until` (5 minutes before the
 * deadline); then it switches anyway or rolls back, as `plan.quietGate.onDeadline` says, and
 * says so in a notification and in `$.quietGate`, which the outcome carries. Off unless the
 * plan turns it on.
 *
 * An alarm's state follows its datapoints, which the load balancer sends each minute, so the
 * gate sees traffic as it was some time ago; how long, AWS does not say (the rehearsal models
 * one and three minutes: assumption alarm-datapoint-lag). It may wait longer than needed, or
 * start the pause as traffic rises again. Either costs users, never data.
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
 */
export function quietGate(s: Construct, props: QuietGateProps): sfn.IChainable {
  const { toRollback, next } = props;
  const passed = (id: string, outcome: string) =>
    sfn.Pass.jsonPath(s, id, {
      parameters: {
        outcome,
        'checks.$': '$.quietPoll.count',
        'alarm.$': '$.quiet.alarms[0].StateValue',
        'at.$': '$$.State.EnteredTime',
      },
      resultPath: '$.quietGate',
    });

  const read = toRollback(
    awsCall(s, 'Quiet gate: read the traffic alarm', {
      service: 'cloudwatch',
      action: 'describeAlarms',
      parameters: { 'AlarmNames.$': 'States.Array($.plan.quietGate.alarmName)' },
      // The whole list, a definite path: an alarm that is gone is an empty list, which the
      // choice below meets by name (TrafficAlarmMissing).
      resultSelector: { 'alarms.$': '$.MetricAlarms' },
      // Whether DescribeAlarms can be scoped to an alarm's ARN the copies of the service
      // authorization reference read here disagree, so "*" (WILDCARD_REASONS.listCalls).
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html
      // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
      iamResources: ['*'],
      resultPath: '$.quiet',
    }),
  );
  const wait = sfn.Wait.jsonPath(s, 'Quiet gate: wait a minute', {
    time: sfn.WaitTime.duration(QUIET_GATE_RECHECK),
  });
  wait.next(incrementCount(s, 'Quiet gate: count checks', '$.quietPoll')).next(read);

  const notQuiet = sfn.Choice.jsonPath(s, 'Quiet gate: switch anyway or roll back?')
    .when(
      sfn.Condition.stringEquals('$.plan.quietGate.onDeadline', 'switch-anyway'),
      passed('Note: not quiet in time, switching anyway', 'not quiet in time: switched anyway')
        .next(
          report(
            s,
            'Report: not quiet in time',
            'IN_PROGRESS',
            'Traffic was not quiet by the quiet gate’s limit; switching over anyway, as configured.',
          ),
        )
        .next(
          notify(s, 'not quiet in time', {
            topic: props.topic,
            phase: 'quiet gate',
            subject: 'not quiet in time, switching over anyway',
          }),
        )
        .next(next),
    )
    .otherwise(
      passed('Note: not quiet in time, rolling back', 'not quiet in time: rolled back')
        .next(
          sfn.Pass.jsonPath(s, 'Note: traffic was not quiet in time', {
            parameters: {
              Error: 'NotQuietInTime',
              Cause: sfn.JsonPath.format(
                'Traffic stayed over the quiet gate’s threshold of {} requests a minute through ' +
                  '{} checks a minute apart, to {} (its limit: maxWaitMinutes {}, or {}, 5 ' +
                  'minutes before the deadline); the traffic alarm said {}. The run rolls ' +
                  'back, as quietGate.onDeadline says.',
                sfn.JsonPath.stringAt('$.plan.quietGate.requestsPerMinute'),
                sfn.JsonPath.stringAt('$.quietPoll.count'),
                sfn.JsonPath.stringAt('$.quietPoll.now'),
                sfn.JsonPath.stringAt('$.plan.quietGate.maxChecks'),
                sfn.JsonPath.stringAt('$.plan.quietGate.until'),
                sfn.JsonPath.stringAt('$.quiet.alarms[0].StateValue'),
              ),
            },
            resultPath: '$.failure',
          }),
        )
        .next(props.rollback),
    );

  read.next(
    sfn.Choice.jsonPath(s, 'Is traffic quiet?')
      .when(
        sfn.Condition.not(sfn.Condition.isPresent('$.quiet.alarms[0]')),
        reason(
          s,
          'Note: the traffic alarm is missing',
          'TrafficAlarmMissing',
          `The quiet gate reads the alarm the plan names (plan.quietGate.alarmName) and ` +
            'CloudWatch has no such alarm: was it deleted? Deploy the edge stack again, or run ' +
            'without the gate ("quietGate": {"enabled": false}).',
        ).next(props.rollback),
      )
      .when(
        sfn.Condition.stringEquals('$.quiet.alarms[0].StateValue', 'OK'),
        passed('Note: traffic is quiet', 'quiet').next(next),
      )
      .when(
        sfn.Condition.or(
          sfn.Condition.numberGreaterThanEqualsJsonPath(
            '$.quietPoll.count',
            '$.plan.quietGate.maxChecks',
          ),
          sfn.Condition.timestampGreaterThanEqualsJsonPath(
            '$.quietPoll.now',
            '$.plan.quietGate.until',
          ),
        ),
        notQuiet,
      )
      .otherwise(wait),
  );

  return sfn.Choice.jsonPath(s, 'Is the quiet gate on?')
    .when(
      sfn.Condition.booleanEquals('$.plan.quietGate.enabled', true),
      startCount(s, 'Quiet gate: start counting', '$.quietPoll').next(read),
    )
    .otherwise(
      sfn.Pass.jsonPath(s, 'Note: no quiet gate', {
        result: sfn.Result.fromObject({ outcome: 'off' }),
        resultPath: '$.quietGate',
      }).next(next),
    );
}
