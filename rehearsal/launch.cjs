/**
 * npm run rehearse: runs rehearsal/cli.ts from one bundle of our code, built with esbuild and
 * kept in the rehearsal's cache (cache.ts) for as long as no file it was built from changes.
 * Loading one bundle takes about half a second less than compiling each file on the way in
 * (tsx), most of a default run's startup. The packages stay in node_modules (external).
 *
 * The bundle is checked before each use against a hash of every file of ours it was built
 * from (esbuild's metafile lists them), of tsconfig.json, and of the Node.js and esbuild
 * versions; a new import shows up as a change to the file that imports it. Each file's
 * `__dirname` is replaced by its own folder, as Node.js would give it. For stack traces in
 * the .ts files, run with NODE_OPTIONS=--enable-source-maps.
 */
'use strict';
const { createHash } = require('node:crypto');
const { mkdirSync, readFileSync, renameSync, writeFileSync } = require('node:fs');
const { dirname, join, resolve } = require('node:path');

const ROOT = join(__dirname, '..');
const CACHE_DIR =
  process.env.QUIET_UPGRADE_CACHE_DIR ?? join(ROOT, 'node_modules', '.cache', 'quiet-upgrade');
const BUNDLE = join(CACHE_DIR, 'rehearse-cli.cjs');
const MANIFEST = `${BUNDLE}.json`;

const hashOf = (path) => {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return 'absent';
  }
};

function versions() {
  const esbuild = JSON.parse(readFileSync(require.resolve('esbuild/package.json'), 'utf8'));
  return `node ${process.version}, esbuild ${esbuild.version}`;
}

/** Whether the bundle a manifest describes was built from the files as they are now. */
function current(manifestPath = MANIFEST) {
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    if (manifest.versions !== versions()) return false;
    return Object.entries(manifest.inputs).every(([path, hash]) => hashOf(path) === hash);
  } catch {
    return false;
  }
}

// `__dirname` as an identifier (not in a string, not a property name).
const DIRNAME = /(?<![\w$'"`.])__dirname(?![\w$'"`])/g;

async function build() {
  const esbuild = require('esbuild');
  const loaded = new Map();
  const ownDirname = {
    name: 'own-dirname',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        const text = readFileSync(args.path);
        // The hash of what was built, not of the file later (it may change meanwhile).
        loaded.set(args.path, createHash('sha256').update(text).digest('hex'));
        const contents = text.toString('utf8').replace(DIRNAME, JSON.stringify(dirname(args.path)));
        return { contents, loader: 'ts' };
      });
    },
  };
  const result = await esbuild.build({
    entryPoints: [join(__dirname, 'cli.ts')],
    bundle: true,
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    format: 'cjs',
    packages: 'external',
    sourcemap: true,
    outfile: BUNDLE,
    write: false,
    metafile: true,
    logLevel: 'error',
    plugins: [ownDirname],
  });
  // The esbuild service is a child process the event loop would keep polling through the run.
  await esbuild.stop();
  mkdirSync(CACHE_DIR, { recursive: true });
  const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(p));
  const manifest = {
    versions: versions(),
    inputs: Object.fromEntries(
      [...inputs, join(ROOT, 'tsconfig.json')].map((p) => [p, loaded.get(p) ?? hashOf(p)]),
    ),
  };
  // Written under temporary names and renamed: a run beside this one sees whole files.
  const tmp = `.${process.pid}.tmp`;
  for (const file of result.outputFiles) {
    writeFileSync(file.path + tmp, file.contents);
    renameSync(file.path + tmp, file.path);
  }
  writeFileSync(MANIFEST + tmp, JSON.stringify(manifest));
  renameSync(MANIFEST + tmp, MANIFEST);
}

if (require.main === module) {
  (async () => {
    if (!current()) await build();
    return require(BUNDLE).main(process.argv.slice(2));
  })().then(
    // stdout into a pipe is written asynchronously: exiting at once cut `--sweep --json | jq`
    // at 64 KiB. The empty write's callback runs once everything before it is out.
    (code) => process.stdout.write('', () => process.exit(code)),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}

module.exports = { current, versions, hashOf, BUNDLE, MANIFEST };
