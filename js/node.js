// The `snappack` package in Node: validation runs in this thread, on the
// `nodejs` WebAssembly build. `validateFile` reads a file of any size through
// `fs.readSync` a few MiB at a time instead of loading it.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename } from 'node:path';

import {
  SnappackError,
  coreOptionsJson,
  fileNameOf,
  fromWasmError,
  normalizeInput,
  progressCallback,
} from './common.js';

export { SnappackError };

const require = createRequire(import.meta.url);
const WASM_MODULE = require.resolve('./node/snappack.js');

let wasm;
let panicMessage;

/** The WebAssembly instance; a fresh one after a panic. */
function instance() {
  if (wasm === undefined) {
    wasm = require(WASM_MODULE);
    wasm.setPanicHandler((message) => {
      panicMessage = message;
    });
  }
  return wasm;
}

/** Runs `call` on the instance, turning a panic into a SnappackError and dropping the instance. */
function guarded(call) {
  const module = instance();
  panicMessage = undefined;
  try {
    return call(module);
  } catch (error) {
    if (panicMessage !== undefined || error instanceof WebAssembly.RuntimeError) {
      // A trapped instance is in an unknown state: the next call loads a new one.
      delete require.cache[WASM_MODULE];
      wasm = undefined;
    }
    throw fromWasmError(error, panicMessage);
  }
}

function run(source, fileName, options) {
  const optionsJson = coreOptionsJson(options);
  options.signal?.throwIfAborted();
  const report = guarded((module) =>
    module.validate(source, fileName, optionsJson, progressCallback(options)),
  );
  return JSON.parse(report);
}

/**
 * Validates an archive or a single-table file held in memory.
 * @param {Uint8Array | ArrayBuffer | Blob | File} input
 * @param {import('./index.js').ValidateOptions} [options]
 * @returns {Promise<import('./index.js').Report>}
 */
export async function validate(input, options) {
  options ??= {};
  let source = normalizeInput(input);
  const fileName = fileNameOf(input, options);
  if (source instanceof Blob) {
    coreOptionsJson(options);
    source = new Uint8Array(await source.arrayBuffer());
  }
  return run(source, fileName, options);
}

/**
 * Validates the file at `path` without reading it into memory.
 * @param {string} path
 * @param {import('./index.js').ValidateOptions} [options]
 * @returns {Promise<import('./index.js').Report>}
 */
export async function validateFile(path, options) {
  options ??= {};
  coreOptionsJson(options);
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let buffer = Buffer.alloc(0);
    const read = (offset, length) => {
      if (buffer.length < length) buffer = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const n = readSync(fd, buffer, done, length - done, offset + done);
        if (n === 0) throw new Error(`${path} ended at ${offset + done} bytes, shorter than ${size}`);
        done += n;
      }
      // Copied out by the caller before the next read.
      return buffer.subarray(0, length);
    };
    const fileName = options.fileName ?? basename(path);
    return run({ size, read }, fileName, options);
  } finally {
    closeSync(fd);
  }
}

/** Panics inside the WebAssembly module, to test that a panic only rejects. @internal */
export async function __panicForTests(message) {
  guarded((module) => module.__panicForTests(message));
}
