import type { ModelContext } from './core';
import type { Connection, Instance, RdsModel } from './rds';

interface Session {
  connection?: Connection;
  /** The address a dropped session keeps trying (pools): the instance it was on. */
  pinned?: Instance;
}

/**
 * The platform's web app as a database client: a pool of sessions to the production
 * endpoint, used for the writes that cannot wait in a buffer (a user changing a setting),
 * only while the maintenance page is off.
 *
 * The assumption stale-sessions says what the pool does when the switchover drops its
 * sessions. `none`: it reconnects when it next needs a session, through DNS. `pools`: it
 * reconnects at once, in the background (as pools that keep a minimum of idle sessions do),
 * to the address its sessions had, which after the switchover is old blue (`-old1`), and
 * keeps those sessions; a session ended later by the server is opened again through DNS.
 * AWS drops the connections at the switchover and advises to clean up connections, but says
 * nothing about what clients do next.
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-best-practices
 */
export class AppPool {
  private readonly sessions: Session[];
  private next = 0;
  /** Writes refused while the page was off: users saw an error. */
  writesFailedAfterMaintenance = 0;
  writes = 0;

  constructor(
    private readonly ctx: ModelContext,
    private readonly rds: RdsModel,
    size = 4,
  ) {
    this.sessions = Array.from({ length: size }, () => ({}));
    // The moment the switchover lets go of its instances, as a pool that reconnects "at once".
    rds.onSwitchoverEnd(() => this.reconnect());
  }

  /**
   * Background reconnects (pools): each dropped session opens again, to the address it had.
   * Called every second, and at once when a switchover ends and its instances take
   * connections again, as a pool that reconnects "at once" does.
   */
  private reconnect(): void {
    if (this.ctx.assumption('stale-sessions') !== 'pools') return;
    for (const s of this.sessions) {
      if (this.alive(s)) continue;
      // Dropped by a switchover (its instance is switching over): keep its address.
      if (s.connection?.instance.blocked === true) s.pinned = s.connection.instance;
      this.connect(s);
    }
  }

  /** One second: background reconnects (pools), then the second's writes while the page is off. */
  tick(pageOff: boolean, writesPerSecond: number): void {
    this.reconnect();
    if (!pageOff) return;
    for (let n = 0; n < writesPerSecond; n++) {
      const s = this.sessions[this.next++ % this.sessions.length] as Session;
      if (!this.alive(s)) this.connect(s);
      const c = s.connection;
      if (c === undefined) continue;
      this.writes += 1;
      if (this.rds.readOnlyReason(c.instance) !== null) this.writesFailedAfterMaintenance += 1;
    }
  }

  /** Open: not dropped by its instance, nor ended on its own (a MySQL KILL). */
  private alive(s: Session): boolean {
    return s.connection !== undefined && this.rds.alive(s.connection);
  }

  private connect(s: Session): void {
    s.connection = undefined;
    const pinned = s.pinned;
    try {
      if (pinned !== undefined) {
        if (!this.rds.instances.has(pinned.resourceId)) s.pinned = undefined;
        else if (pinned.blocked || pinned.status !== 'available') return;
        else {
          s.connection = this.rds.open(pinned);
          s.pinned = undefined;
          return;
        }
      }
      s.connection = this.rds.connect(this.rds.sourceEndpoint());
    } catch {
      // Not accepting connections right now; the next second tries again.
    }
  }
}
