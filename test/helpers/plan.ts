import type { UpgradePlan } from '../../lambda/shared/upgrade-plan';

/** An upgrade plan for function tests: 16.6 to 17.2 on platform-db, with these changes. */
export function testPlan(overrides: Partial<UpgradePlan> = {}): UpgradePlan {
  return {
    sourceIdentifier: 'platform-db',
    sourceArn: 'arn:aws:rds:eu-west-1:123456789012:db:platform-db',
    engine: 'postgres',
    currentEngineVersion: '16.6',
    targetEngineVersion: '17.2',
    targetParameterGroupName: 'parameters-postgres17',
    switchoverTimeoutSeconds: 300,
    deadline: '2026-11-22T06:00:00.000Z',
    dryRun: false,
    requireApproval: false,
    mappings: [],
    queues: [],
    listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/edge/1/2',
    maintenanceToggleFunction: 'maintenance-toggle',
    maxReplicationLagMb: 64,
    quietGate: {
      enabled: false,
      alarmName: '',
      requestsPerMinute: 0,
      onDeadline: 'roll-back',
      maxChecks: 0,
      until: '2026-11-22T05:55:00.000Z',
    },
    ...overrides,
  };
}
