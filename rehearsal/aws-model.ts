import type { UpgradePlan } from '../lambda/shared/upgrade-plan';
import { decide, EXECUTION_TAG } from '../lambda/watchdog-inspect/inspect';
import { ACCOUNT, REGION } from './definition';
import type { VirtualClock } from './virtual-clock';

/**
 * A small in-memory model of the AWS resources an upgrade touches: the RDS instances and
 * blue/green deployments, the consumers' event source mappings, the maintenance rules, the
 * buffer queues, SNS and EventBridge. Operations answer in the shapes of the real APIs, and
 * things that take time on AWS (building green, switching over, disabling a mapping) take
 * virtual time here.
 */

/** Latencies, in seconds. */
export interface Latencies {
  /** CreateBlueGreenDeployment until AVAILABLE. Assumed: tens of minutes for a small instance. */
  greenBuild: number;
  /**
   * SwitchoverBlueGreenDeployment until SWITCHOVER_COMPLETED. AWS: "typically under a
   * minute", depending on the workload.
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html
   */
  switchover: number;
  /** DeleteBlueGreenDeployment until the deployment is gone. Assumed. */
  deleteDeployment: number;
  /** UpdateEventSourceMapping (Enabled=false) until State is Disabled. Assumed. */
  disableMapping: number;
  /** A ModifyDBInstance rename or a reboot until the instance is available. Assumed. */
  modifyInstance: number;
  /**
   * One Lambda invocation from Step Functions, including its own AWS calls. Assumed: a warm
   * Node.js function making a few SDK calls in one region.
   */
  lambdaInvoke: number;
  /** One SDK integration call (RDS, Lambda, SQS, SNS, EventBridge). Assumed: a regional API round trip plus Step Functions' own overhead. */
  apiCall: number;
}

export const DEFAULT_LATENCIES: Latencies = {
  greenBuild: 1800,
  switchover: 30,
  deleteDeployment: 120,
  disableMapping: 3,
  modifyInstance: 60,
  lambdaInvoke: 1,
  apiCall: 0.2,
};

export interface Scenario {
  latencies?: Partial<Latencies>;
  /** Green never becomes AVAILABLE. */
  greenStuck?: boolean;
  /** Green becomes INVALID_CONFIGURATION instead of AVAILABLE. */
  greenInvalid?: boolean;
  /** CreateBlueGreenDeployment succeeds, but its answer is lost once (a retry then collides). */
  createAnswerLost?: boolean;
  /** The first N checks of the new writer fail (say, a stale DNS answer), then it is fine. */
  writerFlakyChecks?: number;
  /** The switchover never finishes: neither completed nor failed. */
  switchoverHangs?: boolean;
  /** The switchover fails (RDS rolls it back). */
  switchoverFails?: boolean;
  /** The new writer fails verification after the switchover. */
  badWriter?: boolean;
  /** The operator rejects the approval request. */
  rejectApproval?: boolean;
  /** Preflight problems on the source. */
  noBackups?: boolean;
  managedPassword?: boolean;
  parameterGroupPending?: boolean;
  /** Another blue/green deployment already exists for the source. */
  existingDeployment?: boolean;
  /** Another upgrade execution is already running. */
  otherExecutionRunning?: boolean;
}

export class AwsError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface Instance {
  identifier: string;
  engineVersion: string;
  status: string;
  busyUntil: number;
  readOnly: boolean;
  backupRetention: number;
  managedPassword: boolean;
  parameterApplyStatus: string;
}

interface Deployment {
  id: string;
  tags: { Key: string; Value: string }[];
  name: string;
  source: string;
  target: string;
  greenIdentifier: string;
  createdAt: number;
  switchoverAt?: number;
  switchoverTimeout?: number;
  switchedOver?: boolean;
  switchoverFailed?: boolean;
  deletingUntil?: number;
  deleteTarget?: boolean;
}

interface Mapping {
  uuid: string;
  name: string;
  enabled: boolean;
  settledAt: number;
}

export interface WorldOptions {
  clock: VirtualClock;
  plan: Omit<UpgradePlan, 'deadline' | 'dryRun' | 'requireApproval' | 'switchoverMaxChecks'>;
  scenario?: Scenario;
  validTargets?: string[];
}

export class AwsWorld {
  readonly clock: VirtualClock;
  readonly latency: Latencies;
  readonly scenario: Scenario;
  readonly source: string;
  readonly originalVersion: string;
  readonly instances = new Map<string, Instance>();
  readonly deployments = new Map<string, Deployment>();
  readonly mappings = new Map<string, Mapping>();
  readonly validTargets: string[];
  maintenance = false;
  /** [virtual ms, on/off] each time the maintenance rules changed. */
  readonly maintenanceLog: { at: number; on: boolean }[] = [];
  readonly notifications: { at: number; subject: string; message: unknown }[] = [];
  readonly events: { at: number; detail: unknown }[] = [];
  /** Each consumer resume, with the writer it would write to. */
  readonly resumes: { at: number; uuid: string; writerVersion: string; writerReadOnly: boolean }[] =
    [];
  readonly switchovers: { startedAt: number; endedAt?: number }[] = [];
  /** Each consumer pause. */
  readonly pauses: { at: number; uuid: string }[] = [];
  /** Other executions of the upgrade machine that are RUNNING. */
  readonly runningExecutions = new Set<string>();
  /** How each execution run in this world ended, for sfn:DescribeExecution. */
  readonly executions = new Map<
    string,
    { Status: string; Input: string; Error?: string; Cause?: string }
  >();
  private nextId = 1;
  private answerLost = false;
  private writerChecks = 0;

  constructor(options: WorldOptions) {
    this.clock = options.clock;
    this.scenario = options.scenario ?? {};
    this.latency = { ...DEFAULT_LATENCIES, ...this.scenario.latencies };
    this.source = options.plan.sourceIdentifier;
    this.originalVersion = options.plan.currentEngineVersion;
    this.validTargets = options.validTargets ?? [options.plan.targetEngineVersion];
    this.instances.set(this.source, {
      identifier: this.source,
      engineVersion: this.originalVersion,
      status: 'available',
      busyUntil: 0,
      readOnly: false,
      backupRetention: this.scenario.noBackups ? 0 : 7,
      managedPassword: this.scenario.managedPassword ?? false,
      parameterApplyStatus: this.scenario.parameterGroupPending ? 'pending-reboot' : 'in-sync',
    });
    for (const m of options.plan.mappings) {
      this.mappings.set(m.uuid, { uuid: m.uuid, name: m.name, enabled: true, settledAt: 0 });
    }
    if (this.scenario.existingDeployment) {
      this.deployments.set('bgd-existing', {
        id: 'bgd-existing',
        tags: [],
        name: 'someone-elses',
        source: this.arn(this.source),
        target: options.plan.targetEngineVersion,
        greenIdentifier: `${this.source}-green-zzzzzz`,
        createdAt: this.clock.now(),
      });
    }
    if (this.scenario.otherExecutionRunning) {
      this.runningExecutions.add(
        `arn:aws:states:${REGION}:${ACCOUNT}:execution:QuietUpgrade-Upgrade:other`,
      );
    }
  }

  arn(identifier: string): string {
    return `arn:aws:rds:${REGION}:${ACCOUNT}:db:${identifier}`;
  }

  /** The instance named like the source: the writer applications connect to. */
  writer(): Instance | undefined {
    this.tick();
    return this.instances.get(this.source);
  }

  // ------------------------------------------------------------------ RDS blue/green
  createBlueGreenDeployment(input: Record<string, unknown>) {
    this.tick();
    const source = String(input.Source);
    if ([...this.deployments.values()].some((d) => d.source === source && !d.switchedOver)) {
      throw new AwsError(
        'Rds.BlueGreenDeploymentAlreadyExistsException',
        'a deployment exists for the source',
      );
    }
    const name = String(input.BlueGreenDeploymentName);
    if ([...this.deployments.values()].some((d) => d.name === name)) {
      throw new AwsError('Rds.BlueGreenDeploymentAlreadyExistsException', `${name} exists`);
    }
    const id = `bgd-${String(this.nextId++).padStart(6, '0')}`;
    const greenIdentifier = `${this.source}-green-${id.slice(-6)}`;
    this.deployments.set(id, {
      id,
      tags: (input.Tags as { Key: string; Value: string }[] | undefined) ?? [],
      name,
      source,
      target: String(input.TargetEngineVersion),
      greenIdentifier,
      createdAt: this.clock.now(),
    });
    this.instances.set(greenIdentifier, {
      identifier: greenIdentifier,
      engineVersion: String(input.TargetEngineVersion),
      status: 'creating',
      busyUntil: this.clock.now() + this.latency.greenBuild * 1000,
      readOnly: true,
      backupRetention: 7,
      managedPassword: false,
      parameterApplyStatus: 'in-sync',
    });
    if (this.scenario.createAnswerLost && !this.answerLost) {
      // The deployment exists, but the caller never hears so (a timeout or a 5xx).
      this.answerLost = true;
      throw new AwsError('Rds.InternalFailure', 'the response was lost');
    }
    return {
      BlueGreenDeployment: {
        BlueGreenDeploymentIdentifier: id,
        BlueGreenDeploymentName: name,
        Status: 'PROVISIONING',
      },
    };
  }

  status(d: Deployment): string {
    const now = this.clock.now();
    if (d.deletingUntil !== undefined) return 'DELETING';
    if (d.switchoverFailed) return 'SWITCHOVER_FAILED';
    if (d.switchedOver) return 'SWITCHOVER_COMPLETED';
    if (d.switchoverAt !== undefined) return 'SWITCHOVER_IN_PROGRESS';
    if (this.scenario.greenStuck) return 'PROVISIONING';
    if (now < d.createdAt + this.latency.greenBuild * 1000) return 'PROVISIONING';
    return this.scenario.greenInvalid ? 'INVALID_CONFIGURATION' : 'AVAILABLE';
  }

  describeBlueGreenDeployments(input: Record<string, unknown>) {
    this.tick();
    const filters = input.Filters as { Name: string; Values: string[] }[] | undefined;
    const byName = filters?.find((f) => f.Name === 'blue-green-deployment-name');
    if (byName !== undefined) {
      const found = [...this.deployments.values()].filter((d) => byName.Values.includes(d.name));
      return { BlueGreenDeployments: found.map((d) => this.describe(d)) };
    }
    const d = this.deployments.get(String(input.BlueGreenDeploymentIdentifier));
    if (d === undefined) {
      throw new AwsError(
        'Rds.BlueGreenDeploymentNotFoundException',
        'BlueGreenDeploymentNotFoundFault',
      );
    }
    return { BlueGreenDeployments: [this.describe(d)] };
  }

  private describe(d: Deployment) {
    return {
      BlueGreenDeploymentIdentifier: d.id,
      BlueGreenDeploymentName: d.name,
      Source: d.source,
      Status: this.status(d),
      TagList: d.tags,
      SwitchoverDetails: [{ SourceMember: d.source, TargetMember: this.arn(d.greenIdentifier) }],
    };
  }

  switchoverBlueGreenDeployment(input: Record<string, unknown>) {
    this.tick();
    const d = this.deployments.get(String(input.BlueGreenDeploymentIdentifier));
    if (d === undefined)
      throw new AwsError('Rds.BlueGreenDeploymentNotFoundException', 'not found');
    if (this.status(d) !== 'AVAILABLE') {
      throw new AwsError(
        'Rds.InvalidBlueGreenDeploymentStateException',
        `status is ${this.status(d)}`,
      );
    }
    d.switchoverAt = this.clock.now();
    d.switchoverTimeout = Number(input.SwitchoverTimeout ?? 300);
    this.switchovers.push({ startedAt: d.switchoverAt });
    return {
      BlueGreenDeployment: {
        BlueGreenDeploymentIdentifier: d.id,
        Status: 'SWITCHOVER_IN_PROGRESS',
      },
    };
  }

  deleteBlueGreenDeployment(input: Record<string, unknown>) {
    this.tick();
    const d = this.deployments.get(String(input.BlueGreenDeploymentIdentifier));
    if (d === undefined)
      throw new AwsError('Rds.BlueGreenDeploymentNotFoundException', 'not found');
    const deleteTarget = input.DeleteTarget === true;
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteBlueGreenDeployment.html
    if (deleteTarget && d.switchedOver) {
      throw new AwsError(
        'Rds.InvalidParameterCombinationException',
        'DeleteTarget after switchover',
      );
    }
    if (this.status(d) === 'SWITCHOVER_IN_PROGRESS') {
      throw new AwsError('Rds.InvalidBlueGreenDeploymentStateException', 'switchover in progress');
    }
    d.deleteTarget = deleteTarget;
    d.deletingUntil = this.clock.now() + this.latency.deleteDeployment * 1000;
    return { BlueGreenDeployment: { BlueGreenDeploymentIdentifier: d.id, Status: 'DELETING' } };
  }

  /** Moves time-driven state forward: builds, switchovers, deletions, renames. */
  tick(): void {
    const now = this.clock.now();
    for (const d of this.deployments.values()) {
      if (
        d.switchoverAt !== undefined &&
        !d.switchedOver &&
        !d.switchoverFailed &&
        !this.scenario.switchoverHangs
      ) {
        const took = this.latency.switchover;
        const timeout = d.switchoverTimeout ?? 300;
        if (this.scenario.switchoverFails || took > timeout) {
          if (now >= d.switchoverAt + Math.min(took, timeout) * 1000) {
            d.switchoverFailed = true;
            d.switchoverAt = undefined;
            this.endSwitchover(now);
          }
        } else if (now >= d.switchoverAt + took * 1000) {
          const endedAt = d.switchoverAt + took * 1000;
          this.applySwitchover(d);
          this.endSwitchover(endedAt);
        }
      }
      if (d.deletingUntil !== undefined && now >= d.deletingUntil) {
        if (d.deleteTarget) this.instances.delete(d.greenIdentifier);
        this.deployments.delete(d.id);
      }
    }
    for (const i of this.instances.values()) {
      if (i.status !== 'available' && now >= i.busyUntil) i.status = 'available';
    }
  }

  private endSwitchover(at: number): void {
    const last = this.switchovers.at(-1);
    if (last !== undefined && last.endedAt === undefined) last.endedAt = at;
  }

  /**
   * What a switchover leaves: green takes the source's name, and old blue is renamed
   * "-old1" and left read-only.
   * https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-after
   */
  private applySwitchover(d: Deployment): void {
    const blue = this.instances.get(this.source);
    const green = this.instances.get(d.greenIdentifier);
    if (blue === undefined || green === undefined)
      throw new Error('switchover without blue or green');
    this.instances.delete(this.source);
    this.instances.delete(d.greenIdentifier);
    this.instances.set(`${this.source}-old1`, {
      ...blue,
      identifier: `${this.source}-old1`,
      readOnly: true,
    });
    this.instances.set(this.source, { ...green, identifier: this.source, readOnly: false });
    d.switchedOver = true;
    d.switchoverAt = undefined;
  }

  // ------------------------------------------------------------------ what traffic sees
  /** Whether the maintenance page was on at virtual time t. */
  maintenanceAt(t: number): boolean {
    let on = false;
    for (const change of this.maintenanceLog) if (change.at <= t) on = change.on;
    return on;
  }

  /** Whether requests to the capture paths reach the capture function. */
  captureRoutesOn(): boolean {
    return this.rules.includes('capture-1');
  }

  /** Whether the writer takes writes: available, not read-only, no switchover under way. */
  writableAt(_t: number): boolean {
    const writer = this.instances.get(this.source);
    if (writer === undefined || writer.readOnly || writer.status !== 'available') return false;
    return ![...this.deployments.values()].some((d) => this.status(d) === 'SWITCHOVER_IN_PROGRESS');
  }

  /** Whether a deployment is still being deleted. */
  deleting(): boolean {
    return [...this.deployments.values()].some((d) => d.deletingUntil !== undefined);
  }

  /** Every mapping is on (Enabled or Enabling). */
  mappingsEnabled(): boolean {
    return [...this.mappings.values()].every((m) => m.enabled);
  }

  /** Whether the consumer of a buffer polls at virtual time t. */
  consumingAt(buffer: string, t: number): boolean {
    const m = [...this.mappings.values()].find((x) => x.name === buffer);
    if (m === undefined) return false;
    // Disabling still polls until Disabled; Enabling polls once Enabled.
    return m.enabled ? t >= m.settledAt : t < m.settledAt;
  }

  // ------------------------------------------------------------------ Lambda mappings
  updateEventSourceMapping(input: Record<string, unknown>, lane?: string) {
    const m = this.mapping(input.UUID);
    // A mapping that is still changing state refuses updates.
    // https://docs.aws.amazon.com/lambda/latest/api/API_UpdateEventSourceMapping.html#API_UpdateEventSourceMapping_Errors
    if (this.clock.now(lane) < m.settledAt) {
      throw new AwsError(
        'Lambda.ResourceInUseException',
        `mapping ${m.uuid} is ${this.mappingState(m, lane)}`,
      );
    }
    const enabled = input.Enabled === true;
    m.enabled = enabled;
    m.settledAt = this.clock.now(lane) + (enabled ? 0 : this.latency.disableMapping * 1000);
    if (!enabled) this.pauses.push({ at: this.clock.now(lane), uuid: m.uuid });
    if (enabled) {
      const writer = this.writer();
      this.resumes.push({
        at: this.clock.now(lane),
        uuid: m.uuid,
        writerVersion: writer?.engineVersion ?? 'none',
        writerReadOnly: writer?.readOnly ?? true,
      });
    }
    return { UUID: m.uuid, State: enabled ? 'Enabling' : 'Disabling' };
  }

  getEventSourceMapping(input: Record<string, unknown>, lane?: string) {
    const m = this.mapping(input.UUID);
    return { UUID: m.uuid, State: this.mappingState(m, lane) };
  }

  mappingState(m: Mapping, lane?: string): string {
    const settled = this.clock.now(lane) >= m.settledAt;
    if (m.enabled) return settled ? 'Enabled' : 'Enabling';
    return settled ? 'Disabled' : 'Disabling';
  }

  private mapping(uuid: unknown): Mapping {
    const m = this.mappings.get(String(uuid));
    if (m === undefined)
      throw new AwsError('Lambda.ResourceNotFoundException', `no mapping ${String(uuid)}`);
    return m;
  }

  // ------------------------------------------------------------------ the maintenance toggle
  /**
   * The listener's maintenance rules, as the toggle leaves them: created bypass and capture
   * first and the page last, deleted in the reverse order (lambda/maintenance-toggle).
   */
  readonly rules: string[] = [];
  static readonly RULES = ['bypass-header', 'capture-1', 'maintenance-page'];

  toggle(action: string) {
    if (action === 'on') {
      for (const rule of AwsWorld.RULES) if (!this.rules.includes(rule)) this.rules.push(rule);
    } else if (action === 'off') {
      for (const rule of [...AwsWorld.RULES].reverse()) {
        const i = this.rules.indexOf(rule);
        if (i >= 0) this.rules.splice(i, 1);
      }
    }
    const on = this.rules.includes('maintenance-page');
    if (this.maintenance !== on) this.maintenanceLog.push({ at: this.clock.now(), on });
    this.maintenance = on;
    return {
      maintenance: on ? 'on' : this.rules.length > 0 ? 'partial' : 'off',
      rules: this.rules.map((name) => ({ name })),
    };
  }

  // ------------------------------------------------------------------ SQS, SNS, EventBridge
  /** Set by the rehearsal: messages waiting in the queue at this URL. */
  queueDepth: (queueUrl: string) => number = () => 0;

  getQueueAttributes(input: Record<string, unknown>) {
    return {
      Attributes: {
        ApproximateNumberOfMessages: String(this.queueDepth(String(input.QueueUrl))),
        ApproximateNumberOfMessagesNotVisible: '0',
      },
    };
  }

  publish(input: Record<string, unknown>) {
    this.notifications.push({
      at: this.clock.now(),
      subject: String(input.Subject),
      message: input.Message,
    });
    return { MessageId: `msg-${this.notifications.length}` };
  }

  putEvents(input: Record<string, unknown>) {
    this.events.push({ at: this.clock.now(), detail: input.Entries });
    return { FailedEntryCount: 0, Entries: [{ EventId: `evt-${this.events.length}` }] };
  }

  describeExecution(input: Record<string, unknown>) {
    const record = this.executions.get(String(input.ExecutionArn));
    if (record === undefined)
      throw new AwsError('Sfn.ExecutionDoesNotExistException', 'no such execution');
    return { ExecutionArn: input.ExecutionArn, ...record };
  }

  // ------------------------------------------------------------------ the check functions
  /** The preflight function's checks, against this world. */
  preflight(plan: UpgradePlan, executionArn: string) {
    this.tick();
    const failures: string[] = [];
    const source = this.instances.get(plan.sourceIdentifier);
    if (source === undefined) failures.push(`source instance ${plan.sourceIdentifier} not found`);
    else {
      if (source.status !== 'available') failures.push(`source is ${source.status}, not available`);
      if (!this.validTargets.includes(plan.targetEngineVersion)) {
        failures.push(
          `${plan.targetEngineVersion} is not a valid upgrade target from ${source.engineVersion}`,
        );
      }
      if (source.backupRetention === 0) failures.push('automated backups are off');
      if (source.parameterApplyStatus !== 'in-sync') {
        failures.push(`the parameter group is ${source.parameterApplyStatus}, not in-sync`);
      }
      if (source.managedPassword) failures.push('the master password is managed by RDS');
    }
    if ([...this.deployments.values()].some((d) => d.source === plan.sourceArn)) {
      failures.push('another blue/green deployment exists for the source');
    }
    if ([...this.runningExecutions].some((e) => e !== executionArn)) {
      failures.push('another upgrade execution is running');
    }
    return {
      passed: failures.length === 0,
      failures,
      checks: [],
      source: source
        ? {
            identifier: source.identifier,
            arn: this.arn(source.identifier),
            engineVersion: source.engineVersion,
          }
        : null,
    };
  }

  verifyGreen(plan: UpgradePlan, id: string) {
    this.tick();
    const d = this.deployments.get(id);
    const green = d ? this.instances.get(d.greenIdentifier) : undefined;
    const failures: string[] = [];
    if (d === undefined || this.status(d) !== 'AVAILABLE') failures.push('green is not AVAILABLE');
    if (green?.engineVersion !== plan.targetEngineVersion)
      failures.push('green runs the wrong version');
    return {
      passed: failures.length === 0,
      failures,
      green: green ? { identifier: green.identifier, engineVersion: green.engineVersion } : null,
    };
  }

  verifyWriter(plan: UpgradePlan) {
    const writer = this.writer();
    const failures: string[] = [];
    if (writer === undefined) failures.push(`no instance named ${plan.sourceIdentifier}`);
    else {
      if (writer.engineVersion !== plan.targetEngineVersion)
        failures.push(`writer runs ${writer.engineVersion}`);
      if (writer.readOnly) failures.push('writer is read-only');
      if (writer.status !== 'available') failures.push(`writer is ${writer.status}`);
    }
    if (this.scenario.badWriter) failures.push('the new writer refused a test write');
    if ((this.scenario.writerFlakyChecks ?? 0) > this.writerChecks++) {
      failures.push('the writer endpoint still resolved to the old instance');
    }
    return {
      passed: failures.length === 0,
      failures,
      writer: writer
        ? {
            identifier: writer.identifier,
            engineVersion: writer.engineVersion,
            writable: !writer.readOnly,
          }
        : null,
    };
  }

  /** One convergent step of restoring old blue as the writer (see lambda/restore-old-blue). */
  restoreOldBlue(plan: UpgradePlan) {
    this.tick();
    const s = plan.sourceIdentifier;
    const named = this.instances.get(s);
    const old = this.instances.get(`${s}-old1`);
    const busy = (i: Instance) => i.status !== 'available';
    if (named !== undefined && named.engineVersion === plan.targetEngineVersion) {
      if (busy(named)) return { done: false, step: 'wait', detail: `${s} is ${named.status}` };
      this.instances.delete(s);
      this.instances.set(`${s}-failed1`, {
        ...named,
        identifier: `${s}-failed1`,
        ...this.busyFor(),
      });
      return { done: false, step: 'rename-failed-writer', detail: `${s} -> ${s}-failed1` };
    }
    if (named === undefined && old !== undefined) {
      if (busy(old)) return { done: false, step: 'wait', detail: `${s}-old1 is ${old.status}` };
      if (old.readOnly) {
        Object.assign(old, { readOnly: false, ...this.busyFor('rebooting') });
        return {
          done: false,
          step: 'make-old-blue-writable',
          detail: 'default_transaction_read_only=0, reboot',
        };
      }
      this.instances.delete(`${s}-old1`);
      this.instances.set(s, { ...old, identifier: s, ...this.busyFor() });
      return { done: false, step: 'rename-old-blue', detail: `${s}-old1 -> ${s}` };
    }
    if (named !== undefined && named.engineVersion === plan.currentEngineVersion) {
      if (busy(named)) return { done: false, step: 'wait', detail: `${s} is ${named.status}` };
      return {
        done: true,
        step: 'restored',
        detail: `${s} runs ${named.engineVersion} and is writable`,
      };
    }
    throw new AwsError('RestoreImpossible', `found neither ${s} on the new version nor ${s}-old1`);
  }

  private busyFor(status = 'renaming') {
    return { status, busyUntil: this.clock.now() + this.latency.modifyInstance * 1000 };
  }

  /** What the watchdog's inspect function reads, from this world; the decision is the real one. */
  inspect(plan: UpgradePlan, stoppedExecutionArn: string) {
    this.tick();
    const stoppedName = stoppedExecutionArn.split(':').at(-1);
    const writer = this.writer();
    return decide(plan, {
      maintenance: this.maintenance ? 'on' : 'off',
      mappings: [...this.mappings.values()].map((m) => ({
        uuid: m.uuid,
        state: this.mappingState(m),
      })),
      deployments: [...this.deployments.values()]
        .filter((d) => d.source === plan.sourceArn)
        .map((d) => ({
          id: d.id,
          status: this.status(d),
          owned: d.tags.some((t) => t.Key === EXECUTION_TAG && t.Value === stoppedName),
        })),
      writer: writer
        ? {
            identifier: writer.identifier,
            engineVersion: writer.engineVersion,
            status: writer.status,
          }
        : null,
      // ListExecutions(RUNNING) of the stopped run's state machine.
      liveRuns: [...this.runningExecutions].filter(
        (e) =>
          e !== stoppedExecutionArn &&
          e.startsWith(stoppedExecutionArn.slice(0, stoppedExecutionArn.lastIndexOf(':') + 1)),
      ),
    });
  }
}
