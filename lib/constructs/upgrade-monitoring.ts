import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { BUFFER_NAMES, type BufferName } from '../../lambda/shared/contracts';
import { ENGINE_SPECS, type DatabaseEngine } from '../engines';
import type { BufferRefs } from '../platform';

export interface UpgradeMonitoringProps {
  /** The dashboard's name, which the runbook tells operators to open. */
  readonly dashboardName: string;
  /**
   * The production (blue) instance, or for Aurora the blue DB cluster; after a switchover the
   * new writer has the same name.
   */
  readonly databaseInstanceIdentifier: string;
  /**
   * The database's engine: which of blue's metrics shows what green's replication holds, and
   * for Aurora, that the database's metrics are read by cluster and role.
   * @default 'postgres'
   */
  readonly engine?: DatabaseEngine;
  /** The write buffers, built by this app or adopted. */
  readonly buffers: Record<BufferName, BufferRefs>;
  /** The upgrade runbook. */
  readonly upgrade: sfn.IStateMachine;
  /** The watchdog that recovers stopped runs. */
  readonly watchdog: sfn.IStateMachine;
  /** Where every alarm is sent. */
  readonly alarmTopic: sns.ITopic;
  /**
   * A buffered message older than this means its consumer is paused or failing.
   * @default Duration.hours(1)
   */
  readonly maxMessageAge?: Duration;
}

// SQS and Step Functions publish every minute; RDS instance metrics every minute too.
// https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
// https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html#cloudwatch-step-functions-execution-metrics
// https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html#rds-cw-metrics-instance
const MINUTE = Duration.minutes(1);

/** What an operator should know first when a run stops without its own outcome. */
const AFTERMATH = {
  upgrade:
    'The watchdog starts by itself, inspects maintenance, consumers and the deployment, and ' +
    'reports on the topic.',
  watchdog:
    'Nothing else will recover the stopped upgrade run: maintenance may still be on or ' +
    'consumers paused.',
} as const;
const SUM = { period: MINUTE, statistic: 'Sum' } as const;
const MAX = { period: MINUTE, statistic: 'Maximum' } as const;

/** The states of an execution that end it without the runbook's own outcome. */
const STOPPED_RUNS = [
  ['Failed', 'failed', (m: sfn.IStateMachine) => m.metricFailed(SUM)],
  ['Aborted', 'was stopped (aborted)', (m: sfn.IStateMachine) => m.metricAborted(SUM)],
  ['TimedOut', 'timed out', (m: sfn.IStateMachine) => m.metricTimedOut(SUM)],
] as const;

/**
 * One CloudWatch dashboard for the upgrade, and the alarms that page through the SNS topic:
 * a message in a DLQ, a buffered message older than the threshold, and an upgrade or
 * watchdog run that failed, was aborted or timed out.
 *
 * Plain CDK rather than cdk-monitoring-constructs: the metrics are the buffers', the two
 * machines' and the database's, about one line each, and the alarms carry runbook text.
 */
export class UpgradeMonitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  /** Every alarm, by a readable key such as "sends-dlq" or "upgrade-failed". */
  readonly alarms: Record<string, cloudwatch.Alarm> = {};

  constructor(scope: Construct, id: string, props: UpgradeMonitoringProps) {
    super(scope, id);
    const maxAge = props.maxMessageAge ?? Duration.hours(1);
    const buffers = BUFFER_NAMES.map((name) => ({ name, ...props.buffers[name] }));
    const action = new cwActions.SnsAction(props.alarmTopic);

    const alarm = (
      key: string,
      alarmProps: Pick<cloudwatch.AlarmProps, 'alarmDescription' | 'metric' | 'threshold'>,
      withOk: boolean,
    ) => {
      const a = new cloudwatch.Alarm(this, key, {
        ...alarmProps,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(action);
      if (withOk) a.addOkAction(action);
      this.alarms[key] = a;
    };

    for (const b of buffers) {
      alarm(
        `${b.name}-dlq`,
        {
          alarmDescription:
            `A ${b.name} message failed every delivery and waits in the DLQ (kept 14 days ` +
            'from enqueue). Read the consumer log for the reason, fix it, then redrive the ' +
            'DLQ (docs/runbook.md, "A message in a DLQ").',
          metric: b.deadLetterQueue.metricApproximateNumberOfMessagesVisible(MAX),
          threshold: 0,
        },
        true,
      );
      alarm(
        `${b.name}-oldest`,
        {
          alarmDescription:
            `The oldest ${b.name} message is over ${maxAge.toHumanString()} old: its consumer ` +
            'is paused or failing. Check the event source mapping is Enabled and the consumer ' +
            'log (docs/runbook.md, "A buffered message is too old").',
          metric: b.queue.metricApproximateAgeOfOldestMessage(MAX),
          threshold: maxAge.toSeconds(),
        },
        true,
      );
    }
    for (const [machineKey, machine] of [
      ['upgrade', props.upgrade],
      ['watchdog', props.watchdog],
    ] as const) {
      for (const [suffix, words, metric] of STOPPED_RUNS) {
        alarm(
          `${machineKey}-${suffix}`,
          {
            alarmDescription:
              `A ${machineKey} run ${words}. ${AFTERMATH[machineKey]} Follow docs/runbook.md, ` +
              '"An upgrade run failed, was aborted or timed out".',
            metric: metric(machine),
            threshold: 0,
          },
          // A run that ended stays ended: an OK message a minute later would only be noise.
          false,
        );
      }
    }

    const queueGraph = (
      title: string,
      metric: (b: (typeof buffers)[number]) => cloudwatch.IMetric,
      extra: Partial<cloudwatch.GraphWidgetProps> = {},
    ) =>
      new cloudwatch.GraphWidget({
        title,
        width: 8,
        left: buffers.map(metric),
        ...extra,
      });
    // Green is named "<id>-green-<random>" and old blue "<id>-oldN"; a search expression's
    // unquoted term matches on the name's tokens, so it finds all of them as they come and go.
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html
    // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-over-cloudwatch
    const search = (metricName: string, label: string) =>
      new cloudwatch.SearchExpression({
        expression:
          `SEARCH('{AWS/RDS,DBInstanceIdentifier} MetricName="${metricName}" ` +
          `${props.databaseInstanceIdentifier}', 'Maximum', 60)`,
        label,
        period: MINUTE,
      });
    const runs = (machine: sfn.IStateMachine) => [
      machine.metricStarted(SUM).with({ label: 'started' }),
      machine.metricSucceeded(SUM).with({ label: 'succeeded' }),
      machine.metricFailed(SUM).with({ label: 'failed' }),
      machine.metricAborted(SUM).with({ label: 'aborted' }),
      machine.metricTimedOut(SUM).with({ label: 'timed out' }),
    ];

    const engine = props.engine ?? 'postgres';
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new cloudwatch.TextWidget({
            width: 24,
            height: 2,
            markdown:
              '## Database upgrade\n' +
              'Buffers fill while consumers are paused around the switchover and drain after. ' +
              'Red lines are alarm thresholds. What to do for each alarm: docs/runbook.md.',
          }),
        ],
        [
          queueGraph('Buffered messages', (b) =>
            b.queue.metricApproximateNumberOfMessagesVisible(MAX).with({ label: b.name }),
          ),
          queueGraph(
            'Oldest buffered message (s)',
            (b) => b.queue.metricApproximateAgeOfOldestMessage(MAX).with({ label: b.name }),
            { leftAnnotations: [{ value: maxAge.toSeconds(), label: 'alarm', color: '#d62728' }] },
          ),
          queueGraph(
            'Dead-letter queues',
            (b) =>
              b.deadLetterQueue.metricApproximateNumberOfMessagesVisible(MAX).with({
                label: b.name,
              }),
            { leftAnnotations: [{ value: 0, label: 'alarm above', color: '#d62728' }] },
          ),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Consumer errors',
            width: 12,
            left: buffers.map((b) => b.consumer.metricErrors(SUM).with({ label: b.name })),
          }),
          new cloudwatch.GraphWidget({
            title: 'Consumer throttles',
            width: 12,
            left: buffers.map((b) => b.consumer.metricThrottles(SUM).with({ label: b.name })),
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Upgrade runs',
            width: 12,
            left: runs(props.upgrade),
          }),
          new cloudwatch.GraphWidget({
            title: 'Watchdog runs',
            width: 12,
            left: runs(props.watchdog),
          }),
        ],
        ENGINE_SPECS[engine].level === 'cluster'
          ? clusterWidgets(engine, props.databaseInstanceIdentifier)
          : [
              new cloudwatch.GraphWidget({
                title: 'Replica lag (s): green behind blue',
                width: 8,
                left: [search('ReplicaLag', 'replica lag')],
              }),
              instanceBlueWidget(engine, props.databaseInstanceIdentifier),
              new cloudwatch.GraphWidget({
                title: 'Database connections',
                width: 8,
                left: [search('DatabaseConnections', 'connections')],
              }),
            ],
      ],
    });
  }
}

/**
 * What blue holds for green: PostgreSQL's replication slots (verify-green holds their lag
 * against upgrade.maxReplicationLagMb under logical replication); MySQL's binary logs, which
 * green replicates from. Both are RDS instance metrics:
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-metrics.html#rds-cw-metrics-instance
 */
function instanceBlueWidget(engine: DatabaseEngine, instance: string): cloudwatch.GraphWidget {
  const blueMetric =
    engine === 'mysql'
      ? { title: 'Binary log disk usage (bytes) on blue', metricName: 'BinLogDiskUsage' }
      : {
          title: 'Oldest replication slot lag (bytes) on blue',
          metricName: 'OldestReplicationSlotLag',
        };
  return new cloudwatch.GraphWidget({
    title: blueMetric.title,
    width: 8,
    left: [
      new cloudwatch.Metric({
        namespace: 'AWS/RDS',
        metricName: blueMetric.metricName,
        dimensionsMap: { DBInstanceIdentifier: instance },
        ...MAX,
      }),
    ],
  });
}

/**
 * The lag metrics AWS names for each Aurora engine, read on a writer. Aurora MySQL green
 * replicates blue's binary log: AuroraBinlogReplicaLag ("Because binary log replication only
 * occurs on the writer instance of the cluster, we recommend using the version of this metric
 * associated with the WRITER role"), on green's writer; blue's binary logs, SumBinaryLogSize
 * ("The total size of the binlog files"). Aurora PostgreSQL green replicates logically from a
 * slot on blue's writer: OldestReplicationSlotLag and ReplicationSlotDiskUsage ("You can
 * monitor transaction overflow being written to disk using the ReplicationSlotDiskUsage
 * CloudWatch metric", in the blue/green best practices).
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.AuroraMonitoring.Metrics.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-monitor-replica-lag
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-best-practices.html
 */
const AURORA_LAG = {
  'aurora-mysql': {
    green: {
      title: "Binlog replica lag (s): green's writer behind blue",
      metric: 'AuroraBinlogReplicaLag',
    },
    blue: { title: "Binary log size (bytes) on blue's writer", metric: 'SumBinaryLogSize' },
  },
  'aurora-postgresql': {
    green: {
      title: "Oldest replication slot lag (bytes) on blue's writer",
      metric: 'OldestReplicationSlotLag',
    },
    blue: {
      title: "Replication slot disk usage (bytes) on blue's writer",
      metric: 'ReplicationSlotDiskUsage',
    },
  },
} as const;

/**
 * An Aurora cluster's database widgets, by cluster and role: Aurora publishes its instance
 * metrics with the dimensions DBClusterIdentifier and Role (WRITER, READER) too, and AWS
 * advises them because "Aurora DB instance roles can change roles over time". Green's cluster
 * is "<id>-green-<random>" and old blue's "<id>-old1"; a search expression's unquoted term
 * matches on the name's tokens, so it finds them all as they come and go, while blue's own
 * graph follows the writer of the cluster under the production name.
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/dimensions.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/creating_alarms.html
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/search-expression-syntax.html
 */
function clusterWidgets(engine: DatabaseEngine, clusterId: string): cloudwatch.GraphWidget[] {
  const lag = AURORA_LAG[engine === 'aurora-mysql' ? 'aurora-mysql' : 'aurora-postgresql'];
  const search = (metricName: string, role: string, label: string) =>
    new cloudwatch.SearchExpression({
      expression:
        `SEARCH('{AWS/RDS,DBClusterIdentifier,Role} MetricName="${metricName}" ` +
        `${role}${clusterId}', 'Maximum', 60)`,
      label,
      period: MINUTE,
    });
  const onWriter = (metricName: string) =>
    new cloudwatch.Metric({
      namespace: 'AWS/RDS',
      metricName,
      dimensionsMap: { DBClusterIdentifier: clusterId, Role: 'WRITER' },
      ...MAX,
    });
  // Aurora MySQL's lag is green's (every cluster's writer); Aurora PostgreSQL's slot is blue's.
  const green =
    engine === 'aurora-mysql'
      ? search(lag.green.metric, 'Role="WRITER" ', 'binlog replica lag')
      : onWriter(lag.green.metric);
  return [
    new cloudwatch.GraphWidget({ title: lag.green.title, width: 8, left: [green] }),
    new cloudwatch.GraphWidget({
      title: lag.blue.title,
      width: 8,
      left: [onWriter(lag.blue.metric)],
    }),
    new cloudwatch.GraphWidget({
      title: 'Database connections',
      width: 8,
      left: [search('DatabaseConnections', '', 'connections')],
    }),
  ];
}
