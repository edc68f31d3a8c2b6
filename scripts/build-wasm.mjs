#!/usr/bin/env node
// Builds the npm package `snappack` into pkg/.
//
// For each [[build]] of wasm-pack.toml: `cargo build --lib --target
// wasm32-unknown-unknown --profile <profile>`, `wasm-bindgen --target <target>
// --no-typescript --out-dir <out-dir>`, then `wasm-opt <flags>` on the .wasm.
// Then it copies the hand-written package sources from js/ (entry points,
// workers, types, README, package.json with the crate's version) and links
// node_modules/snappack to pkg/, so the project's own tests import the package
// by its name, exactly as a user would.
//
// Usage: node scripts/build-wasm.mjs [target...]   (default: every build)

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

import { parse } from 'smol-toml';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = join(root, 'pkg');
const WASM_TARGET = 'wasm32-unknown-unknown';
const CRATE = 'snappack';
const WASM_OPT = join(root, 'node_modules', '.bin', 'wasm-opt');

/** Package sources copied from js/ as they are. */
const LICENSE_FILES = ['LICENSE-APACHE', 'LICENSE-MIT'];
const PACKAGE_FILES = ['browser.js', 'runner.js', 'common.js', 'node.js', 'node-runner.js', 'node-worker.js', 'worker.js', 'upload.js', 'pack-worker.js', 'index.d.ts', 'node.d.ts', 'README.md'];

function run(command, args) {
  console.log(`> ${command} ${args.join(' ')}`);
  execFileSync(command, args, { cwd: root, stdio: 'inherit' });
}

function cargoVersion() {
  const manifest = parse(readFileSync(join(root, 'Cargo.toml'), 'utf8'));
  return manifest.package.version;
}

function readBuilds() {
  const config = parse(readFileSync(join(root, 'wasm-pack.toml'), 'utf8'));
  const builds = config.build ?? [];
  for (const build of builds) {
    for (const key of ['target', 'out-dir', 'profile']) {
      if (typeof build[key] !== 'string') throw new Error(`wasm-pack.toml: a [[build]] has no ${key}`);
    }
    if (!Array.isArray(build['wasm-opt'] ?? [])) throw new Error('wasm-pack.toml: wasm-opt must be a list');
    if (!build['out-dir'].startsWith('pkg/')) throw new Error('wasm-pack.toml: out-dir must be under pkg/');
  }
  return builds;
}

function buildOne(build) {
  const profile = build.profile;
  run('cargo', ['build', '--lib', '--target', WASM_TARGET, '--profile', profile]);
  const profileDir = profile === 'dev' ? 'debug' : profile;
  const wasm = join(root, 'target', WASM_TARGET, profileDir, `${CRATE}.wasm`);
  const outDir = join(root, build['out-dir']);
  rmSync(outDir, { recursive: true, force: true });
  // No TypeScript: the package's types are index.d.ts and node.d.ts, and nothing imports the generated ones.
  run('wasm-bindgen', ['--target', build.target, '--no-typescript', '--out-dir', outDir, '--out-name', CRATE, wasm]);
  const flags = build['wasm-opt'] ?? [];
  const output = join(outDir, `${CRATE}_bg.wasm`);
  if (flags.length > 0) optimize(output, flags);
  return output;
}

/**
 * Runs wasm-opt on `path` in place. binaryen's npm build takes tens of
 * seconds, so results are kept in target/wasm-opt/ by the hash of the input
 * and the flags: builds with the same input share one run, and a rebuild with
 * no change in Rust runs none.
 */
function optimize(path, flags) {
  const key = createHash('sha256').update(readFileSync(path)).update(JSON.stringify(flags)).digest('hex');
  const cached = join(root, 'target', 'wasm-opt', `${key}.wasm`);
  if (!existsSync(cached)) {
    mkdirSync(dirname(cached), { recursive: true });
    run(WASM_OPT, [...flags, path, '-o', `${cached}.tmp`]);
    renameSync(`${cached}.tmp`, cached);
  }
  copyFileSync(cached, path);
}

function assemble() {
  mkdirSync(pkg, { recursive: true });
  for (const file of PACKAGE_FILES) cpSync(join(root, 'js', file), join(pkg, file));
  // The license texts go with every copy.
  for (const file of LICENSE_FILES) cpSync(join(root, file), join(pkg, file));
  const manifest = JSON.parse(readFileSync(join(root, 'js', 'package.json'), 'utf8'));
  manifest.version = cargoVersion();
  writeFileSync(join(pkg, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

function describeSize(path) {
  const bytes = readFileSync(path);
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  return `${relative(root, path)}: ${kib(bytes.length)} raw, ${kib(gzipSync(bytes, { level: 9 }).length)} gzipped`;
}

const only = process.argv.slice(2);
const builds = readBuilds().filter((b) => only.length === 0 || only.includes(b.target));
if (only.length === 0) rmSync(pkg, { recursive: true, force: true });
const outputs = builds.map(buildOne);
assemble();
for (const output of outputs) console.log(describeSize(output));
