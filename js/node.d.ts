// Types of the `snappack` package in Node: validation (uploads are the
// browser entry's), plus validateFile.
import type { Report, ValidateOptions } from './index.js';

export type {
  Code,
  ErrorCode,
  Finding,
  Format,
  ImportMode,
  NumberSource,
  Progress,
  RemovedTable,
  Report,
  Schema,
  StorageSummary,
  TableSummary,
  TargetCheck,
  TargetCheckOptions,
  TargetTable,
  TargetTables,
  ValidateOptions,
} from './index.js';
export { SnappackError, checkTarget, validate } from './index.js';

/**
 * Validates the file at `path` (a path, or a `file:` URL such as
 * `pathToFileURL('snapshot.zip')` from node:url gives, as Node's fs takes them)
 * without reading it into memory: it is read a few MiB at a time, in a
 * worker thread. The file name gives the format unless `options.format`
 * does. A path that cannot be opened, a folder, or a URL of another scheme
 * rejects with `InvalidInput`.
 */
export declare function validateFile(path: string | URL, options?: ValidateOptions): Promise<Report>;
