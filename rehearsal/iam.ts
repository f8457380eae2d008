/**
 * Identity-based IAM policy evaluation, as far as the rehearsal needs it: an explicit Deny
 * wins, otherwise an Allow is needed, otherwise the request is denied. Action names match
 * case-insensitively, resources case-sensitively, both with the * and ? wildcards.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
 *
 * Conditions: the string and ARN operators, Bool and Null, with IfExists. A key the request
 * does not carry does not match, except for negated operators and IfExists.
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
 * An operator this file does not know throws: the rehearsal never guesses a permission.
 */
export interface Statement {
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

/** One authorization the request needs: an action on one resource, with its context keys. */
export interface IamRequest {
  action: string;
  resource: string;
  context?: Record<string, string>;
  /**
   * The resource does not exist. What AWS answers then, when a policy reads the resource's
   * tags, is the assumption tag-condition-on-missing-resource (world/index.ts).
   */
  resourceMissing?: boolean;
}

/**
 * The request context keys for a resource's tags: aws:ResourceTag/<key> for each tag it has.
 * A tag the resource does not have, or a resource that does not exist, gives no key at all,
 * so a Null condition on the key sees "true". (What AWS does for a call on a resource that
 * no longer exists, when a policy conditions it on the resource's tags, it does not say; the
 * model refuses it, as it would a resource without the tag.)
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag
 */
export function resourceTagContext(
  tags: readonly { Key: string; Value: string }[] | undefined,
): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [`aws:ResourceTag/${t.Key}`, t.Value]));
}

export interface Decision {
  allowed: boolean;
  /** "explicit deny", "allowed" or "no statement allows it". */
  reason: string;
}

/**
 * `ignoreResourceTags`: conditions on aws:ResourceTag keys hold, as when the service answers
 * that the resource is gone before it reads its tags (the action itself is still checked).
 */
export function authorize(
  statements: Statement[],
  request: IamRequest,
  options: { ignoreResourceTags?: boolean } = {},
): Decision {
  const applies = (s: Statement) =>
    matchesAction(s, request.action) &&
    matchesResource(s, request.resource) &&
    conditionsHold(s.Condition, request.context ?? {}, options.ignoreResourceTags === true);
  if (statements.some((s) => s.Effect === 'Deny' && applies(s))) {
    return { allowed: false, reason: 'explicit deny' };
  }
  if (statements.some((s) => s.Effect === 'Allow' && applies(s))) {
    return { allowed: true, reason: 'allowed' };
  }
  return { allowed: false, reason: 'no statement allows it' };
}

/** Every action a set of statements allows somewhere, as written (wildcards kept). */
export function allowedActions(statements: Statement[]): string[] {
  return statements.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action));
}

/** Whether any Allow statement names this action, on any resource. */
export function allowsActionAnywhere(statements: Statement[], action: string): boolean {
  return statements.some((s) => s.Effect === 'Allow' && matchesAction(s, action));
}

function list(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function matchesAction(s: Statement, action: string): boolean {
  if (s.NotAction !== undefined) return !list(s.NotAction).some((p) => glob(p, action, true));
  return list(s.Action).some((p) => glob(p, action, true));
}

function matchesResource(s: Statement, resource: string): boolean {
  if (s.NotResource !== undefined)
    return !list(s.NotResource).some((p) => glob(p, resource, false));
  return list(s.Resource).some((p) => glob(p, resource, false));
}

const patterns = new Map<string, RegExp>();

/** IAM wildcards: * is any run of characters (colons and slashes included), ? is one. */
export function glob(pattern: string, value: string, ignoreCase: boolean): boolean {
  const key = `${ignoreCase ? 'i' : 's'}${pattern}`;
  let re = patterns.get(key);
  if (re === undefined) {
    const body = pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    re = new RegExp(`^${body}$`, ignoreCase ? 'is' : 's');
    patterns.set(key, re);
  }
  return re.test(value);
}

function conditionsHold(
  condition: Statement['Condition'],
  context: Record<string, string>,
  ignoreResourceTags: boolean,
): boolean {
  if (condition === undefined) return true;
  return Object.entries(condition).every(([operator, keys]) =>
    Object.entries(keys).every(
      ([key, expected]) =>
        (ignoreResourceTags && key.toLowerCase().startsWith('aws:resourcetag/')) ||
        conditionHolds(operator, key, expected, context),
    ),
  );
}

function conditionHolds(
  operator: string,
  key: string,
  expected: unknown,
  context: Record<string, string>,
): boolean {
  const ifExists = operator.endsWith('IfExists');
  const op = ifExists ? operator.slice(0, -'IfExists'.length) : operator;
  const values = (Array.isArray(expected) ? expected : [expected]).map(String);
  // Condition keys are case-insensitive.
  const found = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase());
  if (op === 'Null') return values.includes(String(found === undefined));
  const negated = op.includes('Not');
  if (found === undefined) return ifExists || negated;
  const actual = found[1];
  switch (op) {
    case 'StringEquals':
    case 'ArnEquals':
    case 'Bool':
      return values.includes(actual);
    case 'StringNotEquals':
    case 'ArnNotEquals':
      return !values.includes(actual);
    case 'StringEqualsIgnoreCase':
      return values.some((v) => v.toLowerCase() === actual.toLowerCase());
    case 'StringNotEqualsIgnoreCase':
      return !values.some((v) => v.toLowerCase() === actual.toLowerCase());
    case 'StringLike':
    case 'ArnLike':
      return values.some((v) => glob(v, actual, false));
    case 'StringNotLike':
    case 'ArnNotLike':
      return !values.some((v) => glob(v, actual, false));
    default:
      throw new Error(`the rehearsal does not evaluate the IAM condition operator ${operator}`);
  }
}

/**
 * Other actions an operation is authorized for besides its own. RDS blue/green: "The user who
 * creates a blue/green deployment must have permissions to perform the following RDS
 * operations: ..." ELB: "If tags are specified in the resource-creating action, additional
 * authorization is required on the elasticloadbalancing:AddTags action".
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-authorizing-access.html
 * https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/tagging-resources-during-creation.html
 */
export const DEPENDENT_ACTIONS: Record<string, string[]> = {
  'rds:CreateBlueGreenDeployment': ['rds:AddTagsToResource', 'rds:CreateDBInstanceReadReplica'],
  'rds:SwitchoverBlueGreenDeployment': ['rds:ModifyDBInstance', 'rds:PromoteReadReplica'],
  'rds:DeleteBlueGreenDeployment': ['rds:DeleteDBInstance'],
  'elasticloadbalancing:CreateRule': ['elasticloadbalancing:AddTags'],
};

/**
 * A denial that only the missing resource's missing tags explain: the resource is gone and the
 * policy would allow the call were the conditions on its tags to hold. How AWS answers such a
 * call is an assumption (tag-condition-on-missing-resource); any other denial is a defect of
 * the policy.
 */
export function deniedOnlyForMissingTags(statements: Statement[], request: IamRequest): boolean {
  return (
    request.resourceMissing === true &&
    !authorize(statements, request).allowed &&
    authorize(statements, request, { ignoreResourceTags: true }).allowed
  );
}
