import { MAINTENANCE_TAG } from '../../lambda/maintenance-toggle/rule-specs';
import { EXECUTION_TAG } from '../../lambda/watchdog-inspect/inspect';
import { PAGE_RULE_NAME } from '../../lib/constructs/upgrade-runbook';
import {
  authorize,
  deniedOnlyForMissingTags,
  type Decision,
  type Statement,
} from '../../rehearsal/iam';
import { Simulation } from '../../rehearsal/sim';
import { type SynthesizedApp, synthesizeApp } from '../../rehearsal/synthesized';
import { DEFAULT_LATENCIES, type ModelContext, type Service } from '../../rehearsal/world/core';
import { ElbModel } from '../../rehearsal/world/elb';
import { RdsModel } from '../../rehearsal/world/rds';

/*
 * The tag conditions on the deletes and the switchover, as the rehearsal evaluates them: the
 * synthesized roles, against the requests the RDS and ELB models build, with the resource's
 * tags in the request context (aws:ResourceTag/<key>).
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-DeleteBlueGreenDeployment
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrds.html#amazonrds-SwitchoverBlueGreenDeployment
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_awselasticloadbalancingv2.html#awselasticloadbalancingv2-DeleteRule
 */
const app = synthesizeApp();

function statementsOf(roleArn: string): Statement[] {
  const role = app.roles.get(roleArn);
  if (role === undefined) throw new Error(`no role ${roleArn}`);
  return role.statements;
}

const runbook = statementsOf(app.machines.upgrade.roleArn);
const watchdog = statementsOf(app.machines.watchdog.roleArn);
const toggleFn = app.functions.find((f) => f.dir === 'maintenance-toggle');
if (toggleFn === undefined) throw new Error('no maintenance-toggle function');
const toggle = statementsOf(toggleFn.roleArn);

/** Every authorization an operation needs, as World.call checks them, with each decision. */
function decide(
  statements: Statement[],
  service: Service,
  operation: string,
  input: Record<string, unknown>,
): (Decision & { action: string })[] {
  const op = service[operation];
  if (op === undefined) throw new Error(`no operation ${operation}`);
  return op.iam(input).map((r) => ({ action: r.action, ...authorize(statements, r) }));
}

const allowed = (decisions: (Decision & { action: string })[]) => decisions.every((d) => d.allowed);
const refused = (decisions: (Decision & { action: string })[], action: string) =>
  decisions
    .filter((d) => !d.allowed)
    .map((d) => d.action)
    .includes(action);

describe('RDS blue/green deployments and their tag', () => {
  // Two sources, so each can have a deployment of its own: one the runbook created (with its
  // tag), one someone else created without it.
  const rdsApp = {
    instances: ['db', 'other'].map((identifier) => ({
      identifier,
      engine: 'postgres',
      engineVersion: '16.6',
      parameterGroupName: 'pg16',
      backupRetentionDays: 7,
      deletionProtection: false,
      port: 5432,
      address: `${identifier}.c0rehearsal.eu-west-1.rds.amazonaws.com`,
    })),
    parameterGroups: [
      { name: 'pg16', family: 'postgres16', parameters: {} },
      { name: 'pg17', family: 'postgres17', parameters: {} },
    ],
  } as unknown as SynthesizedApp;

  async function withDeployments(
    fn: (rds: RdsModel, ids: { tagged: string; untagged: string }) => void,
  ): Promise<void> {
    const sim = new Simulation(0);
    await sim.run(async () => {
      const ctx: ModelContext = {
        now: () => sim.now(),
        after: (seconds, f) => void setTimeout(f, seconds * 1000),
        sleep: (seconds) => sim.sleep(seconds),
        draw: () => 0.5,
        latency: DEFAULT_LATENCIES,
        scenario: {},
        assumption: () => 'star',
        emit: () => undefined,
      };
      const rds = new RdsModel(ctx, rdsApp, 'db', ['17.2']);
      const create = (source: string, tags?: { Key: string; Value: string }[]) =>
        (
          rds.service.CreateBlueGreenDeployment?.run({
            BlueGreenDeploymentName: `u-${source}`,
            Source: RdsModel.arn(source),
            TargetEngineVersion: '17.2',
            ...(tags === undefined ? {} : { Tags: tags }),
          }) as { BlueGreenDeployment: { BlueGreenDeploymentIdentifier: string } }
        ).BlueGreenDeployment.BlueGreenDeploymentIdentifier;
      const tagged = create('db', [{ Key: EXECUTION_TAG, Value: 'run-1' }]);
      const untagged = create('other');
      await sim.sleep(ctx.latency.greenBuild);
      fn(rds, { tagged, untagged });
    });
  }

  it.each([
    ['runbook', runbook],
    ['watchdog', watchdog],
  ])(
    'lets the %s role delete a deployment only when it carries the execution tag',
    async (_name, statements) => {
      await withDeployments((rds, { tagged, untagged }) => {
        const del = (id: string, DeleteTarget: boolean) =>
          decide(statements, rds.service, 'DeleteBlueGreenDeployment', {
            BlueGreenDeploymentIdentifier: id,
            DeleteTarget,
          });
        for (const deleteTarget of [true, false]) {
          expect(allowed(del(tagged, deleteTarget))).toBe(true);
          expect(refused(del(untagged, deleteTarget), 'rds:DeleteBlueGreenDeployment')).toBe(true);
        }
        // A deployment that is not there has no tags either.
        expect(refused(del('bgd-missing', false), 'rds:DeleteBlueGreenDeployment')).toBe(true);
      });
    },
  );

  it('lets the runbook switch over a deployment only when it carries the execution tag', async () => {
    await withDeployments((rds, { tagged, untagged }) => {
      const switchover = (id: string) =>
        decide(runbook, rds.service, 'SwitchoverBlueGreenDeployment', {
          BlueGreenDeploymentIdentifier: id,
          SwitchoverTimeout: 300,
        });
      expect(allowed(switchover(tagged))).toBe(true);
      expect(switchover(untagged)).toContainEqual({
        action: 'rds:SwitchoverBlueGreenDeployment',
        allowed: false,
        reason: 'no statement allows it',
      });
    });
  });

  it('excuses a denial on a deployment that is gone only when its missing tags explain it', async () => {
    await withDeployments((rds) => {
      const on = (statements: Statement[], operation: string) =>
        (rds.service[operation]?.iam({ BlueGreenDeploymentIdentifier: 'bgd-missing' }) ?? []).map(
          (r) => deniedOnlyForMissingTags(statements, r),
        );
      // The runbook may delete and switch over its own deployments: only the tags are missing.
      expect(on(runbook, 'DeleteBlueGreenDeployment')).toContain(true);
      expect(on(runbook, 'SwitchoverBlueGreenDeployment')).toContain(true);
      // The watchdog may not switch over at all: a defect, gone deployment or not.
      expect(watchdog.length).toBeGreaterThan(0);
      expect(on(watchdog, 'SwitchoverBlueGreenDeployment')).toEqual([false]);
    });
  });

  it('gives the watchdog no switchover at all', async () => {
    await withDeployments((rds, { tagged }) => {
      expect(
        refused(
          decide(watchdog, rds.service, 'SwitchoverBlueGreenDeployment', {
            BlueGreenDeploymentIdentifier: tagged,
          }),
          'rds:SwitchoverBlueGreenDeployment',
        ),
      ).toBe(true);
    });
  });
});

describe('listener rules and their tag', () => {
  const listener = app.listeners[0];
  if (listener === undefined) throw new Error('no listener');
  const elb = new ElbModel([listener], () => undefined);
  const create = (Priority: number, Tags?: { Key: string; Value: string }[]) =>
    (
      elb.service.CreateRule?.run({
        ListenerArn: listener.arn,
        Priority,
        Conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: [`/${Priority}`] } }],
        Actions: [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '503' } }],
        ...(Tags === undefined ? {} : { Tags }),
      }) as { Rules: { RuleArn: string }[] }
    ).Rules[0]?.RuleArn ?? '';
  const page = create(10, [{ Key: MAINTENANCE_TAG, Value: PAGE_RULE_NAME }]);
  const capture = create(11, [{ Key: MAINTENANCE_TAG, Value: 'capture-1' }]);
  const older = create(12, [{ Key: MAINTENANCE_TAG, Value: 'a-name-from-an-older-release' }]);
  const foreign = create(13);
  const otherTag = create(14, [{ Key: 'team', Value: 'web' }]);
  const deleteRule = (statements: Statement[], RuleArn: string) =>
    decide(statements, elb.service, 'DeleteRule', { RuleArn });

  it("lets the toggle delete only rules with the maintenance tag, whatever the tag's value", () => {
    for (const rule of [page, capture, older]) expect(allowed(deleteRule(toggle, rule))).toBe(true);
    for (const rule of [foreign, otherTag]) {
      expect(deleteRule(toggle, rule)).toEqual([
        {
          action: 'elasticloadbalancing:DeleteRule',
          allowed: false,
          reason: 'no statement allows it',
        },
      ]);
    }
  });

  it('lets the runbook delete only the maintenance page rule', () => {
    expect(allowed(deleteRule(runbook, page))).toBe(true);
    for (const rule of [capture, older, foreign, otherTag]) {
      expect(refused(deleteRule(runbook, rule), 'elasticloadbalancing:DeleteRule')).toBe(true);
    }
  });
});
