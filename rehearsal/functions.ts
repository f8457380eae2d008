import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type * as Esbuild from 'esbuild';
import { hashInputs, readEntry, writeEntry } from './cache';
import type { FunctionSpec } from './synthesized';
import { REGION } from './synthesized';

/**
 * The functions' real code, run in the rehearsal: each function is bundled with esbuild as
 * its NodejsFunction is (the AWS SDK left to the runtime), and each Lambda execution
 * environment is a fresh instance of that bundle with the function's own environment
 * variables, so module state (SDK clients, the database pool, caches) lives per container
 * as it does on Lambda. The AWS SDK it requires answers as the model, as this function
 * (sdk.ts); the `pg` driver it requires is the model's (pg-model.ts), and so is our MySQL
 * client (mysql-model.ts, MYSQL_CLIENT_PLUGIN), both answering at the statement level.
 */
export interface FunctionCode {
  dir: string;
  /** The bundle, minified, as the function ships it (tests read its imports). */
  source: string;
  /** Minified bytes of the bundle. */
  bytes: number;
  /** The module wrapper, compiled once; each call is a new module instance. */
  load: ModuleWrapper;
}

type ModuleWrapper = (
  exports: Record<string, unknown>,
  require: (id: string) => unknown,
  module: { exports: Record<string, unknown> },
  filename: string,
  dirname: string,
  process: NodeJS.Process,
  console: Console,
) => void;

const compiled = new Map<string, FunctionCode>();

/**
 * Where function code lives: `lambda/<name>/handler.ts`. The same folder as LAMBDA_ROOT in
 * lib/constructs/node-function.ts, which cannot be imported here without aws-cdk-lib.
 */
export const LAMBDA_ROOT = join(__dirname, '..', 'lambda');

/**
 * The id under which a bundle requires our MySQL client (lambda/shared/mysql-client.ts) in
 * the rehearsal: the module is left out of the bundle, as `pg` is, and the runtime gives the
 * model's client for it (mysql-model.ts), which answers at the statement level.
 */
export const MYSQL_CLIENT_ID = 'quiet-upgrade:mysql-client';
const MYSQL_CLIENT_FILE = join(LAMBDA_ROOT, 'shared', 'mysql-client.ts');

/**
 * Resolves every import of lambda/shared/mysql-client(.ts) to MYSQL_CLIENT_ID, external. Only
 * the rehearsal's bundles use it: the bench measures the bundles as the deploy builds them
 * (bench.ts, deployBundles), with the real client in.
 */
export const MYSQL_CLIENT_PLUGIN: Esbuild.Plugin = {
  name: 'rehearsal-mysql-client',
  setup(build) {
    build.onResolve({ filter: /mysql-client(\.ts)?$/ }, (args) => {
      const path = resolve(args.resolveDir, args.path);
      return path === MYSQL_CLIENT_FILE || `${path}.ts` === MYSQL_CLIENT_FILE
        ? { path: MYSQL_CLIENT_ID, external: true }
        : undefined;
    });
  },
};

/** esbuild's options for the bundles, as NodejsFunction bundles the functions. */
export const BUNDLE_OPTIONS = {
  outdir: '/rehearsal-bundles',
  bundle: true,
  platform: 'node',
  // The functions run on Node.js 24 on Lambda; here they run on this machine's Node.
  target: `node${process.versions.node.split('.')[0]}`,
  format: 'cjs',
  minify: true,
  write: false,
  external: ['@aws-sdk/*', 'pg'],
  logLevel: 'error',
} as const satisfies Esbuild.BuildOptions;

/** A bundle as the cache keeps it, with the files it was built from and their hashes. */
interface CachedBundle {
  source: string;
  bytes: number;
  inputs: Record<string, string>;
}

/**
 * Bundles each function once per process, and once for as long as nothing it is built from
 * changes: a bundle is kept on disk (cache.ts) under a hash of its entry, the options, the
 * esbuild version and the dependencies (package-lock.json), with a hash of each file of ours
 * it was built from, checked before it is used. `entries` maps a function folder to another
 * handler file (tests rehearse broken functions that way).
 */
export async function bundleFunctions(
  dirs: string[],
  entries: Record<string, string> = {},
): Promise<Map<string, FunctionCode>> {
  const entryOf = (dir: string) => entries[dir] ?? join(LAMBDA_ROOT, dir, 'handler.ts');
  let missing = [...new Set(dirs)].filter((d) => !compiled.has(entryOf(d)));
  if (missing.length > 0) {
    const { version } = JSON.parse(
      readFileSync(require.resolve('esbuild/package.json'), 'utf8'),
    ) as { version: string };
    const dependencies = hashInputs(['package-lock.json'], {
      esbuild: version,
      BUNDLE_OPTIONS,
      replaced: { [MYSQL_CLIENT_ID]: MYSQL_CLIENT_PLUGIN.name },
    });
    const keyOf = (dir: string) => hash(`${dependencies} ${dir} ${entryOf(dir)}`);
    const fileHashes = new Map<string, string>();
    const fileHash = (path: string) => {
      let h = fileHashes.get(path);
      if (h === undefined) {
        try {
          h = hash(readFileSync(path));
        } catch {
          h = 'absent';
        }
        fileHashes.set(path, h);
      }
      return h;
    };
    missing = missing.filter((dir) => {
      const text = readEntry(`bundle-${hash(entryOf(dir)).slice(0, 16)}`, keyOf(dir));
      if (text === undefined) return true;
      try {
        const cached = JSON.parse(text) as CachedBundle;
        if (Object.entries(cached.inputs).some(([path, h]) => fileHash(path) !== h)) return true;
        compiled.set(entryOf(dir), compile(dir, cached.source, cached.bytes));
        return false;
      } catch {
        return true;
      }
    });
    if (missing.length > 0) {
      const esbuild = await import('esbuild');
      const result = await esbuild.build({
        ...BUNDLE_OPTIONS,
        entryPoints: Object.fromEntries(missing.map((d) => [d, entryOf(d)])),
        metafile: true,
        plugins: [MYSQL_CLIENT_PLUGIN],
      });
      // The esbuild service is a child process the event loop would keep polling through
      // every step of a simulation; it starts again by itself for the next build.
      await esbuild.stop();
      for (const file of result.outputFiles) {
        const dir = file.path.split('/').at(-1)?.replace(/\.js$/, '') ?? '';
        const code = compile(dir, file.text, file.contents.byteLength);
        compiled.set(entryOf(dir), code);
        // The files of ours it was built from; the dependencies are in the key.
        const output = Object.entries(result.metafile.outputs).find(
          ([path]) => resolve(path) === file.path,
        )?.[1];
        const inputs = Object.fromEntries(
          Object.keys(output?.inputs ?? {})
            .filter((path) => !path.split('/').includes('node_modules'))
            .map((path) => [resolve(path), fileHash(resolve(path))]),
        );
        if (output === undefined || Object.keys(inputs).length === 0) continue;
        const cached: CachedBundle = { source: code.source, bytes: code.bytes, inputs };
        writeEntry(`bundle-${hash(entryOf(dir)).slice(0, 16)}`, keyOf(dir), JSON.stringify(cached));
      }
    }
  }
  return new Map(dirs.map((d) => [d, compiled.get(entryOf(d)) as FunctionCode]));
}

function compile(dir: string, source: string, bytes: number): FunctionCode {
  const load = new Function(
    'exports',
    'require',
    'module',
    '__filename',
    '__dirname',
    'process',
    'console',
    source,
  ) as ModuleWrapper;
  return { dir, source, bytes, load };
}

function hash(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

export type InvokeResult =
  { ok: true; payload: unknown } | { ok: false; errorType: string; errorMessage: string };

export interface RuntimeContext {
  sleep(seconds: number): Promise<void>;
  invokeOverhead: number;
  /** The init a new execution environment pays before its first invocation (a cold start). */
  coldStartSeconds: number;
  /** Told of each cold start, as it begins. */
  onColdStart?: (seconds: number) => void;
  /** An environment idle this long is gone (assumption idle-environments); never if unset. */
  reclaimIdleAfterSeconds?: number;
  /** What `require('pg')` gives the function. */
  pg: unknown;
  /** What the function's import of lambda/shared/mysql-client.ts gives it (MYSQL_CLIENT_ID). */
  mysql: unknown;
  /** The AWS SDK packages as this function sees them (sdk.ts), undefined for others. */
  sdk: (id: string) => unknown;
}

// The module (external) code the bundles share with this process, the AWS SDK above all.
const hostRequire: NodeJS.Require = require;

const quiet = () => undefined;
const SILENT_CONSOLE = Object.fromEntries(
  ['log', 'info', 'debug', 'warn', 'error', 'trace', 'dir', 'table'].map((m) => [m, quiet]),
) as unknown as Console;

/**
 * One function's execution environments: reused when idle, a new one (a cold start) when all
 * are busy. "After the function and all extensions have completed, Lambda maintains the
 * execution environment for some time in anticipation of another function invocation", for
 * how long it does not say (assumption idle-environments): an invocation starts cold when it
 * is a function's first, runs beside another, or finds every idle environment reclaimed.
 * https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-shutdown
 */
export class FunctionRuntime {
  private idle: Container[] = [];
  private invocations = 0;

  constructor(
    readonly spec: FunctionSpec,
    private readonly code: FunctionCode,
    private readonly ctx: RuntimeContext,
  ) {}

  private create(): Container {
    // What the function logs goes nowhere: the rehearsal reads what it did, not what it said.
    // A console that drops its arguments unformatted, and streams that take writes and call
    // back at once (a real stream's callback costs the simulation a turn of the event loop).
    const sink = {
      write: (_chunk: unknown, ...rest: unknown[]) => {
        const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        done?.();
        return true;
      },
    };
    const env: Record<string, string> = {
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_LAMBDA_FUNCTION_NAME: this.spec.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256',
      AWS_LAMBDA_LOG_FORMAT: 'JSON',
      LAMBDA_TASK_ROOT: '/var/task',
      ...this.spec.environment,
    };
    const proc = Object.create(process, {
      env: { value: env },
      stdout: { value: sink },
      stderr: { value: sink },
    }) as NodeJS.Process;
    const module = { exports: {} as Record<string, unknown> };
    const require = (id: string) =>
      id === 'pg'
        ? this.ctx.pg
        : id === MYSQL_CLIENT_ID
          ? this.ctx.mysql
          : (this.ctx.sdk(id) ?? hostRequire(id));
    this.code.load(
      module.exports,
      require,
      module,
      '/var/task/index.js',
      '/var/task',
      proc,
      SILENT_CONSOLE,
    );
    const handler = module.exports.handler;
    if (typeof handler !== 'function') {
      throw new Error(`${this.spec.dir} exports no handler function`);
    }
    return { handler: handler as Container['handler'], idleSince: Date.now() };
  }

  /**
   * One synchronous invocation, as Lambda runs it, including its timeout. `overhead` is the
   * caller's: an API round trip for Invoke, none for an event source mapping's own poller.
   * `own`: the event was built for this call alone, of JSON values only, and its maker never
   * reads it again (the poller's batches), so it is the handler's own copy already.
   */
  async invoke(
    event: unknown,
    overhead = this.ctx.invokeOverhead,
    own = false,
  ): Promise<InvokeResult> {
    await this.ctx.sleep(overhead);
    this.invocations += 1;
    const reclaim = this.ctx.reclaimIdleAfterSeconds;
    if (reclaim !== undefined) {
      const now = Date.now();
      this.idle = this.idle.filter((c) => now - c.idleSince < reclaim * 1000);
    }
    let container = this.idle.pop();
    if (container === undefined) {
      this.ctx.onColdStart?.(this.ctx.coldStartSeconds);
      await this.ctx.sleep(this.ctx.coldStartSeconds);
      container = this.create();
    }
    const deadline = Date.now() + this.spec.timeoutSeconds * 1000;
    const context = {
      functionName: this.spec.name,
      functionVersion: '$LATEST',
      invokedFunctionArn: this.spec.arn,
      memoryLimitInMB: '256',
      awsRequestId: `req-${this.invocations}`,
      logGroupName: `/aws/lambda/${this.spec.name}`,
      logStreamName: 'rehearsal',
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.spec.timeoutSeconds * 1000);
    });
    // The event arrives serialized, as Lambda delivers it: the handler gets its own copy.
    const copy = own ? event : (JSON.parse(JSON.stringify(event ?? null)) as unknown);
    const run = Promise.resolve()
      .then(() => container.handler(copy, context))
      .then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      );
    const outcome = await Promise.race([run, timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      // The environment is not reused after a timeout: "If the Lambda function crashes or
      // times out during the Invoke phase, Lambda resets the execution environment."
      // https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html#runtimes-lifecycle-invoke-with-errors
      return {
        ok: false,
        errorType: 'Sandbox.Timedout',
        errorMessage: `Task timed out after ${this.spec.timeoutSeconds.toFixed(2)} seconds`,
      };
    }
    container.idleSince = Date.now();
    this.idle.push(container);
    if ('error' in outcome) {
      const e = outcome.error as { name?: string; message?: string };
      return { ok: false, errorType: e?.name || 'Error', errorMessage: e?.message ?? String(e) };
    }
    // The response is JSON, as Lambda serializes it.
    return { ok: true, payload: JSON.parse(JSON.stringify(outcome.value ?? null)) as unknown };
  }
}

interface Container {
  handler: (event: unknown, context: unknown) => unknown;
  /** When its last invocation ended. */
  idleSince: number;
}
