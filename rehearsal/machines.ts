import { App } from 'aws-cdk-lib';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import type { PlanDefaults } from '../lambda/validate-input/validate';
import { buildApp } from '../lib/app';
import { CONFIG_CONTEXT_KEY } from '../lib/config';
import cdkJson from '../cdk.json';
import { definitionOf } from './definition';

export interface Machines {
  upgrade: StateMachineDefinition;
  watchdog: StateMachineDefinition;
  /** The deploy-time defaults written into the definition. */
  defaults: PlanDefaults;
}

/**
 * Synthesizes the app as `cdk synth` does (the same cdk.json context and config, cdk-nag
 * included) and takes the upgrade and watchdog definitions from it. Function code is not
 * bundled: the definitions do not depend on it.
 */
export function synthesizeMachines(
  edit: (config: Record<string, unknown>) => void = () => undefined,
): Machines {
  const config = structuredClone(cdkJson.context[CONFIG_CONTEXT_KEY]) as Record<string, unknown>;
  edit(config);
  const app = new App({
    context: { ...cdkJson.context, [CONFIG_CONTEXT_KEY]: config, 'aws:cdk:bundling-stacks': [] },
  });
  const { upgrade } = buildApp(app);
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
