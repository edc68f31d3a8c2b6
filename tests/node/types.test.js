// The hand-written types: they type-check a user's code under Node's and a
// bundler's module resolution, and list exactly the Report codes of the core.
// The README's examples type-check as they are written.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
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

/** Type-checks `files` (in tests/node/types, or absolute paths) with strict settings. */
function typecheck(files, resolution) {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [tsc, '--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022,dom',
    '--module', resolution === 'bundler' ? 'esnext' : 'nodenext', '--moduleResolution', resolution,
    ...[files].flat().map((file) => resolve(ROOT, 'tests/node/types', file))];
  try {
    execFileSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
  } catch (error) {
    assert.fail(`tsc on ${files}:\n${error.stdout}${error.stderr}`);
  }
}

test('types check a Node user\'s code (nodenext resolution)', () => {
  typecheck('node-usage.ts', 'nodenext');
});

test('types check a browser user\'s code (bundler resolution)', () => {
  typecheck('browser-usage.ts', 'bundler');
});

test('the examples of js/README.md type-check as written (strict)', () => {
  const readme = readFileSync(join(ROOT, 'js/README.md'), 'utf8');
  const examples = [...readme.matchAll(/^```js\n([\s\S]*?)^```/gm)].map((m) => m[1]);
  assert.ok(examples.length >= 4, `${examples.length} examples`);
  // What the examples take as given: the user's file, handlers and server.
  const given = `import type { Progress, Report } from 'snappack';
declare const file: File;
declare const bytes: Uint8Array;
declare const controller: AbortController;
declare const signal: AbortSignal;
declare const url: string;
declare const token: string;
declare const fingerprint: string;
declare const onProgress: (progress: Progress) => void;
declare function render(...values: unknown[]): void;
declare function showErrors(report: Report | undefined): void;
`;
  // Under ROOT, so that 'snappack' resolves to the built package as for a user.
  const dir = join(ROOT, 'target', 'readme-examples');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const files = { nodenext: [], bundler: [] };
  examples.forEach((example, i) => {
    const file = join(dir, `example-${i + 1}.ts`);
    writeFileSync(file, `${given}${example}`);
    // The Node example under Node's resolution, the others under a bundler's.
    files[example.includes('validateFile') ? 'nodenext' : 'bundler'].push(file);
  });
  typecheck(files.nodenext, 'nodenext');
  typecheck(files.bundler, 'bundler');
});
