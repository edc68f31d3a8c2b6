// Type-checked by types.test.js against the package's browser types.
import { checkTarget, fetchImport, fetchTables, pack, preload, sendUpload, startPacking, upload, validate, UploadError, type Finding, type Progress } from 'snappack';

export async function check(file: File, onProgress: (p: Progress) => void): Promise<Finding[]> {
  const loaded: void = await preload();
  void loaded;
  const report = await validate(file, { table: 'users', schema: { tables: {} }, onProgress });
  // @ts-expect-error: validateFile is Node's only
  void (await import('snappack')).validateFile;
  return [...report.errors, ...report.warnings];
}

/** Sends each frame as soon as it is packed; pausing stops sending only. */
export async function send(file: File, url: string, token: string, pause: AbortSignal, importId?: string): Promise<number> {
  const status = importId ? await fetchImport(url, token, importId) : null;
  const firstFrame = status?.state === 'open' ? status.nextSeq : 0;
  const frameSize = status?.state === 'open' ? status.frameSize : undefined;
  const packing = startPacking(file, { target: await fetchTables(url, token), mode: 'append', firstFrame, frameSize, level: 1 });
  try {
    const finished = await sendUpload(packing, {
      url,
      token,
      mode: 'append',
      importId,
      signal: pause,
      onProgress: ({ bytesSent, bytesTotal, packing: stillPacking }) => void [bytesSent, bytesTotal, stillPacking],
    });
    // Only an open import has a next frame.
    // @ts-expect-error: a finished, failed or cancelled import has no nextSeq
    void (status && status.nextSeq + 1);
    const prepared = await packing.result;
    // @ts-expect-error: a Packing's result is not itself sendable without a stream
    void sendUpload(prepared.report, { url, token });
    return finished.tables.length + (prepared.stream?.size ?? 0);
  } finally {
    packing.stop();
  }
}

/** The packed stream itself, at a level and from a frame, as prepareUpload takes them. */
export function packed(file: File): ReadableStream<Uint8Array> {
  return pack(file, { level: 1, firstFrame: 0, workers: 2 });
}

/** Conflicts of a validated file for each mode, the file not read again. */
export async function conflicts(report: Awaited<ReturnType<typeof validate>>, url: string, token: string): Promise<string[]> {
  const target = await fetchTables(url, token);
  const checked = await checkTarget(report, { target, mode: 'append' });
  const numbers = checked.tables.map((t) => t.number ?? 0);
  // @ts-expect-error: the target is required
  void checkTarget(report, { mode: 'replace' });
  // @ts-expect-error: not an import mode
  void checkTarget(report, { target, mode: 'sideways' });
  return checked.exact ? checked.errors.map((e) => `${e.code} ${numbers.length}`) : [];
}

/** upload() in one call: it reads the import's first frame and prefixCrc32 itself. */
export async function uploadAll(file: File, url: string, token: string, importId: string): Promise<number> {
  const finished = await upload(file, { url, token, importId, level: 1, frameSize: 1 << 20, workers: 2 });
  // @ts-expect-error: upload() takes the import's prefixCrc32 from its status
  void upload(file, { url, token, importId, prefixCrc32: 1 });
  // @ts-expect-error: and its first frame
  void upload(file, { url, token, importId, firstFrame: 1 });
  return finished.tables.length;
}

/** An UploadError made as the package makes them, from a server's error body (a stand-in for a server in a test, say). */
export function refusal(): UploadError {
  const error = new UploadError({ code: 'DuplicateId', message: 'duplicate', status: 422, table: 'users', line: 3, seq: 0 }, 'abc');
  // @ts-expect-error: it takes the server's error body, not a message
  void new UploadError('refused');
  return error;
}
