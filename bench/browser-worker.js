// Web Worker of the browser benchmark: the package's `web` WebAssembly build
// validating a File read with FileReaderSync, exactly as the package's own
// worker does, timed here, with the WebAssembly memory and (where Chromium
// exposes it) the worker's JS heap sampled at every progress callback.

import { initSync, validate } from '/pkg/web/snappack.js';

self.onmessage = ({ data }) => {
  const wasm = initSync({ module: data.module });
  let peakJsHeap = 0;
  const sample = () => {
    const used = self.performance.memory?.usedJSHeapSize ?? 0;
    if (used > peakJsHeap) peakJsHeap = used;
  };
  const start = performance.now();
  const report = JSON.parse(validate(data.file, data.file.name, '{}', sample));
  const wallMs = performance.now() - start;
  self.postMessage({
    wallMs,
    documents: report.documents,
    valid: report.valid,
    wasmMemoryBytes: wasm.memory.buffer.byteLength,
    peakJsHeapBytes: peakJsHeap,
  });
};
