// Types of the `snappack` package in Node: the common API plus validateFile.
import type { Report, ValidateOptions } from './index.js';

export * from './index.js';

/**
 * Validates the file at `path` without reading it into memory: it is read
 * a few MiB at a time. The file name gives the format unless
 * `options.format` does.
 */
export declare function validateFile(path: string, options?: ValidateOptions): Promise<Report>;
