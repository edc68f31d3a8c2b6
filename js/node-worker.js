// The worker thread behind the Node entry point: validates one input with
// the WebAssembly module the caller compiled (the same build as browsers')
// and posts progress, then the Report or an error, so the caller's event loop
// runs on meanwhile. A file is read with `fs.readSync` a few MiB at a time,
// never whole.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

import { postError, postedProgress } from './common.js';
import * as wasm from './web/snappack.js';

const post = (message) => parentPort.postMessage(message);

parentPort.on('message', (data) => {
  let panicMessage;
  try {
    wasm.initSync({ module: data.module });
    wasm.setPanicHandler((message) => {
      panicMessage = message;
    });
    if (data.type === 'panic') {
      wasm.__panicForTests(data.message);
      return;
    }
    const onProgress = postedProgress(post, data.progress);
    const validate = (source) => wasm.validate(source, data.fileName, data.options, onProgress);
    const report = data.path === undefined ? validate(data.input) : withFile(data.path, validate);
    post({ type: 'done', report: JSON.parse(report) });
  } catch (error) {
    postError(post, error, panicMessage);
  }
});

/** Calls `use` with the core's random-access reader over the file at `path`. */
function withFile(path, use) {
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
      // Copied out by the core before the next read.
      return buffer.subarray(0, length);
    };
    return use({ size, read });
  } finally {
    closeSync(fd);
  }
}
