import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import { join } from 'node:path';
import type { AssumptionName } from '../../rehearsal/assumptions';
import type { TrafficKind } from '../../rehearsal/traffic';

/**
 * Runbooks and functions broken on purpose. Each must make the default rehearsal or one
 * scenario fail, and names the invariant expected to catch it: an invariant that no broken
 * runbook can trip proves nothing.
 */
export interface Mutant {
  name: string;
  /** What the violation that catches it says (a part of its sentence). */
  caughtBy: string;
  /** The scenario it is caught in. */
  scenario: string;
  definition?: (d: StateMachineDefinition) => StateMachineDefinition;
  functionEntries?: Record<string, string>;
  /** Assumption values under which the defect shows (default: the defaults). */
  assumptions?: Partial<Record<AssumptionName, string>>;
  /**
   * Traffic rates, when the defect shows only with a batch running at a given moment: which
   * batch is running when depends on the phase of the traffic against the run's steps.
   */
  rates?: Partial<Record<TrafficKind, number>>;
}

type State = Record<string, unknown> & {
  Next?: string;
  Default?: string;
  Parameters?: { Payload?: unknown };
};

/** A copy of the definition with `edit` applied to its top-level states. */
function edit(
  d: StateMachineDefinition,
  change: (states: Record<string, State>) => void,
): StateMachineDefinition {
  const copy = JSON.parse(JSON.stringify(d)) as StateMachineDefinition;
  change(copy.States as unknown as Record<string, State>);
  return copy;
}

/** A Task made a Pass that goes where it went: the step is skipped, with its catch. */
function skip(states: Record<string, State>, name: string): void {
  const task = state(states, name) as State & { Catch?: { Next: string }[]; ResultPath?: string };
  // Its own fallback states go with it: the ones named after it.
  const own = `${name.charAt(0).toLowerCase()}${name.slice(1)}`;
  for (const other of Object.keys(states)) {
    if (other.startsWith(`${name}: `) || other.startsWith(`Note: ${own} `)) {
      Reflect.deleteProperty(states, other);
    }
  }
  // What a session-ending step reports when it ended nothing, where later states read it.
  states[name] = {
    Type: 'Pass',
    Result: { instance: null, ended: 0, detail: 'skipped' },
    ResultPath: task.ResultPath,
    Next: task.Next,
  };
}

function state(states: Record<string, State>, name: string): State {
  const s = states[name];
  if (s === undefined) throw new Error(`the definition has no state "${name}"`);
  return s;
}

/** Takes the branch that starts at `start` out of a Parallel state; returns its first state. */
function takeBranch(states: Record<string, State>, parallel: string, start: string): State {
  const p = state(states, parallel) as State & {
    Branches: { StartAt: string; States: Record<string, State> }[];
  };
  const branch = p.Branches.find((b) => b.StartAt === start);
  if (branch === undefined) throw new Error(`${parallel} has no branch starting at "${start}"`);
  p.Branches = p.Branches.filter((b) => b !== branch);
  return state(branch.States, start);
}

/** The state replaced by a Pass that goes on to the same next state and changes nothing. */
function doesNothing(states: Record<string, State>, name: string): void {
  states[name] = { Type: 'Pass', ResultPath: null, Next: state(states, name).Next };
}

const broken = (file: string) => join(__dirname, '..', 'fixtures', 'broken-functions', file);

/** The mutants of the review's table: each a way the runbook was shown to go wrong unseen. */
export const MUTANTS: Mutant[] = [
  {
    name: '"Turn maintenance off" turns it on',
    caughtBy: 'page-off-after-verified-writer',
    scenario: 'happy',
    // The page rule's own delete skipped, and the toggle asked to turn the page on.
    definition: (d) =>
      edit(d, (s) => {
        doesNothing(s, 'Turn the maintenance page off');
        state(s, 'Turn maintenance off').Parameters = {
          ...state(s, 'Turn maintenance off').Parameters,
          Payload: { action: 'on' },
        };
      }),
  },
  {
    name: '"Resume consumers" does nothing',
    caughtBy: 'end: a consumer is still paused',
    scenario: 'happy',
    definition: (d) => edit(d, (s) => doesNothing(s, 'Resume consumers')),
  },
  {
    name: 'consumers resumed before "Verify new writer"',
    caughtBy: 'resume-after-verified-writer',
    scenario: 'happy',
    definition: (d) =>
      edit(d, (s) => {
        state(s, 'Turn maintenance off').Next = state(s, 'Resume consumers').Next;
        state(s, 'Resume consumers').Next = state(s, 'Note: switched over').Next;
        state(s, 'Note: switched over').Next = 'Resume consumers';
      }),
  },
  {
    name: '"Pause consumers" does nothing',
    caughtBy: 'consumers-stopped-before-switchover',
    scenario: 'happy',
    definition: (d) => edit(d, (s) => doesNothing(s, 'Pause consumers')),
  },
  {
    name: 'the page goes on before green is created',
    caughtBy: 'page-after-green-verified',
    scenario: 'happy',
    definition: (d) =>
      edit(d, (s) => {
        state(s, 'Get ready to switch over').Next = state(s, 'Turn maintenance on').Next;
        state(s, 'Turn maintenance on').Next = state(s, 'Notified: upgrade started').Next;
        state(s, 'Notified: upgrade started').Next = 'Turn maintenance on';
      }),
  },
  {
    name: '"Turn maintenance on" does nothing',
    caughtBy: 'page-during-switchover',
    scenario: 'happy',
    definition: (d) =>
      edit(d, (s) => {
        state(s, 'Turn maintenance on').Parameters = {
          ...state(s, 'Turn maintenance on').Parameters,
          Payload: { action: 'status' },
        };
      }),
  },
  {
    name: 'the in-flight wait removed',
    caughtBy: 'no-batch-during-switchover',
    scenario: 'slow-consumers',
    // Tracking a little busier than the scenario's, so that a batch is running when the
    // mappings are disabled (with the scenario's own rates none happens to be).
    rates: {
      pageViews: 5,
      clicks: 0.6,
      opens: 0.6,
      confirmations: 0.5,
      signUps: 0.5,
      unsubscribes: 0.5,
      sends: 0.5,
    },
    definition: (d) =>
      edit(d, (s) => {
        takeBranch(s, 'Get ready to switch over', 'Let in-flight batches finish');
      }),
  },
  {
    name: 'the in-flight wait moved before the pause',
    caughtBy: 'no-batch-during-switchover',
    scenario: 'slow-consumers',
    definition: (d) =>
      edit(d, (s) => {
        const wait = takeBranch(s, 'Get ready to switch over', 'Let in-flight batches finish');
        s['Let in-flight batches finish'] = { ...wait, Next: 'Pause consumers' };
        delete s['Let in-flight batches finish'].End;
        // The way to the pause (with the quiet gate off) now goes through the wait first.
        state(s, 'Note: no quiet gate').Next = 'Let in-flight batches finish';
      }),
  },
  {
    name: 'the consumer deletes a message without its effect',
    caughtBy: 'nothing-lost',
    scenario: 'happy',
    functionEntries: { 'buffer-consumer': broken('consumer-without-effect.ts') },
  },
];

/** More mutants, so that every invariant is shown to trip. */
export const MORE_MUTANTS: Mutant[] = [
  {
    name: 'the page goes off before the writer check',
    caughtBy: 'page-on-until-writer-verified',
    scenario: 'happy',
    definition: (d) =>
      edit(d, (s) => {
        // The page comes off as the switchover ends; after the writer check and the old
        // sessions, straight on to what follows the page.
        const after = state(s, 'Turn maintenance off').Next ?? '';
        state(s, 'Turn maintenance off').Next = state(s, 'Note: switched over').Next;
        state(s, 'Note: switched over').Next = 'Turn the maintenance page off';
        const ended = state(s, 'Were the sessions on old blue ended?') as unknown as {
          Choices: { Next: string }[];
        };
        for (const c of ended.Choices) c.Next = after;
        state(s, 'End client sessions on old blue').Next = after;
        state(s, 'Note: end client sessions on old blue rebooted').Next = after;
      }),
  },
  {
    name: 'consumers resumed as the switchover starts',
    caughtBy: 'resume-after-verified-writer',
    scenario: 'happy',
    definition: (d) =>
      edit(d, (s) => {
        state(s, 'Turn maintenance off').Next = state(s, 'Resume consumers').Next;
        state(s, 'Resume consumers').Next = state(s, 'Switch over to green').Next;
        state(s, 'Switch over to green').Next = 'Resume consumers';
      }),
  },
  {
    name: 'preflight lets a second run start during the first',
    caughtBy: 'single-flight',
    scenario: 'concurrent-start',
    functionEntries: { preflight: broken('preflight-without-single-flight.ts') },
  },
  {
    name: 'the page rule takes priority over the capture rules',
    caughtBy: 'capture-while-page-on',
    scenario: 'happy',
    functionEntries: { 'maintenance-toggle': broken('toggle-page-first.ts') },
  },
  {
    name: 'the consumer applies each message twice',
    caughtBy: 'nothing-twice',
    scenario: 'happy',
    functionEntries: { 'buffer-consumer': broken('consumer-applies-twice.ts') },
  },
  {
    name: 'the consumer fails every record',
    caughtBy: 'valid writes ended in a dead-letter queue',
    scenario: 'happy',
    functionEntries: { 'buffer-consumer': broken('consumer-fails-every-record.ts') },
  },
  {
    name: 'the consumer drops poison instead of letting it reach the DLQ',
    caughtBy: 'poison messages are not in a dead-letter queue',
    scenario: 'poison',
    functionEntries: { 'buffer-consumer': broken('consumer-without-effect.ts') },
  },
  {
    name: 'the green check asks RDS for something the role may not read',
    caughtBy: 'was denied rds:DescribeDBInstances',
    scenario: 'happy',
    definition: (d) =>
      edit(d, (s) => {
        Object.assign(state(s, 'Check green status'), {
          Resource: 'arn:aws:states:::aws-sdk:rds:describeDBInstances',
          Parameters: { 'DBInstanceIdentifier.$': '$.plan.sourceIdentifier' },
        });
      }),
  },
  {
    name: 'a failed writer check counts as passed',
    caughtBy: 'outcome: UPGRADED but the writer',
    scenario: 'bad-writer',
    definition: (d) =>
      edit(d, (s) => {
        const choice = state(s, 'Is the new writer healthy?') as unknown as {
          Choices: { BooleanEquals?: boolean }[];
        };
        const passed = choice.Choices.find((c) => c.BooleanEquals === true);
        if (passed === undefined) throw new Error('no "passed" branch');
        passed.BooleanEquals = false;
      }),
  },
  {
    name: 'a green that is only busy or loading its storage is deleted as failed',
    caughtBy: 'green-kept-while-catching-up',
    scenario: 'green-initializing',
    definition: (d) =>
      edit(d, (s) => {
        const choice = state(s, 'Is green ready?') as unknown as {
          Choices: { Variable?: string }[];
        };
        choice.Choices = choice.Choices.filter((c) => c.Variable !== '$.greenCheck.transient');
        delete s['Note the time green is not ready'];
        delete s['Is there time to wait for green?'];
        delete s['Note: green was not ready by the deadline'];
      }),
  },
  {
    name: 'an error from the switchover call rolls back at once',
    caughtBy: 'page-during-switchover',
    scenario: 'switchover-call-lost',
    definition: (d) =>
      edit(d, (s) => {
        const task = state(s, 'Switch over to green') as unknown as {
          Catch: { ErrorEquals: string[]; Next: string; ResultPath?: string }[];
        };
        task.Catch = [
          {
            ErrorEquals: ['States.ALL'],
            Next: 'Roll back: turn maintenance off',
            ResultPath: '$.failure',
          },
        ];
        delete s['Start watching the switchover after an error'];
      }),
  },
  {
    name: 'the new writer is not protected from deletion after the switchover',
    caughtBy: 'the writer is not protected from deletion',
    scenario: 'happy',
    assumptions: { 'green-deletion-protection': 'off' },
    definition: (d) =>
      edit(d, (s) => {
        state(s, 'Notified: switched over').Next = 'Drain buffers';
        delete s['Protect the new writer from deletion'];
      }),
  },
  {
    name: 'the dry run turns the maintenance page on',
    caughtBy: 'outcome: DRY_RUN but something was changed',
    scenario: 'dry-run',
    definition: (d) =>
      edit(d, (s) => {
        s['Mutant: maintenance on'] = {
          ...(JSON.parse(JSON.stringify(state(s, 'Turn maintenance on'))) as State),
          Next: 'Output: dry-run plan',
        };
        const choice = state(s, 'Is this a dry run?') as unknown as { Choices: { Next: string }[] };
        for (const c of choice.Choices) c.Next = 'Mutant: maintenance on';
      }),
  },
  {
    name: 'the clean-up is skipped',
    caughtBy: 'blue/green deployment(s) left behind',
    scenario: 'happy',
    definition: (d) =>
      edit(d, (s) => {
        state(s, 'Drain buffers').Next = 'Report: upgraded';
      }),
  },
  {
    name: 'the page to the operator does not say an operator is needed',
    caughtBy: 'end: NEEDS_OPERATOR without paging',
    scenario: 'switchover-hangs',
    definition: (d) =>
      edit(d, (s) => {
        const report = state(s, 'Report: needs an operator') as unknown as {
          Result: { outcome: string };
        };
        report.Result.outcome = 'IN_PROGRESS';
        const notify = state(s, 'Notify: needs an operator') as unknown as {
          Parameters: { Subject: string };
        };
        notify.Parameters.Subject = 'Database upgrade: progress';
      }),
  },
  {
    name: 'the restore renames the failed writer without fencing it',
    caughtBy: 'once the writer, still takes writes',
    scenario: 'new-writer-modifying',
    functionEntries: { 'restore-old-blue': broken('restore-without-fence.ts') },
  },
  {
    name: 'the page goes off without checking the restored writer through the endpoint',
    caughtBy: 'page-on-until-writer-verified',
    scenario: 'restored-endpoint-cached',
    definition: (d) =>
      edit(d, (s) => {
        s['Start counting restored writer checks'] = {
          Type: 'Pass',
          Next: 'Restore: end client sessions on the failed writer',
        };
        for (const name of [
          'Verify the restored writer',
          'Note: the restored writer check did not run',
          'Count restored writer checks',
          'Is the restored writer verified?',
          'Wait before checking the restored writer again',
          'Note: the restored writer was not verified',
        ]) {
          state(s, name);
          Reflect.deleteProperty(s, name);
        }
      }),
  },
  {
    name: 'the page goes off with client sessions left on old blue',
    caughtBy: 'user write(s) failed after the page went off',
    scenario: 'stale-sessions',
    // The writer check no longer ends them beside it, and no step does instead.
    definition: (d) =>
      edit(d, (s) => {
        // The function is the Resource and Parameters is its event (payloadResponseOnly).
        const check = state(s, 'Verify new writer') as State & { Parameters: object };
        const { endSessionsOn: _dropped, ...event } = check.Parameters as {
          endSessionsOn?: string;
        };
        check.Parameters = event;
        skip(s, 'End client sessions on old blue');
      }),
  },
  {
    name: 'the page goes off with client sessions left on the failed writer',
    caughtBy: 'user write(s) failed after the page went off',
    scenario: 'restored-endpoint-cached',
    definition: (d) => edit(d, (s) => skip(s, 'Restore: end client sessions on the failed writer')),
  },
];
