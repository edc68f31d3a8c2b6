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
  | 'ReadFailed'
  | 'InvalidOptions'
  | 'SkippedSystemTable'
  | 'RepeatedTableEntry'
  | 'LegacyGeneratedSchema'
  | 'StorageFileMissing'
  | 'StorageFilesIgnored'
  | 'TooManyErrors';

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
  /** Archive entry (or file name) it was found in. */
  entry: string | null;
  /** Table it concerns. */
  table: string | null;
  /** Component path of that table, when not the root (absent for the root). */
  component?: string;
  /** 1-based line (row) within the entry. */
  line: number | null;
  /** The other line involved (the first occurrence of a duplicate id). */
  first_line?: number;
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
  /** Documents read in all tables. */
  documents: number;
  /** Uncompressed bytes read. */
  bytes: number;
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
  /** The input's format; by default the file name's extension decides. */
  format?: Format;
  /** Table name, for the single-table formats (JSONL, JSON array, CSV). */
  table?: string;
  /** Component path the single table belongs to (`""`, the root, by default). */
  component?: string;
  /** A schema for CSV values, as the core's `Options.schema` takes it. */
  schema?: unknown;
  /** The target deployment's existing tables, as the core's `Options.target` takes it. */
  target?: unknown;
  /** The import mode to check against `target` (default `requireEmpty`). */
  mode?: ImportMode;
  /** Errors listed at most; the rest are counted in `error_count`. */
  maxErrors?: number;
  /** The input's name, for its extension; a File's own name by default. */
  fileName?: string;
  /**
   * Called about once per MiB read and once at the end. If it throws,
   * validation stops and the promise rejects with that exception.
   */
  onProgress?: (progress: Progress) => void;
  /** Cancels the validation; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Codes of {@link SnappackError}. */
export type ErrorCode =
  | 'InvalidInput'
  | 'InvalidOptions'
  | 'Unsupported'
  | 'Panic'
  | 'WorkerFailed'
  | 'Internal';

/**
 * Thrown (as a rejection) for API misuse and internal failures. Problems of
 * the input itself are never thrown: they are findings in the Report.
 */
export declare class SnappackError extends Error {
  readonly name: 'SnappackError';
  readonly code: ErrorCode;
}

/**
 * Validates a Convex snapshot ZIP, or a single table as JSONL, a JSON array
 * or CSV, with Convex's import rules.
 *
 * In browsers it runs in a Web Worker; a File is read slice by slice there
 * and never loaded whole. In Node it runs in the calling thread.
 */
export declare function validate(
  input: Uint8Array | ArrayBuffer | ArrayBufferView | Blob | File,
  options?: ValidateOptions,
): Promise<Report>;
