import { Console } from 'node:console';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as esbuild from 'esbuild';
import { LAMBDA_ROOT } from '../lib/constructs/node-function';
import type { FunctionSpec } from './synthesized';
import { REGION } from './synthesized';

/**
 * The functions' real code, run in the rehearsal: each function is bundled with esbuild as
 * its NodejsFunction is (the AWS SDK left to the runtime), and each Lambda execution
 * environment is a fresh instance of that bundle with the function's own environment
 * variables, so module state (SDK clients, the database pool, caches) lives per container
 * as it does on Lambda. The AWS SDK it requires answers as the model, as this function
 * (sdk.ts); the `pg` driver it requires is the model's (pg-model.ts), which answers at the
 * query level.
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
 * Bundles each function once per process. `entries` maps a function folder to another
 * handler file (tests rehearse broken functions that way).
 */
export async function bundleFunctions(
  dirs: string[],
  entries: Record<string, string> = {},
): Promise<Map<string, FunctionCode>> {
  const entryOf = (dir: string) => entries[dir] ?? join(LAMBDA_ROOT, dir, 'handler.ts');
  const missing = [...new Set(dirs)].filter((d) => !compiled.has(entryOf(d)));
  if (missing.length > 0) {
    const result = await esbuild.build({
      entryPoints: Object.fromEntries(missing.map((d) => [d, entryOf(d)])),
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
    });
    // The esbuild service is a child process the event loop would keep polling through
    // every step of a simulation; it starts again by itself for the next build.
    await esbuild.stop();
    for (const file of result.outputFiles) {
      const dir = file.path.split('/').at(-1)?.replace(/\.js$/, '') ?? '';
      const load = new Function(
        'exports',
        'require',
        'module',
        '__filename',
        '__dirname',
        'process',
        'console',
        file.text,
      ) as ModuleWrapper;
      compiled.set(entryOf(dir), { dir, source: file.text, bytes: file.contents.byteLength, load });
    }
  }
  return new Map(dirs.map((d) => [d, compiled.get(entryOf(d)) as FunctionCode]));
}

export type InvokeResult =
  { ok: true; payload: unknown } | { ok: false; errorType: string; errorMessage: string };

export interface RuntimeContext {
  sleep(seconds: number): Promise<void>;
  invokeOverhead: number;
  /** What `require('pg')` gives the function. */
  pg: unknown;
  /** The AWS SDK packages as this function sees them (sdk.ts), undefined for others. */
  sdk: (id: string) => unknown;
}

// The module (external) code the bundles share with this process, the AWS SDK above all.
const hostRequire: NodeJS.Require = require;

/** One function's execution environments: reused when idle, a new one when all are busy. */
export class FunctionRuntime {
  private readonly idle: Container[] = [];
  private invocations = 0;

  constructor(
    readonly spec: FunctionSpec,
    private readonly code: FunctionCode,
    private readonly ctx: RuntimeContext,
  ) {}

  private create(): Container {
    // What the function logs goes nowhere: the rehearsal reads what it did, not what it said.
    const sink = new Writable({
      write(_chunk: Buffer, _encoding, done) {
        done();
      },
    });
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
      id === 'pg' ? this.ctx.pg : (this.ctx.sdk(id) ?? hostRequire(id));
    this.code.load(
      module.exports,
      require,
      module,
      '/var/task/index.js',
      '/var/task',
      proc,
      new Console({ stdout: sink, stderr: sink }),
    );
    const handler = module.exports.handler;
    if (typeof handler !== 'function') {
      throw new Error(`${this.spec.dir} exports no handler function`);
    }
    return { handler: handler as Container['handler'] };
  }

  /**
   * One synchronous invocation, as Lambda runs it, including its timeout. `overhead` is the
   * caller's: an API round trip for Invoke, none for an event source mapping's own poller.
   */
  async invoke(event: unknown, overhead = this.ctx.invokeOverhead): Promise<InvokeResult> {
    await this.ctx.sleep(overhead);
    this.invocations += 1;
    const container = this.idle.pop() ?? this.create();
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
    const copy = JSON.parse(JSON.stringify(event ?? null)) as unknown;
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
}
