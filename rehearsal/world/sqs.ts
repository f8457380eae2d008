import type { QueueSpec } from '../synthesized';
import { AwsError, type ModelContext, type Service, Signal } from './core';

/**
 * Standard SQS queues with their visibility timeout and redrive policy, as the event source
 * mappings use them: a received message is hidden for the visibility timeout and comes back
 * unless it is deleted; past maxReceiveCount receives it moves to the dead-letter queue.
 * https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
 */
export interface Message {
  /** The traffic ledger's id for the write this message carries. */
  ledgerId: number;
  messageId: string;
  body: string;
  receiveCount: number;
  sentAt: number;
  deletedAt?: number;
  state: 'visible' | 'in-flight' | 'dlq' | 'deleted';
}

interface Queue {
  spec: QueueSpec;
  visible: Message[];
  head: number;
  inFlight: Map<string, { message: Message; visibleAt: number }>;
  /** Receipts in the order their visibility ends (the timeout is the same for all). */
  returning: { receipt: string; visibleAt: number }[];
  returningHead: number;
  dlq: Message[];
  /** Notified when a message is sent. */
  arrival: Signal;
}

/**
 * Share of deleted messages a standard queue delivers again. Assumed: SQS promises
 * at-least-once delivery without a rate; 0.1 % exercises the consumers' idempotency.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues-at-least-once-delivery.html
 */
export const DUPLICATE_RATE = 0.001;

export class SqsModel {
  private readonly byUrl = new Map<string, Queue>();
  private readonly byArn = new Map<string, Queue>();
  /** Every copy of each write the traffic sent (a standard queue may deliver one twice). */
  private readonly copies = new Map<number, Message[]>();
  private nextReceipt = 1;

  constructor(
    private readonly ctx: ModelContext,
    specs: QueueSpec[],
  ) {
    for (const spec of specs) {
      const q: Queue = {
        spec,
        visible: [],
        head: 0,
        inFlight: new Map(),
        returning: [],
        returningHead: 0,
        dlq: [],
        arrival: new Signal(),
      };
      this.byUrl.set(spec.url, q);
      this.byArn.set(spec.arn, q);
    }
  }

  queue(urlOrArn: string): Queue {
    const q = this.byUrl.get(urlOrArn) ?? this.byArn.get(urlOrArn);
    if (q === undefined) {
      throw new AwsError(
        'AWS.SimpleQueueService.NonExistentQueue',
        `The specified queue does not exist: ${urlOrArn}`,
      );
    }
    return q;
  }

  readonly service: Service = {
    SendMessage: {
      iam: (i) => [
        { action: 'sqs:SendMessage', resource: this.queue(String(i.QueueUrl)).spec.arn },
      ],
      run: (i) => {
        const m = this.send(String(i.QueueUrl), String(i.MessageBody), -1);
        return { MessageId: m.messageId };
      },
    },
    GetQueueAttributes: {
      iam: (i) => [
        { action: 'sqs:GetQueueAttributes', resource: this.queue(String(i.QueueUrl)).spec.arn },
      ],
      run: (i) => {
        const q = this.queue(String(i.QueueUrl));
        this.release(q);
        // Counts are returned as strings.
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html
        const all: Record<string, string> = {
          QueueArn: q.spec.arn,
          ApproximateNumberOfMessages: String(q.visible.length - q.head),
          ApproximateNumberOfMessagesNotVisible: String(q.inFlight.size),
          VisibilityTimeout: String(q.spec.visibilityTimeoutSeconds),
        };
        const names = (i.AttributeNames ?? []) as string[];
        const wanted = names.includes('All') ? Object.keys(all) : names;
        return {
          Attributes: Object.fromEntries(wanted.filter((n) => n in all).map((n) => [n, all[n]])),
        };
      },
    },
  };

  send(urlOrArn: string, body: string, ledgerId: number): Message {
    const q = this.queue(urlOrArn);
    const m: Message = {
      ledgerId,
      messageId: `msg-${this.nextReceipt++}`,
      body,
      receiveCount: 0,
      sentAt: this.ctx.now(),
      state: 'visible',
    };
    q.visible.push(m);
    q.arrival.notify();
    if (ledgerId >= 0) {
      const copies = this.copies.get(ledgerId);
      if (copies === undefined) this.copies.set(ledgerId, [m]);
      else copies.push(m);
    }
    return m;
  }

  /** The copies of one write, in every queue and dead-letter queue. */
  copiesOf(ledgerId: number): Message[] {
    return this.copies.get(ledgerId) ?? [];
  }

  /** Seconds until the next in-flight message becomes visible again, if any. */
  secondsUntilVisible(q: Queue): number | undefined {
    // Receipts deleted meanwhile never come back, and `release` skips them: step past them
    // for good, so that each receipt is looked at once however often the pollers ask.
    while (q.returningHead < q.returning.length) {
      const r = q.returning[q.returningHead] as { receipt: string; visibleAt: number };
      if (q.inFlight.has(r.receipt)) return (r.visibleAt - this.ctx.now()) / 1000;
      q.returningHead += 1;
    }
    return undefined;
  }

  /** Messages that can be received now. */
  available(q: Queue): number {
    this.release(q);
    return q.visible.length - q.head;
  }

  /**
   * Receives up to `max` messages, hiding them for the visibility timeout. A message whose
   * ReceiveCount already reached maxReceiveCount moves to the dead-letter queue instead:
   * "When the ReceiveCount for a message exceeds the maxReceiveCount ... Amazon SQS moves
   * the message to the dead-letter-queue."
   */
  receive(q: Queue, max: number): { receipt: string; message: Message }[] {
    this.release(q);
    const out: { receipt: string; message: Message }[] = [];
    const now = this.ctx.now();
    while (out.length < max && q.head < q.visible.length) {
      const m = q.visible[q.head++] as Message;
      if (q.spec.redrive !== undefined && m.receiveCount >= q.spec.redrive.maxReceiveCount) {
        m.state = 'dlq';
        this.queue(q.spec.redrive.deadLetterTargetArn).dlq.push(m);
        continue;
      }
      m.receiveCount += 1;
      m.state = 'in-flight';
      const receipt = `rh-${this.nextReceipt++}`;
      const visibleAt = now + q.spec.visibilityTimeoutSeconds * 1000;
      q.inFlight.set(receipt, { message: m, visibleAt });
      q.returning.push({ receipt, visibleAt });
      out.push({ receipt, message: m });
    }
    if (q.head > 10_000) {
      q.visible = q.visible.slice(q.head);
      q.head = 0;
    }
    return out;
  }

  delete(q: Queue, receipt: string): void {
    const entry = q.inFlight.get(receipt);
    if (entry === undefined) return;
    q.inFlight.delete(receipt);
    entry.message.state = 'deleted';
    entry.message.deletedAt = this.ctx.now();
    if (this.ctx.draw() < DUPLICATE_RATE) {
      // A copy that an unavailable server kept: delivered again later.
      this.ctx.after(1, () => {
        const copy = this.send(q.spec.url, entry.message.body, entry.message.ledgerId);
        copy.messageId = entry.message.messageId;
      });
    }
  }

  /** Messages back from in flight once their visibility timeout ends. */
  private release(q: Queue): void {
    const now = this.ctx.now();
    while ((q.returning[q.returningHead]?.visibleAt ?? Infinity) <= now) {
      const { receipt } = q.returning[q.returningHead++] as { receipt: string };
      const entry = q.inFlight.get(receipt);
      if (entry === undefined) continue;
      q.inFlight.delete(receipt);
      entry.message.state = 'visible';
      q.visible.push(entry.message);
    }
    if (q.returningHead > 10_000) {
      q.returning = q.returning.slice(q.returningHead);
      q.returningHead = 0;
    }
  }

  /** Every queue's messages waiting or in flight. */
  waiting(): number {
    let n = 0;
    for (const q of this.byUrl.values()) {
      this.release(q);
      n += q.visible.length - q.head + q.inFlight.size;
    }
    return n;
  }

  queues(): Queue[] {
    return [...this.byUrl.values()];
  }
}
