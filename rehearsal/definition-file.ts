import { StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { allStates } from './definition';
import { ACCOUNT, REGION, type SynthesizedApp } from './synthesized';

export class DefinitionError extends Error {
  override readonly name = 'DefinitionError';
}

/**
 * An upgrade definition from a file: what `--print-definition` prints (ASL, with the
 * rehearsal's placeholder names), or what `aws stepfunctions describe-state-machine` returns
 * for the deployed machine (its `definition` holds the ASL with the account's real names).
 * Real names are mapped to the synthesized app's: the plan's resource names key by key,
 * functions and the topic by the logical id CloudFormation puts in their physical names, the
 * account and the region. The plan's other values (versions, timeouts) stay as deployed. A
 * definition that is not valid ASL, or names something the app does not have, is refused.
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeStateMachine.html
 */
export function readDefinition(text: string, app: SynthesizedApp): StateMachineDefinition {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DefinitionError(`the file is not JSON: ${(err as Error).message}`);
  }
  const described = json as { definition?: unknown; stateMachineArn?: unknown };
  let definition: unknown = json;
  if (typeof described.definition === 'string') {
    try {
      definition = normalize(JSON.parse(described.definition) as StateMachineDefinition, app);
    } catch (err) {
      if (err instanceof DefinitionError) throw err;
      throw new DefinitionError(`"definition" is not JSON: ${(err as Error).message}`);
    }
  }
  return validDefinition(definition);
}

/** The definition, if it is valid ASL; otherwise a DefinitionError with the reason. */
export function validDefinition(definition: unknown): StateMachineDefinition {
  try {
    // On a copy: building a StateMachine fills in fields of the definition it is given.
    new StateMachine(JSON.parse(JSON.stringify(definition)) as StateMachineDefinition, {
      validationOptions: { checkArn: false },
    });
  } catch (err) {
    throw new DefinitionError(
      `not a valid Amazon States Language definition: ${(err as Error).message}`,
    );
  }
  return definition as StateMachineDefinition;
}

/** Replaces the deployed account's names with the synthesized app's. */
function normalize(
  definition: StateMachineDefinition,
  app: SynthesizedApp,
): StateMachineDefinition {
  const replacements = new Map<string, string>();
  const validate = definition.States['Validate input'] as
    { Parameters?: { defaults?: unknown } } | undefined;
  const deployed = validate?.Parameters?.defaults;
  if (deployed === undefined) {
    throw new DefinitionError(
      'the definition has no "Validate input" state with the plan defaults',
    );
  }
  pair(deployed, app.defaults, replacements);
  let text = JSON.stringify(definition);
  for (const [real, placeholder] of [...replacements].sort((a, b) => b[0].length - a[0].length)) {
    text = text.split(real).join(placeholder);
  }
  const mapped = JSON.parse(text) as StateMachineDefinition;
  for (const state of allStates(mapped).values()) {
    const s = state as { Resource?: string; Parameters?: Record<string, unknown> };
    if (typeof s.Resource === 'string' && s.Resource.startsWith('arn:aws:lambda:')) {
      s.Resource = functionArn(s.Resource, app);
    }
    const fn = s.Parameters?.FunctionName;
    if (typeof fn === 'string')
      s.Parameters = { ...s.Parameters, FunctionName: functionArn(fn, app) };
    const topic = s.Parameters?.TopicArn;
    if (typeof topic === 'string')
      s.Parameters = { ...s.Parameters, TopicArn: topicArn(topic, app) };
  }
  // What is left of the account and region in ARNs.
  return JSON.parse(
    JSON.stringify(mapped).replace(
      /arn:aws:([a-z0-9-]+):([a-z0-9-]*):(\d{12}):/g,
      (_m, service: string, region: string) =>
        `arn:aws:${service}:${region === '' ? '' : REGION}:${ACCOUNT}:`,
    ),
  ) as StateMachineDefinition;
}

/**
 * The plan defaults that name resources: the deployed account's name for each is paired with
 * the synthesized app's. Everything else (versions, timeouts, limits) is the deployed plan's
 * own and is kept as deployed.
 */
const IDENTIFIERS = new Set([
  'sourceIdentifier',
  'sourceArn',
  'targetParameterGroupName',
  'listenerArn',
  'maintenanceToggleFunction',
  'uuid',
  'url',
  'arn',
]);

/** Pairs each resource name in the deployed defaults with the synthesized one at the same place. */
function pair(deployed: unknown, synthesized: unknown, out: Map<string, string>, key = ''): void {
  if (typeof deployed === 'string' && typeof synthesized === 'string') {
    if (IDENTIFIERS.has(key) && deployed !== synthesized && deployed.length > 0) {
      out.set(deployed, synthesized);
    }
    return;
  }
  if (Array.isArray(deployed) && Array.isArray(synthesized)) {
    for (const item of deployed) {
      const name = (item as { name?: unknown })?.name;
      const match = synthesized.find((s) => (s as { name?: unknown })?.name === name);
      if (match === undefined) {
        throw new DefinitionError(
          `the deployed plan names ${JSON.stringify(name)}, which the app does not have`,
        );
      }
      pair(item, match, out);
    }
    return;
  }
  if (
    deployed !== null &&
    typeof deployed === 'object' &&
    synthesized !== null &&
    typeof synthesized === 'object'
  ) {
    for (const [k, v] of Object.entries(deployed))
      pair(v, (synthesized as Record<string, unknown>)[k], out, k);
  }
}

/** The synthesized function a deployed name or ARN refers to (qualifier kept). */
function functionArn(nameOrArn: string, app: SynthesizedApp): string {
  const name = nameOrArn.startsWith('arn:') ? (nameOrArn.split(':')[6] ?? '') : nameOrArn;
  const qualifier = nameOrArn.startsWith('arn:') ? nameOrArn.split(':').slice(7) : [];
  const found =
    app.functions.find((f) => f.name === name) ??
    app.functions.find((f) => name.includes(f.logicalId));
  if (found === undefined) {
    throw new DefinitionError(
      `the definition invokes ${nameOrArn}, which is none of the app's functions`,
    );
  }
  return [found.arn, ...qualifier].join(':');
}

/** The synthesized topic a deployed topic ARN refers to: its physical name holds the app's name. */
function topicArn(arn: string, app: SynthesizedApp): string {
  const name = arn.split(':').at(-1) ?? '';
  const found = app.topics.find((t) => name.includes(t.split(':').at(-1) ?? '\u0000'));
  if (found === undefined) {
    throw new DefinitionError(
      `the definition publishes to ${arn}, which is none of the app's topics`,
    );
  }
  return found;
}
