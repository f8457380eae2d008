import './polyfills';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import { allStates } from './definition';
import { hashInputs, readEntry, writeEntry } from './cache';
import { authorize } from './iam';
import type { MachineSpec } from './synthesized';
import { AwsError } from './world/core';
import type { World } from './world';

export interface RunRequest {
  world: World;
  machine: MachineSpec;
  input: unknown;
  executionName: string;
  /** These Task states fail every time they run. */
  failAt?: string[];
  /** These Task states fail their first attempt with a throttling error. */
  failOnce?: string[];
  /** Abort the execution when this Task state starts. */
  abortAt?: string;
  /** Called as each Task state starts (scenarios start a second run from here). */
  onTask?: (name: string, call: number) => void;
}

export interface RunResult {
  machine: string;
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED' | 'TIMED_OUT';
  output?: Record<string, unknown>;
  error?: string;
  cause?: string;
  /** The Task states attempted, in order (a retry is another attempt). */
  tasks: string[];
  /** Each Task attempt with its virtual time (ms). */
  timeline: { at: number; state: string }[];
  executionArn: string;
  /** The states whose injected fault (or abort) fired. */
  injected: string[];
}

/** Step Functions' IAM prefix for an SDK integration's service name, where they differ. */
// The SDK integration's service name, where the API's (IAM's) differs.
const IAM_PREFIX: Record<string, string> = {
  sfn: 'states',
  elasticloadbalancingv2: 'elasticloadbalancing',
};

/**
 * AWS Step Functions' default Task timeout is 99999999 s; the States Language spec, which
 * the interpreter follows, says 60 s. The rehearsal follows AWS.
 * https://docs.aws.amazon.com/step-functions/latest/dg/state-task.html
 */
export function withAwsTaskTimeouts(definition: StateMachineDefinition): StateMachineDefinition {
  // A JSON copy, not structuredClone: under jest that makes objects of another realm, which
  // the interpreter's plain-object check refuses, leaving nested "key.$" paths unresolved.
  const copy = JSON.parse(JSON.stringify(definition)) as StateMachineDefinition;
  for (const state of allStates(copy).values()) {
    const s = state as { Type: string; TimeoutSeconds?: number; TimeoutSecondsPath?: string };
    if (s.Type === 'Task' && s.TimeoutSeconds === undefined && s.TimeoutSecondsPath === undefined) {
      s.TimeoutSeconds = 99_999_999;
    }
  }
  return copy;
}

/**
 * A Pass state's Result is its output ("Result ... is passed on as the output", AWS), even
 * `false`, `0`, `""` or `null`. aws-local-stepfunctions 3 passes the input on instead when the
 * Result is falsy (`if (this.stateDefinition.Result)`), so such a state would rehearse a
 * path the deployed machine never takes. The rehearsal refuses it rather than run it wrong.
 * https://docs.aws.amazon.com/step-functions/latest/dg/state-pass.html
 */
export function refuseFalsyPassResults(definition: StateMachineDefinition): void {
  for (const [name, state] of allStates(definition)) {
    const s = state as { Type: string; Result?: unknown };
    if (s.Type === 'Pass' && 'Result' in s && !s.Result) {
      throw new Error(
        `Pass state "${name}" has Result ${JSON.stringify(s.Result)}, which the rehearsal's ` +
          'interpreter ignores (it passes the input on); write the object that holds the ' +
          'value instead',
      );
    }
  }
}

/**
 * Runs one execution of a state machine definition with aws-local-stepfunctions, in the
 * world's virtual time. Wait states, Retry backoff (with its jitter) and Task timeouts run
 * on the interpreter's own timers, which the simulation makes virtual. Every Task is served
 * by the world as its Resource says: an SDK integration is a call with the state machine's
 * role; a Lambda invoke runs the function's real code.
 */
export async function runExecution(request: RunRequest): Promise<RunResult> {
  const { world, machine, executionName } = request;
  refuseFalsyPassResults(machine.definition);
  const definition = withAwsTaskTimeouts(machine.definition);
  const executionArn = `${machine.arn.replace(':stateMachine:', ':execution:')}:${executionName}`;
  const principal = world.machinePrincipal(machine);
  const naming = world.assumptions['sdk-integration-error-names'];
  const failOnce = new Set(request.failOnce ?? []);
  const tasks: string[] = [];
  const timeline: { at: number; state: string }[] = [];
  const injected = new Set<string>();
  const calls = new Map<string, number>();
  const control: { abort?: () => void } = {};

  const handlers: Record<string, (input: Record<string, unknown>) => Promise<unknown>> = {};
  for (const [name, state] of allStates(definition)) {
    if (state.Type !== 'Task') continue;
    const resource = state.Resource ?? '';
    const serve = serviceFor(resource, world, principal);
    handlers[name] = async (input) => {
      const call = (calls.get(name) ?? 0) + 1;
      calls.set(name, call);
      tasks.push(name);
      timeline.push({ at: Date.now(), state: name });
      world.ctx.emit({
        kind: 'task',
        machine: machine.name,
        execution: executionName,
        state: name,
      });
      request.onTask?.(name, call);
      if (request.abortAt === name) {
        injected.add(name);
        control.abort?.();
        throw named('States.Aborted', `execution aborted at "${name}"`);
      }
      if (request.failAt?.includes(name)) {
        injected.add(name);
        throw named(`${serviceName(resource)}.InjectedFault`, `fault injected at "${name}"`);
      }
      if (failOnce.delete(name)) {
        injected.add(name);
        throw named(throttlingError(resource, naming), `throttled once at "${name}"`);
      }
      return serve(input);
    };
  }

  const validation = validationFor(machine);
  const sm = new StateMachine(definition, { validationOptions: validation.options });
  validation.passed();
  const startDate = Date.now();
  world.sfn.executions.set(executionArn, {
    executionArn,
    stateMachineArn: machine.arn,
    name: executionName,
    status: 'RUNNING',
    input: JSON.stringify(request.input),
    startDate,
  });
  world.executionChanged(machine, executionArn, 'RUNNING');
  const execution = sm.run(request.input as never, {
    overrides: { taskResourceLocalHandlers: handlers as never },
    context: {
      Execution: {
        Id: executionArn,
        Name: executionName,
        StartTime: new Date(startDate).toISOString(),
      },
      StateMachine: { Id: machine.arn, Name: machine.name },
      // The interpreter has no .waitForTaskToken: the handler plays the operator.
      Task: { Token: 'local-task-token' },
      // The interpreter sets no $$.State; a getter keeps EnteredTime on virtual time.
      State: {
        get EnteredTime() {
          return new Date().toISOString();
        },
      },
    },
  });
  control.abort = execution.abort;
  const settled = await settle(execution.result);
  const result: RunResult = {
    machine: machine.name,
    ...settled,
    tasks,
    timeline,
    executionArn,
    injected: [...injected],
  };
  const record = world.sfn.executions.get(executionArn);
  if (record !== undefined) {
    Object.assign(record, {
      status: result.status,
      stopDate: Date.now(),
      ...(result.output !== undefined ? { output: JSON.stringify(result.output) } : {}),
      ...(result.error !== undefined ? { error: result.error, cause: result.cause } : {}),
    });
  }
  world.executionChanged(machine, executionArn, result.status);
  return result;
}

/**
 * The interpreter validates a definition against the ASL schema when it is built, which
 * takes most of a second (the schema is compiled first). Each definition is validated on its
 * first run in a process, unless this interpreter has passed that same definition before: a
 * cache entry (cache.ts) keyed on the definition and the dependencies records it, one entry
 * per machine (an entry replaces the others of its kind).
 */
const validated = new WeakSet<StateMachineDefinition>();
export function validationFor(machine: MachineSpec): {
  options: { noValidate: true } | { checkArn: false };
  passed: () => void;
} {
  const { definition } = machine;
  if (validated.has(definition)) return { options: { noValidate: true }, passed: () => undefined };
  const kind = `asl-valid-${machine.name}`;
  const key = hashInputs(['package-lock.json'], JSON.stringify(definition));
  const known = readEntry(kind, key) !== undefined;
  return {
    options: known ? { noValidate: true } : { checkArn: false },
    passed: () => {
      validated.add(definition);
      if (!known) writeEntry(kind, key, 'valid');
    },
  };
}

async function settle(
  result: Promise<unknown>,
): Promise<Pick<RunResult, 'status' | 'output' | 'error' | 'cause'>> {
  try {
    return { status: 'SUCCEEDED', output: (await result) as Record<string, unknown> };
  } catch (err) {
    if (err instanceof ExecutionAbortedError) return { status: 'ABORTED' };
    if (err instanceof ExecutionTimeoutError) return { status: 'TIMED_OUT' };
    if (err instanceof ExecutionError) {
      const cause = (err as { cause?: { name?: string; message?: string } }).cause;
      return { status: 'FAILED', error: cause?.name, cause: cause?.message };
    }
    throw err;
  }
}

export function named(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

function serviceName(resource: string): string {
  const sdk = /aws-sdk:([a-z0-9]+):/.exec(resource)?.[1];
  if (sdk !== undefined) return pascal(sdk);
  if (resource.includes(':sns:')) return 'Sns';
  if (resource.includes(':events:')) return 'EventBridge';
  return 'Lambda';
}

function pascal(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The error a throttled call raises, named as the assumption sdk-integration-error-names says. */
function throttlingError(resource: string, naming: string): string {
  const service = serviceName(resource);
  if (service === 'Lambda') return 'Lambda.TooManyRequestsException';
  return sfnErrorName(service, 'Throttling', naming);
}

/**
 * The error name Step Functions gives an SDK integration error, in either reading of AWS's
 * rule (the assumption sdk-integration-error-names; lib/constructs/upgrade-steps.ts).
 * https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
 */
export function sfnErrorName(service: string, code: string, naming: string): string {
  const svc = pascal(service);
  if (naming === 'java-class') {
    if (code.endsWith('Fault')) return `${svc}.${code.slice(0, -'Fault'.length)}Exception`;
    // An error the SDK models keeps its name; any other is the service's generic exception.
    if (code.endsWith('Exception') && !code.startsWith('AccessDenied')) return `${svc}.${code}`;
    return `${svc}.${svc}Exception`;
  }
  return `${svc}.${code.endsWith('Exception') ? code : `${code}Exception`}`;
}

/**
 * "Parameters in Step Functions are expressed in PascalCase, even if the native service API
 * is in camelCase." The model answers in the API's own names, so for a camelCase API the
 * names are turned back and forth. AWS does not say how responses are named; the model gives
 * them in PascalCase like the parameters (the watchdog reads $.Error and $.Input).
 * https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html
 */
const CAMEL_CASE_APIS = new Set(['states']);

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

function recase(value: unknown, name: (key: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => recase(v, name));
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [name(k), recase(v, name)]));
}

/** The handler for one Task, by the API its Resource calls. */
function serviceFor(
  resource: string,
  world: World,
  principal: ReturnType<World['machinePrincipal']>,
): (input: Record<string, unknown>) => Promise<unknown> {
  const naming = world.assumptions['sdk-integration-error-names'];
  const sdk = /^arn:aws:states:::aws-sdk:([a-z0-9]+):([A-Za-z0-9]+)$/.exec(resource);
  if (sdk !== null) {
    const [, service = '', action = ''] = sdk;
    const prefix = IAM_PREFIX[service] ?? service;
    const camel = CAMEL_CASE_APIS.has(prefix);
    return async (input) => {
      try {
        const answer = await world.call(
          principal,
          prefix,
          pascal(action),
          camel ? (recase(input, lowerFirst) as Record<string, unknown>) : input,
        );
        return camel ? recase(answer, pascal) : answer;
      } catch (err) {
        if (err instanceof AwsError)
          throw named(sfnErrorName(service, err.name, naming), err.message);
        throw err;
      }
    };
  }
  const invoke = async (functionName: string, payload: unknown) => {
    authorizeInvoke(world, principal, functionName);
    const result = await world.invoke(functionName, payload);
    // "If the response contains the field FunctionError, the task fails."
    // https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html
    if (!result.ok) {
      throw named(
        result.errorType,
        JSON.stringify({ errorType: result.errorType, errorMessage: result.errorMessage }),
      );
    }
    return result.payload;
  };
  if (resource === 'arn:aws:states:::lambda:invoke') {
    return async (input) => ({
      ExecutedVersion: '$LATEST',
      StatusCode: 200,
      Payload: await invoke(String(input.FunctionName), input.Payload),
    });
  }
  if (resource.startsWith('arn:aws:states:::sns:publish')) {
    return async (input) => {
      try {
        await world.call(principal, 'sns', 'Publish', input);
      } catch (err) {
        if (err instanceof AwsError)
          throw named(sfnErrorName('sns', err.name, naming), err.message);
        throw err;
      }
      if (resource.endsWith('.waitForTaskToken')) {
        await world.sim.sleep(world.latency.operatorResponse);
        if (world.scenario.rejectApproval)
          throw named('Rejected', 'the operator rejected the switchover');
      }
      return {};
    };
  }
  if (resource === 'arn:aws:states:::events:putEvents') {
    return async (input) => {
      try {
        return await world.call(principal, 'events', 'PutEvents', input);
      } catch (err) {
        if (err instanceof AwsError)
          throw named(sfnErrorName('eventBridge', err.name, naming), err.message);
        throw err;
      }
    };
  }
  if (/^arn:aws:lambda:[^:]+:\d+:function:/.test(resource)) {
    // payloadResponseOnly: the Resource is the function and the input is its event.
    return async (input) => invoke(resource, input);
  }
  return async () => {
    throw new Error(`the rehearsal does not model the Task resource ${resource}`);
  };
}

/** Step Functions invokes a function with the state machine's role. */
function authorizeInvoke(
  world: World,
  principal: ReturnType<World['machinePrincipal']>,
  functionName: string,
): void {
  const arn = functionName.startsWith('arn:') ? functionName : world.runtime(functionName).spec.arn;
  const decision = authorize(principal.statements, {
    action: 'lambda:InvokeFunction',
    resource: arn,
  });
  if (!decision.allowed) {
    world.ctx.emit({
      kind: 'access-denied',
      principal: principal.name,
      action: 'lambda:InvokeFunction',
      resource: arn,
    });
    throw named(
      'Lambda.AWSLambdaException',
      `${principal.name} is not authorized to perform: lambda:InvokeFunction on resource: ${arn}`,
    );
  }
}
