import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import type { PlanDefaults } from '../../lambda/validate-input/validate';
import { UPGRADE_MACHINE_NAME, WATCHDOG_MACHINE_NAME } from '../../lib/stacks/upgrade-stack';
import { AwsWorld, type Scenario } from '../harness/aws-model';
import { definitionOf } from '../harness/definition';
import { type RunRequest, type RunResult, runStateMachine } from '../harness/run';
import { VirtualClock } from '../harness/virtual-clock';
import { synthApp } from './app';

/** The synthesized definitions, once per test file. */
export function synthesizedMachines(): {
  upgrade: StateMachineDefinition;
  watchdog: StateMachineDefinition;
  defaults: PlanDefaults;
} {
  const { upgrade } = synthApp();
  const definition = definitionOf(upgrade, 'RunbookStateMachine');
  const validate = definition.States['Validate input'] as unknown as {
    Parameters: { defaults: PlanDefaults };
  };
  return {
    upgrade: definition,
    watchdog: definitionOf(upgrade, 'WatchdogStateMachine'),
    defaults: validate.Parameters.defaults,
  };
}

export const START = '2026-11-22T04:00:00.000Z';

export function newWorld(defaults: PlanDefaults, scenario: Scenario = {}): AwsWorld {
  return new AwsWorld({ clock: new VirtualClock(START), plan: defaults, scenario });
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
export function maintenanceSeconds(world: AwsWorld): number {
  let total = 0;
  let since: number | undefined;
  for (const change of world.maintenanceLog) {
    if (change.on) since = change.at;
    else if (since !== undefined) {
      total += (change.at - since) / 1000;
      since = undefined;
    }
  }
  if (since !== undefined) total += (world.clock.now() - since) / 1000;
  return total;
}
