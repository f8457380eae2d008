import { DescribeBlueGreenDeploymentsCommand, type RDSClient } from '@aws-sdk/client-rds';

/**
 * While the switchover runs the maintenance page is up, so its end is noticed within a
 * second: the deployment is described every POLL_MS, from this function rather than from a
 * Wait state, so that a switchover as long as its 3,600 s timeout costs a few Task states of
 * execution history instead of thousands (upgrade-runbook.ts counts them).
 */
export const POLL_MS = 1000;
/** Returns this long before its own timeout, so the state machine gets an answer, not a timeout. */
export const RETURN_MARGIN_MS = 10_000;

export interface WatchEvent {
  deploymentId: string;
  /** When the switchover was asked for (ISO 8601). */
  startedAt: string;
  /** How long after `startedAt` the switchover must have ended: its timeout plus a margin. */
  maxSeconds: number;
  /** Whether an earlier check saw it SWITCHOVER_IN_PROGRESS. */
  running: boolean;
}

export interface WatchResult {
  /** The deployment's last status. */
  status: string;
  /** Whether any check saw the switchover running. */
  running: boolean;
  /** The switchover has had its timeout plus the margin, and has not ended. */
  pastDeadline: boolean;
  /** Describe calls made by this invocation. */
  checks: number;
  startedAt: string;
  maxSeconds: number;
}

export interface WatchDeps {
  rds: Pick<RDSClient, 'send'>;
  /** Milliseconds the invocation has left (the Lambda context's getRemainingTimeInMillis). */
  remainingMs(): number;
}

/**
 * Describes the deployment every second until the switchover has ended one way or the other,
 * then says what it saw; the state machine decides. Statuses:
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_BlueGreenDeployment.html
 * - SWITCHOVER_IN_PROGRESS: still running, keep watching.
 * - AVAILABLE before any check saw it running: the switchover has not started yet (or a
 *   failed call never started it), keep watching until the deadline.
 * - AVAILABLE after it ran (RDS rolled it back), SWITCHOVER_COMPLETED, SWITCHOVER_FAILED,
 *   INVALID_CONFIGURATION or anything else: ended, return.
 * It also returns at the deadline, and before its own timeout (the state machine calls again).
 */
export async function watchSwitchover(deps: WatchDeps, event: WatchEvent): Promise<WatchResult> {
  const deadline = Date.parse(event.startedAt) + event.maxSeconds * 1000;
  let running = event.running;
  let checks = 0;
  for (;;) {
    const polledAt = Date.now();
    const out = await deps.rds.send(
      new DescribeBlueGreenDeploymentsCommand({
        BlueGreenDeploymentIdentifier: event.deploymentId,
      }),
    );
    checks += 1;
    const status = out.BlueGreenDeployments?.[0]?.Status ?? 'UNKNOWN';
    if (status === 'SWITCHOVER_IN_PROGRESS') running = true;
    const ended = status !== 'SWITCHOVER_IN_PROGRESS' && (status !== 'AVAILABLE' || running);
    const pastDeadline = !ended && Date.now() >= deadline;
    const outOfTime = deps.remainingMs() < RETURN_MARGIN_MS + POLL_MS;
    if (ended || pastDeadline || outOfTime) {
      return {
        status,
        running,
        pastDeadline,
        checks,
        startedAt: event.startedAt,
        maxSeconds: event.maxSeconds,
      };
    }
    const wait = polledAt + POLL_MS - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
