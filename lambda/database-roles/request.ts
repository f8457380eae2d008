// AWS API actions called: secretsmanager:GetSecretValue on each consumer's secret.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as v from 'valibot';

/*
 * What the consumer roles custom resource is asked, for either engine's function
 * (handler.ts for PostgreSQL, ../database-roles-mysql/handler.ts for MySQL).
 */
const secrets = new SecretsManagerClient({});

const text = v.pipe(v.string(), v.minLength(1));
const Properties = v.object({
  /** One per consumer: its role, its table, and the secret that holds its password. */
  Roles: v.pipe(
    v.array(v.object({ role: text, table: text, secretArn: text })),
    v.minLength(1, 'must name at least one role'),
  ),
  /** "demo": the demo platform is ours, so its tables are created here (the schema file). */
  Schema: v.picklist(['demo', 'none']),
});
const Event = v.variant('RequestType', [
  v.object({ RequestType: v.picklist(['Create', 'Delete']), ResourceProperties: Properties }),
  v.object({
    RequestType: v.literal('Update'),
    ResourceProperties: Properties,
    /**
     * What the last Create or Update set: roles named there and no longer are dropped. Only
     * the role names are read, so a property added later does not fail every Update after it.
     */
    OldResourceProperties: v.object({ Roles: v.array(v.object({ role: text })) }),
  }),
]);
export type RolesRequest = v.InferOutput<typeof Event>;

/** The physical id: one set of roles per stack; an update applies the new set in place. */
export const PHYSICAL_ID = 'quiet-upgrade-consumer-roles';

/** The request, checked before anything touches the database. */
export function parseRequest(event: unknown): RolesRequest {
  const parsed = v.safeParse(Event, event);
  if (!parsed.success) {
    throw new Error(`invalid consumer roles request: ${v.summarize(parsed.issues)}`);
  }
  return parsed.output;
}

/** The roles an Update removes: named in the old properties, not in the new. */
export function removedRoles(request: RolesRequest): string[] {
  if (request.RequestType !== 'Update') return [];
  const kept = new Set(request.ResourceProperties.Roles.map((r) => r.role));
  return request.OldResourceProperties.Roles.map((r) => r.role).filter((r) => !kept.has(r));
}

/** A consumer's password, from its own secret, which must name that consumer. */
export async function passwordOf(secretArn: string, role: string): Promise<string> {
  const out = await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
  let value: { username?: unknown; password?: unknown };
  try {
    value = JSON.parse(out.SecretString ?? '') as typeof value;
  } catch {
    throw new Error(`secret ${secretArn} is not JSON (username, password)`);
  }
  if (value.username !== role || typeof value.password !== 'string') {
    throw new Error(
      `secret ${secretArn} must hold the username ${JSON.stringify(role)} and a password, got username: ${JSON.stringify(value.username)}`,
    );
  }
  return value.password;
}
