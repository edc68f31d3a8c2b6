// The `snappack` package in browsers: each call runs in its own Web Worker
// (worker.js, started by runner.js), so the page never freezes. A File is
// posted to the worker without being read; the worker reads it slice by slice
// with FileReaderSync. The WebAssembly module is compiled once per page and
// shared with workers; after `preload`, the workers' scripts come from memory
// too. This module exports exactly what index.d.ts declares.

import {
  SnappackError,
  checkTargetRequest,
  coreOptionsJson,
  defaultWorkers,
  fileNameOf,
  normalizeInput,
  validateTogether,
  validationWorkers,
  workersOption,
} from './common.js';
import { inWorker, workerModule } from './runner.js';

export { SnappackError };
export { preload } from './runner.js';
export { fetchImport, fetchTables, pack, prepareUpload, sendUpload, startPacking, upload, UploadError } from './upload.js';

/**
 * Validates an archive or a single-table file in a Web Worker. A large ZIP
 * archive given as a Blob or File is validated by `options.workers` workers
 * together (default: the cores, at most 4), each checking some of its
 * tables; the Report is the same as one worker's.
 * @param {Uint8Array | ArrayBuffer | Blob | File} input
 * @param {import('./index.js').ValidateOptions} [options]
 * @returns {Promise<import('./index.js').Report>}
 */
export async function validate(input, options) {
  options ??= {};
  const source = normalizeInput(input);
  const optionsJson = coreOptionsJson(options);
  const { onProgress, signal } = options;
  const fileName = fileNameOf(input, options);
  const workers = workersOption(options.workers, defaultWorkers(globalThis.navigator?.hardwareConcurrency));
  signal?.throwIfAborted();
  const module = await workerModule();
  signal?.throwIfAborted();
  const request = {
    type: 'validate',
    module,
    input: source,
    fileName,
    options: optionsJson,
    progress: Boolean(onProgress),
  };
  // Each worker reads a Blob or File itself; bytes would be copied to each.
  const count = source instanceof Blob ? validationWorkers(workers, source.size, fileName, options) : 1;
  if (count === 1) return inWorker(request, { onProgress, signal });
  return validateTogether({
    count,
    size: source.size,
    onProgress,
    signal,
    runShard: (index, onShardProgress, shardSignal) =>
      inWorker(
        { ...request, shard: { index, count }, progress: Boolean(onShardProgress) },
        { onProgress: onShardProgress, signal: shardSignal },
      ),
    merge: (shards, mergeSignal) => inWorker({ type: 'merge', module, shards }, { signal: mergeSignal }),
  });
}

/**
 * The table numbers and conflicts of a validated input with `options.target`
 * in `options.mode`, from its Report alone: the input is not read again.
 * @param {import('./index.js').Report} report
 * @param {import('./index.js').TargetCheckOptions} options
 * @returns {Promise<import('./index.js').TargetCheck>}
 */
export async function checkTarget(report, options) {
  const request = checkTargetRequest(report, options);
  return inWorker({ ...request, module: await workerModule() }, {});
}

