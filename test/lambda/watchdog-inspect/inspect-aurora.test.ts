import {
  GetEventSourceMappingCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import {
  type DBCluster,
  DBClusterNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { inspect } from '../../../lambda/watchdog-inspect/inspect';
import { testPlan } from '../../helpers/plan';

const lambda = mockClient(LambdaClient);
const rds = mockClient(RDSClient);
const sfn = mockClient(SFNClient);
const clients = { lambda: new LambdaClient({}), rds: new RDSClient({}), sfn: new SFNClient({}) };
const STOPPED = 'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:run-1';
const plan = testPlan({
  engine: 'aurora-postgresql',
  sourceArn: 'arn:aws:rds:eu-west-1:123456789012:cluster:platform-db',
  currentEngineVersion: '16.6',
  targetEngineVersion: '17.4',
  mappings: [{ name: 'sends', uuid: 'uuid-sends' }],
});

/** Maintenance on, the consumer paused, no deployment left, and these clusters. */
function leftOver(clusters: Record<string, DBCluster>): void {
  lambda.reset();
  rds.reset();
  sfn.reset();
  sfn.on(ListExecutionsCommand).resolves({ executions: [] });
  const body = new TextEncoder().encode(JSON.stringify({ maintenance: 'on', rules: [] }));
  lambda.on(InvokeCommand).resolves({ Payload: body as InvokeCommandOutput['Payload'] });
  lambda.on(GetEventSourceMappingCommand).resolves({ State: 'Disabled' });
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({ BlueGreenDeployments: [] });
  rds.on(DescribeDBClustersCommand).callsFake(({ DBClusterIdentifier }) => {
    const c = clusters[DBClusterIdentifier];
    if (c === undefined) throw new DBClusterNotFoundFault({ message: 'gone', $metadata: {} });
    return { DBClusters: [c] };
  });
}
const writerCluster = (version: string, group: string): DBCluster => ({
  DBClusterIdentifier: 'platform-db',
  EngineVersion: version,
  Status: 'available',
  DBClusterParameterGroup: group,
});

describe('watchdog inspection of an Aurora cluster', () => {
  it.each([
    ['17.4', 'verify-then-resume', 'the writer platform-db runs the target version 17.4'],
    ['16.6', 'resume', 'the writer platform-db runs 16.6, not the target'],
  ])('reads the writer at cluster level: running %s, %s', async (version, action, reason) => {
    leftOver({ 'platform-db': writerCluster(version, 'cluster-params-apg16') });
    const result = await inspect(clients, plan, STOPPED);
    expect(result.action).toBe(action);
    expect(result.reason).toContain(reason);
    expect(result.observed.writer).toEqual({
      identifier: 'platform-db',
      engineVersion: version,
      status: 'available',
      parameterGroup: 'cluster-params-apg16',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBClustersCommand, {
      DBClusterIdentifier: 'platform-db',
    });
    expect(rds).not.toHaveReceivedCommand(DescribeDBInstancesCommand);
  });

  it.each(['-restore', '-fence'])(
    'pages an operator when the cluster uses a %s copy of its DB cluster parameter group',
    async (suffix) => {
      leftOver({ 'platform-db': writerCluster('16.6', `cluster-params-apg16${suffix}`) });
      const result = await inspect(clients, plan, STOPPED);
      expect(result.action).toBe('page-operator');
      expect(result.reason).toContain(
        `platform-db uses the parameter group cluster-params-apg16${suffix}: a restore of old blue`,
      );
    },
  );

  it('pages an operator when a <id>-failed1 cluster exists', async () => {
    leftOver({
      'platform-db': writerCluster('16.6', 'cluster-params-apg16'),
      'platform-db-failed1': writerCluster('17.4', 'cluster-params-apg17'),
    });
    const result = await inspect(clients, plan, STOPPED);
    expect(result.action).toBe('page-operator');
    expect(result.observed.failedWriter).toBe(true);
    expect(result.reason).toContain('platform-db-failed1 exists');
  });

  it('pages an operator, naming a DB cluster, when the writer cluster is gone', async () => {
    leftOver({});
    const result = await inspect(clients, plan, STOPPED);
    expect(result.action).toBe('page-operator');
    expect(result.reason).toContain('but there is no DB cluster platform-db');
  });
});
