// The worker thread behind the Node entry point: validates one input with
// the WebAssembly module the caller compiled (the same build as browsers')
// and posts progress, then the Report or an error, so the caller's event loop
// runs on meanwhile. A file is read with `fs.readSync` a few MiB at a time,
// never whole (a pipe or a device, which cannot be read at an offset, is).

import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { answerRequest, validateRequest } from './common.js';
import * as wasm from './web/snappack.js';

parentPort.on('message', (data) =>
  answerRequest(wasm, data, (message, transfer) => parentPort.postMessage(message, transfer), (onProgress) => {
    const validate = (source) => validateRequest(wasm, data, source, onProgress);
    if (data.unreadable !== undefined) return [validate(unreadable(data.unreadable))];
    return [data.path === undefined ? validate(data.input) : withFile(data.path, validate)];
  }),
);

/**
 * A reader over an input of `size` bytes whose every read fails with
 * `message` (a Blob the caller could not read): the walk reports it as a
 * read failure where it met it, as for a file that cannot be read.
 */
function unreadable({ size, message }) {
  return {
    size,
    read: () => {
      throw new Error(message);
    },
  };
}

/** Calls `use` with the core's random-access reader over the file at `path`. */
function withFile(path, use) {
  const misuse = (message) => Object.assign(new Error(message), { code: 'InvalidInput' });
  let fd;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw misuse(`cannot open ${path}: ${error.message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw misuse(`${path} is a folder: give the snapshot's .zip (or a .jsonl, .json or .csv file)`);
    // A pipe, a device or a file that says it is empty (as those of /proc
    // do) has no size to seek in: it is read to its end first.
    if (!stat.isFile() || stat.size === 0) return use(new Uint8Array(readFileSync(fd)));
    const size = stat.size;
    // Straight into the core's buffer (a view of WebAssembly memory).
    const read = (offset, into) => {
      let done = 0;
      while (done < into.length) {
        const n = readSync(fd, into, done, into.length - done, offset + done);
        if (n === 0) throw new Error(`${path} ended at ${offset + done} bytes, shorter than ${size}`);
        done += n;
      }
      return done;
    };
    return use({ size, read });
  } finally {
    closeSync(fd);
  }
}
