import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAMBDA_ROOT as LIB_LAMBDA_ROOT } from '../../lib/constructs/node-function';
import { hashInputs } from '../../rehearsal/cache';
import { LAMBDA_ROOT } from '../../rehearsal/functions';
import { synthesizeApp } from '../../rehearsal/synthesized';
import { app } from '../helpers/upgrade';

/*
 * The rehearsal keeps the synthesized app and the function bundles on disk (rehearsal/
 * cache.ts): what it reads back must be what it would derive again, and a change to what an
 * entry was derived from must never be read from an old one.
 */

describe('the synthesized app from the cache', () => {
  it('is the app synthesized again, Map and key order included', () => {
    const cached = synthesizeApp();
    const fresh = synthesizeApp(() => undefined);
    expect(cached.roles).toBeInstanceOf(Map);
    expect(cached).toStrictEqual(fresh);
    const text = (app: typeof fresh) => JSON.stringify({ ...app, roles: [...app.roles] });
    expect(text(cached)).toBe(text(fresh));
  });
});

describe('the key of an entry', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cache-key-'));
  mkdirSync(join(dir, 'lib', 'deep'), { recursive: true });
  writeFileSync(join(dir, 'lib', 'deep', 'a.ts'), 'export const a = 1;');
  writeFileSync(join(dir, 'cdk.json'), '{}');
  const key = () => hashInputs([join(dir, 'lib'), join(dir, 'cdk.json')], { node: 'v20' });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('changes with any file under a folder, a new file, a file gone, or the extra', () => {
    const before = key();
    expect(key()).toBe(before);
    writeFileSync(join(dir, 'lib', 'deep', 'a.ts'), 'export const a = 2;');
    const changed = key();
    expect(changed).not.toBe(before);
    writeFileSync(join(dir, 'lib', 'b.ts'), '');
    const added = key();
    expect(added).not.toBe(changed);
    expect(hashInputs([join(dir, 'lib'), join(dir, 'cdk.json')], { node: 'v22' })).not.toBe(added);
    expect(hashInputs([join(dir, 'lib'), join(dir, 'gone.json')], { node: 'v20' })).not.toBe(added);
  });
});

describe('a function bundle from the cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bundle-cache-'));
  const entry = join(dir, 'handler.ts');
  writeFileSync(
    entry,
    "import { VALUE } from './value';\nexport const handler = async () => VALUE;",
  );
  const value = (v: string) => writeFileSync(join(dir, 'value.ts'), `export const VALUE = '${v}';`);

  /** Bundles in a module instance of its own, as a new process would: only the disk is shared. */
  async function bundle(): Promise<string> {
    let source = '';
    await jest.isolateModulesAsync(async () => {
      const { bundleFunctions } = await import('../../rehearsal/functions');
      source = (await bundleFunctions(['probe'], { probe: entry })).get('probe')?.source ?? '';
    });
    return source;
  }

  const previous = process.env.QUIET_UPGRADE_CACHE_DIR;
  beforeAll(() => {
    process.env.QUIET_UPGRADE_CACHE_DIR = join(dir, 'cache');
  });
  afterAll(() => {
    if (previous === undefined) delete process.env.QUIET_UPGRADE_CACHE_DIR;
    else process.env.QUIET_UPGRADE_CACHE_DIR = previous;
    rmSync(dir, { recursive: true, force: true });
  });

  it('is rebuilt when a file it was built from changes, and read back when none did', async () => {
    value('first');
    expect(await bundle()).toContain('"first"');
    value('second');
    const rebuilt = await bundle();
    expect(rebuilt).toContain('"second"');
    // One entry for the handler, the one built last.
    const cache = join(dir, 'cache');
    const entries = readdirSync(cache).filter((name) => name.startsWith('bundle-'));
    expect(entries).toHaveLength(1);
    expect(readFileSync(join(cache, entries[0] ?? ''), 'utf8')).toContain('second');
    expect(await bundle()).toBe(rebuilt);
  });
});

describe('a definition the interpreter validated before', () => {
  const dir = mkdtempSync(join(tmpdir(), 'asl-cache-'));
  const previous = process.env.QUIET_UPGRADE_CACHE_DIR;
  beforeAll(() => {
    process.env.QUIET_UPGRADE_CACHE_DIR = dir;
  });
  afterAll(() => {
    if (previous === undefined) delete process.env.QUIET_UPGRADE_CACHE_DIR;
    else process.env.QUIET_UPGRADE_CACHE_DIR = previous;
    rmSync(dir, { recursive: true, force: true });
  });
  const machine = (name: string, comment: string) => ({
    ...app.machines.upgrade,
    name,
    definition: { ...app.machines.upgrade.definition, Comment: comment },
  });

  /** The validation each machine's next run gets, in a module instance of its own. */
  async function validations(machines: ReturnType<typeof machine>[]) {
    let options: unknown[] = [];
    await jest.isolateModulesAsync(async () => {
      const { validationFor } = await import('../../rehearsal/run');
      options = machines.map((m) => {
        const v = validationFor(m);
        v.passed();
        return v.options;
      });
    });
    return options;
  }

  it('is not validated again in the next process, for each machine, until it changes', async () => {
    const upgrade = machine('upgrade', 'a');
    const watchdog = machine('watchdog', 'b');
    const validate = { checkArn: false };
    expect(await validations([upgrade, watchdog])).toEqual([validate, validate]);
    expect(await validations([upgrade, watchdog])).toEqual([
      { noValidate: true },
      { noValidate: true },
    ]);
    expect(await validations([machine('upgrade', 'changed')])).toEqual([validate]);
  });
});

it('finds the function code where the CDK app does', () => {
  expect(LAMBDA_ROOT).toBe(LIB_LAMBDA_ROOT);
});

describe('the bundle npm run rehearse runs (rehearsal/launch.cjs)', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const launch = require('../../rehearsal/launch.cjs') as {
    current(manifest: string): boolean;
    versions(): string;
    hashOf(path: string): string;
  };
  const dir = mkdtempSync(join(tmpdir(), 'launch-'));
  const input = join(dir, 'cli.ts');
  const manifest = join(dir, 'manifest.json');
  const write = (versions: string) =>
    writeFileSync(
      manifest,
      JSON.stringify({ versions, inputs: { [input]: launch.hashOf(input) } }),
    );
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is used only while every file it was built from, Node.js and esbuild are unchanged', () => {
    writeFileSync(input, 'export const a = 1;');
    write(launch.versions());
    expect(launch.current(manifest)).toBe(true);
    writeFileSync(input, 'export const a = 2;');
    expect(launch.current(manifest)).toBe(false);
    write(launch.versions());
    expect(launch.current(manifest)).toBe(true);
    rmSync(input);
    expect(launch.current(manifest)).toBe(false);
    writeFileSync(input, 'export const a = 2;');
    write('node v0.0.0, esbuild 0.0.0');
    expect(launch.current(manifest)).toBe(false);
    expect(launch.current(join(dir, 'no-manifest.json'))).toBe(false);
  });
});
