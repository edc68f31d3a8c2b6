// Type-checked by types.test.js against the package's browser types.
import { validate, type Finding, type Progress } from 'snappack';

export async function check(file: File, onProgress: (p: Progress) => void): Promise<Finding[]> {
  const report = await validate(file, { table: 'users', schema: { tables: {} }, onProgress });
  // @ts-expect-error: validateFile is Node's only
  void (await import('snappack')).validateFile;
  return [...report.errors, ...report.warnings];
}
