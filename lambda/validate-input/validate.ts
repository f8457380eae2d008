import { z } from 'zod';
import { switchoverMaxChecks, type UpgradePlan } from '../shared/upgrade-plan';

/** The longest a run may last: the state machine's own timeout leaves room for the drain. */
export const MAX_DEADLINE_HOURS = 24;

const Input = z.strictObject({
  targetEngineVersion: z
    .string({ error: 'must be a string' })
    .regex(/^\d{1,3}\.\d{1,3}$/, { error: 'must be a major.minor version such as "17.2"' })
    .optional(),
  dryRun: z.boolean({ error: 'must be true or false' }).optional(),
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-timeout
  switchoverTimeoutSeconds: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(30, { error: 'must be 30-3600' })
    .max(3600, { error: 'must be 30-3600' })
    .optional(),
  deadline: z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 time such as "2026-11-22T06:00:00Z"' })
    .optional(),
  requireApproval: z.boolean({ error: 'must be true or false' }).optional(),
});

export type Validation =
  { valid: true; plan: UpgradePlan } | { valid: false; error: string; cause: string };

/** Deploy-time defaults plus the run's own settings. `deadlineMinutes` sets the default deadline. */
export type PlanDefaults = Omit<
  UpgradePlan,
  'deadline' | 'dryRun' | 'requireApproval' | 'switchoverMaxChecks'
> & {
  deadlineMinutes: number;
  requireApproval: boolean;
};

/**
 * Checks the execution input and merges it over the defaults. Unknown fields are refused: a
 * typo such as "dryrun" must not turn a dry run into a real upgrade.
 */
export function validateInput(
  input: unknown,
  defaults: PlanDefaults,
  startTime: string,
  options: { recovery?: boolean } = {},
): Validation {
  // The watchdog rebuilds the plan of a stopped run; its deadline no longer matters.
  const { deadline: _ignored, ...withoutDeadline } = (input ?? {}) as Record<string, unknown>;
  const parsed = Input.safeParse(options.recovery ? withoutDeadline : (input ?? {}));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue?.code === 'unrecognized_keys') {
      return reject(issue.keys[0] ?? 'input', `unknown field(s): ${issue.keys.join(', ')}`);
    }
    const field = String(issue?.path[0] ?? 'input');
    const isObject = typeof input === 'object' && input !== null && !Array.isArray(input);
    if (!isObject) {
      return reject(
        'input',
        `the input must be a JSON object such as {}, got: ${JSON.stringify(input)}`,
      );
    }
    const got = (input as Record<string, unknown>)[field];
    return reject(field, `${field} ${issue?.message ?? 'is invalid'}, got: ${JSON.stringify(got)}`);
  }
  const run = parsed.data;
  const start = Date.parse(startTime);
  const deadline =
    run.deadline ?? new Date(start + defaults.deadlineMinutes * 60_000).toISOString();
  const deadlineAt = Date.parse(deadline);
  if (deadlineAt <= start) {
    return reject(
      'deadline',
      `deadline must be after the start (${startTime}), got: "${deadline}"`,
    );
  }
  if (deadlineAt > start + MAX_DEADLINE_HOURS * 3_600_000) {
    return reject(
      'deadline',
      `deadline must be within ${MAX_DEADLINE_HOURS} hours of the start (${startTime}), got: "${deadline}"`,
    );
  }
  const target = run.targetEngineVersion ?? defaults.targetEngineVersion;
  if (target === '' || defaults.targetEngineVersion === '') {
    return reject(
      'targetEngineVersion',
      'targetEngineVersion needs a target parameter group, and none is deployed: set ' +
        `quietUpgrade.database.targetEngineVersion in cdk.json and deploy, got: ${JSON.stringify(target)}`,
    );
  }
  // Green uses the parameter group deployed for the target's family.
  const deployedMajor = defaults.targetEngineVersion.split('.')[0];
  if (target.split('.')[0] !== deployedMajor) {
    return reject(
      'targetEngineVersion',
      `targetEngineVersion must be a ${deployedMajor}.x version, the family whose parameter group ` +
        `is deployed (change the target in cdk.json and deploy for another), got: "${target}"`,
    );
  }
  const { deadlineMinutes: _unused, ...base } = defaults;
  const timeout = run.switchoverTimeoutSeconds ?? defaults.switchoverTimeoutSeconds;
  return {
    valid: true,
    plan: {
      ...base,
      targetEngineVersion: target,
      switchoverTimeoutSeconds: timeout,
      switchoverMaxChecks: switchoverMaxChecks(timeout),
      deadline: new Date(deadlineAt).toISOString(),
      dryRun: run.dryRun ?? false,
      requireApproval: run.requireApproval ?? defaults.requireApproval,
    },
  };
}

function reject(field: string, cause: string): Validation {
  return { valid: false, error: `InvalidInput.${field}`, cause };
}
