// Types of the `snappack` package. The Report mirrors `src/report.rs`: it is
// the very JSON `snappack validate --json` prints (snake_case keys).

/** Input formats; by default the file name's extension decides. */
export type Format = 'zip' | 'jsonl' | 'json' | 'csv';

/** How an import treats tables that already exist on the target. */
export type ImportMode = 'requireEmpty' | 'append' | 'replace' | 'replaceAll';

/** Stable codes of findings; Convex's names where Convex has one. */
export type Code =
  | 'InvalidZip'
  | 'InvalidTableName'
  | 'InvalidComponentName'
  | 'InvalidComponentPath'
  | 'JsonInvalidRow'
  | 'InvalidConvexValue'
  | 'InvalidGeneratedSchema'
  | 'NotUtf8'
  | 'Utf8BomNotSupported'
  | 'JsonArrayTooLarge'
  | 'NotJson'
  | 'NotJsonArray'
  | 'CsvInvalidHeader'
  | 'CsvRowMissingFields'
  | 'CsvInvalidRow'
  | 'NotAnObject'
  | 'InvalidName'
  | 'TableExists'
  | 'DuplicateTableName'
  | 'InvalidId'
  | 'TableConflict'
  | 'TableNumberConflict'
  | 'TooManyTables'
  | 'InvalidStorageId'
  | 'DuplicateId'
  | 'DocumentExists'
  | 'ImportConflict'
  | 'InvalidIdError'
  | 'InvalidCreationTimeError'
  | 'InvalidDocumentError'
  | 'ValueTooLargeError'
  | 'Sha256Mismatch'
  | 'UnsupportedCompression'
  | 'DuplicateEntryName'
  | 'ReadFailed'
  | 'InvalidOptions'
  | 'SkippedSystemTable'
  | 'RepeatedTableEntry'
  | 'LegacyGeneratedSchema'
  | 'StorageFileMissing'
  | 'StorageFilesIgnored'
  | 'EntryIgnored'
  | 'TooManyErrors'
  | 'Cancelled'
  | 'ImportInvalidName'
  | 'UnassignedTableNumber'
  | 'SchemaTableMissing'
  | 'UnreadableCreationTime'
  | 'CsvOneColumn'
  | 'CsvDuplicateHeader'
  | 'CsvUnclosedQuote';

/** Where a table's number came from. */
export type NumberSource = 'tables' | 'id' | 'target' | 'unassigned';

/** One table of the input. */
export interface TableSummary {
  /** Component path (`""` for the root, `a/b` for nested components). */
  component: string;
  /** Table name (`_storage` for stored files' metadata). */
  name: string;
  /** Table number, when one is assigned. */
  number: number | null;
  /** Where the number came from. */
  number_source: NumberSource;
  /** Documents read. */
  documents: number;
  /** Uncompressed bytes of the table's document entries. */
  bytes: number;
  /** Archive entries that feed this table, in import order (absent when none). */
  entries?: string[];
  /** The `_tables` row that lists the table, if one does: where findings about its number point, and, for a table no entry feeds, every finding about it. */
  listed_at?: { entry: string; line: number };
}

/** Stored files found in the archive. */
export interface StorageSummary {
  /** Files with a valid id. */
  files: number;
  /** Their uncompressed bytes. */
  bytes: number;
}

/** One error or warning, with where it was found. */
export interface Finding {
  /** Stable code. */
  code: Code;
  /** What is wrong, in Convex's words where Convex has them. */
  message: string;
  /** Archive entry (or file name; `input` for bytes without one) it was found in. */
  entry: string | null;
  /** Table it concerns. */
  table: string | null;
  /** Component path of that table, when not the root (absent for the root). */
  component?: string;
  /** 1-based line (row) within the entry. */
  line: number | null;
  /** The field concerned, as a path from the document (`profile.tags[2]`), or a CSV column. */
  field?: string;
  /** The other line involved: the first occurrence of a duplicate id, the `_storage` row that declares a stored file's `sha256`, or, for a `TableNumberConflict` with another imported table, where that table's number comes from. */
  first_line?: number;
  /** The entry of `first_line`, when it is another entry (of the same table, a stored file's `_storage` row, or the other table's). */
  first_entry?: string;
  /** The start of the offending line (at most 120 bytes, then `...`). */
  excerpt?: string;
}

/** The result of validating one input: the JSON of `snappack validate --json`. */
export interface Report {
  /** True when there are no errors: Convex would import this input. */
  valid: boolean;
  /** The input's format. */
  format: string;
  /** Tables in import order. */
  tables: TableSummary[];
  /** Stored files. */
  storage: StorageSummary;
  /** Errors, in the order found (at most `maxErrors`). */
  errors: Finding[];
  /** Warnings: things Convex accepts but a user should know. */
  warnings: Finding[];
  /** Errors found in all, including those past the cap. */
  error_count: number;
  /** Warnings found in all, including those past the cap (the same `maxErrors`). */
  warning_count: number;
  /** Documents read in all tables. */
  documents: number;
  /** Uncompressed bytes read. */
  bytes: number;
}

/**
 * The target's active schema, as far as CSV imports need it: which top-level
 * fields are optional (an empty CSV cell then removes the field, as Convex does).
 */
export interface Schema {
  tables: Record<string, { fields: Record<string, { optional?: boolean }> }>;
}

/** One existing table of the target deployment. */
export interface TargetTable {
  /** Component path (`""`, the root, by default). */
  component?: string;
  name: string;
  number: number;
  /** Documents in it (0 by default). */
  documents?: number;
}

/** The target deployment's tables: numbers to reuse and conflicts to report before upload. */
export interface TargetTables {
  tables: TargetTable[];
  /**
   * The largest frame the server takes, when these are its tables as
   * {@link fetchTables} gives them: packing from frame 0 keeps frames no larger.
   */
  maxFrameSize?: number;
}

/** Progress of a validation. */
export interface Progress {
  /** Bytes of the input read so far. */
  bytesRead: number;
  /** The input's size in bytes. */
  bytesTotal: number;
  /** Documents read so far. */
  documents: number;
}

/** Options of {@link validate}. */
export interface ValidateOptions {
  /** The input's format; by default the file name's extension decides, else the first bytes. */
  format?: Format;
  /** Table name, for the single-table formats (JSONL, JSON array, CSV). */
  table?: string;
  /** Component path the import targets (`""`, the root, by default). */
  component?: string;
  /** The target's schema, for CSV empty-string remapping. */
  schema?: Schema;
  /** The target deployment's tables, to reuse their numbers and report conflicts for `mode`. */
  target?: TargetTables;
  /** The import mode to check against `target` (default `requireEmpty`). */
  mode?: ImportMode;
  /** Errors, and warnings, listed at most (default 1000); the rest are counted in `error_count` and `warning_count`. */
  maxErrors?: number;
  /**
   * The input's name, for its extension; a File's own name by default.
   * Bytes and Blobs have no name: without `fileName` or `format`, their first
   * bytes tell a ZIP or JSON (a CSV gets an `InvalidOptions` finding), and a
   * ZIP is validated by one worker.
   */
  fileName?: string;
  /**
   * Called about once per MiB read (per 256th of an input under 256 MiB,
   * at most once per 64 KiB) and once at the end (in browsers,
   * asynchronously from the worker). If it throws, validation stops and the
   * promise rejects with that exception.
   */
  onProgress?: (progress: Progress) => void;
  /** Cancels the validation; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Workers that validate a ZIP archive of 4 MiB or more together, each
   * checking some of its tables (1 to 16; default: the cores, at most 4).
   * The Report is the same as one worker's. Used for a Blob or File in
   * browsers (bytes there are validated by one), and in Node for files and
   * bytes alike (copied once, into memory the workers share).
   */
  workers?: number;
}

/** Codes of {@link SnappackError}. */
export type ErrorCode =
  | 'InvalidInput'
  | 'InvalidSnapshot'
  | 'InvalidOptions'
  /** Continuing an import (`prefixCrc32`): the input is not the one it was started with. */
  | 'ResumeMismatch'
  | 'Unsupported'
  | 'Panic'
  | 'WorkerFailed'
  | 'Internal';

/**
 * Thrown (as a rejection) for API misuse and internal failures. Problems of
 * the input itself are never thrown: they are findings in the Report.
 */
export declare class SnappackError extends Error {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown });
  readonly name: 'SnappackError';
  readonly code: ErrorCode;
  /** With `InvalidSnapshot` (from {@link pack}): the report listing the input's errors. */
  readonly report?: Report;
}

/**
 * Validates a Convex snapshot ZIP, or a single table as JSONL, a JSON array
 * or CSV, with Convex's import rules.
 *
 * In browsers it runs in a Web Worker; a File is read slice by slice there
 * and never loaded whole. In Node it runs in a worker thread.
 */
export declare function validate(
  input: Uint8Array | ArrayBuffer | ArrayBufferView | Blob | File,
  options?: ValidateOptions,
): Promise<Report>;

/**
 * Browsers only: fetches and compiles the WebAssembly module and fetches the
 * workers' scripts now, and keeps them for the page. The calls after it
 * start their workers from memory (`blob:` URLs, which a
 * Content-Security-Policy must allow as `worker-src blob:`), so validating a
 * file needs nothing more from the server that served the package, even
 * when it has gone away since. It starts one worker of each kind so, and
 * rejects with `WorkerFailed` when they cannot be loaded or started (under a
 * policy that refuses them, naming `worker-src`): calls then fetch them as
 * they would without it.
 */
export declare function preload(): Promise<void>;

/** Options of {@link checkTarget}. */
export interface TargetCheckOptions {
  /** The target deployment's tables (the server's, from {@link fetchTables}). */
  target: TargetTables;
  /** The import mode (default `requireEmpty`). */
  mode?: ImportMode;
}

/** What a validated input's tables meet in a target deployment in one import mode. */
export interface TargetCheck {
  /** The report's tables, numbered as the import numbers them (a table the input gives no number takes the target's: `number_source` `'target'`). */
  tables: TableSummary[];
  /**
   * The conflicts with the target's tables in the mode, as `validate` with
   * `target` and `mode` lists them (`TableExists`, `TableNumberConflict`,
   * `TableConflict`, `TooManyTables`); empty when there are none.
   */
  errors: Finding[];
  /**
   * False when a table numbered here holds documents whose `_id`s may not
   * have been checked against that number (the report gave the table no
   * number, or numbered it from another target): only `validate` with
   * `target` and `mode` lists the `ImportConflict`s they may meet.
   */
  exact: boolean;
  /**
   * What the import removes from the target's tables when it finishes:
   * in `replace` and `replaceAll`, each target table the input imports
   * that has documents (`replaced: true`: its documents go, the input's
   * come); in `replaceAll` also each user table of the target the input
   * lacks, in every component (`replaced: false`: deleted). Empty in
   * `requireEmpty` and `append`.
   */
  removed: RemovedTable[];
}

/** A target table an import removes documents from ({@link TargetCheck.removed}). */
export interface RemovedTable {
  /** Component path (`''` for the root). */
  component: string;
  name: string;
  number: number;
  /** Its documents, all of which go. */
  documents: number;
  /** True when the input's documents replace them; false when the table is deleted. */
  replaced: boolean;
}

/**
 * The table numbers and conflicts of a validated input with `options.target`
 * in `options.mode`, from its Report alone: the input is not read again, so
 * this is quick whatever the input's size. Give it the report of `validate`
 * without `target` (with one, that target's conflicts are among its
 * errors). Rejects with a {@link SnappackError}: `InvalidInput` for
 * something other than a Report, `InvalidOptions` for a missing or invalid
 * `target` or `mode`.
 */
export declare function checkTarget(report: Report, options: TargetCheckOptions): Promise<TargetCheck>;

/** The server's tables, as `GET /api/tables` lists them (the shape of {@link TargetTables}). */
export interface ServerTables {
  tables: Required<TargetTable>[];
  /**
   * The largest frame the server takes (its `--max-frame-size`), in bytes;
   * not said by servers older than it. As the `target` of
   * {@link startPacking}, frames are packed no larger.
   */
  maxFrameSize?: number;
}

/**
 * The server's active tables, to pass as the `target` option of
 * {@link validate} or {@link prepareUpload} (browsers only).
 */
export declare function fetchTables(
  url: string,
  token: string,
  options?: RequestOptions,
): Promise<ServerTables>;

/** Options of a single request to the server ({@link fetchTables}, {@link fetchImport}). */
export interface RequestOptions {
  /** Stops the request: the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * How long the request may take, to the end of the server's answer, in
   * milliseconds (default 300000: 5 minutes). A server that answers no
   * sooner (one that takes the connection and never answers, or stops
   * mid-answer) is given up on: an {@link UploadError} `NetworkError`
   * that names the server and the time waited.
   */
  timeout?: number;
}

/**
 * An import's status on the server (`GET /api/imports/{id}`, docs/PROTOCOL.md):
 * where the stream stands for an open import, and how a closed one ended.
 */
export type ImportStatus = OpenImportStatus | ClosedImportStatus;

interface ImportStatusBase {
  id: string;
  mode: ImportMode;
  /** The label given at creation. */
  label?: string;
  /**
   * What the client that created it said it targets (the component its
   * tables go into, a table file's table); absent when it said nothing, as
   * this package's uploads do.
   */
  target?: { component: string; table?: string };
  /** Open: true once the stream's end is in. Closed: true when the import finished. */
  complete: boolean;
}

/** An import that takes frames. */
export interface OpenImportStatus extends ImportStatusBase {
  state: 'open';
  /** The frame the server expects next. */
  nextSeq: number;
  /** Stream bytes the server has kept. */
  receivedBytes: number;
  /** The stream's max frame size, from its header, once frame 0 is in: packing must use the same. */
  frameSize?: number;
  /** CRC-32 of the uncompressed payloads of frames before `nextSeq`: the `prefixCrc32` to pack with when continuing. */
  prefixCrc32?: number;
  /**
   * Only when so: another import changed a table this one declared, so its
   * finish would be refused with this (continuing it rejects with it, and
   * so does an upload sending to it, at its next request). The server fails
   * such an import as soon as it finds it: `state` is then `failed`.
   */
  tableChanged?: { code: 'TableChanged'; message: string; component: string; table: string };
}

/** An import that takes no more frames. */
export interface ClosedImportStatus extends ImportStatusBase {
  state: 'finished' | 'failed' | 'cancelled';
  /** Why it failed, or why the server cancelled it (it expired, or its staging log no longer replays). */
  error?: string;
}

/**
 * The status of import `importId` on the server (browsers only): its
 * `nextSeq` is the `firstFrame` to pack from when continuing it.
 */
export declare function fetchImport(
  url: string,
  token: string,
  importId: string,
  options?: RequestOptions,
): Promise<ImportStatus>;

/** Options of {@link startPacking}: those of {@link validate}, and where to start. */
export interface PackOptions extends ValidateOptions {
  /**
   * The first frame to pack, when continuing an import whose server has the
   * frames before it (its `nextSeq`): those are walked and checked, but
   * neither compressed nor kept. Default 0.
   */
  firstFrame?: number;
  /**
   * With `firstFrame`, the import's `prefixCrc32` (from its status): packing
   * fails with `ResumeMismatch`, before a frame is handed out, when the
   * input's frames before `firstFrame` are not the ones the server has, that
   * is, when it is not the input the import was started with. `upload()`
   * passes it itself.
   */
  prefixCrc32?: number;
  /**
   * Deflate level of frames, 0 (store) to 9; default 5. Lower levels pack
   * faster and send more bytes (for fast links, such as a LAN).
   */
  level?: number;
  /**
   * Web Workers that share the compressing, 1 to 16; default: the cores, at
   * most 4 (1 at level 0). Each walks and checks the whole input and
   * compresses every `workers`-th frame; the stream is the same bytes.
   */
  workers?: number;
  /**
   * Bound of a frame's payload in bytes, 4096 (every table's declaration
   * fits a frame) to 16 MiB (what a server and `snappack unpack` read by
   * default); default 1 MiB. A
   * continued import must be packed with its stream's (its status's
   * `frameSize`); `upload()` takes that one itself. A new stream (from frame
   * 0) whose `target` is the server's listing ({@link fetchTables}), which
   * advertises the server's `maxFrameSize`, is packed in frames no larger:
   * this size and the default are capped at it.
   */
  frameSize?: number;
}

/** A validated and packed input, ready for {@link sendUpload}. */
export interface PreparedUpload {
  /** The validation report of the input (with `target`, its conflicts too). */
  report: Report;
  /** The packed stream; null when the report has errors. */
  stream: Blob | null;
  /** The frames' byte ranges in `stream`: `[start0, end0, start1, end1, ...]`; null with errors. */
  frames: Float64Array | null;
  /** The sequence number of the stream's first frame (`firstFrame`, 0 unless continuing). */
  firstFrame?: number;
}

/**
 * Validates and packs an input in a Web Worker, in one walk (browsers only).
 * Takes the options of {@link validate}; pass the server's tables as `target`
 * and the import mode as `mode`. Packing the same file with the same options
 * gives the same stream, so an interrupted import can be continued.
 */
export declare function prepareUpload(
  input: Uint8Array | ArrayBuffer | ArrayBufferView | Blob | File,
  options?: PackOptions,
): Promise<PreparedUpload>;

/**
 * An input being validated and packed in a Web Worker, from
 * {@link startPacking}: give it to {@link sendUpload} to send each frame as
 * soon as it is packed.
 */
export interface Packing {
  /** Settles once packing ended, as {@link prepareUpload} does. */
  readonly result: Promise<PreparedUpload>;
  /** Stops packing: the worker ends and `result` rejects with `reason`. */
  stop(reason?: unknown): void;
}

/**
 * Starts validating and packing an input in a Web Worker and returns at once
 * (browsers only). Takes the options of {@link prepareUpload}. What is known
 * before the first document (tables, numbers, conflicts with `target` in
 * `mode`) is checked first; {@link sendUpload} sends nothing before that.
 * Sending can be stopped and started again while packing goes on. Throws a
 * {@link SnappackError} when the options are misused.
 */
export declare function startPacking(
  input: Uint8Array | ArrayBuffer | ArrayBufferView | Blob | File,
  options?: PackOptions,
): Packing;

/**
 * The packed stream of an input (docs/FORMAT.md) as a `ReadableStream`:
 * validated and packed in a Web Worker, each chunk readable as soon as it is
 * packed (browsers only). Takes the options of {@link prepareUpload}. When
 * the input has errors the stream errors with a {@link SnappackError} of
 * code `InvalidSnapshot` carrying the report; what was read before is then
 * the start of an unfinished stream, to be discarded.
 */
export declare function pack(
  input: Uint8Array | ArrayBuffer | ArrayBufferView | Blob | File,
  options?: PackOptions,
): ReadableStream<Uint8Array>;

/**
 * Progress of an upload. A `packing` event (only from {@link upload}) is the
 * input's, as {@link Progress}: `bytesRead` of `bytesTotal` input bytes
 * packed, and `documents`, while the stream's final size is not known yet.
 * The other events are the stream's: `bytesSent` of `bytesTotal`.
 */
export interface UploadProgress {
  /** `packing` (only from {@link upload}), `sending`, `retrying` (backing off after a failure) or `finished`. */
  state: 'packing' | 'sending' | 'retrying' | 'finished';
  /** The import, once the server created it. */
  importId?: string | null;
  /**
   * Stream bytes the server has acknowledged, of those packed here: a
   * continued import's frames before `firstFrame`, which the server had, are
   * not counted (their frames are, in `framesSent` and `frames`).
   */
  bytesSent?: number;
  /**
   * While `packing`: the input's size. Otherwise the size of the stream
   * packed here (while it is still packed: what is packed so far).
   */
  bytesTotal?: number;
  /**
   * Input bytes whose frames the server has acknowledged: how far into the
   * input the packing walk was when the last of them was packed (within
   * about 1 MiB), for a bar over the whole input while the stream's size is
   * not known yet. Null before the first frame packed here is acknowledged,
   * and for a prepared stream (`bytesSent` of `bytesTotal` tells).
   */
  inputSent?: number | null;
  /** Frames acknowledged, and in all (so far, while the stream is still packed), counted from frame 0. */
  framesSent?: number;
  frames?: number;
  /** True while the stream is still being packed ({@link startPacking}, {@link upload}). */
  packing?: boolean;
  /** While `retrying`: the wait before the next attempt. */
  retryInMs?: number;
  /** While `packing`: the input bytes packed so far, and the documents in them. */
  bytesRead?: number;
  documents?: number;
}

/** Options of {@link sendUpload}. */
export interface SendOptions {
  /** The server's base URL, e.g. `https://imports.example.com`. */
  url: string;
  /** The server's token. */
  token: string;
  /**
   * A new import's mode: the one the packing checked the tables for, which
   * is its default; another is refused (`InvalidOptions`). A continued
   * import keeps its own, which must be the packing's (`ModeMismatch`).
   */
  mode?: ImportMode;
  /**
   * Continue this import instead of creating one. It must be open, and in
   * `mode` when given: else the upload rejects with an {@link UploadError}
   * of code `UnknownImport` (the server has no such import), `ImportNotOpen` (finished, failed or cancelled),
   * `ModeMismatch`, or with `upload()` and another `frameSize` than the
   * import's, `FrameSizeMismatch`; and nothing is sent. An input whose
   * frames before the import's `nextSeq` are not the ones the server has
   * (packed with the import's `prefixCrc32`) rejects with `ResumeMismatch`
   * before a frame is sent.
   */
  importId?: string;
  /** A new import's label (up to 256 bytes, e.g. a fingerprint of the file), listed by `GET /api/imports`. */
  label?: string;
  /** Frames per request (default 4). */
  framesPerRequest?: number;
  /** Called with the import's id as soon as the server created it (store it to resume later). */
  onImport?: (importId: string) => void;
  /** Called after every answer and before every retry. */
  onProgress?: (progress: UploadProgress) => void;
  /** Stops sending; the import stays open on the server, to be continued by its id. */
  signal?: AbortSignal;
  /**
   * How long each request may take, to the end of the server's answer, in
   * milliseconds (default 300000: 5 minutes; a request carries up to
   * `framesPerRequest` frames, and a large import's finish is slow). One
   * that takes longer (a server that takes the connection and never
   * answers, or stops mid-answer) counts as a network error: the upload
   * tries again as for any other, and gives up after its retries with a
   * `NetworkError` that names the server and the time waited.
   */
  timeout?: number;
}

/** One table of a finished import. */
export interface ImportedTable {
  component: string;
  name: string;
  number: number;
  documents: number;
  appended: boolean;
}

/** The server's answer to finish. */
export interface FinishedImport {
  state: 'finished';
  tables: ImportedTable[];
}

/**
 * Sends a packed stream to `snappack serve` (docs/PROTOCOL.md), with the
 * core's upload state machine: retries with backoff, resumes from the
 * server's sequence number (browsers only). Given a {@link Packing} still
 * under way, it sends nothing before the tables are checked, then each frame
 * as soon as it is packed; when packing finds errors it rejects with an
 * {@link UploadError} of code `InvalidSnapshot` and cancels the import.
 * A stream from frame 0 is checked first against the server's frame limit
 * (the `maxFrameSize` of `GET /api/tables`): frames packed larger (without
 * the server's listing as `target`) reject with `FrameTooLarge`, naming
 * both sizes, before an import is created.
 * Aborting `signal` stops sending only: call it again (with `importId`) to
 * go on.
 */
export declare function sendUpload(prepared: PreparedUpload | Packing, options: SendOptions): Promise<FinishedImport>;

/**
 * Validates against the server's tables, packs and uploads in one call
 * (browsers only), as `snappack upload` does: what is known before the first
 * document (tables, numbers, conflicts with the server's tables in `mode`) is
 * checked before anything is sent, then each frame is sent as soon as it is
 * packed. With `importId` it continues that import, in its own mode (another
 * `mode` is refused), packing only the frames the server lacks. Rejects with an {@link UploadError} of code
 * `InvalidSnapshot` (with the `report`) when the input has errors; an import
 * already created for it is cancelled, so nothing is imported.
 */
export declare function upload(
  input: Uint8Array | ArrayBuffer | ArrayBufferView | Blob | File,
  options: SendOptions & Omit<PackOptions, 'onProgress' | 'signal' | 'firstFrame' | 'prefixCrc32'>,
): Promise<FinishedImport>;

/** Why an upload stopped: the server's refusal, or no answer. */
export declare class UploadError extends Error {
  /**
   * `failure` is an error body of the server (docs/PROTOCOL.md: `code`,
   * `message`, and where: `component`, `table`, `line`, `field`, `seq`) with
   * the HTTP `status`; `importId` the import it is about, if any.
   */
  constructor(
    failure: {
      code: string;
      message: string;
      status?: number | null;
      component?: string;
      table?: string | null;
      line?: number | null;
      field?: string | null;
      seq?: number | null;
    },
    importId?: string | null,
  );
  readonly name: 'UploadError';
  /**
   * The server's code (`DuplicateId`, `TableExists`, `Unauthorized`, ...), `NetworkError`, `Protocol`,
   * `InvalidSnapshot`, or for `importId`: `UnknownImport`, `ImportNotOpen`, `ModeMismatch`, `FrameSizeMismatch`, `ResumeMismatch`.
   */
  readonly code: string;
  /** HTTP status, when the server answered. */
  readonly status: number | null;
  readonly component: string;
  readonly table: string | null;
  /** 1-based document number within the table. */
  readonly line: number | null;
  /** The field concerned, as a path from the document (`profile.tags[2]`). */
  readonly field: string | null;
  /** Frame sequence number. */
  readonly seq: number | null;
  /** The import, if it was created. */
  readonly importId: string | null;
  /** True when trying again later may succeed: the server could not be reached (`NetworkError`) or failed (5xx). */
  readonly retryable: boolean;
  /** With `InvalidSnapshot`: the report. */
  readonly report?: Report;
}
