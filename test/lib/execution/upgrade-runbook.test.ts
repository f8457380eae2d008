import type { AwsWorld } from '../../../rehearsal/aws-model';
import type { RunResult } from '../../../rehearsal/run';
import {
  START,
  maintenanceSeconds,
  newWorld,
  runUpgrade,
  runWatchdog,
  synthesizedMachines,
} from '../../helpers/upgrade';

/*
 * These tests execute the state machine definitions exactly as synthesized, with
 * aws-local-stepfunctions, against the in-memory model in test/harness, in virtual time.
 */
const machines = synthesizedMachines();
const TARGET = machines.defaults.targetEngineVersion;
const ORIGINAL = machines.defaults.currentEngineVersion;
const SOURCE = machines.defaults.sourceIdentifier;

function mappingStates(world: AwsWorld): string[] {
  return [...world.mappings.values()].map((m) => world.mappingState(m));
}

/** The invariants every run must end in (DESIGN.md), for the outcome it reports. */
function expectInvariants(world: AwsWorld, result: RunResult): void {
  const outcome = result.output?.outcome;
  expect(['UPGRADED', 'ROLLED_BACK', 'NEEDS_OPERATOR', 'DRY_RUN']).toContain(outcome);
  world.clock.advance(0);
  world.tick();
  // One writer: consumers only ever resumed against a writable writer.
  for (const resume of world.resumes) expect(resume.writerReadOnly).toBe(false);
  // Maintenance is on only around a switchover: each "on" came after green was built.
  for (const change of world.maintenanceLog.filter((c) => c.on)) {
    expect(change.at).toBeGreaterThanOrEqual(Date.parse(START) + world.latency.greenBuild * 1000);
  }
  if (outcome === 'UPGRADED' || outcome === 'ROLLED_BACK') {
    expect(world.maintenance).toBe(false);
    expect(mappingStates(world).every((s) => s === 'Enabled' || s === 'Enabling')).toBe(true);
    expect(world.deployments.size).toBe(0);
    const writer = world.writer();
    expect(writer?.readOnly).toBe(false);
    expect(writer?.engineVersion).toBe(outcome === 'UPGRADED' ? TARGET : ORIGINAL);
  }
  if (outcome === 'DRY_RUN') {
    expect(world.maintenanceLog).toEqual([]);
    expect(world.deployments.size).toBe(0);
    expect(world.resumes).toEqual([]);
  }
}

/** Nothing was changed: no deployment, no maintenance, no consumer touched. */
function expectUntouched(world: AwsWorld): void {
  expect(world.deployments.size).toBe(0);
  expect(world.maintenanceLog).toEqual([]);
  expect(mappingStates(world).every((s) => s === 'Enabled')).toBe(true);
  expect(world.writer()?.engineVersion).toBe(ORIGINAL);
}

function subjects(world: AwsWorld): string[] {
  return world.notifications.map((n) => n.subject);
}

describe('upgrade runbook, executed locally', () => {
  it('upgrades on the happy path, with maintenance only for the switchover', async () => {
    const world = newWorld(machines.defaults);
    const result = await runUpgrade(machines.upgrade, world);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({
      outcome: 'UPGRADED',
      writer: { identifier: SOURCE, engineVersion: TARGET, writable: true },
    });
    expectInvariants(world, result);
    // The page was on for the switchover (30 s modelled) and no longer: the consumers were
    // paused before it went on, and resumed after it went off.
    expect(maintenanceSeconds(world)).toBe(world.latency.switchover);
    const [on, off] = world.maintenanceLog;
    const switchover = world.switchovers[0];
    expect(on?.at).toBeLessThanOrEqual(switchover?.startedAt ?? 0);
    expect(off?.at).toBeGreaterThanOrEqual(switchover?.endedAt ?? Infinity);
    expect(Math.min(...world.resumes.map((r) => r.at))).toBeGreaterThanOrEqual(off?.at ?? Infinity);
    // Old blue is kept (renamed -old1) for a retention period, never deleted by the run.
    expect(world.instances.get(`${SOURCE}-old1`)?.engineVersion).toBe(ORIGINAL);
    expect(subjects(world)).toEqual([
      'Database upgrade: started',
      'Database upgrade: maintenance page on',
      'Database upgrade: switched over',
      'Database upgrade: maintenance page off',
      'Database upgrade: upgraded',
    ]);
    expect(world.events).toHaveLength(5);
  });

  it('keeps the page to the switchover for a 5 s and a 60 s switchover', async () => {
    for (const switchover of [5, 60]) {
      const world = newWorld(machines.defaults, { latencies: { switchover } });
      const result = await runUpgrade(machines.upgrade, world);
      expect(result.output?.outcome).toBe('UPGRADED');
      // Polled every 5 s: at most one polling interval beyond the switchover itself.
      expect(maintenanceSeconds(world)).toBeGreaterThanOrEqual(switchover);
      expect(maintenanceSeconds(world)).toBeLessThanOrEqual(switchover + 5);
    }
  });

  it('stops after preflight with the plan on a dry run, changing nothing', async () => {
    const world = newWorld(machines.defaults);
    const result = await runUpgrade(machines.upgrade, world, { dryRun: true });
    expect(result.output).toMatchObject({
      outcome: 'DRY_RUN',
      plan: { targetEngineVersion: TARGET, dryRun: true },
    });
    expectInvariants(world, result);
    expectUntouched(world);
    expect(result.tasks).not.toContain('Create blue-green deployment');
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
    const world = newWorld(machines.defaults);
    const result = await runUpgrade(machines.upgrade, world, input);
    expect(result).toMatchObject({ status: 'FAILED', error });
    expect(result.cause).toContain(cause);
    expect(result.tasks).toEqual(['Validate input']);
    expectUntouched(world);
  });

  it('reports every failed preflight check at once and changes nothing', async () => {
    const world = newWorld(machines.defaults, {
      noBackups: true,
      managedPassword: true,
      existingDeployment: true,
    });
    const before = world.deployments.size;
    const result = await runUpgrade(machines.upgrade, world);
    expect(result).toMatchObject({ status: 'FAILED', error: 'PreflightFailed' });
    for (const problem of [
      'automated backups are off',
      'managed by RDS',
      'another blue/green deployment',
    ]) {
      expect(result.cause).toContain(problem);
    }
    expect(world.deployments.size).toBe(before);
    expect(world.maintenanceLog).toEqual([]);
    expect(world.resumes).toEqual([]);
    expect(subjects(world)).toEqual(['Database upgrade: rejected by preflight']);
  });

  it('rejects a second run while one is running (single flight)', async () => {
    const world = newWorld(machines.defaults, { otherExecutionRunning: true });
    const result = await runUpgrade(machines.upgrade, world);
    expect(result).toMatchObject({ status: 'FAILED', error: 'PreflightFailed' });
    expect(result.cause).toContain('another upgrade execution is running');
    expectUntouched(world);
  });

  it('rolls back, deleting green, when green is stuck in PROVISIONING until the deadline', async () => {
    const world = newWorld(machines.defaults, { greenStuck: true });
    const deadline = new Date(Date.parse(START) + 2 * 3600_000).toISOString();
    const result = await runUpgrade(machines.upgrade, world, { deadline });
    expect(result.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'GreenNotReadyInTime' },
    });
    expectInvariants(world, result);
    expect(world.maintenanceLog).toEqual([]);
    expect([...world.instances.keys()]).toEqual([SOURCE]); // green deleted with the deployment
    expect(world.clock.now()).toBeGreaterThanOrEqual(Date.parse(deadline));
  });

  it('never starts the switchover after the deadline', async () => {
    const world = newWorld(machines.defaults);
    const deadline = new Date(Date.parse(START) + world.latency.greenBuild * 1000).toISOString();
    const result = await runUpgrade(machines.upgrade, world, { deadline });
    expect(result.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'DeadlinePassed' },
    });
    expect(world.switchovers).toEqual([]);
    expectInvariants(world, result);
  });

  it.each([
    'Create blue-green deployment',
    'Check green status',
    'Verify green',
    'Pause: disable consumer',
    'Pause: check consumer state',
    'Turn maintenance on',
    'Switch over to green',
  ])('rolls back when "%s" fails before the switchover', async (state) => {
    const world = newWorld(machines.defaults);
    const result = await runUpgrade(machines.upgrade, world, {}, { failAt: [state] });
    expect(result.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: expect.stringContaining('InjectedFault') },
    });
    expectInvariants(world, result);
    expect(world.switchovers).toEqual([]);
    expect([...world.instances.keys()]).toEqual([SOURCE]);
    expect(subjects(world).at(-1)).toBe('Database upgrade: rolled back');
  });

  it('rolls back when green fails verification or the operator rejects the switchover', async () => {
    const invalid = newWorld(machines.defaults, { greenInvalid: true });
    const first = await runUpgrade(machines.upgrade, invalid);
    expect(first.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'GreenInvalidConfiguration' },
    });
    expectInvariants(invalid, first);

    const rejected = newWorld(machines.defaults, { rejectApproval: true });
    const second = await runUpgrade(machines.upgrade, rejected, { requireApproval: true });
    expect(second.path).toContain('Wait for operator approval');
    expect(second.output).toMatchObject({ outcome: 'ROLLED_BACK', failure: { Error: 'Rejected' } });
    expect(rejected.maintenanceLog).toEqual([]);
    expectInvariants(rejected, second);
  });

  it('waits for approval when asked, then upgrades', async () => {
    const world = newWorld(machines.defaults);
    const result = await runUpgrade(machines.upgrade, world, { requireApproval: true });
    expect(result.path).toContain('Wait for operator approval');
    expect(subjects(world)).toContain('Database upgrade: approval needed');
    expect(result.output?.outcome).toBe('UPGRADED');
  });

  it.each([
    ['fails', { switchoverFails: true }],
    ['outlasts its timeout', { latencies: { switchover: 400 } }],
  ])('rolls back when the switchover %s', async (_case, scenario) => {
    const world = newWorld(machines.defaults, scenario);
    const result = await runUpgrade(machines.upgrade, world, { switchoverTimeoutSeconds: 300 });
    expect(result.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'SwitchoverFailed' },
    });
    expectInvariants(world, result);
    expect(maintenanceSeconds(world)).toBeLessThanOrEqual(300 + 5);
  });

  it('restores old blue as the writer when the new writer fails verification', async () => {
    const world = newWorld(machines.defaults, { badWriter: true });
    const result = await runUpgrade(machines.upgrade, world);
    expect(result.output).toMatchObject({
      outcome: 'ROLLED_BACK',
      failure: { Error: 'NewWriterFailedVerification' },
    });
    expectInvariants(world, result);
    expect(result.path).toContain('Restore old blue as the writer');
    // The failed writer is kept aside; old blue is writable under the original name.
    expect(world.instances.get(`${SOURCE}-failed1`)?.engineVersion).toBe(TARGET);
    expect(world.instances.has(`${SOURCE}-old1`)).toBe(false);
    // Consumers resumed only once old blue was restored and writable.
    expect(world.resumes.every((r) => r.writerVersion === ORIGINAL)).toBe(true);
  });

  it('pages the operator, leaving maintenance on and consumers paused, when a rollback step fails', async () => {
    const world = newWorld(machines.defaults);
    const result = await runUpgrade(
      machines.upgrade,
      world,
      {},
      {
        failAt: ['Switch over to green', 'Roll back: turn maintenance off'],
      },
    );
    expect(result.output).toMatchObject({
      outcome: 'NEEDS_OPERATOR',
      failure: { Error: 'Lambda.InjectedFault' },
      maintenance: { state: 'on' },
    });
    expectInvariants(world, result);
    expect(world.maintenance).toBe(true);
    expect(mappingStates(world).every((s) => s === 'Disabled')).toBe(true);
    expect(world.resumes).toEqual([]);
    expect(subjects(world)).toContain('Database upgrade: NEEDS AN OPERATOR');
  });

  it('finds its own deployment when the answer to the create call was lost', async () => {
    const world = newWorld(machines.defaults, { createAnswerLost: true });
    const result = await runUpgrade(machines.upgrade, world);
    expect(result.tasks).toContain('Find the deployment this run created');
    expect(result.output?.outcome).toBe('UPGRADED');
    expectInvariants(world, result);
  });

  it('checks the new writer again before restoring old blue over one bad answer', async () => {
    const world = newWorld(machines.defaults, { writerFlakyChecks: 1 });
    const result = await runUpgrade(machines.upgrade, world);
    expect(result.tasks.filter((t) => t === 'Verify new writer')).toHaveLength(2);
    expect(result.tasks).not.toContain('Restore old blue as the writer');
    expect(result.output?.outcome).toBe('UPGRADED');
    expect(maintenanceSeconds(world)).toBe(world.latency.switchover + 10);
  });

  it('pages the operator once a switchover has run past its timeout plus two minutes', async () => {
    const world = newWorld(machines.defaults, { switchoverHangs: true });
    const result = await runUpgrade(machines.upgrade, world, { switchoverTimeoutSeconds: 60 });
    expect(result.output).toMatchObject({
      outcome: 'NEEDS_OPERATOR',
      failure: { Error: 'SwitchoverStuck' },
    });
    expect(maintenanceSeconds(world)).toBe(60 + 120);
    expect(world.maintenance).toBe(true);
  });

  it('absorbs transient throttling with Retry', async () => {
    const world = newWorld(machines.defaults);
    const result = await runUpgrade(
      machines.upgrade,
      world,
      {},
      {
        failOnce: [
          'Create blue-green deployment',
          'Check switchover status',
          'Pause: disable consumer',
          'Verify new writer',
        ],
      },
    );
    expect(result.output?.outcome).toBe('UPGRADED');
    expect(result.tasks.filter((s) => s === 'Create blue-green deployment')).toHaveLength(2);
    expectInvariants(world, result);
  });
});

describe('watchdog, executed locally', () => {
  it('recovers after an abort mid-maintenance: verifies the new writer, then resumes', async () => {
    const world = newWorld(machines.defaults);
    const stopped = await runUpgrade(
      machines.upgrade,
      world,
      {},
      { abortAt: 'Check switchover status' },
    );
    expect(stopped.status).toBe('ABORTED');
    expect(world.maintenance).toBe(true);
    expect(mappingStates(world).every((s) => s === 'Disabled')).toBe(true);

    const recovery = await runWatchdog(machines.watchdog, world, stopped);
    expect(recovery.status).toBe('SUCCEEDED');
    expect(recovery.output?.report).toMatchObject({ outcome: 'RECOVERED' });
    expect(recovery.path).toContain('Recover: verify the writer');
    expect(world.maintenance).toBe(false);
    expect(mappingStates(world).every((s) => s === 'Enabled')).toBe(true);
    world.clock.advance(world.latency.deleteDeployment);
    world.tick();
    expect(world.deployments.size).toBe(0);
    expect(world.writer()).toMatchObject({ engineVersion: TARGET, readOnly: false });
    expect(subjects(world).at(-1)).toBe('Database upgrade: watchdog recovered the upgrade');
  });

  it('rolls back after an abort before the switchover, deleting green', async () => {
    const world = newWorld(machines.defaults);
    const stopped = await runUpgrade(
      machines.upgrade,
      world,
      {},
      { abortAt: 'Turn maintenance on' },
    );
    expect(stopped.status).toBe('ABORTED');
    await runWatchdog(machines.watchdog, world, stopped);
    world.clock.advance(world.latency.deleteDeployment);
    world.tick();
    expect(world.maintenance).toBe(false);
    expect(mappingStates(world).every((s) => s === 'Enabled')).toBe(true);
    expect([...world.instances.keys()]).toEqual([SOURCE]);
    expect(world.writer()?.engineVersion).toBe(ORIGINAL);
  });

  it("leaves everything to another live run, and pages, instead of undoing that run's work", async () => {
    const world = newWorld(machines.defaults);
    const stopped = await runUpgrade(
      machines.upgrade,
      world,
      {},
      { abortAt: 'Check switchover status' },
    );
    world.runningExecutions.add(stopped.executionArn.replace('run-1', 'run-2'));
    const recovery = await runWatchdog(machines.watchdog, world, stopped);
    expect(recovery.output?.report).toMatchObject({ outcome: 'NEEDS_OPERATOR' });
    expect(world.maintenance).toBe(true);
    expect(mappingStates(world).every((s) => s === 'Disabled')).toBe(true);
    expect(world.deployments.size).toBe(1);
  });

  it('does nothing after a run that was rejected', async () => {
    const world = newWorld(machines.defaults);
    const stopped = await runUpgrade(machines.upgrade, world, { switchoverTimeoutSeconds: 1 });
    const recovery = await runWatchdog(machines.watchdog, world, stopped);
    expect(recovery.path).toContain('Nothing to recover');
    expect(recovery.path).not.toContain('Inspect the real state');
    expectUntouched(world);
  });
});
