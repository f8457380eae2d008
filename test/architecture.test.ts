import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Stack } from 'aws-cdk-lib';
import { synthApp, templateOf } from './helpers/app';

/**
 * The README's architecture diagram, checked against the synthesized demo app: each
 * `subgraph` is a stack, and each box names resources that stack really has. A stack added,
 * renamed or moved without the picture fails here.
 */
const README = readFileSync(join(__dirname, '..', 'README.md'), 'utf8');

/** Box labels inside each subgraph of the mermaid block that follows `<!-- architecture -->`. */
function subgraphs(): Map<string, string[]> {
  const after = README.split('<!-- architecture -->')[1] ?? '';
  const block = /```mermaid\n([\s\S]*?)```/.exec(after)?.[1] ?? '';
  const found = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of block.split('\n').map((l) => l.trim())) {
    const open = /^subgraph (\S+)$/.exec(line);
    if (open?.[1] !== undefined) {
      current = [];
      found.set(open[1], current);
    } else if (line === 'end') {
      current = undefined;
    } else if (current !== undefined) {
      const label = /^\w+[[(]+([^\])]+)[\])]+/.exec(line)?.[1];
      if (label !== undefined) current.push(label);
    }
  }
  return found;
}

// Each box, by a word in its label, and the resource type that box stands for.
const BOXES: Record<string, [string, string][]> = {
  QuietUpgradeEdge: [
    ['WAF web ACL', 'AWS::WAFv2::WebACL'],
    ['ALB', 'AWS::ElasticLoadBalancingV2::LoadBalancer'],
    ['Capture function', 'AWS::ElasticLoadBalancingV2::TargetGroup'],
    ['Maintenance toggle', 'AWS::Lambda::Function'],
    ['Demo app', 'AWS::Lambda::Function'],
  ],
  QuietUpgradeBuffers: [
    ['SQS queues', 'AWS::SQS::Queue'],
    ['Consumer functions', 'AWS::Lambda::EventSourceMapping'],
    ['Consumer database roles', 'Custom::ConsumerRoles'],
  ],
  QuietUpgradeDatabase: [
    ['RDS PostgreSQL', 'AWS::RDS::DBInstance'],
    ['Parameter groups', 'AWS::RDS::DBParameterGroup'],
    ['Generated secret', 'AWS::SecretsManager::Secret'],
  ],
  QuietUpgradeOrchestration: [
    ['Step Functions', 'AWS::StepFunctions::StateMachine'],
    ['Scheduler schedule', 'AWS::Scheduler::Schedule'],
    ['EventBridge rule', 'AWS::Events::Rule'],
    ['SNS topic', 'AWS::SNS::Topic'],
    ['CloudWatch dashboard', 'AWS::CloudWatch::Dashboard'],
    ['alarms', 'AWS::CloudWatch::Alarm'],
  ],
};

describe('README architecture diagram', () => {
  const app = synthApp();
  const stacks = new Map((app.app.node.children as Stack[]).map((s) => [s.stackName, s]));
  const drawn = subgraphs();

  it('draws each stack of the demo app as one box, and no other', () => {
    expect([...drawn.keys()].sort()).toEqual([...stacks.keys()].sort());
  });

  it.each(Object.keys(BOXES))('names only what %s really builds', (stackName) => {
    const stack = stacks.get(stackName);
    if (stack === undefined) throw new Error(`no stack ${stackName}`);
    const template = templateOf(stack);
    const labels = drawn.get(stackName) ?? [];
    for (const [word, type] of BOXES[stackName] ?? []) {
      expect(labels.join(' | ')).toContain(word);
      expect(Object.keys(template.findResources(type)).length).toBeGreaterThan(0);
    }
    // Every box is accounted for; only green, which RDS builds during an upgrade, is not
    // in any template.
    const words = (BOXES[stackName] ?? []).map(([word]) => word);
    const unchecked = labels.filter((l) => !words.some((w) => l.includes(w)));
    expect(unchecked).toEqual(
      stackName === 'QuietUpgradeDatabase' ? ['green, during an upgrade'] : [],
    );
  });
});
