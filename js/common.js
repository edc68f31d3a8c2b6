// Shared by the browser and Node entry points of the `snappack` package:
// input and option checks, and the errors the package throws.

/**
 * An error about how the API was called (`InvalidInput`, `InvalidOptions`,
 * `Unsupported`) or an internal failure (`Panic`, `WorkerFailed`, `Internal`).
 * Findings about the input itself are never thrown: they are in the Report.
 */
export class SnappackError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'SnappackError';
    this.code = code;
  }
}

/** Options that go to the core, as its `Options` JSON. */
const CORE_OPTIONS = ['format', 'table', 'component', 'schema', 'target', 'mode', 'maxErrors'];

/** Options handled by this wrapper. */
const WRAPPER_OPTIONS = ['fileName', 'onProgress', 'signal'];

/** The values of the options that take one of a few words. */
export const CHOICES = {
  format: ['zip', 'jsonl', 'json', 'csv'],
  mode: ['requireEmpty', 'append', 'replace', 'replaceAll'],
};

/** The most errors listed that the WebAssembly build can count to. */
const MAX_ERRORS_LIMIT = 2 ** 32 - 1;

/** The core's options as JSON text; throws `InvalidOptions` on misuse. */
export function coreOptionsJson(options) {
  if (options === null || typeof options !== 'object') {
    throw new SnappackError('InvalidOptions', 'options must be an object');
  }
  const core = {};
  for (const [name, value] of Object.entries(options)) {
    if (CORE_OPTIONS.includes(name)) {
      if (value !== undefined && value !== null) core[name] = checkedOption(name, value);
    } else if (!WRAPPER_OPTIONS.includes(name)) {
      throw new SnappackError('InvalidOptions', `unknown option "${name}"`);
    }
  }
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
    throw new SnappackError('InvalidOptions', 'onProgress must be a function');
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new SnappackError('InvalidOptions', 'signal must be an AbortSignal');
  }
  if (options.fileName !== undefined && options.fileName !== null && typeof options.fileName !== 'string') {
    throw new SnappackError('InvalidOptions', 'fileName must be a string');
  }
  try {
    return JSON.stringify(core);
  } catch (error) {
    // A BigInt or a circular object in `schema` or `target`.
    throw new SnappackError('InvalidOptions', `the options cannot be sent as JSON: ${error.message}`);
  }
}

/** One core option's value, checked where JSON would lose or garble it. */
function checkedOption(name, value) {
  const choices = CHOICES[name];
  if (choices && !choices.includes(value)) {
    throw new SnappackError('InvalidOptions', `option "${name}" must be one of ${choices.join(', ')}`);
  }
  if ((name === 'table' || name === 'component') && typeof value !== 'string') {
    throw new SnappackError('InvalidOptions', `option "${name}" must be a string`);
  }
  if ((name === 'schema' || name === 'target') && typeof value !== 'object') {
    throw new SnappackError('InvalidOptions', `option "${name}" must be an object`);
  }
  if (name === 'maxErrors') {
    if (!Number.isInteger(value) || value < 0) {
      throw new SnappackError('InvalidOptions', 'option "maxErrors" must be a whole number, 0 or more');
    }
    // All errors are counted whatever the cap; a cap this large lists them all.
    return Math.min(value, MAX_ERRORS_LIMIT);
  }
  return value;
}

/**
 * The input as the core takes it: a `Uint8Array` (any typed array or
 * DataView is viewed as bytes, an ArrayBuffer wrapped) or a `Blob`/`File`.
 */
export function normalizeInput(input) {
  const buffer = input instanceof ArrayBuffer ? input : ArrayBuffer.isView(input) ? input.buffer : null;
  if (buffer instanceof ArrayBuffer && isDetached(buffer)) {
    throw new SnappackError('InvalidInput', 'input is a detached ArrayBuffer (it was transferred elsewhere)');
  }
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (typeof Blob !== 'undefined' && input instanceof Blob) return input;
  throw new SnappackError(
    'InvalidInput',
    'input must be a Uint8Array, an ArrayBuffer, a Blob or a File',
  );
}

/** True for an ArrayBuffer transferred away (`detached` is newer than Node 20). */
function isDetached(buffer) {
  if (typeof buffer.detached === 'boolean') return buffer.detached;
  try {
    buffer.slice(0, 0);
    return false;
  } catch {
    return true;
  }
}

/** The name whose extension picks the format when `options.format` does not. */
export function fileNameOf(input, options) {
  if (typeof options.fileName === 'string') return options.fileName;
  return typeof input.name === 'string' ? input.name : '';
}

/** An error from the WebAssembly module (a JS Error with `code`) as a SnappackError. */
function fromWasmError(error, panicMessage) {
  if (panicMessage !== undefined || error instanceof WebAssembly.RuntimeError) {
    return new SnappackError('Panic', `snappack panicked: ${panicMessage ?? error.message}`, {
      cause: error,
    });
  }
  if (error instanceof Error && typeof error.code === 'string' && !(error instanceof SnappackError)) {
    return new SnappackError(error.code, error.message);
  }
  return error;
}

/**
 * In a worker: answers one request with the WebAssembly module it carries.
 * `work(onProgress)` does the job and returns `[result, transfer]`; the
 * result is posted as `done` (moving `transfer`), a failure as `error` (a
 * panic as `Panic`), progress as `progress` messages when the request asks
 * for them. A `panic` request panics on purpose, for the tests.
 */
export function answerRequest(wasm, data, post, work) {
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
    const onProgress = data.progress
      ? (bytesRead, bytesTotal, documents) => post({ type: 'progress', progress: { bytesRead, bytesTotal, documents } })
      : undefined;
    const [result, transfer = []] = work(onProgress);
    post({ type: 'done', result }, transfer);
  } catch (error) {
    const failure = fromWasmError(error, panicMessage);
    post({
      type: 'error',
      code: failure instanceof SnappackError ? failure.code : (error?.code ?? 'Internal'),
      message: String(failure?.message ?? failure),
    });
  }
}

/**
 * On the calling side: routes one message of a worker: progress to
 * `onProgress` (what it throws rejects), a packed chunk to `onChunk`, the
 * answer to `resolve`, a failure to `reject` as a SnappackError.
 */
export function routeWorkerMessage(data, { onProgress, onChunk }, resolve, reject) {
  if (data.type === 'progress') {
    try {
      const returned = onProgress?.(data.progress);
      // An async callback: its rejection stops the run as a throw does.
      if (typeof returned?.then === 'function') returned.then(undefined, reject);
    } catch (error) {
      reject(error);
    }
  } else if (data.type === 'chunk') {
    onChunk?.(data.chunk, data.frameEnds);
  } else if (data.type === 'done') {
    resolve(data.result);
  } else if (data.type === 'error') {
    reject(new SnappackError(data.code, data.message));
  }
}
