/**
 * npm run quiet-window -- [--weeks N] [--length 1h] [--from FILE] [--json | --schedule]
 *
 * Prints the quietest window of each weekday from the load balancer's request counts. The
 * logic is in quiet-window-lib.ts; this file only wires it to the process and cdk.json.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { type Defaults, main } from './quiet-window-lib';

/** What cdk.json's config says about the region, the schedule's zone and an adopted listener. */
function defaults(): Defaults {
  try {
    const cdk = JSON.parse(readFileSync(join(__dirname, '..', 'cdk.json'), 'utf8')) as {
      context?: {
        quietUpgrade?: {
          env?: { region?: string };
          upgrade?: { scheduleTimeZone?: string };
          platform?: string;
          existing?: { listener?: { listenerArn?: string } };
        };
      };
    };
    const config = cdk.context?.quietUpgrade;
    return {
      region: config?.env?.region,
      timeZone: config?.upgrade?.scheduleTimeZone,
      listenerArn:
        config?.platform === 'existing' ? config.existing?.listener?.listenerArn : undefined,
    };
  } catch {
    return {};
  }
}

main(process.argv.slice(2), {
  cloudWatch: (region) => new CloudWatchClient({ region }),
  readFile: (path) => readFileSync(path, 'utf8'),
  defaults,
  now: () => new Date(),
  out: (line) => console.log(line),
  err: (line) => console.error(line),
}).then(
  // Exit only once stdout is out: a pipe is written asynchronously.
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
