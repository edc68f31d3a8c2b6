// The npm package's Node build (WebAssembly, single-threaded) on a snapshot
// file, read through `validateFile` a few MiB at a time.
//
// Usage: node bench/node-wasm.mjs <snapshot.zip> [repetitions]
//   prints one JSON line: { documents, bytes, valid, runs: [{ wallMs, cpuMs }], peakRssBytes }

import { argv } from 'node:process';

import { validateFile } from 'snappack';

const [, , path, reps = '3'] = argv;
const runs = [];
let report;
for (let r = 0; r < Number(reps); r++) {
  const cpu = process.cpuUsage();
  const start = performance.now();
  report = await validateFile(path);
  const wallMs = performance.now() - start;
  const used = process.cpuUsage(cpu);
  runs.push({ wallMs, cpuMs: (used.user + used.system) / 1000 });
}
const documentBytes = report.tables.reduce((sum, t) => sum + t.bytes, 0);
console.log(
  JSON.stringify({
    documents: report.documents,
    bytes: documentBytes,
    valid: report.valid,
    runs,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  }),
);
