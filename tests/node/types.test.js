// The hand-written types: they type-check a user's code under Node's and a
// bundler's module resolution, and list exactly the Report codes of the core.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ROOT } from './helpers.js';

test('the Code type lists exactly the codes of src/report.rs', () => {
  const rust = readFileSync(join(ROOT, 'src/report.rs'), 'utf8');
  const block = rust.slice(rust.indexOf('codes! {'), rust.indexOf('impl std::fmt::Display for Code'));
  const rustCodes = [...block.matchAll(/^\s*([A-Z][A-Za-z0-9]*),$/gm)].map((m) => m[1]);
  const types = readFileSync(join(ROOT, 'js/index.d.ts'), 'utf8');
  const union = types.slice(types.indexOf('export type Code ='), types.indexOf(';', types.indexOf('export type Code =')));
  const tsCodes = [...union.matchAll(/'([A-Za-z0-9]+)'/g)].map((m) => m[1]);
  assert.ok(rustCodes.length > 30);
  assert.deepEqual(tsCodes, rustCodes);
});

function typecheck(file, resolution) {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [tsc, '--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022,dom',
    '--module', resolution === 'bundler' ? 'esnext' : 'nodenext', '--moduleResolution', resolution,
    join(ROOT, 'tests/node/types', file)];
  try {
    execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  } catch (error) {
    assert.fail(`tsc on ${file}:\n${error.stdout}${error.stderr}`);
  }
}

test('types check a Node user\'s code (nodenext resolution)', () => {
  typecheck('node-usage.ts', 'nodenext');
});

test('types check a browser user\'s code (bundler resolution)', () => {
  typecheck('browser-usage.ts', 'bundler');
});
