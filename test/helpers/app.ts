import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Stack } from 'aws-cdk-lib';
import { buildApp, type QuietUpgradeApp } from '../../lib/app';
import { CONFIG_CONTEXT_KEY } from '../../lib/config';
import { BUFFER_NAMES } from '../../lambda/shared/contracts';
import { ACCOUNT, REGION } from '../../rehearsal/synthesized';
import cdkJson from '../../cdk.json';

type Json = Record<string, unknown>;

/** The config shipped in cdk.json, as a fresh mutable copy. */
export function defaultRawConfig(): Json {
  return structuredClone(cdkJson.context[CONFIG_CONTEXT_KEY]) as Json;
}

/**
 * Builds the app exactly as `cdk synth` does (same feature flags from cdk.json), with the
 * config changed by `edit`. Function code is not bundled unless `bundle` names the stacks
 * to bundle: template tests don't read it, and bundling is a slow part of a synth.
 */
export function synthApp(
  edit: (config: Json) => void = () => undefined,
  { bundle = [] }: { bundle?: string[] } = {},
): QuietUpgradeApp {
  const raw = defaultRawConfig();
  edit(raw);
  const app = new App({
    context: {
      ...cdkJson.context,
      [CONFIG_CONTEXT_KEY]: raw,
      'aws:cdk:bundling-stacks': bundle,
    },
    // CDK's own lint of the templates against CloudFormation's rules takes seconds per synth;
    // `npm run synth` (the README's main job) runs it, and these tests read the templates.
    builtinCloudFormationValidation: false,
  });
  return buildApp(app);
}

/** An existing platform to adopt, with every id and ARN distinct so a test can trace each. */
export const EXISTING_PLATFORM = {
  database: {
    secretArn: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:platform-db-master-AbC123`,
    parameterGroupName: 'platform-db-pg16',
    targetParameterGroupName: 'platform-db-pg17',
  },
  network: {
    vpcId: 'vpc-0a1b2c3d4e5f60718',
    subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
    databaseClientSecurityGroupId: 'sg-0ccccccccccccccc3',
  },
  listener: {
    listenerArn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:listener/app/platform/50dc6c495c0c9188/f2f7dc8efc522ab2`,
    appTargetGroupArn: `arn:aws:elasticloadbalancing:${REGION}:${ACCOUNT}:targetgroup/web/0123456789abcdef`,
  },
  buffers: Object.fromEntries(
    BUFFER_NAMES.map((name, i) => [
      name,
      {
        queueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:platform-${name}`,
        deadLetterQueueArn: `arn:aws:sqs:${REGION}:${ACCOUNT}:platform-${name}-dlq`,
        eventSourceMappingId: `0000000${i}-1111-2222-3333-444444444444`,
        consumerFunctionName: `platform-${name}-consumer`,
      },
    ]),
  ),
  consumerTimeoutSeconds: 45,
};

/** Switches a raw config to adopting `EXISTING_PLATFORM`: the one documented switch. */
export function adoptExisting(config: Json): void {
  config.platform = 'existing';
  config.existing = structuredClone(EXISTING_PLATFORM);
  (config.env as Json).account = ACCOUNT;
}

/** The demo platform's database and buffers stacks, which `platform: "demo"` always builds. */
export function demoStacks(
  built: QuietUpgradeApp,
): Required<Pick<QuietUpgradeApp, 'database' | 'buffers'>> {
  const { database, buffers } = built;
  if (database === undefined || buffers === undefined) {
    throw new Error('the demo platform was not built: is platform set to "existing"?');
  }
  return { database, buffers };
}

export function templateOf(stack: Stack): Template {
  return Template.fromStack(stack);
}

/** cdk-nag AwsSolutions findings that are not acknowledged. */
export function nagViolations(stack: Stack): unknown[] {
  return new AwsSolutionsChecks().validateScope(stack).violations;
}
