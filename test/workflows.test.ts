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
/** Where the two roles' trust and permission policies are written down for whoever makes them. */
const ROLES_DOC = 'docs/ci-roles.md';

/**
 * Per workflow: the one job that may hold AWS credentials, the repository variable naming its
 * role, and the heading of its role's section in ROLES_DOC.
 */
const ROLES = {
  deploy: { job: 'deploy', variable: 'AWS_DEPLOY_ROLE_ARN', heading: /^\d+\. Deploy role\b/ },
  upgrade: { job: 'upgrade', variable: 'AWS_UPGRADE_ROLE_ARN', heading: /^\d+\. Upgrade role\b/ },
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
/** `environment: NAME` or `environment: { name: NAME, url: URL }`. */
const Environment = z.union([
  z.string(),
  z.object({ name: z.string(), url: z.string().optional() }),
]);
const Job = z.object({
  name: z.string().optional(),
  needs: z.union([z.string(), z.array(z.string())]).optional(),
  environment: Environment.optional(),
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

function jobOf(workflow: Workflow, id: string): Job {
  const found = workflow.jobs[id];
  if (found === undefined) throw new Error(`no job ${id}`);
  return found;
}

const allSteps = (workflow: Workflow): Step[] =>
  Object.values(workflow.jobs).flatMap((j) => j.steps);

const environmentOf = (job: Job): string | undefined =>
  typeof job.environment === 'string' ? job.environment : job.environment?.name;

const needsOf = (job: Job): string[] => (job.needs === undefined ? [] : [job.needs].flat());

/** What a job's token really gets: a job's own `permissions` replace the workflow's. */
const effectivePermissions = (workflow: Workflow, job: Job) =>
  job.permissions ?? workflow.permissions;

/**
 * Whether a job can ask GitHub for an OIDC token, the one thing that turns into AWS
 * credentials. `write-all` includes `id-token: write`.
 * https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-syntax#permissions
 */
function mayRequestIdToken(workflow: Workflow, job: Job): boolean {
  const p = effectivePermissions(workflow, job);
  return p === 'write-all' || (typeof p === 'object' && p['id-token'] === 'write');
}

/** The ids of the jobs matching `match`, sorted. */
const jobIds = (workflow: Workflow, match: (job: Job) => boolean): string[] =>
  Object.entries(workflow.jobs)
    .filter(([, j]) => match(j))
    .map(([id]) => id)
    .sort();

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
const takesCredentials = (j: Job) => j.steps.some(uses('aws-actions/configure-aws-credentials'));
const runsNpm = (j: Job) => j.steps.some(runs(/^npm (ci|test)\b/m));

/**
 * A `uses:` line: the action, the ref after `@`, and the trailing `# version` comment.
 * GitHub: "Pinning an action to a full length commit SHA is currently the only way to use an
 * action as an immutable release."
 * https://docs.github.com/en/actions/security-for-github-actions/security-guides/security-hardening-for-github-actions#using-third-party-actions
 */
const USES_LINE = /^\s*(?:-\s+)?uses:\s*(\S+?)@(\S+)(?:\s+#\s*(.*?))?\s*$/;
const FULL_SHA = /^[0-9a-f]{40}$/;
const RELEASE = /^v\d+\.\d+\.\d+$/;

interface Pin {
  line: string;
  action: string;
  ref: string;
  comment: string | undefined;
}

/** Every `uses:` line of a workflow's text, comments included (the parsed YAML drops them). */
function pinsOf(text: string): Pin[] {
  return text
    .split('\n')
    .filter((line) => /^\s*(?:-\s+)?uses:/.test(line))
    .map((line) => {
      const m = USES_LINE.exec(line);
      return { line, action: m?.[1] ?? '', ref: m?.[2] ?? '', comment: m?.[3] };
    });
}

/** The expression contexts GitHub expands inside a run script, where a value becomes code. */
const INJECTABLE = /\$\{\{\s*(inputs|github\.event|github\.head_ref)\b/;

describe.each(Object.entries(FILES))('%s workflow', (name, file) => {
  const workflow = load(file);
  const role = ROLES[name as keyof typeof ROLES];
  const text = raw(file);
  const jobs = Object.values(workflow.jobs);

  it('grants every job only contents: read unless the job asks for more', () => {
    // No id-token here: a job added later gets no way to AWS by default.
    expect(workflow.permissions).toEqual({ contents: 'read' });
  });

  it('lets a job ask for an OIDC token only if it names an environment', () => {
    const allowed: Record<string, readonly string[]> = {
      'id-token': ['write', 'none'],
      contents: ['read', 'none'],
    };
    for (const [id, job] of Object.entries(workflow.jobs)) {
      const block = effectivePermissions(workflow, job);
      // `write-all`/`read-all` are broader than any listed scope.
      if (typeof block === 'string') throw new Error(`${id}: permissions: ${block} is too broad`);
      if (block === undefined) throw new Error(`${id}: no permissions: the repository default`);
      const broader = Object.entries(block).filter(
        ([scope, level]) => !(allowed[scope] ?? ['none']).includes(level),
      );
      expect({ id, broader }).toEqual({ id, broader: [] });
      // The environment's required reviewers approve the job before it starts, and the role
      // trusts only that environment's `sub` claim.
      if (mayRequestIdToken(workflow, job)) {
        expect({ id, environment: environmentOf(job) }).toEqual({
          id,
          environment: expect.stringMatching(/\S/),
        });
      }
    }
  });

  it(`gives an OIDC token to the ${role.job} job only, the one that takes AWS credentials`, () => {
    expect(jobIds(workflow, (j) => mayRequestIdToken(workflow, j))).toEqual([role.job]);
    expect(jobIds(workflow, takesCredentials)).toEqual([role.job]);
    // Job-level, so it is not inherited by a job added later.
    expect(jobOf(workflow, role.job).permissions).toEqual({
      'id-token': 'write',
      contents: 'read',
    });
  });

  it(`assumes the role in vars.${role.variable} through OIDC, and no other role`, () => {
    const credentials = allSteps(workflow).filter(uses('aws-actions/configure-aws-credentials'));
    expect(credentials).toHaveLength(1);
    const inputs = credentials[0]?.with ?? {};
    expect(inputs['role-to-assume']).toMatch(
      new RegExp(`^\\$\\{\\{\\s*vars\\.${role.variable}\\s*\\}\\}$`),
    );
    expect(inputs['aws-region']).toMatch(/^\$\{\{\s*vars\.[A-Z_]+\s*\}\}$/);
    expect(Object.keys(inputs).sort()).toEqual(['aws-region', 'role-to-assume']);
    // Not even in a comment or an env: each workflow has its own role.
    for (const other of Object.values(ROLES)) {
      if (other.variable !== role.variable) expect(text).not.toContain(other.variable);
    }
  });

  it('holds no secrets reference, access key input or access key id anywhere', () => {
    expect(text).not.toMatch(/\bsecrets\s*(\.|\[)/i);
    expect(text).not.toMatch(/aws-access-key-id|aws-secret-access-key|aws-session-token/i);
    expect(text).not.toMatch(/\b(AKIA|ASIA)[0-9A-Z]{16}\b/);
  });

  it('never expands inputs or event data inside a run script', () => {
    const scripts = allSteps(workflow).flatMap((s) => (s.run === undefined ? [] : [s.run]));
    expect(scripts.length).toBeGreaterThan(0);
    for (const script of scripts) expect(script).not.toMatch(INJECTABLE);
  });

  it('pins every action to a full commit SHA, with its release in a comment', () => {
    const pins = pinsOf(text);
    // Every parsed `uses` has its line, so none escapes the comment check below.
    const parsed = allSteps(workflow).flatMap((s) => (s.uses === undefined ? [] : [s.uses]));
    expect(pins.map((p) => `${p.action}@${p.ref}`)).toEqual(parsed);
    expect(pins.length).toBeGreaterThan(0);
    const loose = pins.filter(
      (p) => !FULL_SHA.test(p.ref) || p.comment === undefined || !RELEASE.test(p.comment),
    );
    expect(loose.map((p) => p.line.trim())).toEqual([]);
  });

  it('installs with npm ci on Node 20 before anything runs, in each job that installs', () => {
    const installing = jobs.filter((j) => j.steps.some(runs(/^npm ci\b/)));
    expect(installing.length).toBeGreaterThan(0);
    for (const job of installing) {
      const node = step(job.steps, 'sets up node', uses('actions/setup-node'));
      expect(node.with).toMatchObject({ 'node-version': 20, cache: 'npm' });
      expect(stepIndex(job.steps, 'runs npm ci', runs(/^npm ci\b/))).toBe(2);
    }
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

it('pins each action to the same commit and release in every workflow', () => {
  const seen = new Map<string, Set<string>>();
  for (const file of Object.values(FILES)) {
    for (const p of pinsOf(raw(file))) {
      seen.set(p.action, (seen.get(p.action) ?? new Set()).add(`${p.ref} # ${p.comment}`));
    }
  }
  const differing = [...seen].filter(([, pins]) => pins.size !== 1);
  expect(differing).toEqual([]);
});

it('recognises a loose pin', () => {
  const [tag, short, bare, pinned] = pinsOf(
    [
      '      - uses: actions/checkout@v4',
      '      - uses: actions/checkout@11d5960 # v4.4.0',
      '      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262',
      '      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0',
    ].join('\n'),
  );
  expect(tag?.ref).not.toMatch(FULL_SHA);
  expect(short?.ref).not.toMatch(FULL_SHA);
  expect(bare?.comment).toBeUndefined();
  expect(pinned).toMatchObject({ action: 'actions/checkout', comment: 'v4.4.0' });
  expect(pinned?.ref).toMatch(FULL_SHA);
});

it('recognises the expression forms a script injection uses', () => {
  expect('echo "${{ inputs.target-engine-version }}"').toMatch(INJECTABLE);
  expect('echo ${{github.event.issue.title}}').toMatch(INJECTABLE);
  expect('echo "$TARGET_ENGINE_VERSION"').not.toMatch(INJECTABLE);
});

// ------------------------------------------------------------------ the documented roles

/** An IAM policy as written in ROLES_DOC: Allow statements only, nothing this file ignores. */
const Policy = z.object({
  Version: z.literal('2012-10-17'),
  Statement: z.array(
    z
      .object({
        Sid: z.string().optional(),
        Effect: z.literal('Allow'),
        Principal: z.object({ Federated: z.string() }).strict().optional(),
        Action: z.union([z.string(), z.array(z.string())]),
        Resource: z.union([z.string(), z.array(z.string())]).optional(),
        Condition: z.record(z.string(), z.record(z.string(), z.string())).optional(),
      })
      .strict(),
  ),
});
type Policy = z.infer<typeof Policy>;

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : [v].flat());

/** The text under the one `## ` heading of `doc` matching `heading`. */
function section(doc: string, heading: RegExp): string {
  const found = doc.split(/^## /m).filter((part) => heading.test(part));
  if (found.length !== 1) throw new Error(`${found.length} sections match ${heading}`);
  return found[0] ?? '';
}

/** A role's section holds two policies: the trust policy and the permission policy. */
function policiesOf(text: string): { trust: Policy; permissions: Policy } {
  const policies = [...text.matchAll(/^```json\n([\s\S]*?)^```/gm)].map((m) =>
    Policy.parse(JSON.parse(m[1] ?? '')),
  );
  const isTrust = (p: Policy) =>
    p.Statement.some((s) => list(s.Action).includes('sts:AssumeRoleWithWebIdentity'));
  const trust = policies.filter(isTrust);
  const permissions = policies.filter((p) => !isTrust(p));
  expect([trust.length, permissions.length]).toEqual([1, 1]);
  if (trust[0] === undefined || permissions[0] === undefined) throw new Error('no policies');
  return { trust: trust[0], permissions: permissions[0] };
}

/** Action to its resources, sorted, over every statement. */
function grants(policy: Policy): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of policy.Statement) {
    for (const action of list(s.Action)) {
      out[action] = [...(out[action] ?? []), ...list(s.Resource)].sort();
    }
  }
  return out;
}

/** The AWS CLI service names the workflows use, as IAM action prefixes. */
const CLI_SERVICES: Record<string, string> = {
  cloudformation: 'cloudformation',
  stepfunctions: 'states',
};
/** The AWS SDK v3 clients the scripts use, as IAM action prefixes. */
const SDK_CLIENTS: Record<string, string> = { '@aws-sdk/client-sfn': 'states' };

const pascal = (kebab: string): string =>
  kebab.replace(/(^|-)([a-z])/g, (_m, _dash: string, c: string) => c.toUpperCase());

/** `aws SERVICE OPERATION` in a run script, as the IAM action it needs. */
function cliCalls(script: string): string[] {
  return [...script.matchAll(/\baws\s+([a-z0-9-]+)\s+([a-z0-9-]+)/g)].map(([, service, op]) => {
    const prefix = CLI_SERVICES[service ?? ''];
    if (prefix === undefined) throw new Error(`map the AWS CLI service ${service} to IAM`);
    return `${prefix}:${pascal(op ?? '')}`;
  });
}

/** `new XCommand(` in a script and the local files it imports, as the IAM actions they need. */
function sdkCalls(file: string, seen = new Set<string>()): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  const source = raw(file);
  const clients = [...source.matchAll(/from '(@aws-sdk\/client-[a-z0-9-]+)'/g)].map((m) => m[1]);
  const prefixes = [...new Set(clients)].map((c) => {
    const prefix = SDK_CLIENTS[c ?? ''];
    if (prefix === undefined) throw new Error(`map the SDK client ${c} to IAM`);
    return prefix;
  });
  const commands = [...source.matchAll(/\bnew (\w+)Command\(/g)].map((m) => m[1] ?? '');
  if (commands.length > 0 && prefixes.length !== 1) {
    throw new Error(`${file}: cannot tell which client each command belongs to`);
  }
  const local = [...source.matchAll(/from '\.\/([\w-]+)'/g)].map((m) => `scripts/${m[1]}.ts`);
  return [
    ...commands.map((c) => `${prefixes[0]}:${c}`),
    ...local.flatMap((f) => sdkCalls(f, seen)),
  ];
}

/** Every AWS call a job makes with its role: its `aws` commands, npm scripts and cdk. */
function awsCallsOf(job: Job): string[] {
  const packageScripts = z
    .object({ scripts: z.record(z.string(), z.string()) })
    .parse(JSON.parse(raw('package.json'))).scripts;
  const calls = job.steps.flatMap((s) => {
    if (s.run === undefined) return [];
    const npmScripts = [...s.run.matchAll(/\bnpm run ([\w-]+)/g)].flatMap(([, script]) => {
      const command = packageScripts[script ?? ''] ?? '';
      const m = /^tsx (scripts\/[\w-]+\.ts)$/.exec(command);
      if (m?.[1] === undefined) throw new Error(`cannot follow npm run ${script}: ${command}`);
      return sdkCalls(m[1]);
    });
    // cdk diff and cdk deploy work through the CDK bootstrap roles, which they assume.
    const cdk = /\bnpx cdk\b/.test(s.run) ? ['sts:AssumeRole'] : [];
    return [...cliCalls(s.run), ...npmScripts, ...cdk];
  });
  return [...new Set(calls)].sort();
}

describe(`the roles documented in ${ROLES_DOC}`, () => {
  const doc = raw(ROLES_DOC);
  const readme = raw('README.md');
  const fromCi = /^### From CI\n([\s\S]*?)^#{1,3} /m.exec(readme)?.[1] ?? '';
  // The names the stacks give the orchestration stack and the state machines.
  const stack = /new UpgradeStack\(app, '([\w-]+)'/.exec(raw('lib/app.ts'))?.[1];
  const machineName = (constant: string) =>
    new RegExp(`export const ${constant} = '([\\w-]+)'`).exec(
      raw('lib/stacks/upgrade-stack.ts'),
    )?.[1];
  const upgrade = machineName('UPGRADE_MACHINE_NAME');
  const watchdog = machineName('WATCHDOG_MACHINE_NAME');
  const arn = {
    stack: `arn:aws:cloudformation:REGION:ACCOUNT_ID:stack/${stack}/*`,
    machine: (name?: string) => `arn:aws:states:REGION:ACCOUNT_ID:stateMachine:${name}`,
    executions: (name?: string) => `arn:aws:states:REGION:ACCOUNT_ID:execution:${name}:*`,
  };

  it('finds the stack and machine names in lib/', () => {
    expect([stack, upgrade, watchdog]).toEqual([
      expect.stringMatching(/\w/),
      expect.stringMatching(/\w/),
      expect.stringMatching(/\w/),
    ]);
  });

  it('gives each role its own environment, so one job cannot assume the other role', () => {
    // Both trust policies match the `sub` claim, which is the same for one environment.
    const names = Object.entries(ROLES).map(([name, role]) =>
      environmentOf(jobOf(load(FILES[name as keyof typeof FILES]), role.job)),
    );
    expect(new Set(names).size).toBe(names.length);
  });

  it('is linked from the README', () => {
    expect(fromCi).toContain(`](${ROLES_DOC})`);
  });

  describe.each(Object.entries(ROLES))('the %s role', (name, role) => {
    const workflow = load(FILES[name as keyof typeof FILES]);
    const job = jobOf(workflow, role.job);
    const environment = environmentOf(job);
    const { trust, permissions } = policiesOf(section(doc, role.heading));

    it("trusts only GitHub's OIDC token for its job's environment in this repository", () => {
      expect(environment).toMatch(/^[\w-]+$/);
      // StringEquals, not StringLike: no wildcard can widen the subject.
      // https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect#example-subject-claims
      expect(trust.Statement).toEqual([
        {
          Effect: 'Allow',
          Principal: {
            Federated: 'arn:aws:iam::ACCOUNT_ID:oidc-provider/token.actions.githubusercontent.com',
          },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: {
              'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
              'token.actions.githubusercontent.com:sub': `repo:OWNER/REPO:environment:${environment}`,
            },
          },
        },
      ]);
    });

    it('is named, with its environment, in the README', () => {
      expect(fromCi).toContain(`\`${role.variable}\``);
      expect(fromCi).toContain(`\`${environment}\``);
    });

    it('may make exactly the AWS calls its job makes', () => {
      expect(Object.keys(grants(permissions)).sort()).toEqual(awsCallsOf(job));
    });
  });

  it('lets the deploy role use the CDK bootstrap roles and run the freeze check, no more', () => {
    const { permissions } = policiesOf(section(doc, ROLES.deploy.heading));
    expect(grants(permissions)).toEqual({
      'sts:AssumeRole': ['arn:aws:iam::ACCOUNT_ID:role/cdk-hnb659fds-*-ACCOUNT_ID-REGION'],
      'cloudformation:DescribeStacks': [arn.stack],
      'states:ListExecutions': [arn.machine(upgrade), arn.machine(watchdog)].sort(),
    });
  });

  it('lets the upgrade role start and watch the upgrade machine only', () => {
    const { permissions } = policiesOf(section(doc, ROLES.upgrade.heading));
    expect(grants(permissions)).toEqual({
      'cloudformation:DescribeStacks': [arn.stack],
      'states:StartExecution': [arn.machine(upgrade)],
      'states:DescribeExecution': [arn.executions(upgrade)],
    });
  });

  it('reads AWS calls from scripts and the npm scripts they run', () => {
    expect(cliCalls('aws stepfunctions list-executions --state-machine-arn "$m"')).toEqual([
      'states:ListExecutions',
    ]);
    expect(() => cliCalls('aws rds describe-db-instances')).toThrow(/map the AWS CLI service/);
    expect(sdkCalls('scripts/start-upgrade.ts').sort()).toEqual([
      'states:DescribeExecution',
      'states:StartExecution',
    ]);
  });
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
  const test = jobOf(workflow, 'test');
  const deployJob = jobOf(workflow, 'deploy');
  const { steps } = deployJob;
  const isFreeze = runs(/list-executions[\s\S]*--status-filter/);
  const freeze = step(steps, 'checks for open upgrade runs', isFreeze);
  const isNpmTest = (s: Step) => s.run?.trim() === 'npm test';

  it('deploys only on a push to main', () => {
    expect(workflow.on).toEqual({ push: { branches: ['main'] } });
  });

  it('installs and runs the tests in a job that cannot ask for an OIDC token', () => {
    expect(stepIndex(test.steps, 'runs npm ci', runs(/^npm ci\b/))).toBeLessThan(
      stepIndex(test.steps, 'runs npm test', isNpmTest),
    );
    expect(mayRequestIdToken(workflow, test)).toBe(false);
    expect(takesCredentials(test)).toBe(false);
    // Every job that installs or tests, other than deploy (which needs the packages for cdk).
    expect(jobIds(workflow, (j) => runsNpm(j) && mayRequestIdToken(workflow, j))).toEqual([
      'deploy',
    ]);
    expect(steps.filter(isNpmTest)).toEqual([]);
  });

  it('deploys only after the tests pass and a reviewer of its environment approves', () => {
    expect(needsOf(deployJob)).toEqual(['test']);
    // Its name is checked against the trust policy in the roles doc, below.
    expect(environmentOf(deployJob)).toMatch(/^[\w-]+$/);
  });

  it('takes credentials, diffs, checks the freeze, then deploys, in that order', () => {
    const deploy = stepIndex(
      steps,
      'deploys',
      runs(/^npx cdk deploy --all --require-approval never$/m),
    );
    const order = [
      stepIndex(steps, 'runs npm ci', runs(/^npm ci\b/)),
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
  const job = jobOf(workflow, 'upgrade');
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

  it('is its only job, and waits for a reviewer of its environment', () => {
    expect(Object.keys(workflow.jobs)).toEqual(['upgrade']);
    expect(environmentOf(job)).toMatch(/^[\w-]+$/);
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
