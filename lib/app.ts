import type { App } from 'aws-cdk-lib';
import { Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type AppConfig, configFromContext } from './config';
import { BuffersStack } from './stacks/buffers-stack';
import { DatabaseStack } from './stacks/database-stack';
import { EdgeStack } from './stacks/edge-stack';
import { UpgradeStack } from './stacks/upgrade-stack';

export interface QuietUpgradeApp {
  readonly app: App;
  readonly config: AppConfig;
  readonly database: DatabaseStack;
  readonly buffers: BuffersStack;
  readonly edge: EdgeStack;
  readonly upgrade: UpgradeStack;
}

/**
 * Builds the whole app from its context: validated config, stacks, cdk-nag.
 * `bin/app.ts` calls it for `cdk synth`; tests call it with their own context.
 */
export function buildApp(app: App): QuietUpgradeApp {
  const config = configFromContext((key) => app.node.tryGetContext(key));
  const env = {
    // Offline synth has no account: the stacks are then account-agnostic. `cdk deploy` with
    // credentials fills CDK_DEFAULT_ACCOUNT.
    account: config.env.account ?? process.env.CDK_DEFAULT_ACCOUNT,
    region: config.env.region,
  };
  Tags.of(app).add('app', 'quiet-upgrade');

  const database = new DatabaseStack(app, 'QuietUpgradeDatabase', {
    env,
    config,
    description: 'Network and production PostgreSQL, ready for blue/green upgrades',
  });

  const buffers = new BuffersStack(app, 'QuietUpgradeBuffers', {
    env,
    config,
    description: 'SQS write buffers with idempotent, throttled consumers',
    vpc: database.vpc,
    databaseClients: database.databaseClients,
    databaseSecret: database.database.secret,
  });

  const edge = new EdgeStack(app, 'QuietUpgradeEdge', {
    env,
    config,
    description: 'Load balancer, maintenance rules toggle and capture endpoints',
    vpc: database.vpc,
    queues: buffers.queues(),
  });

  const upgrade = new UpgradeStack(app, 'QuietUpgradeOrchestration', {
    env,
    config,
    description: 'The upgrade runbook (Step Functions), its watchdog and schedule',
    database,
    buffers,
    edge,
  });

  // Synth fails on any unacknowledged AwsSolutions finding.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, config, database, buffers, edge, upgrade };
}
