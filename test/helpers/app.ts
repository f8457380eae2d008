import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Stack } from 'aws-cdk-lib';
import { buildApp, type QuietUpgradeApp } from '../../lib/app';
import { CONFIG_CONTEXT_KEY } from '../../lib/config';
import cdkJson from '../../cdk.json';

type Json = Record<string, unknown>;

/** The config shipped in cdk.json, as a fresh mutable copy. */
export function defaultRawConfig(): Json {
  return structuredClone(cdkJson.context[CONFIG_CONTEXT_KEY]) as Json;
}

/**
 * Builds the app exactly as `cdk synth` does (same feature flags from cdk.json), with the
 * config changed by `edit`. Function code is not bundled unless `bundle` is set: template
 * tests don't read it, and bundling is the slow part of a synth.
 */
export function synthApp(
  edit: (config: Json) => void = () => undefined,
  { bundle = false }: { bundle?: boolean } = {},
): QuietUpgradeApp {
  const raw = defaultRawConfig();
  edit(raw);
  const app = new App({
    context: {
      ...cdkJson.context,
      [CONFIG_CONTEXT_KEY]: raw,
      ...(bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
    },
  });
  return buildApp(app);
}

export function templateOf(stack: Stack): Template {
  return Template.fromStack(stack);
}

/** cdk-nag AwsSolutions findings that are not acknowledged. */
export function nagViolations(stack: Stack): unknown[] {
  return new AwsSolutionsChecks().validateScope(stack).violations;
}
