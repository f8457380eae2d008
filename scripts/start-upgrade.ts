/**
 * npm run start-upgrade -- --target-engine-version 17.2 [--dry-run] [--require-approval]
 *
 * Starts one run of the upgrade state machine, prints where to follow it, waits for it to end
 * and exits 0 for UPGRADED or DRY_RUN, 1 for any other outcome, 2 for bad usage.
 * The logic is in start-upgrade-lib.ts; this file only wires it to the process.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { main } from './start-upgrade-lib';

main(process.argv.slice(2), {
  client: (region) => new SFNClient({ region }),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  now: () => new Date(),
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  env: process.env,
}).then(
  // Exit only once stdout is out: a pipe is written asynchronously.
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
