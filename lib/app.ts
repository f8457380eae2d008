import type { App } from 'aws-cdk-lib';
import { Duration, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import cdkJson from '../cdk.json';
import { type AppConfig, CONFIG_CONTEXT_KEY, configFromContext } from './config';
import { existingPlatform, perBuffer, type PlatformRefs, type PlatformSource } from './platform';
import { SUBNETS } from './constructs/platform-network';
import { BuffersStack } from './stacks/buffers-stack';
import { DatabaseStack } from './stacks/database-stack';
import { EdgeStack } from './stacks/edge-stack';
import { UpgradeStack } from './stacks/upgrade-stack';

export interface QuietUpgradeApp {
  readonly app: App;
  readonly config: AppConfig;
  /** The demo platform's database; undefined when an existing platform is adopted. */
  readonly database?: DatabaseStack;
  /** The demo platform's buffers; undefined when an existing platform is adopted. */
  readonly buffers?: BuffersStack;
  readonly edge: EdgeStack;
  readonly upgrade: UpgradeStack;
}

/**
 * Builds the whole app from its context: validated config, stacks, cdk-nag.
 * `bin/app.ts` calls it for `cdk synth`; tests call it with their own context.
 */
export function buildApp(app: App): QuietUpgradeApp {
  // A config given on the command line changes cdk.json's rather than replacing it.
  const config = configFromContext(
    (key) => app.node.tryGetContext(key),
    cdkJson.context[CONFIG_CONTEXT_KEY],
  );
  const env = {
    // Offline synth has no account: the stacks are then account-agnostic. `cdk deploy` with
    // credentials fills CDK_DEFAULT_ACCOUNT.
    account: config.env.account ?? process.env.CDK_DEFAULT_ACCOUNT,
    region: config.env.region,
  };
  Tags.of(app).add('app', 'quiet-upgrade');

  // The one switch: build the demo platform, or adopt an existing one and build only the
  // upgrade's own parts.
  let database: DatabaseStack | undefined;
  let buffers: BuffersStack | undefined;
  let platform: PlatformSource;
  if (config.platform === 'existing' && config.existing !== undefined) {
    platform = existingPlatform(config, config.existing);
  } else {
    database = new DatabaseStack(app, 'QuietUpgradeDatabase', {
      env,
      config,
      description: 'Network and production PostgreSQL, ready for blue/green upgrades',
    });
    buffers = new BuffersStack(app, 'QuietUpgradeBuffers', {
      env,
      description: 'SQS write buffers with idempotent, throttled consumers',
      vpc: database.vpc,
      databaseClients: database.databaseClients,
      databaseSecret: database.database.secret,
      databaseInstance: database.database.instance,
      engine: config.database.engine,
    });
    platform = demoPlatform(config, database, buffers);
  }

  const edge = new EdgeStack(app, 'QuietUpgradeEdge', {
    env,
    config,
    description: 'Load balancer, maintenance rules toggle and capture endpoints',
    platform,
  });

  const upgrade = new UpgradeStack(app, 'QuietUpgradeOrchestration', {
    env,
    config,
    description: 'The upgrade runbook (Step Functions), its watchdog and schedule',
    platform,
    edge,
  });

  // Synth fails on any unacknowledged AwsSolutions finding.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, config, database, buffers, edge, upgrade };
}

/** The demo platform's resources, as the edge and upgrade stacks see them. */
function demoPlatform(
  config: AppConfig,
  database: DatabaseStack,
  buffers: BuffersStack,
): PlatformSource {
  const db = database.database;
  const refs: PlatformRefs = {
    database: {
      // The configured name, not a reference: the switchover hands it to the new writer.
      instanceIdentifier: config.database.instanceIdentifier,
      secret: db.secret,
      parameterGroupName: db.parameterGroup.ref,
      targetParameterGroupName: db.targetParameterGroup?.ref,
    },
    network: {
      vpc: database.vpc,
      subnets: { subnetGroupName: SUBNETS.app },
      databaseClients: database.databaseClients,
    },
    buffers: perBuffer((name) => {
      const b = buffers.buffers[name];
      return {
        queue: b.queue,
        deadLetterQueue: b.deadLetterQueue,
        eventSourceMappingId: b.eventSource.eventSourceMappingId,
        consumer: b.consumer,
        consumerTimeout: b.consumer.timeout ?? Duration.seconds(30),
      };
    }),
  };
  return () => refs;
}
