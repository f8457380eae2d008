import { type DeployedResources, deployedResourcesOf } from '../../lambda/shared/deployed';
import type { UpgradePlan } from '../../lambda/shared/upgrade-plan';
import { testPlan } from './plan';

/**
 * Deploys the functions, as far as their environment goes, for the resources of this plan
 * (testPlan()'s where it says nothing): lambda/shared/deployed.ts reads DEPLOYED_RESOURCES at
 * each call.
 */
export function deployFor(plan: Partial<UpgradePlan> = {}): DeployedResources {
  const resources = deployedResourcesOf(testPlan(plan));
  process.env.DEPLOYED_RESOURCES = JSON.stringify(resources);
  return resources;
}
