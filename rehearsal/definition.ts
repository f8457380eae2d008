import type { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';

/** A placeholder for a CloudFormation reference, keeping the logical id readable. */
function placeholder(value: unknown): string {
  const v = value as {
    Ref?: string;
    'Fn::GetAtt'?: [string, string];
    'Fn::ImportValue'?: string;
    'Fn::GetStackOutput'?: { OutputName: string };
  };
  // A value from another stack: its export or output name keeps the producer's logical id.
  const imported = v['Fn::GetStackOutput']?.OutputName ?? v['Fn::ImportValue'];
  if (imported !== undefined) return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${imported}`;
  if (v.Ref === 'AWS::Partition') return 'aws';
  if (v.Ref === 'AWS::Region') return REGION;
  if (v.Ref === 'AWS::AccountId') return ACCOUNT;
  if (v.Ref === 'AWS::URLSuffix') return 'amazonaws.com';
  if (v.Ref !== undefined) return `arn:aws:ref:${REGION}:${ACCOUNT}:${v.Ref}`;
  const [id, attribute] = v['Fn::GetAtt'] ?? ['Unknown', 'Arn'];
  if (attribute === 'Arn') return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${id}`;
  return `${id}.${attribute}`;
}

/** A synthesized value as text, CloudFormation references replaced by their placeholders. */
export function resolve(value: unknown): string {
  if (typeof value === 'string') return value;
  const join = (value as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  if (join !== undefined) return join[1].map(resolve).join(join[0]);
  return placeholder(value);
}

/**
 * The state machine definition exactly as synthesized, with CloudFormation references
 * replaced by placeholder ARNs that keep the logical id (the harness dispatches on it).
 */
export function definitionOf(stack: Stack, logicalIdFragment: string): StateMachineDefinition {
  const machines = Template.fromStack(stack).findResources('AWS::StepFunctions::StateMachine');
  const entry = Object.entries(machines).find(([id]) => id.includes(logicalIdFragment));
  if (entry === undefined) throw new Error(`no state machine matching ${logicalIdFragment}`);
  const props = (entry[1] as { Properties: { DefinitionString: unknown } }).Properties;
  return JSON.parse(resolve(props.DefinitionString)) as StateMachineDefinition;
}

type States = StateMachineDefinition['States'];
type AnyState = States[string] & {
  Next?: string;
  Default?: string;
  Choices?: { Next: string }[];
  Catch?: { Next: string }[];
  Iterator?: { States: States };
  ItemProcessor?: { States: States };
  Seconds?: number;
  Resource?: string;
};

/** Every state, including those inside Map item processors, by name. */
export function allStates(definition: { States: States }): Map<string, AnyState> {
  const found = new Map<string, AnyState>();
  for (const [name, state] of Object.entries(definition.States) as [string, AnyState][]) {
    found.set(name, state);
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner !== undefined) for (const [n, s] of allStates(inner)) found.set(n, s);
  }
  return found;
}

/** Names of the states inside Map item processors. */
export function mapInnerStates(definition: { States: States }): Set<string> {
  const inner = new Set<string>();
  for (const state of Object.values(definition.States) as AnyState[]) {
    const processor = state.ItemProcessor ?? state.Iterator;
    if (processor !== undefined) for (const name of allStates(processor).keys()) inner.add(name);
  }
  return inner;
}

/**
 * For each Task reached from a Wait state: how long the Wait waits, and whether the Task is
 * reached only from Waits (`always`) or also from elsewhere (the first pass of a loop).
 */
export function waitBefore(definition: {
  States: States;
}): Map<string, { seconds: number; always: boolean }> {
  const states = allStates(definition);
  const predecessors = new Map<string, string[]>();
  for (const [name, state] of states) {
    const targets = [
      state.Next,
      state.Default,
      ...(state.Choices ?? []).map((c) => c.Next),
      ...(state.Catch ?? []).map((c) => c.Next),
    ].filter((t): t is string => t !== undefined);
    for (const target of targets)
      predecessors.set(target, [...(predecessors.get(target) ?? []), name]);
  }
  const result = new Map<string, { seconds: number; always: boolean }>();
  for (const [name, state] of states) {
    if (state.Type !== 'Task') continue;
    const before = predecessors.get(name) ?? [];
    const waits = before.map((p) => states.get(p)).filter((s) => s?.Type === 'Wait');
    if (waits.length > 0) {
      result.set(name, { seconds: waits[0]?.Seconds ?? 0, always: waits.length === before.length });
    }
  }
  return result;
}
