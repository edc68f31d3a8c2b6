// The `snappack` package in Node: each call runs in its own worker thread
// (node-worker.js, started by node-runner.js), so the event loop, and with it timers, sockets and abort
// signals, runs on while it validates. The WebAssembly module (the browsers'
// build) is compiled once per process and shared with the workers, code
// optimized in one run included. `validateFile` reads a file of any size a
// few MiB at a time instead of loading it. This module exports exactly what
// node.d.ts declares.

import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  MAX_INPUT_BYTES,
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
import { inWorker } from './node-runner.js';

export { SnappackError };

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
  if (fromBlob) {
    const read = await blobBytes(source);
    // A Blob that cannot be read is a problem of the input, as a picked File
    // a browser cannot read: a ReadFailed finding, where the walk met it.
    if (read.unreadable !== undefined) {
      return inWorker({ type: 'validate', unreadable: { size: source.size, message: read.unreadable }, fileName, options: optionsJson }, options);
    }
    source = read;
  }
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
 * All of `blob`'s bytes; `InvalidInput` when they are more than bytes in
 * memory may be (a file of 4 GiB or more: `validateFile` reads it a piece at
 * a time); `{ unreadable }`, why, when they cannot be read.
 */
async function blobBytes(blob) {
  const advice = 'validate a large file with validateFile(path), which reads it a piece at a time';
  if (blob.size >= MAX_INPUT_BYTES) {
    throw new SnappackError('InvalidInput', `the Blob holds ${blob.size} bytes, more than validate can read into memory (4 GiB - 1): ${advice}`);
  }
  try {
    return new Uint8Array(await blob.arrayBuffer());
  } catch (error) {
    // Bytes that do not fit one buffer (Node 20's openAsBlob gives a file
    // over 4 GiB the size modulo 2^32): size advice. Else the read failed.
    if (error instanceof RangeError) {
      throw new SnappackError('InvalidInput', `the Blob could not be read into memory (${error.message}): ${advice}`, { cause: error });
    }
    return {
      unreadable: `the Blob could not be read (${error?.name}: ${error?.message}): a Blob of a file, from fs.openAsBlob, cannot be read once the file has changed or gone`,
    };
  }
}

/**
 * Validates the file at `path` without reading it into memory. A large ZIP
 * archive is validated by `options.workers` worker threads together
 * (default: the cores, at most 4), each checking some of its tables; the
 * Report is the same as one worker's. `path` is a path, or a `file:` URL
 * (as Node's fs takes them).
 * @param {string | URL} path
 * @param {import('./index.js').ValidateOptions} [options]
 * @returns {Promise<import('./index.js').Report>}
 */
export async function validateFile(path, options) {
  options ??= {};
  path = filePath(path);
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

/**
 * The file path `given` names: a string as it is, a `file:` URL as its path;
 * `InvalidInput` for anything else.
 */
function filePath(given) {
  if (typeof given === 'string') return given;
  if (given instanceof URL) {
    if (given.protocol !== 'file:') {
      throw new SnappackError('InvalidInput', `path must be a file path or a file: URL, not a ${given.protocol} URL (${given.href})`);
    }
    try {
      return fileURLToPath(given);
    } catch (error) {
      throw new SnappackError('InvalidInput', `${given.href} names no file here: ${error.message}`, { cause: error });
    }
  }
  throw new SnappackError('InvalidInput', 'path must be a string (a file path) or a file: URL');
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
