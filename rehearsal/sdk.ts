import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { ElasticLoadBalancingV2Client } from '@aws-sdk/client-elastic-load-balancing-v2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
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
 * The AWS SDK v3 packages as one function's code sees them: each client class is a subclass
 * whose `send` goes to `call` as that function, so every call it makes is answered by the
 * model and checked against its role. The real command classes build the input; the
 * operation's name is the command's. Returns undefined for any other module.
 */
export function sdkFor(call: Call, principal: Principal): (id: string) => unknown {
  const modules = new Map<string, unknown>();
  return (id) => {
    const service = SDK_PACKAGES[id];
    if (service === undefined) return undefined;
    const known = modules.get(id);
    if (known !== undefined) return known;
    const real = hostRequire(id) as Record<string, unknown>;
    const entry = SDK_CLIENTS.find(([, s]) => s === service);
    const name = Object.keys(real).find((k) => real[k] === entry?.[0]);
    if (entry === undefined || name === undefined)
      throw new Error(`${id} has no client the model knows`);
    const Real = entry[0] as unknown as new (...args: unknown[]) => object;
    class ModelledClient extends Real {
      send(command: { constructor: { name: string }; input: object }): Promise<unknown> {
        const operation = command.constructor.name.replace(/Command$/, '');
        return call(principal, service ?? '', operation, command.input as Record<string, unknown>);
      }
    }
    const module = { ...real, [name]: ModelledClient };
    modules.set(id, module);
    return module;
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
