import { PlanRefused, deployedPlan } from '../../../lambda/shared/deployed';
import { deployFor } from '../../helpers/deployed';
import { testPlan } from '../../helpers/plan';

describe('deployedPlan', () => {
  beforeEach(() => deployFor());

  it('takes every identifier from the environment, keeping the rest of the plan', () => {
    const resources = deployFor({ mappings: [{ name: 'sends', uuid: 'uuid-1' }] });
    // A plan with only some of the fields (a function reads only what it needs).
    const plan = deployedPlan({ sourceIdentifier: 'platform-db', dryRun: true });
    expect(plan).toEqual({ ...resources, dryRun: true, targetEngineVersion: undefined });
    expect(plan.mappings).toEqual([{ name: 'sends', uuid: 'uuid-1' }]);
  });

  it('keeps the run’s own target version within the deployed major version', () => {
    expect(deployedPlan(testPlan({ targetEngineVersion: '17.4' })).targetEngineVersion).toBe(
      '17.4',
    );
    expect(() => deployedPlan(testPlan({ targetEngineVersion: '18.1' }))).toThrow(
      new PlanRefused(
        'plan.targetEngineVersion must be 17.x, the deployed target\'s major version, got: "18.1"',
      ),
    );
  });

  it('keeps the run’s MySQL target within the deployed family (8.4, not 8)', () => {
    deployFor({ engine: 'mysql', currentEngineVersion: '8.0.42', targetEngineVersion: '8.4.5' });
    expect(deployedPlan({ targetEngineVersion: '8.4.6' }).engine).toBe('mysql');
    expect(() => deployedPlan({ targetEngineVersion: '8.0.43' })).toThrow(
      'plan.targetEngineVersion must be 8.4.x, the deployed target\'s major version, got: "8.0.43"',
    );
  });

  it.each([
    ['engine', 'mysql'],
    ['sourceArn', 'arn:aws:rds:eu-west-1:123456789012:db:billing-db'],
    ['currentEngineVersion', '17.2'],
    ['targetParameterGroupName', 'someone-elses-group'],
    ['listenerArn', 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/other/1/2'],
    ['maintenanceToggleFunction', 'other-toggle'],
    ['mappings', [{ name: 'sends', uuid: 'someone-elses-mapping' }]],
    ['queues', [{ name: 'sends', url: 'https://sqs/other', arn: 'arn:aws:sqs:::other' }]],
  ])('refuses a plan whose %s is not the deployed one, showing both', (field, value) => {
    const deployed = testPlan() as unknown as Record<string, unknown>;
    expect(() => deployedPlan({ ...testPlan(), [field]: value })).toThrow(
      `plan.${field} must be the deployed ${JSON.stringify(deployed[field])}, got: ${JSON.stringify(value)}`,
    );
  });

  it('accepts the deployed values with their keys in another order', () => {
    const queues = [
      { name: 'sends' as const, url: 'https://sqs/sends', arn: 'arn:aws:sqs:::sends' },
    ];
    deployFor({ queues });
    const reordered = queues.map(({ arn, url, name }) => ({ arn, url, name }));
    expect(deployedPlan({ ...testPlan(), queues: reordered }).queues).toEqual(queues);
  });

  it('says which variable is missing when the function was deployed without it', () => {
    delete process.env.DEPLOYED_RESOURCES;
    expect(() => deployedPlan(testPlan())).toThrow(
      'environment variable DEPLOYED_RESOURCES is not set',
    );
  });
});
