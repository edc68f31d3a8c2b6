// The Web Worker that validates and packs one input with the `web`
// WebAssembly build, in the same walk, and posts progress. Two ways:
//
// - for `prepareUpload`: the packed stream as a Blob with its frames' byte
//   ranges (or the report alone when the input has errors). The stream is
//   gathered in Blobs of 64 MiB, which the browser may keep on disk, so a
//   multi-GB stream is never held in memory; the frames' ends come with the
//   chunks, so the stream is never read back.
// - for `upload` (`stream: true`): first what is known before the first
//   document (tables, numbers, conflicts with the server's); with errors
//   there, the whole input is validated for the report and nothing is packed.
//   Else each chunk is posted as soon as it is packed, with the ends of the
//   frames it completes, so that they can be sent meanwhile.

import * as wasm from './web/snappack.js';
import { answerRequest } from './common.js';

const FOLD = 64 << 20;

self.onmessage = ({ data }) =>
  answerRequest(wasm, data, (message, transfer) => self.postMessage(message, transfer), (onProgress) =>
    data.stream ? packStreaming(data, onProgress) : packWhole(data, onProgress),
  );

function packWhole(data, onProgress) {
  const folded = [];
  let parts = [];
  let pending = 0;
  const ends = [];
  const onChunk = (chunk, frameEnds) => {
    parts.push(chunk);
    pending += chunk.length;
    if (pending >= FOLD) {
      folded.push(new Blob(parts));
      parts = [];
      pending = 0;
    }
    ends.push(...frameEnds);
  };
  const { packed, report } = JSON.parse(wasm.pack(data.input, data.fileName, data.options, onProgress, onChunk));
  if (!packed) return [{ report, stream: null, frames: null }];
  const stream = new Blob([...folded, ...parts]);
  // [start0, end0, start1, end1, ...]: each frame starts where the last ended.
  const frames = new Float64Array(2 * ends.length);
  ends.forEach((end, i) => {
    frames[2 * i] = i === 0 ? 0 : ends[i - 1];
    frames[2 * i + 1] = end;
  });
  return [{ report, stream, frames }, [frames.buffer]];
}

function packStreaming(data, onProgress) {
  const tables = JSON.parse(wasm.checkTables(data.input, data.fileName, data.options));
  if (tables.error_count > 0) {
    return [{ report: JSON.parse(wasm.validate(data.input, data.fileName, data.options, onProgress)), packed: false }];
  }
  const onChunk = (chunk, frameEnds) =>
    self.postMessage({ type: 'chunk', chunk, frameEnds }, [chunk.buffer, frameEnds.buffer]);
  return [JSON.parse(wasm.pack(data.input, data.fileName, data.options, onProgress, onChunk))];
}
