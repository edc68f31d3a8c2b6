// The Web Worker behind the browser entry point: validates one input with the
// `web` WebAssembly build and posts progress, then the Report or an error.
// A Blob or File is read slice by slice with FileReaderSync, never whole.

import * as wasm from './web/snappack.js';
import { answerRequest, validateRequest } from './common.js';

self.onmessage = ({ data }) =>
  answerRequest(wasm, data, (message, transfer) => self.postMessage(message, transfer), (onProgress) => [
    validateRequest(wasm, data, data.input, onProgress),
  ]);
