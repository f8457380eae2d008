import { sdkErrorNames } from '../../lib/constructs/upgrade-steps';
import { authorize, type Statement } from '../../rehearsal/iam';
import { sfnErrorName } from '../../rehearsal/run';
import { Simulation } from '../../rehearsal/sim';
import type { SynthesizedApp } from '../../rehearsal/synthesized';
import {
  DEFAULT_LATENCIES,
  type ModelContext,
  type Scenario,
  type WorldEvent,
} from '../../rehearsal/world/core';
import { ElbModel } from '../../rehearsal/world/elb';
import { RdsModel } from '../../rehearsal/world/rds';
import { matchesPattern } from '../../rehearsal/world/services';
import { SqsModel } from '../../rehearsal/world/sqs';

/** Runs `fn` in a simulation with a model context of its own. */
async function inSimulation(
  fn: (ctx: ModelContext, sim: Simulation, events: WorldEvent[]) => Promise<void>,
  scenario: Scenario = {},
): Promise<void> {
  const sim = new Simulation(0);
  const events: WorldEvent[] = [];
  await sim.run(async () => {
    const ctx: ModelContext = {
      now: () => sim.now(),
      after: (seconds, f) => void setTimeout(f, seconds * 1000),
      sleep: (seconds) => sim.sleep(seconds),
      draw: () => 0.5,
      latency: { ...DEFAULT_LATENCIES, ...scenario.latencies },
      scenario,
      assumption: () => 'star',
      emit: (e) => events.push({ t: sim.now(), ...e } as WorldEvent),
    };
    await fn(ctx, sim, events);
  });
}

describe('IAM evaluation', () => {
  const allow = (
    Action: string | string[],
    Resource: string | string[],
    extra: Partial<Statement> = {},
  ): Statement => ({
    Effect: 'Allow',
    Action,
    Resource,
    ...extra,
  });

  it('allows only what a statement allows, actions case-insensitively, resources with * across : and /', () => {
    const s = [allow('rds:describeDBInstances', 'arn:aws:rds:eu-west-1:1:db:*')];
    expect(
      authorize(s, {
        action: 'rds:DescribeDBInstances',
        resource: 'arn:aws:rds:eu-west-1:1:db:platform-db',
      }).allowed,
    ).toBe(true);
    expect(
      authorize(s, { action: 'rds:DescribeDBInstances', resource: 'arn:aws:rds:eu-west-1:1:pg:x' })
        .allowed,
    ).toBe(false);
    expect(
      authorize(s, { action: 'rds:ModifyDBInstance', resource: 'arn:aws:rds:eu-west-1:1:db:x' }),
    ).toEqual({ allowed: false, reason: 'no statement allows it' });
    expect(
      authorize([allow('s3:GetObject', 'arn:aws:s3:::b/*')], {
        action: 's3:GetObject',
        resource: 'arn:aws:s3:::b/a/b:c',
      }).allowed,
    ).toBe(true);
    expect(
      authorize([allow('s3:GetObject', 'arn:aws:s3:::b/?')], {
        action: 's3:GetObject',
        resource: 'arn:aws:s3:::b/ab',
      }).allowed,
    ).toBe(false);
  });

  it('lets an explicit Deny win over any Allow', () => {
    const s: Statement[] = [
      allow('*', '*'),
      { Effect: 'Deny', Action: 'rds:Delete*', Resource: '*' },
    ];
    expect(authorize(s, { action: 'rds:DeleteDBInstance', resource: 'x' })).toEqual({
      allowed: false,
      reason: 'explicit deny',
    });
    expect(authorize(s, { action: 'rds:DescribeDBInstances', resource: 'x' }).allowed).toBe(true);
  });

  it('evaluates conditions on the request context, and a missing key does not match', () => {
    const s = [
      allow('elasticloadbalancing:AddTags', '*', {
        Condition: { StringEquals: { 'elasticloadbalancing:CreateAction': 'CreateRule' } },
      }),
    ];
    const request = { action: 'elasticloadbalancing:AddTags', resource: 'r' };
    expect(
      authorize(s, { ...request, context: { 'elasticloadbalancing:CreateAction': 'CreateRule' } })
        .allowed,
    ).toBe(true);
    expect(
      authorize(s, {
        ...request,
        context: { 'elasticloadbalancing:CreateAction': 'CreateListener' },
      }).allowed,
    ).toBe(false);
    expect(authorize(s, request).allowed).toBe(false);
    const ifExists = [
      allow('x:Y', '*', { Condition: { StringEqualsIfExists: { 'aws:RequestTag/a': 'b' } } }),
    ];
    expect(authorize(ifExists, { action: 'x:Y', resource: 'r' }).allowed).toBe(true);
    expect(() =>
      authorize(
        [allow('x:Y', '*', { Condition: { DateGreaterThan: { 'aws:CurrentTime': '2020' } } })],
        { action: 'x:Y', resource: 'r', context: { 'aws:CurrentTime': '2026' } },
      ),
    ).toThrow('does not evaluate the IAM condition operator DateGreaterThan');
  });
});

describe('the simulation', () => {
  it('moves virtual time timer to timer, with Date and seeded randomness on its clock', async () => {
    const sim = new Simulation('2026-11-22T04:00:00Z');
    const seen: string[] = [];
    const draws: number[] = [];
    await sim.run(async () => {
      await Promise.all([
        sim.sleep(3600).then(() => seen.push(`b ${new Date().toISOString()}`)),
        sim.sleep(1.5).then(() => seen.push(`a ${new Date(Date.now()).toISOString()}`)),
      ]);
      draws.push(Math.random(), Math.random());
    });
    expect(seen).toEqual(['a 2026-11-22T04:00:01.500Z', 'b 2026-11-22T05:00:00.000Z']);
    const again: number[] = [];
    await new Simulation(0).run(async () => void again.push(Math.random(), Math.random()));
    expect(again).toEqual(draws);
    expect(Date.now()).toBeGreaterThan(Date.parse('2026-12-01'));
  });

  it('says so when nothing is left to wait for', async () => {
    await expect(new Simulation(0).run(() => new Promise<void>(() => undefined))).rejects.toThrow(
      'the rehearsal is stuck at +0 s',
    );
  });
});

describe('SQS', () => {
  const queue = {
    logicalId: 'Q',
    name: 'q',
    url: 'https://sqs/q',
    arn: 'arn:aws:sqs:eu-west-1:1:q',
    visibilityTimeoutSeconds: 60,
    retentionSeconds: 1_209_600,
    redrive: { deadLetterTargetArn: 'arn:aws:sqs:eu-west-1:1:dlq', maxReceiveCount: 2 },
  };
  const dlq = {
    ...queue,
    logicalId: 'D',
    name: 'dlq',
    url: 'https://sqs/dlq',
    arn: 'arn:aws:sqs:eu-west-1:1:dlq',
    redrive: undefined,
  };

  it('hides a received message for the visibility timeout, counts it in flight, and moves it to the DLQ past maxReceiveCount', async () => {
    await inSimulation(async (ctx, sim) => {
      const sqs = new SqsModel(ctx, [queue, dlq]);
      const q = sqs.queue(queue.url);
      const m = sqs.send(queue.url, '{}', 7);
      const attributes = () =>
        sqs.service.GetQueueAttributes?.run({ QueueUrl: queue.url, AttributeNames: ['All'] }) as {
          Attributes: Record<string, string>;
        };
      expect(sqs.receive(q, 10)).toHaveLength(1);
      expect(attributes().Attributes).toMatchObject({
        ApproximateNumberOfMessages: '0',
        ApproximateNumberOfMessagesNotVisible: '1',
      });
      await sim.sleep(59);
      expect(sqs.receive(q, 10)).toHaveLength(0);
      await sim.sleep(1);
      expect(sqs.receive(q, 10)).toHaveLength(1); // second receive
      await sim.sleep(60);
      expect(sqs.receive(q, 10)).toHaveLength(0); // a third would exceed maxReceiveCount 2
      expect(m.state).toBe('dlq');
      expect(sqs.queue(dlq.url).dlq).toEqual([m]);
    });
  });

  it('deletes a message for good once the consumer reports it done', async () => {
    await inSimulation(async (ctx, sim) => {
      const sqs = new SqsModel(ctx, [queue, dlq]);
      const q = sqs.queue(queue.url);
      sqs.send(queue.url, '{}', 1);
      const [d] = sqs.receive(q, 10);
      sqs.delete(q, d?.receipt ?? '');
      await sim.sleep(600);
      expect(sqs.receive(q, 10)).toEqual([]);
      expect(d?.message.state).toBe('deleted');
    });
  });
});

describe('the load balancer', () => {
  it('routes by rule priority, lowest first, every condition of a rule matching, the default last', () => {
    const listener = 'arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/lb/1/2';
    const elb = new ElbModel(
      [
        {
          arn: listener,
          loadBalancerArn: 'lb',
          defaultActions: [{ Type: 'forward', TargetGroupArn: 'app' }],
        },
      ],
      () => undefined,
    );
    const create = (Priority: number, Conditions: unknown[], Actions: unknown[]) =>
      elb.service.CreateRule?.run({ ListenerArn: listener, Priority, Conditions, Actions });
    create(
      30,
      [{ Field: 'path-pattern', PathPatternConfig: { Values: ['*'] } }],
      [{ Type: 'fixed-response', FixedResponseConfig: { StatusCode: '503' } }],
    );
    create(
      20,
      [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/t/*'] } }],
      [{ Type: 'forward', TargetGroupArn: 'capture' }],
    );
    create(
      10,
      [
        {
          Field: 'http-header',
          HttpHeaderConfig: { HttpHeaderName: 'X-Bypass', Values: ['s3cret'] },
        },
      ],
      [{ Type: 'forward', TargetGroupArn: 'app' }],
    );
    expect(elb.route(listener, { path: '/t/click' })).toEqual({
      type: 'forward',
      targetGroupArn: 'capture',
    });
    expect(elb.route(listener, { path: '/' })).toMatchObject({
      type: 'fixed-response',
      statusCode: '503',
    });
    expect(elb.route(listener, { path: '/', headers: { 'x-bypass': 'S3CRET' } })).toEqual({
      type: 'forward',
      targetGroupArn: 'app',
    });
    expect(() => create(20, [], [])).toThrow("Priority '20' is currently in use");
  });
});

describe('RDS blue/green', () => {
  const app = {
    instances: [
      {
        identifier: 'db',
        engine: 'postgres',
        engineVersion: '16.6',
        parameterGroupName: 'pg16',
        backupRetentionDays: 7,
        deletionProtection: true,
        port: 5432,
        address: 'db.c0rehearsal.eu-west-1.rds.amazonaws.com',
      },
    ],
    parameterGroups: [
      { name: 'pg16', family: 'postgres16', parameters: {} },
      { name: 'pg17', family: 'postgres17', parameters: {} },
    ],
  } as unknown as SynthesizedApp;
  const insert = (key: string): [string, unknown[]] => [
    'INSERT INTO email_sends (idempotency_key, campaign_id) VALUES ($1, $2) ON CONFLICT (idempotency_key) DO NOTHING',
    [key, 'c'],
  ];

  it('carries blue’s writes to green until the switchover, then leaves old blue read-only', async () => {
    await inSimulation(async (ctx, sim, events) => {
      const rds = new RdsModel(ctx, app, 'db', ['17.2']);
      const host = RdsModel.endpoint('db');
      let blue = rds.connect(host);
      rds.execute(blue, ...insert('before'));
      const { BlueGreenDeployment } = rds.service.CreateBlueGreenDeployment?.run({
        BlueGreenDeploymentName: 'u',
        Source: RdsModel.arn('db'),
        TargetEngineVersion: '17.2',
        TargetDBParameterGroupName: 'pg17',
      }) as { BlueGreenDeployment: { BlueGreenDeploymentIdentifier: string } };
      await sim.sleep(ctx.latency.greenBuild);
      rds.service.SwitchoverBlueGreenDeployment?.run({
        BlueGreenDeploymentIdentifier: BlueGreenDeployment.BlueGreenDeploymentIdentifier,
      });
      // Writes stop and connections drop during the switchover.
      expect(() => rds.execute(blue, ...insert('during'))).toThrow(
        'Connection terminated unexpectedly',
      );
      expect(() => rds.connect(host)).toThrow('not accepting connections');
      await sim.sleep(ctx.latency.switchover);
      const green = rds.connect(host);
      expect(green.instance.engineVersion).toBe('17.2');
      expect(rds.execute(green, ...insert('before')).rowCount).toBe(0); // replicated
      expect(rds.execute(green, ...insert('after')).rowCount).toBe(1);
      blue = rds.connect(RdsModel.endpoint('db-old1'));
      expect(() => rds.execute(blue, ...insert('late'))).toThrow('read-only');
      expect(
        events
          .filter((e) => e.kind === 'writer')
          .map((e) => (e as { resourceId: string }).resourceId),
      ).toEqual(['db-db', 'db-green-000001']);
    });
  });

  it('lets old blue take writes only after default_transaction_read_only=0 and a reboot', async () => {
    await inSimulation(async (ctx, sim) => {
      const rds = new RdsModel(ctx, app, 'db', ['17.2']);
      const { BlueGreenDeployment } = rds.service.CreateBlueGreenDeployment?.run({
        BlueGreenDeploymentName: 'u',
        Source: RdsModel.arn('db'),
        TargetEngineVersion: '17.2',
      }) as { BlueGreenDeployment: { BlueGreenDeploymentIdentifier: string } };
      await sim.sleep(ctx.latency.greenBuild);
      rds.service.SwitchoverBlueGreenDeployment?.run({
        BlueGreenDeploymentIdentifier: BlueGreenDeployment.BlueGreenDeploymentIdentifier,
      });
      await sim.sleep(ctx.latency.switchover);
      const old = rds.named('db-old1');
      if (old === undefined) throw new Error('no old blue');
      rds.service.RebootDBInstance?.run({ DBInstanceIdentifier: 'db-old1' });
      await sim.sleep(ctx.latency.reboot);
      expect(rds.readOnlyReason(old)).toContain('until default_transaction_read_only=0');
      rds.service.ModifyDBParameterGroup?.run({
        DBParameterGroupName: 'pg16',
        Parameters: [
          {
            ParameterName: 'default_transaction_read_only',
            ParameterValue: '0',
            ApplyMethod: 'immediate',
          },
        ],
      });
      expect(rds.readOnlyReason(old)).not.toBeNull();
      rds.service.RebootDBInstance?.run({ DBInstanceIdentifier: 'db-old1' });
      await sim.sleep(ctx.latency.reboot);
      expect(rds.readOnlyReason(old)).toBeNull();
    });
  });

  it('answers an INSERT without ON CONFLICT on a key it has with a unique violation', async () => {
    await inSimulation(async (ctx) => {
      const rds = new RdsModel(ctx, app, 'db', []);
      const c = rds.connect(RdsModel.endpoint('db'));
      const plain = 'INSERT INTO email_sends (idempotency_key) VALUES ($1)';
      rds.execute(c, plain, ['k']);
      expect(() => rds.execute(c, plain, ['k'])).toThrow(
        'duplicate key value violates unique constraint',
      );
      expect(() => rds.execute(c, 'DELETE FROM email_sends', [])).toThrow(
        'does not model this SQL statement',
      );
    });
  });
});

describe('names and patterns', () => {
  it('names SDK integration errors in both readings, and the runbook catches either', () => {
    expect(sfnErrorName('rds', 'BlueGreenDeploymentNotFoundFault', 'with-suffix')).toBe(
      'Rds.BlueGreenDeploymentNotFoundFaultException',
    );
    expect(sfnErrorName('rds', 'BlueGreenDeploymentNotFoundFault', 'java-class')).toBe(
      'Rds.BlueGreenDeploymentNotFoundException',
    );
    expect(sfnErrorName('rds', 'Throttling', 'java-class')).toBe('Rds.RdsException');
    expect(sfnErrorName('lambda', 'ResourceInUseException', 'with-suffix')).toBe(
      'Lambda.ResourceInUseException',
    );
    for (const naming of ['with-suffix', 'java-class']) {
      expect(sdkErrorNames('Rds', 'BlueGreenDeploymentNotFoundFault')).toContain(
        sfnErrorName('rds', 'BlueGreenDeploymentNotFoundFault', naming),
      );
    }
  });

  it('matches EventBridge patterns by listed values, nested', () => {
    const pattern = { source: ['aws.states'], detail: { status: ['ABORTED', 'FAILED'] } };
    expect(
      matchesPattern(pattern, { source: 'aws.states', detail: { status: 'FAILED', x: 1 } }),
    ).toBe(true);
    expect(matchesPattern(pattern, { source: 'aws.states', detail: { status: 'SUCCEEDED' } })).toBe(
      false,
    );
    expect(matchesPattern(pattern, { source: 'aws.states' })).toBe(false);
  });
});
