// checkTarget: a validated input's table numbers and conflicts with a
// target deployment's tables, from its Report alone, equal those of
// validating the input again with that target, in every mode.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { strFromU8, unzipSync } from 'fflate';

import { SnappackError, checkTarget, validate, validateFile } from 'snappack';

import { gen, scratch, sortedJson } from './helpers.js';

const dir = scratch();
const MODES = ['requireEmpty', 'append', 'replace', 'replaceAll'];

test('a report checked against each target in each mode gives what validating with it gives', async () => {
  const path = join(dir, 'snapshot.zip');
  const summary = gen(path, { tables: 3, documentsPerTable: 20, components: ['a'], storageFiles: 1 });
  const report = await validateFile(path);
  assert.equal(report.valid, true);
  const [first, second] = summary.tables;
  const targets = [
    { tables: [] },
    // The same tables with documents, on other numbers, and another table on a number of the snapshot's.
    { tables: summary.tables.map((t) => ({ component: t.component, name: t.name, number: t.number, documents: 2 })) },
    { tables: [{ name: first.name, number: second.number, documents: 1 }, { name: second.name, number: first.number }] },
    { tables: [{ name: 'other', number: first.number, documents: 3 }, { component: 'a', name: 'x', number: 20000 }] },
  ];
  let conflicts = 0;
  for (const target of targets) {
    for (const mode of MODES) {
      const checked = await checkTarget(report, { target, mode });
      const validated = await validateFile(path, { target, mode });
      const why = `${mode} against ${JSON.stringify(target)}`;
      assert.equal(checked.exact, true, why);
      assert.equal(sortedJson(checked.tables), sortedJson(validated.tables), why);
      assert.equal(sortedJson(checked.errors), sortedJson(validated.errors), why);
      conflicts += checked.errors.length;
    }
  }
  assert.ok(conflicts > 0, 'some targets conflict');
  // A null mode is one not given: requireEmpty, as validate takes it.
  assert.deepEqual(await checkTarget(report, { target: targets[1], mode: null }), await checkTarget(report, { target: targets[1] }));
  // What each mode removes from the target's tables when the import finishes.
  const removed = async (target, mode) =>
    (await checkTarget(report, { target, mode })).removed.map((t) => [t.component, t.name, t.documents, t.replaced]);
  assert.deepEqual(await removed(targets[1], 'append'), []);
  assert.deepEqual(await removed(targets[1], 'requireEmpty'), []);
  assert.deepEqual(await removed(targets[1], 'replace'), summary.tables.map((t) => [t.component, t.name, 2, true]));
  // Replace all also deletes the target's user tables the snapshot lacks, empty or not, in every component.
  assert.deepEqual(await removed(targets[3], 'replace'), []);
  assert.deepEqual(await removed(targets[3], 'replaceAll'), [['', 'other', 3, false], ['a', 'x', 0, false]]);
  // `mode` is requireEmpty by default.
  const full = targets[1];
  assert.deepEqual(await checkTarget(report, { target: full }), await checkTarget(report, { target: full, mode: 'requireEmpty' }));
});

test('a single table numbered by the target: its numbers, and whether its ids were checked', async () => {
  const rows = (lines) => new TextEncoder().encode(lines.join('\n'));
  const target = { tables: [{ name: 'people', number: 10042, documents: 1 }] };
  // No `_id`s: the table takes the target's number.
  const plain = await validate(rows(['{"name":"ada"}', '{"name":"alan"}']), { fileName: 'people.jsonl', table: 'people' });
  const checked = await checkTarget(plain, { target, mode: 'append' });
  assert.deepEqual(
    checked.tables.map((t) => [t.name, t.number, t.number_source]),
    [['people', 10042, 'target']],
  );
  assert.deepEqual(checked.errors, []);
  // Its rows were never checked against a number: the report cannot say they carry no `_id`s.
  assert.equal(checked.exact, false);
  const required = await checkTarget(plain, { target, mode: 'requireEmpty' });
  assert.deepEqual(required.errors.map((e) => [e.code, e.entry]), [['TableExists', 'people.jsonl']]);
  // An `_id` after a first row without one: only validating with the target checks it.
  const late = await validate(rows(['{"name":"ada"}', `{"_id":"${firstId()}","name":"x"}`]), { fileName: 'people.jsonl', table: 'people' });
  assert.deepEqual(late.warnings.map((w) => w.code), ['UnassignedTableNumber']);
  const unchecked = await checkTarget(late, { target, mode: 'append' });
  assert.equal(unchecked.exact, false);
  const validated = await validate(rows(['{"name":"ada"}', `{"_id":"${firstId()}","name":"x"}`]), { fileName: 'people.jsonl', table: 'people', target, mode: 'append' });
  assert.deepEqual(validated.errors.map((e) => e.code), ['ImportConflict']);
  assert.deepEqual(unchecked.tables, validated.tables);
});

/** The `_id` of the first document of a generated snapshot (of another table than people's 10042). */
function firstId() {
  const path = join(dir, 'ids.zip');
  const summary = gen(path, { tables: 1, documentsPerTable: 1 });
  const entry = unzipSync(readFileSync(path))[summary.tables[0].entry];
  return JSON.parse(strFromU8(entry).split('\n')[0])._id;
}

test('misuse rejects with a SnappackError and a code', async () => {
  const report = await validate(new TextEncoder().encode('{"a":1}\n'), { fileName: 't.jsonl', table: 't' });
  const target = { tables: [] };
  const cases = [
    [() => checkTarget(null, { target }), 'InvalidInput'],
    [() => checkTarget('report', { target }), 'InvalidInput'],
    [() => checkTarget({ tables: 'x' }, { target }), 'InvalidInput'],
    [() => checkTarget({ tables: [] }, { target }), 'InvalidInput'],
    [() => checkTarget(report), 'InvalidOptions'],
    [() => checkTarget(report, {}), 'InvalidOptions'],
    [() => checkTarget(report, { target: 'tables' }), 'InvalidOptions'],
    [() => checkTarget(report, { target: { tables: [{ name: 'x' }] } }), 'InvalidOptions'],
    [() => checkTarget(report, { target: { tables: [{ name: 'x', number: 0 }] } }), 'InvalidOptions'],
    [() => checkTarget(report, { target, mode: 'sideways' }), 'InvalidOptions'],
    [() => checkTarget(report, { target, signal: 1 }), 'InvalidOptions'],
  ];
  for (const [call, code] of cases) {
    await assert.rejects(call, (error) => error instanceof SnappackError && error.code === code, `${call}`);
  }
});
