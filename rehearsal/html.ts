import type { RehearsalReport } from './rehearse';

/** Phases of the run, as the timeline shows them: the first state that starts each. */
const PHASES: [string, RegExp][] = [
  ['Preflight', /^(Validate input|Run preflight checks)$/],
  ['Build green', /^(Create blue-green deployment|Check green status|Find the deployment)/],
  ['Verify green', /^(Verify green|Wait for operator approval)$/],
  ['Pause consumers', /^Pause: /],
  ['Switch over', /^(Turn maintenance on|Switch over to green|Check switchover status)$/],
  ['Verify writer', /^(Verify new writer|Restore old blue as the writer)$/],
  ['Resume and drain', /^(Turn maintenance off|Resume: |Measure queue backlog)/],
  ['Clean up', /^(Delete the blue-green deployment|Check the deployment is gone|Roll back)/],
];

function phaseOf(state: string): string | undefined {
  return PHASES.find(([, pattern]) => pattern.test(state))?.[0];
}

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A self-contained page: phases as bars, the maintenance window highlighted, queue depth. */
export function timelineHtml(report: RehearsalReport): string {
  const tasks = report.timeline.filter((e) => e.event === 'task');
  const end = Math.max(1, ...report.timeline.map((e) => e.t), ...report.depth.map((d) => d.t));
  const spans = new Map<string, { from: number; to: number }>();
  for (const e of tasks) {
    const phase = phaseOf(e.state);
    if (phase === undefined) continue;
    const span = spans.get(phase) ?? { from: e.t, to: e.t };
    span.to = Math.max(span.to, e.t);
    spans.set(phase, span);
  }
  const width = 960;
  const left = 150;
  const x = (t: number) => left + ((width - left - 20) * t) / end;
  const on = report.timeline.filter((e) => e.event === 'maintenance on').map((e) => e.t);
  const off = report.timeline.filter((e) => e.event === 'maintenance off').map((e) => e.t);
  const windows = on.map((t, i) => ({ from: t, to: off[i] ?? end }));
  const rows = [...spans.entries()];
  const barHeight = 22;
  const chartTop = 30;
  const depthTop = chartTop + rows.length * (barHeight + 8) + 30;
  const depthHeight = 120;
  const maxDepth = Math.max(1, ...report.depth.map((d) => d.waiting));
  const depthPath = report.depth
    .map(
      (d, i) =>
        `${i === 0 ? 'M' : 'L'}${x(d.t).toFixed(1)},${(depthTop + depthHeight - (depthHeight * d.waiting) / maxDepth).toFixed(1)}`,
    )
    .join(' ');
  const height = depthTop + depthHeight + 40;
  const bars = rows
    .map(([phase, span], i) => {
      const y = chartTop + i * (barHeight + 8);
      const w = Math.max(3, x(span.to) - x(span.from));
      return (
        `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${escape(phase)}</text>` +
        `<rect x="${x(span.from).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" rx="3" fill="#3b82f6"/>`
      );
    })
    .join('');
  const shades = windows
    .map(
      (w) =>
        `<rect x="${x(w.from).toFixed(1)}" y="10" width="${Math.max(2, x(w.to) - x(w.from)).toFixed(1)}" height="${height - 30}" fill="#f59e0b" opacity="0.35"/>`,
    )
    .join('');
  const minutes = (t: number) =>
    `${Math.floor(t / 60)}m${String(Math.round(t % 60)).padStart(2, '0')}s`;
  const ticks = Array.from({ length: 6 }, (_, i) => (end * i) / 5)
    .map(
      (t) =>
        `<text x="${x(t).toFixed(1)}" y="${height - 12}" text-anchor="middle">${minutes(t)}</text>`,
    )
    .join('');
  const m = report.messages;
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>Upgrade rehearsal: ${escape(report.outcome)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#1f2933}h1{font-size:20px}svg text{font-size:12px;fill:#1f2933}table{border-collapse:collapse}td{padding:2px 12px 2px 0}</style>
<h1>Upgrade rehearsal (${escape(report.scenario)}): ${escape(report.outcome)}</h1>
<table><tr><td>Maintenance page</td><td><b>${report.maintenance.seconds} s</b> (highlighted)</td><td>Switchover</td><td>${report.switchoverSeconds} s</td></tr>
<tr><td>Consumers paused</td><td>${report.consumers.pausedSeconds} s</td><td>Drain</td><td>${report.drainSeconds} s</td></tr>
<tr><td>Messages</td><td>${m.produced} produced, ${m.processed} processed</td><td>Lost</td><td>${m.lost} (DLQ ${m.inDlq}, applied twice ${m.appliedTwice})</td></tr>
<tr><td>Writer</td><td>${escape(report.writer.identifier)} ${escape(report.writer.engineVersion)}</td><td>Capture endpoints down</td><td>${report.captureUnavailableSeconds} s</td></tr></table>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="Phases and queue depth over virtual time">
${shades}${bars}
<text x="${left - 8}" y="${depthTop + 14}" text-anchor="end">Queue depth</text>
<text x="${left - 8}" y="${depthTop + 30}" text-anchor="end">max ${maxDepth}</text>
<path d="${depthPath}" fill="none" stroke="#10b981" stroke-width="2"/>
<line x1="${left}" y1="${depthTop + depthHeight}" x2="${width - 20}" y2="${depthTop + depthHeight}" stroke="#9aa5b1"/>
${ticks}</svg></html>
`;
}
