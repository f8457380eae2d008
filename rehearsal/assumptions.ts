/**
 * Where AWS is silent, the model does not guess: each plausible behaviour is a value of a
 * named assumption, chosen with `--assume NAME=VALUE`, and the runbook must end safe under
 * every value. The default is the value that hides the fewest defects.
 */
export interface Assumption {
  name: string;
  values: readonly string[];
  default: string;
  why: string;
}

export const ASSUMPTIONS = [
  {
    name: 'disabling-mapping-polls',
    values: ['yes', 'no'],
    default: 'yes',
    why:
      'Lambda documents that a disabled mapping "pauses polling and invocation", not whether ' +
      'a mapping still starts batches while it reports Disabling. ' +
      'https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#lambda-UpdateEventSourceMapping-request-Enabled',
  },
  {
    name: 'running-batches-on-disable',
    values: ['finish', 'abandon'],
    default: 'finish',
    why:
      'Lambda does not say what happens to invocations already running when a mapping is ' +
      'disabled: they may finish (and delete their messages), or their messages may return ' +
      'after the visibility timeout. ' +
      'https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#lambda-UpdateEventSourceMapping-request-Enabled',
  },
  {
    name: 'mapping-update-while-changing',
    values: ['refused', 'accepted'],
    default: 'refused',
    why:
      'Lambda documents ResourceInUseException for an update while a mapping is Creating, not ' +
      'whether an update while it is Enabling or Disabling is refused or taken. ' +
      'https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#API_UpdateEventSourceMapping_Errors',
  },
  {
    name: 'list-calls-authorized-on',
    values: ['star', 'type-wildcard'],
    default: 'star',
    why:
      'The Service Authorization Reference lists an optional resource type for Describe calls ' +
      '(rds:DescribeBlueGreenDeployments: deployment) but not which ARN a call without an ' +
      'identifier is checked against: "*", or the type\'s wildcard ARN. ' +
      'https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-actions-as-permissions',
  },
  {
    name: 'sdk-integration-error-names',
    values: ['with-suffix', 'java-class'],
    default: 'with-suffix',
    why:
      'Step Functions names an SDK integration error "ServiceName.ErrorName", always with the ' +
      'Exception suffix; whether an RDS "...Fault" becomes "...FaultException" or, as the ' +
      'AWS SDK for Java class, "...Exception" (and an error the SDK does not model, the ' +
      'generic "RdsException"), AWS does not say. ' +
      'https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html',
  },
  {
    name: 'switchover-timeout-status',
    values: ['AVAILABLE', 'SWITCHOVER_FAILED'],
    default: 'AVAILABLE',
    why:
      'RDS documents that past its timeout a switchover is rolled back and "no changes are ' +
      'made to either environment", not which status the deployment shows then: ' +
      'SWITCHOVER_FAILED, or AVAILABLE again. ' +
      'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-timeout',
  },
  {
    name: 'green-deletion-protection',
    values: ['inherited', 'off'],
    default: 'inherited',
    why:
      'RDS documents that green instances deleted with the deployment "must have deletion ' +
      'protection turned off", not whether green inherits blue\'s deletion protection when it ' +
      'is created. https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-deleting.html',
  },
  {
    name: 'rename-during-deployment',
    values: ['refused', 'allowed'],
    default: 'refused',
    why:
      'RDS documents no rollback after a switchover and does not say whether a member of a ' +
      'blue/green deployment can be renamed while the deployment exists; it documents only ' +
      'that the deployment can then be deleted without its target. ' +
      'https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteBlueGreenDeployment.html ' +
      'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html',
  },
  {
    name: 'stale-sessions',
    values: ['pools', 'none'],
    default: 'pools',
    why:
      'RDS drops connections at the switchover and advises to clean up connections, but ' +
      'does not say what clients do next: pools that reconnect at once to a cached address ' +
      'reach old blue (-old1) and keep those sessions (pools), or clients reconnect through ' +
      'DNS when they next need a session (none). ' +
      'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-best-practices',
  },
  {
    name: 'idle-environments',
    values: ['reclaimed', 'kept'],
    default: 'reclaimed',
    why:
      'Lambda "maintains the execution environment for some time in anticipation of another ' +
      'function invocation", without saying how long: an environment idle for 5 minutes may ' +
      'be gone, so the next invocation starts cold (reclaimed), or it may be kept for the ' +
      'whole run (kept). ' +
      'https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-shutdown',
  },
  {
    name: 'tag-condition-on-missing-resource',
    values: ['access-denied', 'not-found'],
    default: 'access-denied',
    why:
      'IAM documents aws:ResourceTag as "the tags attached to the resource", and the service ' +
      'authorization reference lists it for DeleteBlueGreenDeployment, ' +
      'SwitchoverBlueGreenDeployment and DeleteRule, but neither says what a call on a ' +
      'resource that is already gone gets when the policy reads its tags: AccessDenied (no tag ' +
      "to match) or the service's NotFound error. " +
      'https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourcetag ' +
      'https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment',
  },
  {
    name: 'alarm-datapoint-lag',
    values: ['one-minute', 'three-minutes'],
    default: 'one-minute',
    why:
      'The load balancer sends its metrics every 60 seconds and an alarm evaluates its latest ' +
      'datapoints, but CloudWatch does not say how long after a minute ends its datapoint ' +
      'reaches the alarm: the quiet gate reads traffic 60 or 180 seconds late. ' +
      'https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html ' +
      'https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation',
  },
  {
    name: 'aurora-old-blue-unlock',
    values: ['parameter-and-reboot', 'writer-reboot'],
    default: 'parameter-and-reboot',
    why:
      'Aurora only: after a switchover old blue "only allows read operations until the writer ' +
      'instance is rebooted" (the Aurora guide\'s switchover actions), or until the read-only ' +
      'parameter is set "to 0" and the instance rebooted (the RDS guide\'s wording): any reboot of ' +
      "old blue's writer may make it writable (writer-reboot), or only one that runs " +
      'read_only/default_transaction_read_only off (parameter-and-reboot). ' +
      'https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions ' +
      'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-after',
  },
  {
    name: 'cluster-rename-effective',
    values: ['like-instances', 'at-once'],
    default: 'like-instances',
    why:
      'Aurora only: "When you change the DB cluster identifier, the DB cluster endpoints ' +
      'change", without an outage, but AWS does not say when the new endpoint answers: after ' +
      'about 10 minutes, the old name answering until then and the cluster renaming, as a DB ' +
      'instance rename (like-instances), or at once (at-once). ' +
      'https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Modifying.html#Aurora.Modifying.Settings ' +
      'https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html',
  },
] as const satisfies readonly Assumption[];

export type AssumptionName = (typeof ASSUMPTIONS)[number]['name'];
export type Assumptions = Record<AssumptionName, string>;

export function defaultAssumptions(): Assumptions {
  return Object.fromEntries(ASSUMPTIONS.map((a) => [a.name, a.default])) as Assumptions;
}

/** One line per assumption: `NAME: VALUE|VALUE (default VALUE) why`. */
export function listAssumptions(): string[] {
  return ASSUMPTIONS.map((a) => `${a.name}: ${a.values.join('|')} (default ${a.default}) ${a.why}`);
}

/** Parses `NAME=VALUE`; the error names what was wrong and what is allowed. */
export function parseAssumption(text: string): [AssumptionName, string] {
  const match = /^([a-z0-9-]+)=(.+)$/.exec(text);
  const assumption = ASSUMPTIONS.find((a) => a.name === match?.[1]);
  if (match === null || assumption === undefined) {
    throw new Error(
      `--assume takes NAME=VALUE with NAME one of ${ASSUMPTIONS.map((a) => a.name).join(', ')}, got: ${JSON.stringify(text)}`,
    );
  }
  const value = match[2] ?? '';
  if (!(assumption.values as readonly string[]).includes(value)) {
    throw new Error(
      `--assume ${assumption.name} takes ${assumption.values.join(' or ')}, got: ${JSON.stringify(value)}`,
    );
  }
  return [assumption.name, value];
}
