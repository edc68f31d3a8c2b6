// Raw inflate in WebAssembly (examples/wasm_inflate.rs): zlib-rs, which
// snappack uses, against miniz_oxide, on a snapshot's documents entries, in
// this Node process's main thread.
//
// Usage: node bench/wasm-inflate.mjs <wasm_inflate.wasm> <snapshot.zip> [repetitions]
//   prints one JSON line: { bytes, zlibRs: [{ wallMs, cpuMs }], minizOxide: [...] }

import { readFileSync } from 'node:fs';
import { argv } from 'node:process';

import { repeat } from './timing.mjs';

const [, , wasmPath, zipPath, reps = '3'] = argv;
const module = new WebAssembly.Module(readFileSync(wasmPath));
// The package's wasm-bindgen dependencies are linked in and import a few
// functions that inflating never calls.
const imports = {};
for (const { module: from, name } of WebAssembly.Module.imports(module)) {
  (imports[from] ??= {})[name] = () => {
    throw new Error(`${from}.${name} is not provided`);
  };
}
const instance = new WebAssembly.Instance(module, imports);
const { memory, alloc, load, inflate } = instance.exports;
const zip = readFileSync(zipPath);
const at = alloc(zip.length);
new Uint8Array(memory.buffer, at, zip.length).set(zip);
if (load(at, zip.length) === 0) throw new Error(`${zipPath} has no documents entries`);

const { result: bytes, runs: zlibRs } = await repeat(Number(reps), () => inflate(0));
const { runs: minizOxide } = await repeat(Number(reps), () => inflate(1));
console.log(JSON.stringify({ bytes, zlibRs, minizOxide }));
