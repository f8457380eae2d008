import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import {
  forgetDatabaseSecret,
  readDatabaseSecret,
  tlsWanted,
} from '../../../lambda/shared/database-secret';

const secrets = mockClient(SecretsManagerClient);
const ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:db';
const full = { host: 'db.example', port: 5432, username: 'platform_admin', password: 'pw' };

beforeEach(() => {
  process.env.DB_SECRET_ARN = ARN;
  forgetDatabaseSecret();
  secrets.reset();
});
afterEach(() => delete process.env.DB_TLS);

describe('the database secret', () => {
  it.each(['host', 'port', 'username', 'password'])(
    'names a missing %s instead of connecting somewhere else',
    async (field) => {
      const { [field as keyof typeof full]: _gone, ...rest } = full;
      secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(rest) });
      await expect(readDatabaseSecret()).rejects.toThrow(`database secret ${ARN} has no ${field}`);
    },
  );

  it('is read once, then kept, unless a fresh read is asked for', async () => {
    secrets.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify(full) });
    await expect(readDatabaseSecret()).resolves.toEqual(full);
    await readDatabaseSecret();
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    await readDatabaseSecret(true);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(2);
  });
});

describe('TLS to the database', () => {
  it('is on unless turned off, and may be turned off only for a loopback database', () => {
    expect(tlsWanted('db.example')).toBe(true);
    process.env.DB_TLS = 'disable';
    expect(tlsWanted('127.0.0.1')).toBe(false);
    expect(() => tlsWanted('platform-db.abc.eu-west-1.rds.amazonaws.com')).toThrow(
      'DB_TLS=disable is for a database on loopback only, got host: "platform-db.abc.eu-west-1.rds.amazonaws.com"',
    );
  });
});
