import * as v from 'valibot';
import { ENGINE_SPECS } from '../shared/engines';
import { ISO_DATETIME, valueAt } from '../shared/formats';
import {
  QUIET_GATE_MARGIN_MINUTES,
  QUIET_GATE_MAX_WAIT_MINUTES,
  type QuietGate,
  type UpgradePlan,
} from '../shared/upgrade-plan';

/** The longest a run may last: the state machine's own timeout leaves room for the drain. */
export const MAX_DEADLINE_HOURS = 24;

const ISO_TIME = 'must be an ISO 8601 time such as "2026-11-22T06:00:00Z"';
const Input = v.strictObject({
  // Its form depends on the engine: checked below, against the deployed engine's.
  targetEngineVersion: v.optional(v.string('must be a string')),
  dryRun: v.optional(v.boolean('must be true or false')),
  // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-timeout
  switchoverTimeoutSeconds: v.optional(
    v.pipe(
      v.number('must be a number'),
      v.integer('must be a whole number'),
      v.minValue(30, 'must be 30-3600'),
      v.maxValue(3600, 'must be 30-3600'),
    ),
  ),
  deadline: v.optional(v.pipe(v.string(ISO_TIME), v.regex(ISO_DATETIME, ISO_TIME))),
  requireApproval: v.optional(v.boolean('must be true or false')),
  // The gate's threshold is the deployed alarm's; a run may turn the gate on or off, choose
  // what happens at its limit, and wait less or more (up to the deployed bound's maximum).
  quietGate: v.optional(
    v.strictObject(
      {
        enabled: v.optional(v.boolean('must be true or false')),
        onDeadline: v.optional(
          v.picklist(['roll-back', 'switch-anyway'], 'must be "roll-back" or "switch-anyway"'),
        ),
        maxWaitMinutes: v.optional(
          v.pipe(
            v.number('must be a number'),
            v.integer('must be a whole number'),
            v.minValue(1, `must be 1-${QUIET_GATE_MAX_WAIT_MINUTES}`),
            v.maxValue(QUIET_GATE_MAX_WAIT_MINUTES, `must be 1-${QUIET_GATE_MAX_WAIT_MINUTES}`),
          ),
        ),
      },
      'must be an object with enabled, onDeadline or maxWaitMinutes',
    ),
  ),
});

export type Validation =
  { valid: true; plan: UpgradePlan } | { valid: false; error: string; cause: string };

/** Deploy-time defaults plus the run's own settings. `deadlineMinutes` sets the default deadline. */
export type PlanDefaults = Omit<
  UpgradePlan,
  'deadline' | 'dryRun' | 'requireApproval' | 'quietGate'
> & {
  deadlineMinutes: number;
  requireApproval: boolean;
  quietGate: Omit<QuietGate, 'until'>;
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
  const raw = input ?? {};
  // valibot takes an array for an object; the input must not be one.
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return reject(
      'input',
      `the input must be a JSON object such as {}, got: ${JSON.stringify(input)}`,
    );
  }
  const { deadline: _ignored, ...withoutDeadline } = raw as Record<string, unknown>;
  const parsed = v.safeParse(Input, options.recovery ? withoutDeadline : raw);
  if (!parsed.success) {
    const [issue] = parsed.issues;
    const field = String(issue.path?.[0]?.key ?? 'input');
    // A nested field is named by its whole path, e.g. quietGate.onDeadline.
    const path = (issue.path ?? []).map((p) => String(p.key));
    // An unknown key is reported by its name (valibot names only the first; list them all).
    if (issue.expected === 'never' && path.length > 1) {
      return reject(field, `${path.slice(0, -1).join('.')} has an unknown field: ${path.at(-1)}`);
    }
    if (issue.expected === 'never') {
      const unknown = Object.keys(raw).filter((key) => !Object.hasOwn(Input.entries, key));
      return reject(field, `unknown field(s): ${unknown.join(', ')}`);
    }
    const got = valueAt(raw, path);
    return reject(
      field,
      `${path.join('.') || field} ${issue.message}, got: ${JSON.stringify(got)}`,
    );
  }
  const run = parsed.output;
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
  const spec = ENGINE_SPECS[defaults.engine];
  if (!spec.versionPattern.test(target)) {
    return reject(
      'targetEngineVersion',
      `targetEngineVersion must be ${spec.versionExample} (engine ${defaults.engine}), got: ${JSON.stringify(target)}`,
    );
  }
  // Green uses the parameter group deployed for the target's family.
  const deployedMajor = spec.major(defaults.targetEngineVersion);
  if (spec.major(target) !== deployedMajor) {
    return reject(
      'targetEngineVersion',
      `targetEngineVersion must be a ${deployedMajor}.x version, the family whose parameter group ` +
        `is deployed (change the target in cdk.json and deploy for another), got: "${target}"`,
    );
  }
  // The deployed setting is a floor: whoever may start a run may ask for an approval the
  // deploy did not require, but not skip one it did.
  if (defaults.requireApproval && run.requireApproval === false) {
    return reject(
      'requireApproval',
      'requireApproval cannot be false when the deployed quietUpgrade.upgrade.requireApproval ' +
        'is true (change it in cdk.json and deploy to run without approval), got: false',
    );
  }
  const gate = defaults.quietGate;
  // The watchdog's rebuilt plan never waits for quiet: it is past that point.
  const enabled = !options.recovery && (run.quietGate?.enabled ?? gate.enabled);
  if (enabled && gate.alarmName === '') {
    return reject(
      'quietGate',
      'quietGate.enabled needs the traffic alarm, and none is deployed: set ' +
        'quietUpgrade.upgrade.quietGate in cdk.json and deploy, got: true',
    );
  }
  // The deployed wait is the longest: a run may wait less.
  const wait = run.quietGate?.maxWaitMinutes;
  if (enabled && wait !== undefined && wait > gate.maxChecks) {
    return reject(
      'quietGate',
      `quietGate.maxWaitMinutes must be at most the deployed quietUpgrade.upgrade.quietGate.maxWaitMinutes (${gate.maxChecks}), got: ${wait}`,
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
      deadline: new Date(deadlineAt).toISOString(),
      dryRun: run.dryRun ?? false,
      requireApproval: run.requireApproval ?? defaults.requireApproval,
      quietGate: {
        ...gate,
        enabled,
        onDeadline: run.quietGate?.onDeadline ?? gate.onDeadline,
        maxChecks: run.quietGate?.maxWaitMinutes ?? gate.maxChecks,
        until: new Date(deadlineAt - QUIET_GATE_MARGIN_MINUTES * 60_000).toISOString(),
      },
    },
  };
}

function reject(field: string, cause: string): Validation {
  return { valid: false, error: `InvalidInput.${field}`, cause };
}
