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
const WRAPPER_OPTIONS = ['fileName', 'onProgress', 'signal', 'workers'];

/** The values of the options that take one of a few words. */
export const CHOICES = {
  format: ['zip', 'jsonl', 'json', 'csv'],
  mode: ['requireEmpty', 'append', 'replace', 'replaceAll'],
};

/** The most errors listed that the WebAssembly build can count to. */
const MAX_ERRORS_LIMIT = 2 ** 32 - 1;

/** Bytes in memory (an array, a Blob read whole in Node) must be fewer: WebAssembly reads them with 32-bit offsets. */
export const MAX_INPUT_BYTES = 2 ** 32;

/** The WebAssembly module could not be fetched or compiled: `WorkerFailed`. */
export function wasmLoadFailed(error) {
  return new SnappackError('WorkerFailed', `cannot load snappack's WebAssembly: ${error.message}`, { cause: error });
}

/** Something in a request cannot be cloned, so nothing reached the worker: `InvalidOptions`. */
export function unsendableRequest(error) {
  return new SnappackError('InvalidOptions', `the request cannot be sent to snappack's worker: ${error.message}`, { cause: error });
}

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
  checkHandlers(options, ['onProgress']);
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

/**
 * Throws `InvalidOptions` unless each option of `callbacks` in `options` is
 * a function and `signal` an AbortSignal, where given.
 */
export function checkHandlers(options, callbacks) {
  // Null is "not given", as for every other option.
  for (const name of callbacks) {
    if (options[name] != null && typeof options[name] !== 'function') {
      throw new SnappackError('InvalidOptions', `${name} must be a function`);
    }
  }
  if (options.signal != null && !(options.signal instanceof AbortSignal)) {
    throw new SnappackError('InvalidOptions', 'signal must be an AbortSignal');
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
  if ((name === 'schema' || name === 'target') && (typeof value !== 'object' || Array.isArray(value))) {
    throw new SnappackError('InvalidOptions', `option "${name}" must be an object`);
  }
  if (name === 'target') checkTargetShape(value);
  if (name === 'schema') checkSchemaShape(value);
  if (name === 'maxErrors') {
    if (!Number.isInteger(value) || value < 0) {
      throw new SnappackError('InvalidOptions', 'option "maxErrors" must be a whole number, 0 or more');
    }
    // All errors are counted whatever the cap; a cap this large lists them all.
    return Math.min(value, MAX_ERRORS_LIMIT);
  }
  return value;
}

/** Whether `value` is a plain object (not null, not an array). */
function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A value a user gave, as a message shows it after "must be ...": `, not "x"`, or that it is missing. */
function got(value) {
  if (value === undefined) return ', and is missing';
  let text;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return `, not ${text}`;
}

/**
 * Throws `InvalidOptions`, naming the table and field, unless `target` has
 * the shape of the server's tables: `{ tables: [{ component?, name, number,
 * documents? }] }` (what the core then checks of the names and numbers is
 * its own).
 */
function checkTargetShape(target) {
  const fail = (what) => {
    throw new SnappackError('InvalidOptions', `option "target": ${what} (the server's tables, as fetchTables gives them: { tables: [{ component, name, number, documents }] })`);
  };
  if (!Array.isArray(target.tables)) fail('tables must be an array');
  target.tables.forEach((table, i) => {
    const at = `tables[${i}]`;
    if (!isObject(table)) fail(`${at} must be an object${got(table)}`);
    if (typeof table.name !== 'string') fail(`${at}.name must be a string${got(table.name)}`);
    const { number, component, documents } = table;
    if (!(Number.isInteger(number) && number >= 0 && number <= 0xffffffff)) {
      fail(`${at}.number (table ${JSON.stringify(table.name)}) must be a table number, a whole number up to 4294967295${got(number)}`);
    }
    if (component !== undefined && typeof component !== 'string') {
      fail(`${at}.component (table ${JSON.stringify(table.name)}) must be a string (a component path, '' for the root)${got(component)}`);
    }
    if (documents !== undefined && !(Number.isSafeInteger(documents) && documents >= 0)) {
      fail(`${at}.documents (table ${JSON.stringify(table.name)}) must be a whole number, 0 or more${got(documents)}`);
    }
  });
}

/**
 * Throws `InvalidOptions`, naming the table and field, unless `schema` has
 * the shape `{ tables: { NAME: { fields: { FIELD: { optional? } } } } }`.
 */
function checkSchemaShape(schema) {
  const fail = (what) => {
    throw new SnappackError('InvalidOptions', `option "schema": ${what} (e.g. { tables: { users: { fields: { nick: { optional: true } } } } })`);
  };
  if (!isObject(schema.tables)) fail(`tables must be an object of tables by name${got(schema.tables)}`);
  for (const [name, table] of Object.entries(schema.tables)) {
    const at = `tables[${JSON.stringify(name)}]`;
    if (!isObject(table)) fail(`${at} must be an object { fields }${got(table)}`);
    if (!isObject(table.fields)) fail(`${at}.fields must be an object of fields by name${got(table.fields)}`);
    for (const [field, value] of Object.entries(table.fields)) {
      const where = `${at}.fields[${JSON.stringify(field)}]`;
      if (!isObject(value)) fail(`${where} must be an object { optional }${got(value)}`);
      if (value.optional !== undefined && typeof value.optional !== 'boolean') fail(`${where}.optional must be true or false${got(value.optional)}`);
    }
  }
}

/** The most workers one validation or packing uses. */
export const MAX_WORKERS = 16;

/** Workers by default: the cores, at most 4. */
export function defaultWorkers(cores) {
  return Math.max(1, Math.min(4, cores ?? 1));
}

/** The `workers` option, checked; `fallback` when it is not given. */
export function workersOption(workers, fallback) {
  if (workers === undefined || workers === null) return fallback;
  if (!(Number.isInteger(workers) && workers >= 1 && workers <= MAX_WORKERS)) {
    throw new SnappackError('InvalidOptions', `workers must be a whole number, 1 to ${MAX_WORKERS}`);
  }
  return workers;
}

/**
 * Below this size an archive is validated by one worker: starting more
 * costs more than they save.
 */
const SHARED_WALK_MIN_BYTES = 4 << 20;

/**
 * How many workers validate an input of `size` bytes named `fileName`:
 * several only for a ZIP archive (the core splits it by table), and only
 * for one large enough to gain from them.
 */
export function validationWorkers(workers, size, fileName, options) {
  const format = options.format ?? (/\.zip$/i.test(fileName) ? 'zip' : undefined);
  return format === 'zip' && size >= SHARED_WALK_MIN_BYTES ? workers : 1;
}

/**
 * Validates with `count` workers together: `runShard(index, onProgress,
 * signal)` runs worker `index`'s share (the core's `validateShard`) and
 * resolves with its result, `merge(results, signal)` resolves with the
 * Report. Progress is the workers' shares added up, scaled to `size`. The
 * first worker to fail stops the others.
 */
export async function validateTogether({ count, size, onProgress, signal, runShard, merge }) {
  signal?.throwIfAborted();
  const stopper = new AbortController();
  const stop = () => stopper.abort(signal.reason);
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const shares = Array.from({ length: count }, () => ({ done: 0, documents: 0 }));
    const progressOf = (index) =>
      onProgress &&
      ((progress) => {
        // A worker with nothing to check says 0 of 0 once, at its end.
        const done = progress.bytesTotal > 0 ? progress.bytesRead / progress.bytesTotal : 1;
        shares[index] = { done, documents: progress.documents };
        const fraction = shares.reduce((sum, share) => sum + share.done, 0) / count;
        const documents = shares.reduce((sum, share) => sum + share.documents, 0);
        return onProgress({ bytesRead: Math.floor(fraction * size), bytesTotal: size, documents });
      });
    const runs = [];
    let results;
    try {
      for (let index = 0; index < count; index++) runs.push(runShard(index, progressOf(index), stopper.signal));
      results = await Promise.all(runs);
    } catch (error) {
      // One worker failed (or could not start): the others stop, and
      // their rejections, which nobody waits for, are dropped.
      stopper.abort(error);
      for (const run of runs) run.catch(() => {});
      throw error;
    }
    return await merge(results, stopper.signal);
  } finally {
    signal?.removeEventListener('abort', stop);
  }
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
  const length = input instanceof ArrayBuffer || ArrayBuffer.isView(input) ? input.byteLength : 0;
  if (length >= MAX_INPUT_BYTES) {
    throw new SnappackError(
      'InvalidInput',
      `the input holds ${length} bytes; bytes in memory may be at most 4 GiB - 1: give a large file as a File, or by path to validateFile in Node, which read it a piece at a time`,
    );
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

/**
 * The name whose extension picks the format when `options.format` does not:
 * `fileName`, else a File's own name, else `''` (bytes and Blobs have none;
 * the core then tells the format by the first bytes).
 */
export function fileNameOf(input, options) {
  return typeof options.fileName === 'string' ? options.fileName : typeof input.name === 'string' ? input.name : '';
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
 * for them. A `ping` request is answered `ready` once the module runs; a
 * `panic` request panics on purpose, for the tests.
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
    // The worker started, with what it imports and its WebAssembly: `preload` asks.
    if (data.type === 'ping') {
      post({ type: 'done', result: 'ready' });
      return;
    }
    const onProgress = data.progress
      ? (bytesRead, bytesTotal, documents) => post({ type: 'progress', progress: { bytesRead, bytesTotal, documents } })
      : undefined;
    const [result, transfer = []] =
      data.type === 'merge'
        ? [mergeShards(wasm, data.shards)]
        : data.type === 'checkTarget'
          ? [JSON.parse(wasm.checkTarget(data.report, data.target, data.mode))]
          : work(onProgress);
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
 * The worker request of `checkTarget(report, options)`: the report's JSON,
 * the target's and the mode, checked; throws a SnappackError on misuse.
 */
export function checkTargetRequest(report, options) {
  if (report === null || typeof report !== 'object' || !Array.isArray(report.tables)) {
    throw new SnappackError('InvalidInput', 'report must be a Report of validate (an object with its tables)');
  }
  if (options === null || typeof options !== 'object') {
    throw new SnappackError('InvalidOptions', 'options must be an object: { target, mode }');
  }
  const { target, mode: given, ...rest } = options;
  const mode = given ?? 'requireEmpty';
  const unknown = Object.keys(rest)[0];
  if (unknown !== undefined) throw new SnappackError('InvalidOptions', `unknown option "${unknown}"`);
  if (target === undefined || target === null) {
    throw new SnappackError('InvalidOptions', 'option "target" is required: the server\'s tables, as fetchTables gives them');
  }
  checkedOption('target', target);
  checkedOption('mode', mode);
  let json;
  try {
    json = { report: JSON.stringify(report), target: JSON.stringify(target) };
  } catch (error) {
    throw new SnappackError('InvalidInput', `the report or target cannot be sent as JSON: ${error.message}`);
  }
  return { type: 'checkTarget', ...json, mode };
}

/** The Report of the workers' `validateShard` results (JSON texts). */
function mergeShards(wasm, shards) {
  return JSON.parse(wasm.mergeShards(`[${shards.join(',')}]`));
}

/**
 * In a worker: validates `source` as `data` asks, alone (the Report) or as
 * one of several workers (`data.shard`: its result as JSON text).
 */
export function validateRequest(wasm, data, source, onProgress) {
  if (data.shard === undefined) return JSON.parse(wasm.validate(source, data.fileName, data.options, onProgress));
  const { index, count } = data.shard;
  return wasm.validateShard(source, data.fileName, data.options, index, count, onProgress);
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
    onChunk?.(data.chunk, data.frameEnds, data.frameInputs);
  } else if (data.type === 'done') {
    resolve(data.result);
  } else if (data.type === 'error') {
    reject(new SnappackError(data.code, data.message));
  }
}
