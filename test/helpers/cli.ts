import { execFile } from 'node:child_process';
import { join } from 'node:path';

// As `npm run rehearse` runs it: the CLI bundled by the launcher, in a plain Node.js process.
export const CLI = join(__dirname, '..', '..', 'rehearsal', 'launch.cjs');

/**
 * The rehearsal CLI with `--json`, its stdout parsed. Batches of runs go through it rather
 * than through `rehearse()` in the test file: Jest runs each file in its own VM context,
 * where the same rehearsals take about twice the CPU, and the CLI is what users run.
 * The output is read through a pipe, as `| jq` would read it.
 */
export function rehearseJson<T>(args: string[]): Promise<{ status: number; json: T }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args, '--json'],
      { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' }, maxBuffer: 64 * 2 ** 20 },
      (err, stdout, stderr) => {
        const status = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        if (status !== 0 && status !== 1) {
          reject(new Error(`rehearse ${args.join(' ')} exited ${status}:\n${stderr}`));
          return;
        }
        try {
          resolve({ status, json: JSON.parse(stdout) as T });
        } catch (parseError) {
          reject(
            new Error(
              `rehearse ${args.join(' ')} printed ${stdout.length} characters that are not one JSON object: ${(parseError as Error).message}`,
            ),
          );
        }
      },
    );
  });
}
