// Uploading to a `snappack serve` from a browser (docs/PROTOCOL.md).
//
// `prepareUpload` validates and packs the input in a Web Worker, in one walk
// (the stream is a Blob the browser may keep on disk). `sendUpload` sends a
// prepared stream with `fetch`, driven by the core's upload state machine
// (`UploadMachine`, the same Rust code as `snappack upload`): create or
// resume, the server's sequence number wins, backoff on network errors and
// server failures, refusals reported with where. Packing is deterministic, so
// an import interrupted even by a page reload continues after packing the same
// file with the same options again.

import { compiledModule, inWorker } from './browser.js';
import { SnappackError, coreOptionsJson, fileNameOf, normalizeInput } from './common.js';
import init, { UploadMachine } from './web/snappack.js';

/** An upload the server refused, or that could not reach it. */
export class UploadError extends Error {
  constructor(failure, importId) {
    super(failure.message);
    this.name = 'UploadError';
    /** The server's code, or `NetworkError`, `Protocol`. */
    this.code = failure.code;
    /** HTTP status, when the server answered. */
    this.status = failure.status ?? null;
    this.component = failure.component ?? '';
    this.table = failure.table ?? null;
    /** 1-based document number within the table. */
    this.line = failure.line ?? null;
    /** Frame sequence number. */
    this.seq = failure.seq ?? null;
    /** The import, when it was created: resume it with `importId`. */
    this.importId = importId ?? null;
  }

  /** True when trying again later may succeed (no answer, or a server failure). */
  get retryable() {
    return this.status === null || this.status >= 500;
  }
}

let mainThread;

/** The WebAssembly instance on this thread, for the state machine (no file work here). */
function mainThreadInstance() {
  mainThread ??= compiledModule().then((module) => init({ module_or_path: module }));
  mainThread.catch(() => {
    mainThread = undefined;
  });
  return mainThread;
}

function baseUrl(url) {
  if (typeof url !== 'string' || url === '') throw new SnappackError('InvalidOptions', 'url must be the server\'s URL');
  return url.replace(/\/+$/, '');
}

function authorization(token) {
  if (typeof token !== 'string' || token === '') throw new SnappackError('InvalidOptions', 'token must be a string');
  return `Bearer ${token}`;
}

/**
 * The server's active tables (`GET /api/tables`), in the shape of the
 * validator's `target` option.
 */
export async function fetchTables(url, token, { signal } = {}) {
  let response;
  try {
    response = await fetch(`${baseUrl(url)}/api/tables`, {
      headers: { Authorization: authorization(token) },
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    throw new UploadError({ code: 'NetworkError', message: `cannot reach ${url}: ${error.message}` });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new UploadError({
      code: body.code ?? `Http${response.status}`,
      message: body.message ?? `${url} answered HTTP ${response.status}`,
      status: response.status,
    });
  }
  return body;
}

/**
 * Validates and packs `input` in a Web Worker. Resolves with `{ report,
 * stream, frames }`: `stream` (a Blob) and `frames` (byte ranges, `[start0,
 * end0, start1, ...]`) are null when the report has errors.
 */
export async function prepareUpload(input, options) {
  options ??= {};
  const source = normalizeInput(input);
  const optionsJson = coreOptionsJson(options);
  const { onProgress, signal } = options;
  signal?.throwIfAborted();
  const request = {
    type: 'pack',
    module: await compiledModule(),
    input: source,
    fileName: fileNameOf(input, options),
    options: optionsJson,
    progress: Boolean(onProgress),
  };
  signal?.throwIfAborted();
  const worker = new Worker(new URL('./pack-worker.js', import.meta.url), { type: 'module', name: 'snappack-pack' });
  return inWorker(request, { onProgress, signal }, worker);
}

/**
 * The packed stream of `input` (docs/FORMAT.md) as a `ReadableStream` of
 * bytes: validated and packed in a Web Worker, then read at the consumer's
 * pace. Takes the options of {@link prepareUpload}. When the input has
 * errors the stream errors with a `SnappackError` of code
 * `InvalidSnapshot` whose `report` lists them.
 */
export function pack(input, options) {
  let reader;
  return new ReadableStream({
    async start() {
      const prepared = await prepareUpload(input, options);
      if (!prepared.stream) {
        const error = new SnappackError(
          'InvalidSnapshot',
          `the input has ${prepared.report.error_count} errors; see report.errors`,
        );
        error.report = prepared.report;
        throw error;
      }
      reader = prepared.stream.stream().getReader();
    },
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return reader?.cancel(reason);
    },
  });
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(timer);
      reject(signal.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/**
 * Sends a prepared stream to the server at `url` and resolves with the
 * server's answer to finish (`{ state: 'finished', tables }`). With
 * `importId` it continues that import from where the server stands; a new
 * import gets `label` (up to 256 bytes, e.g. a fingerprint of the file), by
 * which `GET /api/imports` finds it again. Rejects
 * with an {@link UploadError}, or with `signal.reason` when aborted (the
 * import stays open on the server: continue it with its `importId`).
 */
export async function sendUpload(prepared, options) {
  const { url, token, mode = 'requireEmpty', importId, label, framesPerRequest = 4, onProgress, onImport, signal } = options ?? {};
  const { stream, frames } = prepared ?? {};
  if (!(stream instanceof Blob) || !(frames instanceof Float64Array)) {
    throw new SnappackError('InvalidInput', 'sendUpload needs the result of prepareUpload for a valid input');
  }
  const base = baseUrl(url);
  const auth = authorization(token);
  await mainThreadInstance();
  const count = frames.length / 2;
  const bytesTotal = count ? frames[frames.length - 1] : 0;
  const machine = new UploadMachine(mode, count, framesPerRequest, importId ?? undefined, label ?? undefined);
  let announced = importId ?? null;
  const report = (state, extra) => {
    const acknowledged = machine.acknowledged;
    onProgress?.({
      state,
      importId: machine.id ?? null,
      framesSent: acknowledged,
      frames: count,
      bytesSent: acknowledged ? frames[2 * acknowledged - 1] : 0,
      bytesTotal,
      ...extra,
    });
  };
  try {
    for (;;) {
      signal?.throwIfAborted();
      const step = JSON.parse(machine.step());
      if (step.sleep !== undefined) {
        report('retrying', { retryInMs: step.sleep });
        await sleep(step.sleep, signal);
        continue;
      }
      if (step.done) {
        report('finished');
        return step.done;
      }
      if (step.failed) throw new UploadError(step.failed, machine.id ?? announced);
      const { method, path, body, seq, count: n } = step.send;
      const isFrames = seq !== undefined;
      try {
        const response = await fetch(base + path, {
          method,
          headers: {
            Authorization: auth,
            'Content-Type': isFrames ? 'application/octet-stream' : 'application/json',
          },
          body: isFrames ? stream.slice(frames[2 * seq], frames[2 * (seq + n) - 1]) : body,
          signal,
        });
        machine.onResponse(response.status, new Uint8Array(await response.arrayBuffer()));
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        machine.onNetworkError(String(error?.message ?? error));
      }
      if (machine.id && machine.id !== announced) {
        announced = machine.id;
        onImport?.(announced);
      }
      report('sending');
    }
  } finally {
    machine.free();
  }
}

/**
 * Validates, packs and uploads `input` in one call: `prepareUpload` then
 * `sendUpload`. Rejects with an UploadError of code `InvalidSnapshot` (and the
 * report as `report`) when the input has errors; nothing is sent then.
 */
export async function upload(input, options) {
  const { url, token, mode, importId, label, framesPerRequest, onImport, onProgress, signal, ...rest } = options ?? {};
  const target = rest.target ?? (await fetchTables(url, token, { signal }));
  const prepared = await prepareUpload(input, {
    ...rest,
    target,
    mode,
    signal,
    onProgress: onProgress && ((p) => onProgress({ state: 'packing', ...p })),
  });
  if (!prepared.stream) {
    const error = new UploadError({
      code: 'InvalidSnapshot',
      message: `the snapshot has ${prepared.report.error_count} errors; nothing was sent`,
    });
    error.report = prepared.report;
    throw error;
  }
  return sendUpload(prepared, { url, token, mode, importId, label, framesPerRequest, onImport, onProgress, signal });
}
