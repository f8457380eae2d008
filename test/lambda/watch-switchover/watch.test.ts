import { DescribeBlueGreenDeploymentsCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { handler } from '../../../lambda/watch-switchover/handler';
import { POLL_MS, RETURN_MARGIN_MS, watchSwitchover } from '../../../lambda/watch-switchover/watch';

const rds = mockClient(RDSClient);
const START = Date.parse('2026-11-22T04:30:00Z');

/** RDS answers these statuses in turn, the last one for ever after. */
function statuses(...list: string[]): void {
  let i = 0;
  rds.on(DescribeBlueGreenDeploymentsCommand).callsFake(() => ({
    BlueGreenDeployments: [{ Status: list[Math.min(i++, list.length - 1)] }],
  }));
}

const event = (over: Partial<Parameters<typeof watchSwitchover>[1]> = {}) => ({
  deploymentId: 'bgd-1',
  startedAt: new Date(START).toISOString(),
  maxSeconds: 420,
  running: false,
  ...over,
});

/** Runs the watch to its answer, with the clock moving as far as it waits. */
async function watch(e = event(), remainingMs = () => 5 * 60_000) {
  const pending = watchSwitchover({ rds: new RDSClient({}), remainingMs }, e);
  let done = false;
  pending.then(
    () => (done = true),
    () => (done = true),
  );
  while (!done) await jest.advanceTimersByTimeAsync(100);
  return pending;
}

beforeEach(() => {
  rds.reset();
  jest.useFakeTimers({ now: START });
});
afterEach(() => jest.useRealTimers());

describe('watchSwitchover', () => {
  it('describes the deployment once a second and returns as it completes', async () => {
    statuses(
      'SWITCHOVER_IN_PROGRESS',
      'SWITCHOVER_IN_PROGRESS',
      'SWITCHOVER_IN_PROGRESS',
      'SWITCHOVER_COMPLETED',
    );
    const result = await watch();
    expect(result).toMatchObject({
      status: 'SWITCHOVER_COMPLETED',
      running: true,
      pastDeadline: false,
      checks: 4,
    });
    expect(rds).toHaveReceivedCommandWith(DescribeBlueGreenDeploymentsCommand, {
      BlueGreenDeploymentIdentifier: 'bgd-1',
    });
    // Four checks, a second apart: the end is seen within a second of it.
    expect(POLL_MS).toBe(1000);
    expect(Date.now() - START).toBeGreaterThanOrEqual(3000);
    expect(Date.now() - START).toBeLessThan(4000);
  });

  it('keeps watching while the deployment is AVAILABLE and was never seen running', async () => {
    statuses('AVAILABLE', 'AVAILABLE', 'SWITCHOVER_IN_PROGRESS', 'SWITCHOVER_COMPLETED');
    await expect(watch()).resolves.toMatchObject({ status: 'SWITCHOVER_COMPLETED', checks: 4 });
  });

  it('returns as soon as AVAILABLE follows a running switchover: RDS rolled it back', async () => {
    statuses('SWITCHOVER_IN_PROGRESS', 'AVAILABLE');
    await expect(watch()).resolves.toMatchObject({ status: 'AVAILABLE', running: true, checks: 2 });
  });

  it('remembers a switchover seen running by an earlier call', async () => {
    statuses('AVAILABLE');
    await expect(watch(event({ running: true }))).resolves.toMatchObject({
      status: 'AVAILABLE',
      running: true,
      checks: 1,
    });
  });

  it('returns any status it does not expect at once, for the state machine to judge', async () => {
    statuses('DELETING');
    await expect(watch()).resolves.toMatchObject({ status: 'DELETING', checks: 1 });
  });

  it('gives up at the deadline: the timeout plus the margin after the start', async () => {
    statuses('AVAILABLE');
    const result = await watch(event({ maxSeconds: 5 }));
    expect(result).toMatchObject({ status: 'AVAILABLE', running: false, pastDeadline: true });
    expect(Date.now() - START).toBeGreaterThanOrEqual(5000);
    expect(Date.now() - START).toBeLessThan(6000 + POLL_MS);
  });

  it('returns before its own timeout, still running, for the state machine to call it again', async () => {
    statuses('SWITCHOVER_IN_PROGRESS');
    const timeout = START + RETURN_MARGIN_MS + 3 * POLL_MS;
    const result = await watch(event(), () => timeout - Date.now());
    expect(result).toMatchObject({
      status: 'SWITCHOVER_IN_PROGRESS',
      running: true,
      pastDeadline: false,
    });
    expect(timeout - Date.now()).toBeGreaterThanOrEqual(RETURN_MARGIN_MS);
  });
});

describe('watch-switchover handler', () => {
  const context = { getRemainingTimeInMillis: () => 5 * 60_000 };

  it('answers a warm-up without calling RDS', async () => {
    await expect(handler({ warm: true }, context)).resolves.toEqual({ warm: true });
    expect(rds).not.toHaveReceivedCommand(DescribeBlueGreenDeploymentsCommand);
  });

  it.each([
    [{ ...event(), deploymentId: '' }, 'deploymentId'],
    [{ ...event(), startedAt: 'soon' }, 'startedAt'],
    [{ ...event(), maxSeconds: '420' }, 'maxSeconds'],
    [{ ...event(), extra: 1 }, 'extra'],
  ])('refuses %p, naming the field and the value, before calling RDS', async (input, field) => {
    const error = await handler(input, context).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('invalid watch-switchover event');
    expect((error as Error).message).toContain(field);
    expect((error as Error).message).toContain(`got: ${JSON.stringify(input)}`);
    expect(rds).not.toHaveReceivedCommand(DescribeBlueGreenDeploymentsCommand);
  });
});
