import { DescribeExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';

/**
 * The functions that change the database (restore, reboot, deletion protection) act only for
 * a RUNNING execution of the upgrade or watchdog state machine, named in their event as
 * `execution` ($$.Execution.Id). Anyone else allowed to invoke them (a person with
 * lambda:InvokeFunction, another workload) is refused before any change: the role's RDS
 * rights are the state machines' to use, not theirs (a confused deputy).
 *
 * An execution ARN is arn:<partition>:states:<region>:<account>:execution:<machine>:<name>;
 * its state machine's is the same with stateMachine:<machine>.
 * https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html#awsstepfunctions-resources-for-iam-policies
 */
export class CallerRefused extends Error {
  override readonly name = 'CallerRefused';
}

const EXECUTION_ARN = /^(arn:[a-z-]+:states:[a-z0-9-]+:\d{12}:)execution:([^:]+):[^:]+$/;

/** The calling execution, as DescribeExecution described it. */
export interface Caller {
  executionArn: string;
  stateMachineArn: string;
  /** Its input: for the watchdog, the EventBridge event of the upgrade run that stopped. */
  input: string;
}

export async function requireRunningExecution(
  sfn: SFNClient,
  execution: unknown,
  allowedMachines: string[],
): Promise<Caller> {
  const match = typeof execution === 'string' ? EXECUTION_ARN.exec(execution) : null;
  if (match === null) {
    throw new CallerRefused(
      `execution must be the ARN of the calling state machine execution, got: ${JSON.stringify(execution)}`,
    );
  }
  const machine = `${match[1]}stateMachine:${match[2]}`;
  if (!allowedMachines.includes(machine)) {
    throw new CallerRefused(
      `execution must belong to ${allowedMachines.join(' or ')}, got: ${JSON.stringify(execution)}`,
    );
  }
  const described = await sfn.send(
    new DescribeExecutionCommand({ executionArn: execution as string }),
  );
  if (described.stateMachineArn !== machine || described.status !== 'RUNNING') {
    throw new CallerRefused(
      `execution must be RUNNING, got: ${JSON.stringify(execution)} is ${described.status ?? 'unknown'}`,
    );
  }
  return {
    executionArn: execution as string,
    stateMachineArn: machine,
    input: described.input ?? '',
  };
}

/**
 * The upgrade run a caller acts for: itself, when it is a run of the upgrade machine; for the
 * watchdog, the run that stopped, named by the Step Functions Execution Status Change event
 * it was started with (`detail.executionArn`). Its name is the value of the tag the run put
 * on the blue/green deployment it created (EXECUTION_TAG).
 * https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html
 */
export function upgradeRunOf(caller: Caller, upgradeMachine: string): string {
  const runArn =
    caller.stateMachineArn === upgradeMachine
      ? caller.executionArn
      : (() => {
          try {
            const event = JSON.parse(caller.input) as { detail?: { executionArn?: unknown } };
            return event.detail?.executionArn;
          } catch {
            return undefined;
          }
        })();
  const match = typeof runArn === 'string' ? EXECUTION_ARN.exec(runArn) : null;
  if (match === null || `${match[1]}stateMachine:${match[2]}` !== upgradeMachine) {
    throw new CallerRefused(
      `${caller.executionArn} does not act for a run of ${upgradeMachine}: its input names ${JSON.stringify(runArn ?? null)}`,
    );
  }
  return (runArn as string).split(':').at(-1) ?? '';
}
