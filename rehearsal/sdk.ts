import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { invocation } from './functions';
import type { Principal } from './world/core';

/** The SDK clients the functions use, by the IAM service prefix of their actions. */
export const SDK_CLIENTS = [
  [RDSClient, 'rds'],
  [LambdaClient, 'lambda'],
  [SQSClient, 'sqs'],
  [SFNClient, 'states'],
  [ElasticLoadBalancingV2Client, 'elasticloadbalancing'],
  [SecretsManagerClient, 'secretsmanager'],
  [CloudWatchClient, 'cloudwatch'],
] as const;

/** The npm package of each client, for reading a bundle's imports. */
export const SDK_PACKAGES: Record<string, string> = {
  '@aws-sdk/client-rds': 'rds',
  '@aws-sdk/client-lambda': 'lambda',
  '@aws-sdk/client-sqs': 'sqs',
  '@aws-sdk/client-sfn': 'states',
  '@aws-sdk/client-elastic-load-balancing-v2': 'elasticloadbalancing',
  '@aws-sdk/client-secrets-manager': 'secretsmanager',
  '@aws-sdk/client-cloudwatch': 'cloudwatch',
};

/** The IAM action an SDK operation needs (they differ for a few operations). */
export function iamAction(service: string, operation: string): string {
  if (service === 'lambda' && operation === 'Invoke') return 'lambda:InvokeFunction';
  return `${service}:${operation}`;
}

export type Call = (
  principal: Principal,
  service: string,
  operation: string,
  input: Record<string, unknown>,
) => Promise<unknown>;

/**
 * Answers every call a function makes through the AWS SDK v3 with `call`, as the function
 * whose code is running (AsyncLocalStorage). The real command classes build the input; the
 * operation's name is the command's. Returns the undo.
 */
export function interceptSdk(call: Call): () => void {
  for (const [client, service] of SDK_CLIENTS) {
    Object.defineProperty(client.prototype, 'send', {
      configurable: true,
      writable: true,
      value: function send(command: { constructor: { name: string }; input: object }) {
        const running = invocation.getStore();
        const operation = command.constructor.name.replace(/Command$/, '');
        if (running === undefined) {
          return Promise.reject(
            new Error(`${service}:${operation} was called outside a function invocation`),
          );
        }
        return call(
          running.principal,
          service,
          operation,
          command.input as Record<string, unknown>,
        );
      },
    });
  }
  return () => {
    for (const [client] of SDK_CLIENTS) {
      delete (client.prototype as unknown as Record<string, unknown>).send;
    }
  };
}

/**
 * The AWS SDK operations a function's bundle can call: every `XxxCommand` and `paginateXxx`
 * the bundle names that one of the SDK clients it requires exports. The SDK is external to
 * the bundle (the runtime provides it), so its imports and command names survive
 * minification; what the bundle never names it cannot call.
 */
export function sdkOperations(
  source: string,
): { service: string; operation: string; action: string }[] {
  const packages = [
    ...new Set(
      [...source.matchAll(/require\("(@aws-sdk\/client-[a-z0-9-]+)"\)/g)].map((m) => m[1] ?? ''),
    ),
  ];
  const names = new Set([
    ...[...source.matchAll(/\b([A-Z][A-Za-z0-9]+)Command\b/g)].map((m) => m[1] ?? ''),
    ...[...source.matchAll(/\bpaginate([A-Z][A-Za-z0-9]+)\b/g)].map((m) => m[1] ?? ''),
  ]);
  const found = new Map<string, { service: string; operation: string; action: string }>();
  for (const pkg of packages) {
    const service = SDK_PACKAGES[pkg];
    if (service === undefined)
      throw new Error(`the bundle requires ${pkg}, which the rehearsal does not model`);
    const exported = hostRequire(pkg) as Record<string, unknown>;
    for (const name of names) {
      if (typeof exported[`${name}Command`] !== 'function') continue;
      const action = iamAction(service, name);
      const other = found.get(name);
      if (other !== undefined && other.service !== service) {
        throw new Error(`${name}Command is exported by both ${other.service} and ${service}`);
      }
      found.set(name, { service, operation: name, action });
    }
  }
  return [...found.values()];
}

const hostRequire: NodeJS.Require = require;
