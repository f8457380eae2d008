import { SCENARIOS } from '../../../rehearsal/rehearse';
import type { World } from '../../../rehearsal/world';
import {
  ORIGINAL,
  SOURCE,
  TARGET,
  app,
  mappingStates,
  run,
  subjects,
  times,
} from '../../helpers/upgrade';

/*
 * The runbook and the watchdog exactly as synthesized, executed by aws-local-stepfunctions
 * against the simulated account, every function running its real code, every call checked
 * against the caller's synthesized role, in virtual time (rehearsal/).
 */

const START = Date.parse('2026-11-22T04:00:00.000Z');

/** The instances by name, with their version. */
function instances(world: World): Record<string, string> {
  return Object.fromEntries(
    [...world.rds.instances.values()].map((i) => [i.identifier, i.engineVersion]),
  );
}

describe('upgrade runbook, executed locally', () => {
  it('upgrades on the happy path, with the page on only around the switchover', async () => {
    const { report, world } = await run();
    expect(report.outcome).toBe('UPGRADED');
    expect(report.invariants).toEqual({ ok: true, violations: [] });
    expect(report.run.output).toMatchObject({
      writer: {
        identifier: SOURCE,
        engineVersion: TARGET,
        writable: true,
        deletionProtection: true,
      },
    });
    const [on, off] = world.events.filter((e) => e.kind === 'routing');
    const [start] = times(world, 'switchover-start');
    const [end] = times(world, 'switchover-end');
    expect(on?.t).toBeLessThan(start ?? 0);
    expect(off?.t).toBeGreaterThan(end ?? Infinity);
    const resumes = world.events.filter((e) => e.kind === 'update-mapping' && e.enabled);
    expect(resumes).toHaveLength(5);
    for (const r of resumes) expect(r.t).toBeGreaterThan(off?.t ?? Infinity);
    // Old blue is kept (renamed -old1) for a retention period, never deleted by the run.
    expect(instances(world)).toEqual({ [SOURCE]: TARGET, [`${SOURCE}-old1`]: ORIGINAL });
    expect(subjects(world)).toEqual([
      'Database upgrade: started',
      'Database upgrade: switching over now',
      'Database upgrade: switched over, maintenance page off',
      'Database upgrade: upgraded',
    ]);
    expect(world.eventBridge.put).toHaveLength(4);
    // Nothing optional while users see the page: people are told before it and after it.
    const told = world.events.filter((e) => e.kind === 'notification').map((e) => e.t);
    expect(told.filter((t) => t >= (on?.t ?? 0) && t <= (off?.t ?? 0))).toEqual([]);
  });

  it.each([4.3, 27.7, 61.9])(
    'keeps the page to a %s s switchover plus at most 2 s, with no cold start while it is on',
    async (switchoverSeconds) => {
      const { report } = await run({ switchoverSeconds });
      expect(report.outcome).toBe('UPGRADED');
      expect(report.switchoverSeconds).toBeCloseTo(switchoverSeconds, 1);
      // Rule on, noticing the end (polled every second), the writer check, rule off.
      expect(report.maintenance.seconds).toBeGreaterThan(switchoverSeconds);
      expect(report.maintenance.seconds).toBeLessThanOrEqual(switchoverSeconds + 2);
      expect(report.window?.noticing).toBeLessThanOrEqual(1.2);
      expect(report.window?.coldStartsInWindow).toBe(0);
    },
  );

  it('stops after preflight with the plan on a dry run, changing nothing', async () => {
    const { report, world } = await run({ scenario: 'dry-run' });
    expect(report.outcome).toBe('DRY_RUN');
    expect(report.run.output).toMatchObject({
      plan: { targetEngineVersion: TARGET, dryRun: true },
    });
    expect(report.tasks.upgrade).toEqual([
      'Validate input',
      'Run preflight checks',
      'Run the writer check against blue',
    ]);
    expect(world.rds.deployments.size).toBe(0);
    expect(world.events.filter((e) => e.kind === 'routing' || e.kind === 'update-mapping')).toEqual(
      [],
    );
  });

  it.each([
    [
      { switchoverTimeoutSeconds: 5 },
      'InvalidInput.switchoverTimeoutSeconds',
      'must be 30-3600, got: 5',
    ],
    [{ dryrun: true }, 'InvalidInput.dryrun', 'unknown field(s): dryrun'],
    [{ deadline: 'next sunday' }, 'InvalidInput.deadline', 'ISO 8601'],
  ])('rejects bad input %p in the first state, naming the field', async (input, error, cause) => {
    const { report, world } = await run({ input });
    expect(report.outcome).toBe('REJECTED');
    expect(report.run).toMatchObject({ status: 'FAILED', error });
    expect(report.run.cause).toContain(cause);
    expect(report.tasks.upgrade).toEqual(['Validate input']);
    expect(world.rds.deployments.size).toBe(0);
    expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL });
  });

  it('reports every failed preflight check at once, from the real preflight, and changes nothing', async () => {
    const { report, world } = await run({
      world: { noBackups: true, managedPassword: true, existingDeployment: true },
    });
    expect(report.run).toMatchObject({ status: 'FAILED', error: 'PreflightFailed' });
    for (const problem of [
      'Automated backups are off',
      'managed by RDS',
      'already the source of blue/green deployment',
    ]) {
      expect(report.run.cause).toContain(problem);
    }
    expect(world.rds.deployments.size).toBe(1); // only the one that was there
    expect(subjects(world)).toContain('Database upgrade: rejected by preflight');
    expect(world.events.filter((e) => e.kind === 'routing' || e.kind === 'update-mapping')).toEqual(
      [],
    );
  });

  it('rejects a second run while one is running (single flight)', async () => {
    const { report } = await run({ world: { otherExecutionRunning: true } });
    expect(report.outcome).toBe('REJECTED');
    expect(report.run.cause).toContain('Another upgrade is running');
  });

  it('rolls back, deleting green, when green is stuck in PROVISIONING until the deadline', async () => {
    // A green without deletion protection; one with it is kept (below).
    const { report, world } = await run({
      scenario: 'green-stuck',
      assumptions: { 'green-deletion-protection': 'off' },
    });
    expect(report.outcome).toBe('ROLLED_BACK');
    expect(report.run.output).toMatchObject({ failure: { Error: 'GreenNotReadyInTime' } });
    expect(report.maintenance.seconds).toBe(0);
    expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL });
    const deadline = String(SCENARIOS['green-stuck']?.input?.deadline);
    expect(times(world, 'task').at(-1)).toBeGreaterThanOrEqual(Date.parse(deadline));
    // It waited for green until the deadline, not past it.
    const rollback = world.events.find((e) => e.kind === 'task' && e.state.startsWith('Roll back'));
    expect(rollback?.t).toBeGreaterThanOrEqual(Date.parse(deadline));
    expect(rollback?.t).toBeLessThan(Date.parse(deadline) + 60_000);
  });

  it('never starts the switchover after the deadline', async () => {
    // Green is ready after 30 minutes, the deadline passes as it is verified.
    const deadline = new Date(START + 1800_000).toISOString();
    const { report, world } = await run({
      input: { deadline },
      world: { latencies: { greenBuild: 1795 } },
    });
    expect(report.outcome).toBe('ROLLED_BACK');
    expect(report.run.output).toMatchObject({ failure: { Error: 'DeadlinePassed' } });
    expect(times(world, 'switchover-start')).toEqual([]);
    expect(report.invariants.ok).toBe(true);
  });

  it.each([
    'Create blue-green deployment',
    'Check green status',
    'Verify green',
    'Pause: disable consumer',
    'Pause: check consumer state',
    'Turn maintenance on',
  ])('rolls back when "%s" fails before the switchover', async (state) => {
    const { report, world } = await run({ failAt: [state] });
    expect(report.outcome).toBe('ROLLED_BACK');
    expect(report.run.output).toMatchObject({
      failure: { Error: expect.stringContaining('InjectedFault') },
    });
    expect(report.invariants.ok).toBe(true);
    expect(times(world, 'switchover-start')).toEqual([]);
    expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL });
    expect(subjects(world).at(-1)).toBe('Database upgrade: rolled back');
  });

  it('rolls back when green is INVALID_CONFIGURATION or the operator rejects the switchover', async () => {
    const invalid = await run({ scenario: 'green-invalid' });
    expect(invalid.report.run.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'GreenInvalidConfiguration' },
    });
    const rejected = await run({ scenario: 'approval-rejected' });
    expect(rejected.report.tasks.upgrade).toContain('Wait for operator approval');
    expect(rejected.report.run.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'Rejected' },
    });
    expect(rejected.report.maintenance.seconds).toBe(0);
  });

  it('waits for approval when asked, then upgrades', async () => {
    const { report, world } = await run({ input: { requireApproval: true } });
    expect(report.tasks.upgrade).toContain('Wait for operator approval');
    expect(subjects(world)).toContain('Database upgrade: approval needed');
    expect(report.outcome).toBe('UPGRADED');
  });

  it.each([
    ['fails', { switchoverFails: true }, 'AVAILABLE', 'SwitchoverFailed'],
    [
      'outlasts its timeout',
      { latencies: { switchover: 400 } },
      'AVAILABLE',
      'SwitchoverRolledBack',
    ],
    [
      'outlasts its timeout',
      { latencies: { switchover: 400 } },
      'SWITCHOVER_FAILED',
      'SwitchoverFailed',
    ],
  ])(
    'rolls back at once when the switchover %s and the deployment then shows %s: blue is still the writer',
    async (_case, worldSettings, status, error) => {
      const { report, world } = await run({
        world: worldSettings,
        input: { switchoverTimeoutSeconds: 300 },
        assumptions: { 'switchover-timeout-status': status },
      });
      expect(report.run.output).toMatchObject({
        outcome: 'ROLLED_BACK',
        failure: { Error: error },
      });
      expect(report.invariants.ok).toBe(true);
      expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL });
      // At the first check after RDS rolled it back, not after the timeout plus a margin.
      const [end] = times(world, 'switchover-end');
      const off = world.events.filter((e) => e.kind === 'routing' && !e.page).at(-1);
      expect((off?.t ?? Infinity) - (end ?? 0)).toBeLessThanOrEqual(5_000 + 2_000);
    },
  );

  it('turns deletion protection off on green only, never on blue, before deleting green', async () => {
    const { report, world } = await run({
      scenario: 'green-invalid',
      assumptions: { 'green-deletion-protection': 'inherited' },
    });
    expect(report.outcome).toBe('ROLLED_BACK');
    expect(report.invariants).toEqual({ ok: true, violations: [] });
    expect(report.tasks.upgrade).toContain('Roll back: turn deletion protection off on green');
    expect(report.run.output).toMatchObject({ keptGreen: [] });
    expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL });
    expect(world.rds.writer()?.deletionProtection).toBe(true);
  });

  it('keeps a protected green it cannot change (still being created), and names it', async () => {
    const { report, world } = await run({
      scenario: 'green-stuck',
      assumptions: { 'green-deletion-protection': 'inherited' },
    });
    expect(report.outcome).toBe('ROLLED_BACK');
    expect(report.invariants.ok).toBe(true);
    const kept = (report.run.output as { keptGreen: string[] }).keptGreen;
    expect(kept).toEqual([expect.stringMatching(/^platform-db-green-\w+ \(creating\)$/)]);
    expect(world.rds.deployments.size).toBe(0);
  });

  it('protects the new writer from deletion when green did not inherit it', async () => {
    const { report, world } = await run({
      assumptions: { 'green-deletion-protection': 'off' },
    });
    expect(report.outcome).toBe('UPGRADED');
    expect(report.invariants).toEqual({ ok: true, violations: [] });
    expect(report.tasks.upgrade).toContain('Protect the new writer from deletion');
    expect(report.writer.deletionProtection).toBe(true);
    // After the page went off: not part of the window.
    const off = world.events.filter((e) => e.kind === 'routing' && !e.page).at(-1)?.t ?? 0;
    const protect = world.events.find(
      (e) => e.kind === 'task' && e.state === 'Protect the new writer from deletion',
    );
    expect(protect?.t).toBeGreaterThan(off);
    expect(world.rds.writer()?.deletionProtection).toBe(true);
  });

  it('follows the deployment, not the error, when the answer to the switchover call is lost', async () => {
    const { report, world } = await run({ scenario: 'switchover-call-lost' });
    expect(report.outcome).toBe('UPGRADED');
    expect(report.invariants).toEqual({ ok: true, violations: [] });
    // The call was answered with a 5xx, retried, and the retry refused: the switchover ran.
    expect(report.tasks.upgrade.filter((t) => t === 'Switch over to green')).toHaveLength(2);
    expect(times(world, 'switchover-start')).toHaveLength(1);
    expect(instances(world)).toEqual({ [SOURCE]: TARGET, [`${SOURCE}-old1`]: ORIGINAL });
  });

  it('rolls back a switchover call that always fails only once the timeout shows RDS never took it', async () => {
    const { report, world } = await run({
      failAt: ['Switch over to green'],
      input: { switchoverTimeoutSeconds: 60 },
    });
    expect(report.run.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'SwitchoverNotStarted' },
    });
    expect(report.invariants.ok).toBe(true);
    expect(times(world, 'switchover-start')).toEqual([]);
    expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL });
    // Watched for the timeout plus the margin (60 + 120 s), with the page on, then off.
    expect(report.maintenance.seconds).toBeGreaterThanOrEqual(180);
    expect(report.maintenance.seconds).toBeLessThanOrEqual(180 + 15);
  });

  it('rejects the run before anything changes when the writer check cannot reach the database', async () => {
    const { report, world } = await run({ scenario: 'writer-check-unreachable' });
    expect(report.outcome).toBe('REJECTED');
    expect(report.run.cause).toContain('timeout exceeded when trying to connect');
    expect(report.invariants).toEqual({ ok: true, violations: [] });
    expect(world.rds.deployments.size).toBe(0);
    expect(world.events.filter((e) => e.kind === 'routing' || e.kind === 'update-mapping')).toEqual(
      [],
    );
  });

  it('stops for an operator with the page on when the new writer cannot be checked', async () => {
    const { report, world } = await run({ scenario: 'writer-check-fails' });
    expect(report.run.output).toMatchObject({
      outcome: 'NEEDS_OPERATOR',
      failure: { Error: 'WriterNotChecked' },
    });
    expect(report.invariants.ok).toBe(true);
    expect(report.tasks.upgrade).not.toContain('Restore old blue as the writer');
    // The upgrade is kept; nothing writes to it until an operator has checked it.
    expect(instances(world)).toEqual({ [SOURCE]: TARGET, [`${SOURCE}-old1`]: ORIGINAL });
    expect(report.maintenance.on).toBe(true);
    expect(report.consumers.enabled).toBe(false);
  });

  it('waits for a green that is busy or still loading its storage instead of deleting it', async () => {
    const { report } = await run({ scenario: 'green-initializing' });
    expect(report.outcome).toBe('UPGRADED');
    expect(report.invariants.ok).toBe(true);
    expect(report.tasks.upgrade.filter((t) => t === 'Verify green').length).toBeGreaterThan(1);
  });

  it('restores old blue as the writer when the new writer refuses writes', async () => {
    const { report, world } = await run({ scenario: 'bad-writer' });
    expect(report.run.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'NewWriterFailedVerification' },
    });
    expect(report.invariants.ok).toBe(true);
    expect(report.tasks.upgrade).toContain('Restore old blue as the writer');
    // The failed writer is kept aside; old blue is writable under the original name.
    expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL, [`${SOURCE}-failed1`]: TARGET });
    const writer = world.rds.writer();
    expect(writer !== undefined && world.rds.readOnlyReason(writer)).toBeNull();
    // The failed writer is fenced, and the stack's parameter groups are as they were.
    expect(world.rds.formerWritersTakingWrites()).toEqual([]);
    expect(world.rds.changedGroups()).toEqual([]);
    expect(
      report.tasks.upgrade.indexOf('Restore: delete the switched-over deployment'),
    ).toBeLessThan(report.tasks.upgrade.indexOf('Restore old blue as the writer'));
  });

  it('pages the operator, leaving the page on and consumers paused, when a rollback step fails', async () => {
    const { report, world } = await run({
      failAt: ['Switch over to green', 'Roll back: turn maintenance off'],
    });
    expect(report.run.output).toMatchObject({
      outcome: 'NEEDS_OPERATOR',
      failure: { Error: 'Lambda.InjectedFault' },
      maintenance: { state: 'on' },
    });
    expect(report.invariants.ok).toBe(true);
    expect(world.routing.page).toBe(true);
    expect(mappingStates(world).every((s) => s === 'Disabled')).toBe(true);
    expect(world.events.filter((e) => e.kind === 'update-mapping' && e.enabled)).toEqual([]);
    expect(subjects(world)).toContain('Database upgrade: NEEDS AN OPERATOR');
  });

  it('finds its own deployment when the answer to the create call was lost', async () => {
    const { report } = await run({ scenario: 'create-answer-lost' });
    expect(report.tasks.upgrade).toContain('Find the deployment this run created');
    expect(report.outcome).toBe('UPGRADED');
  });

  it('deletes the deployment it made when every create call failed after the first made it', async () => {
    const { report, world } = await run({ scenario: 'create-unanswered' });
    expect(report.tasks.upgrade).toContain('Roll back: look for the deployment by name');
    expect(report.outcome).toBe('ROLLED_BACK');
    expect(world.rds.deployments.size).toBe(0);
    expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL });
  });

  it('checks the new writer again before restoring old blue over one stale answer', async () => {
    const { report } = await run({ scenario: 'stale-dns' });
    expect(report.tasks.upgrade.filter((t) => t === 'Verify new writer')).toHaveLength(2);
    expect(report.tasks.upgrade).not.toContain('Restore old blue as the writer');
    expect(report.outcome).toBe('UPGRADED');
  });

  it('pages the operator once a switchover has run past its timeout plus two minutes', async () => {
    const { report, world } = await run({ scenario: 'switchover-hangs' });
    expect(report.run.output).toMatchObject({
      outcome: 'NEEDS_OPERATOR',
      failure: { Error: 'SwitchoverStuck' },
    });
    expect(report.maintenance.seconds).toBeGreaterThanOrEqual(60 + 120);
    expect(world.routing.page).toBe(true);
  });

  it('absorbs transient throttling with Retry', async () => {
    const { report } = await run({
      failOnce: [
        'Create blue-green deployment',
        'Check switchover status',
        'Pause: disable consumer',
        'Verify new writer',
      ],
    });
    expect(report.outcome).toBe('UPGRADED');
    expect(report.tasks.upgrade.filter((s) => s === 'Create blue-green deployment')).toHaveLength(
      2,
    );
    expect(report.invariants.ok).toBe(true);
  });
});

describe('Step Functions behaviour the runbook meets, on virtual time', () => {
  it('times a Task out after its TimeoutSeconds, as Step Functions does (States.Timeout)', async () => {
    // Every invocation takes longer than the runbook's 2-minute Task timeout.
    const { report, world } = await run({ world: { latencies: { invokeOverhead: 121 } } });
    expect(report.run).toMatchObject({ status: 'FAILED', error: 'InvalidInput' });
    expect(report.run.cause).toContain('The input check itself failed');
    const [validate] = world.events.filter((e) => e.kind === 'task');
    const failedAt = world.events.find((e) => e.kind === 'execution' && e.status === 'FAILED')?.t;
    expect((failedAt ?? 0) - (validate?.t ?? 0)).toBe(120_000);
  });

  it('waits out the Retry backoff, with its jitter, before trying a throttled call again', async () => {
    const { report } = await run({ failOnce: ['Create blue-green deployment'] });
    const attempts = report.timeline.filter((e) => e.state === 'Create blue-green deployment');
    expect(attempts).toHaveLength(2);
    // IntervalSeconds 2 with full jitter: somewhere in [0, 2] s later.
    const gap = (attempts[1]?.t ?? 0) - (attempts[0]?.t ?? 0);
    expect(gap).toBeGreaterThan(0);
    expect(gap).toBeLessThanOrEqual(2);
    expect(report.outcome).toBe('UPGRADED');
  });
});

describe('watchdog, executed locally', () => {
  it('recovers after an abort mid-switchover: verifies the new writer, then resumes', async () => {
    const { report, world } = await run({ scenario: 'abort' });
    expect(report.run.status).toBe('ABORTED');
    expect(report.watchdog).toBe('RECOVERED');
    expect(report.tasks.watchdog).toContain('Recover: verify the writer');
    expect(world.routing.page).toBe(false);
    expect(mappingStates(world).every((s) => s === 'Enabled')).toBe(true);
    expect(world.rds.deployments.size).toBe(0);
    expect(instances(world)[SOURCE]).toBe(TARGET);
    expect(subjects(world).at(-1)).toBe('Database upgrade: watchdog recovered the upgrade');
    expect(report.invariants.ok).toBe(true);
  });

  it('rolls back after an abort before the switchover, deleting green', async () => {
    const { report, world } = await run({ scenario: 'abort-before-switchover' });
    expect(report.run.status).toBe('ABORTED');
    expect(report.outcome).toBe('ROLLED_BACK');
    expect(instances(world)).toEqual({ [SOURCE]: ORIGINAL });
    expect(mappingStates(world).every((s) => s === 'Enabled')).toBe(true);
  });

  it("leaves everything to another live run, and pages, instead of undoing that run's work", async () => {
    const { report, world } = await run({
      abortAt: 'Check switchover status',
      onTask: (state, call, w) => {
        if (state !== 'Check switchover status' || call !== 1) return;
        const arn = `${app.machines.upgrade.arn.replace(':stateMachine:', ':execution:')}:another`;
        w.sfn.executions.set(arn, {
          executionArn: arn,
          stateMachineArn: app.machines.upgrade.arn,
          name: 'another',
          status: 'RUNNING',
          input: '{}',
          startDate: Date.now(),
        });
      },
    });
    expect(report.watchdog).toBe('NEEDS_OPERATOR');
    expect(world.routing.page).toBe(true);
    expect(mappingStates(world).every((s) => s === 'Disabled')).toBe(true);
    expect(world.rds.deployments.size).toBe(1);
  });

  it('finds nothing to recover after a run that was rejected, without inspecting anything', async () => {
    const { report } = await run({ input: { switchoverTimeoutSeconds: 1 } });
    expect(report.outcome).toBe('REJECTED');
    expect(report.tasks.watchdog).toContain('Describe the stopped execution');
    expect(report.tasks.watchdog).not.toContain('Inspect the real state');
  });

  it('pages when the new writer it must verify is bad', async () => {
    const { report, world } = await run({ scenario: 'abort-bad-writer' });
    expect(report.watchdog).toBe('NEEDS_OPERATOR');
    expect(report.operatorNotified).toBe(true);
    expect(mappingStates(world).every((s) => s === 'Disabled')).toBe(true);
  });
});
