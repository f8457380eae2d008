import {
  type DBCluster,
  DBClusterNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  ModifyDBClusterCommand,
  ModifyDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { protectWriter, unprotectGreen } from '../../../lambda/deletion-protection/protection';

const rds = mockClient(RDSClient);
const client = new RDSClient({});
const ARN = 'arn:aws:rds:eu-west-1:123456789012:';
const plan = {
  sourceIdentifier: 'platform-db',
  sourceArn: `${ARN}cluster:platform-db`,
  engine: 'aurora-postgresql' as const,
};

/**
 * An Aurora deployment as AWS's DescribeBlueGreenDeployments example shows one: a member for
 * the cluster, one per instance and one per custom endpoint.
 */
function deployment(green = 'platform-db-green-abc123', source = plan.sourceArn): void {
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
    BlueGreenDeployments: [
      {
        BlueGreenDeploymentIdentifier: 'bgd-1',
        Source: source,
        TagList: [{ Key: 'quiet-upgrade:execution', Value: 'run-1' }],
        SwitchoverDetails: [
          { SourceMember: plan.sourceArn, TargetMember: `${ARN}cluster:${green}` },
          {
            SourceMember: `${ARN}db:platform-db-writer`,
            TargetMember: `${ARN}db:platform-db-writer-green-q1w2e3`,
          },
          {
            SourceMember: `${ARN}cluster-endpoint:reporting`,
            TargetMember: `${ARN}cluster-endpoint:reporting-green-z9x8`,
          },
        ],
      },
    ],
  });
}

function clusters(list: DBCluster[]): void {
  rds
    .on(DescribeDBClustersCommand)
    .callsFake(({ DBClusterIdentifier }: { DBClusterIdentifier: string }) => {
      const id = DBClusterIdentifier.split(':').at(-1);
      const found = list.find((c) => c.DBClusterIdentifier === id);
      if (found === undefined) {
        throw new DBClusterNotFoundFault({ message: 'not found', $metadata: {} });
      }
      return { DBClusters: [found] };
    });
}

beforeEach(() => rds.reset());

describe('unprotect green, Aurora', () => {
  it('turns deletion protection off on the green cluster only, with ModifyDBCluster', async () => {
    deployment();
    clusters([
      {
        DBClusterIdentifier: 'platform-db-green-abc123',
        DeletionProtection: true,
        Status: 'available',
      },
    ]);
    const result = await unprotectGreen(client, plan, 'bgd-1', 'run-1');
    expect(result).toEqual({ done: true, unprotected: ['platform-db-green-abc123'], waiting: [] });
    expect(rds).toHaveReceivedCommandTimes(ModifyDBClusterCommand, 1);
    expect(rds).toHaveReceivedCommandWith(ModifyDBClusterCommand, {
      DBClusterIdentifier: 'platform-db-green-abc123',
      DeletionProtection: false,
      ApplyImmediately: true,
    });
    // The green cluster, by its ARN; never the instances or the endpoints.
    expect(rds).toHaveReceivedCommandWith(DescribeDBClustersCommand, {
      DBClusterIdentifier: `${ARN}cluster:platform-db-green-abc123`,
    });
    expect(rds).toHaveReceivedCommandTimes(DescribeDBClustersCommand, 1);
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('leaves a green cluster without protection alone', async () => {
    deployment();
    clusters([
      {
        DBClusterIdentifier: 'platform-db-green-abc123',
        DeletionProtection: false,
        Status: 'available',
      },
    ]);
    expect(await unprotectGreen(client, plan, 'bgd-1', 'run-1')).toEqual({
      done: true,
      unprotected: [],
      waiting: [],
    });
    expect(rds).not.toHaveReceivedCommand(ModifyDBClusterCommand);
  });

  it('reports a protected green cluster that is not available as waiting', async () => {
    deployment();
    clusters([
      {
        DBClusterIdentifier: 'platform-db-green-abc123',
        DeletionProtection: true,
        Status: 'modifying',
      },
    ]);
    expect(await unprotectGreen(client, plan, 'bgd-1', 'run-1')).toEqual({
      done: false,
      unprotected: [],
      waiting: ['platform-db-green-abc123 (modifying)'],
    });
    expect(rds).not.toHaveReceivedCommand(ModifyDBClusterCommand);
  });

  it('refuses to unprotect a target cluster that is blue', async () => {
    deployment('platform-db');
    clusters([
      { DBClusterIdentifier: 'platform-db', DeletionProtection: true, Status: 'available' },
    ]);
    await expect(unprotectGreen(client, plan, 'bgd-1', 'run-1')).rejects.toThrow(
      'refusing to turn deletion protection off on DB cluster platform-db: it is the source (blue)',
    );
    expect(rds).not.toHaveReceivedCommand(ModifyDBClusterCommand);
  });

  it('refuses a deployment of another cluster, and one another run created', async () => {
    deployment(undefined, `${ARN}cluster:billing-db`);
    clusters([
      {
        DBClusterIdentifier: 'platform-db-green-abc123',
        DeletionProtection: true,
        Status: 'available',
      },
    ]);
    await expect(unprotectGreen(client, plan, 'bgd-1', 'run-1')).rejects.toThrow(
      'its source is "arn:aws:rds:eu-west-1:123456789012:cluster:billing-db"',
    );
    deployment();
    await expect(unprotectGreen(client, plan, 'bgd-1', 'run-2')).rejects.toThrow(
      'it was created by run "run-1"',
    );
    expect(rds).not.toHaveReceivedCommand(ModifyDBClusterCommand);
  });
});

describe('protect the writer, Aurora', () => {
  it('turns deletion protection on for the cluster under the original name', async () => {
    clusters([{ DBClusterIdentifier: 'platform-db', DeletionProtection: false }]);
    expect(await protectWriter(client, plan)).toBe(true);
    expect(rds).toHaveReceivedCommandWith(ModifyDBClusterCommand, {
      DBClusterIdentifier: 'platform-db',
      DeletionProtection: true,
      ApplyImmediately: true,
    });
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('changes nothing when the cluster is protected', async () => {
    clusters([{ DBClusterIdentifier: 'platform-db', DeletionProtection: true }]);
    expect(await protectWriter(client, plan)).toBe(false);
    expect(rds).not.toHaveReceivedCommand(ModifyDBClusterCommand);
  });

  it('throws when the cluster is not found', async () => {
    clusters([]);
    await expect(protectWriter(client, plan)).rejects.toThrow(
      'cannot protect DB cluster platform-db from deletion: it was not found',
    );
  });
});
