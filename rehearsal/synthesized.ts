import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type * as Cdk from 'aws-cdk-lib';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import type { PlanDefaults } from '../lambda/validate-input/validate';
import type * as LibApp from '../lib/app';
import type * as LibConfig from '../lib/config';
import type * as LibNodeFunction from '../lib/constructs/node-function';
import cdkJson from '../cdk.json';
import { hashInputs, readEntry, writeEntry } from './cache';
import type { Statement } from './iam';

/** The account and region the rehearsal's placeholders use. */
export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';

/**
 * The synthesized app, read back as the AWS resources a deploy would create: every
 * CloudFormation reference resolved to the physical name or ARN the rehearsal gives that
 * resource, the same way everywhere, so a role's policy, a state machine's definition and a
 * function's environment name one resource with one string.
 */
export interface SynthesizedApp {
  functions: FunctionSpec[];
  /** Identity policies by role ARN. */
  roles: Map<string, RoleSpec>;
  queues: QueueSpec[];
  mappings: MappingSpec[];
  machines: { upgrade: MachineSpec; watchdog: MachineSpec };
  eventRules: EventRuleSpec[];
  listeners: ListenerSpec[];
  instances: DbInstanceSpec[];
  parameterGroups: ParameterGroupSpec[];
  /** Aurora DB clusters (their DB instances are in `instances`, naming the cluster). */
  clusters: DbClusterSpec[];
  /** DB cluster parameter groups (Aurora): a namespace of their own, as in RDS. */
  clusterParameterGroups: ParameterGroupSpec[];
  secrets: SecretSpec[];
  /** CloudWatch metric alarms (the quiet gate reads the traffic alarm's state). */
  alarms: AlarmSpec[];
  topics: string[];
  /** The deploy-time defaults written into the upgrade definition. */
  defaults: PlanDefaults;
}

export interface AlarmSpec {
  name: string;
  namespace: string;
  metricName: string;
  dimensions: Record<string, string>;
  periodSeconds: number;
  threshold: number;
  comparison: string;
  evaluationPeriods: number;
  datapointsToAlarm: number;
  treatMissingData: string;
}

export interface FunctionSpec {
  stack: string;
  logicalId: string;
  name: string;
  arn: string;
  /** The folder under lambda/ its code comes from. */
  dir: string;
  environment: Record<string, string>;
  roleArn: string;
  timeoutSeconds: number;
}

export interface RoleSpec {
  arn: string;
  name: string;
  statements: Statement[];
}

export interface QueueSpec {
  logicalId: string;
  name: string;
  url: string;
  arn: string;
  visibilityTimeoutSeconds: number;
  retentionSeconds: number;
  redrive?: { deadLetterTargetArn: string; maxReceiveCount: number };
}

export interface MappingSpec {
  uuid: string;
  arn: string;
  /** The consumer's function name or ARN, as the mapping names it. */
  functionName: string;
  queueArn: string;
  batchSize: number;
  batchingWindowSeconds: number;
  maxConcurrency: number;
  enabled: boolean;
  reportBatchItemFailures: boolean;
}

export interface MachineSpec {
  name: string;
  arn: string;
  roleArn: string;
  definition: StateMachineDefinition;
}

export interface EventRuleSpec {
  pattern: Record<string, unknown>;
  targets: string[];
}

export interface ListenerSpec {
  arn: string;
  loadBalancerArn: string;
  defaultActions: Record<string, unknown>[];
}

export interface DbInstanceSpec {
  identifier: string;
  engine: string;
  engineVersion: string;
  parameterGroupName: string;
  backupRetentionDays: number;
  deletionProtection: boolean;
  port: number;
  address: string;
  /**
   * The Aurora DB cluster it belongs to (AWS::RDS::DBInstance DBClusterIdentifier); its
   * version, backups, deletion protection and port are then the cluster's.
   */
  clusterIdentifier?: string;
}

export interface DbClusterSpec {
  identifier: string;
  engine: string;
  engineVersion: string;
  /** The DB cluster parameter group (DBClusterParameterGroupName). */
  parameterGroupName: string;
  backupRetentionDays: number;
  deletionProtection: boolean;
  port: number;
  /** The cluster (writer) endpoint. */
  address: string;
}

export interface ParameterGroupSpec {
  name: string;
  family: string;
  parameters: Record<string, string>;
}

export interface SecretSpec {
  arn: string;
  value: string;
}

type Template = { Resources: Record<string, Resource>; Outputs?: Record<string, Output> };
type Resource = { Type: string; Properties?: Record<string, unknown> };
type Output = { Value: unknown; Export?: { Name: unknown } };

/**
 * Synthesizes the app as `cdk synth` does (the same cdk.json context and config, cdk-nag
 * included), without bundling: the rehearsal bundles the function code itself. Without
 * `edit`, the app as configured is read from the cache when nothing it is built from changed
 * (cache.ts), and aws-cdk-lib is not even loaded.
 */
export function synthesizeApp(edit?: (config: Record<string, unknown>) => void): SynthesizedApp {
  if (edit !== undefined) return synthesize(edit);
  return cachedSynth('synth', null, () => undefined);
}

/** The engine cdk.json configures (database.engine). */
export const CONFIGURED_ENGINE: string = cdkJson.context.quietUpgrade.database.engine;

/**
 * The app as configured, on another engine: cdk.json's config with database.engine changed,
 * and its versions dropped for the engine's demo pair (as lib/config.ts's withChanges reads
 * `-c quietUpgrade='{"database":{"engine":"mysql"}}'`). Cached as the configured app is, one
 * entry per engine, so that each engine's rehearsals stay fast.
 */
export function synthesizeEngine(engine: string): SynthesizedApp {
  if (engine === CONFIGURED_ENGINE) return synthesizeApp();
  return cachedSynth(`synth.${engine}`, engine, (config) => {
    const database = config.database as Record<string, unknown>;
    database.engine = engine;
    delete database.engineVersion;
    delete database.targetEngineVersion;
  });
}

function cachedSynth(
  kind: string,
  engine: string | null,
  edit: (config: Record<string, unknown>) => void,
): SynthesizedApp {
  const key = hashInputs(SYNTH_INPUTS, {
    ...(engine === null ? {} : { engine }),
    node: process.version,
    // The app reads these: CDK_CONTEXT_JSON and CDK_OUTDIR (App), CDK_DEFAULT_ACCOUNT (lib/app.ts).
    env: Object.entries(process.env)
      .filter(([k]) => k.startsWith('CDK_'))
      .sort(([a], [b]) => a.localeCompare(b)),
  });
  const cached = readEntry(kind, key);
  if (cached !== undefined) {
    try {
      return decodeApp(cached);
    } catch {
      // Unreadable (a cache written by hand, or cut short): synthesize again.
    }
  }
  const app = synthesize(edit);
  const text = encodeApp(app);
  // Only a lossless entry is kept: what JSON cannot hold (an undefined property, say) would
  // come back different.
  const back = decodeApp(text);
  if (encodeApp(back) === text && isDeepStrictEqual(back, app)) writeEntry(kind, key, text);
  return app;
}

/**
 * Everything a synthesized app is derived from: the app's code (lib/ and bin/), the function
 * code lib/ imports constants from (lambda/), the CDK context and the dependencies, and the
 * reading of the templates (this file, and the cache's own format).
 */
const SYNTH_INPUTS = [
  'lib',
  'bin',
  'lambda',
  'cdk.json',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'rehearsal/synthesized.ts',
  'rehearsal/cache.ts',
];

function encodeApp(app: SynthesizedApp): string {
  return JSON.stringify({ ...app, roles: [...app.roles] });
}

function decodeApp(text: string): SynthesizedApp {
  const parsed = JSON.parse(text) as Omit<SynthesizedApp, 'roles'> & {
    roles: [string, RoleSpec][];
  };
  return { ...parsed, roles: new Map(parsed.roles) };
}

function synthesize(edit: (config: Record<string, unknown>) => void): SynthesizedApp {
  // Loaded here, not at the top: aws-cdk-lib takes the better part of a second to load, and a
  // rehearsal that reads the app from the cache does not need it.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { App, Stack } = require('aws-cdk-lib') as typeof Cdk;
  const { buildApp } = require('../lib/app') as typeof LibApp;
  const { CONFIG_CONTEXT_KEY } = require('../lib/config') as typeof LibConfig;
  const { NodeFunction } = require('../lib/constructs/node-function') as typeof LibNodeFunction;
  /* eslint-enable @typescript-eslint/no-require-imports */
  const config = structuredClone(cdkJson.context[CONFIG_CONTEXT_KEY]) as Record<string, unknown>;
  edit(config);
  const app = new App({
    context: { ...cdkJson.context, [CONFIG_CONTEXT_KEY]: config, 'aws:cdk:bundling-stacks': [] },
    // `cdk synth` lints the templates against CloudFormation's rules (seconds of WebAssembly);
    // the rehearsal only reads them.
    builtinCloudFormationValidation: false,
  });
  buildApp(app);
  const dirs = new Map<string, string>();
  for (const c of app.node.findAll()) {
    if (c instanceof NodeFunction) {
      const stack = Stack.of(c);
      dirs.set(
        `${stack.stackName}/${stack.getLogicalId(c.node.defaultChild as Cdk.CfnElement)}`,
        c.functionDir,
      );
    }
  }
  const assembly = app.synth();
  const templates = new Map<string, Template>(
    assembly.stacks.map((s) => [s.stackName, s.template as Template]),
  );
  return readApp(templates, dirs);
}

/** Reads the resources the rehearsal models out of the synthesized templates. */
export function readApp(
  templates: Map<string, Template>,
  dirs: Map<string, string>,
): SynthesizedApp {
  const r = new Resolver(templates);
  const each = (type: string) =>
    [...templates].flatMap(([stack, t]) =>
      Object.entries(t.Resources)
        .filter(([, res]) => res.Type === type)
        .map(([id, res]) => ({ stack, id, p: (res.Properties ?? {}) as Record<string, unknown> })),
    );
  const str = (stack: string, v: unknown) => String(r.resolve(stack, v));

  const functions = each('AWS::Lambda::Function').flatMap(({ stack, id, p }) => {
    const dir = dirs.get(`${stack}/${id}`);
    // CDK's own custom-resource handlers have no code of ours to run.
    if (dir === undefined) return [];
    const env = r.resolve(stack, (p.Environment as { Variables?: unknown })?.Variables ?? {});
    return [
      {
        stack,
        logicalId: id,
        name: r.physicalName(stack, id),
        arn: str(stack, { 'Fn::GetAtt': [id, 'Arn'] }),
        dir,
        environment: Object.fromEntries(
          Object.entries(env as Record<string, unknown>).map(([k, v]) => [k, String(v)]),
        ),
        roleArn: str(stack, p.Role),
        timeoutSeconds: Number(p.Timeout ?? 3),
      },
    ];
  });

  const roles = new Map<string, RoleSpec>();
  for (const { stack, id, p } of each('AWS::IAM::Role')) {
    const arn = str(stack, { 'Fn::GetAtt': [id, 'Arn'] });
    const inline = ((p.Policies ?? []) as { PolicyDocument: unknown }[]).flatMap((doc) =>
      statementsOf(r.resolve(stack, doc.PolicyDocument)),
    );
    roles.set(arn, { arn, name: r.physicalName(stack, id), statements: inline });
  }
  for (const { stack, p } of each('AWS::IAM::Policy')) {
    const statements = statementsOf(r.resolve(stack, p.PolicyDocument));
    for (const roleName of (p.Roles ?? []) as unknown[]) {
      const name = str(stack, roleName);
      const role = [...roles.values()].find((x) => x.name === name);
      if (role === undefined) throw new Error(`policy attached to unknown role ${name}`);
      role.statements.push(...statements);
    }
  }

  const queues = each('AWS::SQS::Queue').map(({ stack, id, p }) => {
    const redrive = p.RedrivePolicy as
      { deadLetterTargetArn: unknown; maxReceiveCount: number } | undefined;
    return {
      logicalId: id,
      name: r.physicalName(stack, id),
      url: str(stack, { Ref: id }),
      arn: str(stack, { 'Fn::GetAtt': [id, 'Arn'] }),
      // SQS defaults: 30 s visibility, 4 days retention.
      // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
      visibilityTimeoutSeconds: Number(p.VisibilityTimeout ?? 30),
      retentionSeconds: Number(p.MessageRetentionPeriod ?? 345_600),
      ...(redrive
        ? {
            redrive: {
              deadLetterTargetArn: str(stack, redrive.deadLetterTargetArn),
              maxReceiveCount: Number(redrive.maxReceiveCount),
            },
          }
        : {}),
    };
  });

  const mappings = each('AWS::Lambda::EventSourceMapping').map(({ stack, id, p }) => {
    const uuid = str(stack, { Ref: id });
    return {
      uuid,
      arn: `arn:aws:lambda:${REGION}:${ACCOUNT}:event-source-mapping:${uuid}`,
      functionName: str(stack, p.FunctionName),
      queueArn: str(stack, p.EventSourceArn),
      // Defaults: https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
      batchSize: Number(p.BatchSize ?? 10),
      batchingWindowSeconds: Number(p.MaximumBatchingWindowInSeconds ?? 0),
      maxConcurrency: Number(
        (p.ScalingConfig as { MaximumConcurrency?: number })?.MaximumConcurrency ?? 1000,
      ),
      enabled: p.Enabled !== false,
      reportBatchItemFailures: ((p.FunctionResponseTypes ?? []) as string[]).includes(
        'ReportBatchItemFailures',
      ),
    };
  });

  const machines = each('AWS::StepFunctions::StateMachine').map(({ stack, id, p }) => ({
    logicalId: id,
    name: String(p.StateMachineName ?? r.physicalName(stack, id)),
    arn: str(stack, { Ref: id }),
    roleArn: str(stack, p.RoleArn),
    definition: JSON.parse(str(stack, p.DefinitionString)) as StateMachineDefinition,
  }));
  const machine = (fragment: string): MachineSpec => {
    const m = machines.find((x) => x.logicalId.includes(fragment));
    if (m === undefined) throw new Error(`no state machine matching ${fragment}`);
    return { name: m.name, arn: m.arn, roleArn: m.roleArn, definition: m.definition };
  };
  const upgrade = machine('RunbookStateMachine');

  const eventRules = each('AWS::Events::Rule').map(({ stack, p }) => ({
    pattern: r.resolve(stack, p.EventPattern ?? {}) as Record<string, unknown>,
    targets: ((p.Targets ?? []) as { Arn: unknown }[]).map((t) => str(stack, t.Arn)),
  }));

  const listeners = each('AWS::ElasticLoadBalancingV2::Listener').map(({ stack, id, p }) => ({
    arn: str(stack, { Ref: id }),
    loadBalancerArn: str(stack, p.LoadBalancerArn),
    defaultActions: r.resolve(stack, p.DefaultActions ?? []) as Record<string, unknown>[],
  }));

  const clusters = each('AWS::RDS::DBCluster').map(({ stack, id, p }) => ({
    identifier: str(stack, { Ref: id }),
    engine: String(p.Engine),
    engineVersion: String(p.EngineVersion),
    parameterGroupName: str(stack, p.DBClusterParameterGroupName),
    backupRetentionDays: Number(p.BackupRetentionPeriod ?? 1),
    deletionProtection: p.DeletionProtection === true,
    port: Number(str(stack, { 'Fn::GetAtt': [id, 'Endpoint.Port'] })),
    address: str(stack, { 'Fn::GetAtt': [id, 'Endpoint.Address'] }),
  }));

  const instances = each('AWS::RDS::DBInstance').map(({ stack, id, p }) => {
    const identifier = str(stack, { Ref: id });
    const address = str(stack, { 'Fn::GetAtt': [id, 'Endpoint.Address'] });
    const cluster =
      p.DBClusterIdentifier === undefined
        ? undefined
        : clusters.find((c) => c.identifier === str(stack, p.DBClusterIdentifier));
    if (cluster !== undefined) {
      // A cluster's instance takes its version, backups and port from the cluster; with no
      // DBParameterGroupName it runs the engine's default DB parameter group.
      // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-rds-dbinstance.html#cfn-rds-dbinstance-dbclusteridentifier
      return {
        identifier,
        engine: String(p.Engine),
        engineVersion: cluster.engineVersion,
        parameterGroupName:
          p.DBParameterGroupName === undefined
            ? `default.${String(p.Engine)}${cluster.engineVersion.split('.')[0] ?? ''}`
            : str(stack, p.DBParameterGroupName),
        backupRetentionDays: cluster.backupRetentionDays,
        deletionProtection: cluster.deletionProtection,
        port: cluster.port,
        address,
        clusterIdentifier: cluster.identifier,
      };
    }
    return {
      identifier,
      engine: String(p.Engine),
      engineVersion: String(p.EngineVersion),
      parameterGroupName: str(stack, p.DBParameterGroupName),
      backupRetentionDays: Number(p.BackupRetentionPeriod ?? 1),
      deletionProtection: p.DeletionProtection === true,
      port: Number(str(stack, { 'Fn::GetAtt': [id, 'Endpoint.Port'] })),
      address,
    };
  });

  const parameterGroups = each('AWS::RDS::DBParameterGroup').map(({ stack, id, p }) => ({
    name: str(stack, { Ref: id }),
    family: String(p.Family),
    parameters: r.resolve(stack, p.Parameters ?? {}) as Record<string, string>,
  }));

  const clusterParameterGroups = each('AWS::RDS::DBClusterParameterGroup').map(
    ({ stack, id, p }) => ({
      name: str(stack, { Ref: id }),
      family: String(p.Family),
      parameters: r.resolve(stack, p.Parameters ?? {}) as Record<string, string>,
    }),
  );

  const secrets = each('AWS::SecretsManager::Secret').map(({ stack, id, p }) => ({
    arn: str(stack, { Ref: id }),
    value: secretValue(id, p, (v) => str(stack, v)),
  }));
  for (const { stack, p } of each('AWS::SecretsManager::SecretTargetAttachment')) {
    const secret = secrets.find((s) => s.arn === str(stack, p.SecretId));
    const targetId = str(stack, p.TargetId);
    const cluster = clusters.find((c) => c.identifier === targetId);
    const target = instances.find((i) => i.identifier === targetId);
    if (secret === undefined) continue;
    // The attachment adds the connection fields to the secret: for a DB cluster, its
    // (writer) endpoint and dbClusterIdentifier.
    // https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-secrettargetattachment.html
    // https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_secret_json_structure.html
    if (cluster !== undefined) {
      secret.value = JSON.stringify({
        ...(JSON.parse(secret.value) as object),
        engine: cluster.engine,
        host: cluster.address,
        port: cluster.port,
        dbClusterIdentifier: cluster.identifier,
      });
      continue;
    }
    if (target === undefined) continue;
    secret.value = JSON.stringify({
      ...(JSON.parse(secret.value) as object),
      engine: target.engine,
      host: target.address,
      port: target.port,
      dbInstanceIdentifier: target.identifier,
    });
  }

  const alarms = each('AWS::CloudWatch::Alarm').flatMap(({ stack, id, p }) =>
    p.MetricName === undefined
      ? []
      : [
          {
            name: String(p.AlarmName ?? r.physicalName(stack, id)),
            namespace: String(p.Namespace),
            metricName: String(p.MetricName),
            dimensions: Object.fromEntries(
              ((p.Dimensions ?? []) as { Name: string; Value: unknown }[]).map((d) => [
                d.Name,
                str(stack, d.Value),
              ]),
            ),
            periodSeconds: Number(p.Period ?? 60),
            threshold: Number(p.Threshold),
            comparison: String(p.ComparisonOperator),
            evaluationPeriods: Number(p.EvaluationPeriods ?? 1),
            datapointsToAlarm: Number(p.DatapointsToAlarm ?? p.EvaluationPeriods ?? 1),
            treatMissingData: String(p.TreatMissingData ?? 'missing'),
          },
        ],
  );

  const validate = upgrade.definition.States['Validate input'] as unknown as {
    Parameters?: { defaults?: PlanDefaults };
  };
  if (validate?.Parameters?.defaults === undefined) {
    throw new Error('the upgrade definition has no "Validate input" state with defaults');
  }
  return {
    functions,
    roles,
    queues,
    mappings,
    machines: { upgrade, watchdog: machine('WatchdogStateMachine') },
    eventRules,
    listeners,
    instances,
    parameterGroups,
    clusters,
    clusterParameterGroups,
    secrets,
    alarms,
    topics: each('AWS::SNS::Topic').map(({ stack, id }) => str(stack, { Ref: id })),
    defaults: validate.Parameters.defaults,
  };
}

function statementsOf(doc: unknown): Statement[] {
  const s = (doc as { Statement?: Statement | Statement[] }).Statement ?? [];
  return Array.isArray(s) ? s : [s];
}

/** A generated secret's value, deterministic so a rehearsal is repeatable. */
/** A generated secret's value; its template may hold references (resolved by `resolve`). */
function secretValue(
  id: string,
  p: Record<string, unknown>,
  resolve: (value: unknown) => string,
): string {
  const generate = p.GenerateSecretString as
    { SecretStringTemplate?: unknown; GenerateStringKey?: string } | undefined;
  if (typeof p.SecretString === 'string') return p.SecretString;
  const generated = `rehearsal${hash(id).slice(0, 24)}`;
  if (generate?.SecretStringTemplate !== undefined && generate.GenerateStringKey !== undefined) {
    return JSON.stringify({
      ...(JSON.parse(resolve(generate.SecretStringTemplate)) as object),
      [generate.GenerateStringKey]: generated,
    });
  }
  return generated;
}

function hash(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

/**
 * Resolves CloudFormation intrinsics to the values a deploy would give them, with
 * placeholders for what AWS generates (names, ids, ARNs), the same placeholder every time.
 */
export class Resolver {
  constructor(private readonly templates: Map<string, Template>) {}

  resolve(stack: string, value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.resolve(stack, v));
    if (value === null || typeof value !== 'object') return value;
    const entries = Object.entries(value as Record<string, unknown>);
    const [key, arg] = entries[0] ?? [];
    if (entries.length === 1 && key !== undefined && (key === 'Ref' || key.startsWith('Fn::'))) {
      return this.intrinsic(stack, key, arg);
    }
    return Object.fromEntries(entries.map(([k, v]) => [k, this.resolve(stack, v)]));
  }

  private intrinsic(stack: string, fn: string, arg: unknown): unknown {
    switch (fn) {
      case 'Ref':
        return this.ref(stack, String(arg));
      case 'Fn::GetAtt': {
        const [id, attribute] = Array.isArray(arg) ? arg : String(arg).split(/\.(.+)/);
        return this.getAtt(stack, String(id), String(attribute));
      }
      case 'Fn::Join': {
        const [sep, parts] = arg as [string, unknown[]];
        return (this.resolve(stack, parts) as unknown[]).map(String).join(sep);
      }
      case 'Fn::Select': {
        const [index, list] = arg as [number, unknown];
        return (this.resolve(stack, list) as unknown[])[Number(index)];
      }
      case 'Fn::Split': {
        const [sep, text] = arg as [string, unknown];
        return String(this.resolve(stack, text)).split(sep);
      }
      case 'Fn::Sub': {
        const [text, vars] = Array.isArray(arg) ? arg : [arg, {}];
        return String(text).replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
          const local = (vars as Record<string, unknown>)[name];
          if (local !== undefined) return String(this.resolve(stack, local));
          const [id, attribute] = name.split(/\.(.+)/);
          return String(
            attribute === undefined
              ? this.ref(stack, String(id))
              : this.getAtt(stack, String(id), attribute),
          );
        });
      }
      case 'Fn::GetStackOutput': {
        const { StackName, OutputName } = arg as { StackName: string; OutputName: string };
        return this.output(StackName, OutputName);
      }
      case 'Fn::ImportValue': {
        const name = String(this.resolve(stack, arg));
        for (const [s, t] of this.templates) {
          for (const [outputName, o] of Object.entries(t.Outputs ?? {})) {
            if (this.resolve(s, o.Export?.Name) === name) return this.output(s, outputName);
          }
        }
        throw new Error(`no stack exports ${name}`);
      }
      default:
        throw new Error(`the rehearsal cannot resolve ${fn} in ${stack}`);
    }
  }

  private output(stack: string, name: string): unknown {
    const o = this.templates.get(stack)?.Outputs?.[name];
    if (o === undefined) throw new Error(`stack ${stack} has no output ${name}`);
    return this.resolve(stack, o.Value);
  }

  private resource(stack: string, id: string): Resource {
    const r = this.templates.get(stack)?.Resources[id];
    if (r === undefined) throw new Error(`stack ${stack} has no resource ${id}`);
    return r;
  }

  /** The physical name CloudFormation would give a resource that names none itself. */
  physicalName(stack: string, id: string): string {
    const p = this.resource(stack, id).Properties ?? {};
    const given = ['FunctionName', 'QueueName', 'TopicName', 'RoleName', 'StateMachineName', 'Name']
      .map((k) => p[k])
      .find((v) => v !== undefined);
    return given === undefined ? `${stack}-${id}` : String(this.resolve(stack, given));
  }

  private ref(stack: string, id: string): unknown {
    switch (id) {
      case 'AWS::Partition':
        return 'aws';
      case 'AWS::Region':
        return REGION;
      case 'AWS::AccountId':
        return ACCOUNT;
      case 'AWS::URLSuffix':
        return 'amazonaws.com';
      case 'AWS::StackName':
        return stack;
      case 'AWS::NoValue':
        return undefined;
    }
    const r = this.resource(stack, id);
    const name = this.physicalName(stack, id);
    const h = hash(`${stack}/${id}`);
    // What Ref returns for each type (each type's "Return values" in the CloudFormation guide).
    switch (r.Type) {
      case 'AWS::SQS::Queue':
        return `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${name}`;
      case 'AWS::Lambda::Function':
      case 'AWS::IAM::Role':
      case 'AWS::Logs::LogGroup':
        return name;
      case 'AWS::Lambda::EventSourceMapping':
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
      case 'AWS::SNS::Topic':
        return `arn:aws:sns:${REGION}:${ACCOUNT}:${name}`;
      case 'AWS::StepFunctions::StateMachine':
        return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${name}`;
      case 'AWS::RDS::DBInstance':
        return String(
          this.resolve(stack, r.Properties?.DBInstanceIdentifier ?? name.toLowerCase()),
        );
      case 'AWS::RDS::DBCluster':
        return String(
          this.resolve(stack, r.Properties?.DBClusterIdentifier ?? name.toLowerCase()),
        ).toLowerCase();
      case 'AWS::RDS::DBParameterGroup':
      case 'AWS::RDS::DBClusterParameterGroup':
      case 'AWS::RDS::DBSubnetGroup':
        return name.toLowerCase();
      case 'AWS::SecretsManager::Secret':
        return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-${h.slice(0, 6)}`;
      case 'AWS::SecretsManager::SecretTargetAttachment':
        // Ref returns the ARN of the secret it attaches.
        return this.resolve(stack, r.Properties?.SecretId);
      case 'AWS::ElasticLoadBalancingV2::LoadBalancer':
        return `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:loadbalancer/app/${id.slice(0, 24)}/${h.slice(0, 16)}`;
      case 'AWS::ElasticLoadBalancingV2::Listener': {
        const lb = String(this.resolve(stack, r.Properties?.LoadBalancerArn));
        return `${lb.replace(':loadbalancer/', ':listener/')}/${h.slice(0, 16)}`;
      }
      case 'AWS::ElasticLoadBalancingV2::TargetGroup':
        return `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/${id.slice(0, 24)}/${h.slice(0, 16)}`;
      case 'AWS::KMS::Key':
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
      default:
        return name;
    }
  }

  private getAtt(stack: string, id: string, attribute: string): unknown {
    const r = this.resource(stack, id);
    const name = this.physicalName(stack, id);
    switch (`${r.Type}.${attribute}`) {
      case 'AWS::Lambda::Function.Arn':
        return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;
      case 'AWS::IAM::Role.Arn':
        return `arn:aws:iam::${ACCOUNT}:role/${name}`;
      case 'AWS::SQS::Queue.Arn':
        return `arn:aws:sqs:${REGION}:${ACCOUNT}:${name}`;
      case 'AWS::SQS::Queue.QueueName':
        return name;
      case 'AWS::SQS::Queue.QueueUrl':
        return this.ref(stack, id);
      case 'AWS::Logs::LogGroup.Arn':
        return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${name}:*`;
      case 'AWS::StepFunctions::StateMachine.Arn':
        return this.ref(stack, id);
      case 'AWS::StepFunctions::StateMachine.Name':
        return name;
      case 'AWS::KMS::Key.Arn':
        return `arn:aws:kms:${REGION}:${ACCOUNT}:key/${String(this.ref(stack, id))}`;
      case 'AWS::RDS::DBInstance.Endpoint.Address':
        return `${String(this.ref(stack, id))}.c0rehearsal.${REGION}.rds.amazonaws.com`;
      case 'AWS::RDS::DBInstance.Endpoint.Port': {
        // The instance's Port, or the engine's default: 3306 for MySQL, 5432 for PostgreSQL.
        // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-rds-dbinstance.html#cfn-rds-dbinstance-port
        const port = r.Properties?.Port;
        if (port !== undefined) return String(this.resolve(stack, port));
        return String(r.Properties?.Engine).includes('mysql') ? '3306' : '5432';
      }
      // A cluster's Endpoint.Address is its writer endpoint, <id>.cluster-<hash>.<region>...
      // https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-rds-dbcluster.html#aws-resource-rds-dbcluster-return-values
      // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Endpoints.Cluster.html
      case 'AWS::RDS::DBCluster.Endpoint.Address':
        return `${String(this.ref(stack, id))}.cluster-c0rehearsal.${REGION}.rds.amazonaws.com`;
      case 'AWS::RDS::DBCluster.Endpoint.Port': {
        const port = r.Properties?.Port;
        if (port !== undefined) return String(this.resolve(stack, port));
        return String(r.Properties?.Engine).includes('mysql') ? '3306' : '5432';
      }
      case 'AWS::SNS::Topic.TopicArn':
        return this.ref(stack, id);
      case 'AWS::ElasticLoadBalancingV2::TargetGroup.TargetGroupArn':
        return this.ref(stack, id);
      default:
        return `${name}.${attribute}`;
    }
  }
}
