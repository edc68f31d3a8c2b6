// Web Worker of the browser benchmark: the package's `web` WebAssembly build
// validating a File read with FileReaderSync, exactly as the package's own
// worker does, timed here. Its JavaScript heap is measured by the page once
// it is done (a busy worker cannot be measured: see bench/run.mjs).
//
// With `inMemory`, the worker first reads the whole File into memory and
// answers 'ready'; a later `{ go: true }` validates those bytes, so that the
// page can time the validation without the File's reading.

import { initSync, validate } from '/pkg/web/snappack.js';

let wasm;
let held;

self.onmessage = ({ data }) => {
  if (data.inMemory) {
    wasm = initSync({ module: data.module });
    held = { bytes: new Uint8Array(new FileReaderSync().readAsArrayBuffer(data.file)), name: data.file.name };
    self.postMessage('ready');
    return;
  }
  if (!data.go) wasm = initSync({ module: data.module });
  const [input, name] = data.go ? [held.bytes, held.name] : [data.file, data.file.name];
  const start = performance.now();
  const report = JSON.parse(validate(input, name, '{}', () => {}));
  const wallMs = performance.now() - start;
  self.postMessage({
    wallMs,
    documents: report.documents,
    valid: report.valid,
    wasmMemoryBytes: wasm.memory.buffer.byteLength,
  });
};
