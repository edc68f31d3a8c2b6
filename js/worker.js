// The Web Worker behind the browser entry point: validates one input with the
// `web` WebAssembly build and posts progress, then the Report or an error.
// A Blob or File is read slice by slice with FileReaderSync, never whole.

import { initSync, validate, setPanicHandler, __panicForTests } from './web/snappack.js';
import { postError, postedProgress } from './common.js';

const post = (message) => self.postMessage(message);

self.onmessage = ({ data }) => {
  let panicMessage;
  try {
    initSync({ module: data.module });
    setPanicHandler((message) => {
      panicMessage = message;
    });
    if (data.type === 'panic') {
      __panicForTests(data.message);
      return;
    }
    const onProgress = postedProgress(post, data.progress);
    const report = JSON.parse(validate(data.input, data.fileName, data.options, onProgress));
    self.postMessage({ type: 'done', report });
  } catch (error) {
    postError(post, error, panicMessage);
  }
};
