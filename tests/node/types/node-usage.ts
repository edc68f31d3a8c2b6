// Type-checked by types.test.js against the package's Node types.
import { SnappackError, checkTarget, validate, validateFile, type Report, type TargetCheck } from 'snappack';
// @ts-expect-error: uploads are the browser entry's, not Node's
import { upload } from 'snappack';

export async function check(bytes: Uint8Array): Promise<number> {
  const report: Report = await validate(bytes, {
    fileName: 'snapshot.zip',
    mode: 'replace',
    maxErrors: 10,
    target: { tables: [{ name: 'users', number: 10001 }] },
    onProgress: ({ bytesRead, bytesTotal, documents }) => void [bytesRead / bytesTotal, documents],
    signal: AbortSignal.timeout(1000),
  });
  const fromFile = await validateFile('snapshot.zip', { format: 'zip' });
  await validateFile(new URL('./snapshot.zip', import.meta.url));
  const checked: TargetCheck = await checkTarget(fromFile, { target: { tables: [] }, mode: 'replaceAll' });
  if (!checked.exact || checked.errors.length > 0) return -3;
  const first = report.errors[0];
  if (first !== undefined && first.code === 'DuplicateId') return first.first_line ?? 0;
  try {
    // @ts-expect-error: not an import mode
    await validate(bytes, { mode: 'sideways' });
    // @ts-expect-error: a path is a string, not an input
    await validate('snapshot.zip');
  } catch (error) {
    if (error instanceof SnappackError && error.code === 'InvalidOptions') return -1;
  }
  // Built as the package builds its own: a code, a message, and a cause.
  const wrapped = new SnappackError('InvalidInput', 'cannot read the snapshot', { cause: new Error('EACCES') });
  // @ts-expect-error: the code comes first
  void new SnappackError('cannot read the snapshot');
  if (wrapped.code !== 'InvalidInput') return -2;
  return report.tables.length + fromFile.error_count + (typeof upload === 'function' ? 1 : 0);
}
