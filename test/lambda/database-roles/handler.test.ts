import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  RDS_MASTER,
  TEST_DB_SECRET_ARN,
  connectFunctionsTo,
  makeRdsLikeMaster,
  startPostgres,
  type TestPostgres,
} from '../../helpers/postgres';

const secrets = mockClient(SecretsManagerClient);
let pg: TestPostgres;
let handler: (event: unknown) => Promise<{ PhysicalResourceId: string }>;
let resetDatabase: () => Promise<void>;
/** The user the sends consumer's secret names. */
let sendsUser = 'quiet_upgrade_sends';

const SENDS_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:sends-user';
const OPENS_SECRET = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:opens-user';
const roles = [{ role: 'quiet_upgrade_sends', table: 'email_sends', secretArn: SENDS_SECRET }];
const properties = (props: Record<string, unknown> = {}) => ({
  ServiceToken: 'arn:aws:lambda:::function:x',
  Roles: roles,
  Schema: 'demo',
  ...props,
});
const request = (RequestType: string, props: Record<string, unknown> = {}) => ({
  RequestType,
  ResourceProperties: properties(props),
  ...(RequestType === 'Update' ? { OldResourceProperties: properties() } : {}),
});

async function roleCount(role: string): Promise<number> {
  const r = await pg.db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM pg_roles WHERE rolname = $1 AND rolcanlogin',
    [role],
  );
  return r.rows[0]?.n ?? 0;
}

beforeAll(async () => {
  pg = await startPostgres();
  // The handler's connection shares PGlite's one session: it runs as the RDS-like master.
  await makeRdsLikeMaster(pg);
  await pg.db.exec(`SET ROLE ${RDS_MASTER}`);
  const master = connectFunctionsTo(pg);
  secrets
    .on(GetSecretValueCommand, { SecretId: TEST_DB_SECRET_ARN })
    .resolves({ SecretString: master });
  secrets.on(GetSecretValueCommand, { SecretId: SENDS_SECRET }).callsFake(() => ({
    SecretString: JSON.stringify({ username: sendsUser, password: 'a-generated-password-123' }),
  }));
  secrets.on(GetSecretValueCommand, { SecretId: OPENS_SECRET }).resolves({
    SecretString: JSON.stringify({
      username: 'quiet_upgrade_opens',
      password: 'another-password-4567',
    }),
  });
  ({ handler } = await import('../../../lambda/database-roles/handler'));
  ({ resetDatabase } = await import('../../../lambda/shared/database'));
});
afterAll(async () => {
  await resetDatabase();
  await pg.stop();
});

it('creates the tables and the roles on Create and Update, and drops the roles on Delete', async () => {
  await pg.db.exec('DROP TABLE email_sends');
  await expect(handler(request('Create'))).resolves.toEqual({
    PhysicalResourceId: 'quiet-upgrade-consumer-roles',
  });
  expect(await pg.count('email_sends')).toBe(0);
  expect(await roleCount('quiet_upgrade_sends')).toBe(1);
  await expect(handler(request('Update'))).resolves.toEqual({
    PhysicalResourceId: 'quiet-upgrade-consumer-roles',
  });
  await handler(request('Delete'));
  expect(await roleCount('quiet_upgrade_sends')).toBe(0);
});

it('runs as a master that is no superuser, as on RDS', async () => {
  const r = await pg.db.query<{ user: string; super: boolean }>(
    'SELECT current_user AS user, rolsuper AS super FROM pg_roles WHERE rolname = current_user',
  );
  expect(r.rows).toEqual([{ user: RDS_MASTER, super: false }]);
});

it('drops, on Update, a role the old properties named and the new ones do not', async () => {
  const both = [
    ...roles,
    { role: 'quiet_upgrade_opens', table: 'tracking_events', secretArn: OPENS_SECRET },
  ];
  await handler(request('Create', { Roles: both }));
  expect(await roleCount('quiet_upgrade_opens')).toBe(1);
  await handler({ ...request('Update'), OldResourceProperties: properties({ Roles: both }) });
  expect(await roleCount('quiet_upgrade_opens')).toBe(0);
  expect(await roleCount('quiet_upgrade_sends')).toBe(1);
});

it('leaves the schema alone unless it is the demo’s', async () => {
  await pg.db.exec('DROP TABLE email_sends');
  await expect(handler(request('Create', { Schema: 'none' }))).rejects.toThrow(
    'relation "email_sends" does not exist',
  );
  await handler(request('Create'));
});

it('refuses a secret for another user, naming it and not the password', async () => {
  sendsUser = 'platform_admin';
  const failure = handler(request('Update'));
  await expect(failure).rejects.toThrow(
    `secret ${SENDS_SECRET} must hold the username "quiet_upgrade_sends" and a password, got username: "platform_admin"`,
  );
  await expect(failure).rejects.not.toThrow('a-generated-password-123');
  sendsUser = 'quiet_upgrade_sends';
});

it.each([
  [{ RequestType: 'Create' }, /ResourceProperties/],
  [request('Replace'), /RequestType/],
  [request('Create', { Roles: [] }), /must name at least one role/],
  [request('Create', { Schema: 'everything' }), /Schema/],
  [{ ...request('Update'), OldResourceProperties: undefined }, /OldResourceProperties/],
])('refuses %j before touching the database', async (event, message) => {
  // A new connection reads the master secret first: no read, no connection, no statement.
  await resetDatabase();
  secrets.resetHistory();
  await expect(handler(event)).rejects.toThrow(message);
  await expect(handler(event)).rejects.toThrow(/^invalid consumer roles request/);
  expect(secrets).not.toHaveReceivedCommand(GetSecretValueCommand);
});
