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
 * Validates the file at `path` without reading it into memory: it is read
 * a few MiB at a time, in a worker thread. The file name gives the format
 * unless `options.format` does. A path that cannot be opened, or a folder,
 * rejects with `InvalidInput`.
 */
export declare function validateFile(path: string, options?: ValidateOptions): Promise<Report>;
