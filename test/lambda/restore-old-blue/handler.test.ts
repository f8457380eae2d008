import {
  DBInstanceNotFoundFault,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
  RebootDBInstanceCommand,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import type {
  RestoreOldBlueEvent,
  RestoreOldBlueResult,
} from '../../../lambda/restore-old-blue/restore';
import type { UpgradePlan } from '../../../lambda/shared/upgrade-plan';
import { EXECUTION, mockCallers } from '../../helpers/caller';
import { deployFor } from '../../helpers/deployed';
import { testPlan } from '../../helpers/plan';

const rds = mockClient(RDSClient);
const sfn = mockCallers();
let handler: (event: RestoreOldBlueEvent) => Promise<RestoreOldBlueResult>;
let reboot: (event: unknown) => Promise<unknown>;

const plan: UpgradePlan = testPlan({
  targetParameterGroupName: 'quiet-upgrade-parameterspostgres17',
  deadline: '2030-01-06T05:00:00Z',
  listenerArn: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/demo/1/2',
  maintenanceToggleFunction: 'quiet-upgrade-maintenance-toggle',
});
deployFor(plan);

beforeAll(async () => {
  const module = await import('../../../lambda/restore-old-blue/handler');
  handler = module.handler as (event: RestoreOldBlueEvent) => Promise<RestoreOldBlueResult>;
  reboot = module.handler as (event: unknown) => Promise<unknown>;
});

beforeEach(() => rds.reset());

it('does the next step for the plan and the progress it is given', async () => {
  rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
    if (DBInstanceIdentifier === 'platform-db-failed1') {
      throw new DBInstanceNotFoundFault({ message: 'not found', $metadata: {} });
    }
    return {
      DBInstances: [
        {
          DBInstanceIdentifier,
          DbiResourceId: `db-${String(DBInstanceIdentifier)}`,
          EngineVersion: DBInstanceIdentifier === 'platform-db' ? '17.2' : '16.6',
          DBInstanceStatus: 'available',
          DBParameterGroups: [
            { DBParameterGroupName: 'pg17-fence', ParameterApplyStatus: 'in-sync' },
          ],
        },
      ],
    };
  });
  rds.on(ModifyDBInstanceCommand).resolves({});
  // Fenced and rebooted by an earlier call: the progress it passed on says so.
  const result = await handler({ execution: EXECUTION, plan, progress: { fenced: true } });
  expect(result).toMatchObject({ done: false, step: 'rename-failed-writer', fenced: true });
  expect(rds).toHaveReceivedCommandWith(ModifyDBInstanceCommand, {
    DBInstanceIdentifier: 'platform-db',
    NewDBInstanceIdentifier: 'platform-db-failed1',
  });
});

it('reports done once the old blue is the writer again', async () => {
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [
      { DBInstanceIdentifier: 'platform-db', EngineVersion: '16.6', DBInstanceStatus: 'available' },
    ],
  });
  expect(await handler({ execution: EXECUTION, plan })).toMatchObject({
    done: true,
    step: 'restored',
  });
  expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
});

it.each([
  ['old-blue', 'platform-db-old1'],
  ['failed-writer', 'platform-db-failed1'],
])('reboots the former writer (%s) when asked, and nothing else', async (on, instance) => {
  rds.on(RebootDBInstanceCommand).resolves({});
  expect(await reboot({ action: 'reboot-former-writer', execution: EXECUTION, plan, on })).toEqual({
    instance,
    ended: null,
    detail: `rebooted ${instance}, which ends every session on it`,
  });
  expect(rds).toHaveReceivedCommandTimes(RebootDBInstanceCommand, 1);
  expect(rds).toHaveReceivedCommandWith(RebootDBInstanceCommand, {
    DBInstanceIdentifier: instance,
  });
  expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
});

// The confused deputy: a caller with a running execution's ARN but a plan of its own, which
// would have production (17.2) taken for a failed writer and a stale -old1 (16.x) promoted.
it.each([
  [
    { sourceIdentifier: 'billing-db' },
    'plan.sourceIdentifier must be the deployed "platform-db", got: "billing-db"',
  ],
  [
    { currentEngineVersion: '16.1' },
    'plan.currentEngineVersion must be the deployed "16.6", got: "16.1"',
  ],
  [
    { targetEngineVersion: '16.6' },
    'plan.targetEngineVersion must be 17.x, the deployed target\'s major version, got: "16.6"',
  ],
])(
  'takes the names and versions from its environment: %j is refused before any call',
  async (change, message) => {
    sfn.resetHistory();
    for (const event of [
      { execution: EXECUTION, plan: { ...plan, ...change } },
      {
        action: 'reboot-former-writer',
        execution: EXECUTION,
        plan: { ...plan, ...change },
        on: 'old-blue',
      },
    ]) {
      await expect(reboot(event)).rejects.toThrow(message);
    }
    expect(rds.calls()).toHaveLength(0);
    expect(sfn.calls()).toHaveLength(0);
  },
);

describe('a caller that is not a running execution of the upgrade or the watchdog', () => {
  const stopped = 'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:old-run';
  const elsewhere = 'arn:aws:states:eu-west-1:123456789012:execution:SomeoneElse:run-1';
  afterAll(() => sfn.reset());

  it.each([
    [
      'no execution',
      undefined,
      'execution must be the ARN of the calling state machine execution, got: undefined',
    ],
    ['a finished execution', stopped, `execution must be RUNNING, got: "${stopped}" is SUCCEEDED`],
    ['another state machine', elsewhere, 'execution must belong to'],
  ])('is refused (%s), and nothing is changed', async (_case, execution, message) => {
    for (const event of [
      { execution, plan, progress: { fenced: true } },
      { action: 'reboot-former-writer', execution, plan, on: 'old-blue' },
    ]) {
      await expect(reboot(event)).rejects.toThrow(message);
    }
    expect(rds.calls()).toHaveLength(0);
  });
});
