// Web Worker of the browser benchmark: the package's `web` WebAssembly build
// validating a File read with FileReaderSync, exactly as the package's own
// worker does, timed here. Its JavaScript heap is measured by the page once
// it is done (a busy worker cannot be measured: see bench/run.mjs).

import { initSync, validate } from '/pkg/web/snappack.js';

self.onmessage = ({ data }) => {
  const wasm = initSync({ module: data.module });
  const start = performance.now();
  const report = JSON.parse(validate(data.file, data.file.name, '{}', () => {}));
  const wallMs = performance.now() - start;
  self.postMessage({
    wallMs,
    documents: report.documents,
    valid: report.valid,
    wasmMemoryBytes: wasm.memory.buffer.byteLength,
  });
};
