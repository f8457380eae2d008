/**
 * Renders the pages people see during maintenance in headless Chromium, at a phone width
 * and a desktop width, into docs/. Needs Debian's chromium (apt-get install chromium); not
 * part of `npm test`.
 *
 *   npm run screenshot
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { donePage, errorPage } from '../lambda/capture/pages';
import { maintenancePage } from '../lambda/shared/maintenance-page';
import { timelineHtml } from '../rehearsal/html';
import '../rehearsal/polyfills';
import { rehearse } from '../rehearsal/rehearse';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const WIDTHS = [375, 1280];
const out = resolve(__dirname, '..', 'docs');
const work = mkdtempSync(join(tmpdir(), 'screenshot-'));

async function main(): Promise<void> {
  const pages: Record<string, string> = {
    'maintenance-page': maintenancePage(new Date('2026-11-22T04:07:00Z')),
    'unsubscribed-page': donePage('unsubscribe'),
    'capture-unavailable-page': errorPage(503),
  };
  for (const [name, html] of Object.entries(pages)) shoot(name, html, WIDTHS);
  // The rehearsal's timeline page (npm run rehearse -- --html FILE), default run.
  shoot('rehearsal-timeline', timelineHtml(await rehearse()), [1000]);
}

function shoot(name: string, html: string, widths: number[]): void {
  const file = join(work, `${name}.html`);
  writeFileSync(file, html);
  for (const width of widths) {
    const png = join(out, `${name}-${width}.png`);
    // Flags as the machine notes advise: no sandbox as root, no GPU, and no background
    // network, which this machine's closed network would refuse.
    const run = spawnSync(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--hide-scrollbars',
        `--user-data-dir=${join(work, 'profile')}`,
        `--window-size=${width},${width < 600 ? 740 : 720}`,
        `--screenshot=${png}`,
        `file://${file}`,
      ],
      { encoding: 'utf8' },
    );
    if (run.status !== 0) {
      console.error(run.stderr);
      throw new Error(`chromium failed for ${name} at ${width}px (is chromium installed?)`);
    }
    console.log(`wrote ${png}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
