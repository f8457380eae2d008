import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { type Machines, synthesizeMachines } from '../../rehearsal/machines';
import type { PlanDefaults } from '../../lambda/validate-input/validate';
import { UPGRADE_MACHINE_NAME, WATCHDOG_MACHINE_NAME } from '../../lib/stacks/upgrade-stack';
import { AwsWorld, type Scenario } from '../../rehearsal/aws-model';
import { type RunRequest, type RunResult, runStateMachine } from '../../rehearsal/run';
import { VirtualClock } from '../../rehearsal/virtual-clock';

/** The synthesized definitions, once per test file. */
export function synthesizedMachines(): Machines {
  return synthesizeMachines();
}

export const START = '2026-11-22T04:00:00.000Z';

/**
 * A world whose calls take no time, so the tests can state exact durations; the rehearsal
 * models call latencies.
 */
export function newWorld(defaults: PlanDefaults, scenario: Scenario = {}): AwsWorld {
  return new AwsWorld({
    clock: new VirtualClock(START),
    plan: defaults,
    scenario: { ...scenario, latencies: { lambdaInvoke: 0, apiCall: 0, ...scenario.latencies } },
  });
}

export async function runUpgrade(
  definition: StateMachineDefinition,
  world: AwsWorld,
  input: unknown = {},
  options: Partial<RunRequest> = {},
): Promise<RunResult> {
  return runStateMachine({
    definition,
    world,
    input,
    stateMachineName: UPGRADE_MACHINE_NAME,
    ...options,
  });
}

export async function runWatchdog(
  definition: StateMachineDefinition,
  world: AwsWorld,
  stopped: RunResult,
): Promise<RunResult> {
  return runStateMachine({
    definition,
    world,
    input: { detail: { executionArn: stopped.executionArn, status: stopped.status } },
    stateMachineName: WATCHDOG_MACHINE_NAME,
    executionName: 'watchdog-1',
  });
}

/** Seconds the maintenance page was on, summed over the run. */
export { maintenanceSeconds } from '../../rehearsal/rehearse';
