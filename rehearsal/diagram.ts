/**
 * Mermaid flowcharts of the synthesized state machines, for the README. A 118-state machine
 * drawn state by state is unreadable, so the chart shows the milestones (the Tasks and Maps
 * that do something, the decisions, and every end) and folds everything between them into
 * the edges: counters, notes, notifications and waits.
 *
 *   npm run diagrams              rewrites the README blocks
 *   npm run diagrams -- --check   fails when they are stale
 */

/** The parts of a state that the diagram reads. */
interface StateShape {
  Type: string;
  Next?: string;
  Default?: string;
  Choices?: { Next: string }[];
  Catch?: { ErrorEquals?: string[]; Next: string }[];
  Seconds?: number;
}

/** Any Amazon States Language definition; states inside Map item processors are not drawn. */
export interface DiagramDefinition {
  StartAt: string;
  States: Record<string, object>;
}

export interface DiagramOptions {
  /**
   * Draw Choice states as decision nodes. When false they are folded too, and an edge
   * through one is labelled with its name.
   * @default true
   */
  showChoices?: boolean;
  /**
   * Tasks and Maps that are plumbing rather than milestones, folded into the edges.
   * @default names starting `Notify:` or `Emit event:`
   */
  isPlumbing?: (name: string) => boolean;
}

/** `operator`: a Succeed state named "Stopped: …", which ends the run for a person to act. */
export type NodeKind = 'step' | 'choice' | 'succeed' | 'operator' | 'fail' | 'start';

export interface DiagramNode {
  /** Mermaid node id: the slugified state name, stable when other states change. */
  id: string;
  /** The state name; '' for the start marker, drawn only when the first state is folded. */
  name: string;
  kind: NodeKind;
}

export interface DiagramEdge {
  /** State names ('' is the start marker). */
  from: string;
  to: string;
  /** The edge leaves `from` through a Catch. */
  error: boolean;
  /**
   * For a Catch, the errors caught ("error" for States.ALL). Otherwise the last Choice or
   * Wait on the folded path, if any: the Choice's name, or how long the Wait waits. Paths
   * with different labels between the same two nodes share one edge, labels joined by " / ".
   */
  label?: string;
}

export interface CollapsedMachine {
  nodes: DiagramNode[];
  edges: DiagramEdge[];
}

const MILESTONE_TYPES = new Set(['Task', 'Map', 'Parallel']);
const TERMINAL_TYPES: Record<string, NodeKind> = { Succeed: 'succeed', Fail: 'fail' };

/** The SNS and EventBridge steps around each phase: a failed notification never stops a run. */
export function isNotification(name: string): boolean {
  return name.startsWith('Notify:') || name.startsWith('Emit event:');
}

function transitions(state: StateShape): { target: string; errors?: string[] }[] {
  return [
    ...(state.Next === undefined ? [] : [{ target: state.Next }]),
    ...(state.Choices ?? []).map((c) => ({ target: c.Next })),
    ...(state.Default === undefined ? [] : [{ target: state.Default }]),
    ...(state.Catch ?? []).map((c) => ({ target: c.Next, errors: c.ErrorEquals ?? [] })),
  ];
}

/**
 * "States.ALL" reads as "error"; SDK error names lose the service prefix and the
 * Exception/Fault suffixes, so the names an RDS error may take read as one.
 */
function errorLabel(errors: string[]): string {
  const names = errors.map((e) =>
    e === 'States.ALL'
      ? 'error'
      : e.replace(/^[A-Za-z0-9]+\./, '').replace(/(Fault)?(Exception|Fault|Error)$/, ''),
  );
  return [...new Set(names)].join(', ');
}

/** A Wait as its duration ("wait 5 min"): shorter than its name, which crowds a loop. */
function waitLabel(name: string, state: StateShape): string {
  const seconds = state.Seconds;
  if (seconds === undefined) return name;
  return seconds >= 120 && seconds % 60 === 0 ? `wait ${seconds / 60} min` : `wait ${seconds} s`;
}

/** Words mermaid reads as keywords where a node id stands. */
const RESERVED_IDS = new Set(['end', 'graph', 'subgraph', 'flowchart', 'style', 'class']);

function slug(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return s === '' || /^[0-9]/.test(s) || RESERVED_IDS.has(s) ? `s_${s}` : s;
}

/** Milestone nodes, and an edge A -> B wherever B is reachable from A through folded states. */
export function collapseStateMachine(
  definition: DiagramDefinition,
  options: DiagramOptions = {},
): CollapsedMachine {
  const plumbing = options.isPlumbing ?? isNotification;
  const showChoices = options.showChoices ?? true;
  const states = new Map(Object.entries(definition.States) as [string, StateShape][]);
  const kindOf = (name: string): NodeKind | undefined => {
    const state = states.get(name);
    if (state === undefined) return undefined;
    if (MILESTONE_TYPES.has(state.Type)) return plumbing(name) ? undefined : 'step';
    if (state.Type === 'Choice') return showChoices ? 'choice' : undefined;
    if (state.Type === 'Succeed' && name.startsWith('Stopped:')) return 'operator';
    return TERMINAL_TYPES[state.Type];
  };

  const nodes: DiagramNode[] = [];
  const ids = new Set<string>();
  const uniqueId = (base: string): string => {
    let id = base;
    for (let n = 2; ids.has(id); n++) id = `${base}_${n}`;
    ids.add(id);
    return id;
  };
  const sources: { name: string; state: StateShape }[] = [];
  if (kindOf(definition.StartAt) === undefined) {
    nodes.push({ id: uniqueId('start'), name: '', kind: 'start' });
    sources.push({ name: '', state: { Type: 'Pass', Next: definition.StartAt } });
  }
  for (const [name, state] of states) {
    const kind = kindOf(name);
    if (kind === undefined) continue;
    nodes.push({ id: uniqueId(slug(name)), name, kind });
    sources.push({ name, state });
  }

  const edges = new Map<string, DiagramEdge>();
  const add = (from: string, to: string, error: boolean, label: string | undefined): void => {
    const key = JSON.stringify([from, to, error]);
    const edge = edges.get(key);
    if (edge === undefined) edges.set(key, { from, to, error, label });
    else if (label !== undefined && !(edge.label ?? '').split(' / ').includes(label))
      edge.label = edge.label === undefined ? label : `${edge.label} / ${label}`;
  };
  for (const { name: from, state } of sources) {
    for (const { target, errors } of transitions(state)) {
      // Depth-first through folded states, remembering the last Choice or Wait passed.
      const visited = new Set<string>();
      const stack: { at: string; via?: string }[] = [{ at: target }];
      for (let step = stack.pop(); step !== undefined; step = stack.pop()) {
        const { at, via } = step;
        const key = `${at}\u0000${via ?? ''}`;
        if (visited.has(key)) continue;
        visited.add(key);
        if (kindOf(at) !== undefined) {
          add(from, at, errors !== undefined, errors === undefined ? via : errorLabel(errors));
          continue;
        }
        const folded = states.get(at);
        if (folded === undefined) continue;
        const passed =
          folded.Type === 'Choice' ? at : folded.Type === 'Wait' ? waitLabel(at, folded) : via;
        // Reversed: the stack then visits the transitions in definition order.
        for (const next of transitions(folded).reverse())
          stack.push({ at: next.target, via: passed });
      }
    }
  }
  return { nodes, edges: [...edges.values()] };
}

/** A quoted mermaid label, with entity codes for what mermaid or HTML would read. */
function quote(text: string): string {
  const escaped = text
    .replace(/#/g, '#35;')
    .replace(/"/g, '#quot;')
    .replace(/</g, '#lt;')
    .replace(/>/g, '#gt;')
    .replace(/`/g, '#96;')
    .replace(/\s+/g, ' ');
  return `"${escaped}"`;
}

const SHAPES: Record<NodeKind, (label: string) => string> = {
  step: (l) => `[${l}]`,
  // A hexagon: a diamond grows in both directions with a long question.
  choice: (l) => `{{${l}}}`,
  succeed: (l) => `([${l}])`,
  operator: (l) => `([${l}])`,
  fail: (l) => `([${l}])`,
  start: () => '(( ))',
};

/** The collapsed machine as a mermaid `flowchart TD`; the same definition gives the same text. */
export function stateMachineMermaid(
  definition: DiagramDefinition,
  options: DiagramOptions = {},
): string {
  const { nodes, edges } = collapseStateMachine(definition, options);
  const idOf = new Map(nodes.map((n) => [n.name, n.id]));
  const id = (name: string): string => idOf.get(name) ?? slug(name);
  const lines = ['flowchart TD'];
  for (const node of nodes) lines.push(`  ${node.id}${SHAPES[node.kind](quote(node.name))}`);
  for (const edge of edges) {
    const arrow = edge.error ? '-.->' : '-->';
    const label = edge.label === undefined ? '' : `|${quote(edge.label)}|`;
    lines.push(`  ${id(edge.from)} ${arrow}${label} ${id(edge.to)}`);
  }
  const errors = edges.flatMap((e, i) => (e.error ? [i] : []));
  if (errors.length > 0) lines.push(`  linkStyle ${errors.join(',')} stroke:#b91c1c`);
  lines.push(
    '  classDef succeed fill:#dcfce7,stroke:#15803d,color:#14532d',
    '  classDef operator fill:#fef3c7,stroke:#b45309,color:#78350f',
    '  classDef fail fill:#fee2e2,stroke:#b91c1c,color:#7f1d1d',
  );
  for (const kind of ['succeed', 'operator', 'fail'] as const) {
    const members = nodes.filter((n) => n.kind === kind).map((n) => n.id);
    if (members.length > 0) lines.push(`  class ${members.join(',')} ${kind}`);
  }
  return `${lines.join('\n')}\n`;
}

export type DiagramName = 'upgrade' | 'watchdog';

const markers = (name: DiagramName): [string, string] => [
  `<!-- diagram:${name}:begin -->`,
  `<!-- diagram:${name}:end -->`,
];

/** Where a diagram's markers are in the README; throws when they are missing or out of order. */
function locate(readme: string, name: DiagramName): { start: number; end: number } {
  const [begin, end] = markers(name);
  const from = readme.indexOf(begin);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README has no ${begin} ... ${end} block`);
  return { start: from + begin.length, end: to };
}

/** The mermaid text between a diagram's README markers. */
export function readmeDiagram(readme: string, name: DiagramName): string {
  const { start, end } = locate(readme, name);
  const block = /```mermaid\n([\s\S]*?)```/.exec(readme.slice(start, end));
  if (block === null) throw new Error(`the README ${name} block has no mermaid fence`);
  return block[1] ?? '';
}

/** The README with each named block replaced by a mermaid fence holding its diagram. */
export function withDiagrams(
  readme: string,
  diagrams: Partial<Record<DiagramName, string>>,
): string {
  let text = readme;
  for (const [name, mermaid] of Object.entries(diagrams) as [DiagramName, string][]) {
    const { start, end } = locate(text, name);
    text = `${text.slice(0, start)}\n\n\`\`\`mermaid\n${mermaid}\`\`\`\n\n${text.slice(end)}`;
  }
  return text;
}
