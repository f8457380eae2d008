import { type PlanDefaults, type Validation, validateInput } from './validate';

interface Event {
  /** The execution input, as the operator (or the schedule) gave it. */
  input: unknown;
  /** The deploy-time defaults, written into the state machine definition. */
  defaults: PlanDefaults;
  /** $$.Execution.StartTime */
  startTime: string;
  /** Set by the watchdog, which rebuilds the plan of a stopped run. */
  recovery?: boolean;
}

/** The first state of an upgrade: checks the input before anything changes. */
export const handler = async (event: Event): Promise<Validation> =>
  validateInput(event.input, event.defaults, event.startTime, { recovery: event.recovery });
