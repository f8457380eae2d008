import { Match } from 'aws-cdk-lib/assertions';
import { BUFFER_NAMES } from '../../../lambda/shared/contracts';
import { resolveIn } from '../../../rehearsal/definition';
import { nagViolations, synthApp, templateOf } from '../../helpers/app';

type Resource = { Type: string; Properties: Record<string, unknown> };
type Widget = {
  type: string;
  properties: { title?: string; metrics?: unknown[][]; annotations?: unknown };
};

const { upgrade } = synthApp();
const template = templateOf(upgrade);
const resources = template.toJSON().Resources as Record<string, Resource>;
const alarms = Object.entries(resources).filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm');
const topicRef = { Ref: Object.keys(template.findResources('AWS::SNS::Topic'))[0] };

function dashboardWidgets(): Widget[] {
  const dashboards = Object.values(resources).filter(
    (r) => r.Type === 'AWS::CloudWatch::Dashboard',
  );
  expect(dashboards).toHaveLength(1);
  const text = String(resolveIn(upgrade, dashboards[0]?.Properties.DashboardBody));
  return (JSON.parse(text) as { widgets: Widget[] }).widgets;
}

/** The widget with this title and the metric names it graphs. */
function graph(title: string): { metrics: string[]; rows: unknown[][]; widget: Widget } {
  const widget = dashboardWidgets().find((w) => w.properties.title === title);
  if (widget === undefined) throw new Error(`no widget titled ${title}`);
  const rows = widget.properties.metrics ?? [];
  return {
    widget,
    rows,
    metrics: rows.map((row) => {
      const expression = (row[0] as { expression?: string }).expression;
      return expression ?? `${String(row[0])}/${String(row[1])}`;
    }),
  };
}

function alarmsOn(metricName: string): Resource['Properties'][] {
  return alarms.map(([, r]) => r.Properties).filter((p) => p.MetricName === metricName);
}

describe('UpgradeMonitoring dashboard', () => {
  it('is one dashboard named QuietUpgrade', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', {
      DashboardName: 'QuietUpgrade',
    });
    template.hasOutput('DashboardName', { Value: 'QuietUpgrade' });
  });

  it.each([
    ['Buffered messages', 'AWS/SQS/ApproximateNumberOfMessagesVisible', 'Queue'],
    ['Oldest buffered message (s)', 'AWS/SQS/ApproximateAgeOfOldestMessage', 'Queue'],
    ['Dead-letter queues', 'AWS/SQS/ApproximateNumberOfMessagesVisible', 'DeadLetterQueue'],
    ['Consumer errors', 'AWS/Lambda/Errors', 'Consumer'],
    ['Consumer throttles', 'AWS/Lambda/Throttles', 'Consumer'],
  ])('graphs %s for each of the five buffers', (title, metric, resource) => {
    const { metrics, rows } = graph(title);
    expect(metrics).toEqual(BUFFER_NAMES.map(() => metric));
    // Each line is a different buffer's resource, in buffer order.
    const pascal = ['Sends', 'OptIns', 'SignUps', 'Unsubscribes', 'Tracking'];
    rows.forEach((row, i) => expect(String(row[3])).toContain(`${pascal[i]}${resource}`));
  });

  it('marks the oldest-message alarm threshold on its graph', () => {
    expect(graph('Oldest buffered message (s)').widget.properties.annotations).toEqual({
      horizontal: [expect.objectContaining({ value: 3600 })],
    });
  });

  it.each([
    ['Upgrade runs', 'stateMachine:QuietUpgrade-Upgrade'],
    ['Watchdog runs', 'stateMachine:QuietUpgrade-Watchdog'],
  ])('graphs %s: started, succeeded, failed, aborted, timed out', (title, machine) => {
    const { metrics, rows } = graph(title);
    expect(metrics).toEqual(
      ['Started', 'Succeeded', 'Failed', 'Aborted', 'TimedOut'].map(
        (m) => `AWS/States/Executions${m}`,
      ),
    );
    for (const row of rows) expect(String(row[3])).toContain(machine);
  });

  it('graphs replica lag and connections for every instance of the database, green included', () => {
    expect(graph('Replica lag (s): green behind blue').metrics).toEqual([
      `SEARCH('{AWS/RDS,DBInstanceIdentifier} MetricName="ReplicaLag" platform-db', 'Maximum', 60)`,
    ]);
    expect(graph('Database connections').metrics).toEqual([
      `SEARCH('{AWS/RDS,DBInstanceIdentifier} MetricName="DatabaseConnections" platform-db', 'Maximum', 60)`,
    ]);
    const slot = graph('Oldest replication slot lag (bytes) on blue').rows[0];
    expect(slot).toEqual([
      'AWS/RDS',
      'OldestReplicationSlotLag',
      'DBInstanceIdentifier',
      'platform-db',
      expect.anything(),
    ]);
  });
});

describe('UpgradeMonitoring alarms', () => {
  it('alarms on any message in each DLQ, and says when it is empty again', () => {
    const dlq = alarmsOn('ApproximateNumberOfMessagesVisible');
    expect(dlq).toHaveLength(BUFFER_NAMES.length);
    for (const alarm of dlq) {
      expect(alarm).toMatchObject({
        Namespace: 'AWS/SQS',
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        AlarmActions: [topicRef],
        OKActions: [topicRef],
        TreatMissingData: 'notBreaching',
      });
      expect(JSON.stringify(alarm.Dimensions)).toContain('DeadLetterQueue');
    }
  });

  it('alarms when the oldest buffered message is older than the configured threshold', () => {
    const byDefault = alarmsOn('ApproximateAgeOfOldestMessage');
    expect(byDefault).toHaveLength(BUFFER_NAMES.length);
    for (const alarm of byDefault) {
      expect(alarm).toMatchObject({ Threshold: 3600, AlarmActions: [topicRef] });
      expect(JSON.stringify(alarm.Dimensions)).not.toContain('DeadLetterQueue');
    }

    const tighter = templateOf(
      synthApp((c) => ((c.alarms as Record<string, unknown>).maxMessageAgeMinutes = 15)).upgrade,
    );
    const thresholds = Object.values(
      tighter.findResources('AWS::CloudWatch::Alarm', {
        Properties: { MetricName: 'ApproximateAgeOfOldestMessage' },
      }),
    ).map((r) => (r as Resource).Properties.Threshold);
    expect(thresholds).toEqual(BUFFER_NAMES.map(() => 900));
  });

  it.each(['ExecutionsFailed', 'ExecutionsAborted', 'ExecutionsTimedOut'])(
    'alarms on %s of the upgrade and of the watchdog',
    (metricName) => {
      const found = alarmsOn(metricName);
      const machines = found.map((a) => JSON.stringify(a.Dimensions));
      expect(machines).toEqual([
        expect.stringContaining('RunbookStateMachine'),
        expect.stringContaining('WatchdogStateMachine'),
      ]);
      for (const alarm of found) {
        expect(alarm).toMatchObject({
          Namespace: 'AWS/States',
          Statistic: 'Sum',
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
          AlarmActions: [topicRef],
        });
        // An ended run stays ended: no "OK" message a minute later.
        expect(alarm.OKActions).toBeUndefined();
      }
    },
  );

  it('sends every alarm to the topic and tells the reader where to look', () => {
    expect(alarms).toHaveLength(BUFFER_NAMES.length * 2 + 6);
    for (const [, alarm] of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([topicRef]);
      expect(alarm.Properties.AlarmDescription).toContain('docs/runbook.md');
    }
  });
});

describe('notification topic', () => {
  it('encrypts the topic with its own rotating key, usable by CloudWatch, and denies non-TLS', () => {
    template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('NotificationsKey'), 'Arn'] },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  it('subscribes the notification email only when one is configured', () => {
    template.resourceCountIs('AWS::SNS::Subscription', 0);
    const withEmail = templateOf(
      synthApp((c) => (c.notificationEmail = 'oncall@example.com')).upgrade,
    );
    withEmail.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
  });

  it('leaves no unacknowledged cdk-nag AwsSolutions findings', () => {
    expect(nagViolations(upgrade)).toEqual([]);
  });
});
