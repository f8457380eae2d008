import {
  DescribeListenersCommand,
  ElasticLoadBalancingV2Client,
  ListenerNotFoundException,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import {
  GetEventSourceMappingCommand,
  LambdaClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-lambda';
import {
  BlueGreenDeploymentNotFoundFault,
  type DBInstance,
  DBInstanceNotFoundFault,
  DBParameterGroupNotFoundFault,
  type DBProxy,
  DBProxyNotFoundFault,
  type DBProxyTarget,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBEngineVersionsCommand,
  DescribeDBInstancesCommand,
  DescribeDBParametersCommand,
  DescribeDBProxiesCommand,
  DescribeDBProxyTargetsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { ListExecutionsCommand, SFNClient, StateMachineDoesNotExist } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, QueueDoesNotExist, SQSClient } from '@aws-sdk/client-sqs';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { preflight, type PreflightEvent } from '../../../lambda/preflight/preflight';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { testPlan } from '../../helpers/plan';

const ACCOUNT = 'arn:aws:sqs:eu-west-1:123456789012';
const SOURCE_ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db';
const LISTENER_ARN =
  'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/edge/50dc6c495c0c9188/f2f7dc8efc522ab2';
const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:quiet-upgrade';
const EXECUTION_ARN = 'arn:aws:states:eu-west-1:123456789012:execution:quiet-upgrade:run-2';
const OTHER_EXECUTION_ARN = 'arn:aws:states:eu-west-1:123456789012:execution:quiet-upgrade:run-1';

const PLAN: UpgradePlan = testPlan({
  sourceArn: SOURCE_ARN,
  mappings: [
    { name: 'sends', uuid: 'a1b2c3d4-0000-0000-0000-000000000001' },
    { name: 'unsubscribes', uuid: 'a1b2c3d4-0000-0000-0000-000000000002' },
  ],
  queues: [
    {
      name: 'sends',
      url: 'https://sqs.eu-west-1.amazonaws.com/123456789012/sends',
      arn: `${ACCOUNT}:sends`,
    },
    {
      name: 'unsubscribes',
      url: 'https://sqs.eu-west-1.amazonaws.com/123456789012/unsubscribes',
      arn: `${ACCOUNT}:unsubscribes`,
    },
  ],
  listenerArn: LISTENER_ARN,
});
const EVENT: PreflightEvent = {
  plan: PLAN,
  stateMachineArn: STATE_MACHINE_ARN,
  executionArn: EXECUTION_ARN,
};

const CHECK_ORDER = [
  'source-available',
  'valid-upgrade-target',
  'automated-backups',
  'logical-replication',
  'no-managed-master-password',
  'major-upgrade-source-version',
  'no-other-blue-green-deployment',
  'no-leftover-instances',
  'rds-proxy',
  'single-flight',
  'queue:sends',
  'queue:unsubscribes',
  'mapping:sends',
  'mapping:unsubscribes',
  'listener',
];

const rds = mockClient(RDSClient);
const sfn = mockClient(SFNClient);
const sqs = mockClient(SQSClient);
const lambda = mockClient(LambdaClient);
const elb = mockClient(ElasticLoadBalancingV2Client);
const clients = {
  rds: new RDSClient({}),
  sfn: new SFNClient({}),
  sqs: new SQSClient({}),
  lambda: new LambdaClient({}),
  elb: new ElasticLoadBalancingV2Client({}),
};

const blue = (overrides: Partial<DBInstance> = {}): DBInstance => ({
  DBInstanceIdentifier: 'platform-db',
  DBInstanceArn: SOURCE_ARN,
  DBInstanceStatus: 'available',
  Engine: 'postgres',
  EngineVersion: '16.6',
  BackupRetentionPeriod: 7,
  DBParameterGroups: [
    { DBParameterGroupName: 'parameters-postgres16', ParameterApplyStatus: 'in-sync' },
  ],
  ...overrides,
});

const meta = { $metadata: {} };
const notFound = (id: string) =>
  new DBInstanceNotFoundFault({ message: `DBInstance ${id} not found.`, ...meta });
/**
 * Blue is `db`, and no instance answers to the names an earlier upgrade or restore leaves
 * behind. (The mock answers with the latest matching `on`, so the names go after blue.)
 */
const sourceIs = (db: DBInstance) => {
  rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [db] });
  for (const id of ['platform-db-old1', 'platform-db-failed1']) {
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: id }).rejects(notFound(id));
  }
};
const proxy = (overrides: Partial<DBProxy> = {}): DBProxy => ({
  DBProxyName: 'platform-proxy',
  EngineFamily: 'POSTGRESQL',
  Status: 'available',
  ...overrides,
});
const proxyTarget = (overrides: Partial<DBProxyTarget> = {}): DBProxyTarget => ({
  Type: 'RDS_INSTANCE',
  RdsResourceId: 'platform-db',
  TargetArn: SOURCE_ARN,
  Role: 'READ_WRITE',
  TargetHealth: { State: 'AVAILABLE' },
  ...overrides,
});
const checkNamed = async (event: PreflightEvent, name: string) =>
  (await preflight(clients, event)).checks.find((c) => c.name === name);

beforeEach(() => {
  for (const mock of [rds, sfn, sqs, lambda, elb]) mock.reset();
  sourceIs(blue());
  rds.on(DescribeDBProxiesCommand).resolves({ DBProxies: [] });
  rds.on(DescribeDBEngineVersionsCommand).resolves({
    DBEngineVersions: [
      {
        Engine: 'postgres',
        EngineVersion: '16.6',
        ValidUpgradeTarget: [
          { EngineVersion: '16.8' },
          { EngineVersion: '17.2' },
          { EngineVersion: '17.4' },
        ],
      },
    ],
  });
  // Two pages: the parameter this check needs is on the second.
  rds
    .on(DescribeDBParametersCommand)
    .resolvesOnce({
      Parameters: [{ ParameterName: 'max_wal_senders', ParameterValue: '20' }],
      Marker: 'page-2',
    })
    .resolves({ Parameters: [{ ParameterName: 'rds.logical_replication', ParameterValue: '1' }] });
  rds.on(DescribeBlueGreenDeploymentsCommand).resolves({ BlueGreenDeployments: [] });
  sfn.on(ListExecutionsCommand).resolves({
    executions: [
      {
        executionArn: EXECUTION_ARN,
        stateMachineArn: STATE_MACHINE_ARN,
        name: 'run-2',
        status: 'RUNNING',
        startDate: new Date('2026-11-22T04:00:00Z'),
      },
    ],
  });
  for (const queue of PLAN.queues) {
    sqs
      .on(GetQueueAttributesCommand, { QueueUrl: queue.url })
      .resolves({ Attributes: { QueueArn: queue.arn } });
  }
  lambda.on(GetEventSourceMappingCommand).callsFake((input: { UUID: string }) => ({
    UUID: input.UUID,
    State: 'Enabled',
  }));
  elb.on(DescribeListenersCommand).resolves({ Listeners: [{ ListenerArn: LISTENER_ARN }] });
});

describe('preflight', () => {
  it('passes when everything is in place and lists every check in a fixed order', async () => {
    const result = await preflight(clients, EVENT);
    expect(result.failures).toEqual([]);
    expect(result.passed).toBe(true);
    expect(result.checks.map((c) => c.name)).toEqual(CHECK_ORDER);
    expect(result.checks.every((c) => c.ok)).toBe(true);
    expect(result.source).toEqual({
      identifier: 'platform-db',
      arn: SOURCE_ARN,
      engineVersion: '16.6',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: 'platform-db',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBParametersCommand, {
      DBParameterGroupName: 'parameters-postgres16',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeBlueGreenDeploymentsCommand, {
      Filters: [{ Name: 'source', Values: [SOURCE_ARN] }],
    });
    for (const leftover of ['platform-db-old1', 'platform-db-failed1']) {
      expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
        DBInstanceIdentifier: leftover,
      });
    }
    expect(rds).toHaveReceivedCommandTimes(DescribeDBProxiesCommand, 1);
    const byName = Object.fromEntries(result.checks.map((c) => [c.name, c.detail]));
    expect(byName['no-leftover-instances']).toBe(
      'no DB instance named "platform-db-old1" or "platform-db-failed1"',
    );
    expect(byName['rds-proxy']).toBe(
      'no RDS Proxy targets "platform-db"; do not add it to one until the upgrade is over',
    );
    expect(byName['major-upgrade-source-version']).toBe(
      '16.6 is new enough for a blue/green major upgrade',
    );
    expect(sfn).toHaveReceivedCommandWith(ListExecutionsCommand, {
      stateMachineArn: STATE_MACHINE_ARN,
      statusFilter: 'RUNNING',
    });
    for (const queue of PLAN.queues) {
      expect(sqs).toHaveReceivedCommandWith(GetQueueAttributesCommand, {
        QueueUrl: queue.url,
        AttributeNames: ['QueueArn'],
      });
    }
    for (const mapping of PLAN.mappings) {
      expect(lambda).toHaveReceivedCommandWith(GetEventSourceMappingCommand, {
        UUID: mapping.uuid,
      });
    }
    expect(elb).toHaveReceivedCommandWith(DescribeListenersCommand, {
      ListenerArns: [LISTENER_ARN],
    });
  });

  it('asks for upgrade targets of the version blue really runs, not the one the stack says', async () => {
    sourceIs(blue({ EngineVersion: '16.8' }));
    const result = await preflight(clients, EVENT);
    expect(rds).toHaveReceivedCommandWith(DescribeDBEngineVersionsCommand, {
      Engine: 'postgres',
      EngineVersion: '16.8',
    });
    expect(result.passed).toBe(true);
    expect(result.source?.engineVersion).toBe('16.8');
    expect(result.checks[1]).toEqual({
      name: 'valid-upgrade-target',
      ok: true,
      detail: '16.8 (the stack says 16.6) can be upgraded to 17.2',
    });
  });

  it('reports every failed check at once, in check order, each with the value it saw', async () => {
    sourceIs(
      blue({
        DBInstanceStatus: 'modifying',
        BackupRetentionPeriod: 0,
        DBParameterGroups: [
          {
            DBParameterGroupName: 'parameters-postgres16',
            ParameterApplyStatus: 'pending-reboot',
          },
        ],
        MasterUserSecret: {
          SecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db',
        },
      }),
    );
    rds.on(DescribeDBEngineVersionsCommand).resolves({
      DBEngineVersions: [{ ValidUpgradeTarget: [{ EngineVersion: '16.8' }] }],
    });
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [
        { BlueGreenDeploymentIdentifier: 'bgd-old', Status: 'SWITCHOVER_FAILED' },
      ],
    });
    sfn.on(ListExecutionsCommand).resolves({
      executions: [
        {
          executionArn: OTHER_EXECUTION_ARN,
          stateMachineArn: STATE_MACHINE_ARN,
          name: 'run-1',
          status: 'RUNNING',
          startDate: new Date('2026-11-22T03:00:00Z'),
        },
        {
          executionArn: EXECUTION_ARN,
          stateMachineArn: STATE_MACHINE_ARN,
          name: 'run-2',
          status: 'RUNNING',
          startDate: new Date('2026-11-22T04:00:00Z'),
        },
      ],
    });
    sqs
      .on(GetQueueAttributesCommand, { QueueUrl: PLAN.queues[1]?.url })
      .resolves({ Attributes: { QueueArn: `${ACCOUNT}:unsubscribes-old` } });
    lambda
      .on(GetEventSourceMappingCommand, { UUID: PLAN.mappings[0]?.uuid })
      .resolves({ UUID: PLAN.mappings[0]?.uuid, State: 'Disabled' });

    const result = await preflight(clients, EVENT);

    expect(result.passed).toBe(false);
    expect(result.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual([
      'source-available',
      'valid-upgrade-target',
      'automated-backups',
      'logical-replication',
      'no-managed-master-password',
      'no-other-blue-green-deployment',
      'single-flight',
      'queue:unsubscribes',
      'mapping:sends',
    ]);
    expect(result.failures).toEqual([
      'Source DB instance "platform-db" is "modifying", not "available". Wait until the operation on it (modification, maintenance, backup) has finished, then start again.',
      '"platform-db" runs postgres 16.6, which RDS cannot upgrade to 17.2; valid targets from 16.6: 16.8. Start again with one of them as targetEngineVersion.',
      'Automated backups are off on "platform-db" (BackupRetentionPeriod 0). Set database.backupRetentionDays (1-35) in cdk.json, deploy, then start again.',
      'Parameter group "parameters-postgres16" on "platform-db" is "pending-reboot", not "in-sync": a change waits to be applied. Reboot "platform-db" at a quiet moment, then start again.',
      expect.stringContaining(
        'master password managed by RDS in Secrets Manager (arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db)',
      ),
      expect.stringContaining(
        '"platform-db" is already the source of blue/green deployment bgd-old (SWITCHOVER_FAILED).',
      ),
      expect.stringContaining(`Another upgrade is running: ${OTHER_EXECUTION_ARN}. Only one`),
      expect.stringContaining(
        `has ARN ${ACCOUNT}:unsubscribes-old, but the plan says ${ACCOUNT}:unsubscribes.`,
      ),
      expect.stringContaining(
        'event source mapping a1b2c3d4-0000-0000-0000-000000000001 is "Disabled", not "Enabled"',
      ),
    ]);
    // The failed checks carry the same sentences; the passing ones say what they saw.
    const byName = Object.fromEntries(result.checks.map((c) => [c.name, c]));
    expect(byName['automated-backups']?.detail).toBe(result.failures[2]);
    expect(byName.listener).toEqual({
      name: 'listener',
      ok: true,
      detail: `${LISTENER_ARN} exists`,
    });
  });

  it('reports both problems when a parameter group is out of sync and logical replication is off', async () => {
    sourceIs(
      blue({
        DBParameterGroups: [
          { DBParameterGroupName: 'parameters-postgres16', ParameterApplyStatus: 'applying' },
        ],
      }),
    );
    rds.on(DescribeDBParametersCommand).resolves({
      Parameters: [{ ParameterName: 'rds.logical_replication', ParameterValue: '0' }],
    });
    const result = await preflight(clients, EVENT);
    expect(result.failures).toEqual([
      expect.stringContaining('is "applying", not "in-sync"'),
      'rds.logical_replication is "0" in parameter group "parameters-postgres16" of "platform-db"; blue/green needs "1". Set it to 1, reboot "platform-db", then start again.',
    ]);
  });

  it('follows every page of parameters to find rds.logical_replication', async () => {
    rds
      .on(DescribeDBParametersCommand)
      .resolvesOnce({
        Parameters: [{ ParameterName: 'work_mem', ParameterValue: '4096' }],
        Marker: 'p2',
      })
      .resolvesOnce({
        Parameters: [{ ParameterName: 'wal_level', ParameterValue: 'logical' }],
        Marker: 'p3',
      })
      .resolves({
        Parameters: [{ ParameterName: 'rds.logical_replication', ParameterValue: '0' }],
      });
    const result = await preflight(clients, EVENT);
    expect(rds).toHaveReceivedCommandTimes(DescribeDBParametersCommand, 3);
    expect(rds).toHaveReceivedNthSpecificCommandWith(3, DescribeDBParametersCommand, {
      DBParameterGroupName: 'parameters-postgres16',
      Marker: 'p3',
    });
    expect(result.failures).toEqual([expect.stringContaining('rds.logical_replication is "0"')]);
  });

  it('says logical replication is not set when no page has the parameter', async () => {
    rds.on(DescribeDBParametersCommand).resolves({ Parameters: [] });
    const result = await preflight(clients, EVENT);
    expect(result.failures).toEqual([
      expect.stringContaining(
        'rds.logical_replication is not set in parameter group "parameters-postgres16"',
      ),
    ]);
  });

  it('follows every page of running executions to find another run', async () => {
    sfn
      .on(ListExecutionsCommand)
      .resolvesOnce({
        executions: [
          {
            executionArn: EXECUTION_ARN,
            stateMachineArn: STATE_MACHINE_ARN,
            name: 'run-2',
            status: 'RUNNING',
            startDate: new Date('2026-11-22T04:00:00Z'),
          },
        ],
        nextToken: 'more',
      })
      .resolves({
        executions: [
          {
            executionArn: OTHER_EXECUTION_ARN,
            stateMachineArn: STATE_MACHINE_ARN,
            name: 'run-1',
            status: 'RUNNING',
            startDate: new Date('2026-11-22T03:59:59Z'),
          },
        ],
      });
    const result = await preflight(clients, EVENT);
    expect(sfn).toHaveReceivedNthSpecificCommandWith(2, ListExecutionsCommand, {
      stateMachineArn: STATE_MACHINE_ARN,
      statusFilter: 'RUNNING',
      nextToken: 'more',
    });
    expect(result.checks.find((c) => c.name === 'single-flight')).toMatchObject({
      ok: false,
      detail: expect.stringContaining(`Another upgrade is running: ${OTHER_EXECUTION_ARN}.`),
    });
    expect(result.failures).toHaveLength(1);
  });

  it('lets the run started first go on and stops the one started after it', async () => {
    const run = (arn: string, name: string, at: string) => ({
      executionArn: arn,
      stateMachineArn: STATE_MACHINE_ARN,
      name,
      status: 'RUNNING' as const,
      startDate: new Date(at),
    });
    // This run (run-2) started first; run-1 started a second later.
    sfn.on(ListExecutionsCommand).resolves({
      executions: [
        run(OTHER_EXECUTION_ARN, 'run-1', '2026-11-22T04:00:01Z'),
        run(EXECUTION_ARN, 'run-2', '2026-11-22T04:00:00Z'),
      ],
    });
    expect((await preflight(clients, EVENT)).failures).toEqual([]);

    // Started in the same millisecond: the lower ARN goes on, so exactly one of the two does.
    sfn.on(ListExecutionsCommand).resolves({
      executions: [
        run(OTHER_EXECUTION_ARN, 'run-1', '2026-11-22T04:00:00Z'),
        run(EXECUTION_ARN, 'run-2', '2026-11-22T04:00:00Z'),
      ],
    });
    expect((await preflight(clients, EVENT)).failures).toEqual([
      expect.stringContaining(`Another upgrade is running: ${OTHER_EXECUTION_ARN}.`),
    ]);
  });

  it('turns "not found" errors into failures and skips what depends on a missing instance', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(
        new DBInstanceNotFoundFault({ message: 'DBInstance platform-db not found.', ...meta }),
      );
    sqs
      .on(GetQueueAttributesCommand, { QueueUrl: PLAN.queues[0]?.url })
      .rejects(new QueueDoesNotExist({ message: 'The specified queue does not exist.', ...meta }));
    lambda
      .on(GetEventSourceMappingCommand, { UUID: PLAN.mappings[1]?.uuid })
      .rejects(new ResourceNotFoundException({ message: 'not found', ...meta }));
    elb
      .on(DescribeListenersCommand)
      .rejects(
        new ListenerNotFoundException({ message: 'One or more listeners not found', ...meta }),
      );
    sfn
      .on(ListExecutionsCommand)
      .rejects(new StateMachineDoesNotExist({ message: 'State Machine Does Not Exist', ...meta }));

    const result = await preflight(clients, EVENT);

    expect(result.passed).toBe(false);
    expect(result.source).toBeNull();
    expect(result.failures).toEqual([
      'Source DB instance "platform-db" was not found in this account and region. Check database.instanceIdentifier in cdk.json and the region the state machine runs in.',
      `State machine ${STATE_MACHINE_ARN} was not found, so other runs cannot be ruled out. Start the upgrade from the deployed state machine.`,
      'Buffer queue "sends" (https://sqs.eu-west-1.amazonaws.com/123456789012/sends) does not exist. Deploy the QuietUpgradeBuffers stack, then start again.',
      expect.stringContaining(
        `The "unsubscribes" consumer's event source mapping ${PLAN.mappings[1]?.uuid} was not found.`,
      ),
      expect.stringContaining(`Load balancer listener ${LISTENER_ARN} was not found`),
    ]);
    const skipped = result.checks.filter((c) => c.detail.startsWith('not checked:'));
    expect(skipped.map((c) => [c.name, c.ok])).toEqual([
      ['valid-upgrade-target', false],
      ['automated-backups', false],
      ['logical-replication', false],
      ['no-managed-master-password', false],
      ['major-upgrade-source-version', false],
    ]);
    expect(rds).not.toHaveReceivedCommand(DescribeDBEngineVersionsCommand);
    // Still checked, against the plan's ARN.
    expect(rds).toHaveReceivedCommandWith(DescribeBlueGreenDeploymentsCommand, {
      Filters: [{ Name: 'source', Values: [SOURCE_ARN] }],
    });
  });

  it('reports a parameter group that no longer exists', async () => {
    rds
      .on(DescribeDBParametersCommand)
      .rejects(new DBParameterGroupNotFoundFault({ message: 'not found', ...meta }));
    const result = await preflight(clients, EVENT);
    expect(result.failures).toEqual([
      expect.stringContaining(
        'Parameter group "parameters-postgres16" attached to "platform-db" was not found.',
      ),
    ]);
  });

  it('treats BlueGreenDeploymentNotFound for the source filter as "none"', async () => {
    rds
      .on(DescribeBlueGreenDeploymentsCommand)
      .rejects(new BlueGreenDeploymentNotFoundFault({ message: 'not found', ...meta }));
    const result = await preflight(clients, EVENT);
    expect(result.passed).toBe(true);
  });

  describe('leftover instances', () => {
    it('fails naming each instance left under -old1 or -failed1, with its version and status', async () => {
      rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-old1' }).resolves({
        DBInstances: [
          blue({
            DBInstanceIdentifier: 'platform-db-old1',
            EngineVersion: '15.8',
            DBInstanceStatus: 'stopped',
          }),
        ],
      });
      rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-failed1' }).resolves({
        DBInstances: [
          blue({
            DBInstanceIdentifier: 'platform-db-failed1',
            EngineVersion: '16.6',
            DBInstanceStatus: 'available',
          }),
        ],
      });
      const result = await preflight(clients, EVENT);
      expect(result.passed).toBe(false);
      expect(result.failures).toEqual([
        'DB instance "platform-db-old1" (postgres 15.8, stopped) is left from an earlier upgrade or restore. ' +
          'RDS would name the next old blue "platform-db-old2", but the restore step expects "platform-db-old1". ' +
          'Delete "platform-db-old1" after a final snapshot, or rename it, then run the upgrade again.',
        'DB instance "platform-db-failed1" (postgres 16.6, available) is left from an earlier upgrade or restore. ' +
          'The restore step could not rename a failed new writer to "platform-db-failed1". ' +
          'Delete "platform-db-failed1" after a final snapshot, or rename it, then run the upgrade again.',
      ]);
      expect(result.checks.find((c) => c.name === 'no-leftover-instances')?.ok).toBe(false);
    });

    it('fails for a -failed1 instance alone', async () => {
      rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-failed1' }).resolves({
        DBInstances: [blue({ DBInstanceIdentifier: 'platform-db-failed1' })],
      });
      expect((await preflight(clients, EVENT)).failures).toEqual([
        expect.stringContaining('DB instance "platform-db-failed1" (postgres 16.6, available)'),
      ]);
    });

    it('throws on errors other than "not found", for Step Functions to retry', async () => {
      rds
        .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-old1' })
        .rejects(Object.assign(new Error('not authorized'), { name: 'AccessDenied' }));
      await expect(preflight(clients, EVENT)).rejects.toThrow('not authorized');
    });
  });

  describe('RDS Proxy', () => {
    it('passes when a proxy targets blue and reaches it, following every page', async () => {
      rds
        .on(DescribeDBProxiesCommand)
        .resolvesOnce({
          DBProxies: [proxy({ DBProxyName: 'mysql-proxy', EngineFamily: 'MYSQL' })],
          Marker: 'proxies-2',
        })
        .resolves({ DBProxies: [proxy()] });
      rds
        .on(DescribeDBProxyTargetsCommand)
        .resolvesOnce({
          Targets: [proxyTarget({ RdsResourceId: 'other-db' })],
          Marker: 'targets-2',
        })
        .resolves({ Targets: [proxyTarget()] });
      const check = await checkNamed(EVENT, 'rds-proxy');
      expect(check).toEqual({
        name: 'rds-proxy',
        ok: true,
        detail: '"platform-db" is a target of RDS Proxy "platform-proxy" (AVAILABLE)',
      });
      expect(rds).toHaveReceivedNthSpecificCommandWith(2, DescribeDBProxiesCommand, {
        Marker: 'proxies-2',
      });
      // A MySQL proxy cannot target a PostgreSQL instance, so its targets are not read.
      expect(rds).not.toHaveReceivedCommandWith(DescribeDBProxyTargetsCommand, {
        DBProxyName: 'mysql-proxy',
      });
      expect(rds).toHaveReceivedNthSpecificCommandWith(2, DescribeDBProxyTargetsCommand, {
        DBProxyName: 'platform-proxy',
        Marker: 'targets-2',
      });
    });

    it('fails naming the proxy when it cannot reach blue', async () => {
      rds.on(DescribeDBProxiesCommand).resolves({ DBProxies: [proxy()] });
      rds.on(DescribeDBProxyTargetsCommand).resolves({
        Targets: [
          proxyTarget({
            TargetHealth: {
              State: 'UNAVAILABLE',
              Reason: 'AUTH_FAILURE',
              Description: 'Proxy does not have any registered credentials',
            },
          }),
        ],
      });
      const result = await preflight(clients, EVENT);
      expect(result.failures).toEqual([
        'RDS Proxy "platform-proxy" (status available) has "platform-db" as a target in state ' +
          'UNAVAILABLE (AUTH_FAILURE: Proxy does not have any registered credentials), not AVAILABLE; ' +
          'the switchover checks that the proxy reaches blue and green. ' +
          `Fix the proxy's access to "platform-db" (security groups, secret, IAM role) or remove ` +
          'the proxy target, then start again.',
      ]);
    });

    it('fails when the proxy in front of blue is not available', async () => {
      rds.on(DescribeDBProxiesCommand).resolves({ DBProxies: [proxy({ Status: 'suspended' })] });
      rds.on(DescribeDBProxyTargetsCommand).resolves({ Targets: [proxyTarget()] });
      expect((await preflight(clients, EVENT)).failures).toEqual([
        expect.stringContaining(
          'RDS Proxy "platform-proxy" (status suspended) has "platform-db" as a target in state AVAILABLE,',
        ),
      ]);
    });

    it('passes when the proxies target only other instances, or are deleted meanwhile', async () => {
      rds.on(DescribeDBProxiesCommand).resolves({
        DBProxies: [proxy({ DBProxyName: 'other-proxy' }), proxy({ DBProxyName: 'gone-proxy' })],
      });
      rds
        .on(DescribeDBProxyTargetsCommand, { DBProxyName: 'other-proxy' })
        .resolves({ Targets: [proxyTarget({ RdsResourceId: 'platform-db-replica' })] });
      rds
        .on(DescribeDBProxyTargetsCommand, { DBProxyName: 'gone-proxy' })
        .rejects(new DBProxyNotFoundFault({ message: 'not found', ...meta }));
      const check = await checkNamed(EVENT, 'rds-proxy');
      expect(check?.ok).toBe(true);
      expect(check?.detail).toMatch(/^no RDS Proxy targets "platform-db"/);
    });

    it("throws when reading a proxy's targets fails unexpectedly", async () => {
      rds.on(DescribeDBProxiesCommand).resolves({ DBProxies: [proxy()] });
      rds
        .on(DescribeDBProxyTargetsCommand)
        .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
      await expect(preflight(clients, EVENT)).rejects.toThrow('Rate exceeded');
    });
  });

  describe('major upgrade source version', () => {
    const run = (engineVersion: string, targetEngineVersion: string) => {
      sourceIs(blue({ EngineVersion: engineVersion }));
      return checkNamed(
        { ...EVENT, plan: { ...PLAN, targetEngineVersion } },
        'major-upgrade-source-version',
      );
    };

    it.each([
      ['15.4', '17.2'],
      ['14.9', '16.8'],
      ['13.12', '17.2'],
      ['12.16', '16.8'],
      ['11.21', '16.8'],
      ['11.22-rds.20240418', '16.8'],
      ['16.1', '17.2'],
      ['17.4', '18.1'],
    ])('passes a major upgrade from %s (to %s)', async (from, to) => {
      expect(await run(from, to)).toEqual({
        name: 'major-upgrade-source-version',
        ok: true,
        detail: `${from} is new enough for a blue/green major upgrade`,
      });
    });

    it.each([
      ['15.3', '17.2', '15.4 or a later 15.x version'],
      ['14.8', '16.8', '14.9 or a later 14.x version'],
      ['13.11', '17.2', '13.12 or a later 13.x version'],
      ['12.15', '16.8', '12.16 or a later 12.x version'],
      ['11.20', '16.8', '11.21 or a later 11.x version'],
      ['10.21', '14.9', 'a version that allows it (11.21, 12.16'],
    ])('fails a major upgrade from %s (to %s), naming blue and %s', async (from, to, fix) => {
      const check = await run(from, to);
      expect(check?.ok).toBe(false);
      expect(check?.detail).toContain(
        `"platform-db" runs postgres ${from}, from which RDS blue/green cannot upgrade to another major version (${to}).`,
      );
      expect(check?.detail).toContain(`Upgrade "platform-db" in place to ${fix}`);
    });

    it('passes a minor upgrade from below the minimums: no logical replication', async () => {
      expect(await run('15.3', '15.8')).toMatchObject({
        ok: true,
        detail: '15.3 to 15.8 is not a major upgrade',
      });
    });

    it('checks the version blue really runs, not the one the stack says', async () => {
      const plan = { ...PLAN, currentEngineVersion: '15.4', targetEngineVersion: '17.2' };
      sourceIs(blue({ EngineVersion: '15.3' }));
      const check = await checkNamed({ ...EVENT, plan }, 'major-upgrade-source-version');
      expect(check?.detail).toContain('runs postgres 15.3');
    });

    it('fails when a version cannot be read', async () => {
      const check = await run('16.6', 'latest');
      expect(check?.ok).toBe(false);
      expect(check?.detail).toContain('Cannot read the major version of "platform-db" (16.6)');
    });
  });

  describe('RDS for MySQL', () => {
    const MYSQL_PLAN: UpgradePlan = {
      ...PLAN,
      engine: 'mysql',
      currentEngineVersion: '8.0.42',
      targetEngineVersion: '8.4.5',
      targetParameterGroupName: 'parameters-mysql84',
    };
    const MYSQL_EVENT: PreflightEvent = { ...EVENT, plan: MYSQL_PLAN };
    const MYSQL_CHECK_ORDER = [
      'source-available',
      'valid-upgrade-target',
      'automated-backups',
      'no-managed-master-password',
      'green-event-scheduler-off',
      'no-custom-option-group',
      'no-other-blue-green-deployment',
      'no-leftover-instances',
      'rds-proxy',
      'single-flight',
      'queue:sends',
      'queue:unsubscribes',
      'mapping:sends',
      'mapping:unsubscribes',
      'listener',
    ];
    const mysqlBlue = (overrides: Partial<DBInstance> = {}): DBInstance =>
      blue({
        Engine: 'mysql',
        EngineVersion: '8.0.42',
        DBParameterGroups: [
          { DBParameterGroupName: 'parameters-mysql80', ParameterApplyStatus: 'in-sync' },
        ],
        OptionGroupMemberships: [{ OptionGroupName: 'default:mysql-8-0', Status: 'in-sync' }],
        ...overrides,
      });
    /** event_scheduler in the group green gets (plan.targetParameterGroupName). */
    const greenGroupSets = (value: string | undefined) =>
      rds
        .on(DescribeDBParametersCommand, { DBParameterGroupName: 'parameters-mysql84' })
        .resolves({ Parameters: [{ ParameterName: 'event_scheduler', ParameterValue: value }] });
    const checkOf = async (name: string, event: PreflightEvent = MYSQL_EVENT) =>
      checkNamed(event, name);

    beforeEach(() => {
      sourceIs(mysqlBlue());
      rds.on(DescribeDBEngineVersionsCommand).resolves({
        DBEngineVersions: [
          {
            Engine: 'mysql',
            EngineVersion: '8.0.42',
            ValidUpgradeTarget: [{ EngineVersion: '8.0.43' }, { EngineVersion: '8.4.5' }],
          },
        ],
      });
      // Blue's group has the Event Scheduler on, which blue/green allows: only green's matters.
      rds
        .on(DescribeDBParametersCommand, { DBParameterGroupName: 'parameters-mysql80' })
        .resolves({ Parameters: [{ ParameterName: 'event_scheduler', ParameterValue: 'ON' }] });
      // Two pages, as a MySQL group has hundreds of parameters: it is on the second.
      rds
        .on(DescribeDBParametersCommand, { DBParameterGroupName: 'parameters-mysql84' })
        .resolvesOnce({
          Parameters: [{ ParameterName: 'binlog_format', ParameterValue: 'ROW' }],
          Marker: 'page-2',
        })
        .resolves({ Parameters: [{ ParameterName: 'event_scheduler', ParameterValue: 'OFF' }] });
    });

    it('passes and lists only the checks that apply to MySQL, in a fixed order', async () => {
      const result = await preflight(clients, MYSQL_EVENT);
      expect(result.failures).toEqual([]);
      expect(result.passed).toBe(true);
      // The PostgreSQL-only checks are not listed at all, not even as passed.
      expect(result.checks.map((c) => c.name)).toEqual(MYSQL_CHECK_ORDER);
      expect(result.checks.every((c) => c.ok)).toBe(true);
      const byName = Object.fromEntries(result.checks.map((c) => [c.name, c.detail]));
      expect(byName['valid-upgrade-target']).toBe('8.0.42 can be upgraded to 8.4.5');
      expect(byName['automated-backups']).toBe('backups kept 7 days, so binary logging is on');
      expect(byName['green-event-scheduler-off']).toBe(
        'event_scheduler=OFF in "parameters-mysql84", the parameter group green gets',
      );
      expect(byName['no-custom-option-group']).toBe('"platform-db" uses only "default:mysql-8-0"');
      expect(rds).toHaveReceivedCommandWith(DescribeDBEngineVersionsCommand, {
        Engine: 'mysql',
        EngineVersion: '8.0.42',
      });
      // Green's group, every page; never blue's (rds.logical_replication is PostgreSQL's).
      expect(rds).toHaveReceivedNthSpecificCommandWith(2, DescribeDBParametersCommand, {
        DBParameterGroupName: 'parameters-mysql84',
        Marker: 'page-2',
      });
      expect(rds).not.toHaveReceivedCommandWith(DescribeDBParametersCommand, {
        DBParameterGroupName: 'parameters-mysql80',
      });
    });

    it("says which engine and version when RDS cannot upgrade blue's MySQL to the target", async () => {
      const plan = { ...MYSQL_PLAN, targetEngineVersion: '8.4.6' };
      expect((await preflight(clients, { ...MYSQL_EVENT, plan })).failures).toEqual([
        '"platform-db" runs mysql 8.0.42, which RDS cannot upgrade to 8.4.6; valid targets from 8.0.42: 8.0.43, 8.4.5. Start again with one of them as targetEngineVersion.',
      ]);
    });

    it('fails when automated backups, and so binary logging, are off', async () => {
      sourceIs(mysqlBlue({ BackupRetentionPeriod: 0 }));
      expect((await preflight(clients, MYSQL_EVENT)).failures).toEqual([
        'Automated backups are off on "platform-db" (BackupRetentionPeriod 0), and with them binary logging, ' +
          'which blue/green replicates from. Set database.backupRetentionDays (1-35) in cdk.json, deploy, then start again.',
      ]);
    });

    describe('event scheduler on green', () => {
      it("fails when the group green gets turns it on, though blue's group is not read", async () => {
        greenGroupSets('ON');
        const result = await preflight(clients, MYSQL_EVENT);
        expect(result.failures).toEqual([
          'event_scheduler is "ON" in parameter group "parameters-mysql84", which green gets; ' +
            'blue/green needs the Event Scheduler off on green. ' +
            'Set event_scheduler=OFF in "parameters-mysql84", then start again.',
        ]);
        expect(result.checks.find((c) => c.name === 'green-event-scheduler-off')?.ok).toBe(false);
      });

      it('fails closed when the group leaves it at the engine default', async () => {
        greenGroupSets(undefined);
        expect(await checkOf('green-event-scheduler-off')).toEqual({
          name: 'green-event-scheduler-off',
          ok: false,
          detail:
            'event_scheduler is not set (the engine default, which AWS does not document as OFF) ' +
            'in parameter group "parameters-mysql84", which green gets; blue/green needs the ' +
            'Event Scheduler off on green. Set event_scheduler=OFF in "parameters-mysql84", then start again.',
        });
      });

      it('fails closed when no page lists it', async () => {
        rds
          .on(DescribeDBParametersCommand, { DBParameterGroupName: 'parameters-mysql84' })
          .resolves({ Parameters: [{ ParameterName: 'binlog_format', ParameterValue: 'ROW' }] });
        expect((await checkOf('green-event-scheduler-off'))?.detail).toMatch(
          /^event_scheduler is not set \(the engine default/,
        );
      });

      it.each(['OFF', 'off', '0', 'DISABLED'])('passes when it is %s', async (value) => {
        greenGroupSets(value);
        expect(await checkOf('green-event-scheduler-off')).toMatchObject({ ok: true });
      });

      it.each(['ON', '1'])('fails when it is %s', async (value) => {
        greenGroupSets(value);
        expect((await checkOf('green-event-scheduler-off'))?.detail).toContain(
          `event_scheduler is "${value}" in parameter group "parameters-mysql84"`,
        );
      });

      it('fails when the group green gets does not exist', async () => {
        rds
          .on(DescribeDBParametersCommand, { DBParameterGroupName: 'parameters-mysql84' })
          .rejects(new DBParameterGroupNotFoundFault({ message: 'not found', ...meta }));
        expect((await preflight(clients, MYSQL_EVENT)).failures).toEqual([
          expect.stringMatching(
            /^Parameter group "parameters-mysql84" \(plan.targetParameterGroupName\), which green gets, was not found\./,
          ),
        ]);
      });

      it('fails without a call when the plan names no group for green', async () => {
        const plan = { ...MYSQL_PLAN, targetParameterGroupName: '' };
        const check = await checkOf('green-event-scheduler-off', { ...MYSQL_EVENT, plan });
        expect(check?.ok).toBe(false);
        expect(check?.detail).toMatch(/^plan.targetParameterGroupName is empty, got: "",/);
        expect(rds).not.toHaveReceivedCommand(DescribeDBParametersCommand);
      });

      it('throws when reading the group fails unexpectedly, for Step Functions to retry', async () => {
        rds
          .on(DescribeDBParametersCommand, { DBParameterGroupName: 'parameters-mysql84' })
          .rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
        await expect(preflight(clients, MYSQL_EVENT)).rejects.toThrow('Rate exceeded');
      });
    });

    describe('custom option group', () => {
      const custom = { OptionGroupName: 'platform-audit', Status: 'in-sync' };

      it('fails a major upgrade from blue with a custom option group, naming it and the default', async () => {
        sourceIs(mysqlBlue({ OptionGroupMemberships: [custom] }));
        const result = await preflight(clients, MYSQL_EVENT);
        expect(result.failures).toEqual([
          '"platform-db" uses custom option group "platform-audit" (in-sync), and RDS refuses a ' +
            'major version upgrade (8.0.42 to 8.4.5) in a blue/green deployment whose source has ' +
            'a custom option group. If no option in it is needed, move "platform-db" to the ' +
            'default option group default:mysql-8-0 and start again; otherwise upgrade it ' +
            'outside this runbook (a blue/green deployment without a major version upgrade, ' +
            'then upgrade green).',
        ]);
        expect(result.checks.find((c) => c.name === 'no-custom-option-group')?.ok).toBe(false);
      });

      it('fails while blue is still moving off a custom group', async () => {
        sourceIs(
          mysqlBlue({
            OptionGroupMemberships: [
              { OptionGroupName: 'default:mysql-8-0', Status: 'pending-apply' },
              { OptionGroupName: 'platform-audit', Status: 'pending-removal' },
            ],
          }),
        );
        expect((await checkOf('no-custom-option-group'))?.detail).toMatch(
          /^"platform-db" uses custom option group "platform-audit" \(pending-removal\), and RDS refuses/,
        );
      });

      it('passes a minor upgrade from blue with a custom option group', async () => {
        sourceIs(mysqlBlue({ OptionGroupMemberships: [custom] }));
        const plan = { ...MYSQL_PLAN, targetEngineVersion: '8.0.43' };
        expect(await checkOf('no-custom-option-group', { ...MYSQL_EVENT, plan })).toEqual({
          name: 'no-custom-option-group',
          ok: true,
          detail: '8.0.42 to 8.0.43 is not a major upgrade, so any option group will do',
        });
      });

      it('decides "major" from the version blue really runs, not the one the stack says', async () => {
        // The stack says 8.0.42, but blue already runs 8.4.4: 8.4.5 is a minor upgrade.
        sourceIs(mysqlBlue({ EngineVersion: '8.4.4', OptionGroupMemberships: [custom] }));
        expect(await checkOf('no-custom-option-group')).toMatchObject({ ok: true });
        // And the reverse: the stack says 8.4.4, blue still runs 8.0.42.
        sourceIs(mysqlBlue({ OptionGroupMemberships: [custom] }));
        const plan = { ...MYSQL_PLAN, currentEngineVersion: '8.4.4' };
        expect(await checkOf('no-custom-option-group', { ...MYSQL_EVENT, plan })).toMatchObject({
          ok: false,
        });
      });

      it('takes a custom group named like "default-..." for the custom group it is', async () => {
        // Only RDS's own groups have the colon; anyone may name a group "default-audit".
        sourceIs(
          mysqlBlue({
            OptionGroupMemberships: [{ OptionGroupName: 'default-audit', Status: 'in-sync' }],
          }),
        );
        expect((await checkOf('no-custom-option-group'))?.detail).toMatch(
          /^"platform-db" uses custom option group "default-audit" \(in-sync\)/,
        );
      });

      it('passes when blue reports no option group', async () => {
        sourceIs(mysqlBlue({ OptionGroupMemberships: [] }));
        expect(await checkOf('no-custom-option-group')).toEqual({
          name: 'no-custom-option-group',
          ok: true,
          detail: '"platform-db" reports no option group',
        });
      });
    });

    it('reads only MySQL proxies, and fails naming one that cannot reach blue', async () => {
      rds.on(DescribeDBProxiesCommand).resolves({
        DBProxies: [
          proxy({ DBProxyName: 'postgres-proxy' }),
          proxy({ DBProxyName: 'mysql-proxy', EngineFamily: 'MYSQL' }),
        ],
      });
      rds.on(DescribeDBProxyTargetsCommand).resolves({
        Targets: [
          proxyTarget({ TargetHealth: { State: 'UNAVAILABLE', Reason: 'CONNECTION_FAILED' } }),
        ],
      });
      const result = await preflight(clients, MYSQL_EVENT);
      expect(result.failures).toEqual([
        expect.stringMatching(
          /^RDS Proxy "mysql-proxy" \(status available\) has "platform-db" as a target in state UNAVAILABLE \(CONNECTION_FAILED\)/,
        ),
      ]);
      // A PostgreSQL proxy cannot target a MySQL instance, so its targets are not read.
      expect(rds).not.toHaveReceivedCommandWith(DescribeDBProxyTargetsCommand, {
        DBProxyName: 'postgres-proxy',
      });
      expect(rds).toHaveReceivedCommandWith(DescribeDBProxyTargetsCommand, {
        DBProxyName: 'mysql-proxy',
      });
    });

    it("still checks green's event scheduler when blue is missing, and skips blue's checks", async () => {
      rds.on(DescribeDBInstancesCommand).rejects(notFound('platform-db'));
      greenGroupSets('ON');
      const result = await preflight(clients, MYSQL_EVENT);
      expect(result.failures).toEqual([
        expect.stringContaining('Source DB instance "platform-db" was not found'),
        expect.stringContaining('event_scheduler is "ON" in parameter group "parameters-mysql84"'),
      ]);
      expect(
        result.checks.filter((c) => c.detail.startsWith('not checked:')).map((c) => c.name),
      ).toEqual([
        'valid-upgrade-target',
        'automated-backups',
        'no-managed-master-password',
        'no-custom-option-group',
      ]);
    });
  });

  it.each([
    ['RDS throttles DescribeDBProxies', () => rds.on(DescribeDBProxiesCommand)],
    ['RDS throttles DescribeDBEngineVersions', () => rds.on(DescribeDBEngineVersionsCommand)],
    [
      'SQS denies GetQueueAttributes',
      () => sqs.on(GetQueueAttributesCommand, { QueueUrl: PLAN.queues[1]?.url }),
    ],
    ['Lambda fails GetEventSourceMapping', () => lambda.on(GetEventSourceMappingCommand)],
    ['RDS fails DescribeDBInstances', () => rds.on(DescribeDBInstancesCommand)],
  ])('throws when %s with an unexpected error, for Step Functions to retry', async (_c, on) => {
    const error = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    on().rejects(error);
    await expect(preflight(clients, EVENT)).rejects.toThrow('Rate exceeded');
  });
});
