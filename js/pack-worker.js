// The Web Worker behind `prepareUpload`: validates and packs one input with
// the `web` WebAssembly build in the same walk, and posts progress, then the
// packed stream as a Blob with its frames' byte ranges (or the report alone
// when the input has errors). The stream is gathered in Blobs of 64 MiB, which
// the browser may keep on disk, so a multi-GB stream is never held in memory.

import { initSync, pack, frameRanges, setPanicHandler } from './web/snappack.js';
import { postError, postedProgress } from './common.js';

const FOLD = 64 << 20;

const post = (message) => self.postMessage(message);

self.onmessage = ({ data }) => {
  let panicMessage;
  try {
    initSync({ module: data.module });
    setPanicHandler((message) => {
      panicMessage = message;
    });
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
    const onProgress = postedProgress(post, data.progress);
    const { packed, report } = JSON.parse(pack(data.input, data.fileName, data.options, onProgress, onChunk));
    if (!packed) {
      self.postMessage({ type: 'done', result: { report, stream: null, frames: null } });
      return;
    }
    const stream = new Blob([...folded, ...parts]);
    const frames = frameRanges(stream);
    self.postMessage({ type: 'done', result: { report, stream, frames } }, [frames.buffer]);
  } catch (error) {
    postError(post, error, panicMessage);
  }
};
