// The `snappack` package in Node: each call runs in its own worker thread
// (node-worker.js), so the event loop, and with it timers, sockets and abort
// signals, runs on while it validates. The WebAssembly module (the browsers'
// build) is compiled once per process and shared with the workers, code
// optimized in one run included. `validateFile` reads a file of any size a
// few MiB at a time instead of loading it.

import { readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { Worker } from 'node:worker_threads';

import {
  MAX_INPUT_BYTES,
  SnappackError,
  checkTargetRequest,
  coreOptionsJson,
  defaultWorkers,
  fileNameOf,
  normalizeInput,
  routeWorkerMessage,
  unsendableRequest,
  validateTogether,
  validationWorkers,
  wasmLoadFailed,
  workersOption,
} from './common.js';

export { SnappackError };

let compiled;

/** The compiled module, once per process (again after a failure). */
function compiledModule() {
  if (compiled === undefined) {
    compiled = readFile(new URL('./web/snappack_bg.wasm', import.meta.url)).then((bytes) => WebAssembly.compile(bytes));
    compiled.catch(() => {
      compiled = undefined;
    });
  }
  return compiled;
}

/**
 * Validates an archive or a single-table file held in memory (at most
 * 4 GiB - 1). The bytes are copied once, into memory that the workers share
 * (a Blob's, read into a buffer of its own, move to a single worker); for a
 * file on disk, `validateFile` reads it there.
 * @param {Uint8Array | ArrayBuffer | Blob | File} input
 * @param {import('./index.js').ValidateOptions} [options]
 * @returns {Promise<import('./index.js').Report>}
 */
export async function validate(input, options) {
  options ??= {};
  let source = normalizeInput(input);
  const optionsJson = coreOptionsJson(options);
  const fileName = fileNameOf(input, options);
  const workers = workersOption(options.workers, defaultWorkers(availableParallelism()));
  options.signal?.throwIfAborted();
  const fromBlob = source instanceof Blob;
  if (fromBlob) source = await blobBytes(source);
  const size = source.byteLength;
  const count = validationWorkers(workers, size, fileName, options);
  // A Blob's bytes were read into a buffer of our own, which moves to the worker.
  if (count === 1 && fromBlob) {
    return inWorker({ type: 'validate', input: source, fileName, options: optionsJson }, options, [source.buffer]);
  }
  // Else they are copied once, into memory the workers share (sent as a
  // message, they would be copied twice).
  const shared = new Uint8Array(new SharedArrayBuffer(size));
  shared.set(source);
  const request = { type: 'validate', input: shared, fileName, options: optionsJson };
  return count > 1 ? validateInWorkers(request, count, size, options) : inWorker(request, options, []);
}


/**
 * All of `blob`'s bytes, or `InvalidInput` when they are more than bytes in
 * memory may be (a file of 4 GiB or more: `validateFile` reads it a piece at a time).
 */
async function blobBytes(blob) {
  const advice = 'validate a large file with validateFile(path), which reads it a piece at a time';
  if (blob.size >= MAX_INPUT_BYTES) {
    throw new SnappackError('InvalidInput', `the Blob holds ${blob.size} bytes, more than validate can read into memory (4 GiB - 1): ${advice}`);
  }
  try {
    return new Uint8Array(await blob.arrayBuffer());
  } catch (error) {
    throw new SnappackError('InvalidInput', `the Blob could not be read into memory (${error.message}): ${advice}`, { cause: error });
  }
}

/**
 * Validates the file at `path` without reading it into memory. A large ZIP
 * archive is validated by `options.workers` worker threads together
 * (default: the cores, at most 4), each checking some of its tables; the
 * Report is the same as one worker's.
 * @param {string} path
 * @param {import('./index.js').ValidateOptions} [options]
 * @returns {Promise<import('./index.js').Report>}
 */
export async function validateFile(path, options) {
  options ??= {};
  if (typeof path !== 'string') throw new SnappackError('InvalidInput', 'path must be a string');
  const optionsJson = coreOptionsJson(options);
  const workers = workersOption(options.workers, defaultWorkers(availableParallelism()));
  options.signal?.throwIfAborted();
  const fileName = typeof options.fileName === 'string' ? options.fileName : basename(path);
  const request = { type: 'validate', path, fileName, options: optionsJson };
  // A file that cannot be read is reported by the worker that tries.
  const size = workers > 1 ? await stat(path).then((s) => (s.isFile() ? s.size : 0), () => 0) : 0;
  const count = validationWorkers(workers, size, fileName, options);
  if (count === 1) return inWorker(request, options);
  return validateInWorkers(request, count, size, options);
}

/** Runs validation `request` in `count` workers together; see `validateTogether`. */
function validateInWorkers(request, count, size, { onProgress, signal }) {
  return validateTogether({
    count,
    size,
    onProgress,
    signal,
    runShard: (index, onShardProgress, shardSignal) =>
      inWorker({ ...request, shard: { index, count } }, { onProgress: onShardProgress, signal: shardSignal }),
    merge: (shards, mergeSignal) => inWorker({ type: 'merge', shards }, { signal: mergeSignal }),
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
  return inWorker(checkTargetRequest(report, options), {});
}

/** Panics inside the worker's WebAssembly, to test that a panic only rejects. @internal */
export async function __panicForTests(message) {
  return inWorker({ type: 'panic', message }, {});
}

/** How long a worker that finished cleanly waits for the next call before it ends. */
const IDLE_MS = 10_000;

/** The process's Node options, less `--input-type`, which a worker's file entry refuses. */
const execArgv = process.execArgv.filter((arg, i, all) => !arg.startsWith('--input-type') && all[i - 1] !== '--input-type');

/** A worker that finished its last call cleanly, kept for the next one. */
let idle;
let idleTimer;

function takeWorker() {
  let worker = idle;
  idle = undefined;
  clearTimeout(idleTimer);
  if (worker === undefined) {
    worker = new Worker(new URL('./node-worker.js', import.meta.url), { name: 'snappack', execArgv });
    worker.once('exit', () => {
      if (idle === worker) idle = undefined;
    });
  }
  worker.ref();
  return worker;
}

/** Keeps `worker` as the idle one (it does not hold the process open), or ends it if there is one. */
function release(worker) {
  if (idle !== undefined) {
    worker.terminate();
    return;
  }
  idle = worker;
  worker.unref();
  idleTimer = setTimeout(() => {
    idle = undefined;
    worker.terminate();
  }, IDLE_MS).unref();
}

/**
 * Posts `request` to a worker thread (moving `transfer`) and settles with its Report. A worker
 * that answered is kept for the next call; one that failed, or whose run
 * `signal` aborted, is ended at once.
 */
async function inWorker(request, { onProgress, signal }, transfer = []) {
  let module;
  try {
    module = await compiledModule();
  } catch (error) {
    throw wasmLoadFailed(error);
  }
  signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const worker = takeWorker();
    let settled = false;
    const settle = (settleWith, value, reusable = false) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      // Only this call's listeners: the Worker keeps its own.
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      if (reusable) release(worker);
      else worker.terminate();
      settleWith(value);
    };
    const onAbort = () => settle(reject, signal.reason);
    const onMessage = (data) =>
      routeWorkerMessage(data, { onProgress }, (value) => settle(resolve, value, true), (error) => settle(reject, error));
    const onError = (error) =>
      settle(reject, new SnappackError('WorkerFailed', `snappack's worker failed: ${error.message}`, { cause: error }));
    const onExit = (code) =>
      settle(reject, new SnappackError('WorkerFailed', `snappack's worker stopped (exit code ${code}) without an answer`));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    try {
      worker.postMessage({ ...request, module, progress: Boolean(onProgress) }, transfer);
    } catch (error) {
      settle(reject, unsendableRequest(error));
    }
  });
}
