import { isDeepStrictEqual } from 'node:util';
import { ENGINE_SPECS } from './engines';
import { requiredEnv } from './env';
import type { UpgradePlan } from './upgrade-plan';

/**
 * The resources this stack deployed the runbook for, as the function's environment names them
 * (DEPLOYED_RESOURCES, set by the upgrade stack from the same values as the state machine's
 * plan defaults). A function that acts on the database, the listener or the consumers takes
 * every identifier from here, never from its event: anyone allowed to invoke it could put
 * another instance's name in a plan (a confused deputy). A plan in the event that names
 * something else is refused, naming the field and both values, before any call.
 */
export type DeployedResources = Pick<
  UpgradePlan,
  | 'engine'
  | 'sourceIdentifier'
  | 'sourceArn'
  | 'currentEngineVersion'
  | 'targetEngineVersion'
  | 'targetParameterGroupName'
  | 'listenerArn'
  | 'maintenanceToggleFunction'
  | 'mappings'
  | 'queues'
>;

/** What the upgrade stack puts in DEPLOYED_RESOURCES: these fields of the plan defaults. */
export function deployedResourcesOf(plan: DeployedResources): DeployedResources {
  return {
    engine: plan.engine,
    sourceIdentifier: plan.sourceIdentifier,
    sourceArn: plan.sourceArn,
    currentEngineVersion: plan.currentEngineVersion,
    targetEngineVersion: plan.targetEngineVersion,
    targetParameterGroupName: plan.targetParameterGroupName,
    listenerArn: plan.listenerArn,
    maintenanceToggleFunction: plan.maintenanceToggleFunction,
    mappings: plan.mappings,
    queues: plan.queues,
  };
}

/** The fields of a plan that name a resource (or the version blue runs): never from the event. */
const PINNED = [
  'engine',
  'sourceIdentifier',
  'sourceArn',
  'currentEngineVersion',
  'targetParameterGroupName',
  'listenerArn',
  'maintenanceToggleFunction',
  'mappings',
  'queues',
] as const satisfies readonly (keyof DeployedResources)[];

export class PlanRefused extends Error {
  override readonly name = 'PlanRefused';
}

/** Read at each call (a kilobyte of JSON): nothing to go stale. */
export function deployedResources(): DeployedResources {
  return JSON.parse(requiredEnv('DEPLOYED_RESOURCES')) as DeployedResources;
}

/**
 * The event's plan with every pinned field taken from the environment. A field the event
 * gives must equal the deployed one. The target version is the run's own (the execution input
 * may choose it), so it is kept, but only within the deployed target's major version, as
 * validate-input allows.
 */
export function deployedPlan<P extends object>(
  plan: P,
): P & Omit<DeployedResources, 'targetEngineVersion'> {
  const resources = deployedResources();
  const given = plan as Partial<Record<keyof DeployedResources, unknown>>;
  for (const field of PINNED) {
    if (given[field] === undefined) continue;
    // Equal values, whatever order the keys of an object come in (the console may reorder).
    if (!isDeepStrictEqual(given[field], resources[field])) {
      throw new PlanRefused(
        `plan.${field} must be the deployed ${JSON.stringify(resources[field])}, got: ${JSON.stringify(given[field])}`,
      );
    }
  }
  const target = given.targetEngineVersion;
  const major = (version: string) => ENGINE_SPECS[resources.engine].major(version);
  if (
    typeof target === 'string' &&
    resources.targetEngineVersion !== '' &&
    major(target) !== major(resources.targetEngineVersion)
  ) {
    throw new PlanRefused(
      `plan.targetEngineVersion must be ${major(resources.targetEngineVersion)}.x, the deployed target's major version, got: ${JSON.stringify(target)}`,
    );
  }
  const pinned = Object.fromEntries(PINNED.map((field) => [field, resources[field]]));
  return { ...plan, ...pinned } as P & Omit<DeployedResources, 'targetEngineVersion'>;
}
