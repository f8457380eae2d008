import {
  BlueGreenDeploymentNotFoundFault,
  type DBInstance,
  DBInstanceNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { protectWriter, unprotectGreen } from '../../../lambda/deletion-protection/protection';

const rds = mockClient(RDSClient);
const client = new RDSClient({});
const PREFIX = 'arn:aws:rds:eu-west-1:123456789012:db:';
const plan = { sourceIdentifier: 'platform-db', sourceArn: `${PREFIX}platform-db` };

/** A deployment whose members are these (source, target) instances; its source is the first's. */
function deployment(
  members: [string, string | undefined][],
  source = members[0]?.[0],
  createdBy = 'run-1',
): void {
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
    BlueGreenDeployments: [
      {
        BlueGreenDeploymentIdentifier: 'bgd-1',
        Source: `${PREFIX}${source}`,
        TagList: [{ Key: 'quiet-upgrade:execution', Value: createdBy }],
        SwitchoverDetails: members.map(([source, target]) => ({
          SourceMember: `${PREFIX}${source}`,
          TargetMember: target === undefined ? undefined : `${PREFIX}${target}`,
        })),
      },
    ],
  });
}

function instances(list: DBInstance[]): void {
  rds
    .on(DescribeDBInstancesCommand)
    .callsFake(({ DBInstanceIdentifier }: { DBInstanceIdentifier: string }) => {
      const id = DBInstanceIdentifier.split(':').at(-1);
      const found = list.find((i) => i.DBInstanceIdentifier === id);
      if (found === undefined)
        throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
      return { DBInstances: [found] };
    });
}

beforeEach(() => rds.reset());

describe('unprotect green', () => {
  it('turns deletion protection off on every protected, available green instance, and only there', async () => {
    deployment([
      ['platform-db', 'platform-db-green-abc'],
      ['platform-db-replica', 'platform-db-replica-green-def'],
    ]);
    instances([
      {
        DBInstanceIdentifier: 'platform-db',
        DBInstanceStatus: 'available',
        DeletionProtection: true,
      },
      {
        DBInstanceIdentifier: 'platform-db-green-abc',
        DBInstanceStatus: 'available',
        DeletionProtection: true,
      },
      {
        DBInstanceIdentifier: 'platform-db-replica-green-def',
        DBInstanceStatus: 'available',
        DeletionProtection: false,
      },
    ]);
    const result = await unprotectGreen(client, plan, 'bgd-1', 'run-1');
    expect(result).toEqual({ done: true, unprotected: ['platform-db-green-abc'], waiting: [] });
    expect(rds).toHaveReceivedCommandTimes(ModifyDBInstanceCommand, 1);
    expect(rds).toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
      DBInstanceIdentifier: 'platform-db-green-abc',
      DeletionProtection: false,
      ApplyImmediately: true,
    });
  });

  it('waits for a protected green instance that is not available, changing nothing', async () => {
    deployment([['platform-db', 'platform-db-green-abc']]);
    instances([
      {
        DBInstanceIdentifier: 'platform-db-green-abc',
        DBInstanceStatus: 'creating',
        DeletionProtection: true,
      },
    ]);
    const result = await unprotectGreen(client, plan, 'bgd-1', 'run-1');
    expect(result).toEqual({
      done: false,
      unprotected: [],
      waiting: ['platform-db-green-abc (creating)'],
    });
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('is done when the deployment, a member or its target is already gone', async () => {
    deployment([
      ['platform-db', undefined],
      ['platform-db-replica', 'platform-db-replica-green-def'],
    ]);
    instances([]);
    expect(await unprotectGreen(client, plan, 'bgd-1', 'run-1')).toEqual({
      done: true,
      unprotected: [],
      waiting: [],
    });
    rds
      .on(DescribeBlueGreenDeploymentsCommand)
      .rejects(new BlueGreenDeploymentNotFoundFault({ message: 'gone', $metadata: {} }));
    expect(await unprotectGreen(client, plan, 'bgd-1', 'run-1')).toEqual({
      done: true,
      unprotected: [],
      waiting: [],
    });
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('refuses to unprotect blue, even if the deployment names it as a target', async () => {
    deployment([['platform-db', 'platform-db']]);
    instances([
      {
        DBInstanceIdentifier: 'platform-db',
        DBInstanceStatus: 'available',
        DeletionProtection: true,
      },
    ]);
    await expect(unprotectGreen(client, plan, 'bgd-1', 'run-1')).rejects.toThrow(
      /refusing to turn deletion protection off on platform-db: it is the source \(blue\)/,
    );
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('refuses a deployment of another database, changing nothing', async () => {
    deployment([['billing-db', 'billing-db-green-xyz']]);
    instances([
      {
        DBInstanceIdentifier: 'billing-db-green-xyz',
        DBInstanceStatus: 'available',
        DeletionProtection: true,
      },
    ]);
    await expect(unprotectGreen(client, plan, 'bgd-1', 'run-1')).rejects.toThrow(
      `refusing to turn deletion protection off in blue/green deployment bgd-1: its source is "${PREFIX}billing-db", not the deployed database ${PREFIX}platform-db.`,
    );
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('refuses a deployment another run created, changing nothing', async () => {
    deployment([['platform-db', 'platform-db-green-abc']], 'platform-db', 'run-0');
    instances([
      {
        DBInstanceIdentifier: 'platform-db-green-abc',
        DBInstanceStatus: 'available',
        DeletionProtection: true,
      },
    ]);
    await expect(unprotectGreen(client, plan, 'bgd-1', 'run-1')).rejects.toThrow(
      'refusing to turn deletion protection off in blue/green deployment bgd-1: it was created by run "run-0" (tag quiet-upgrade:execution), not by "run-1".',
    );
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('takes a switched-over deployment of the database as its own, whichever name its source shows', async () => {
    // Whether Source follows blue's rename to -old1 AWS does not say: both are accepted.
    for (const source of ['platform-db', 'platform-db-old1']) {
      rds.reset();
      deployment([['platform-db-old1', 'platform-db-green-abc']], source);
      instances([
        {
          DBInstanceIdentifier: 'platform-db-green-abc',
          DBInstanceStatus: 'available',
          DeletionProtection: true,
        },
      ]);
      await expect(unprotectGreen(client, plan, 'bgd-1', 'run-1')).resolves.toMatchObject({
        unprotected: ['platform-db-green-abc'],
      });
    }
  });

  it('throws other errors for Step Functions to retry', async () => {
    rds
      .on(DescribeBlueGreenDeploymentsCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    await expect(unprotectGreen(client, plan, 'bgd-1', 'run-1')).rejects.toThrow('Rate exceeded');
  });
});

describe('protect writer', () => {
  it('turns deletion protection on for the writer under the original name when it is off', async () => {
    instances([
      {
        DBInstanceIdentifier: 'platform-db',
        DBInstanceStatus: 'available',
        DeletionProtection: false,
      },
    ]);
    expect(await protectWriter(client, plan)).toBe(true);
    expect(rds).toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
      DBInstanceIdentifier: 'platform-db',
      DeletionProtection: true,
      ApplyImmediately: true,
    });
  });

  it('changes nothing when it is on already', async () => {
    instances([
      {
        DBInstanceIdentifier: 'platform-db',
        DBInstanceStatus: 'available',
        DeletionProtection: true,
      },
    ]);
    expect(await protectWriter(client, plan)).toBe(false);
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('says so when there is no writer under the original name', async () => {
    instances([]);
    await expect(protectWriter(client, plan)).rejects.toThrow(
      /cannot protect platform-db from deletion: it was not found/,
    );
  });
});
