// The plain-JavaScript peer: what a frontend team would write instead of
// snappack to check a Convex snapshot before uploading it. Unzip with fflate,
// `JSON.parse` every line, decode each `_id` (base32, table number, footer),
// a `Set` per table for duplicate ids, and table numbers from `_tables` and
// from each table's first id, with conflicts between them. It checks less
// than snappack (no field names, nesting or size limits, no value types, no
// stored-file hashes), which only flatters it.
//
// Usage: node bench/js-peer.mjs <snapshot.zip> [repetitions]
//   prints one JSON line: { documents, bytes, errors, runs: [{ wallMs, cpuMs, peakRssBytes }] }

import { readFileSync } from 'node:fs';
import { argv } from 'node:process';

import { unzipSync } from 'fflate';

import { repeat } from './timing.mjs';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));

/** Decodes a Convex id: `{ table }`, or throws with the reason. */
export function decodeId(text) {
  if (typeof text !== 'string') throw new Error('_id is not a string');
  if (text.length < 31 || text.length > 37) throw new Error(`invalid id length ${text.length}`);
  const bytes = [];
  let buffer = 0;
  let bits = 0;
  for (const c of text) {
    const v = DECODE.get(c);
    if (v === undefined) throw new Error('not base32');
    buffer = ((buffer << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((buffer >> bits) & 0xff);
    }
  }
  let table = 0;
  let i = 0;
  for (; i < 5; i++) {
    table += (bytes[i] & 0x7f) * 2 ** (7 * i);
    if ((bytes[i] & 0x80) === 0) break;
  }
  i += 1;
  if (table === 0 || i > 5) throw new Error('invalid table number');
  if (bytes.length !== i + 18) throw new Error('invalid id length');
  let c0 = 0;
  let c1 = 0;
  for (let j = 0; j < i + 16; j++) {
    c0 = (c0 + bytes[j]) & 0xff;
    c1 = (c1 + c0) & 0xff;
  }
  if (bytes[i + 16] !== c0 || bytes[i + 17] !== c1) throw new Error('invalid id footer');
  return { table };
}

/** Checks a snapshot ZIP held in memory; returns counts and error messages. */
export function checkSnapshot(zipBytes) {
  // Entry names first; then one entry at a time, so memory holds one table.
  const names = [];
  unzipSync(zipBytes, {
    filter: (f) => {
      if (f.name.endsWith('documents.jsonl')) names.push(f.name);
      return false;
    },
  });
  const read = (path) => unzipSync(zipBytes, { filter: (f) => f.name === path })[path];
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const errors = [];
  let documents = 0;
  let bytes = 0;
  // Table numbers per component: name -> number, and number -> name.
  const components = new Map();
  const componentOf = (path) => {
    if (!components.has(path)) components.set(path, { numbers: new Map(), owners: new Map() });
    return components.get(path);
  };
  const claim = (component, name, number, where) => {
    const c = componentOf(component);
    const owner = c.owners.get(number);
    if (owner !== undefined && owner !== name) {
      errors.push(`${where}: table number ${number} of ${name} is already ${owner}'s`);
      return;
    }
    c.owners.set(number, name);
    c.numbers.set(name, number);
  };
  const entries = names.map((path) => {
    const parts = path.split('/');
    const table = parts.at(-2);
    const componentPath = parts.slice(0, -2).filter((p, i) => i % 2 === 1).join('/');
    return { path, table, component: componentPath };
  });
  for (const { path, component } of entries.filter((e) => e.table === '_tables')) {
    for (const line of decoder.decode(read(path)).split('\n')) {
      if (line === '') continue;
      const row = JSON.parse(line);
      if (componentOf(component).numbers.has(row.name)) errors.push(`${path}: duplicate table ${row.name}`);
      claim(component, row.name, row.id, path);
    }
  }
  for (const { path, table, component } of entries.filter((e) => e.table !== '_tables')) {
    const data = read(path);
    bytes += data.length;
    const lines = decoder.decode(data).split('\n');
    const seen = new Set();
    let number = componentOf(component).numbers.get(table);
    lines.forEach((line, i) => {
      if (line === '') return;
      documents += 1;
      let doc;
      try {
        doc = JSON.parse(line);
      } catch (e) {
        errors.push(`${path}:${i + 1}: ${e.message}`);
        return;
      }
      if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
        errors.push(`${path}:${i + 1}: not an object`);
        return;
      }
      if (doc._id === undefined) return;
      let id;
      try {
        id = decodeId(doc._id);
      } catch (e) {
        errors.push(`${path}:${i + 1}: ${e.message}`);
        return;
      }
      if (number === undefined) {
        number = id.table;
        claim(component, table, number, `${path}:${i + 1}`);
      } else if (id.table !== number) {
        errors.push(`${path}:${i + 1}: _id of table ${id.table} in table ${table} (${number})`);
      }
      if (seen.has(doc._id)) errors.push(`${path}:${i + 1}: duplicate _id ${doc._id}`);
      seen.add(doc._id);
    });
  }
  return { documents, bytes, errors };
}

if (import.meta.url === `file://${argv[1]}`) {
  const [, , path, reps = '3'] = argv;
  const zip = readFileSync(path);
  const { result, runs } = await repeat(Number(reps), () => checkSnapshot(zip));
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  console.log(JSON.stringify({ documents: result.documents, bytes: result.bytes, errors: result.errors.length, runs, peakRssBytes }));
}
