import {
  ExecutionAbortedError,
  ExecutionError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import type { UpgradePlan } from '../lambda/shared/upgrade-plan';
import { validateInput } from '../lambda/validate-input/validate';
import type { AwsWorld } from './aws-model';
import { ACCOUNT, REGION, allStates, mapInnerStates, waitBefore } from './definition';

export interface RunRequest {
  definition: StateMachineDefinition;
  world: AwsWorld;
  input: unknown;
  /** The state machine's name, for ARNs in the context object. */
  stateMachineName: string;
  executionName?: string;
  /** These Task states fail every time they run. */
  failAt?: string[];
  /** These Task states fail their first attempt with a throttling error (Retry absorbs it). */
  failOnce?: string[];
  /** Abort the execution when this Task state starts. */
  abortAt?: string;
  /** Called as each Task state starts (scenarios start a second run from here). */
  onTask?: (name: string, call: number) => void;
}

export interface RunResult {
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  output?: Record<string, unknown>;
  error?: string;
  cause?: string;
  /** Every state entered (Map item states included); Tasks in order, others as logged. */
  path: string[];
  /** The Task states run, in order. */
  tasks: string[];
  /** Each Task state run, with its virtual time (ms). */
  timeline: { at: number; state: string }[];
  executionArn: string;
}

type Handler = (input: Record<string, unknown>) => Promise<unknown>;

/**
 * Runs a synthesized state machine definition with aws-local-stepfunctions against the
 * in-memory world, in virtual time. Every Task is served by a local handler chosen by the
 * API it calls (its Resource) or, for functions, by the function's logical id.
 */
export async function runStateMachine(request: RunRequest): Promise<RunResult> {
  const { definition, world } = request;
  const clock = world.clock;
  const executionName = request.executionName ?? 'run-1';
  const executionArn = `arn:aws:states:${REGION}:${ACCOUNT}:execution:${request.stateMachineName}:${executionName}`;
  const states = allStates(definition);
  const inner = mapInnerStates(definition);
  const waits = waitBefore(definition);
  const failOnce = new Set(request.failOnce ?? []);
  const path: string[] = [];
  const tasks: string[] = [];
  const timeline: { at: number; state: string }[] = [];
  const calls = new Map<string, number>();
  let abort: (() => void) | undefined;

  const handlers: Record<string, Handler> = {};
  for (const [name, state] of states) {
    if (state.Type !== 'Task') continue;
    const resource = state.Resource ?? '';
    const serve = serviceFor(resource, world, executionArn);
    handlers[name] = async (input) => {
      const lane = inner.has(name) ? laneOf(input) : undefined;
      if (lane === undefined) clock.join();
      // A Task in a polling loop is entered first from its counter, then from its Wait:
      // every call after the first (per Map item) comes after the Wait's time.
      const key = `${name}|${lane ?? ''}`;
      const call = (calls.get(key) ?? 0) + 1;
      calls.set(key, call);
      const wait = waits.get(name);
      if (wait !== undefined && (wait.always || call > 1)) clock.advance(wait.seconds, lane);
      // A Task that is in no loop and runs again is being retried: its retrier's interval
      // passes first (backoff ignored).
      if (wait === undefined && call > 1) clock.advance(retryInterval(state), lane);
      path.push(name);
      tasks.push(name);
      timeline.push({ at: clock.now(lane), state: name });
      request.onTask?.(name, call);
      if (request.abortAt === name) {
        // The interpreter stops after the state that is running when it is aborted.
        abort?.();
        throw named('States.Aborted', `execution aborted at "${name}"`);
      }
      if (request.failAt?.includes(name)) {
        throw named(`${serviceName(resource)}.InjectedFault`, `fault injected at "${name}"`);
      }
      if (failOnce.delete(name)) {
        throw named(throttlingError(resource), `throttled once at "${name}"`);
      }
      const result = await serve(input, lane);
      // The call itself takes time: a function invocation or an API round trip.
      const isFunction = !resource.includes(':states:::') || resource.endsWith(':lambda:invoke');
      clock.advance(isFunction ? world.latency.lambdaInvoke : world.latency.apiCall, lane);
      return result;
    };
  }
  const zero = Object.fromEntries(
    [...states].filter(([, s]) => s.Type === 'Wait').map(([n]) => [n, 0]),
  );
  const noRetryWait = Object.fromEntries([...states.keys()].map((n) => [n, 0]));

  const machine = new StateMachine(definition, { validationOptions: { checkArn: false } });
  const restoreDate = clock.install();
  world.runningExecutions.add(executionArn);
  try {
    const execution = machine.run(request.input as never, {
      overrides: {
        taskResourceLocalHandlers: handlers as never,
        waitTimeOverrides: zero,
        retryIntervalOverrides: noRetryWait,
      },
      context: {
        Execution: { Id: executionArn, Name: executionName },
        StateMachine: {
          Id: `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${request.stateMachineName}`,
          Name: request.stateMachineName,
        },
        // The interpreter has no .waitForTaskToken: the local handler plays the operator and
        // the token is a stand-in.
        Task: { Token: 'local-task-token' },
        // The interpreter sets no $$.State; a getter keeps EnteredTime on virtual time.
        State: {
          get EnteredTime() {
            return clock.iso();
          },
        },
      },
    });
    abort = execution.abort;
    const logs = (async () => {
      for await (const event of execution.eventLogs) {
        if (
          event.type === 'StateEntered' &&
          !states.get(event.state.name)?.Type.startsWith('Task')
        ) {
          path.push(event.state.name);
        }
      }
    })();
    const result = { ...(await settle(execution.result, path, executionArn)), tasks, timeline };
    await logs.catch(() => undefined);
    world.executions.set(executionArn, {
      Status: result.status,
      Input: JSON.stringify(request.input),
      ...(result.error !== undefined ? { Error: result.error, Cause: result.cause } : {}),
    });
    return result;
  } finally {
    clock.join();
    world.runningExecutions.delete(executionArn);
    restoreDate();
  }
}

async function settle(
  result: Promise<unknown>,
  path: string[],
  executionArn: string,
): Promise<RunResult> {
  try {
    const output = (await result) as Record<string, unknown>;
    return { status: 'SUCCEEDED', output, path, executionArn, tasks: [], timeline: [] };
  } catch (err) {
    if (err instanceof ExecutionAbortedError)
      return { status: 'ABORTED', path, executionArn, tasks: [], timeline: [] };
    if (err instanceof ExecutionError) {
      const cause = (err as { cause?: { name?: string; message?: string } }).cause;
      return {
        status: 'FAILED',
        error: cause?.name,
        cause: cause?.message,
        path,
        executionArn,
        tasks: [],
        timeline: [],
      };
    }
    throw err;
  }
}

function retryInterval(state: unknown): number {
  const retry = (state as { Retry?: { IntervalSeconds?: number }[] }).Retry;
  return retry?.[0]?.IntervalSeconds ?? 1;
}

function laneOf(input: Record<string, unknown>): string {
  return String(input.UUID ?? input.QueueUrl ?? JSON.stringify(input));
}

function named(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

function serviceName(resource: string): string {
  const sdk = /aws-sdk:([a-z0-9]+):/.exec(resource)?.[1];
  if (sdk !== undefined) return sdk.charAt(0).toUpperCase() + sdk.slice(1);
  if (resource.includes(':sns:')) return 'Sns';
  if (resource.includes(':events:')) return 'EventBridge';
  return 'Lambda';
}

function throttlingError(resource: string): string {
  const service = serviceName(resource);
  return service === 'Lambda'
    ? 'Lambda.TooManyRequestsException'
    : `${service}.ThrottlingException`;
}

/** The handler for one Task, by the API its Resource calls. */
function serviceFor(
  resource: string,
  world: AwsWorld,
  executionArn: string,
): (input: Record<string, unknown>, lane?: string) => Promise<unknown> {
  const sdk = /aws-sdk:([a-z0-9]+):([A-Za-z]+)$/.exec(resource);
  if (sdk !== undefined && sdk !== null) {
    const [, service, action] = sdk;
    return async (input, lane) => {
      switch (`${service}:${action}`) {
        case 'rds:createBlueGreenDeployment':
          return world.createBlueGreenDeployment(input);
        case 'rds:describeBlueGreenDeployments':
          return world.describeBlueGreenDeployments(input);
        case 'rds:switchoverBlueGreenDeployment':
          return world.switchoverBlueGreenDeployment(input);
        case 'rds:deleteBlueGreenDeployment':
          return world.deleteBlueGreenDeployment(input);
        case 'lambda:updateEventSourceMapping':
          return world.updateEventSourceMapping(input, lane);
        case 'lambda:getEventSourceMapping':
          return world.getEventSourceMapping(input, lane);
        case 'sqs:getQueueAttributes':
          return world.getQueueAttributes(input);
        case 'sfn:describeExecution':
          return world.describeExecution(input);
        default:
          throw new Error(`the harness does not model ${service}:${action}`);
      }
    };
  }
  if (resource.startsWith('arn:aws:states:::sns:publish')) {
    return async (input) => {
      world.publish(input);
      if (resource.endsWith('.waitForTaskToken') && world.scenario.rejectApproval) {
        throw named('Rejected', 'the operator rejected the switchover');
      }
      return {};
    };
  }
  if (resource === 'arn:aws:states:::events:putEvents')
    return async (input) => world.putEvents(input);
  if (resource === 'arn:aws:states:::lambda:invoke') {
    // Invoked with the full response ({ Payload }) for a ResultSelector.
    return async (input) => ({
      StatusCode: 200,
      Payload: await callFunction(
        String(input.FunctionName),
        input.Payload as Record<string, unknown>,
        world,
        executionArn,
      ),
    });
  }
  // payloadResponseOnly: the Resource is the function and the input is its event.
  return async (input) => callFunction(resource, input, world, executionArn);
}

async function callFunction(
  arn: string,
  event: Record<string, unknown>,
  world: AwsWorld,
  executionArn: string,
): Promise<unknown> {
  const plan = event.plan as UpgradePlan;
  if (arn.includes('ValidateInput')) {
    return validateInput(event.input, event.defaults as never, String(event.startTime), {
      recovery: event.recovery === true,
    });
  }
  if (arn.includes('Preflight'))
    return world.preflight(plan, String(event.executionArn ?? executionArn));
  if (arn.includes('VerifyGreen'))
    return world.verifyGreen(plan, String(event.blueGreenDeploymentIdentifier));
  if (arn.includes('VerifyWriter')) return world.verifyWriter(plan);
  if (arn.includes('RestoreOldBlue')) return world.restoreOldBlue(plan);
  if (arn.includes('Inspect')) return world.inspect(plan, String(event.stoppedExecutionArn));
  if (arn.includes('Toggle')) return world.toggle(String(event.action));
  throw new Error(`the harness does not know the function ${arn}`);
}
