import type { BufferName } from '../lambda/shared/contracts';
import type { TrafficProfile } from './profiles';
import type { World } from './world';

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
 * buffered writes add up to 51 messages a second, over 40,000 in a default run.
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

type WriteKind = Exclude<TrafficKind, 'pageViews'>;

/** Which buffer each kind of write goes to; page views write nothing that can wait. */
const BUFFER_OF: Record<WriteKind, BufferName> = {
  clicks: 'tracking',
  opens: 'tracking',
  confirmations: 'opt-ins',
  signUps: 'sign-ups',
  unsubscribes: 'unsubscribes',
  sends: 'sends',
};

/** The capture route (CAPTURE_ROUTES key) a kind's request goes to; sends come from the platform. */
const ROUTE_OF: Partial<Record<WriteKind, string>> = {
  clicks: 'click',
  opens: 'open',
  confirmations: 'confirm',
  signUps: 'signUp',
  unsubscribes: 'unsubscribe',
};

export interface LedgerEntry {
  id: number;
  kind: WriteKind | 'poison';
  buffer: BufferName;
  /** The idempotency key its effect is stored under. */
  key: string;
  producedAt: number;
  /** The request met the maintenance page instead of the capture function. */
  refused: boolean;
}

/** The web app's own writes to the database, a second, while the page is off. */
export const APP_WRITES_PER_SECOND = 2;

/** The kinds people send through the load balancer: all but the platform's sends. */
type AlbKind = Exclude<TrafficKind, 'sends'>;

export interface TrafficOptions {
  /**
   * The multiplier on each kind's rate at each instant (profiles.ts).
   * @default every rate as given, all the time (the flat profile)
   */
  profile?: TrafficProfile;
  /**
   * Called once a virtual second with the requests that reached the load balancer in it:
   * every kind but sends, those answered with the maintenance page included. Not called for
   * a second without any: the load balancer reports metrics only while requests flow
   * (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
   */
  onRequests?: (count: number, atMs: number) => void;
}

/**
 * Traffic through the load balancer and the buffers while the upgrade runs. Each request
 * goes where the listener's rules send it at that second; each write is a message with a
 * body that meets its contract, recorded in a ledger from the request to its effect.
 */
export class Traffic {
  readonly ledger: LedgerEntry[] = [];
  readonly pageViews = { served: 0, maintenancePage: 0 };
  /**
   * Requests answered with the maintenance page, by kind: page views while the page is on,
   * and captures refused while their path is down. Sends never meet a page.
   */
  readonly maintenancePageByKind: Record<AlbKind, number> = {
    pageViews: 0,
    clicks: 0,
    opens: 0,
    confirmations: 0,
    signUps: 0,
    unsubscribes: 0,
  };
  /** Seconds in which a capture path answered with the maintenance page. */
  captureUnavailableSeconds = 0;
  /** Messages waiting (visible or in flight) every 10 virtual seconds. */
  readonly depth: { at: number; waiting: number }[] = [];
  private producing = true;
  private readonly credit = new Map<TrafficKind, number>();
  private readonly queueUrls: Record<string, string | undefined>;
  private readonly profile: TrafficProfile | undefined;
  private readonly onRequests: TrafficOptions['onRequests'];

  constructor(
    private readonly world: World,
    private readonly rates: Record<TrafficKind, number>,
    options: TrafficOptions = {},
  ) {
    this.profile = options.profile;
    this.onRequests = options.onRequests;
    // Each buffer's queue is the one its consumer's mapping reads (sends included, which the
    // platform fills, not the capture function).
    this.queueUrls = Object.fromEntries(
      world.app.mappings.map((m) => [
        world.runtime(m.functionName).spec.environment.BUFFER_NAME,
        world.app.queues.find((q) => q.arn === m.queueArn)?.url,
      ]),
    );
  }

  /** Starts producing, a second at a time, until `stopProducing`. */
  start(poison = 0): void {
    for (let i = 0; i < poison; i++) this.poison();
    void (async () => {
      let tick = 0;
      try {
        while (this.producing) {
          this.second();
          if (tick++ % 10 === 0)
            this.depth.push({ at: Date.now(), waiting: this.world.sqs.waiting() });
          await this.world.sim.sleep(1);
        }
      } catch (err) {
        // Kept for stopProducing: traffic that stopped by itself would leave a run that looks
        // quiet and passes.
        this.failure = err;
      }
    })();
  }

  /** Stops producing; throws what stopped production early, if anything did. */
  stopProducing(): void {
    this.producing = false;
    if (this.failure !== undefined) throw this.failure;
  }

  private failure: unknown;

  private second(): void {
    const { page, captureDown } = this.world.routing;
    if (page && captureDown.length > 0) this.captureUnavailableSeconds += 1;
    // Writes that cannot wait in a buffer go straight to the database, page off only.
    this.world.appPool.tick(!page, APP_WRITES_PER_SECOND);
    const now = Date.now();
    let throughAlb = 0;
    for (const kind of TRAFFIC_KINDS) {
      // The credit carries fractions over: 0.2 a second is one request every fifth second.
      const rate = this.rates[kind] * (this.profile?.(kind, now) ?? 1);
      const due = (this.credit.get(kind) ?? 0) + rate;
      const count = Math.floor(due);
      this.credit.set(kind, due - count);
      if (kind !== 'sends') throughAlb += count;
      if (kind === 'pageViews') {
        if (page) {
          this.pageViews.maintenancePage += count;
          this.maintenancePageByKind.pageViews += count;
        } else this.pageViews.served += count;
        continue;
      }
      if (count === 0) continue;
      const route = ROUTE_OF[kind];
      const path = route === undefined ? undefined : this.world.capturePaths[route];
      const refused = path !== undefined && captureDown.includes(path);
      if (refused && kind !== 'sends') this.maintenancePageByKind[kind] += count;
      for (let i = 0; i < count; i++) this.produce(kind, refused, now);
    }
    if (throughAlb > 0) this.onRequests?.(throughAlb, now);
  }

  private produce(kind: WriteKind, refused: boolean, producedAt: number): void {
    const id = this.ledger.length;
    const buffer = BUFFER_OF[kind];
    const entry: LedgerEntry = { id, kind, buffer, key: `${kind}-${id}`, producedAt, refused };
    this.ledger.push(entry);
    if (refused) return;
    // A second's writes share their time: its text is made once.
    if (producedAt !== this.isoOf.at) this.isoOf = { at: producedAt, iso: isoTime(producedAt) };
    this.world.sqs.send(this.url(buffer), JSON.stringify(body(kind, entry, this.isoOf.iso)), id);
  }

  private isoOf = { at: NaN, iso: '' };

  /** A message that breaks its contract: the consumer refuses it until it lands in the DLQ. */
  private poison(): void {
    const id = this.ledger.length;
    const entry: LedgerEntry = {
      id,
      kind: 'poison',
      buffer: 'tracking',
      key: `poison-${id}`,
      producedAt: Date.now(),
      refused: false,
    };
    this.ledger.push(entry);
    const text = JSON.stringify({ v: 1, type: 'click', idempotencyKey: entry.key, data: {} });
    this.world.sqs.send(this.url('tracking'), text, id);
  }

  private url(buffer: BufferName): string {
    const url = this.queueUrls[buffer];
    if (url === undefined) throw new Error(`no consumer's mapping reads the ${buffer} buffer`);
    return url;
  }
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** A message body that meets the buffer's contract (lambda/shared/contracts.ts). */
function body(kind: WriteKind, e: LedgerEntry, at: string) {
  const base = { v: 1, idempotencyKey: e.key, occurredAt: at };
  const person = `person${e.id}@example.com`;
  switch (kind) {
    case 'clicks':
      return {
        ...base,
        type: 'click',
        data: { campaignId: 'c1', subscriberId: `s${e.id}`, url: 'https://example.com/offer' },
      };
    case 'opens':
      return { ...base, type: 'open', data: { campaignId: 'c1', subscriberId: `s${e.id}` } };
    case 'confirmations':
      return {
        ...base,
        type: 'opt-in-confirmation',
        data: { listId: 'l1', subscriberId: `s${e.id}` },
      };
    case 'signUps':
      return { ...base, type: 'sign-up', data: { listId: 'l1', email: person } };
    case 'unsubscribes':
      return { ...base, type: 'unsubscribe', data: { subscriberId: `s${e.id}`, listId: 'l1' } };
    case 'sends':
      return {
        ...base,
        type: 'send',
        data: { campaignId: 'c1', recipient: person, templateId: 't1', scheduledAt: at },
      };
  }
}

export interface Accounting {
  produced: number;
  /** Writes whose effect is in the final writer's data. */
  processed: number;
  /** Not applied yet and still in a queue. */
  inQueue: number;
  /** In a dead-letter queue, not applied. */
  inDlq: number;
  /** Neither applied to the final writer nor waiting anywhere. */
  lost: number;
  /** Of the lost: refused at the door (the capture path showed the maintenance page). */
  refusedAtCapture: number;
  /** Of the lost: applied only to an instance that is not the final writer. */
  onSetAsideWriter: number;
  /**
   * Rows in the final writer that no write's key names: a write applied again under a key
   * of the consumer's making. (A second row under the same key cannot exist: every table's
   * key is its primary key, lambda/database-roles/schema.sql and schema-mysql.sql, and the database
   * refuses it.)
   */
  appliedTwice: number;
  /** Poison messages that did not end in a DLQ. */
  poisonNotInDlq: number;
  /** Writes that met their contract but ended in a DLQ. */
  goodInDlq: number;
}

/** What became of every write, read from the queues and the final writer's data. */
export function account(world: World, ledger: LedgerEntry[]): Accounting {
  const keysOn = (instance: ReturnType<World['rds']['writer']>, each: (key: string) => void) => {
    for (const [table, rows] of instance?.tables ?? []) {
      const column = world.rds.engineModel.schema.get(table) ?? 'idempotency_key';
      for (const row of rows) each(String(row[column]));
    }
  };
  const writer = world.rds.writer();
  const final = new Map<string, number>();
  keysOn(writer, (key) => final.set(key, (final.get(key) ?? 0) + 1));
  const elsewhere = new Set<string>();
  for (const i of world.rds.instances.values()) {
    if (i !== writer) keysOn(i, (key) => elsewhere.add(key));
  }
  const a: Accounting = {
    produced: ledger.filter((e) => e.kind !== 'poison').length,
    processed: 0,
    inQueue: 0,
    inDlq: 0,
    lost: 0,
    refusedAtCapture: 0,
    onSetAsideWriter: 0,
    appliedTwice: 0,
    poisonNotInDlq: 0,
    goodInDlq: 0,
  };
  const known = new Set<string>();
  for (const e of ledger) {
    known.add(e.key);
    const rows = final.get(e.key) ?? 0;
    const copies = world.sqs.copiesOf(e.id);
    const inDlq = copies.some((c) => c.state === 'dlq');
    if (e.kind === 'poison') {
      if (!inDlq) a.poisonNotInDlq += 1;
      continue;
    }
    if (inDlq) a.goodInDlq += 1;
    if (rows > 0) {
      a.processed += 1;
    } else if (copies.some((c) => c.state === 'visible' || c.state === 'in-flight')) {
      a.inQueue += 1;
    } else if (inDlq) {
      a.inDlq += 1;
    } else {
      a.lost += 1;
      if (e.refused) a.refusedAtCapture += 1;
      else if (elsewhere.has(e.key)) a.onSetAsideWriter += 1;
    }
  }
  for (const key of final.keys()) if (!known.has(key)) a.appliedTwice += final.get(key) ?? 0;
  return a;
}
