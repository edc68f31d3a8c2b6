// The npm package's Node build (WebAssembly) on a snapshot file, read
// through `validateFile` a few MiB at a time, by one worker thread or by
// several together.
//
// Usage: node bench/node-wasm.mjs <snapshot.zip> [repetitions] [workers]
//   prints one JSON line: { documents, bytes, valid, runs: [{ wallMs, cpuMs }], peakRssBytes }

import { argv } from 'node:process';

import { validateFile } from 'snappack';

import { repeat } from './timing.mjs';

const [, , path, reps = '3', workers = '1'] = argv;
const { result: report, runs } = await repeat(Number(reps), () => validateFile(path, { workers: Number(workers) }));
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
