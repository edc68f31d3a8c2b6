// The Web Worker behind `prepareUpload`: validates and packs one input with
// the `web` WebAssembly build in the same walk, and posts progress, then the
// packed stream as a Blob with its frames' byte ranges (or the report alone
// when the input has errors). The stream is gathered in Blobs of 64 MiB, which
// the browser may keep on disk, so a multi-GB stream is never held in memory.

import * as wasm from './web/snappack.js';
import { answerRequest } from './common.js';

const FOLD = 64 << 20;

self.onmessage = ({ data }) =>
  answerRequest(wasm, data, (message, transfer) => self.postMessage(message, transfer), (onProgress) => {
    const folded = [];
    let parts = [];
    let pending = 0;
    const onChunk = (chunk) => {
      parts.push(chunk);
      pending += chunk.length;
      if (pending >= FOLD) {
        folded.push(new Blob(parts));
        parts = [];
        pending = 0;
      }
    };
    const { packed, report } = JSON.parse(wasm.pack(data.input, data.fileName, data.options, onProgress, onChunk));
    if (!packed) return [{ report, stream: null, frames: null }];
    const stream = new Blob([...folded, ...parts]);
    const frames = wasm.frameRanges(stream);
    return [{ report, stream, frames }, [frames.buffer]];
  });
