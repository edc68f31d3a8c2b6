// The npm package's Node build (WebAssembly, single-threaded) on a snapshot
// file, read through `validateFile` a few MiB at a time.
//
// Usage: node bench/node-wasm.mjs <snapshot.zip> [repetitions]
//   prints one JSON line: { documents, bytes, valid, runs: [{ wallMs, cpuMs }], peakRssBytes }

import { argv } from 'node:process';

import { validateFile } from 'snappack';

import { repeat } from './timing.mjs';

const [, , path, reps = '3'] = argv;
const { result: report, runs } = await repeat(Number(reps), () => validateFile(path));
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
