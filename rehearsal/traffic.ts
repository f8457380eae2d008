import type { BufferName } from '../lambda/shared/contracts';
import type { AwsWorld } from './aws-model';

/** What users and the platform do during the rehearsal, per second. */
export const TRAFFIC_KINDS = [
  'pageViews',
  'clicks',
  'opens',
  'confirmations',
  'signUps',
  'unsubscribes',
  'sends',
] as const;
export type TrafficKind = (typeof TRAFFIC_KINDS)[number];

/**
 * Default rates, per second: a mid-size email platform on a Sunday morning (assumed). The
 * buffered writes add up to 51 messages a second, over 100,000 in a default run.
 */
export const DEFAULT_RATES: Record<TrafficKind, number> = {
  pageViews: 20,
  clicks: 15,
  opens: 15,
  confirmations: 2,
  signUps: 2,
  unsubscribes: 2,
  sends: 15,
};

/** Which buffer each kind of write goes to; page views write nothing that can wait. */
const BUFFER_OF: Record<Exclude<TrafficKind, 'pageViews'>, BufferName> = {
  clicks: 'tracking',
  opens: 'tracking',
  confirmations: 'opt-ins',
  signUps: 'sign-ups',
  unsubscribes: 'unsubscribes',
  sends: 'sends',
};

/** Consumer settings and timings. */
export const CONSUMER = {
  /** Records per batch: the event source mapping's BatchSize (write-buffer.ts). */
  batchSize: 10,
  /** MaximumConcurrency of each mapping (write-buffer.ts). */
  maxConcurrency: 2,
  /** Seconds to apply one batch of 10 INSERTs. Assumed: ~25 ms per idempotent insert. */
  batchSeconds: 0.25,
  /**
   * Seconds for each extra concurrent consumer after a mapping is enabled. Assumed; Lambda
   * scales SQS pollers up by up to 300 concurrent invocations a minute, far faster than the
   * 2 that MaximumConcurrency allows here.
   * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html
   */
  rampSecondsPerConsumer: 1,
  /** Receives before a message moves to the DLQ (maxReceiveCount in write-buffer.ts). */
  maxReceiveCount: 5,
  /** The queue's visibility timeout, seconds (6 x 30 s + 1 s, write-buffer.ts). */
  visibilityTimeoutSeconds: 181,
  /**
   * Share of messages a standard queue delivers twice. Assumed: SQS documents at-least-once
   * delivery without a rate; 0.1 % exercises the idempotent effects.
   * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/standard-queues.html
   */
  duplicateRate: 0.001,
};

export interface Message {
  id: number;
  kind: TrafficKind;
  buffer: BufferName;
  producedAt: number;
  processedAt?: number;
  deliveries: number;
  receives: number;
  inDlq: boolean;
}

interface Queue {
  visible: number[];
  head: number;
  /** Messages back from a failed receive, visible again at `at`. */
  delayed: { id: number; at: number }[];
  dlq: number[];
}

export interface TrafficTotals {
  produced: number;
  processed: number;
  inQueue: number;
  inDlq: number;
  lost: number;
  duplicateEffects: number;
  duplicateDeliveries: number;
  pageViews: { served: number; maintenancePage: number };
  captureUnavailableSeconds: number;
}

/**
 * Traffic through the buffers while the upgrade runs: every write is a message in a ledger,
 * from the request to its effect. Consumers apply effects only while their mapping is on and
 * the writer takes writes; an effect is keyed by the message id, as the real consumer's
 * INSERT … ON CONFLICT DO NOTHING is keyed by the idempotency key.
 */
export class Traffic {
  readonly ledger: Message[] = [];
  readonly effects = new Map<number, number>();
  readonly queues = new Map<BufferName, Queue>();
  /** [virtual ms, total messages waiting] every 10 s, for the timeline picture. */
  readonly depth: { at: number; waiting: number }[] = [];
  private readonly credit = new Map<TrafficKind, number>();
  private pageViewsServed = 0;
  private pageViewsMaintenance = 0;
  private captureUnavailableSeconds = 0;
  private duplicateDeliveries = 0;
  private producing = true;
  private lastSample = -Infinity;
  private random: () => number;
  private readonly enabledSince = new Map<BufferName, number>();

  constructor(
    private readonly world: AwsWorld,
    private readonly rates: Record<TrafficKind, number>,
    seed = 42,
  ) {
    for (const buffer of Object.values(BUFFER_OF)) {
      this.queues.set(buffer, { visible: [], head: 0, delayed: [], dlq: [] });
    }
    this.random = mulberry32(seed);
  }

  /** Production stops (the run is over); consumers go on draining. */
  stopProducing(): void {
    this.producing = false;
  }

  /** Moves the traffic from one virtual instant to another, a second at a time. */
  advance(fromMs: number, toMs: number): void {
    for (let t = fromMs; t < toMs; t += 1000) {
      const step = Math.min(1000, toMs - t);
      this.second(t, step / 1000);
    }
  }

  /** Messages waiting in one buffer's queue. */
  waitingIn(buffer: BufferName): number {
    const q = this.queues.get(buffer);
    return q === undefined ? 0 : q.visible.length - q.head + q.delayed.length;
  }

  waiting(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.visible.length - q.head + q.delayed.length;
    return n;
  }

  totals(): TrafficTotals {
    const produced = this.ledger.length;
    const processed = this.effects.size;
    let inDlq = 0;
    const queued = new Set<number>();
    for (const q of this.queues.values()) {
      inDlq += q.dlq.length;
      for (let i = q.head; i < q.visible.length; i++) queued.add(q.visible[i] as number);
      for (const d of q.delayed) queued.add(d.id);
    }
    // Waiting and not yet applied (a queued second copy of an applied message is no backlog).
    let inQueue = 0;
    for (const id of queued) if (!this.effects.has(id) && !this.ledger[id]?.inDlq) inQueue += 1;
    let duplicateEffects = 0;
    for (const count of this.effects.values()) duplicateEffects += count - 1;
    return {
      produced,
      processed,
      inQueue,
      inDlq,
      lost: produced - processed - inQueue - inDlq,
      duplicateEffects,
      duplicateDeliveries: this.duplicateDeliveries,
      pageViews: { served: this.pageViewsServed, maintenancePage: this.pageViewsMaintenance },
      captureUnavailableSeconds: this.captureUnavailableSeconds,
    };
  }

  private second(t: number, seconds: number): void {
    const maintenance = this.world.maintenanceAt(t);
    const captureDown = maintenance && !this.world.captureRoutesOn();
    if (captureDown) this.captureUnavailableSeconds += seconds;
    if (this.producing) {
      for (const kind of TRAFFIC_KINDS) {
        const due = (this.credit.get(kind) ?? 0) + this.rates[kind] * seconds;
        const count = Math.floor(due);
        this.credit.set(kind, due - count);
        if (kind === 'pageViews') {
          if (maintenance) this.pageViewsMaintenance += count;
          else this.pageViewsServed += count;
          continue;
        }
        // Buffered endpoints answer from the capture function during maintenance: they
        // need SQS, not the database. They would be down only if the rules sent them to
        // the page, which the toggle never does (capture rules go on first).
        if (captureDown) continue;
        for (let i = 0; i < count; i++) this.produce(kind, t);
      }
    }
    const writable = this.world.writableAt(t);
    for (const [buffer, queue] of this.queues) {
      this.release(queue, t);
      const consuming = this.world.consumingAt(buffer, t);
      if (!consuming) {
        this.enabledSince.delete(buffer);
        continue;
      }
      const since = this.enabledSince.get(buffer) ?? t;
      this.enabledSince.set(buffer, since);
      const concurrency = Math.min(
        CONSUMER.maxConcurrency,
        1 + Math.floor((t - since) / 1000 / CONSUMER.rampSecondsPerConsumer),
      );
      let capacity = Math.floor(
        (concurrency * CONSUMER.batchSize * seconds) / CONSUMER.batchSeconds,
      );
      while (capacity > 0 && queue.head < queue.visible.length) {
        const id = queue.visible[queue.head++] as number;
        capacity -= 1;
        this.receive(id, queue, t, writable);
      }
      if (queue.head > 50_000) {
        queue.visible = queue.visible.slice(queue.head);
        queue.head = 0;
      }
    }
    if (t - this.lastSample >= 10_000) {
      this.lastSample = t;
      this.depth.push({ at: t, waiting: this.waiting() });
    }
  }

  private produce(kind: TrafficKind, t: number): void {
    const buffer = BUFFER_OF[kind as Exclude<TrafficKind, 'pageViews'>];
    const id = this.ledger.length;
    this.ledger.push({ id, kind, buffer, producedAt: t, deliveries: 0, receives: 0, inDlq: false });
    this.queues.get(buffer)?.visible.push(id);
  }

  private receive(id: number, queue: Queue, t: number, writable: boolean): void {
    const message = this.ledger[id] as Message;
    message.receives += 1;
    message.deliveries += 1;
    if (!writable) {
      // The consumer fails the record: it comes back after the visibility timeout, and
      // goes to the DLQ after maxReceiveCount receives.
      if (message.receives >= CONSUMER.maxReceiveCount) {
        message.inDlq = true;
        queue.dlq.push(id);
      } else {
        queue.delayed.push({ id, at: t + CONSUMER.visibilityTimeoutSeconds * 1000 });
      }
      return;
    }
    // INSERT … ON CONFLICT DO NOTHING: a second delivery adds no effect.
    if (this.effects.has(id)) {
      this.duplicateDeliveries += 1;
    } else {
      this.effects.set(id, 1);
      message.processedAt = t;
    }
    if (this.random() < CONSUMER.duplicateRate) queue.delayed.push({ id, at: t + 1000 });
  }

  private release(queue: Queue, t: number): void {
    if (queue.delayed.length === 0) return;
    const due = queue.delayed.filter((d) => d.at <= t);
    if (due.length === 0) return;
    queue.delayed = queue.delayed.filter((d) => d.at > t);
    for (const d of due) queue.visible.push(d.id);
  }
}

/** A small seeded PRNG, so a rehearsal is repeatable. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
