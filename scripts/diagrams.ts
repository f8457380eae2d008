/**
 * Draws the README's state machine diagrams from the synthesized definitions, so they cannot
 * drift from the machines: the blocks between `<!-- diagram:NAME:begin -->` and
 * `<!-- diagram:NAME:end -->` are rewritten. test/rehearsal/diagram.test.ts fails when they
 * are stale.
 *
 *   npm run diagrams              rewrite README.md
 *   npm run diagrams -- --check   exit 1 if README.md is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { stateMachineMermaid, withDiagrams } from '../rehearsal/diagram';
import { synthesizeApp } from '../rehearsal/synthesized';

const README = resolve(__dirname, '..', 'README.md');

function main(): number {
  const check = process.argv.slice(2).includes('--check');
  const { machines } = synthesizeApp();
  const readme = readFileSync(README, 'utf8');
  const updated = withDiagrams(readme, {
    upgrade: stateMachineMermaid(machines.upgrade.definition),
    watchdog: stateMachineMermaid(machines.watchdog.definition),
  });
  if (updated === readme) {
    console.log('README diagrams are up to date');
    return 0;
  }
  if (check) {
    console.error('README diagrams are stale: run npm run diagrams');
    return 1;
  }
  writeFileSync(README, updated);
  console.log(`wrote the upgrade and watchdog diagrams to ${README}`);
  return 0;
}

process.exitCode = main();
