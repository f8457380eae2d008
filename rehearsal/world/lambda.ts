import type { InvokeResult } from '../functions';
import type { Statement } from '../iam';
import { authorize } from '../iam';
import { REGION, type MappingSpec } from '../synthesized';
import { AwsError, type ModelContext, type Service, Signal } from './core';
import type { SqsModel } from './sqs';

/**
 * Lambda as the upgrade meets it: the Invoke API and the SQS event source mappings.
 *
 * A mapping polls its queue while Enabled and hands batches to its function, at most
 * MaximumConcurrency at a time: "Lambda starts processing five batches at a time with five
 * concurrent invocations", capped by the maximum concurrency.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
 * Successful records are deleted; failed ones (ReportBatchItemFailures), or the whole batch
 * when the function fails, come back after the visibility timeout.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
 * Disabling "pauses polling and invocation"; what happens meanwhile is undocumented and is
 * modelled by the assumptions disabling-mapping-polls and running-batches-on-disable.
 * https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html
 */
const LONG_POLL_SECONDS = 20;

export interface Mapping {
  spec: MappingSpec;
  state: 'Enabled' | 'Enabling' | 'Disabled' | 'Disabling';
  /** Notified when the state changes. */
  changed: Signal;
  /** Counts state changes, so a change that was overtaken does not land. */
  changes: number;
}

export interface Consumer {
  invoke(event: unknown): Promise<InvokeResult>;
  /** The consumer's role, which the mapping uses to read and delete messages. */
  statements: Statement[];
}

export class LambdaModel {
  readonly mappings = new Map<string, Mapping>();
  private stopped = false;
  private nextBatch = 1;

  constructor(
    private readonly ctx: ModelContext,
    specs: MappingSpec[],
    private readonly sqs: SqsModel,
    private readonly invokeByName: (name: string, payload: unknown) => Promise<InvokeResult>,
    private readonly consumerOf: (functionName: string) => Consumer,
    private readonly functionArn: (name: string) => string,
  ) {
    for (const spec of specs) {
      this.mappings.set(spec.uuid, {
        spec,
        state: spec.enabled ? 'Enabled' : 'Disabled',
        changed: new Signal(),
        changes: 0,
      });
    }
  }

  private mapping(uuid: unknown): Mapping {
    const m = this.mappings.get(String(uuid));
    if (m === undefined) {
      throw new AwsError(
        'ResourceNotFoundException',
        `The resource you requested does not exist. (UUID ${String(uuid)})`,
        404,
      );
    }
    return m;
  }

  private describe(m: Mapping) {
    return {
      UUID: m.spec.uuid,
      State: m.state,
      EventSourceArn: m.spec.queueArn,
      FunctionArn: this.functionArn(m.spec.functionName),
      BatchSize: m.spec.batchSize,
      MaximumBatchingWindowInSeconds: m.spec.batchingWindowSeconds,
      ScalingConfig: { MaximumConcurrency: m.spec.maxConcurrency },
    };
  }

  readonly service: Service = {
    GetEventSourceMapping: {
      iam: (i) => [
        { action: 'lambda:GetEventSourceMapping', resource: this.mapping(i.UUID).spec.arn },
      ],
      run: (i) => this.describe(this.mapping(i.UUID)),
    },
    UpdateEventSourceMapping: {
      iam: (i) => [
        { action: 'lambda:UpdateEventSourceMapping', resource: this.mapping(i.UUID).spec.arn },
      ],
      run: (i) => {
        const m = this.mapping(i.UUID);
        // AWS documents ResourceInUseException for an update while Creating; whether one
        // while Enabling or Disabling is refused is the assumption mapping-update-while-changing.
        const changing = m.state === 'Enabling' || m.state === 'Disabling';
        if (changing && this.ctx.assumption('mapping-update-while-changing') === 'refused') {
          throw new AwsError('ResourceInUseException', `The event source mapping is ${m.state}.`);
        }
        if (typeof i.Enabled === 'boolean') {
          this.ctx.emit({ kind: 'update-mapping', uuid: m.spec.uuid, enabled: i.Enabled });
          const target = i.Enabled ? 'Enabled' : 'Disabled';
          const settling = i.Enabled ? 'Enabling' : 'Disabling';
          if (m.state !== target && m.state !== settling) {
            m.state = settling;
            const change = ++m.changes;
            m.changed.notify();
            this.ctx.emit({ kind: 'mapping-state', uuid: m.spec.uuid, state: m.state });
            const latency = i.Enabled
              ? this.ctx.latency.enableMapping
              : this.ctx.latency.disableMapping;
            this.ctx.after(latency, () => {
              // A later update took over this one.
              if (m.changes !== change) return;
              m.state = target;
              m.changed.notify();
              this.ctx.emit({ kind: 'mapping-state', uuid: m.spec.uuid, state: m.state });
            });
          }
        }
        return this.describe(m);
      },
    },
    Invoke: {
      iam: (i) => [
        { action: 'lambda:InvokeFunction', resource: this.functionArn(String(i.FunctionName)) },
      ],
      run: async (i) => {
        const raw = i.Payload;
        const text =
          raw === undefined
            ? '{}'
            : typeof raw === 'string'
              ? raw
              : new TextDecoder().decode(raw as Uint8Array);
        const result = await this.invokeByName(String(i.FunctionName), JSON.parse(text));
        // A function error still answers 200, with FunctionError set and the error as payload.
        // https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_ResponseSyntax
        const payload = result.ok
          ? result.payload
          : { errorType: result.errorType, errorMessage: result.errorMessage };
        return {
          StatusCode: 200,
          ExecutedVersion: '$LATEST',
          Payload: new TextEncoder().encode(JSON.stringify(payload)),
          ...(result.ok ? {} : { FunctionError: 'Unhandled' }),
        };
      },
    },
  };

  /** Whether a mapping starts new batches now. */
  polls(m: Mapping): boolean {
    if (m.state === 'Enabled') return true;
    return m.state === 'Disabling' && this.ctx.assumption('disabling-mapping-polls') === 'yes';
  }

  /** Starts every mapping's pollers; they run until `stop`. */
  start(): void {
    for (const m of this.mappings.values()) {
      for (let slot = 0; slot < m.spec.maxConcurrency; slot++) {
        // Kept for stop: a poller that died would leave messages waiting and a quiet run.
        void this.poll(m).catch((err: unknown) => {
          this.failure ??= err;
        });
      }
    }
  }

  /** Stops the pollers; throws what stopped one early, if anything did. */
  stop(): void {
    this.stopped = true;
    for (const m of this.mappings.values()) m.changed.notify();
    if (this.failure !== undefined) throw this.failure;
  }

  private failure: unknown;

  private async poll(m: Mapping): Promise<void> {
    const q = this.sqs.queue(m.spec.queueArn);
    const consumer = this.consumerOf(m.spec.functionName);
    // The mapping reads and deletes messages with the function's execution role.
    // https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html#events-sqs-permissions
    for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']) {
      if (!authorize(consumer.statements, { action, resource: m.spec.queueArn }).allowed) {
        this.ctx.emit({
          kind: 'access-denied',
          principal: m.spec.functionName,
          action,
          resource: m.spec.queueArn,
        });
        return;
      }
    }
    while (!this.stopped) {
      if (!this.polls(m)) {
        await m.changed.wait();
        continue;
      }
      if (this.sqs.available(q) === 0) {
        // Long polling: a receive waits up to 20 s for a message to arrive or come back.
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html
        await q.arrival.wait(
          Math.min(LONG_POLL_SECONDS, this.sqs.secondsUntilVisible(q) ?? LONG_POLL_SECONDS),
        );
        continue;
      }
      // The batching window: wait for a full batch, at most the window.
      // https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html#invocation-eventsourcemapping-batching
      const windowEnds = Date.now() + m.spec.batchingWindowSeconds * 1000;
      while (this.sqs.available(q) < m.spec.batchSize && Date.now() < windowEnds && this.polls(m)) {
        await q.arrival.wait((windowEnds - Date.now()) / 1000);
      }
      if (!this.polls(m)) continue;
      const deliveries = this.sqs.receive(q, m.spec.batchSize);
      if (deliveries.length === 0) continue;
      const batch = this.nextBatch++;
      this.ctx.emit({ kind: 'batch-start', batch, mapping: m.spec.uuid });
      const stateAtStart = m.state;
      const now = Date.now();
      const result = await consumer.invoke({
        Records: deliveries.map(({ receipt, message }) => ({
          messageId: message.messageId,
          receiptHandle: receipt,
          body: message.body,
          attributes: {
            ApproximateReceiveCount: String(message.receiveCount),
            SentTimestamp: String(message.sentAt),
            SenderId: 'rehearsal',
            ApproximateFirstReceiveTimestamp: String(now),
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: m.spec.queueArn,
          awsRegion: REGION,
        })),
      });
      this.ctx.emit({ kind: 'batch-end', batch, mapping: m.spec.uuid });
      const abandoned =
        this.ctx.assumption('running-batches-on-disable') === 'abandon' &&
        m.state !== 'Enabled' &&
        stateAtStart !== m.state;
      if (!result.ok || abandoned) continue;
      // Only with ReportBatchItemFailures does the mapping read the response: without it, a
      // batch the function returns from is a success and every message is deleted.
      // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting
      const failed = new Set(
        m.spec.reportBatchItemFailures
          ? (
              (result.payload as { batchItemFailures?: { itemIdentifier?: string }[] } | null)
                ?.batchItemFailures ?? []
            ).map((f) => f.itemIdentifier)
          : [],
      );
      for (const { receipt, message } of deliveries) {
        if (!failed.has(message.messageId)) this.sqs.delete(q, receipt);
      }
    }
  }
}
