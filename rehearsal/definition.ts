import type { App, Stack } from 'aws-cdk-lib';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { Resolver } from './synthesized';

/**
 * A value of a synthesized stack with its CloudFormation references resolved as the
 * rehearsal resolves them (the same placeholder names and ARNs everywhere in the app).
 */
export function resolveIn(stack: Stack, value: unknown): unknown {
  const app = stack.node.root as App;
  const templates = new Map(app.synth().stacks.map((s) => [s.stackName, s.template]));
  return new Resolver(templates).resolve(stack.stackName, value);
}

/** A state machine definition of a stack exactly as synthesized, references resolved. */
export function definitionOf(stack: Stack, logicalIdFragment: string): StateMachineDefinition {
  const app = stack.node.root as App;
  const template = app.synth().getStackByName(stack.stackName).template as {
    Resources: Record<string, { Type: string; Properties: { DefinitionString: unknown } }>;
  };
  const entry = Object.entries(template.Resources).find(
    ([id, r]) => r.Type === 'AWS::StepFunctions::StateMachine' && id.includes(logicalIdFragment),
  );
  if (entry === undefined) throw new Error(`no state machine matching ${logicalIdFragment}`);
  return JSON.parse(
    String(resolveIn(stack, entry[1].Properties.DefinitionString)),
  ) as StateMachineDefinition;
}

type States = StateMachineDefinition['States'];
export type AnyState = States[string] & {
  Next?: string;
  Default?: string;
  End?: boolean;
  Choices?: { Next: string }[];
  Catch?: { Next: string; ErrorEquals: string[] }[];
  Retry?: unknown[];
  Iterator?: { StartAt: string; States: States };
  ItemProcessor?: { StartAt: string; States: States };
  Branches?: { StartAt: string; States: States }[];
  Seconds?: number;
  Resource?: string;
  Parameters?: Record<string, unknown>;
};

/** Every state, including those inside Map item processors and Parallel branches, by name. */
export function allStates(definition: { States: States }): Map<string, AnyState> {
  const found = new Map<string, AnyState>();
  for (const [name, state] of Object.entries(definition.States) as [string, AnyState][]) {
    found.set(name, state);
    const inner = [state.ItemProcessor ?? state.Iterator, ...(state.Branches ?? [])];
    for (const machine of inner) {
      if (machine !== undefined) for (const [n, s] of allStates(machine)) found.set(n, s);
    }
  }
  return found;
}
