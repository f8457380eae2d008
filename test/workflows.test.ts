import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';

const ROOT = join(__dirname, '..');
const FILES = {
  deploy: '.github/workflows/deploy.yml',
  upgrade: '.github/workflows/upgrade.yml',
} as const;

const EnvBlock = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
/** A string (`write-all`, `read-all`) or a map of scope to level. */
const Permissions = z.union([z.string(), z.record(z.string(), z.string())]);
const Step = z.object({
  id: z.string().optional(),
  name: z.string().optional(),
  uses: z.string().optional(),
  run: z.string().optional(),
  with: z.record(z.string(), z.unknown()).optional(),
  env: EnvBlock.optional(),
});
const Concurrency = z.union([
  z.string(),
  z.object({ group: z.string(), 'cancel-in-progress': z.boolean().optional() }),
]);
const Job = z.object({
  permissions: Permissions.optional(),
  concurrency: Concurrency.optional(),
  'timeout-minutes': z.number().optional(),
  env: EnvBlock.optional(),
  steps: z.array(Step),
});
const Workflow = z.object({
  on: z.record(z.string(), z.unknown()),
  permissions: Permissions.optional(),
  concurrency: Concurrency.optional(),
  env: EnvBlock.optional(),
  defaults: z.object({ run: z.object({ shell: z.string().optional() }) }).optional(),
  jobs: z.record(z.string(), Job),
});
type Workflow = z.infer<typeof Workflow>;
type Job = z.infer<typeof Job>;
type Step = z.infer<typeof Step>;

const raw = (file: string): string => readFileSync(join(ROOT, file), 'utf8');
// YAML 1.2 (the yaml package's default) reads `on` as a string key, as GitHub does.
const load = (file: string): Workflow => Workflow.parse(parse(raw(file)));

function onlyJob(workflow: Workflow): Job {
  const jobs = Object.values(workflow.jobs);
  expect(jobs).toHaveLength(1);
  const [job] = jobs;
  if (job === undefined) throw new Error('no job');
  return job;
}

function stepIndex(steps: Step[], label: string, match: (s: Step) => boolean): number {
  const i = steps.findIndex(match);
  if (i < 0) throw new Error(`no step that ${label}`);
  return i;
}

function step(steps: Step[], label: string, match: (s: Step) => boolean): Step {
  const found = steps[stepIndex(steps, label, match)];
  if (found === undefined) throw new Error(`no step that ${label}`);
  return found;
}

const runs = (pattern: RegExp) => (s: Step) => s.run !== undefined && pattern.test(s.run);
const uses = (action: string) => (s: Step) => s.uses?.startsWith(`${action}@`) ?? false;

/** The expression contexts GitHub expands inside a run script, where a value becomes code. */
const INJECTABLE = /\$\{\{\s*(inputs|github\.event|github\.head_ref)\b/;

describe.each(Object.entries(FILES))('%s workflow', (_name, file) => {
  const workflow = load(file);
  const job = onlyJob(workflow);
  const text = raw(file);

  it('grants the token only id-token: write and contents: read', () => {
    const allowed: Record<string, readonly string[]> = {
      'id-token': ['write'],
      contents: ['read', 'none'],
    };
    const blocks = [workflow.permissions, job.permissions].filter((p) => p !== undefined);
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) {
      // `write-all`/`read-all` are broader than any listed scope.
      if (typeof block === 'string') throw new Error(`permissions: ${block} is too broad`);
      const broader = Object.entries(block).filter(
        ([scope, level]) => !(allowed[scope] ?? ['none']).includes(level),
      );
      expect(broader).toEqual([]);
    }
    // Job-level permissions replace the workflow's, so check what the job really gets.
    const effective = job.permissions ?? workflow.permissions;
    expect(effective).toMatchObject({ 'id-token': 'write' });
  });

  it('assumes a role from a repository variable through OIDC, never with stored keys', () => {
    const credentials = job.steps.filter(uses('aws-actions/configure-aws-credentials'));
    expect(credentials).toHaveLength(1);
    const inputs = credentials[0]?.with ?? {};
    expect(inputs['role-to-assume']).toMatch(/^\$\{\{\s*vars\.[A-Z_]+\s*\}\}$/);
    expect(inputs['aws-region']).toMatch(/^\$\{\{\s*vars\.[A-Z_]+\s*\}\}$/);
    expect(Object.keys(inputs).sort()).toEqual(['aws-region', 'role-to-assume']);
  });

  it('holds no secrets reference, access key input or access key id anywhere', () => {
    expect(text).not.toMatch(/\bsecrets\s*(\.|\[)/i);
    expect(text).not.toMatch(/aws-access-key-id|aws-secret-access-key|aws-session-token/i);
    expect(text).not.toMatch(/\b(AKIA|ASIA)[0-9A-Z]{16}\b/);
  });

  it('never expands inputs or event data inside a run script', () => {
    const scripts = job.steps.flatMap((s) => (s.run === undefined ? [] : [s.run]));
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) expect(script).not.toMatch(INJECTABLE);
  });

  it('pins each action to a major version', () => {
    const actions = job.steps.flatMap((s) => (s.uses === undefined ? [] : [s.uses]));
    expect(actions).toEqual([
      'actions/checkout@v4',
      'actions/setup-node@v4',
      'aws-actions/configure-aws-credentials@v4',
    ]);
  });

  it('installs with npm ci on Node 20 before anything runs', () => {
    const node = step(job.steps, 'sets up node', uses('actions/setup-node'));
    expect(node.with).toMatchObject({ 'node-version': 20, cache: 'npm' });
    expect(stepIndex(job.steps, 'runs npm ci', runs(/^npm ci\b/))).toBe(2);
  });

  it('runs its scripts under bash, so pipefail is on', () => {
    expect(workflow.defaults?.run.shell).toBe('bash');
  });

  it('runs one at a time and never cancels a run in progress', () => {
    expect(workflow.concurrency).toMatchObject({
      group: expect.stringMatching(/\S/),
      'cancel-in-progress': false,
    });
  });
});

it('recognises the expression forms a script injection uses', () => {
  expect('echo "${{ inputs.target-engine-version }}"').toMatch(INJECTABLE);
  expect('echo ${{github.event.issue.title}}').toMatch(INJECTABLE);
  expect('echo "$TARGET_ENGINE_VERSION"').not.toMatch(INJECTABLE);
});

// ------------------------------------------------------------------ running step scripts

/**
 * Fakes of the aws and npm commands. aws answers from FAKE_* variables and logs each call;
 * npm records its arguments NUL-separated, so each argument's boundaries survive.
 */
const FAKE_AWS = `#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$FAKE_AWS_LOG"
case "$1 $2" in
  "cloudformation describe-stacks")
    if [[ -n "\${FAKE_STACKS_ERROR:-}" ]]; then echo "$FAKE_STACKS_ERROR" >&2; exit 254; fi
    printf '%s\\n' "$FAKE_STACKS_OUTPUT" ;;
  "stepfunctions list-executions")
    if [[ -n "\${FAKE_LIST_ERROR:-}" ]]; then echo "$FAKE_LIST_ERROR" >&2; exit 254; fi
    arn=""; status=""
    while [[ $# -gt 0 ]]; do
      case "$1" in --state-machine-arn) arn="$2"; shift ;; --status-filter) status="$2"; shift ;; esac
      shift
    done
    if grep -qxF "$arn $status" <<<"\${FAKE_OPEN:-}"; then echo 1; else echo 0; fi ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 255 ;;
esac
`;
const FAKE_NPM = `#!/usr/bin/env bash
printf '%s\\0' "$@" > "$FAKE_NPM_ARGS"
`;

interface StepRun {
  status: number | null;
  stdout: string;
  stderr: string;
  awsCalls: string[];
  npmArgs: string[] | undefined;
  githubOutput: string;
  /** What the script left in its working directory. */
  files: string[];
}

/**
 * Runs a step's script the way a GitHub-hosted runner does for `shell: bash`, with its env
 * expressions expanded from `contexts` and only the fakes as AWS and npm.
 * https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#jobsjob_idstepsshell
 */
function runStep(
  workflow: Workflow,
  target: Step,
  contexts: Record<string, string>,
  fakes: Record<string, string>,
): StepRun {
  const dir = mkdtempSync(join(tmpdir(), 'workflow-step-'));
  try {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    for (const [name, body] of [
      ['aws', FAKE_AWS],
      ['npm', FAKE_NPM],
    ] as const) {
      writeFileSync(join(bin, name), body);
      chmodSync(join(bin, name), 0o755);
    }
    const expand = (value: string | number | boolean): string =>
      String(value).replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_m, expr: string) => {
        const v = contexts[expr];
        if (v === undefined) throw new Error(`this test gives no value for \${{ ${expr} }}`);
        return v;
      });
    const declared = { ...workflow.env, ...target.env };
    const env: Record<string, string> = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: dir,
      TMPDIR: dir,
      GITHUB_OUTPUT: join(dir, 'github-output'),
      FAKE_AWS_LOG: join(dir, 'aws-calls'),
      FAKE_NPM_ARGS: join(dir, 'npm-args'),
      ...Object.fromEntries(Object.entries(declared).map(([k, v]) => [k, expand(v)])),
      ...fakes,
    };
    writeFileSync(env.GITHUB_OUTPUT ?? '', '');
    writeFileSync(env.FAKE_AWS_LOG ?? '', '');
    const script = join(dir, 'step.sh');
    writeFileSync(script, target.run ?? '');
    const result = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
      env,
      cwd: dir,
      encoding: 'utf8',
    });
    const read = (path: string): string | undefined => {
      try {
        return readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    };
    const npm = read(env.FAKE_NPM_ARGS ?? '');
    return {
      status: result.status,
      stdout: result.stdout,
      stderr: result.stderr,
      awsCalls: (read(env.FAKE_AWS_LOG ?? '') ?? '').split('\n').filter((l) => l !== ''),
      npmArgs: npm === undefined ? undefined : npm.split('\0').slice(0, -1),
      githubOutput: read(env.GITHUB_OUTPUT ?? '') ?? '',
      files: readdirSync(dir),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const UPGRADE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:QuietUpgrade-Upgrade';
const WATCHDOG_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:QuietUpgrade-Watchdog';

describe('deploy workflow', () => {
  const workflow = load(FILES.deploy);
  const { steps } = onlyJob(workflow);
  const isFreeze = runs(/list-executions[\s\S]*--status-filter/);
  const freeze = step(steps, 'checks for open upgrade runs', isFreeze);

  it('deploys only on a push to main', () => {
    expect(workflow.on).toEqual({ push: { branches: ['main'] } });
  });

  it('tests, takes credentials, diffs, checks the freeze, then deploys, in that order', () => {
    const deploy = stepIndex(
      steps,
      'deploys',
      runs(/^npx cdk deploy --all --require-approval never$/m),
    );
    const order = [
      stepIndex(steps, 'runs npm test', (s) => s.run?.trim() === 'npm test'),
      stepIndex(steps, 'takes AWS credentials', uses('aws-actions/configure-aws-credentials')),
      stepIndex(steps, 'runs cdk diff', runs(/^npx cdk diff$/m)),
      stepIndex(steps, 'checks the deploy freeze', isFreeze),
      deploy,
    ];
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(new Set(order).size).toBe(order.length);
    // Nothing slow between the freeze check and the deploy: a run could start in the gap.
    expect(stepIndex(steps, 'checks the deploy freeze', isFreeze)).toBe(deploy - 1);
  });

  it('turns off the CDK version check for every step', () => {
    expect(workflow.env).toMatchObject({ CDK_DISABLE_VERSION_CHECK: '1' });
  });

  describe('the deploy freeze', () => {
    it('passes on the first deploy, when the stack does not exist yet', () => {
      const r = runStep(
        workflow,
        freeze,
        {},
        {
          FAKE_STACKS_ERROR:
            'An error occurred (ValidationError) when calling the DescribeStacks operation: Stack with id QuietUpgradeOrchestration does not exist',
        },
      );
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('does not exist yet (first deploy)');
      expect(r.awsCalls.filter((c) => c.includes('list-executions'))).toEqual([]);
    });

    it('passes when neither machine has an open run, having asked about both', () => {
      const r = runStep(
        workflow,
        freeze,
        {},
        {
          FAKE_STACKS_OUTPUT: `${UPGRADE_ARN}\t${WATCHDOG_ARN}`,
        },
      );
      expect(r.status).toBe(0);
      const asked = r.awsCalls.filter((c) => c.includes('list-executions'));
      for (const arn of [UPGRADE_ARN, WATCHDOG_ARN]) {
        for (const status of ['RUNNING', 'PENDING_REDRIVE']) {
          expect(asked).toContainEqual(
            expect.stringContaining(`--state-machine-arn ${arn} --status-filter ${status}`),
          );
        }
      }
    });

    it.each([
      ['an upgrade is RUNNING', `${UPGRADE_ARN} RUNNING`],
      ['an upgrade waits for a redrive', `${UPGRADE_ARN} PENDING_REDRIVE`],
      ['the watchdog is RUNNING', `${WATCHDOG_ARN} RUNNING`],
    ])('fails while %s', (_case, open) => {
      const r = runStep(
        workflow,
        freeze,
        {},
        {
          FAKE_STACKS_OUTPUT: `${UPGRADE_ARN}\t${WATCHDOG_ARN}`,
          FAKE_OPEN: open,
        },
      );
      expect(r.status).toBe(1);
      expect(r.stdout).toContain('::error title=Deploy frozen::');
    });

    it.each([
      [
        'the stack cannot be read',
        {
          FAKE_STACKS_ERROR:
            'An error occurred (AccessDenied) when calling the DescribeStacks operation: not authorized',
        },
      ],
      [
        'the executions cannot be listed',
        {
          FAKE_STACKS_OUTPUT: UPGRADE_ARN,
          FAKE_LIST_ERROR: 'An error occurred (ThrottlingException)',
        },
      ],
    ])('fails when %s: "could not check" is not "nothing running"', (_case, fakes) => {
      const r = runStep(workflow, freeze, {}, fakes);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('An error occurred');
    });
  });
});

describe('upgrade workflow', () => {
  const workflow = load(FILES.upgrade);
  const job = onlyJob(workflow);
  const find = step(job.steps, 'finds the state machine', (s) => s.id === 'machine');
  const start = step(job.steps, 'starts the upgrade', runs(/npm run start-upgrade --/));

  it('is started by hand, with a required target and a dry run by default', () => {
    expect(Object.keys(workflow.on)).toEqual(['workflow_dispatch']);
    expect(workflow.on.workflow_dispatch).toMatchObject({
      inputs: {
        'target-engine-version': { required: true, type: 'string' },
        'dry-run': { type: 'boolean', default: true },
        'require-approval': { type: 'boolean', default: false },
      },
    });
  });

  it("stops watching within GitHub's 6 h limit for a hosted job", () => {
    expect(job['timeout-minutes']).toBe(360);
  });

  it('takes credentials before it looks up the machine and starts it', () => {
    const credentials = stepIndex(
      job.steps,
      'takes AWS credentials',
      uses('aws-actions/configure-aws-credentials'),
    );
    expect(credentials).toBeLessThan(job.steps.indexOf(find));
    expect(job.steps.indexOf(find)).toBeLessThan(job.steps.indexOf(start));
  });

  it('reads the state machine ARN from the stack output and hands it to the script', () => {
    const r = runStep(workflow, find, {}, { FAKE_STACKS_OUTPUT: UPGRADE_ARN });
    expect(r.status).toBe(0);
    expect(r.githubOutput).toBe(`arn=${UPGRADE_ARN}\n`);
    expect(r.awsCalls[0]).toContain('--stack-name QuietUpgradeOrchestration');
    expect(r.awsCalls[0]).toContain("OutputKey=='UpgradeStateMachineArn'");
    expect(start.env?.UPGRADE_STATE_MACHINE_ARN).toMatch(
      /^\$\{\{\s*steps\.machine\.outputs\.arn\s*\}\}$/,
    );
  });

  it('fails before starting anything when the stack has no such output', () => {
    const r = runStep(workflow, find, {}, { FAKE_STACKS_OUTPUT: 'None' });
    expect(r.status).toBe(1);
    expect(r.githubOutput).toBe('');
  });

  const contexts = (target: string, dryRun: boolean, approval: boolean) => ({
    'steps.machine.outputs.arn': UPGRADE_ARN,
    'inputs.target-engine-version': target,
    'inputs.dry-run': String(dryRun),
    'inputs.require-approval': String(approval),
  });
  /** What the step should hand to npm: the script, the machine, the target, then flags. */
  const startArgs = (target: string, flags: string[]) => [
    'run',
    'start-upgrade',
    '--',
    '--state-machine-arn',
    UPGRADE_ARN,
    '--target-engine-version',
    target,
    ...flags,
  ];

  it.each([
    [true, false, ['--dry-run']],
    [false, true, ['--require-approval']],
    [false, false, []],
    [true, true, ['--dry-run', '--require-approval']],
  ])('with dry-run %s and require-approval %s passes %j', (dryRun, approval, flags) => {
    const r = runStep(workflow, start, contexts('17.2', dryRun, approval), {});
    expect(r.status).toBe(0);
    expect(r.npmArgs).toEqual(startArgs('17.2', flags));
  });

  it('passes a crafted target as one argument for the script to refuse, never as shell', () => {
    const crafted = '17.2"; touch pwned; echo "$(touch pwned2)';
    const r = runStep(workflow, start, contexts(crafted, true, false), {});
    expect(r.npmArgs).toEqual(startArgs(crafted, ['--dry-run']));
    expect(r.status).toBe(0);
    expect(r.files.filter((f) => f.startsWith('pwned'))).toEqual([]);
  });
});
