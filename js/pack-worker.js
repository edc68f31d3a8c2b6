// The Web Worker that validates and packs one input with the `web`
// WebAssembly build, in the same walk, for `prepareUpload` and `upload`;
// with several workers, each compresses its shard of the frames.
// First it checks what is known before the first document (tables, numbers,
// conflicts with the server's tables); with errors there, the whole input is
// validated for the report and nothing is packed. Else each chunk of the
// stream is posted as soon as it is packed, with the ends of the frames it
// completes and how far into the input each stands for, so that they can be
// sent meanwhile; the answer is `{ packed,
// report }`.

import * as wasm from './web/snappack.js';
import { answerRequest } from './common.js';

self.onmessage = ({ data }) =>
  answerRequest(wasm, data, (message, transfer) => self.postMessage(message, transfer), (onProgress) => {
    const tables = JSON.parse(wasm.checkTables(data.input, data.fileName, data.options));
    if (tables.error_count > 0) {
      // The report is the first worker's to make; the others have nothing to pack.
      if (data.shard > 0) return [{ packed: false, report: null }];
      return [{ packed: false, report: JSON.parse(wasm.validate(data.input, data.fileName, data.options, onProgress)) }];
    }
    const onChunk = (chunk, frameEnds, frameInputs) =>
      self.postMessage({ type: 'chunk', chunk, frameEnds, frameInputs }, [chunk.buffer, frameEnds.buffer, frameInputs.buffer]);
    const args = [data.firstFrame, data.prefixCrc32, data.level, data.shard, data.shards, data.frameSize, data.maxFrameSize];
    return [JSON.parse(wasm.pack(data.input, data.fileName, data.options, onProgress, onChunk, ...args))];
  });
