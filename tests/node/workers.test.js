// Validation shared by several worker threads (`workers`), of a file or of
// bytes in memory: the same Report as one worker and as the CLI, progress to the end, and a failure or an
// abort in any worker stopping them all.

import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { validate, validateFile } from 'snappack';

import { gen, nativeReport, scratch, sortedJson } from './helpers.js';

const dir = scratch();
const archive = join(dir, 'large.zip');
// Large enough (over 4 MiB) to be shared; faults in several tables, stored
// files in two components.
gen(archive, {
  tables: 4,
  totalDocuments: 80000,
  components: ['a'],
  storageFiles: 3,
  compressionLevel: 1,
  faults: ['duplicateId', 'badJsonLine', 'dollarFieldName', 'sha256Mismatch', 'foreignTableId'],
});
const size = statSync(archive).size;

/** Worker threads alive (each has a MessagePort). */
function threads() {
  return process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length;
}

/**
 * Validates with `options` (the bytes, with `bytes`); returns the Report and
 * the most worker threads seen at once. First waits for the workers of
 * earlier calls to end: all but the one kept idle.
 */
async function validateCounting(options, bytes) {
  for (let waited = 0; threads() > 1 && waited < 5000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  let most = 0;
  const onProgress = () => {
    most = Math.max(most, threads());
  };
  const report = bytes
    ? await validate(bytes, { ...options, fileName: 'large.zip', onProgress })
    : await validateFile(archive, { ...options, onProgress });
  return { report, most };
}

test('several workers report what one worker and the CLI report', async () => {
  assert.ok(size > 4 << 20, `the archive is ${size} bytes`);
  const one = await validateCounting({ workers: 1 });
  assert.equal(one.most, 1);
  assert.equal(one.report.valid, false);
  assert.equal(sortedJson(one.report), sortedJson(JSON.parse(nativeReport(archive))));
  for (const workers of [2, 3]) {
    const shared = await validateCounting({ workers });
    // At least that many ran at once (one ending may still be counted).
    assert.ok(shared.most >= workers, `${shared.most} workers ran, not ${workers}`);
    assert.equal(sortedJson(shared.report), sortedJson(one.report), `${workers} workers`);
  }
  // Bytes in memory: copied once, into memory the workers share.
  const bytes = new Uint8Array(readFileSync(archive));
  const inMemory = await validateCounting({ workers: 2 }, bytes);
  assert.ok(inMemory.most >= 2, `${inMemory.most} workers ran`);
  assert.equal(sortedJson(inMemory.report), sortedJson(one.report));
  // A cap that cuts the lists short cuts them where one walk does.
  const capped = await validateFile(archive, { workers: 3, maxErrors: 2 });
  assert.equal(sortedJson(capped), sortedJson(JSON.parse(nativeReport(archive, { maxErrors: 2 }))));
});

test('shared progress rises to the input size and every document', async () => {
  const seen = [];
  const report = await validateFile(archive, { workers: 2, onProgress: (p) => seen.push(p) });
  assert.ok(seen.length >= 3, `${seen.length} progress calls`);
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i].bytesRead >= seen[i - 1].bytesRead, `bytes at call ${i}`);
    assert.ok(seen[i].documents >= seen[i - 1].documents, `documents at call ${i}`);
    assert.equal(seen[i].bytesTotal, size);
  }
  assert.deepEqual(seen.at(-1), { bytesRead: size, bytesTotal: size, documents: report.documents });
});

test('an exception from onProgress or an abort stops every worker', async () => {
  const stop = new Error('enough');
  await assert.rejects(
    validateFile(archive, {
      workers: 3,
      onProgress: () => {
        throw stop;
      },
    }),
    (error) => error === stop,
  );
  const controller = new AbortController();
  let calls = 0;
  await assert.rejects(
    validateFile(archive, {
      workers: 3,
      signal: controller.signal,
      onProgress: () => {
        calls += 1;
        if (calls === 2) controller.abort();
      },
    }),
    { name: 'AbortError' },
  );
  // No worker still works: this process uses next to no CPU time now...
  const before = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const used = process.cpuUsage(before);
  assert.ok((used.user + used.system) / 1000 < 150, `${(used.user + used.system) / 1000} ms of CPU in 300 ms`);
  // ...and soon at most the worker kept idle for the next call is left.
  for (let waited = 0; threads() > 1 && waited < 5000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(threads() <= 1, `${threads()} workers left`);
});

test('workers must be a whole number from 1 to 16', async () => {
  const bytes = new Uint8Array(8);
  for (const workers of [0, 17, 1.5, '2']) {
    await assert.rejects(validateFile(archive, { workers }), { code: 'InvalidOptions' }, String(workers));
    await assert.rejects(validate(bytes, { workers, fileName: 'x.zip' }), { code: 'InvalidOptions' }, String(workers));
  }
});
