// The package's Report equals the native CLI's `validate --json` for the
// same file, byte for byte after sorting keys: valid and invalid snapshots
// (every fault the generator injects), single-table files, and options.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';

import { validate, validateFile } from 'snappack';

import { gen, nativeReport, scratch, sortedJson } from './helpers.js';

const dir = scratch();

/** Validates `path` natively and with the package (bytes and by path); returns the Report. */
async function assertSameReport(path, options = {}) {
  const native = nativeReport(path, options);
  const bytes = readFileSync(path);
  const fromBytes = await validate(new Uint8Array(bytes), { ...options, fileName: basename(path) });
  assert.equal(sortedJson(fromBytes), sortedJson(JSON.parse(native)), `report of ${basename(path)}`);
  const fromPath = await validateFile(path, options);
  assert.equal(sortedJson(fromPath), sortedJson(fromBytes));
  return fromBytes;
}

const SMALL = { tables: 3, documentsPerTable: 40, components: ['a', 'a/b'], storageFiles: 2 };

test('a valid snapshot with components and stored files', async () => {
  const path = join(dir, 'valid.zip');
  const summary = gen(path, SMALL);
  const report = await assertSameReport(path);
  assert.equal(report.valid, true);
  const userTables = report.tables.filter((table) => table.name !== '_storage');
  assert.equal(userTables.reduce((sum, table) => sum + table.documents, 0), summary.documents);
  assert.equal(report.storage.files, summary.storage.length);
});

const FAULTS = [
  'duplicateId', 'foreignTableId', 'undecodableId', 'nonStringId', 'badJsonLine', 'nonObjectRow',
  'wrapperRow', 'setWrapper', 'integerCreationTime', 'dollarFieldName', 'underscoreField',
  'oversizedDocument', 'tooDeep', 'arrayTooLong', 'duplicateTableName', 'sharedTableNumber',
  'invalidTableName', 'invalidComponentName', 'invalidStorageId', 'badGeneratedSchema',
  'sha256Mismatch',
];

test('a snapshot with each fault the generator injects', async (t) => {
  for (const fault of FAULTS) {
    await t.test(fault, async () => {
      const path = join(dir, `fault-${fault}.zip`);
      const summary = gen(path, { ...SMALL, faults: [fault] });
      const report = await assertSameReport(path);
      assert.equal(report.valid, false);
      const codes = report.errors.map((e) => e.code);
      assert.ok(codes.includes(summary.faults[0].code), `${summary.faults[0].code} in ${codes}`);
    });
  }
});

test('a snapshot under a folder, read in several growing fetches, with several faults', async () => {
  const path = join(dir, 'big.zip');
  gen(path, {
    tables: 4,
    totalDocuments: 40000,
    components: ['c'],
    storageFiles: 3,
    storageMaxBytes: 300000,
    prefix: 'snapshot/',
    compressionLevel: 1,
    faults: ['duplicateId', 'foreignTableId', 'badJsonLine'],
  });
  assert.ok(readFileSync(path).length > 4 << 20);
  const report = await assertSameReport(path);
  assert.equal(report.error_count, 3);
});

test('options: maxErrors, and a target deployment in each mode', async (t) => {
  const path = join(dir, 'target.zip');
  const summary = gen(path, { tables: 2, documentsPerTable: 10, faults: ['duplicateId', 'badJsonLine'] });
  await t.test('maxErrors', async () => {
    const report = await assertSameReport(path, { maxErrors: 1 });
    assert.equal(report.errors.length, 1);
    assert.equal(report.error_count, 2);
  });
  const [first, second] = summary.tables;
  // The first table there under a number of its own, another table on the second's number.
  const target = {
    tables: [
      { component: '', name: first.name, number: second.number + 1, documents: 5 },
      { component: '', name: 'other', number: second.number, documents: 1 },
    ],
  };
  for (const mode of ['requireEmpty', 'append', 'replace', 'replaceAll']) {
    await t.test(mode, async () => {
      await assertSameReport(path, { target, mode });
    });
  }
});

/** Single-table files: name, content, options. */
const SINGLE_TABLE = [
  ['users.jsonl', '{"name":"ada","age":36}\n{"name":"alan","tags":["a","b"]}\n', { table: 'users' }],
  ['bad.jsonl', '{"name":"ada"}\nnot json\n{"$x":1}\n{"a":{"$bytes":"!!"}}\n{"_id":"nope"}\n', { table: 'users' }],
  ['users.json', '[{"name":"ada"},{"name":"alan","n":{"$integer":"AQAAAAAAAAA="}}]', { table: 'users' }],
  ['object.json', '{"name":"ada"}', { table: 'users' }],
  ['users.csv', 'name,nick,age\nada,,36\nalan,al,41\n', {
    table: 'users',
    schema: { tables: { users: { fields: { name: { optional: false }, nick: { optional: true } } } } },
  }],
  ['short.csv', 'name,nick\nada\nalan,al\n', { table: 'users' }],
  ['notable.jsonl', '{"a":1}\n', {}],
  ['bad name.jsonl', '{"a":1}\n', { table: '1users', component: 'a' }],
  ['rows.txt', '{"a":1}\n', { table: 'users', format: 'jsonl' }],
  ['bom.jsonl', '\uFEFF{"a":1}\n', { table: 'users' }],
  // Rows with several problems, and rows that are not objects.
  ['several.jsonl', '[1, {"a": 2}]\n1e2\n{"_id":"nope","_x":1}\n{"_creationTime":0.0,"_b":1,"_a":2}\n', { table: 'users' }],
  ['header.csv', '"a""b",\tc\n1,2\n', { table: 'users' }],
  ['utf8.json', Buffer.concat([Buffer.from('[{"b":"'), Buffer.from([0xff]), Buffer.from('"}]')]), { table: 'users' }],
];

test('single-table files', async (t) => {
  for (const [name, content, options] of SINGLE_TABLE) {
    await t.test(name, async () => {
      const path = join(dir, name);
      writeFileSync(path, content);
      await assertSameReport(path, options);
    });
  }
});

test('a file that is not a ZIP', async () => {
  const path = join(dir, 'broken.zip');
  writeFileSync(path, 'PK\u0003\u0004 this is no archive');
  const report = await assertSameReport(path);
  assert.equal(report.valid, false);
});
