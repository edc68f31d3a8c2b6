// Uploading to a `snappack serve` from a browser (docs/PROTOCOL.md).
//
// `startPacking` validates and packs the input in Web Workers, in one walk each:
// what is known before the first document (tables, numbers, conflicts with
// the server's tables) is checked first, then each chunk of the stream is
// kept as a Blob (which the browser may keep on disk) as soon as it is
// packed. `sendUpload` sends frames with `fetch`, driven by the core's
// upload state machine (`UploadMachine`, the same Rust code as `snappack
// upload`): create or resume, the server's sequence number wins, backoff on
// network errors and server failures, refusals reported with where. Given a
// packing still under way, it sends each frame as soon as it is packed, and
// can be stopped and called again while packing goes on. `prepareUpload`
// waits for the whole stream; `upload` does everything in one call. Packing
// is deterministic, so an import interrupted even by a page reload continues
// after packing the same file with the same options again.

import { compiledModule, inWorker, newWorker, workerModule } from './runner.js';
import { CHOICES, SnappackError, checkHandlers, coreOptionsJson, defaultWorkers, fileNameOf, normalizeInput, workersOption } from './common.js';
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
    /** The field concerned, as a path from the document (`profile.tags[2]`). */
    this.field = failure.field ?? null;
    /** Frame sequence number. */
    this.seq = failure.seq ?? null;
    /** The import, when it was created: resume it with `importId`. */
    this.importId = importId ?? null;
  }

  /** True when trying again later may succeed (no answer, or a server failure). */
  get retryable() {
    return this.code === 'NetworkError' || this.status >= 500;
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

/**
 * A frame's payload bounds, checked before any worker starts: from the
 * smallest frames snappack packs (every table's declaration fits one) to
 * what a server and `snappack unpack` read by default, as the CLI's.
 */
const MIN_FRAME_SIZE = 4096;
const MAX_FRAME_SIZE = 16 * 2 ** 20;

/**
 * A call's options: `{}` when not given; `InvalidOptions` for anything but
 * an object (a string would be read as options named "0", "1", ...).
 */
function optionsOf(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new SnappackError('InvalidOptions', 'options must be an object');
  }
  return options;
}

function baseUrl(url) {
  // A relative URL would be resolved against the page, and answered by its server.
  if (typeof url !== 'string' || !/^https?:\/\/[^/]/i.test(url)) {
    throw new SnappackError('InvalidOptions', "url must be the server's URL, such as http://127.0.0.1:8080");
  }
  return url.replace(/\/+$/, '');
}

/**
 * Option `name`'s `value`: a string (not empty when `nonEmpty`), or
 * `undefined` when not given; throws `InvalidOptions` otherwise.
 */
function stringOption(name, value, nonEmpty = false) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || (nonEmpty && value === '')) {
    throw new SnappackError('InvalidOptions', `option "${name}" must be a ${nonEmpty ? 'non-empty ' : ''}string`);
  }
  return value;
}

function authorization(token) {
  if (typeof token !== 'string' || token === '') throw new SnappackError('InvalidOptions', 'token must be a string');
  // What an HTTP header can carry: visible ASCII and spaces inside.
  if (!/^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/.test(token)) {
    throw new SnappackError('InvalidOptions', 'token holds characters an HTTP header cannot carry');
  }
  return `Bearer ${token}`;
}

/**
 * The server's active tables (`GET /api/tables`), in the shape of the
 * validator's `target` option.
 */
export async function fetchTables(url, token, options) {
  return getJson(url, token, '/api/tables', optionsOf(options), 'table listing', (body) => Array.isArray(body.tables));
}

/**
 * How long one request to the server may take, by default, from sending it
 * to the end of the answer: its frames (4 of 1 MiB by default) and the
 * server's work on them, or a large import's finish. A server that accepts
 * the connection and never answers is given up on then, as one that cannot
 * be reached: the upload tries again (the server's answer to a request cut
 * short is asked for by the import's status).
 */
const DEFAULT_TIMEOUT_MS = 300_000;

/** Option `timeout`: milliseconds, {@link DEFAULT_TIMEOUT_MS} when not given; `InvalidOptions` otherwise. */
function timeoutOption(value) {
  if (value === undefined || value === null) return DEFAULT_TIMEOUT_MS;
  // setTimeout takes at most 2^31 - 1 ms (about 24 days); more would fire at once.
  if (typeof value !== 'number' || !(value > 0 && value < 2 ** 31)) {
    throw new SnappackError('InvalidOptions', 'option "timeout" must be a number of milliseconds, more than 0 (default 300000: 5 minutes)');
  }
  return value;
}

/** `ms` in words: "300 s", "0.5 s". */
function seconds(ms) {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * Makes one request (`init` for `fetch`) to `address` of the server at `url`
 * and reads its whole answer, in at most `timeout` ms: `{ status, ok, body }`
 * (the body's bytes). Rejects with `signal.reason` when it aborts, and with a
 * `NetworkError` {@link UploadError} naming the server when the request
 * fails or the time runs out before the answer's end.
 */
async function exchange(url, address, init, { signal, timeout }) {
  signal?.throwIfAborted();
  const stop = new AbortController();
  const timedOut = new Error('timed out');
  const timer = setTimeout(() => stop.abort(timedOut), timeout);
  const abort = () => stop.abort(signal.reason);
  signal?.addEventListener('abort', abort, { once: true });
  try {
    const response = await fetch(address, { ...init, signal: stop.signal });
    const body = new Uint8Array(await response.arrayBuffer());
    // A connection closed within the answer's head gives, in Chromium, an
    // answer of that head and no body, not an error: every success of a
    // snappack server has a JSON body, so one without (none said, nor one
    // of the statuses that have none) was cut short.
    const bodiless = response.status === 204 || response.status === 205 || response.headers.get('content-length') === '0';
    if (response.ok && body.length === 0 && !bodiless) {
      throw new Error(`the answer (HTTP ${response.status}) ended before its body: the connection was cut`);
    }
    return { status: response.status, ok: response.ok, body };
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    const message = stop.signal.reason === timedOut
      ? `${url} did not answer within ${seconds(timeout)} (the option timeout sets how long a request may take)`
      // The browser's own words ("Failed to fetch") name no server.
      : `cannot reach ${url}: ${error?.message ?? error}`;
    throw new UploadError({ code: 'NetworkError', message });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', abort);
  }
}

/**
 * GETs `path` of the server at `url` and resolves with its JSON answer,
 * which `fits` must accept: an answer that is not the `what` a snappack
 * server gives (another server at that URL) rejects with `Protocol`.
 */
async function getJson(url, token, path, { signal, timeout }, what, fits) {
  const address = baseUrl(url) + path;
  const headers = { Authorization: authorization(token) };
  const response = await exchange(url, address, { headers }, { signal, timeout: timeoutOption(timeout) });
  const body = parsedJson(response.body);
  if (!response.ok) {
    throw new UploadError({
      code: body?.code ?? `Http${response.status}`,
      message: body?.message ?? `${address} answered HTTP ${response.status} and no snappack error: is ${url} a snappack server?`,
      status: response.status,
    });
  }
  if (body === null || typeof body !== 'object' || !fits(body)) {
    throw new UploadError({ code: 'Protocol', message: `${address} did not answer with a snappack server's ${what}: is ${url} a snappack server?` });
  }
  return body;
}

/**
 * The server's status of import `importId` (`GET /api/imports/{id}`):
 * `{ id, mode, state, nextSeq, ... }`.
 */
export async function fetchImport(url, token, importId, options) {
  // Required here: without it the request would ask for import "undefined".
  stringOption('importId', importId ?? '', true);
  const path = `/api/imports/${encodeURIComponent(importId)}`;
  return getJson(url, token, path, optionsOf(options), 'import status', (body) => typeof body.state === 'string');
}

/**
 * The status of open import `importId`, to continue it in `mode` (any when
 * not given) from its `nextSeq`; throws when it cannot be (the server does
 * not know it, or cannot say now: without its `prefixCrc32` no frame it has
 * could be checked, so nothing is packed to send it).
 */
async function resumableImport(url, token, importId, mode, frameSize, signal, timeout) {
  const status = await fetchImport(url, token, importId, { signal, timeout }).catch((error) => {
    throw signal?.aborted ? signal.reason : error;
  });
  const refusal = notResumable(status, importId, mode);
  if (refusal) throw refusal;
  if (frameSize !== undefined && status.frameSize !== undefined && frameSize !== status.frameSize) {
    const message = `import ${importId} was packed in frames of ${status.frameSize} bytes, not ${frameSize}: leave out frameSize to continue it`;
    throw new UploadError({ code: 'FrameSizeMismatch', message }, importId);
  }
  return status;
}

/**
 * Why import `importId`, whose status is `status`, cannot take an upload in
 * `mode` (any when not given); null when it can. Continuing a finished
 * import would send nothing and report another upload's success.
 */
function notResumable(status, importId, mode, advice = 'leave out mode to continue it in its own') {
  // Another import changed a table of it: its finish would be refused (the
  // server fails such an import as soon as it finds it, keeping why).
  if (status?.tableChanged && (status.state === 'open' || status.state === 'failed')) {
    const { code, message, component, table } = status.tableChanged;
    const why = `${message} (import ${importId} can no longer finish: start a new upload)`;
    return new UploadError({ code, message: why, component, table, status: 200 }, importId);
  }
  if (status?.state !== 'open') {
    const message = `import ${importId} is ${status?.state ?? 'not open'} and takes no more frames: upload without importId to start a new import`;
    return new UploadError({ code: 'ImportNotOpen', message }, importId);
  }
  if (mode !== undefined && status.mode !== mode) {
    const message = `import ${importId} is in ${status.mode} mode, not ${mode}: ${advice}`;
    return new UploadError({ code: 'ModeMismatch', message }, importId);
  }
  return null;
}

/**
 * Validates and packs `input` in Web Workers. Resolves with `{ report,
 * stream, frames, firstFrame }`: `stream` (a Blob) and `frames` (byte
 * ranges, `[start0, end0, start1, ...]`) are null when the report has
 * errors; `firstFrame` is the option (0 by default), where `stream` starts.
 */
export function prepareUpload(input, options) {
  try {
    return startPacking(input, options).result;
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Starts validating and packing `input` in Web Workers and returns at once
 * with the {@link Packing}: {@link sendUpload} sends its frames while the
 * rest is packed. With `firstFrame` (an import's `nextSeq`, when continuing
 * it) the frames before it are walked and checked but not packed, and with
 * `prefixCrc32` (the import's) packing fails with `ResumeMismatch` when they
 * are not the import's, before a frame is handed out; `level`
 * (deflate, 0 to 9, default 5) trades bytes sent for packing time. `workers`
 * (default: the cores, at most 4) share the compressing: each walks and
 * checks the whole input and compresses every `workers`-th frame, and the
 * frames are put back in order, the same bytes as one worker packs. Throws a
 * SnappackError on misuse of the options.
 */
export function startPacking(input, options) {
  return new Packing(input, optionsOf(options));
}

/** An input being validated and packed in Web Workers; see {@link startPacking}. */
class Packing {
  constructor(input, options) {
    const { firstFrame = 0, prefixCrc32, level, frameSize, workers: given, ...rest } = options;
    const { onProgress, signal } = rest;
    if (!Number.isSafeInteger(firstFrame) || firstFrame < 0) {
      throw new SnappackError('InvalidOptions', 'firstFrame must be a whole number of frames');
    }
    if (prefixCrc32 !== undefined && !(Number.isInteger(prefixCrc32) && prefixCrc32 >= 0 && prefixCrc32 < 2 ** 32)) {
      throw new SnappackError('InvalidOptions', "prefixCrc32 must be a CRC-32 (the import status's prefixCrc32)");
    }
    if (level !== undefined && !(Number.isInteger(level) && level >= 0 && level <= 9)) {
      throw new SnappackError('InvalidOptions', 'level must be a deflate level, 0 to 9');
    }
    if (frameSize !== undefined && !(Number.isInteger(frameSize) && frameSize >= MIN_FRAME_SIZE && frameSize <= MAX_FRAME_SIZE)) {
      throw new SnappackError('InvalidOptions', `frameSize must be a whole number of bytes, ${MIN_FRAME_SIZE} to ${MAX_FRAME_SIZE}`);
    }
    const workers = workersOption(given, packingWorkers(level));
    // A new stream's frames are no larger than the server takes, when its
    // listing (the target fetchTables gives) says so; a continued one keeps its own.
    const maxFrameSize = firstFrame === 0 ? (rest.target?.maxFrameSize ?? undefined) : undefined;
    if (maxFrameSize !== undefined && !(Number.isSafeInteger(maxFrameSize) && maxFrameSize > 0)) {
      throw new SnappackError('InvalidOptions', "target.maxFrameSize must be a whole number of bytes (the server's frame limit, as fetchTables gives it)");
    }
    const request = {
      type: 'pack',
      input: normalizeInput(input),
      options: coreOptionsJson(rest),
      fileName: fileNameOf(input, rest),
      progress: Boolean(onProgress),
      firstFrame,
      prefixCrc32,
      level,
      frameSize,
      maxFrameSize,
      shards: workers,
    };
    signal?.throwIfAborted();
    /** The stream so far. @internal */
    this.frames = new PackedFrames(firstFrame);
    // The mode the tables are checked for: an import of these frames is in it.
    this.frames.mode = rest.mode ?? 'requireEmpty';
    // The frames before `firstFrame` are the import's when the encoder checked them.
    this.frames.vouched = prefixCrc32 === undefined ? 0 : firstFrame;
    this.stopper = new AbortController();
    const stop = () => this.stop(signal.reason);
    signal?.addEventListener('abort', stop, { once: true });
    /** Settles once packing ended: `{ report, stream, frames }` as {@link prepareUpload} gives. */
    this.result = this.run(request, onProgress).finally(() => signal?.removeEventListener('abort', stop));
    this.result.then(
      ({ stream, report }) => this.frames.end(stream ? null : invalidSnapshot(report)),
      (error) => this.frames.end(error),
    );
  }

  async run(request, onProgress) {
    const { signal } = this.stopper;
    request.module = await workerModule();
    signal.throwIfAborted();
    const { shards } = request;
    const merger = new ShardMerger(shards, (bytes, ends, inputs) => this.frames.add(bytes, ends, inputs));
    const runs = [];
    for (let shard = 0; shard < shards; shard++) {
      const worker = newWorker('pack', `snappack-pack-${shard}`);
      // Every worker walks the whole input: the first one tells the progress.
      const callbacks = {
        onProgress: shard === 0 ? onProgress : undefined,
        onChunk: (chunk, frameEnds, frameInputs) => merger.add(shard, chunk, frameEnds, frameInputs),
        signal,
      };
      runs.push(inWorker({ ...request, shard, progress: shard === 0 && request.progress }, callbacks, worker));
    }
    let answers;
    try {
      answers = await Promise.all(runs);
    } catch (error) {
      // One worker failed: the others stop too.
      this.stopper.abort(error);
      throw error;
    }
    const { packed, report } = answers[0];
    const { first } = this.frames;
    if (!packed) return { report, stream: null, frames: null, firstFrame: first };
    if (!merger.drained) {
      throw new SnappackError('Internal', 'the workers\' frames do not fit together into one stream');
    }
    const prepared = { report, stream: this.frames.blob(), frames: this.frames.ranges(), firstFrame: first };
    vouchedFrames.set(prepared, this.frames.vouched);
    checkedModes.set(prepared, this.frames.mode);
    return prepared;
  }

  /** Stops packing: the worker ends and `result` rejects with `reason`. */
  stop(reason) {
    this.stopper.abort(reason);
  }
}

/**
 * Workers for packing at `level`: the cores, at most 4 (each walks the whole
 * input, so more add little); one at level 0, where there is nothing to share.
 */
function packingWorkers(level) {
  return level === 0 ? 1 : defaultWorkers(globalThis.navigator?.hardwareConcurrency);
}

/**
 * Puts the frames of several shards (each every `count`-th frame of the
 * stream) back in sequence order, and hands them on as they line up.
 */
class ShardMerger {
  constructor(count, emit) {
    this.count = count;
    this.emit = emit;
    /** Per shard: bytes not yet cut into frames, where they start, whole frames waiting (with their input positions). */
    this.shards = Array.from({ length: count }, () => ({ pending: [], offset: 0, frames: [], inputs: [] }));
    /** The next frame to hand on, counted from the first packed. */
    this.next = 0;
    /** Bytes handed on. */
    this.written = 0;
  }

  /**
   * A chunk of shard `shard`'s stream, where the frames it completes end in
   * it, and how far into the input each stands for.
   */
  add(shard, chunk, frameEnds, frameInputs) {
    const s = this.shards[shard];
    s.pending.push(chunk);
    frameEnds.forEach((end, i) => {
      s.frames.push(take(s.pending, end - s.offset));
      s.inputs.push(frameInputs[i]);
      s.offset = end;
    });
    const parts = [];
    const ends = [];
    const inputs = [];
    for (let ready = this.shards[this.next % this.count]; ready.frames.length > 0; ready = this.shards[this.next % this.count]) {
      const frame = ready.frames.shift();
      parts.push(frame);
      inputs.push(ready.inputs.shift());
      this.written += frame.length;
      ends.push(this.written);
      this.next += 1;
    }
    if (parts.length > 0) this.emit(joined(parts), ends, inputs);
  }

  /** True when every frame was handed on. */
  get drained() {
    return this.shards.every((s) => s.frames.length === 0 && s.pending.every((chunk) => chunk.length === 0));
  }
}

/** The first `length` bytes of `chunks` (taken out of them) as one array. */
function take(chunks, length) {
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const head = chunks[0];
    const n = Math.min(head.length, length - filled);
    out.set(head.subarray(0, n), filled);
    filled += n;
    if (n === head.length) chunks.shift();
    else chunks[0] = head.subarray(n);
  }
  return out;
}

function joined(parts) {
  if (parts.length === 1) return parts[0];
  return take(parts.slice(), parts.reduce((sum, part) => sum + part.length, 0));
}

/** Blobs of the stream gathered into one every this many. */
const FOLD_PARTS = 64;

/**
 * The frames of a packed stream being sent: all of them (a prepared upload),
 * or those packed so far while a worker packs the rest.
 */
class PackedFrames {
  /** A prepared stream from frame `first` on, and its `[start0, end0, ...]` frame ranges. */
  static whole(stream, ranges, first = 0) {
    const frames = new PackedFrames(first);
    frames.folded.push(stream);
    for (let i = 1; i < ranges.length; i += 2) frames.ends.push(ranges[i]);
    frames.complete = true;
    return frames;
  }

  /** The frames from `first` on (those before it the server has). */
  constructor(first = 0) {
    this.first = first;
    /** The stream so far, as Blobs (the browser may keep them on disk). */
    this.folded = [];
    this.parts = [];
    /** Where each frame from `first` on ends, counted from the start of `first`. */
    this.ends = [];
    /** How far into the input each frame from `first` on stands for (none for a prepared stream). */
    this.inputs = [];
    /** True once every frame is here. */
    this.complete = false;
    /** Why packing stopped short, if it did. */
    this.failure = null;
    this.waiting = [];
    /** How many frames before `first` the encoder checked against an import's (its `prefixCrc32`). */
    this.vouched = 0;
    /** The mode the packing checked the tables for (unknown for a stream from elsewhere). */
    this.mode = undefined;
    /**
     * The import these frames were last sent to, and how many of them went
     * out to it (acknowledged or not: a request cut short may still have
     * landed, and what landed is these frames either way).
     */
    this.sentTo = null;
    this.sent = 0;
    /** The server whose frame limit this stream was checked against (its header's max frame size). */
    this.limitCheckedAt = null;
  }

  /** Frames in the stream so far, those before `first` included. */
  get count() {
    return this.first + this.ends.length;
  }

  /** Stream bytes packed so far. */
  get size() {
    return this.bytesIn(this.count);
  }

  /** Stream bytes in frames `first..n`. */
  bytesIn(n) {
    return n > this.first ? this.ends[n - this.first - 1] : 0;
  }

  /** The stream so far as one Blob. */
  blob() {
    return new Blob([...this.folded, ...this.parts]);
  }

  /** The frames' byte ranges, `[start0, end0, start1, end1, ...]`. */
  ranges() {
    return Float64Array.from(this.ends.flatMap((end, i) => [i ? this.ends[i - 1] : 0, end]));
  }

  /** Frames `seq..seq + count` as one Blob. */
  slice(seq, count) {
    return this.blob().slice(this.bytesIn(seq), this.bytesIn(seq + count));
  }

  /** A packed chunk, the ends of the frames it completes, and their input positions. */
  add(chunk, frameEnds, frameInputs) {
    this.parts.push(new Blob([chunk]));
    if (this.parts.length >= FOLD_PARTS) this.folded.push(new Blob(this.parts.splice(0)));
    this.ends.push(...frameEnds);
    this.inputs.push(...frameInputs);
    this.wake();
  }

  /** How far into the input frames `first..n` stand for, if known. */
  inputIn(n) {
    return n > this.first ? (this.inputs[n - this.first - 1] ?? null) : null;
  }

  /** Packing ended: with every frame here, or with `failure`. */
  end(failure) {
    this.complete = !failure;
    this.failure = failure ?? null;
    this.wake();
  }

  /** Resolves once more frames are here or packing ended; rejects when `signal` aborts. */
  changed(signal) {
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal?.throwIfAborted();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  wake() {
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

/** "1 error", "2 errors": a report's errors in words. */
function errorCount(report) {
  return `${report.error_count} ${report.error_count === 1 ? 'error' : 'errors'}`;
}

function invalidSnapshot(report) {
  const error = new UploadError({
    code: 'InvalidSnapshot',
    message: `the snapshot has ${errorCount(report)}; nothing was imported`,
  });
  error.report = report;
  return error;
}

/**
 * The packed stream of `input` (docs/FORMAT.md) as a `ReadableStream` of
 * bytes: validated and packed in Web Workers, each chunk readable as soon
 * as it is packed. Takes the options of {@link prepareUpload}. When the
 * input has errors the stream errors with a `SnappackError` of code
 * `InvalidSnapshot` whose `report` lists them.
 */
export function pack(input, options) {
  let packing;
  let offset = 0;
  return new ReadableStream({
    start() {
      packing = startPacking(input, options);
    },
    async pull(controller) {
      const { frames } = packing;
      while (frames.size === offset && !frames.complete && !frames.failure) await frames.changed();
      const { failure } = frames;
      if (failure?.code === 'InvalidSnapshot') {
        throw Object.assign(
          new SnappackError('InvalidSnapshot', `the input has ${errorCount(failure.report)}; see report.errors`),
          { report: failure.report },
        );
      }
      if (failure) throw failure;
      if (frames.size === offset) {
        controller.close();
        return;
      }
      const end = frames.size;
      controller.enqueue(new Uint8Array(await frames.blob().slice(offset, end).arrayBuffer()));
      offset = end;
    },
    cancel(reason) {
      packing?.stop(reason);
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
 * Sends a packed stream to the server at `url` and resolves with the
 * server's answer to finish (`{ state: 'finished', tables }`). `prepared` is
 * what {@link prepareUpload} gave, or a {@link Packing} still under way:
 * nothing is sent before its tables are checked, then each frame goes out
 * as soon as it is packed. A stream from frame 0 whose frames are larger
 * than the server takes (its listing's `maxFrameSize`) is refused with
 * `FrameTooLarge` before an import is created. With `importId` it continues that import from
 * where the server stands, in its own mode (an import not open, or in
 * another `mode` than one given, rejects with `ImportNotOpen` or
 * `ModeMismatch`); a new import gets `mode` and `label` (up to 256 bytes,
 * e.g. a fingerprint of the file), by which `GET /api/imports` finds it.
 * Rejects with an {@link UploadError} (of code `InvalidSnapshot`, with the
 * `report`, when the packing finds errors: the import is cancelled, so
 * nothing of it lands), or with `signal.reason` when aborted (the import
 * stays open on the server, and packing goes on: continue with `importId`).
 */
export async function sendUpload(prepared, options) {
  if (prepared instanceof Packing) return sendFrames(prepared.frames, optionsOf(options));
  const { stream, frames, report } = prepared ?? {};
  // A prepared input with errors: refused as a Packing of it is, before any request.
  if (stream === null && report?.valid === false) throw invalidSnapshot(report);
  if (!(stream instanceof Blob) || !(frames instanceof Float64Array)) {
    throw new SnappackError('InvalidInput', 'sendUpload needs a Packing, or the result of prepareUpload for a valid input');
  }
  // One set of frames per prepared stream, which remembers what it sent where.
  let packed = preparedFrames.get(prepared);
  if (!packed) {
    packed = PackedFrames.whole(stream, frames, prepared.firstFrame);
    packed.vouched = vouchedFrames.get(prepared) ?? 0;
    packed.mode = checkedModes.get(prepared);
    preparedFrames.set(prepared, packed);
  }
  return sendFrames(packed, optionsOf(options));
}

/** Of a prepared stream: how many of the frames before it its packing checked against the import's. */
const vouchedFrames = new WeakMap();
/** Of a prepared stream: the mode its tables were checked for. */
const checkedModes = new WeakMap();
/** Of a prepared stream: its frames, as sent so far. */
const preparedFrames = new WeakMap();

/**
 * A continued import's frames that `frames` neither checked when packed
 * nor sent to it itself: refused, as they may be another input's.
 */
function unvouchedFrames(status, frames, importId) {
  const sent = frames.sentTo === importId ? frames.sent : 0;
  const vouched = Math.max(frames.vouched ?? 0, sent);
  if (!(status.nextSeq > vouched)) return null;
  const message =
    `import ${importId} has ${status.nextSeq} frames, which this packing neither checked nor sent: ` +
    'pack with the firstFrame and prefixCrc32 of its status (fetchImport), as upload() does';
  return new UploadError({ code: 'ResumeMismatch', message }, importId);
}

/** An import's label: a string of at most 256 bytes (the server's bound), checked before anything is packed or sent. */
function labelOption(given) {
  const label = stringOption('label', given);
  if (label !== undefined && new TextEncoder().encode(label).length > 256) {
    throw new SnappackError('InvalidOptions', 'option "label" must be at most 256 bytes (UTF-8)');
  }
  return label;
}

/** The options of {@link sendUpload}. */
const SEND_OPTIONS = ['url', 'token', 'mode', 'importId', 'label', 'framesPerRequest', 'onProgress', 'onImport', 'signal', 'timeout'];

/**
 * Sends `frames` (a {@link PackedFrames}), waiting for more while they are
 * packed. When packing finds errors, the import (if created) is cancelled.
 */
async function sendFrames(frames, options) {
  const misnamed = Object.keys(options).find((name) => !SEND_OPTIONS.includes(name));
  if (misnamed !== undefined) throw new SnappackError('InvalidOptions', `unknown option "${misnamed}"`);
  const { url, token, framesPerRequest = 4, onProgress, onImport, signal } = options;
  const mode = options.mode ?? undefined;
  checkHandlers(options, ['onProgress', 'onImport']);
  const importId = stringOption('importId', options.importId, true);
  const label = labelOption(options.label);
  const base = baseUrl(url);
  const auth = authorization(token);
  if (mode !== undefined && !CHOICES.mode.includes(mode)) {
    throw new SnappackError('InvalidOptions', `option "mode" must be one of ${CHOICES.mode.join(', ')}`);
  }
  // The tables were checked against the server's for the packing's mode: the import is in that one.
  if (mode !== undefined && frames.mode !== undefined && mode !== frames.mode) {
    throw new SnappackError('InvalidOptions', `option "mode" is ${mode}, but the input was packed and checked for ${frames.mode}: leave out mode, or pack in ${mode}`);
  }
  if (!Number.isSafeInteger(framesPerRequest) || framesPerRequest < 1) {
    throw new SnappackError('InvalidOptions', 'option "framesPerRequest" must be a whole number, 1 or more');
  }
  const timeout = timeoutOption(options.timeout);
  await mainThreadInstance();
  // The first frame comes only once the tables are checked.
  while (frames.ends.length === 0 && !frames.complete && !frames.failure) await frames.changed(signal);
  // A stream from its header on: its frames must be ones the server takes, or it would refuse them after the import is created.
  if (!frames.failure) await checkFrameLimit(frames, base, url, token, signal, timeout);
  const known = frames.complete ? frames.count : undefined;
  // The mode is a new import's (the packing's unless given); a continued one keeps its own.
  const machine = new UploadMachine(mode ?? frames.mode ?? 'requireEmpty', known, framesPerRequest, importId, label, frames.first);
  let packingDone = frames.complete;
  let announced = importId ?? null;
  // A continued import must be open, in `mode` if given: checked at the server's first status of it.
  let checked = !importId;
  const report = (state, extra) => {
    const acknowledged = machine.acknowledged;
    onProgress?.({
      state,
      importId: machine.id ?? null,
      framesSent: acknowledged,
      frames: frames.count,
      bytesSent: frames.bytesIn(acknowledged),
      bytesTotal: frames.bytesIn(frames.count),
      inputSent: frames.inputIn(acknowledged),
      packing: !frames.complete,
      ...extra,
    });
  };
  try {
    for (;;) {
      signal?.throwIfAborted();
      if (frames.failure) {
        // Nothing of an invalid snapshot may land; after other failures the import can be continued.
        if (machine.id && frames.failure.code === 'InvalidSnapshot') await cancelImport(url, base, auth, machine.id, timeout);
        if (frames.failure.code === 'ResumeMismatch') {
          const message = `import ${importId} cannot continue with this input: ${frames.failure.message}; continue it with that input, or upload without importId to start a new import`;
          throw new UploadError({ code: 'ResumeMismatch', message }, importId);
        }
        // The snapshot's errors: the import they stopped, cancelled, is named.
        const id = machine.id ?? announced;
        if (frames.failure instanceof UploadError && id && !frames.failure.importId) {
          const failure = new UploadError(frames.failure, id);
          failure.report = frames.failure.report;
          throw failure;
        }
        throw frames.failure;
      }
      if (!packingDone) {
        machine.addFrames(frames.count);
        if (frames.complete) {
          machine.packingDone();
          packingDone = true;
        }
      }
      const step = JSON.parse(machine.step());
      if (step.wait) {
        await frames.changed(signal);
        continue;
      }
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
      if (isFrames && machine.id) {
        // What this import may have of these frames, sent from here.
        if (frames.sentTo !== machine.id) frames.sent = 0;
        frames.sentTo = machine.id;
        frames.sent = Math.max(frames.sent, seq + n);
      }
      let answer;
      try {
        const headers = { Authorization: auth, 'Content-Type': isFrames ? 'application/octet-stream' : 'application/json' };
        const init = { method, headers, body: isFrames ? frames.slice(seq, n) : body };
        answer = await exchange(url, base + path, init, { signal, timeout });
      } catch (error) {
        if (!(error instanceof UploadError)) throw error;
        // No answer (none at all, or none in time): the machine retries.
        machine.onNetworkError(error.message);
      }
      if (answer) {
        // The only GET is the import's status.
        if (!checked && method === 'GET' && answer.status === 200) {
          checked = true;
          const status = parsedJson(answer.body);
          const refusal = notResumable(status, importId, mode)
            ?? notResumable(status, importId, frames.mode, 'pack the input in that mode to continue it')
            ?? unvouchedFrames(status, frames, importId);
          if (refusal) throw refusal;
        }
        machine.onResponse(answer.status, answer.body);
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
 * Refuses, before any import is created or a frame sent, a stream whose
 * header declares frames larger than the server at `base` takes (the
 * `maxFrameSize` of its table listing), which the server would refuse with
 * `FrameTooLarge`: a packing made without the server's listing as `target`.
 * Checked once per stream and server; a server that does not advertise its
 * limit (an older one) is not asked again, one that does not answer (or
 * fails) is left to the upload's own retries, one that refuses the listing
 * rejects the upload, and a stream continued from a later frame has
 * no header to check (its import took it).
 */
async function checkFrameLimit(frames, base, url, token, signal, timeout) {
  if (frames.first !== 0 || frames.ends.length === 0 || frames.limitCheckedAt === base) return;
  const declared = new DataView(await frames.slice(0, 1).slice(12, 16).arrayBuffer()).getUint32(0, true);
  let listing;
  try {
    listing = await fetchTables(url, token, { signal, timeout });
  } catch (error) {
    // A server that cannot be reached now, or fails, is retried as the
    // upload's own requests are; the limit is checked again at the next
    // call. A refusal (a wrong token, a URL that is not a snappack
    // server's) is the upload's answer.
    if (signal?.aborted || !(error instanceof UploadError && error.retryable)) throw error;
    return;
  }
  const limit = listing.maxFrameSize;
  if (Number.isSafeInteger(limit) && declared > limit) {
    const message =
      `this input was packed in frames of up to ${declared} bytes, but the server at ${url} takes frames of at most ${limit} bytes (its maxFrameSize): ` +
      'pack it again with the server\'s listing as target (startPacking(file, { target: await fetchTables(url, token) })), which packs frames the server takes, ' +
      `or with frameSize: ${limit} or less; nothing was sent`;
    throw new UploadError({ code: 'FrameTooLarge', message });
  }
  frames.limitCheckedAt = base;
}

/** JSON bytes as a value; null when they are not JSON. */
function parsedJson(bytes) {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Cancels import `id` on the server, as far as it can be reached in `timeout` ms: nothing of it may land. */
async function cancelImport(url, base, auth, id, timeout) {
  try {
    await exchange(url, `${base}/api/imports/${encodeURIComponent(id)}/cancel`, { method: 'POST', headers: { Authorization: auth } }, { timeout });
  } catch {
    // An import never finished is never imported; the server may drop it later.
  }
}

/**
 * Validates, packs and uploads `input` in one call, as `snappack upload`
 * does: what is known before the first document (tables, numbers, conflicts
 * with the server's tables in `mode`) is checked before anything is sent;
 * then each frame goes out as soon as it is packed. With `importId` it
 * continues that import, in its own mode (another `mode` is refused),
 * packing only the frames the server lacks. Rejects
 * with an UploadError of code `InvalidSnapshot` (and the report as `report`)
 * when the input has errors: an import already created for it is cancelled,
 * so nothing is imported.
 */
export async function upload(input, options) {
  const { url, token, mode, importId, label, framesPerRequest, onImport, onProgress, signal, frameSize, timeout, ...rest } = optionsOf(options);
  // Checked before any request; sendUpload checks the others.
  stringOption('importId', importId, true);
  timeoutOption(timeout);
  labelOption(label);
  checkHandlers({ onProgress, onImport, signal }, ['onProgress', 'onImport']);
  // The packing's own options too, before the first request (`level` is packing's alone).
  coreOptionsJson(Object.fromEntries(Object.entries(rest).filter(([name]) => name !== 'level')));
  // The server's listing: its tables (unless `target` gives others) and its frame limit.
  const listing = await fetchTables(url, token, { signal, timeout });
  const target = rest.target ? { ...rest.target, maxFrameSize: rest.target.maxFrameSize ?? listing.maxFrameSize } : listing;
  const status = importId ? await resumableImport(url, token, importId, mode, frameSize, signal, timeout) : null;
  // A continued import is checked and sent in its own mode, and packed in
  // its stream's frame size.
  const importMode = mode ?? status?.mode;
  const packing = startPacking(input, {
    ...rest,
    target,
    mode: importMode,
    frameSize: frameSize ?? status?.frameSize,
    firstFrame: Number.isSafeInteger(status?.nextSeq) ? status.nextSeq : 0,
    prefixCrc32: status?.prefixCrc32,
    signal,
    onProgress: onProgress && ((p) => onProgress({ state: 'packing', ...p })),
  });
  try {
    return await sendUpload(packing, { url, token, mode: importMode, importId, label, framesPerRequest, onImport, onProgress, signal, timeout });
  } finally {
    packing.stop();
  }
}
