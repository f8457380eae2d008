import { Arn, ArnFormat, CfnOutput, Duration, Fn, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type { Construct } from 'constructs';
import { BUFFER_NAMES } from '../../lambda/shared/contracts';
import { FENCE_GROUP_SUFFIX, RESTORE_GROUP_SUFFIX } from '../../lambda/shared/upgrade-plan';
import { deployedResourcesOf } from '../../lambda/shared/deployed';
import type { PlanDefaults } from '../../lambda/validate-input/validate';
import { type AppConfig, reservation } from '../config';
import type { DatabaseEngine } from '../engines';
import { NodeFunction } from '../constructs/node-function';
import { acknowledgeWildcards, WILDCARD_REASONS } from '../nag';
import { rdsVocabulary } from '../rds-access';
import { NotificationTopic } from '../constructs/notification-topic';
import { UpgradeMonitoring } from '../constructs/upgrade-monitoring';
import type { PlatformSource } from '../platform';
import { listenerRulesOf } from '../constructs/maintenance-edge';
import { UpgradeRunbook, WATCH_FUNCTION_TIMEOUT } from '../constructs/upgrade-runbook';
import { UpgradeWatchdog } from '../constructs/upgrade-watchdog';
import {
  type EdgeStack,
  LISTENER_EXPORT,
  TOGGLE_FUNCTION_NAME,
  TRAFFIC_ALARM_NAME,
} from './edge-stack';

export interface UpgradeStackProps extends StackProps {
  readonly config: AppConfig;
  /** The database, network and buffers to upgrade: the demo platform's or adopted ones. */
  readonly platform: PlatformSource;
  readonly edge: EdgeStack;
}

/** Names are fixed so policies can name the machines without a dependency cycle. */
export const UPGRADE_MACHINE_NAME = 'QuietUpgrade-Upgrade';
export const WATCHDOG_MACHINE_NAME = 'QuietUpgrade-Watchdog';
/** The writer check's code per engine: each bundle carries one database driver. */
const WRITER_CHECK_DIRS: Record<DatabaseEngine, string> = {
  postgres: 'verify-writer',
  'aurora-postgresql': 'verify-writer',
  mysql: 'verify-writer-mysql',
  'aurora-mysql': 'verify-writer-mysql',
};
/** The CloudWatch dashboard the runbook points operators to. */
export const DASHBOARD_NAME = 'QuietUpgrade';

/**
 * The upgrade runbook, its helper functions, the watchdog, the schedule that starts it in the
 * quiet hours, the notification topic, and the dashboard and alarms.
 */
export class UpgradeStack extends Stack {
  readonly runbook: UpgradeRunbook;
  readonly watchdog: UpgradeWatchdog;
  readonly schedule: scheduler.CfnSchedule;
  readonly planDefaults: PlanDefaults;
  readonly notifications: NotificationTopic;
  readonly monitoring: UpgradeMonitoring;

  constructor(scope: Construct, id: string, props: UpgradeStackProps) {
    super(scope, id, props);
    const { config, edge } = props;
    const platform = props.platform(this);
    const db = config.database;
    const arn = (service: string, resource: string, name: string) =>
      Arn.format(
        { service, resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME },
        this,
      );
    // An RDS DB instance, or an Aurora DB cluster (whose identifier the config's
    // instanceIdentifier names): every RDS action and resource type below is the level's.
    const rds = rdsVocabulary(db.engine);
    const cluster = rds.level === 'cluster';
    const source = db.instanceIdentifier;
    // CreateBlueGreenDeployment's Source: "When using the CLI or API, specify the cluster
    // Amazon Resource Name (ARN)" for Aurora.
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html
    const sourceArn = arn('rds', rds.database, source);
    // The names old blue and a failed writer get: for Aurora the cluster's (and its instances').
    // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-switching.html#blue-green-deployments-switching-actions
    const formerNames = [sourceArn, `${sourceArn}-old1`, `${sourceArn}-failed1`];
    // Aurora: the instances of these clusters. Their names are read from the clusters at run
    // time (see the reboot below for why no fixed list can name them).
    const clusterInstances = arn('rds', 'db', '*');
    const mappings = BUFFER_NAMES.map((name) => ({
      name,
      uuid: platform.buffers[name].eventSourceMappingId,
    }));
    const mappingArns = mappings.map((m) => arn('lambda', 'event-source-mapping', m.uuid));
    const queues = BUFFER_NAMES.map((name) => ({
      name,
      url: platform.buffers[name].queue.queueUrl,
      arn: platform.buffers[name].queue.queueArn,
    }));
    // By name, not by cross-stack reference: the ARN is then known in this stack.
    const toggle = lambda.Function.fromFunctionAttributes(this, 'Toggle', {
      functionArn: arn('lambda', 'function', TOGGLE_FUNCTION_NAME),
      sameEnvironment: true,
    });
    this.addStackDependency(edge);
    this.notifications = new NotificationTopic(this, 'Notifications', {
      email: config.notificationEmail,
    });
    const topic = this.notifications.topic;

    this.planDefaults = {
      sourceIdentifier: source,
      sourceArn,
      engine: db.engine,
      currentEngineVersion: db.engineVersion,
      targetEngineVersion: db.targetEngineVersion ?? '',
      targetParameterGroupName: platform.database.targetParameterGroupName ?? '',
      switchoverTimeoutSeconds: config.switchoverTimeoutSeconds,
      requireApproval: config.upgrade.requireApproval,
      deadlineMinutes: config.upgrade.deadlineMinutes,
      mappings,
      queues,
      listenerArn: edge.maintenance.listenerArn,
      maintenanceToggleFunction: TOGGLE_FUNCTION_NAME,
      maxReplicationLagMb: config.upgrade.maxReplicationLagMb,
      quietGate: quietGateDefaults(config),
    };
    // The functions that take a plan read every identifier in it from here, not from their
    // event (lambda/shared/deployed.ts): the same values as the defaults above.
    const deployed = {
      DEPLOYED_RESOURCES: Stack.of(this).toJsonString(deployedResourcesOf(this.planDefaults)),
    };

    // ------------------------------------------------------------ functions with real logic
    // Each role allows exactly the calls its function makes, in the level's actions on the
    // level's resource types (lib/rds-access.ts). Describe* calls that support no
    // resource-level permissions get "*":
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html
    const fn = (
      id: string,
      dir: string,
      description: string,
      statements: iam.PolicyStatement[],
      environment?: Record<string, string>,
    ) => {
      const f = new NodeFunction(this, id, {
        functionDir: dir,
        description,
        timeout: Duration.seconds(60),
        environment,
      });
      for (const statement of statements) f.addToRolePolicy(statement);
      return f;
    };
    const allow = (actions: string[], resources: string[]) =>
      new iam.PolicyStatement({ actions, resources });
    const deployments = arn('rds', 'deployment', '*');

    const validateInput = fn(
      'ValidateInput',
      'validate-input',
      'Checks an upgrade run input before anything changes',
      [],
    );
    // Green's group is read too for MySQL (event_scheduler) and for both Aurora engines (their
    // replication prerequisites): lambda/preflight.
    const targetGroupRead =
      (db.engine === 'mysql' || cluster) && platform.database.targetParameterGroupName !== undefined
        ? [platform.database.targetParameterGroupName]
        : [];
    const preflightGroups = [platform.database.parameterGroupName, ...targetGroupRead];
    const preflight = fn(
      'Preflight',
      'preflight',
      'Checks every blue/green prerequisite before an upgrade',
      [
        // Blue, and the names an earlier upgrade or restore may have left behind.
        allow([rds.describe], formerNames),
        // Blue's group (PostgreSQL: rds.logical_replication); for MySQL also green's, whose
        // event_scheduler must be off (lambda/preflight). Aurora's are DB cluster parameter
        // groups: every blue/green prerequisite AWS lists for Aurora is a cluster parameter.
        // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/blue-green-deployments-creating.html
        allow(
          [rds.describeParameters],
          // A minor Aurora upgrade keeps blue's group for green: named once.
          (cluster ? [...new Set(preflightGroups)] : preflightGroups).map((g) =>
            arn('rds', rds.parameterGroup, g),
          ),
        ),
        // Aurora: the writer instance, and each member's -old1/-failed1 leftover, by the names
        // the cluster lists (not known at synth).
        ...(cluster ? [allow(['rds:DescribeDBInstances'], [clusterInstances])] : []),
        // Listed by source (a filter, no identifier): see WILDCARD_REASONS.listCalls. Aurora
        // also lists zero-ETL integrations, which must not exist at switchover.
        allow(
          [
            'rds:DescribeBlueGreenDeployments',
            'rds:DescribeDBEngineVersions',
            ...(cluster ? ['rds:DescribeIntegrations'] : []),
          ],
          ['*'],
        ),
        allow(['states:ListExecutions'], [arn('states', 'stateMachine', UPGRADE_MACHINE_NAME)]),
        allow(
          ['sqs:GetQueueAttributes'],
          queues.map((q) => q.arn),
        ),
        allow(['lambda:GetEventSourceMapping'], mappingArns),
        allow(['elasticloadbalancing:DescribeListeners'], ['*']),
        // Is blue behind an RDS Proxy? Every proxy is listed: see WILDCARD_REASONS.listCalls.
        allow(['rds:DescribeDBProxies', 'rds:DescribeDBProxyTargets'], ['*']),
      ],
      deployed,
    );
    const verifyGreen = fn(
      'VerifyGreen',
      'verify-green',
      'Verifies the green environment before switchover',
      [
        allow(['rds:DescribeBlueGreenDeployments'], [deployments]),
        // Green's identifier (an Aurora green's cluster identifier) is chosen by RDS.
        allow([rds.describe], [arn('rds', rds.database, '*')]),
        // Aurora: green's instances, listed by the db-cluster-id filter (no identifier): see
        // WILDCARD_REASONS.listCalls.
        ...(cluster ? [allow(['rds:DescribeDBInstances'], ['*'])] : []),
        allow(['cloudwatch:GetMetricData'], ['*']),
      ],
      deployed,
    );
    const verifyWriter = new NodeFunction(this, 'VerifyWriter', {
      // Each engine's check carries only its own driver (lambda/verify-writer-mysql).
      functionDir: WRITER_CHECK_DIRS[db.engine],
      description: 'Verifies the new writer after switchover: version, status, writable',
      timeout: Duration.seconds(60),
      // Capacity kept for the writer check alone: it runs with the maintenance page on.
      // https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
      reservedConcurrentExecutions: reservation(config.edge.reservedConcurrency.verifyWriter),
      vpc: platform.network.vpc,
      vpcSubnets: platform.network.subnets,
      securityGroups: [platform.network.databaseClients],
      // No DB_NAME: the check reads only server-wide state, so it connects to no database
      // (an adopted MySQL platform's database names are its own).
      environment: { DB_SECRET_ARN: platform.database.secret.secretArn, ...deployed },
    });
    // The writer, and the former writers whose client sessions it ends: old blue after a
    // switchover, the failed writer after a restore.
    verifyWriter.addToRolePolicy(allow([rds.describe], formerNames));
    verifyWriter.readSecret(platform.database.secret);
    // The restore attaches copies of the instances' parameter groups (never changes the
    // stack's own): <group>-restore on old blue, <group>-fence on the failed writer. For
    // Aurora these are DB cluster parameter groups, attached to the clusters.
    const groups = [
      ...new Set(
        [
          platform.database.parameterGroupName,
          platform.database.targetParameterGroupName ?? '',
        ].filter((g) => g !== ''),
      ),
    ];
    const groupCopies = groups.flatMap((g) =>
      [RESTORE_GROUP_SUFFIX, FENCE_GROUP_SUFFIX].map((suffix) =>
        arn('rds', rds.parameterGroup, `${g}${suffix}`),
      ),
    );
    // A reboot applies the group. Aurora reboots instances only (RebootDBCluster: "Use this
    // operation only for a non-Aurora Multi-AZ DB cluster"), and the instances of these
    // clusters are named by nothing this app knows for sure: the switchover gives green's
    // instances blue's names and blue's "-old1", a restore renames only clusters, so the names
    // drift from run to run, and an adopted platform's are not configured. So "db:*": the code
    // reads and reboots only the writer of a cluster it reads by name (DEPLOYED_RESOURCES), and
    // reads it to wait until it is available and in sync (restore-cluster.ts). No condition
    // narrows it: whether RDS evaluates the db resource type's rds:DatabaseEngine key for these
    // two actions, AWS does not say, and a key it does not supply would deny the restore.
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBCluster.html
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-resources-for-iam-policies
    const reboot = cluster
      ? allow(['rds:RebootDBInstance', 'rds:DescribeDBInstances'], [clusterInstances])
      : allow(['rds:RebootDBInstance'], formerNames);
    // The functions that change the database act only for a RUNNING execution of these two
    // machines (lambda/shared/caller.ts). By name, not by the machines' ARN attributes: the
    // machines invoke the functions, so a reference back would be a dependency cycle.
    const callerMachines = [UPGRADE_MACHINE_NAME, WATCHDOG_MACHINE_NAME];
    const callers = {
      environment: {
        CALLER_STATE_MACHINES: Stack.of(this).toJsonString(
          callerMachines.map((m) => arn('states', 'stateMachine', m)),
        ),
      },
      // DescribeExecution's resource is the execution.
      // https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html#awsstepfunctions-actions-as-permissions
      statement: allow(
        ['states:DescribeExecution'],
        callerMachines.map((m) => arn('states', 'execution', `${m}:*`)),
      ),
    };
    const restoreOldBlue = fn(
      'RestoreOldBlue',
      'restore-old-blue',
      'Restores old blue as the writer, one step per call',
      [
        allow([rds.describe], formerNames),
        // Renames, and the group an instance (cluster) uses: the database and the group are
        // both resources of ModifyDBInstance (ModifyDBCluster: cluster, cluster-pg).
        // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-actions-as-permissions
        allow([rds.modify], [...formerNames, ...groupCopies]),
        // Also -failed1: its sessions are ended by a reboot when they cannot be one by one.
        reboot,
        allow(
          [rds.copyParameterGroup],
          [...groups.map((g) => arn('rds', rds.parameterGroup, g)), ...groupCopies],
        ),
        allow([rds.modifyParameterGroup], groupCopies),
        callers.statement,
      ],
      { ...callers.environment, ...deployed },
    );
    const deletionProtection = fn(
      'DeletionProtection',
      'deletion-protection',
      'Turns deletion protection off on green before it is deleted, on for the new writer',
      [
        allow(['rds:DescribeBlueGreenDeployments'], [deployments]),
        // Green's identifiers are chosen by RDS; the code refuses to unprotect blue. Aurora's
        // deletion protection is the cluster's ("Valid for Cluster Type: Aurora DB clusters").
        // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBCluster.html
        allow([rds.describe, rds.modify], [arn('rds', rds.database, '*')]),
        callers.statement,
      ],
      {
        ...callers.environment,
        ...deployed,
        // Whose deployments it may change: a run of this machine (lambda/shared/caller.ts).
        UPGRADE_STATE_MACHINE: arn('states', 'stateMachine', UPGRADE_MACHINE_NAME),
      },
    );
    // By its export's name, so the policy that names the listener's rules reads the same in
    // this stack as when it is deployed.
    const listenerRules = listenerRulesOf(Fn.importValue(LISTENER_EXPORT));
    const watchSwitchover = new NodeFunction(this, 'WatchSwitchover', {
      functionDir: 'watch-switchover',
      description: 'Describes the blue/green deployment every second while it switches over',
      timeout: WATCH_FUNCTION_TIMEOUT,
    });
    watchSwitchover.addToRolePolicy(allow(['rds:DescribeBlueGreenDeployments'], [deployments]));
    const inspect = fn(
      'WatchdogInspect',
      'watchdog-inspect',
      'Inspects the real state after a stopped upgrade run',
      [
        allow(['lambda:InvokeFunction'], [toggle.functionArn]),
        allow(['lambda:GetEventSourceMapping'], mappingArns),
        // The writer, and the failed writer an interrupted restore may have left.
        allow([rds.describe], [sourceArn, `${sourceArn}-failed1`]),
        // Listed by source (a filter, no identifier): see WILDCARD_REASONS.listCalls.
        allow(['rds:DescribeBlueGreenDeployments'], ['*']),
        // Is another run of the upgrade still live? Only its own machine's executions.
        allow(['states:ListExecutions'], [arn('states', 'stateMachine', UPGRADE_MACHINE_NAME)]),
      ],
      deployed,
    );

    const runbookFunctions = {
      validateInput,
      preflight,
      verifyGreen,
      verifyWriter,
      restoreOldBlue,
      deletionProtection,
      watchSwitchover,
    };
    this.runbook = new UpgradeRunbook(this, 'Runbook', {
      stateMachineName: UPGRADE_MACHINE_NAME,
      engine: db.engine,
      planDefaults: this.planDefaults,
      functions: runbookFunctions,
      toggle,
      listenerRules: listenerRules,
      topic,
      mappingArns,
      queueArns: queues.map((q) => q.arn),
      // The pause waits out the slowest consumer's in-flight batch.
      consumerTimeout: Duration.seconds(
        Math.max(...BUFFER_NAMES.map((n) => platform.buffers[n].consumerTimeout.toSeconds())),
      ),
    });
    this.watchdog = new UpgradeWatchdog(this, 'Watchdog', {
      upgrade: this.runbook.stateMachine,
      upgradeMachineName: UPGRADE_MACHINE_NAME,
      stateMachineName: WATCHDOG_MACHINE_NAME,
      engine: db.engine,
      planDefaults: this.planDefaults,
      validateInput,
      inspect,
      verifyWriter,
      restoreOldBlue,
      deletionProtection,
      toggle,
      topic,
      mappingArns,
    });

    // ------------------------------------------------------------ the schedule
    // A templated Step Functions target cannot set the execution name, so a duplicate fire
    // cannot be made idempotent by name; the single-flight check in preflight rejects a
    // second run instead, before it changes anything.
    // https://docs.aws.amazon.com/scheduler/latest/UserGuide/managing-targets-templated.html
    const scheduleRole = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
      description: 'Lets EventBridge Scheduler start the upgrade runbook',
    });
    this.runbook.stateMachine.grantStartExecution(scheduleRole);
    const expression = config.upgrade.schedule;
    this.schedule = new scheduler.CfnSchedule(this, 'Schedule', {
      description: expression
        ? 'Starts the database upgrade in the configured window'
        : 'Disabled: set quietUpgrade.upgrade.schedule to start upgrades on a schedule',
      scheduleExpression: expression || 'cron(0 4 ? * SUN *)',
      scheduleExpressionTimezone: config.upgrade.scheduleTimeZone,
      state: expression ? 'ENABLED' : 'DISABLED',
      flexibleTimeWindow: { mode: 'OFF' },
      target: {
        arn: this.runbook.stateMachine.stateMachineArn,
        roleArn: scheduleRole.roleArn,
        input: '{}',
        // No retries: a retried start could only be rejected by the single-flight check.
        retryPolicy: { maximumRetryAttempts: 0 },
      },
    });

    // Wildcards AWS forces, each acknowledged where it is granted.
    acknowledgeWildcards(
      watchSwitchover.role ?? watchSwitchover,
      [deployments],
      WILDCARD_REASONS.deployments,
    );
    acknowledgeWildcards(
      this.runbook.stateMachine.role,
      [listenerRules],
      WILDCARD_REASONS.listenerRules,
    );
    const green = cluster ? WILDCARD_REASONS.greenClusters : WILDCARD_REASONS.greenInstances;
    for (const f of [verifyGreen, deletionProtection]) {
      acknowledgeWildcards(f.role ?? f, [deployments], WILDCARD_REASONS.deployments);
      acknowledgeWildcards(f.role ?? f, [arn('rds', rds.database, '*')], green);
    }
    if (cluster) {
      for (const f of [preflight, restoreOldBlue]) {
        acknowledgeWildcards(f.role ?? f, [clusterInstances], WILDCARD_REASONS.clusterInstances);
      }
      acknowledgeWildcards(verifyGreen.role ?? verifyGreen, ['*'], WILDCARD_REASONS.listCalls);
    }
    for (const f of [preflight, inspect]) {
      acknowledgeWildcards(f.role ?? f, ['*'], WILDCARD_REASONS.listCalls);
    }
    for (const machine of [this.runbook, this.watchdog]) {
      acknowledgeWildcards(machine.stateMachine.role, [deployments], WILDCARD_REASONS.deployments);
      acknowledgeWildcards(machine.stateMachine.role, machine.greenWildcards, green);
    }
    acknowledgeWildcards(this.runbook.stateMachine.role, ['*'], WILDCARD_REASONS.listCalls);
    acknowledgeWildcards(
      this.runbook.stateMachine.role,
      [...Object.values(runbookFunctions), toggle].map((f) => `${f.functionArn}:*`),
      WILDCARD_REASONS.functionVersions,
    );
    acknowledgeWildcards(
      this.watchdog.stateMachine.role,
      [validateInput, inspect, verifyWriter, restoreOldBlue, deletionProtection, toggle].map(
        (f) => `${f.functionArn}:*`,
      ),
      WILDCARD_REASONS.functionVersions,
    );
    acknowledgeWildcards(
      this.watchdog.stateMachine.role,
      [arn('states', 'execution', `${UPGRADE_MACHINE_NAME}:*`)],
      WILDCARD_REASONS.executions,
    );
    for (const f of [restoreOldBlue, deletionProtection]) {
      acknowledgeWildcards(f.role ?? f, callers.statement.resources, WILDCARD_REASONS.executions);
    }

    // The topic is encrypted with its own key: publishing needs the key too.
    // https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#sns-what-permissions-for-sse
    for (const machine of [this.runbook.stateMachine, this.watchdog.stateMachine]) {
      this.notifications.key.grant(machine, 'kms:GenerateDataKey', 'kms:Decrypt');
    }

    this.monitoring = new UpgradeMonitoring(this, 'Monitoring', {
      dashboardName: DASHBOARD_NAME,
      databaseInstanceIdentifier: source,
      engine: db.engine,
      buffers: platform.buffers,
      upgrade: this.runbook.stateMachine,
      watchdog: this.watchdog.stateMachine,
      alarmTopic: topic,
      maxMessageAge: Duration.minutes(config.alarms.maxMessageAgeMinutes),
    });

    new CfnOutput(this, 'NotificationTopicArn', { value: topic.topicArn });
    new CfnOutput(this, 'DashboardName', { value: DASHBOARD_NAME });
    new CfnOutput(this, 'UpgradeStateMachineArn', {
      value: this.runbook.stateMachine.stateMachineArn,
    });
    new CfnOutput(this, 'WatchdogStateMachineArn', {
      value: this.watchdog.stateMachine.stateMachineArn,
    });
  }
}

/** The quiet gate as the plan starts: on, with the alarm's name, when the config sets it. */
function quietGateDefaults(config: AppConfig): PlanDefaults['quietGate'] {
  const gate = config.upgrade.quietGate;
  if (gate === undefined) {
    return {
      enabled: false,
      alarmName: '',
      requestsPerMinute: 0,
      onDeadline: 'roll-back',
      maxChecks: 0,
    };
  }
  return {
    enabled: gate.enabled,
    alarmName: TRAFFIC_ALARM_NAME,
    requestsPerMinute: gate.requestsPerMinute,
    onDeadline: gate.onDeadline,
    maxChecks: gate.maxWaitMinutes,
  };
}
