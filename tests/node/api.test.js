// The package's API contract in Node: input kinds, progress, cancellation,
// errors with codes for misuse, and a panic that rejects without breaking
// later calls.

import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { openAsBlob, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';

import { SnappackError, checkTarget, validate, validateFile } from 'snappack';

// Internal, not exported by the package: a worker's run of a request, to provoke a panic.
import { inWorker } from '../../pkg/node-runner.js';

import { ROOT, gen, scratch, sortedJson } from './helpers.js';

const dir = scratch();
const archive = join(dir, 'snapshot.zip');
gen(archive, { tables: 3, totalDocuments: 30000, compressionLevel: 1, faults: ['duplicateId'] });
const bytes = new Uint8Array(readFileSync(archive));

test('every input kind gives the same report', async () => {
  const want = sortedJson(await validate(bytes, { fileName: 'snapshot.zip' }));
  const copy = bytes.slice();
  const inputs = [
    copy.buffer,
    new DataView(copy.buffer),
    Buffer.from(copy),
    new Blob([copy]),
    new File([copy], 'snapshot.zip'),
  ];
  for (const input of inputs) {
    const fileName = input instanceof File ? undefined : 'snapshot.zip';
    assert.equal(sortedJson(await validate(input, { fileName })), want, input.constructor.name);
  }
  assert.equal(sortedJson(await validateFile(archive)), want);
});

test('validateFile takes a file: URL as Node\'s fs does, named by its path, and refuses another scheme', async () => {
  const want = sortedJson(await validateFile(archive));
  assert.equal(sortedJson(await validateFile(pathToFileURL(archive))), want);
  // The format comes from the file's name, decoded from the URL.
  const rows = join(dir, 'two rows%.jsonl');
  writeFileSync(rows, '{"a":1}\nnot json\n');
  const report = await validateFile(pathToFileURL(rows), { table: 'rows' });
  assert.equal(report.format, 'jsonl');
  assert.deepEqual(report.tables[0].entries, ['two rows%.jsonl']);
  assert.deepEqual(report.errors.map((e) => [e.code, e.line]), [['JsonInvalidRow', 2]]);
  for (const [url, says] of [
    [new URL('https://example.com/snapshot.zip'), /^path must be a file path or a file: URL, not a https: URL/],
    [new URL('file://elsewhere/snapshot.zip'), /^file:\/\/elsewhere\/snapshot\.zip names no file here: /],
    [5, /^path must be a string \(a file path\) or a file: URL$/],
  ]) {
    await assert.rejects(validateFile(url), (error) => {
      assert.equal(error.name, 'SnappackError');
      assert.equal(error.code, 'InvalidInput');
      assert.match(error.message, says);
      return true;
    });
  }
});

test('bytes and Blobs without a name are told by their first bytes', async () => {
  const named = await validate(bytes, { fileName: 'snapshot.zip' });
  const nameless = await validate(bytes);
  assert.equal(nameless.format, 'zip');
  assert.equal(nameless.documents, named.documents);
  assert.deepEqual(nameless.errors.map((e) => e.code), named.errors.map((e) => e.code));
  const lines = await validate(new Blob(['{"a":1}\n{"a":2}\n']), { table: 'people' });
  assert.equal(lines.format, 'jsonl');
  assert.equal(lines.documents, 2);
  assert.ok(lines.valid, JSON.stringify(lines.errors));
  // CSV has no sign of its own: a finding says what to give.
  const csv = await validate(new TextEncoder().encode('a,b\n1,2\n'), { table: 't' });
  assert.equal(csv.errors[0].code, 'InvalidOptions');
  assert.match(csv.errors[0].message, /the input \(it has no name\).*give a format/);
  assert.equal((await validate(new TextEncoder().encode('a,b\n1,2\n'), { table: 't', format: 'csv' })).valid, true);
});

test('a finding names the entry, the line and the field', async () => {
  const lines = '{"a":1}\n{"profile":{"tags":["x",{"$kind":1}]}}\n';
  const report = await validate(new TextEncoder().encode(lines), { fileName: 'people.jsonl', table: 'people' });
  assert.equal(report.valid, false);
  const [finding] = report.errors;
  assert.deepEqual(
    [finding.code, finding.entry, finding.line, finding.field],
    ['InvalidConvexValue', 'people.jsonl', 2, 'profile.tags[1]["$kind"]'],
  );
});

test('progress rises to the input size and the documents read', async () => {
  const seen = [];
  const report = await validateFile(archive, { onProgress: (p) => seen.push(p) });
  assert.ok(seen.length >= 3, `${seen.length} progress calls`);
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i].bytesRead >= seen[i - 1].bytesRead);
    assert.ok(seen[i].documents >= seen[i - 1].documents);
  }
  const last = seen.at(-1);
  assert.deepEqual(last, { bytesRead: bytes.length, bytesTotal: bytes.length, documents: report.documents });
});

test('an abort signal cancels, before and during the run', async () => {
  const before = new AbortController();
  before.abort(new Error('not wanted'));
  await assert.rejects(validate(bytes, { fileName: 'snapshot.zip', signal: before.signal }), { message: 'not wanted' });

  const during = new AbortController();
  let calls = 0;
  await assert.rejects(
    validateFile(archive, {
      signal: during.signal,
      onProgress: () => {
        calls += 1;
        if (calls === 2) during.abort();
      },
    }),
    { name: 'AbortError' },
  );
  assert.equal(calls, 2);
});

test('an exception from onProgress stops validation and rejects with it', async () => {
  const stop = new Error('enough');
  await assert.rejects(
    validate(bytes, {
      fileName: 'snapshot.zip',
      onProgress: () => {
        throw stop;
      },
    }),
    (error) => error === stop,
  );
});

test('misuse rejects with a SnappackError and a code', async () => {
  const cases = [
    [() => validate('snapshot.zip'), 'InvalidInput'],
    [() => validate(bytes, { mode: 'sideways' }), 'InvalidOptions'],
    [() => validate(bytes, { maxErrors: -1 }), 'InvalidOptions'],
    [() => validate(bytes, { tables: 'users' }), 'InvalidOptions'],
    [() => validate(bytes, { onProgress: 'often' }), 'InvalidOptions'],
    [() => validate(bytes, { signal: {} }), 'InvalidOptions'],
    [() => validate(bytes, 'options'), 'InvalidOptions'],
    [() => validateFile(join(dir, 'not-here.zip')), 'InvalidInput'],
    [() => validateFile(dir), 'InvalidInput'],
    [() => validateFile(archive, { fileName: 5 }), 'InvalidOptions', 'fileName must be a string'],
    [() => validate(bytes, { fileName: {} }), 'InvalidOptions', 'fileName must be a string'],
    [() => validate(bytes, { mode: 'sideways' }), 'InvalidOptions', 'option "mode" must be one of requireEmpty, append, replace, replaceAll'],
    [() => validate(bytes, { format: 5 }), 'InvalidOptions', 'option "format" must be one of zip, jsonl, json, csv'],
    [() => validate(bytes, { maxErrors: NaN }), 'InvalidOptions', 'option "maxErrors" must be a whole number, 0 or more'],
    [() => validate(bytes, { maxErrors: 10n }), 'InvalidOptions', 'option "maxErrors" must be a whole number, 0 or more'],
    [() => validate(bytes, { table: 7 }), 'InvalidOptions', 'option "table" must be a string'],
    [() => validate(bytes, { schema: circular() }), 'InvalidOptions'],
    [() => validate(detached()), 'InvalidInput', 'input is a detached ArrayBuffer (it was transferred elsewhere)'],
  ];
  for (const [call, code, message] of cases) {
    await assert.rejects(call(), (error) => {
      assert.ok(error instanceof SnappackError, String(error));
      assert.equal(error.code, code, error.message);
      if (message) assert.equal(error.message, message);
      return true;
    });
  }
});

test('a target or schema of the wrong shape is refused naming the table and field, not a place in JSON the user never wrote', async () => {
  const report = await validate(bytes, { fileName: 'snapshot.zip', maxErrors: 0 });
  const target = (what) => `option "target": ${what} (the server's tables, as fetchTables gives them: { tables: [{ component, name, number, documents }] })`;
  const schema = (what) => `option "schema": ${what} (e.g. { tables: { users: { fields: { nick: { optional: true } } } } })`;
  const users = { name: 'users', number: 10001 };
  const cases = [
    [{ target: { tables: {} } }, target('tables must be an array')],
    [{ target: { tables: [users, null] } }, target('tables[1] must be an object, not null')],
    [{ target: { tables: [{ number: 10001 }] } }, target('tables[0].name must be a string, and is missing')],
    [{ target: { tables: [users, { name: 'posts', number: '10002' }] } }, target('tables[1].number (table "posts") must be a table number, a whole number up to 4294967295, not "10002"')],
    [{ target: { tables: [{ name: 'posts' }] } }, target('tables[0].number (table "posts") must be a table number, a whole number up to 4294967295, and is missing')],
    [{ target: { tables: [{ ...users, number: 2 ** 32 }] } }, target('tables[0].number (table "users") must be a table number, a whole number up to 4294967295, not 4294967296')],
    [{ target: { tables: [{ ...users, component: null }] } }, target('tables[0].component (table "users") must be a string (a component path, \'\' for the root), not null')],
    [{ target: { tables: [{ ...users, documents: 1.5 }] } }, target('tables[0].documents (table "users") must be a whole number, 0 or more, not 1.5')],
    [{ schema: { users: {} } }, schema('tables must be an object of tables by name, and is missing')],
    [{ schema: { tables: { users: { name: { optional: true } } } } }, schema('tables["users"].fields must be an object of fields by name, and is missing')],
    [{ schema: { tables: { users: { fields: { nick: true } } } } }, schema('tables["users"].fields["nick"] must be an object { optional }, not true')],
    [{ schema: { tables: { users: { fields: { nick: { optional: 'yes' } } } } } }, schema('tables["users"].fields["nick"].optional must be true or false, not "yes"')],
  ];
  for (const [options, message] of cases) {
    const calls = [validate(bytes, { fileName: 'snapshot.zip', ...options })];
    if (options.target) calls.push(checkTarget(report, options));
    for (const call of calls) {
      await assert.rejects(call, (error) => {
        assert.ok(error instanceof SnappackError, String(error));
        assert.equal(error.code, 'InvalidOptions');
        assert.equal(error.message, message);
        return true;
      });
    }
  }
  // What the types allow is taken: a table's component and documents may be left out, a field's optional too.
  const taken = await validate(bytes, { fileName: 'snapshot.zip', maxErrors: 0, target: { tables: [users] }, schema: { tables: { users: { fields: { nick: {} } } } } });
  assert.equal(taken.format, 'zip');
});

function circular() {
  const schema = { tables: {} };
  schema.self = schema;
  return schema;
}

function detached() {
  const buffer = new ArrayBuffer(8);
  structuredClone(buffer, { transfer: [buffer] });
  return buffer;
}

test('a Blob too large for one buffer rejects with InvalidInput pointing to validateFile', async () => {
  // WebAssembly reads bytes in memory with 32-bit offsets: 4 GiB is one too
  // many. Blobs that say they are that large or larger, or whose bytes do
  // not fit (Node 20's openAsBlob gives a 4.3 GB file the size modulo 2^32,
  // and its bytes then fail so), stand in for reading one.
  class Huge extends Blob {
    get size() {
      return 2 ** 32;
    }
  }
  class Unfit extends Blob {
    arrayBuffer() {
      return Promise.reject(new RangeError('Invalid typed array length: undefined'));
    }
  }
  for (const blob of [new Huge([bytes]), new Unfit([bytes])]) {
    await assert.rejects(validate(blob, { fileName: 'huge.zip' }), (error) => {
      assert.equal(error.name, 'SnappackError');
      assert.equal(error.code, 'InvalidInput');
      assert.match(error.message, /validateFile\(path\)/);
      return true;
    });
  }
});

test('a Blob whose file changed or went since it was made is a ReadFailed finding saying so, as in browsers, not a rejection', async () => {
  for (const [name, change] of [['changed.zip', (path) => writeFileSync(path, 'another file')], ['gone.zip', (path) => unlinkSync(path)]]) {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    const blob = await openAsBlob(path);
    change(path);
    for (const workers of [1, 3]) {
      const report = await validate(blob, { fileName: name, workers });
      assert.equal(report.valid, false);
      assert.deepEqual(report.errors.map((e) => e.code), ['ReadFailed'], JSON.stringify(report.errors));
      assert.match(
        report.errors[0].message,
        /^cannot read the input: the Blob could not be read \(NotReadableError: .*\): a Blob of a file, from fs\.openAsBlob, cannot be read once the file has changed or gone$/,
      );
      assert.equal(report.error_count, 1);
    }
  }
});

test('a null option is one not given, handlers and signals included', async () => {
  const plain = await validate(bytes, { fileName: 'snapshot.zip' });
  const nulls = await validate(bytes, { fileName: 'snapshot.zip', onProgress: null, signal: null, mode: null, workers: null });
  assert.deepEqual(nulls, plain);
});

test('4 GiB of bytes in memory reject with InvalidInput, not a report of nothing', async () => {
  // Untouched, the zeroed pages take no memory.
  const huge = new Uint8Array(2 ** 32);
  for (const workers of [1, 2]) {
    await assert.rejects(validate(huge, { format: 'jsonl', table: 't', workers }), (error) => {
      assert.equal(error.code, 'InvalidInput');
      assert.match(error.message, /4294967296 bytes; bytes in memory may be at most 4 GiB - 1/);
      return true;
    });
  }
});

test('a maxErrors past what wasm counts to lists every error, as the CLI does', async () => {
  const huge = await validate(bytes, { fileName: 'snapshot.zip', maxErrors: 1e12 });
  assert.deepEqual(huge, await validate(bytes, { fileName: 'snapshot.zip' }));
});

test('an option no worker could be sent rejects and leaves the process free to exit', () => {
  const script = `import { validateFile } from 'snappack';
    const error = await validateFile(${JSON.stringify(archive)}, { fileName: Symbol('x') }).catch((e) => e);
    console.log(error.name, error.code);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 8000 });
  assert.equal(child.signal, null, 'the process did not exit: a worker was left holding it');
  assert.equal(child.stdout.trim(), 'SnappackError InvalidOptions', child.stderr);
});

test('an async onProgress that rejects stops validation and rejects with its error', async () => {
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const boom = new Error('async boom');
    await assert.rejects(
      validate(bytes, { fileName: 'snapshot.zip', onProgress: async () => { throw boom; } }),
      (error) => error === boom,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

test('findings about the input are in the report, never thrown', async () => {
  const report = await validate(new TextEncoder().encode('not a zip at all'), { fileName: 'x.zip' });
  assert.equal(report.valid, false);
  assert.equal(report.errors[0].code, 'InvalidZip');
  // A name that says nothing: the first bytes do, or a finding says to give the format.
  assert.equal((await validate(bytes, { fileName: 'snapshot.bin' })).format, 'zip');
  const unknown = await validate(new TextEncoder().encode('a,b\n'), { fileName: 'table.txt', table: 't' });
  assert.equal(unknown.errors[0].code, 'InvalidOptions');
  assert.match(unknown.errors[0].message, /cannot tell the format of 'table.txt'/);
  // With the format given, the name is not needed.
  assert.equal((await validate(bytes, { format: 'zip' })).error_count, 1);
});

test('a panic rejects with code Panic, and the next call works', async () => {
  const quiet = console.error;
  console.error = () => {};
  try {
    await assert.rejects(inWorker({ type: 'panic', message: 'on purpose' }, {}), (error) => {
      assert.ok(error instanceof SnappackError);
      assert.equal(error.code, 'Panic');
      assert.match(error.message, /on purpose/);
      return true;
    });
  } finally {
    console.error = quiet;
  }
  const report = await validate(bytes, { fileName: 'snapshot.zip' });
  assert.equal(report.error_count, 1);
});

test('a run leaves the event loop free: timers fire and can abort it', async () => {
  // In the calling thread, the run would end before any timer fired.
  const running = validateFile(archive);
  const first = await Promise.race([
    new Promise((resolve) => setImmediate(() => resolve('timer'))),
    running.then(() => 'report'),
  ]);
  assert.equal(first, 'timer');
  assert.equal((await running).documents, 30000);

  const controller = new AbortController();
  const aborted = validateFile(archive, { signal: controller.signal });
  setImmediate(() => controller.abort());
  await assert.rejects(aborted, { name: 'AbortError' });
});

test('two runs at once give the same reports as one after the other', async () => {
  const alone = sortedJson(await validateFile(archive));
  const both = await Promise.all([validateFile(archive), validate(bytes, { fileName: 'snapshot.zip' })]);
  assert.deepEqual(both.map(sortedJson), [alone, alone]);
});

test('a kept worker neither holds the process open nor survives a failure', async () => {
  // The worker kept after a run waits 10 s for the next call, unreferenced.
  const script = `import { validate } from 'snappack';
    const report = await validate(new TextEncoder().encode('{"a":1}\\n'), { fileName: 'x.jsonl', table: 'x' });
    console.log(report.documents);`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 8000 });
  assert.equal(child.signal, null, 'the process waited for the kept worker');
  assert.equal(child.stdout.trim(), '1', child.stderr);

  // A call after an abort and after a panic gets a working worker.
  const controller = new AbortController();
  const aborted = validate(bytes, { fileName: 'snapshot.zip', signal: controller.signal });
  setImmediate(() => controller.abort());
  await assert.rejects(aborted, { name: 'AbortError' });
  assert.equal((await validate(bytes, { fileName: 'snapshot.zip' })).documents, 30000);
});

test('many calls in a row reuse one worker without piling up listeners', async () => {
  const warnings = [];
  const onWarning = (warning) => warnings.push(warning.name);
  process.on('warning', onWarning);
  try {
    const tiny = new TextEncoder().encode('{"a":1}\n');
    for (let i = 0; i < 25; i++) {
      assert.equal((await validate(tiny, { fileName: 'x.jsonl', table: 'x' })).documents, 1);
    }
    // Warnings are emitted on the next tick.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings, []);
});

test('a file cut short while it is read is one ReadFailed where the walk stopped, naming the file', async () => {
  // Without faults: the one error is the cut.
  const cut = join(scratch(), 'cut.zip');
  gen(cut, { tables: 3, totalDocuments: 30000, compressionLevel: 1 });
  const size = statSync(cut).size;
  let truncated = false;
  const report = await validateFile(cut, {
    workers: 1,
    onProgress: ({ bytesRead }) => {
      if (!truncated && bytesRead > size / 3) {
        truncateSync(cut, Math.floor(size / 2));
        truncated = true;
      }
    },
  });
  assert.ok(truncated);
  assert.equal(report.valid, false);
  assert.deepEqual(report.errors.map((e) => e.code), ['ReadFailed'], JSON.stringify(report.errors));
  const [failed] = report.errors;
  assert.match(failed.message, /^cannot read the input: /);
  assert.ok(failed.message.includes(`${cut} ended at`), failed.message);
  assert.match(failed.message, new RegExp(`shorter than ${size}`));
  assert.ok(failed.entry.endsWith('documents.jsonl'), failed.entry);
  assert.equal(report.error_count, 1);
});

test('a pipe, which has no size to seek in, is read to its end and validated', async () => {
  const fifo = join(scratch(), 'users.jsonl');
  execFileSync('mkfifo', [fifo]);
  const lines = '{"name":"ada"}\nnot json\n{"name":"grace"}\n';
  // The writer blocks until the worker opens the pipe.
  const writer = spawn('sh', ['-c', `printf '%s' '${lines}' > ${fifo}`]);
  const written = new Promise((resolve) => writer.on('exit', resolve));
  const report = await validateFile(fifo, { table: 'users' });
  assert.equal(await written, 0);
  assert.equal(report.documents, 3);
  assert.deepEqual(report.errors.map((e) => [e.code, e.line]), [['JsonInvalidRow', 2]]);

  // A file that says it is empty but is not, as those of /proc.
  const status = await validateFile('/proc/self/status', { table: 'status', format: 'jsonl' });
  assert.ok(status.error_count > 0, 'its lines were read');
});
