import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DiagramDefinition,
  type DiagramEdge,
  collapseStateMachine,
  isNotification,
  readmeDiagram,
  stateMachineMermaid,
  withDiagrams,
} from '../../rehearsal/diagram';
import { synthesizeApp } from '../../rehearsal/synthesized';

/**
 * A check, a counter, a decision with a polling loop, notification plumbing, an SDK error
 * caught by name, and a catch-all: everything the README diagrams fold.
 */
const tiny: DiagramDefinition = {
  StartAt: 'Check it',
  States: {
    'Check it': {
      Type: 'Task',
      Next: 'Count checks',
      Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Note: the check failed' }],
    },
    'Count checks': { Type: 'Pass', Next: 'Is it ready?' },
    'Is it ready?': {
      Type: 'Choice',
      Choices: [
        { Variable: '$.ready', BooleanEquals: true, Next: 'Notify: ready' },
        { Variable: '$.count', NumericLessThan: 3, Next: 'Wait a bit' },
      ],
      Default: 'Note: never ready',
    },
    'Wait a bit': { Type: 'Wait', Seconds: 300, Next: 'Check it' },
    'Notify: ready': {
      Type: 'Task',
      Next: 'Emit event: ready',
      Catch: [{ ErrorEquals: ['States.ALL'], Next: 'Emit event: ready' }],
    },
    'Emit event: ready': { Type: 'Task', Next: 'Apply "it" (now): #1' },
    'Apply "it" (now): #1': {
      Type: 'Task',
      Next: 'Done',
      Catch: [
        {
          ErrorEquals: ['Rds.ThingNotFoundException', 'Rds.ThingNotFoundFault'],
          Next: 'Done',
        },
        { ErrorEquals: ['States.ALL'], Next: 'Failed' },
      ],
    },
    'Note: never ready': { Type: 'Pass', Next: 'Failed' },
    'Note: the check failed': { Type: 'Pass', Next: 'Failed' },
    Done: { Type: 'Succeed' },
    Failed: { Type: 'Fail', Error: 'NotReady' },
  },
};
const APPLY = 'Apply "it" (now): #1';

const pairs = (edges: DiagramEdge[]): string[] =>
  edges.map((e) => `${e.from} ${e.error ? '-.->' : '-->'} ${e.to}`);

describe('stateMachineMermaid with Choices folded', () => {
  const folded = collapseStateMachine(tiny, { showChoices: false });
  const text = stateMachineMermaid(tiny, { showChoices: false });

  it('shows the Tasks and the ends, not the Pass, Wait, Choice or notification states', () => {
    expect(folded.nodes.map((n) => [n.name, n.kind])).toEqual([
      ['Check it', 'step'],
      [APPLY, 'step'],
      ['Done', 'succeed'],
      ['Failed', 'fail'],
    ]);
    // The Choice survives only as an edge label.
    for (const hidden of ['Count checks', 'is_it_ready', 'Wait a bit', 'Notify: ready', 'Note:'])
      expect(text).not.toContain(hidden);
  });

  it('draws an edge through the folded Choice to each branch target, labelled with it', () => {
    expect(folded.edges).toEqual([
      { from: 'Check it', to: APPLY, error: false, label: 'Is it ready?' },
      { from: 'Check it', to: 'Check it', error: false, label: 'wait 5 min' },
      { from: 'Check it', to: 'Failed', error: false, label: 'Is it ready?' },
      { from: 'Check it', to: 'Failed', error: true, label: 'error' },
      { from: APPLY, to: 'Done', error: false, label: undefined },
      { from: APPLY, to: 'Done', error: true, label: 'ThingNotFound' },
      { from: APPLY, to: 'Failed', error: true, label: 'error' },
    ]);
  });

  it('never draws an edge to or from a folded state', () => {
    const names = new Set(folded.nodes.map((n) => n.name));
    for (const edge of folded.edges) {
      expect(names).toContain(edge.from);
      expect(names).toContain(edge.to);
    }
  });

  it('dashes and labels the edges that leave through a Catch, and only those', () => {
    expect(text).toContain('check_it -.->|"error"| failed');
    expect(text).toContain('apply_it_now_1 -.->|"ThingNotFound"| done');
    expect(text).toContain('check_it -->|"Is it ready?"| failed');
    expect(text).toContain('apply_it_now_1 --> done');
    // The Catch edges are the 4th, 6th and 7th: drawn red as well as dashed.
    expect(text).toContain('linkStyle 3,5,6 stroke:#b91c1c');
  });

  it('draws the ends as rounded nodes, Succeed and Fail in different classes', () => {
    expect(text).toContain('done(["Done"])');
    expect(text).toContain('failed(["Failed"])');
    expect(text).toContain('class done succeed');
    expect(text).toContain('class failed fail');
  });

  it('escapes quotes and hashes in labels, and keeps node ids to safe characters', () => {
    expect(text).toContain('apply_it_now_1["Apply #quot;it#quot; (now): #35;1"]');
    const node = /^ {2}[a-z0-9_]+(\["[^"]*"\]|\(\["[^"]*"\]\)|\{\{"[^"]*"\}\})$/;
    const edge = /^ {2}[a-z0-9_]+ (-->|-\.->)(\|"[^"]*"\|)? [a-z0-9_]+$/;
    const style = /^ {2}(linkStyle|classDef|class) /;
    const lines = text.trimEnd().split('\n').slice(1);
    expect(lines.filter((l) => ![node, edge, style].some((r) => r.test(l)))).toEqual([]);
    expect(lines.filter((l) => node.test(l))).toHaveLength(4);
    expect(lines.filter((l) => edge.test(l))).toHaveLength(7);
  });
});

describe('stateMachineMermaid with Choices shown', () => {
  const shown = collapseStateMachine(tiny);

  it('draws each Choice as a decision with an edge to each branch target', () => {
    expect(shown.nodes.find((n) => n.name === 'Is it ready?')?.kind).toBe('choice');
    expect(pairs(shown.edges)).toEqual([
      'Check it --> Is it ready?',
      'Check it -.-> Failed',
      'Is it ready? --> Apply "it" (now): #1',
      'Is it ready? --> Check it',
      'Is it ready? --> Failed',
      'Apply "it" (now): #1 --> Done',
      'Apply "it" (now): #1 -.-> Done',
      'Apply "it" (now): #1 -.-> Failed',
    ]);
    expect(stateMachineMermaid(tiny)).toContain('is_it_ready{{"Is it ready?"}}');
  });

  it('gives the same text for the same definition, and keeps ids when a state is added', () => {
    const text = stateMachineMermaid(tiny);
    expect(stateMachineMermaid(structuredClone(tiny))).toBe(text);
    const grown: DiagramDefinition = {
      StartAt: 'Look first',
      States: { 'Look first': { Type: 'Task', Next: 'Check it' }, ...tiny.States },
    };
    expect(stateMachineMermaid(grown)).toContain('look_first --> check_it');
    expect(stateMachineMermaid(grown)).toContain('  check_it --> is_it_ready\n');
  });

  it('starts from a marker when the first state is folded', () => {
    const start: DiagramDefinition = {
      StartAt: 'Prepare',
      States: { Prepare: { Type: 'Pass', Next: 'Check it' }, ...tiny.States },
    };
    expect(stateMachineMermaid(start)).toContain('  start(( ))\n');
    expect(stateMachineMermaid(start)).toContain('  start --> check_it\n');
  });
});

describe('the README state machine diagrams', () => {
  const { upgrade, watchdog } = synthesizeApp().machines;
  const machines = { upgrade: upgrade.definition, watchdog: watchdog.definition };
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

  it.each(['upgrade', 'watchdog'] as const)(
    'draws the synthesized %s definition (run npm run diagrams when this fails)',
    (name) => {
      expect(readmeDiagram(readme, name)).toBe(stateMachineMermaid(machines[name]));
    },
  );

  it('is exactly what npm run diagrams writes', () => {
    const generated = withDiagrams(readme, {
      upgrade: stateMachineMermaid(machines.upgrade),
      watchdog: stateMachineMermaid(machines.watchdog),
    });
    expect(generated).toBe(readme);
  });

  it.each(['upgrade', 'watchdog'] as const)(
    'shows every %s Task and Map but the notifications, and labels nodes with real state names',
    (name) => {
      const definition = machines[name];
      const states = definition.States as Record<string, { Type: string }>;
      const { nodes, edges } = collapseStateMachine(definition);
      const milestones = Object.entries(states)
        .filter(([n, s]) => (s.Type === 'Task' || s.Type === 'Map') && !isNotification(n))
        .map(([n]) => n);
      expect(milestones.length).toBeGreaterThan(5);
      const shown = new Set(nodes.map((n) => n.name));
      for (const milestone of milestones) expect(shown).toContain(milestone);
      for (const edge of edges) {
        expect(shown).toContain(edge.from);
        expect(shown).toContain(edge.to);
      }
      // Every label in the mermaid text, decoded, is a state of the definition.
      const labels = [...stateMachineMermaid(definition).matchAll(/^ {2}\w+[[({]+"(.*)"[\])}]+$/gm)]
        .map((m) => m[1] ?? '')
        .map((l) => l.replace(/#quot;/g, '"').replace(/#35;/g, '#'));
      expect(labels).toHaveLength(nodes.length);
      for (const label of labels) expect(Object.keys(states)).toContain(label);
    },
  );

  it('folds the notifications and ends every run in a Succeed or Fail node', () => {
    const { nodes } = collapseStateMachine(machines.upgrade);
    expect(nodes.some((n) => isNotification(n.name))).toBe(false);
    expect(nodes.filter((n) => n.kind === 'succeed').map((n) => n.name)).toContain(
      'Upgrade complete',
    );
    expect(nodes.filter((n) => n.kind === 'fail').length).toBeGreaterThan(0);
    // "Stopped: needs an operator" ends in Succeed but must not look like a success.
    expect(nodes.filter((n) => n.kind === 'operator').map((n) => n.name)).toEqual([
      'Stopped: needs an operator',
    ]);
  });
});
