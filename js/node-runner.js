// The worker threads behind the Node entry point (node.js): the WebAssembly
// module compiled once per process, the idle worker kept for the next call,
// and a call's run in a worker. Not part of the package's API: the entry point
// exports only what its types declare.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { SnappackError, routeWorkerMessage, unsendableRequest, wasmLoadFailed } from './common.js';

/**
 * The package's files that a worker thread runs, beside this module. A
 * bundler (esbuild, say) inlines this module's code but leaves the URLs it
 * makes of `import.meta.url` to find them as they are: relative to the
 * bundle, where they must be copied.
 */
const WORKER_FILES = ['node-worker.js', 'common.js', 'web/snappack.js', 'web/snappack_bg.wasm'];

/** The worker's files were found (looked for at each call until they are). */
let filesFound = false;

/**
 * Throws a `WorkerFailed` naming the first of the worker's files that is
 * missing and what to copy where, or `Unsupported` in a bundle without
 * `import.meta.url`.
 */
function checkWorkerFiles() {
  if (filesFound) return;
  let here;
  try {
    here = new URL(import.meta.url);
  } catch (error) {
    throw new SnappackError(
      'Unsupported',
      `snappack cannot find its worker and WebAssembly (${error.message}): it must be bundled as an ES module, where import.meta.url is the bundle's URL (esbuild: --format=esm)`,
      { cause: error },
    );
  }
  const missing = here.protocol === 'file:' ? WORKER_FILES.find((file) => !existsSync(new URL(file, here))) : undefined;
  if (missing !== undefined) {
    const folder = fileURLToPath(new URL('.', here));
    throw new SnappackError(
      'WorkerFailed',
      `snappack's worker thread needs ${fileURLToPath(new URL(missing, here))}, which is missing: a program bundled with snappack needs the package's node-worker.js, common.js and web/ beside the bundle (cp -r node_modules/snappack/{node-worker.js,common.js,web} ${folder})`,
    );
  }
  filesFound = true;
}

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
 * `signal` aborted, is ended at once. Rejects with `WorkerFailed` naming the
 * worker's file that is missing (in a bundle they were not copied beside).
 * @internal (node.js)
 */
export async function inWorker(request, { onProgress, signal }, transfer = []) {
  checkWorkerFiles();
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
