// The package as users get it: `npm pack` of pkg/, installed from the
// tarball into a project of its own (offline: it has no dependencies), and
// imported there by its name. What ships is exactly what runs, everything a
// shipped module refers to ships with it, and package.json says true things.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { test } from 'node:test';

import { parse } from 'smol-toml';

import { ROOT, scratch } from './helpers.js';

const PKG = join(ROOT, 'pkg');
const dir = scratch();

function npm(args, cwd) {
  return execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });
}

/** The tarball `npm pack` makes of pkg/, and npm's list of its files. */
function packTarball() {
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], PKG));
  return { tarball: join(dir, packed.filename), files: packed.files.map((f) => f.path).sort(), size: packed.size };
}

const packed = packTarball();

/** The values (functions, classes) the types `file` of pkg/ declare, by name, sorted. */
function declaredValues(file) {
  const types = readFileSync(join(PKG, file), 'utf8');
  const names = [
    ...[...types.matchAll(/^export declare (?:function|class) (\w+)/gm)].map((m) => m[1]),
    ...[...types.matchAll(/^export \{([^}]*)\} from/gm)].flatMap((m) => m[1].split(',').map((name) => name.trim())),
  ];
  return [...new Set(names)].filter(Boolean).sort();
}
const manifest = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8'));

test('the tarball holds the entry points, workers, types, README, license texts and WebAssembly build, and nothing else', () => {
  const sources = JSON.parse(readFileSync(join(ROOT, 'js', 'package.json'), 'utf8'));
  assert.deepEqual(manifest.files, sources.files);
  const js = readdirSync(join(ROOT, 'js')).filter((f) => /\.(js|d\.ts)$/.test(f));
  // The WebAssembly build: its module and glue, without the types wasm-bindgen would make, which nothing uses.
  const web = ['web/snappack.js', 'web/snappack_bg.wasm'];
  const licenses = ['LICENSE-APACHE', 'LICENSE-MIT'];
  assert.deepEqual(packed.files, [...js, ...licenses, 'README.md', 'package.json', ...web].sort());
  for (const license of licenses) assert.equal(readFileSync(join(PKG, license), 'utf8'), readFileSync(join(ROOT, license), 'utf8'));
  // The optimized build: an unoptimized or debug one is several times larger.
  assert.ok(packed.size < 1024 * 1024, `the tarball is ${packed.size} bytes`);
});

test("package.json: the crate's version and license, Node 20, and exports that point at shipped files", () => {
  const crate = parse(readFileSync(join(ROOT, 'Cargo.toml'), 'utf8')).package;
  assert.equal(manifest.name, 'snappack');
  assert.equal(manifest.version, crate.version);
  assert.equal(manifest.license, crate.license);
  assert.equal(manifest.type, 'module');
  assert.equal(manifest.engines.node, '>=20');
  const targets = [];
  const walk = (value) => (typeof value === 'string' ? targets.push(value) : Object.values(value).forEach(walk));
  walk(manifest.exports);
  targets.push(manifest.types, ...manifest.sideEffects);
  for (const target of targets) assert.ok(packed.files.includes(posix.normalize(target)), `${target} ships`);
  // Nothing that npm would correct on publish, with a warning.
  const copy = join(dir, 'manifest');
  execFileSync('mkdir', ['-p', copy]);
  writeFileSync(join(copy, 'package.json'), JSON.stringify(manifest));
  npm(['pkg', 'fix'], copy);
  assert.deepEqual(JSON.parse(readFileSync(join(copy, 'package.json'), 'utf8')), manifest);
  // Each condition gives types before code, as TypeScript needs.
  for (const condition of ['browser', 'node', 'default']) {
    assert.deepEqual(Object.keys(manifest.exports['.'][condition]), ['types', 'default']);
  }
});

test('every module and file a shipped module refers to ships with it', () => {
  for (const file of packed.files.filter((f) => f.endsWith('.js') || f.endsWith('.d.ts'))) {
    const source = readFileSync(join(PKG, file), 'utf8');
    const relative = [
      ...source.matchAll(/\b(?:from|import)\s*['"](\.{1,2}\/[^'"]+)['"]/g),
      ...source.matchAll(/new URL\(\s*['"]([^'"]+)['"],\s*import\.meta\.url\)/g),
    ].map((m) => m[1]);
    for (const specifier of relative) {
      let target = posix.normalize(posix.join(posix.dirname(file), specifier));
      // Types import a module's types by the module's name.
      if (file.endsWith('.d.ts')) target = target.replace(/\.js$/, '.d.ts');
      assert.ok(packed.files.includes(target), `${file} refers to ${specifier}, which does not ship`);
    }
  }
});

test('installed from the tarball into a project of its own, it validates by its name (ESM, and require where Node has it), and bundled once the files the error names are copied', () => {
  const app = join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  npm(['install', '--offline', '--ignore-scripts', packed.tarball], app);
  writeFileSync(join(app, 'rows.jsonl'), '{"a":1}\n{"a":2}\n');
  writeFileSync(join(app, 'main.js'), `
    import { validate, validateFile, checkTarget, SnappackError } from 'snappack';
    import * as all from 'snappack';
    import * as browser from './node_modules/snappack/browser.js';
    import info from 'snappack/package.json' with { type: 'json' };
    const fromFile = await validateFile('rows.jsonl', { table: 'rows' });
    const fromBytes = await validate(new TextEncoder().encode('{"a":1}\\nnot json\\n'), { fileName: 'rows.jsonl', table: 'rows' });
    const checked = await checkTarget(fromFile, { target: { tables: [] } });
    const misuse = await validate('a path').catch((e) => e instanceof SnappackError && e.code);
    console.log(JSON.stringify({
      version: info.version,
      exports: Object.keys(all).sort(),
      browserExports: Object.keys(browser).sort(),
      file: [fromFile.valid, fromFile.documents],
      bytes: fromBytes.errors.map((e) => e.code + ':' + e.line),
      checked: checked.errors.length,
      misuse,
    }));
  `);
  const answer = JSON.parse(execFileSync(process.execPath, ['main.js'], { cwd: app, encoding: 'utf8' }));
  assert.deepEqual(answer, {
    version: manifest.version,
    // What each entry's types declare, and nothing else (no test hooks, no internals).
    exports: declaredValues('node.d.ts'),
    browserExports: declaredValues('index.d.ts'),
    file: [true, 2],
    bytes: ['JsonInvalidRow:2'],
    checked: 0,
    misuse: 'InvalidInput',
  });
  // Bundled (by esbuild, say): the package's code is inlined into the bundle, and the
  // files it finds by URLs made of import.meta.url are looked for beside it.
  const bundle = join(app, 'bundle');
  execFileSync('mkdir', ['-p', bundle]);
  for (const file of ['node.js', 'node-runner.js', 'common.js']) copyFileSync(join(app, 'node_modules/snappack', file), join(bundle, file));
  writeFileSync(join(app, 'bundled.js'), `
    import { validate } from './bundle/node.js';
    const answer = await validate(new TextEncoder().encode('{"a":1}\\n'), { fileName: 'rows.jsonl', table: 'rows' })
      .then((report) => report.documents, (error) => \`\${error.code}: \${error.message}\`);
    console.log(answer);
  `);
  const missing = execFileSync(process.execPath, ['bundled.js'], { cwd: app, encoding: 'utf8' }).trim();
  assert.equal(
    missing,
    `WorkerFailed: snappack's worker thread needs ${join(bundle, 'node-worker.js')}, which is missing: a program bundled with snappack needs the package's node-worker.js, common.js and web/ beside the bundle (cp -r node_modules/snappack/{node-worker.js,common.js,web} ${bundle}/)`,
  );
  // What the message says to copy is all that was missing.
  execFileSync('bash', ['-c', missing.slice(missing.indexOf('cp -r '), -1)], { cwd: app });
  assert.equal(execFileSync(process.execPath, ['bundled.js'], { cwd: app, encoding: 'utf8' }).trim(), '1');
  if (process.features.require_module) {
    writeFileSync(join(app, 'main.cjs'), `
      const { validateFile } = require('snappack');
      validateFile('rows.jsonl', { table: 'rows' }).then((report) => console.log(report.valid));
    `);
    assert.equal(execFileSync(process.execPath, ['main.cjs'], { cwd: app, encoding: 'utf8' }).trim(), 'true');
  }
});
