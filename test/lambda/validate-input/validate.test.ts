import { type PlanDefaults, validateInput } from '../../../lambda/validate-input/validate';

const defaults: PlanDefaults = {
  sourceIdentifier: 'platform-db',
  sourceArn: 'arn:aws:rds:eu-west-1:123456789012:db:platform-db',
  engine: 'postgres',
  currentEngineVersion: '16.6',
  targetEngineVersion: '17.2',
  targetParameterGroupName: 'platform-pg17',
  switchoverTimeoutSeconds: 300,
  requireApproval: false,
  deadlineMinutes: 360,
  mappings: [{ name: 'sends', uuid: 'u-1' }],
  queues: [{ name: 'sends', url: 'https://sqs/sends', arn: 'arn:aws:sqs:eu-west-1:1:sends' }],
  listenerArn: 'arn:listener',
  maintenanceToggleFunction: 'toggle',
  maxReplicationLagMb: 64,
  quietGate: {
    enabled: false,
    alarmName: 'QuietUpgrade-Traffic',
    requestsPerMinute: 300,
    onDeadline: 'roll-back',
    maxChecks: 60,
  },
};
const start = '2026-11-22T04:00:00.000Z';

describe('validateInput', () => {
  it('runs {} from the console with the deploy-time defaults', () => {
    const result = validateInput({}, defaults, start);
    expect(result).toEqual({
      valid: true,
      plan: expect.objectContaining({
        targetEngineVersion: '17.2',
        switchoverTimeoutSeconds: 300,
        dryRun: false,
        requireApproval: false,
        deadline: '2026-11-22T10:00:00.000Z',
      }),
    });
    expect(result.valid && 'deadlineMinutes' in result.plan).toBe(false);
  });

  it('never lets the input skip an approval the deploy requires, but lets it ask for one', () => {
    const approving = { ...defaults, requireApproval: true };
    expect(validateInput({ requireApproval: false }, approving, start)).toEqual({
      valid: false,
      error: 'InvalidInput.requireApproval',
      cause: expect.stringContaining(
        'requireApproval cannot be false when the deployed quietUpgrade.upgrade.requireApproval is true',
      ),
    });
    expect(validateInput({}, approving, start)).toMatchObject({
      valid: true,
      plan: { requireApproval: true },
    });
    expect(validateInput({ requireApproval: true }, defaults, start)).toMatchObject({
      valid: true,
      plan: { requireApproval: true },
    });
  });

  it('applies every override', () => {
    const result = validateInput(
      {
        targetEngineVersion: '17.4',
        dryRun: true,
        switchoverTimeoutSeconds: 60,
        deadline: '2026-11-22T05:30:00+01:00',
        requireApproval: true,
      },
      defaults,
      start,
    );
    expect(result).toMatchObject({
      valid: true,
      plan: {
        targetEngineVersion: '17.4',
        dryRun: true,
        switchoverTimeoutSeconds: 60,
        deadline: '2026-11-22T04:30:00.000Z',
        requireApproval: true,
      },
    });
  });

  it.each([
    [{ switchoverTimeoutSeconds: 5 }, 'switchoverTimeoutSeconds', 'must be 30-3600, got: 5'],
    [
      { switchoverTimeoutSeconds: '300' },
      'switchoverTimeoutSeconds',
      'must be a number, got: "300"',
    ],
    [{ dryRun: 'yes' }, 'dryRun', 'dryRun must be true or false, got: "yes"'],
    [{ deadline: 'sunday' }, 'deadline', 'must be an ISO 8601 time'],
    [{ deadline: '2026-11-22T03:00:00Z' }, 'deadline', 'must be after the start'],
    [{ deadline: '2026-11-24T03:00:00Z' }, 'deadline', 'within 24 hours'],
    [{ targetEngineVersion: 17 }, 'targetEngineVersion', 'must be a string, got: 17'],
    [{ dryrun: true }, 'dryrun', 'unknown field(s): dryrun'],
  ])('rejects %p naming %s', (input, field, message) => {
    const result = validateInput(input, defaults, start);
    expect(result).toEqual({
      valid: false,
      error: `InvalidInput.${field}`,
      cause: expect.stringContaining(message),
    });
  });

  it('rejects a target of another major version than the deployed parameter group', () => {
    expect(validateInput({ targetEngineVersion: '18.1' }, defaults, start)).toEqual({
      valid: false,
      error: 'InvalidInput.targetEngineVersion',
      cause: expect.stringContaining('must be a 17.x version'),
    });
  });

  it('ignores a past deadline when the watchdog rebuilds a stopped run', () => {
    const input = { deadline: '2026-11-01T00:00:00Z', dryRun: false };
    expect(validateInput(input, defaults, start)).toMatchObject({ valid: false });
    expect(validateInput(input, defaults, start, { recovery: true })).toMatchObject({
      valid: true,
    });
  });

  it('rejects a run when no target parameter group was deployed, even with a target given', () => {
    for (const input of [{}, { targetEngineVersion: '17.2' }]) {
      const result = validateInput(input, { ...defaults, targetEngineVersion: '' }, start);
      expect(result).toMatchObject({
        valid: false,
        error: 'InvalidInput.targetEngineVersion',
        cause: expect.stringContaining('none is deployed'),
      });
    }
  });

  it.each([[[]], ['dryRun'], [42]])(
    'rejects input %p that is not an object, showing it',
    (input) => {
      expect(validateInput(input, defaults, start)).toEqual({
        valid: false,
        error: 'InvalidInput.input',
        cause: `the input must be a JSON object such as {}, got: ${JSON.stringify(input)}`,
      });
    },
  );
  it('keeps the quiet gate off unless deployed on or asked for, and gives it up 5 minutes before the deadline', () => {
    const off = validateInput({}, defaults, start);
    expect(off.valid && off.plan.quietGate).toEqual({
      ...defaults.quietGate,
      until: '2026-11-22T09:55:00.000Z',
    });
    const on = validateInput(
      { quietGate: { enabled: true, onDeadline: 'switch-anyway', maxWaitMinutes: 30 } },
      defaults,
      start,
    );
    expect(on.valid && on.plan.quietGate).toEqual({
      enabled: true,
      alarmName: 'QuietUpgrade-Traffic',
      requestsPerMinute: 300,
      onDeadline: 'switch-anyway',
      maxChecks: 30,
      until: '2026-11-22T09:55:00.000Z',
    });
    const deployedOn = { ...defaults, quietGate: { ...defaults.quietGate, enabled: true } };
    const offByInput = validateInput({ quietGate: { enabled: false } }, deployedOn, start);
    expect(offByInput.valid && offByInput.plan.quietGate.enabled).toBe(false);
  });

  it.each([
    [
      { quietGate: { onDeadline: 'wait' } },
      'quietGate.onDeadline must be "roll-back" or "switch-anyway", got: "wait"',
    ],
    [{ quietGate: { maxWaitMinutes: 61 } }, 'quietGate.maxWaitMinutes must be 1-60, got: 61'],
    [{ quietGate: { enable: true } }, 'quietGate has an unknown field: enable'],
    [
      { quietGate: true },
      'quietGate must be an object with enabled, onDeadline or maxWaitMinutes, got: true',
    ],
  ])('refuses the quiet gate input %j, naming the field', (input, cause) => {
    expect(validateInput(input, defaults, start)).toEqual({
      valid: false,
      error: 'InvalidInput.quietGate',
      cause,
    });
  });

  it('lets a run wait less than the deployed gate, not more', () => {
    const short = { ...defaults, quietGate: { ...defaults.quietGate, maxChecks: 20 } };
    const ok = validateInput({ quietGate: { enabled: true, maxWaitMinutes: 10 } }, short, start);
    expect(ok.valid && ok.plan.quietGate.maxChecks).toBe(10);
    expect(
      validateInput({ quietGate: { enabled: true, maxWaitMinutes: 30 } }, short, start),
    ).toEqual({
      valid: false,
      error: 'InvalidInput.quietGate',
      cause:
        'quietGate.maxWaitMinutes must be at most the deployed quietUpgrade.upgrade.quietGate.maxWaitMinutes (20), got: 30',
    });
  });

  it('never waits for quiet in the watchdog’s rebuilt plan, even when the gate is gone since', () => {
    const gone = {
      ...defaults,
      quietGate: { ...defaults.quietGate, alarmName: '', enabled: false },
    };
    const rebuilt = validateInput({ quietGate: { enabled: true } }, gone, start, {
      recovery: true,
    });
    expect(rebuilt.valid && rebuilt.plan.quietGate.enabled).toBe(false);
  });

  it('checks the target version in the deployed engine’s form and family', () => {
    const mysql = {
      ...defaults,
      engine: 'mysql' as const,
      currentEngineVersion: '8.0.42',
      targetEngineVersion: '8.4.5',
    };
    const ok = validateInput({ targetEngineVersion: '8.4.6' }, mysql, start);
    expect(ok.valid && ok.plan.targetEngineVersion).toBe('8.4.6');
    expect(validateInput({ targetEngineVersion: '8.4' }, mysql, start)).toMatchObject({
      valid: false,
      cause: 'targetEngineVersion must be a version such as "8.0.42" (engine mysql), got: "8.4"',
    });
    // 8.0 is another family than the deployed 8.4 target, though both start with 8.
    expect(validateInput({ targetEngineVersion: '8.0.43' }, mysql, start)).toMatchObject({
      valid: false,
      cause: expect.stringContaining('targetEngineVersion must be a 8.4.x version') as unknown,
    });
  });

  it('refuses to turn on a quiet gate that was not deployed', () => {
    const none = { ...defaults, quietGate: { ...defaults.quietGate, alarmName: '' } };
    expect(validateInput({ quietGate: { enabled: true } }, none, start)).toEqual({
      valid: false,
      error: 'InvalidInput.quietGate',
      cause:
        'quietGate.enabled needs the traffic alarm, and none is deployed: set ' +
        'quietUpgrade.upgrade.quietGate in cdk.json and deploy, got: true',
    });
  });
});
