import {
  type RehearsalOptions,
  type RehearsalReport,
  defaultApp,
  rehearse,
} from '../../rehearsal/rehearse';
import { LIGHT_RATES } from '../../rehearsal/sweep';
import type { World } from '../../rehearsal/world';

/** The synthesized app, once per test file. */
export const app = defaultApp();
export const TARGET = app.defaults.targetEngineVersion;
export const ORIGINAL = app.defaults.currentEngineVersion;
export const SOURCE = app.defaults.sourceIdentifier;

/**
 * One rehearsal with light traffic (the runbook's paths, not the volume), and the world as
 * it was at the end: instances, rules, mappings, notifications, the timeline.
 */
export async function run(
  options: RehearsalOptions = {},
): Promise<{ report: RehearsalReport; world: World }> {
  let world: World | undefined;
  const report = await rehearse({
    app,
    rates: LIGHT_RATES,
    ...options,
    inspect: (w) => {
      world = w;
      options.inspect?.(w);
    },
  });
  if (world === undefined) throw new Error('the rehearsal ended without a world');
  return { report, world };
}

/** Subjects of the SNS messages, in order. */
export function subjects(world: World): string[] {
  return world.sns.published.map((p) => p.subject);
}

/** Mapping states at the end. */
export function mappingStates(world: World): string[] {
  return [...world.lambda.mappings.values()].map((m) => m.state);
}

/** Virtual times (ms) of the world events of one kind. */
export function times(world: World, kind: World['events'][number]['kind']): number[] {
  return world.events.filter((e) => e.kind === kind).map((e) => e.t);
}
