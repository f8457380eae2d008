import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultRawConfig } from '../helpers/app';

describe('bin/app.ts', () => {
  it('fails synth on invalid config with a plain message and writes no template', () => {
    const config = defaultRawConfig();
    (config.database as Record<string, unknown>).engine = 'oracle-ee';
    const outdir = mkdtempSync(join(tmpdir(), 'synth-'));
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'bin/app.ts'], {
      cwd: join(__dirname, '..', '..'),
      env: {
        ...process.env,
        CDK_OUTDIR: outdir,
        CDK_CONTEXT_JSON: JSON.stringify({ quietUpgrade: config }),
      },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(
      'quietUpgrade.database.engine must be one of: postgres, mysql, aurora-postgresql, aurora-mysql, got: "oracle-ee"',
    );
    expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace for an operator's typo
    expect(readdirSync(outdir).filter((f) => f.endsWith('.template.json'))).toEqual([]);
  });
});
