import {
  DescribeBlueGreenDeploymentsCommand,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { EXECUTION, WATCHDOG_EXECUTION, mockCallers, stoppedRunEvent } from '../../helpers/caller';
import { deployFor } from '../../helpers/deployed';

const rds = mockClient(RDSClient);
const sfn = mockCallers();
deployFor();
let handler: (event: unknown) => Promise<unknown>;
const plan = {
  sourceIdentifier: 'platform-db',
  sourceArn: 'arn:aws:rds:eu-west-1:123456789012:db:platform-db',
};

beforeAll(async () => {
  ({ handler } = await import('../../../lambda/deletion-protection/handler'));
});
beforeEach(() => rds.reset());

it('protects the writer when asked', async () => {
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [{ DBInstanceIdentifier: 'platform-db', DeletionProtection: false }],
  });
  await expect(handler({ action: 'protect-writer', execution: EXECUTION, plan })).resolves.toEqual({
    protected: true,
    changed: true,
  });
  expect(rds).toHaveReceivedCommandWith(ModifyDBInstanceCommand, { DeletionProtection: true });
});

it.each([
  [{ plan }, /action/],
  [{ action: 'unprotect-green', plan }, /blueGreenDeploymentIdentifier/],
  [{ action: 'protect-writer', plan: { sourceIdentifier: 'platform-db' } }, /sourceArn/],
  [{ action: 'delete-everything', plan }, /action/],
])('refuses %j with the field named, calling nothing', async (event, field) => {
  await expect(handler(event)).rejects.toThrow(field);
  await expect(handler(event)).rejects.toThrow(/invalid deletion-protection event/);
  expect(rds.calls()).toHaveLength(0);
});

it('changes nothing for a caller that is not a running upgrade or watchdog execution', async () => {
  const stopped = 'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:old-run';
  for (const execution of [undefined, stopped]) {
    await expect(handler({ action: 'protect-writer', execution, plan })).rejects.toThrow(
      /^execution must be/,
    );
  }
  expect(rds.calls()).toHaveLength(0);
});

it('takes the instance from its environment: a plan naming another is refused before any call', async () => {
  sfn.resetHistory();
  const other = { sourceIdentifier: 'billing-db', sourceArn: plan.sourceArn };
  await expect(
    handler({ action: 'protect-writer', execution: EXECUTION, plan: other }),
  ).rejects.toThrow('plan.sourceIdentifier must be the deployed "platform-db", got: "billing-db"');
  expect(rds.calls()).toHaveLength(0);
  expect(sfn.calls()).toHaveLength(0);
});

describe('unprotect green: only the deployment of the run the caller acts for', () => {
  const green = 'arn:aws:rds:eu-west-1:123456789012:db:platform-db-green-abc';
  /** A deployment of platform-db that the upgrade run `createdBy` created. */
  function deploymentBy(createdBy: string) {
    rds.on(DescribeBlueGreenDeploymentsCommand).resolves({
      BlueGreenDeployments: [
        {
          BlueGreenDeploymentIdentifier: 'bgd-1',
          Source: plan.sourceArn,
          TagList: [{ Key: 'quiet-upgrade:execution', Value: createdBy }],
          SwitchoverDetails: [{ SourceMember: plan.sourceArn, TargetMember: green }],
        },
      ],
    });
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [
        {
          DBInstanceIdentifier: 'platform-db-green-abc',
          DBInstanceStatus: 'available',
          DeletionProtection: true,
        },
      ],
    });
  }
  const unprotect = (execution: string) =>
    handler({ action: 'unprotect-green', execution, plan, blueGreenDeploymentIdentifier: 'bgd-1' });

  it('acts for the upgrade run that created it, and for the watchdog recovering that run', async () => {
    deploymentBy('run-1');
    await expect(unprotect(EXECUTION)).resolves.toMatchObject({
      unprotected: ['platform-db-green-abc'],
    });
    rds.reset();
    deploymentBy('run-1');
    await expect(unprotect(WATCHDOG_EXECUTION)).resolves.toMatchObject({
      unprotected: ['platform-db-green-abc'],
    });
  });

  it('refuses a deployment another run created, whoever asks', async () => {
    deploymentBy('run-0');
    for (const execution of [EXECUTION, WATCHDOG_EXECUTION]) {
      await expect(unprotect(execution)).rejects.toThrow(
        'it was created by run "run-0" (tag quiet-upgrade:execution), not by "run-1"',
      );
    }
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });

  it('refuses a watchdog whose input names no upgrade run', async () => {
    sfn.reset();
    mockCallers({}, { [WATCHDOG_EXECUTION]: stoppedRunEvent('not-an-execution') });
    deploymentBy('run-1');
    await expect(unprotect(WATCHDOG_EXECUTION)).rejects.toThrow(
      `${WATCHDOG_EXECUTION} does not act for a run of arn:aws:states:eu-west-1:123456789012:stateMachine:QuietUpgrade-Upgrade: its input names "not-an-execution"`,
    );
    expect(rds).not.toHaveReceivedCommand(ModifyDBInstanceCommand);
  });
});
