import { execFile } from 'node:child_process';
import { join } from 'node:path';
import type { GlobalConfig } from 'jest';
import { hashInputs, readEntry, ROOT, writeEntry } from '../rehearsal/cache';

/*
 * Fills the rehearsal's cache (rehearsal/cache.ts) once, before the workers start, when the
 * whole suite runs. On a fresh clone (CI) the cache is empty, and the first test files of
 * both workers would each synthesize the app and each create PGlite's data directory, the
 * same work twice, seconds of it, on a machine with a core per worker. Here it is done once,
 * in two processes side by side: the rehearsal CLI, as the tests run it, rehearses a dry run
 * on each engine the suite rehearses most (which builds the CLI's bundle, synthesizes the
 * app, bundles the functions and validates the definition), while a second process creates
 * the PGlite data directory with the tests' own helper. Each of them keeps what it derives
 * under the cache's own keys, which the tests look up as always: this only decides when the
 * work is done, never what a test reads. A failure here is only a cold cache: the test that
 * needs the entry derives it, and reports what is wrong.
 */
const CLI = join(ROOT, 'rehearsal', 'launch.cjs');
const POSTGRES_HELPER = join(ROOT, 'test', 'helpers', 'postgres.ts');

/**
 * What the warm-up's entries are derived from: while none of it changes, a run after a
 * warm-up has nothing to fill, and skips even asking (a dry run per engine and a PGlite start
 * take a few seconds).
 */
const INPUTS = [
  'lib',
  'bin',
  'lambda',
  'rehearsal',
  'cdk.json',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'test/helpers/postgres.ts',
  'test/global-setup.ts',
];

/** No process here should outlast this; a hung one is stopped and the tests start anyway. */
const TIMEOUT_MS = 120_000;

export default async function globalSetup(globalConfig: GlobalConfig): Promise<void> {
  // Only for the whole suite (npm test, .ci/run): a run of a few files may not need the cache.
  if (
    globalConfig.testPathPatterns.isSet() ||
    globalConfig.onlyChanged ||
    globalConfig.onlyFailures ||
    globalConfig.findRelatedTests ||
    globalConfig.lastCommit ||
    globalConfig.changedSince !== undefined
  ) {
    return;
  }
  const key = hashInputs(INPUTS, {
    node: process.version,
    // The synthesized app depends on these (rehearsal/synthesized.ts).
    env: Object.entries(process.env)
      .filter(([k]) => k.startsWith('CDK_'))
      .sort(([a], [b]) => a.localeCompare(b)),
  });
  if (readEntry('warm', key) !== undefined) return;
  const ran = await Promise.all([
    // One engine after the other: the second reuses the CLI's bundle and the shared functions'.
    node([CLI, '--scenario', 'dry-run', '--json']).then(
      async (first) =>
        first && (await node([CLI, '--engine', 'mysql', '--scenario', 'dry-run', '--json'])),
    ),
    node([
      '--require',
      'tsx/cjs',
      '--eval',
      `require(${JSON.stringify(POSTGRES_HELPER)}).startPostgres().then((pg) => pg.stop())`,
    ]),
  ]);
  if (ran.every(Boolean)) writeEntry('warm', key, 'warm');
}

/** Runs Node.js with these arguments, as test/helpers/cli.ts runs the CLI; true when it exits 0. */
function node(args: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      {
        cwd: ROOT,
        env: { ...process.env, NODE_OPTIONS: '' },
        timeout: TIMEOUT_MS,
        maxBuffer: 64 * 2 ** 20,
      },
      (err) => resolve(err === null),
    );
  });
}
