import {
  ACCOUNT,
  REGION,
  type AlarmSpec,
  type EventRuleSpec,
  type SecretSpec,
} from '../synthesized';
import { AwsError, type ModelContext, type Service } from './core';
import type { RdsModel } from './rds';

/** SNS topics: what was published, and to whom. */
export class SnsModel {
  readonly published: { at: number; topicArn: string; subject: string; message: unknown }[] = [];

  constructor(private readonly ctx: ModelContext) {}

  readonly service: Service = {
    Publish: {
      iam: (i) => [{ action: 'sns:Publish', resource: String(i.TopicArn) }],
      run: (i) => {
        this.published.push({
          at: this.ctx.now(),
          topicArn: String(i.TopicArn),
          subject: String(i.Subject ?? ''),
          message: i.Message,
        });
        this.ctx.emit({ kind: 'notification', subject: String(i.Subject ?? '') });
        return { MessageId: `sns-${this.published.length}` };
      },
    },
  };
}

/**
 * EventBridge: events put on the default bus, and the rules that start targets. Step
 * Functions sends "Step Functions Execution Status Change" events for each status change.
 * https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html
 * https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
 */
export class EventsModel {
  readonly put: { at: number; entries: unknown }[] = [];
  /** Deliveries on their way to a target. */
  pending = 0;

  constructor(
    private readonly ctx: ModelContext,
    private readonly rules: EventRuleSpec[],
    private readonly startTarget: (arn: string, event: Record<string, unknown>) => void,
  ) {}

  readonly service: Service = {
    PutEvents: {
      iam: (i) =>
        ((i.Entries ?? []) as { EventBusName?: string }[]).map((e) => ({
          action: 'events:PutEvents',
          resource: `arn:aws:events:${REGION}:${ACCOUNT}:event-bus/${e.EventBusName ?? 'default'}`,
        })),
      run: (i) => {
        this.put.push({ at: this.ctx.now(), entries: i.Entries });
        const n = ((i.Entries ?? []) as unknown[]).length;
        return {
          FailedEntryCount: 0,
          Entries: Array.from({ length: n }, (_, k) => ({
            EventId: `evt-${this.put.length}-${k}`,
          })),
        };
      },
    },
  };

  /** An AWS service event: every rule whose pattern matches starts its targets. */
  deliver(event: Record<string, unknown>): void {
    for (const rule of this.rules) {
      if (!matchesPattern(rule.pattern, event)) continue;
      for (const target of rule.targets) {
        this.pending += 1;
        this.ctx.after(this.ctx.latency.eventDelivery, () => {
          this.pending -= 1;
          this.startTarget(target, event);
        });
      }
    }
  }
}

/** An event pattern: each key's array lists the accepted values; objects nest. */
export function matchesPattern(
  pattern: Record<string, unknown>,
  event: Record<string, unknown>,
): boolean {
  return Object.entries(pattern).every(([key, expected]) => {
    const actual = event[key];
    if (Array.isArray(expected)) return expected.some((v) => v === actual);
    if (expected !== null && typeof expected === 'object') {
      return (
        actual !== null &&
        typeof actual === 'object' &&
        matchesPattern(expected as Record<string, unknown>, actual as Record<string, unknown>)
      );
    }
    return expected === actual;
  });
}

export interface Execution {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: string;
  input: string;
  startDate: number;
  stopDate?: number;
  output?: string;
  error?: string;
  cause?: string;
}

/** Step Functions' executions as ListExecutions and DescribeExecution see them. */
export class SfnModel {
  readonly executions = new Map<string, Execution>();

  readonly service: Service = {
    ListExecutions: {
      iam: (i) => [{ action: 'states:ListExecutions', resource: String(i.stateMachineArn) }],
      run: (i) => ({
        executions: [...this.executions.values()]
          .filter(
            (e) =>
              e.stateMachineArn === i.stateMachineArn &&
              (i.statusFilter === undefined || e.status === i.statusFilter),
          )
          .map((e) => ({
            executionArn: e.executionArn,
            stateMachineArn: e.stateMachineArn,
            name: e.name,
            status: e.status,
            startDate: new Date(e.startDate),
          })),
      }),
    },
    DescribeExecution: {
      iam: (i) => [{ action: 'states:DescribeExecution', resource: String(i.executionArn) }],
      run: (i) => {
        const e = this.executions.get(String(i.executionArn));
        if (e === undefined) {
          throw new AwsError(
            'ExecutionDoesNotExist',
            `Execution Does Not Exist: '${String(i.executionArn)}'`,
          );
        }
        // https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
        return {
          executionArn: e.executionArn,
          stateMachineArn: e.stateMachineArn,
          name: e.name,
          status: e.status,
          startDate: new Date(e.startDate),
          input: e.input,
          ...(e.stopDate !== undefined ? { stopDate: new Date(e.stopDate) } : {}),
          ...(e.output !== undefined ? { output: e.output } : {}),
          ...(e.error !== undefined ? { error: e.error } : {}),
          ...(e.cause !== undefined ? { cause: e.cause } : {}),
        };
      },
    },
  };
}

/** CloudWatch metrics: the replication lag the upgrade reads (see RdsModel.replicationLag). */
export class CloudWatchModel {
  /** Requests through the load balancer, by the start of their minute (ms). */
  private readonly requests = new Map<number, number>();

  constructor(
    private readonly rds: RdsModel,
    private readonly alarms: AlarmSpec[],
    private readonly now: () => number,
    /** How long after a minute ends an alarm sees its datapoint (assumption alarm-datapoint-lag). */
    private readonly lagMs: () => number,
  ) {}

  /** The load balancer counts requests (traffic.ts calls this as they come). */
  recordRequests(count: number, atMs: number): void {
    const minute = Math.floor(atMs / 60_000) * 60_000;
    this.requests.set(minute, (this.requests.get(minute) ?? 0) + count);
  }

  /**
   * An alarm's state on the load balancer's RequestCount (Sum, one-minute periods), as
   * CloudWatch evaluates it: the last `evaluationPeriods` datapoints, ALARM when at least
   * `datapointsToAlarm` of them breach, a missing one not breaching when the alarm says so.
   * A minute's datapoint counts once the minute is over and the lag has passed: the load
   * balancer sends its metrics every 60 seconds, and how much later an alarm sees them AWS
   * does not say (assumption alarm-datapoint-lag). With every datapoint missing and missing
   * data treated as missing, the alarm has INSUFFICIENT_DATA.
   * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation
   * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
   */
  private stateOf(alarm: AlarmSpec): string {
    if (alarm.namespace !== 'AWS/ApplicationELB' || alarm.metricName !== 'RequestCount') {
      return 'INSUFFICIENT_DATA';
    }
    const period = alarm.periodSeconds * 1000;
    const lastComplete = Math.floor((this.now() - this.lagMs()) / period) * period - period;
    let breaching = 0;
    let present = 0;
    for (let i = 0; i < alarm.evaluationPeriods; i++) {
      const start = lastComplete - i * period;
      let sum: number | undefined;
      for (let m = start; m < start + period; m += 60_000) {
        const n = this.requests.get(m);
        if (n !== undefined) sum = (sum ?? 0) + n;
      }
      if (sum !== undefined) present += 1;
      const value = sum ?? (alarm.treatMissingData === 'breaching' ? Infinity : undefined);
      if (value === undefined) continue;
      const breach =
        alarm.comparison === 'GreaterThanThreshold'
          ? value > alarm.threshold
          : alarm.comparison === 'GreaterThanOrEqualToThreshold'
            ? value >= alarm.threshold
            : alarm.comparison === 'LessThanThreshold'
              ? value < alarm.threshold
              : value <= alarm.threshold;
      if (breach) breaching += 1;
    }
    if (breaching >= alarm.datapointsToAlarm) return 'ALARM';
    return present === 0 && alarm.treatMissingData === 'missing' ? 'INSUFFICIENT_DATA' : 'OK';
  }

  readonly service: Service = {
    // Checked against each named alarm's ARN (the runbook's policy allows "*" for it).
    // https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    DescribeAlarms: {
      iam: (i) =>
        ((i.AlarmNames ?? []) as string[]).map((name) => ({
          action: 'cloudwatch:DescribeAlarms',
          resource: `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${name}`,
        })),
      run: (i) => {
        const names = (i.AlarmNames ?? []) as string[];
        return {
          // An alarm that does not exist is left out of the answer, with no error.
          MetricAlarms: this.alarms
            .filter((a) => names.includes(a.name))
            .map((a) => ({ AlarmName: a.name, StateValue: this.stateOf(a) })),
          CompositeAlarms: [],
        };
      },
    },
    GetMetricData: {
      // No resource type: only "*" authorizes it.
      iam: () => [{ action: 'cloudwatch:GetMetricData', resource: '*' }],
      run: (i) => {
        const start = new Date(i.StartTime as string | Date).getTime();
        const end = new Date(i.EndTime as string | Date).getTime();
        const queries = (i.MetricDataQueries ?? []) as {
          Id: string;
          MetricStat?: {
            Metric: {
              Namespace: string;
              MetricName: string;
              Dimensions?: { Name: string; Value: string }[];
            };
          };
        }[];
        return {
          MetricDataResults: queries.map((q) => {
            const m = q.MetricStat?.Metric;
            const dimensions = Object.fromEntries(
              (m?.Dimensions ?? []).map((d) => [d.Name, d.Value]),
            );
            const id = dimensions.DBInstanceIdentifier;
            const points =
              m?.Namespace !== 'AWS/RDS'
                ? []
                : this.rds.isCluster
                  ? this.rds.aurora.replicationLag(m.MetricName, dimensions, start, end)
                  : id !== undefined
                    ? this.rds.replicationLag(m.MetricName, id, start, end)
                    : [];
            return {
              Id: q.Id,
              StatusCode: 'Complete',
              Timestamps: points.map((p) => new Date(p.t)),
              Values: points.map((p) => p.value),
            };
          }),
        };
      },
    },
  };
}

/** Secrets Manager: the secrets the stacks generate, read by ARN. */
export class SecretsModel {
  constructor(private readonly secrets: SecretSpec[]) {}

  private secret(id: unknown): SecretSpec {
    const s = this.secrets.find((x) => x.arn === id || x.arn.includes(`:secret:${String(id)}-`));
    if (s === undefined) {
      throw new AwsError(
        'ResourceNotFoundException',
        "Secrets Manager can't find the specified secret.",
      );
    }
    return s;
  }

  readonly service: Service = {
    GetSecretValue: {
      iam: (i) => [
        { action: 'secretsmanager:GetSecretValue', resource: this.secret(i.SecretId).arn },
      ],
      run: (i) => {
        const s = this.secret(i.SecretId);
        return {
          ARN: s.arn,
          Name: s.arn.split(':').at(-1),
          SecretString: this.values.get(s.arn) ?? s.value,
          VersionId: 'v1',
        };
      },
    },
    // A new version with this value; later reads get it.
    // https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html
    PutSecretValue: {
      iam: (i) => [
        { action: 'secretsmanager:PutSecretValue', resource: this.secret(i.SecretId).arn },
      ],
      run: (i) => {
        const s = this.secret(i.SecretId);
        this.values.set(s.arn, String(i.SecretString));
        return { ARN: s.arn, Name: s.arn.split(':').at(-1), VersionId: `v${this.values.size + 1}` };
      },
    },
  };

  /** Values put since the deploy, by secret ARN. */
  private readonly values = new Map<string, string>();
}
