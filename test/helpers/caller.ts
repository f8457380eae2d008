import { DescribeExecutionCommand, SFNClient } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';

/** The state machines that may call the functions that change the database, as deployed. */
export const UPGRADE_MACHINE =
  'arn:aws:states:eu-west-1:123456789012:stateMachine:QuietUpgrade-Upgrade';
export const WATCHDOG_MACHINE =
  'arn:aws:states:eu-west-1:123456789012:stateMachine:QuietUpgrade-Watchdog';
/** A running upgrade execution: the caller those functions expect. */
export const EXECUTION =
  'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Upgrade:run-1';

process.env.CALLER_STATE_MACHINES = JSON.stringify([UPGRADE_MACHINE, WATCHDOG_MACHINE]);
process.env.UPGRADE_STATE_MACHINE = UPGRADE_MACHINE;

/** A running watchdog execution, started for the upgrade run `run-1` that stopped. */
export const WATCHDOG_EXECUTION =
  'arn:aws:states:eu-west-1:123456789012:execution:QuietUpgrade-Watchdog:recover-1';

/** The EventBridge event a watchdog execution is started with, for this upgrade run. */
export function stoppedRunEvent(run: string): string {
  return JSON.stringify({
    'detail-type': 'Step Functions Execution Status Change',
    detail: { executionArn: run, stateMachineArn: UPGRADE_MACHINE, status: 'ABORTED' },
  });
}

/** Step Functions, answering DescribeExecution: `EXECUTION` is RUNNING unless told otherwise. */
export function mockCallers(
  statuses: Record<string, string> = {},
  inputs: Record<string, string> = { [WATCHDOG_EXECUTION]: stoppedRunEvent(EXECUTION) },
) {
  const sfn = mockClient(SFNClient);
  sfn.on(DescribeExecutionCommand).callsFake(({ executionArn }: { executionArn: string }) => ({
    executionArn,
    stateMachineArn: executionArn.replace(/:execution:([^:]+):[^:]+$/, ':stateMachine:$1'),
    status:
      statuses[executionArn] ??
      ([EXECUTION, WATCHDOG_EXECUTION].includes(executionArn) ? 'RUNNING' : 'SUCCEEDED'),
    input: inputs[executionArn] ?? '{}',
  }));
  return sfn;
}
