/**
 * Jest's TypeScript transform: esbuild strips the types, file by file, as
 * `isolatedModules` allows, and type-checking is `npm run typecheck`'s job. It reads the
 * compiler options that change the emitted code from tsconfig.json, and compiles `import()`
 * to `require()` as tsc does for `"module": "commonjs"`, so each test file has one module
 * registry.
 */
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { transformSync, version } = require('esbuild');

const tsconfigRaw = readFileSync(join(__dirname, '..', 'tsconfig.json'), 'utf8');
const options = {
  loader: 'ts',
  format: 'cjs',
  target: `node${process.versions.node.split('.')[0]}`,
  sourcemap: 'inline',
  supported: { 'dynamic-import': false },
  tsconfigRaw,
};
const self = createHash('sha256')
  .update(readFileSync(__filename))
  .update(version)
  .update(JSON.stringify(options))
  .digest('hex');

module.exports = {
  process(source, filename) {
    return { code: transformSync(source, { ...options, sourcefile: filename }).code };
  },
  getCacheKey(source, filename) {
    return createHash('sha256').update(self).update(filename).update(source).digest('hex');
  },
};
