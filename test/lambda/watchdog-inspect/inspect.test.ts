import {
  GetEventSourceMappingCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  LambdaClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-lambda';
import {
  type BlueGreenDeployment,
  DBInstanceNotFoundFault,
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import {
  type InspectPlan,
  type Observed,
  type WatchdogAction,
  decide,
  inspect,
} from '../../../lambda/watchdog-inspect/inspect';

const ARN = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db';
const plan: InspectPlan = {
  sourceIdentifier: 'platform-db',
  sourceArn: ARN,
  currentEngineVersion: '16.6',
  targetEngineVersion: '17.2',
  mappings: [
    { name: 'sends', uuid: 'uuid-sends' },
    { name: 'tracking', uuid: 'uuid-tracking' },
  ],
  maintenanceToggleFunction: 'quiet-upgrade-maintenance-toggle',
};

const enabled = [
  { uuid: 'uuid-sends', state: 'Enabled' },
  { uuid: 'uuid-tracking', state: 'Enabled' },
];
const paused = [
  { uuid: 'uuid-sends', state: 'Disabled' },
  { uuid: 'uuid-tracking', state: 'Disabled' },
];
const oldWriter = { identifier: 'platform-db', engineVersion: '16.6', status: 'available' };
const newWriter = { ...oldWriter, engineVersion: '17.2' };

function observed(overrides: Partial<Observed> = {}): Observed {
  return {
    maintenance: 'off',
    mappings: enabled,
    deployments: [],
    writer: oldWriter,
    ...overrides,
  };
}
const bgd = (status: string, id = 'bgd-abc123') => ({ id, status });

describe('decide', () => {
  it.each([
    ['the failed writer renamed', { failedWriter: true }, 'platform-db-failed1 exists'],
    [
      'the fence group attached',
      { writer: { ...newWriter, parameterGroup: 'pg17-fence' } },
      'uses the parameter group pg17-fence',
    ],
    [
      'old blue back under its name',
      { writer: { ...oldWriter, parameterGroup: 'pg16-restore' } },
      'uses the parameter group pg16-restore',
    ],
  ])(
    'pages, never resumes, when a restore of old blue stopped part way (%s)',
    (_case, overrides, found) => {
      const result = decide(plan, observed({ maintenance: 'on', mappings: paused, ...overrides }));
      expect(result.action).toBe('page-operator');
      expect(result.reason).toContain(found);
      expect(result.reason).toContain('a restore of old blue after a failed switchover');
    },
  );

  it('does nothing when there is no deployment, maintenance is off and consumers run', () => {
    const result = decide(plan, observed());
    expect(result).toEqual({
      action: 'nothing',
      blueGreenDeploymentIdentifier: null,
      reason: expect.stringContaining('nothing to recover'),
      observed: {
        maintenance: 'off',
        mappings: enabled,
        blueGreen: null,
        writer: oldWriter,
        failedWriter: false,
      },
    });
  });

  it.each(['PROVISIONING', 'AVAILABLE', 'INVALID_CONFIGURATION', 'SWITCHOVER_FAILED'])(
    'resumes and deletes green while blue is still the writer (%s)',
    (status) => {
      const result = decide(
        plan,
        observed({ maintenance: 'on', mappings: paused, deployments: [bgd(status)] }),
      );
      expect(result.action).toBe('resume-and-delete-green');
      expect(result.blueGreenDeploymentIdentifier).toBe('bgd-abc123');
      expect(result.observed.blueGreen).toEqual({ id: 'bgd-abc123', status });
      expect(result.reason).toContain(`is ${status}, so the blue platform-db is still the writer`);
    },
  );

  it('also deletes a green left over when everything else was already resumed', () => {
    expect(decide(plan, observed({ deployments: [bgd('AVAILABLE')] })).action).toBe(
      'resume-and-delete-green',
    );
  });

  it.each(['SWITCHOVER_IN_PROGRESS', 'DELETING'])('waits while the deployment is %s', (status) => {
    const result = decide(
      plan,
      observed({ maintenance: 'on', mappings: paused, deployments: [bgd(status)] }),
    );
    expect(result.action).toBe('wait');
    expect(result.blueGreenDeploymentIdentifier).toBe('bgd-abc123');
    expect(result.reason).toContain(status);
  });

  it.each(['Enabling', 'Disabling', 'Updating', 'Creating'])(
    'waits while a mapping is %s, even when green could be deleted',
    (state) => {
      const mappings = [{ uuid: 'uuid-sends', state }, paused[1] ?? paused[0]];
      for (const deployments of [[], [bgd('AVAILABLE')]]) {
        const result = decide(plan, observed({ maintenance: 'on', mappings, deployments }));
        expect(result.action).toBe('wait');
        expect(result.reason).toContain(`uuid-sends (${state})`);
      }
    },
  );

  it('verifies the new writer before resuming after a completed switchover', () => {
    const result = decide(
      plan,
      observed({
        maintenance: 'on',
        mappings: paused,
        deployments: [bgd('SWITCHOVER_COMPLETED')],
        writer: newWriter,
      }),
    );
    expect(result.action).toBe('verify-then-resume');
    expect(result.blueGreenDeploymentIdentifier).toBe('bgd-abc123');
  });

  it.each<[string, Partial<Observed>, WatchdogAction]>([
    [
      'maintenance on, writer on the target',
      { maintenance: 'on', writer: newWriter },
      'verify-then-resume',
    ],
    ['maintenance partial, writer on the old version', { maintenance: 'partial' }, 'resume'],
    [
      'a mapping paused, writer on the old version',
      { mappings: [enabled[0] ?? enabled[1], { uuid: 'uuid-tracking', state: 'Disabled' }] },
      'resume',
    ],
    [
      'mappings paused, writer on the target',
      { mappings: paused, writer: newWriter },
      'verify-then-resume',
    ],
    [
      'maintenance on and paused, writer on the old version',
      { maintenance: 'on', mappings: paused },
      'resume',
    ],
  ])('without a deployment, with %s: %s', (_case, overrides, action) => {
    const result = decide(plan, observed(overrides));
    expect(result.action).toBe(action);
    expect(result.blueGreenDeploymentIdentifier).toBeNull();
    expect(result.reason).toMatch(/^No blue\/green deployment and /);
  });

  it('names what was left over in the reason', () => {
    const result = decide(plan, observed({ maintenance: 'partial', mappings: paused }));
    expect(result.reason).toBe(
      'No blue/green deployment and maintenance is partial and mappings uuid-sends ' +
        '(Disabled), uuid-tracking (Disabled) are paused; the writer platform-db runs 16.6, ' +
        'not the target: resume the buffers and turn maintenance off.',
    );
  });

  it('pages an operator when more than one deployment matches', () => {
    const result = decide(
      plan,
      observed({ deployments: [bgd('AVAILABLE', 'bgd-1'), bgd('SWITCHOVER_COMPLETED', 'bgd-2')] }),
    );
    expect(result.action).toBe('page-operator');
    expect(result.blueGreenDeploymentIdentifier).toBeNull();
    expect(result.reason).toContain('bgd-1 (AVAILABLE), bgd-2 (SWITCHOVER_COMPLETED)');
  });

  it('pages an operator for a deployment status it does not know', () => {
    const result = decide(plan, observed({ deployments: [bgd('SWITCHOVER_IN_POST_PROCESSING')] }));
    expect(result.action).toBe('page-operator');
    expect(result.reason).toContain('unknown status SWITCHOVER_IN_POST_PROCESSING');
  });

  it.each(['NotFound', 'Deleting'])('pages an operator when a mapping is %s', (state) => {
    const mappings = [{ uuid: 'uuid-sends', state }, paused[1] ?? paused[0]];
    const result = decide(plan, observed({ maintenance: 'on', mappings }));
    expect(result.action).toBe('page-operator');
    expect(result.reason).toContain(`uuid-sends (${state})`);
  });

  it('pages an operator when something is left paused but there is no writer', () => {
    const result = decide(plan, observed({ maintenance: 'on', writer: null }));
    expect(result.action).toBe('page-operator');
    expect(result.reason).toContain('there is no DB instance platform-db');
  });
});

describe('inspect', () => {
  const lambda = mockClient(LambdaClient);
  const rds = mockClient(RDSClient);
  const sfn = mockClient(SFNClient);
  const clients = { lambda: new LambdaClient({}), rds: new RDSClient({}), sfn: new SFNClient({}) };
  const STOPPED = 'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:run-1';

  const payload = (value: unknown) =>
    new TextEncoder().encode(JSON.stringify(value)) as InvokeCommandOutput['Payload'];

  beforeEach(() => {
    lambda.reset();
    rds.reset();
    sfn.reset();
    sfn.on(ListExecutionsCommand).resolves({
      executions: [{ executionArn: STOPPED } as never],
    });
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: payload({ maintenance: 'on', rules: [{ name: 'maintenance-page' }] }),
    });
    lambda.on(GetEventSourceMappingCommand).callsFake(({ UUID }) => ({ UUID, State: 'Disabled' }));
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({ BlueGreenDeployments: [] });
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'platform-db',
          EngineVersion: '17.2',
          DBInstanceStatus: 'available',
        },
      ],
    });
    rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-failed1' })
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} }));
  });

  it('pages instead of acting while another upgrade run is live', async () => {
    const other = STOPPED.replace('run-1', 'run-2');
    sfn.on(ListExecutionsCommand).resolves({ executions: [{ executionArn: other } as never] });
    const result = await inspect(clients, plan, STOPPED);
    expect(result.action).toBe('page-operator');
    expect(result.reason).toContain(other);
    expect(sfn).toHaveReceivedCommandWith(ListExecutionsCommand, {
      stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:QuietUpgrade-Upgrade',
      statusFilter: 'RUNNING',
    });
  });

  it('never touches a deployment the stopped run did not create', async () => {
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [
        {
          BlueGreenDeploymentIdentifier: 'bgd-someone',
          Status: 'AVAILABLE',
          TagList: [{ Key: 'quiet-upgrade:execution', Value: 'run-9' }],
        },
      ],
    });
    const result = await inspect(clients, plan, STOPPED);
    expect(result.action).toBe('page-operator');
    expect(result.reason).toContain('bgd-someone');
    expect(result.blueGreenDeploymentIdentifier).toBeNull();
  });

  it('acts on the deployment the stopped run created', async () => {
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [
        {
          BlueGreenDeploymentIdentifier: 'bgd-mine',
          Status: 'AVAILABLE',
          TagList: [{ Key: 'quiet-upgrade:execution', Value: 'run-1' }],
        },
      ],
    });
    lambda.on(GetEventSourceMappingCommand).resolves({ State: 'Disabled' });
    const result = await inspect(clients, plan, STOPPED);
    expect(result).toMatchObject({
      action: 'resume-and-delete-green',
      blueGreenDeploymentIdentifier: 'bgd-mine',
    });
  });

  it('reads the toggle, every mapping, the deployments and the writer', async () => {
    const result = await inspect(clients, plan, STOPPED);
    expect(result.observed).toEqual({
      maintenance: 'on',
      mappings: paused,
      blueGreen: null,
      writer: { ...newWriter, parameterGroup: undefined },
      failedWriter: false,
    });
    expect(result.action).toBe('verify-then-resume');
    const invoke = lambda.commandCalls(InvokeCommand)[0]?.args[0].input;
    expect(invoke?.FunctionName).toBe('quiet-upgrade-maintenance-toggle');
    expect(JSON.parse(new TextDecoder().decode(invoke?.Payload as Uint8Array))).toEqual({
      action: 'status',
    });
    expect(lambda).toHaveReceivedCommandWith(GetEventSourceMappingCommand, { UUID: 'uuid-sends' });
    expect(lambda).toHaveReceivedCommandWith(GetEventSourceMappingCommand, {
      UUID: 'uuid-tracking',
    });
    expect(rds).toHaveReceivedCommandWith(DescribeBlueGreenDeploymentsCommand, {
      Filters: [{ Name: 'source', Values: [ARN, `${ARN}-old1`] }],
    });
    expect(rds).toHaveReceivedCommandWith(DescribeDBInstancesCommand, {
      DBInstanceIdentifier: 'platform-db',
    });
  });

  it('uses the deployment the source filter finds', async () => {
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [
        {
          BlueGreenDeploymentIdentifier: 'bgd-abc123',
          TagList: [{ Key: 'quiet-upgrade:execution', Value: 'run-1' }],
          Source: ARN,
          Status: 'AVAILABLE',
        },
      ],
    });
    const result = await inspect(clients, plan, STOPPED);
    expect(result.action).toBe('resume-and-delete-green');
    expect(result.blueGreenDeploymentIdentifier).toBe('bgd-abc123');
    expect(rds).toHaveReceivedCommandTimes(DescribeBlueGreenDeploymentsCommand, 1);
  });

  it('falls back to every deployment, page by page, matched on its switchover members', async () => {
    const other: BlueGreenDeployment = {
      BlueGreenDeploymentIdentifier: 'bgd-other',
      Source: 'arn:aws:rds:eu-west-1:123456789012:db:reporting-db',
      Status: 'AVAILABLE',
    };
    const ours: BlueGreenDeployment = {
      BlueGreenDeploymentIdentifier: 'bgd-abc123',
      TagList: [{ Key: 'quiet-upgrade:execution', Value: 'run-1' }],
      Source: 'arn:aws:rds:eu-west-1:123456789012:db:something-else',
      SwitchoverDetails: [{ SourceMember: `${ARN}-old1`, Status: 'SWITCHOVER_COMPLETED' }],
      Status: 'SWITCHOVER_COMPLETED',
    };
    rds.on(DescribeBlueGreenDeploymentsCommand).callsFake(({ Filters, Marker }) => {
      if (Filters !== undefined) return { BlueGreenDeployments: [] };
      return Marker === undefined
        ? { BlueGreenDeployments: [other], Marker: 'page-2' }
        : { BlueGreenDeployments: [ours] };
    });
    const result = await inspect(clients, plan, STOPPED);
    expect(result.observed.blueGreen).toEqual({ id: 'bgd-abc123', status: 'SWITCHOVER_COMPLETED' });
    expect(result.action).toBe('verify-then-resume');
    expect(rds).toHaveReceivedCommandTimes(DescribeBlueGreenDeploymentsCommand, 3);
  });

  it('pages, and finds the failed writer, when a restore of old blue was interrupted', async () => {
    rds
      .on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'platform-db-failed1' })
      .resolves({ DBInstances: [{ DBInstanceIdentifier: 'platform-db-failed1' }] });
    const result = await inspect(clients, plan, STOPPED);
    expect(result.observed.failedWriter).toBe(true);
    expect(result.action).toBe('page-operator');
    expect(result.reason).toContain('platform-db-failed1 exists');
  });

  it('treats a missing writer as absent', async () => {
    rds
      .on(DescribeDBInstancesCommand)
      .rejects(new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} }));
    const result = await inspect(clients, plan, STOPPED);
    expect(result.observed.writer).toBeNull();
    expect(result.action).toBe('page-operator');
  });

  it('records a deleted mapping as NotFound and pages an operator', async () => {
    lambda
      .on(GetEventSourceMappingCommand, { UUID: 'uuid-tracking' })
      .rejects(new ResourceNotFoundException({ message: 'gone', $metadata: {} }));
    const result = await inspect(clients, plan, STOPPED);
    expect(result.observed.mappings).toEqual([
      { uuid: 'uuid-sends', state: 'Disabled' },
      { uuid: 'uuid-tracking', state: 'NotFound' },
    ]);
    expect(result.action).toBe('page-operator');
  });

  it('throws when the toggle function fails', async () => {
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: payload({ errorType: 'Error', errorMessage: 'listener not found' }),
    });
    await expect(inspect(clients, plan, STOPPED)).rejects.toThrow(
      /maintenance toggle quiet-upgrade-maintenance-toggle failed \(Unhandled\).*listener not found/,
    );
  });

  it.each([
    ['an unknown state', { maintenance: 'maybe', rules: [] }],
    ['no rules', { maintenance: 'off' }],
  ])('throws when the toggle answers %s', async (_case, body) => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload(body) });
    await expect(inspect(clients, plan, STOPPED)).rejects.toThrow('returned an unexpected status');
  });

  it('passes on other errors', async () => {
    rds.on(DescribeBlueGreenDeploymentsCommand).rejects(new Error('AccessDenied'));
    await expect(inspect(clients, plan, STOPPED)).rejects.toThrow('AccessDenied');
  });
});
