import type { Assumptions } from '../assumptions';
import { type FunctionCode, FunctionRuntime, type InvokeResult } from '../functions';
import { authorize, deniedOnlyForMissingTags } from '../iam';
import { mysqlModule } from '../mysql-model';
import { pgModule } from '../pg-model';
import { iamAction, sdkFor } from '../sdk';
import type { Simulation } from '../sim';
import type { FunctionSpec, MachineSpec, SynthesizedApp } from '../synthesized';
import {
  AwsError,
  coldStartSeconds,
  DEFAULT_LATENCIES,
  type Latencies,
  type ModelContext,
  type Principal,
  type Scenario,
  type Service,
  type WorldEvent,
} from './core';
import { AppPool } from './app-pool';
import { ElbModel } from './elb';
import { LambdaModel } from './lambda';
import { RdsModel } from './rds';
import { CloudWatchModel, EventsModel, SecretsModel, SfnModel, SnsModel } from './services';
import { SqsModel } from './sqs';

export interface WorldOptions {
  sim: Simulation;
  app: SynthesizedApp;
  code: Map<string, FunctionCode>;
  scenario?: Scenario;
  assumptions: Assumptions;
  /** Versions RDS lists as valid upgrade targets of the source's version. */
  validTargets?: string[];
  /** Starts a state machine execution when an EventBridge rule targets it. */
  startMachine?: (machine: MachineSpec, input: Record<string, unknown>) => void;
}

/** The paths people request, by what they are; the capture paths come from the capture function. */
export const APP_PATH = '/';

/**
 * The simulated AWS account: every service the upgrade touches, built from the synthesized
 * app, answering calls from the real functions and from the state machines' integrations,
 * each call checked against the caller's synthesized IAM policy. It keeps a timeline of
 * what happened, which the invariants read.
 */
/**
 * What a function is to the runbook, whatever its engine: each engine's writer check and
 * consumer is a function of its own (one driver per bundle), with the same part to play.
 */
export function functionRole(dir: string): string {
  return dir.replace(/-mysql$/, '');
}

/** Under idle-environments=reclaimed, an environment idle this long is gone (assumed). */
const IDLE_RECLAIMED_AFTER_SECONDS = 300;

export class World {
  readonly sim: Simulation;
  readonly app: SynthesizedApp;
  readonly latency: Latencies;
  readonly scenario: Scenario;
  readonly assumptions: Assumptions;
  readonly events: WorldEvent[] = [];
  readonly ctx: ModelContext;
  readonly rds: RdsModel;
  /** The web app's own database sessions. */
  readonly appPool: AppPool;
  readonly sqs: SqsModel;
  readonly elb: ElbModel;
  readonly lambda: LambdaModel;
  readonly sfn = new SfnModel();
  readonly sns: SnsModel;
  readonly eventBridge: EventsModel;
  readonly functions = new Map<string, FunctionRuntime>();
  /** Where the listener sends the app and the capture paths now. */
  routing: { page: boolean; captureDown: string[] } = { page: false, captureDown: [] };
  private readonly services: Record<string, Service>;
  /** CloudWatch: metrics and alarms; the load balancer's request counts go here. */
  readonly cloudWatch: CloudWatchModel;
  private readonly listenerArn: string;
  readonly capturePaths: Record<string, string>;

  constructor(options: WorldOptions) {
    this.sim = options.sim;
    this.app = options.app;
    this.scenario = options.scenario ?? {};
    this.latency = { ...DEFAULT_LATENCIES, ...this.scenario.latencies };
    this.assumptions = options.assumptions;
    const sim = this.sim;
    this.ctx = {
      now: () => sim.now(),
      // Every timed change (a reboot, a rename, a switchover step) may change who takes
      // writes, so the writers are looked at after each (RdsModel.noteWriters).
      after: (seconds, fn) =>
        void setTimeout(() => {
          fn();
          this.rds.noteWriters();
        }, seconds * 1000),
      sleep: (seconds) => sim.sleep(seconds),
      draw: () => sim.draw(),
      latency: this.latency,
      scenario: this.scenario,
      assumption: (name) => {
        const value = (this.assumptions as Record<string, string>)[name];
        if (value === undefined) throw new Error(`unknown assumption ${name}`);
        return value;
      },
      emit: (event) => this.events.push({ t: sim.now(), ...event } as WorldEvent),
    };
    const defaults = options.app.defaults;
    this.rds = new RdsModel(
      this.ctx,
      options.app,
      defaults.sourceIdentifier,
      options.validTargets ?? [defaults.targetEngineVersion],
    );
    this.appPool = new AppPool(this.ctx, this.rds);
    this.sqs = new SqsModel(this.ctx, options.app.queues);
    this.elb = new ElbModel(options.app.listeners, () => this.rulesChanged());
    const toggle = this.functionByDir('maintenance-toggle');
    const capture = this.functionByDir('capture');
    this.listenerArn = toggle.environment.LISTENER_ARN ?? '';
    this.capturePaths = JSON.parse(capture.environment.CAPTURE_ROUTES ?? '{}') as Record<
      string,
      string
    >;

    const pg = pgModule(this.rds, (s) => sim.sleep(s), this.latency.sqlQuery);
    const unreachable = pgModule(this.rds, (s) => sim.sleep(s), this.latency.sqlQuery, false);
    const mysqlOptions = { rds: this.rds, sleep: (s: number) => sim.sleep(s) };
    const mysql = mysqlModule({ ...mysqlOptions, latency: this.latency.sqlQuery });
    const mysqlUnreachable = mysqlModule({
      ...mysqlOptions,
      latency: this.latency.sqlQuery,
      reachable: false,
    });
    for (const spec of options.app.functions) {
      const code = options.code.get(spec.dir);
      if (code === undefined) continue;
      const runtime = new FunctionRuntime(spec, code, {
        sleep: (s) => sim.sleep(s),
        invokeOverhead: this.latency.invokeOverhead,
        coldStartSeconds: coldStartSeconds(code.bytes, this.latency),
        onColdStart: (seconds) =>
          this.ctx.emit({ kind: 'cold-start', function: spec.dir, seconds }),
        ...(options.assumptions['idle-environments'] === 'reclaimed'
          ? { reclaimIdleAfterSeconds: IDLE_RECLAIMED_AFTER_SECONDS }
          : {}),
        pg: spec.dir === 'verify-writer' && this.scenario.writerCheckUnreachable ? unreachable : pg,
        mysql:
          spec.dir === 'verify-writer-mysql' && this.scenario.writerCheckUnreachable
            ? mysqlUnreachable
            : mysql,
        sdk: sdkFor((...args) => this.call(...args), this.principal(spec.name, spec.roleArn)),
      });
      this.functions.set(spec.name, runtime);
      this.functions.set(spec.arn, runtime);
    }
    this.lambda = new LambdaModel(
      this.ctx,
      options.app.mappings,
      this.sqs,
      (name, payload) => this.invoke(name, payload),
      (name) => {
        const runtime = this.runtime(name);
        return {
          // The mapping's pollers run inside Lambda: no API round trip before the code runs,
          // and each batch's event is built for its invocation alone (lambda.ts).
          invoke: (event) => runtime.invoke(event, 0, true),
          statements: this.principal(runtime.spec.name, runtime.spec.roleArn).statements,
        };
      },
      (name) => this.runtime(name).spec.arn,
    );
    this.sns = new SnsModel(this.ctx);
    this.eventBridge = new EventsModel(this.ctx, options.app.eventRules, (arn, event) => {
      const machine = Object.values(options.app.machines).find((m) => m.arn === arn);
      if (machine !== undefined) options.startMachine?.(machine, event);
    });
    this.cloudWatch = new CloudWatchModel(
      this.rds,
      (options.app.alarms ?? []).filter(
        (a) =>
          !(this.scenario.trafficAlarmMissing === true && a.namespace === 'AWS/ApplicationELB'),
      ),
      () => sim.now(),
      () => (this.ctx.assumption('alarm-datapoint-lag') === 'three-minutes' ? 180_000 : 60_000),
    );
    this.services = {
      rds: this.rds.service,
      sqs: this.sqs.service,
      elasticloadbalancing: this.elb.service,
      lambda: this.lambda.service,
      states: this.sfn.service,
      sns: this.sns.service,
      events: this.eventBridge.service,
      cloudwatch: this.cloudWatch.service,
      secretsmanager: new SecretsModel(options.app.secrets).service,
    };
    this.arrange();
    this.rds.snapshotGroups();
    this.rulesChanged();
  }

  /** The account as the scenario finds it before the run. */
  private arrange(): void {
    const s = this.scenario;
    const defaults = this.app.defaults;
    if (s.badWriter) {
      // A mistake in green's parameter group: the new writer will refuse writes.
      // (For Aurora, green's DB cluster parameter group.)
      const group =
        this.rds.parameterGroups.get(defaults.targetParameterGroupName) ??
        this.rds.aurora.parameterGroups.get(defaults.targetParameterGroupName);
      if (group !== undefined) group.parameters[this.rds.engineModel.readOnlyParameter] = '1';
    }
    if (s.existingDeployment) {
      const blue = this.rds.isCluster ? this.rds.aurora.named(this.rds.source) : this.rds.writer();
      if (blue !== undefined) {
        this.rds.deployments.set('bgd-someone', {
          id: 'bgd-someone',
          name: 'someone-elses',
          tags: [],
          ...(this.rds.isCluster ? { level: 'cluster', pairs: [] } : {}),
          blue: blue.resourceId,
          green: 'db-missing',
          status: 'AVAILABLE',
          createdAt: this.sim.now(),
        } as never);
      }
    }
    if (s.otherExecutionRunning) {
      const arn = `${this.app.machines.upgrade.arn.replace(':stateMachine:', ':execution:')}:someone-else`;
      this.sfn.executions.set(arn, {
        executionArn: arn,
        stateMachineArn: this.app.machines.upgrade.arn,
        name: 'someone-else',
        status: 'RUNNING',
        input: '{}',
        // Started an hour before the rehearsal's run, so single flight lets that one go on.
        startDate: this.sim.now() - 3_600_000,
      });
    }
  }

  functionByDir(dir: string): FunctionSpec {
    const f = this.app.functions.find((x) => x.dir === dir);
    if (f === undefined) throw new Error(`the app has no ${dir} function`);
    return f;
  }

  principal(name: string, roleArn: string): Principal {
    const role = this.app.roles.get(roleArn);
    if (role === undefined)
      throw new Error(`${name} runs as ${roleArn}, which the app does not define`);
    return { name, roleArn, statements: role.statements };
  }

  machinePrincipal(machine: MachineSpec): Principal {
    return this.principal(machine.name, machine.roleArn);
  }

  runtime(nameOrArn: string): FunctionRuntime {
    const bare = nameOrArn.replace(/:(\$LATEST|\d+)$/, '');
    const r = this.functions.get(bare) ?? this.functions.get(bare.split(':').at(-1) ?? '');
    if (r === undefined) {
      throw new AwsError('ResourceNotFoundException', `Function not found: ${nameOrArn}`, 404);
    }
    return r;
  }

  /** Starts the mappings' pollers. */
  start(): void {
    this.lambda.start();
  }

  /**
   * One API call, as a function or a state machine makes it: a round trip, then IAM, then
   * the operation. A call the caller's policy does not allow fails as AWS fails it.
   */
  async call(
    principal: Principal,
    service: string,
    operation: string,
    input: Record<string, unknown>,
  ): Promise<unknown> {
    const op = this.services[service]?.[operation];
    if (op === undefined)
      throw new Error(`the rehearsal does not model ${iamAction(service, operation)}`);
    await this.sim.sleep(this.latency.apiCall);
    for (const request of op.iam(input)) {
      // A resource that is gone: the service may answer NotFound before it reads the tags a
      // condition names, or the condition may see no tags and deny (an assumption).
      const notFoundFirst =
        request.resourceMissing === true &&
        this.ctx.assumption('tag-condition-on-missing-resource') === 'not-found';
      const decision = authorize(principal.statements, request, {
        ignoreResourceTags: notFoundFirst,
      });
      if (!decision.allowed) {
        const missingTags = deniedOnlyForMissingTags(principal.statements, request);
        this.ctx.emit({
          kind: 'access-denied',
          principal: principal.name,
          action: request.action,
          resource: request.resource,
          ...(missingTags ? { missingResourceTags: true } : {}),
        });
        throw accessDenied(service, principal, request.action, request.resource);
      }
    }
    const result = op.run(input);
    if (service === 'rds') this.rds.noteWriters();
    return result;
  }

  /** Runs a function synchronously and notes what the checks concluded. */
  async invoke(nameOrArn: string, payload: unknown): Promise<InvokeResult> {
    const runtime = this.runtime(nameOrArn);
    const result = await runtime.invoke(payload);
    const role = functionRole(runtime.spec.dir);
    if (['verify-green', 'verify-writer', 'restore-old-blue', 'preflight'].includes(role)) {
      this.ctx.emit({
        kind: 'function-result',
        // By its part in the runbook: the invariants read the writer check's results.
        function: role,
        result: result.ok ? result.payload : result,
      });
    }
    return result;
  }

  private rulesChanged(): void {
    const page = this.elb.route(this.listenerArn, { path: APP_PATH }).type === 'fixed-response';
    const captureDown = Object.values(this.capturePaths).filter(
      (path) => this.elb.route(this.listenerArn, { path }).type !== 'forward',
    );
    const changed =
      page !== this.routing.page || captureDown.join() !== this.routing.captureDown.join();
    this.routing = { page, captureDown };
    if (changed) this.ctx.emit({ kind: 'routing', page, captureDown });
  }

  /** The Step Functions status-change event for an execution, to EventBridge. */
  executionChanged(machine: MachineSpec, executionArn: string, status: string): void {
    this.ctx.emit({ kind: 'execution', arn: executionArn, status });
    this.eventBridge.deliver({
      source: 'aws.states',
      'detail-type': 'Step Functions Execution Status Change',
      detail: { executionArn, stateMachineArn: machine.arn, status },
    });
  }
}

/** AccessDenied in each API's own words: the code the SDK puts in err.name. */
function accessDenied(
  service: string,
  principal: Principal,
  action: string,
  resource: string,
): AwsError {
  // Each API's own code: https://docs.aws.amazon.com/sns/latest/api/CommonErrors.html and
  // each service's Common Errors page.
  const code =
    service === 'sns'
      ? 'AuthorizationError'
      : ['lambda', 'states', 'secretsmanager', 'events'].includes(service)
        ? 'AccessDeniedException'
        : 'AccessDenied';
  const role = principal.roleArn.split('/').at(-1);
  return new AwsError(
    code,
    `User: arn:aws:sts::${principal.roleArn.split(':')[4]}:assumed-role/${role}/${principal.name} is not authorized to perform: ${action} on resource: ${resource} because no identity-based policy allows the ${action} action`,
    403,
  );
}
