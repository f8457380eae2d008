// AWS API actions called: lambda:InvokeFunction (Invoke), lambda:GetEventSourceMapping,
// rds:DescribeBlueGreenDeployments, rds:DescribeDBInstances, rds:DescribeDBClusters (Aurora),
// states:ListExecutions.
import {
  GetEventSourceMappingCommand,
  InvokeCommand,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import {
  type BlueGreenDeployment,
  DescribeBlueGreenDeploymentsCommand,
  type DescribeBlueGreenDeploymentsCommandInput,
  DescribeDBInstancesCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { ListExecutionsCommand, type SFNClient } from '@aws-sdk/client-sfn';
import * as v from 'valibot';
import { describeCluster, isClusterEngine } from '../shared/cluster';
import {
  EXECUTION_TAG,
  FAILED_WRITER_SUFFIX,
  FENCE_GROUP_SUFFIX,
  RESTORE_GROUP_SUFFIX,
  type UpgradePlan,
} from '../shared/upgrade-plan';

export interface WatchdogInspectEvent {
  plan: UpgradePlan;
  /** The upgrade execution that stopped; only its own deployment may be touched. */
  stoppedExecutionArn: string;
}

export { EXECUTION_TAG };

export type WatchdogAction =
  | 'nothing'
  | 'resume'
  | 'resume-and-delete-green'
  | 'verify-then-resume'
  | 'wait'
  | 'page-operator';

export interface WatchdogObservation {
  /** The toggle's status: 'on', 'off' or 'partial'. */
  maintenance: string;
  mappings: { uuid: string; state: string }[];
  /** The deployment found for the source (the first one when there are several). */
  blueGreen: { id: string; status: string } | null;
  writer: {
    identifier: string;
    engineVersion: string;
    status: string;
    /**
     * Its DB parameter group (for Aurora, the DB cluster parameter group): `<group>-fence` or
     * `<group>-restore` after a restore began.
     */
    parameterGroup?: string;
  } | null;
  /** `<source>-failed1` exists: a restore of old blue renamed the failed writer. */
  failedWriter?: boolean;
}

export interface WatchdogInspectResult {
  action: WatchdogAction;
  /** The deployment to delete or wait for, when the action concerns one. */
  blueGreenDeploymentIdentifier: string | null;
  /** Why, as a sentence an operator can act on. */
  reason: string;
  observed: WatchdogObservation;
}

export interface WatchdogClients {
  lambda: LambdaClient;
  rds: RDSClient;
  sfn: SFNClient;
}

export type InspectPlan = Pick<
  UpgradePlan,
  | 'sourceIdentifier'
  | 'sourceArn'
  | 'currentEngineVersion'
  | 'targetEngineVersion'
  | 'mappings'
  | 'maintenanceToggleFunction'
> &
  /** Absent in plans from before the runbook had engines: PostgreSQL. */
  Partial<Pick<UpgradePlan, 'engine'>>;

/** What was found, before it is summed up for the result. */
export interface Observed {
  maintenance: string;
  mappings: { uuid: string; state: string }[];
  /** Deployments of the source; `owned` when tagged with the stopped execution's name. */
  deployments: { id: string; status: string; owned?: boolean }[];
  writer: WatchdogObservation['writer'];
  /** `<source>-failed1` exists. */
  failedWriter?: boolean;
  /** Other upgrade executions still RUNNING. */
  liveRuns?: string[];
}

/**
 * Blue/green deployment statuses.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_BlueGreenDeployment.html
 */
const BLUE_STILL_WRITER = new Set([
  'PROVISIONING',
  'AVAILABLE',
  'INVALID_CONFIGURATION',
  'SWITCHOVER_FAILED',
]);
const IN_FLIGHT = new Set(['SWITCHOVER_IN_PROGRESS', 'DELETING']);
const KNOWN_STATUSES = new Set([...BLUE_STILL_WRITER, ...IN_FLIGHT, 'SWITCHOVER_COMPLETED']);
/**
 * Event source mapping states.
 * https://docs.aws.amazon.com/lambda/latest/api/API_GetEventSourceMapping.html#lambda-GetEventSourceMapping-response-State
 */
const MAPPING_SETTLING = new Set(['Creating', 'Enabling', 'Disabling', 'Updating']);
const MAPPING_SETTLED = new Set(['Enabled', 'Disabled']);
/** The state recorded when GetEventSourceMapping answers ResourceNotFoundException. */
export const MAPPING_NOT_FOUND = 'NotFound';

/** Reads the real state after an upgrade ended without its own rollback, and decides. */
export async function inspect(
  clients: WatchdogClients,
  plan: InspectPlan,
  stoppedExecutionArn: string,
): Promise<WatchdogInspectResult> {
  const stoppedName = stoppedExecutionArn.split(':').at(-1) ?? '';
  // Aurora: the writer's state is its cluster's (name, version, status, parameter group).
  const readWriter = isClusterEngine(plan.engine ?? 'postgres')
    ? describeClusterWriter
    : describeWriter;
  const [maintenance, mappings, deployments, writer, failedWriter, liveRuns] = await Promise.all([
    maintenanceState(clients.lambda, plan.maintenanceToggleFunction),
    Promise.all(plan.mappings.map((m) => mappingState(clients.lambda, m.uuid))),
    findDeployments(clients.rds, plan.sourceArn),
    readWriter(clients.rds, plan.sourceIdentifier),
    readWriter(clients.rds, `${plan.sourceIdentifier}${FAILED_WRITER_SUFFIX}`),
    runningExecutions(clients.sfn, stoppedExecutionArn),
  ]);
  return decide(plan, {
    maintenance,
    mappings,
    deployments: deployments.map((d) => ({
      id: d.BlueGreenDeploymentIdentifier ?? 'unknown',
      status: d.Status ?? 'unknown',
      owned: (d.TagList ?? []).some((t) => t.Key === EXECUTION_TAG && t.Value === stoppedName),
    })),
    writer,
    failedWriter: failedWriter !== null,
    liveRuns,
  });
}

/**
 * Other RUNNING executions of the upgrade machine (the stopped one's ARN names it:
 * arn:aws:states:region:account:execution:<machine>:<name>).
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html
 */
async function runningExecutions(sfn: SFNClient, stoppedExecutionArn: string): Promise<string[]> {
  const parts = stoppedExecutionArn.split(':');
  const stateMachineArn = [...parts.slice(0, 5), 'stateMachine', parts[6] ?? ''].join(':');
  const running: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(
      new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', nextToken }),
    );
    for (const e of page.executions ?? []) {
      if (e.executionArn !== undefined && e.executionArn !== stoppedExecutionArn) {
        running.push(e.executionArn);
      }
    }
    nextToken = page.nextToken;
  } while (nextToken !== undefined);
  return running;
}

/**
 * The recovery decision, the same rules as the upgrade's rollback. Anything that needs a
 * person is checked first, then anything still moving (wait), then what to do.
 */
export function decide(
  plan: Pick<InspectPlan, 'sourceIdentifier' | 'targetEngineVersion' | 'engine'>,
  observed: Observed,
): WatchdogInspectResult {
  const { maintenance, mappings, deployments, writer, failedWriter = false } = observed;
  const deployment = deployments[0] ?? null;
  const result = (
    action: WatchdogAction,
    reason: string,
    id: string | null = null,
  ): WatchdogInspectResult => ({
    action,
    blueGreenDeploymentIdentifier: id,
    reason,
    observed: {
      maintenance,
      mappings,
      blueGreen: deployment === null ? null : { id: deployment.id, status: deployment.status },
      writer,
      failedWriter,
    },
  });
  const list = (items: { uuid: string; state: string }[]): string =>
    items.map((m) => `${m.uuid} (${m.state})`).join(', ');

  // Another run is live: its deployment, maintenance and consumers are its own to manage.
  if ((observed.liveRuns ?? []).length > 0) {
    return result(
      'page-operator',
      `Another upgrade run is still running (${(observed.liveRuns ?? []).join(', ')}); the ` +
        `watchdog leaves maintenance, consumers and deployments to it. Check that run.`,
    );
  }
  // A deployment another run (or a person) created is never touched.
  const foreign = deployments.filter((d) => d.owned === false);
  if (foreign.length > 0) {
    return result(
      'page-operator',
      `Blue/green deployment(s) ${foreign.map((d) => `${d.id} (${d.status})`).join(', ')} ` +
        `were not created by the stopped run, so the watchdog will not change them. An ` +
        `operator must decide what to do with them.`,
    );
  }

  if (deployments.length > 1) {
    return result(
      'page-operator',
      `${deployments.length} blue/green deployments match ${plan.sourceIdentifier}: ` +
        `${deployments.map((d) => `${d.id} (${d.status})`).join(', ')}. An operator must ` +
        `decide which one is current and delete the others.`,
    );
  }
  if (deployment !== null && !KNOWN_STATUSES.has(deployment.status)) {
    return result(
      'page-operator',
      `Blue/green deployment ${deployment.id} has the unknown status ${deployment.status}. ` +
        `An operator must check it in the RDS console.`,
      deployment.id,
    );
  }
  const unusable = mappings.filter(
    (m) => !MAPPING_SETTLED.has(m.state) && !MAPPING_SETTLING.has(m.state),
  );
  if (unusable.length > 0) {
    return result(
      'page-operator',
      `Event source mappings ${list(unusable)} are missing or in a state the watchdog cannot ` +
        `resume from. An operator must recreate or fix them, then resume the buffers.`,
      deployment?.id ?? null,
    );
  }
  if (deployment !== null && IN_FLIGHT.has(deployment.status)) {
    return result(
      'wait',
      `Blue/green deployment ${deployment.id} is ${deployment.status}; waiting for it to ` +
        `settle before deciding.`,
      deployment.id,
    );
  }
  const settling = mappings.filter((m) => MAPPING_SETTLING.has(m.state));
  if (settling.length > 0) {
    return result(
      'wait',
      `Event source mappings ${list(settling)} are changing state; waiting for them to settle.`,
      deployment?.id ?? null,
    );
  }
  if (deployment !== null && BLUE_STILL_WRITER.has(deployment.status)) {
    return result(
      'resume-and-delete-green',
      `Blue/green deployment ${deployment.id} is ${deployment.status}, so the blue ` +
        `${plan.sourceIdentifier} is still the writer: resume the buffers, turn maintenance ` +
        `off and delete the green environment.`,
      deployment.id,
    );
  }
  if (deployment !== null) {
    // SWITCHOVER_COMPLETED: green is the writer now.
    return result(
      'verify-then-resume',
      `Blue/green deployment ${deployment.id} switched over, so the new version is the ` +
        `writer ${plan.sourceIdentifier}: verify it before resuming the buffers.`,
      deployment.id,
    );
  }
  const disabled = mappings.filter((m) => m.state === 'Disabled');
  if (maintenance === 'off' && disabled.length === 0) {
    return result(
      'nothing',
      `No blue/green deployment, maintenance is off and every buffer consumer is enabled: ` +
        `nothing to recover.`,
    );
  }
  const leftOver = [
    ...(maintenance === 'off' ? [] : [`maintenance is ${maintenance}`]),
    ...(disabled.length === 0 ? [] : [`mappings ${list(disabled)} are paused`]),
  ].join(' and ');
  // A restore of old blue that stopped part way: the failed writer fenced or renamed, old
  // blue not yet verified through the endpoint. Only the runbook's restore path knows how
  // to finish it safely, so a person does.
  const group = writer?.parameterGroup ?? '';
  if (failedWriter || group.endsWith(FENCE_GROUP_SUFFIX) || group.endsWith(RESTORE_GROUP_SUFFIX)) {
    const found = [
      ...(failedWriter ? [`${plan.sourceIdentifier}${FAILED_WRITER_SUFFIX} exists`] : []),
      ...(group === '' ? [] : [`${plan.sourceIdentifier} uses the parameter group ${group}`]),
    ].join(' and ');
    return result(
      'page-operator',
      `No blue/green deployment and ${leftOver}; ${found}: a restore of old blue after a ` +
        'failed switchover was interrupted. An operator must finish it (docs/runbook.md 3.7, ' +
        '"Restore old blue by hand") and check the writer through its endpoint before ' +
        'resuming.',
    );
  }
  if (writer === null) {
    return result(
      'page-operator',
      `No blue/green deployment and ${leftOver}, but there is no ` +
        `${isClusterEngine(plan.engine ?? 'postgres') ? 'DB cluster' : 'DB instance'} ` +
        `${plan.sourceIdentifier} (a rename may have been interrupted). An operator must ` +
        `make the right instance the writer under that name before resuming.`,
    );
  }
  if (writer.engineVersion === plan.targetEngineVersion) {
    return result(
      'verify-then-resume',
      `No blue/green deployment and ${leftOver}; the writer ${writer.identifier} runs the ` +
        `target version ${writer.engineVersion}, so verify it before resuming.`,
    );
  }
  return result(
    'resume',
    `No blue/green deployment and ${leftOver}; the writer ${writer.identifier} runs ` +
      `${writer.engineVersion}, not the target: resume the buffers and turn maintenance off.`,
  );
}

const ToggleStatus = v.object({
  maintenance: v.picklist(['on', 'off', 'partial']),
  rules: v.array(v.unknown()),
});

/** Asks the maintenance toggle for its status. A function error is thrown. */
async function maintenanceState(lambda: LambdaClient, functionName: string): Promise<string> {
  // A function error still answers 200; FunctionError is set and the payload is the error.
  // https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_ResponseSyntax
  const response = await lambda.send(
    new InvokeCommand({
      FunctionName: functionName,
      Payload: new TextEncoder().encode(JSON.stringify({ action: 'status' })),
    }),
  );
  const text = response.Payload === undefined ? '' : new TextDecoder().decode(response.Payload);
  if (response.FunctionError !== undefined) {
    throw new Error(
      `maintenance toggle ${functionName} failed (${response.FunctionError}): ${text}`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`maintenance toggle ${functionName} returned non-JSON: ${text.slice(0, 200)}`);
  }
  const parsed = v.safeParse(ToggleStatus, body);
  if (!parsed.success) {
    throw new Error(
      `maintenance toggle ${functionName} returned an unexpected status: ${text.slice(0, 200)}`,
    );
  }
  return parsed.output.maintenance;
}

async function mappingState(
  lambda: LambdaClient,
  uuid: string,
): Promise<{ uuid: string; state: string }> {
  try {
    const { State } = await lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
    return { uuid, state: State ?? 'unknown' };
  } catch (err) {
    // https://docs.aws.amazon.com/lambda/latest/api/API_GetEventSourceMapping.html#API_GetEventSourceMapping_Errors
    if ((err as { name?: string }).name === 'ResourceNotFoundException') {
      return { uuid, state: MAPPING_NOT_FOUND };
    }
    throw err;
  }
}

/**
 * The blue/green deployments of the source. An RDS ARN ends with the instance identifier, so
 * after switchover the old blue's ARN ends with `-old1` and the new writer has the source's
 * ARN; both are asked for with the `source` filter. If that finds nothing, every deployment
 * is listed and matched on its source, target and switchover members.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeBlueGreenDeployments.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_Tagging.ARN.Constructing.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-after
 */
export async function findDeployments(
  rds: RDSClient,
  sourceArn: string,
): Promise<BlueGreenDeployment[]> {
  const arns = [sourceArn, `${sourceArn}-old1`];
  const filtered = await describeDeployments(rds, {
    Filters: [{ Name: 'source', Values: arns }],
  });
  if (filtered.length > 0) return filtered;
  const all = await describeDeployments(rds, {});
  return all.filter((d) => {
    const members = [
      d.Source,
      d.Target,
      ...(d.SwitchoverDetails ?? []).flatMap((s) => [s.SourceMember, s.TargetMember]),
    ];
    return members.some((m) => m !== undefined && arns.includes(m));
  });
}

async function describeDeployments(
  rds: RDSClient,
  input: DescribeBlueGreenDeploymentsCommandInput,
): Promise<BlueGreenDeployment[]> {
  const deployments: BlueGreenDeployment[] = [];
  let marker: string | undefined;
  do {
    const page = await rds.send(
      new DescribeBlueGreenDeploymentsCommand({ ...input, Marker: marker }),
    );
    deployments.push(...(page.BlueGreenDeployments ?? []));
    marker = page.Marker;
  } while (marker !== undefined);
  return deployments;
}

async function describeWriter(
  rds: RDSClient,
  identifier: string,
): Promise<WatchdogObservation['writer']> {
  try {
    const { DBInstances: [instance] = [] } = await rds.send(
      new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier }),
    );
    if (instance === undefined) return null;
    return {
      identifier,
      engineVersion: instance.EngineVersion ?? 'unknown',
      status: instance.DBInstanceStatus ?? 'unknown',
      parameterGroup: instance.DBParameterGroups?.[0]?.DBParameterGroupName,
    };
  } catch (err) {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeDBInstances.html#API_DescribeDBInstances_Errors
    if ((err as { name?: string }).name === 'DBInstanceNotFoundFault') return null;
    throw err;
  }
}

/**
 * An Aurora writer as its cluster shows it: the cluster's identifier, EngineVersion, Status
 * and DB cluster parameter group, where the restore's `-restore`/`-fence` copies go (Aurora's
 * read-only parameters are cluster-level). Null when there is no such cluster.
 * https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBCluster.html
 * https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/AuroraMySQL.Reference.ParameterGroups.html
 */
async function describeClusterWriter(
  rds: RDSClient,
  identifier: string,
): Promise<WatchdogObservation['writer']> {
  const cluster = await describeCluster(rds, identifier);
  if (cluster === undefined) return null;
  return {
    identifier,
    engineVersion: cluster.EngineVersion ?? 'unknown',
    status: cluster.Status ?? 'unknown',
    parameterGroup: cluster.DBClusterParameterGroup,
  };
}
