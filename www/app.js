// The snappack page: pick a snapshot, check it in the package's Web Worker,
// read the report, then upload it to a snappack server with pause, resume and
// cancel: each frame is sent as soon as it is packed. An interrupted upload
// is remembered by the file's fingerprint and the server, and continues when the same file is
// picked again, even after a reload, packing only the frames the server lacks.

import { checkTarget, validate, fetchImport, fetchTables, preload, startPacking, sendUpload, UploadError } from './pkg/browser.js';

const $ = (id) => document.getElementById(id);

/** localStorage keys. */
const SERVER_KEY = 'snappack.server';
/** An upload's record: this prefix, the file's fingerprint, `@` and the server's URL (a file may have one on each server). */
const IMPORT_KEY = 'snappack.import.';
/** Imports this page cancelled while their server did not answer (`[{ url, importId }]`): cancelled when it is next reached. */
const CANCELS_KEY = 'snappack.cancels';

/** Findings that come from the server's tables and the import mode. */
const CONFLICT_CODES = new Set(['TableExists', 'TableConflict', 'TableNumberConflict', 'ImportConflict', 'DocumentExists', 'TooManyTables']);

/** Where a table's number came from, in words. */
const NUMBER_SOURCES = {
  tables: '_tables entry',
  id: 'document ids',
  target: 'server’s table',
  unassigned: 'assigned at import',
};

/** How the package's refusals of a schema begin. */
const SCHEMA_OPTION = 'option "schema"';

/**
 * The frame size the page packs with: the package's default, or the
 * server's limit when its table listing advertises a smaller one.
 */
const PAGE_FRAME_SIZE = 1 << 20;

/** The most errors, and warnings, a report lists (`maxErrors`); the rest are counted. */
const LISTED_AT_MOST = 1000;

/** Seconds between retries once the protocol's own backoff gave up. */
const RECONNECT_SECONDS = 3;

const state = {
  file: null,
  fingerprint: null,
  report: null,
  checking: null, // AbortController of the running check
  server: null, // { url, token, tables }
  conflictCheck: null, // AbortController of the running check against the server's tables
  conflicts: null, // { mode, report, conflicts } for the current server and mode
  targetReports: new Map(), // this file's checks against server tables ({ report, removed }), by mode and tables
  optionsChanged: false, // the table name or schema changed since the check
  imported: false, // this file was just imported: no check against the server since
  upload: null, // the running upload, see startUpload
  starting: false, // an upload waits for its lock (startUpload)
};

// ---------- formatting ----------

const integer = new Intl.NumberFormat('en-US');

/** `n` bytes as people read them: 1023 B, 1.0 KiB, 9.9 KiB, 10 KiB, 1023 KiB, 1.0 MiB. */
function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  // Rounded as shown: what shows as 1024 of a unit is one of the next.
  const shown = (v) => (unit === 0 ? Math.round(v) : Number(v.toFixed(v < 9.95 ? 1 : 0)));
  while (shown(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit > 0 && value < 9.95 ? 1 : 0;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

/** A time left in whole seconds, minutes and seconds, or hours and minutes. */
function duration(seconds) {
  if (!Number.isFinite(seconds)) return '…';
  const total = Math.ceil(seconds);
  if (total < 60) return `${total} s`;
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes} min ${total % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function plural(n, one, many = `${one}s`) {
  return `${integer.format(n)} ${n === 1 ? one : many}`;
}

/** An element with text and children. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') element.className = value;
    else element.setAttribute(name, value === true ? '' : value);
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

/** Measures a rate over the last few seconds. */
class Rate {
  constructor() {
    this.samples = [];
  }

  add(value) {
    const now = performance.now();
    this.samples.push([now, value]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
  }

  /** Per second, or NaN when unknown. */
  get perSecond() {
    if (this.samples.length < 2) return NaN;
    const [t0, v0] = this.samples[0];
    const [t1, v1] = this.samples[this.samples.length - 1];
    return t1 > t0 ? ((v1 - v0) * 1000) / (t1 - t0) : NaN;
  }
}

/** The live region: outcomes at once, progress at most every 10 seconds. */
const announcer = {
  last: 0,
  /** The user acted since the last message (see init). */
  acted: true,
  say(text, { progress = false } = {}) {
    const live = $('live');
    const now = performance.now();
    // What one action says (a failure, then the state it leaves) is heard
    // whole: added to what it said before, not put in its place. A new
    // action, or a pause of some seconds, starts afresh.
    if (this.acted || now - this.last > 5000) live.replaceChildren();
    this.acted = false;
    // Progress replaces progress.
    if (live.lastElementChild?.dataset.progress) live.lastElementChild.remove();
    live.append(h('span', { 'data-progress': progress ? 'yes' : null }, `${text} `));
    this.last = now;
  },
  progress(text) {
    if (performance.now() - this.last > 10000) this.say(text, { progress: true });
  },
};

// ---------- storage ----------

function loadJson(key) {
  try {
    return JSON.parse(localStorage.getItem(key) ?? 'null');
  } catch {
    return null;
  }
}

function saveJson(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or a full store: the page works without remembering.
  }
}

/** The key of the record of the upload of the file `fingerprint` to the server at `url`. */
function recordKey(fingerprint, url) {
  return `${IMPORT_KEY}${fingerprint}@${url}`;
}

/**
 * The records of uploads of the file `fingerprint`, one per server, by the
 * server's URL. A record kept under the fingerprint alone (one per file, as
 * earlier versions of the page kept them) is moved under its server first.
 */
function uploadRecords(fingerprint) {
  const old = loadJson(IMPORT_KEY + fingerprint);
  if (old?.url) {
    if (!loadJson(recordKey(fingerprint, old.url))) saveJson(recordKey(fingerprint, old.url), old);
    saveJson(IMPORT_KEY + fingerprint, null);
  }
  const records = new Map();
  const prefix = `${IMPORT_KEY}${fingerprint}@`;
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      const record = key?.startsWith(prefix) ? loadJson(key) : null;
      if (record?.url === key.slice(prefix.length)) records.set(record.url, record);
    }
  } catch {
    // No storage: no records.
  }
  return records;
}

/**
 * Identifies a file by its content rather than its name: size, modification
 * time and a SHA-256 of its first and last MiB.
 */
async function fingerprint(file) {
  const MiB = 1 << 20;
  const head = file.slice(0, Math.min(MiB, file.size));
  const tail = file.slice(Math.max(0, file.size - MiB));
  const data = new Uint8Array(await new Blob([head, tail]).arrayBuffer());
  let digest;
  if (globalThis.crypto?.subtle) {
    digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  } else {
    // Not a secure context: FNV-1a, enough to tell files apart.
    let hash = 0x811c9dc5;
    for (const byte of data) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    digest = new Uint8Array(new Uint32Array([hash]).buffer);
  }
  const hex = [...digest.slice(0, 16)].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${file.size}-${file.lastModified}-${hex}`;
}

// ---------- choosing a file ----------

const SINGLE_TABLE = /\.(jsonl|ndjson|json|csv)$/i;

/** What the chosen file is called: a snapshot (a ZIP), or a table's file. */
function inputNoun() {
  return SINGLE_TABLE.test(state.file?.name ?? '') ? 'table file' : 'snapshot';
}

/** The longest table name Convex takes, in bytes (ASCII here: one a character). */
const MAX_TABLE_NAME = 64;

/**
 * A table name for a file that holds one table: its name's stem, as a valid
 * table name (accented letters without their accents, other characters `_`).
 */
function tableNameFrom(fileName) {
  const stem = fileName.replace(/\.[^.]*$/, '').normalize('NFKD').replace(/\p{M}/gu, '').replace(/[^A-Za-z0-9_]/g, '_');
  return (/^[A-Za-z]/.test(stem) ? stem : `t_${stem}`).slice(0, MAX_TABLE_NAME);
}

/**
 * Takes `file` as the page's file and checks it. `others`: how many more
 * were dropped with it; `folder`: it is a folder that was dropped.
 */
async function choose(file, { others = 0, folder = false } = {}) {
  if (!file) return;
  if (state.upload) {
    $('file-info').textContent = `${state.upload.file.name} is being uploaded: cancel that upload to choose another file.`;
    announcer.say($('file-info').textContent);
    return;
  }
  // The running check stops, and is no longer this page's: it must not speak over this file.
  const running = state.checking;
  state.checking = null;
  running?.abort();
  stopConflictCheck();
  const previousFile = state.file;
  state.file = file;
  state.report = null;
  state.imported = false;
  // Nothing about the previous file stays: its report, its upload, what it imported.
  for (const id of ['report', 'resume-note', 'uploading', 'summary', 'conflicts']) $(id).hidden = true;
  if (!sameFile(file, previousFile)) forgetSchema(file, !folder && /\.csv$/i.test(file.name));
  const dropped = others > 0 ? `the first of ${others + 1} files dropped: the others are not checked; drop them one at a time` : '';
  $('file-info').textContent = `${file.name} · ${folder ? 'a folder' : bytes(file.size)}${dropped && ` (${dropped})`}`;
  if (dropped) announcer.say(`${file.name} is ${dropped}.`);
  if (folder) {
    // An export unzipped, most likely: the page reads the archive, not its files.
    for (const id of ['single', 'send', 'checking']) $(id).hidden = true;
    $('check').hidden = false;
    showProblem(`${file.name} is a folder: drop the Convex export's .zip file itself (or zip the folder), or one table's .jsonl, .json or .csv file.`);
    return;
  }
  if (!SINGLE_TABLE.test(file.name) && !/\.zip$/i.test(file.name)) {
    // The page has no format choice: the extension says what the file is.
    for (const id of ['single', 'send', 'checking']) $(id).hidden = true;
    $('check').hidden = false;
    showProblem(`snappack reads .zip snapshots and .jsonl, .json and .csv tables: rename ${file.name} to the extension of its format, then choose it again.`);
    return;
  }
  const single = SINGLE_TABLE.test(file.name);
  $('single').hidden = !single;
  $('schema-field').hidden = !/\.csv$/i.test(file.name);
  if (single) $('table').value = tableNameFrom(file.name);
  // The last file's fingerprint is not this one's, whether or not this one can be read.
  state.fingerprint = null;
  let print;
  try {
    print = await fingerprint(file);
  } catch (error) {
    if (state.file !== file) return;
    // Moved, deleted or changed since it was chosen, or not readable by the browser.
    for (const id of ['single', 'send', 'checking']) $(id).hidden = true;
    $('check').hidden = false;
    showProblem(`${file.name} cannot be read (${error.message}): it may have been moved, deleted or changed since it was chosen. Choose it again.`);
    return;
  }
  // Another file was chosen meanwhile: this one is no longer the page's.
  if (state.file !== file) return;
  state.fingerprint = print;
  // An interrupted upload of it was packed with its own table name: checked with it too
  // (that of the upload to this page's server, if any).
  const records = uploadRecords(print);
  const recordedTable = (records.get(serverUrl()) ?? [...records.values()].find((r) => r.options?.table))?.options?.table;
  if (single && recordedTable) $('table').value = recordedTable;
  // One started with a schema goes on with it (kept in its record, not as a file here): said.
  if (!$('schema-field').hidden && !$('schema').files[0] && recordedUpload()?.options?.schema != null) {
    const note = $('schema-note');
    note.textContent = `The upload of ${file.name} was started with a schema: it is checked and uploaded with that schema.`;
    note.dataset.kind = 'recorded';
    note.hidden = false;
    announcer.say(note.textContent);
  }
  await check();
  if (state.file !== file) return;
  await continuePending();
}

/** Whether `a` and `b` are the same file on disk, as far as a page can tell (chosen again, say). */
function sameFile(a, b) {
  return Boolean(a && b) && a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;
}

/**
 * A schema is of the file it was picked for: choosing another file clears
 * it, so that it is not applied unseen to a file it may not describe. When
 * the new file (`file`, a CSV when `csv`) could take one, the page says the
 * schema was let go, beside the field and to screen readers.
 */
function forgetSchema(file, csv) {
  const input = $('schema');
  const note = $('schema-note');
  const previous = input.files[0]?.name;
  note.hidden = true;
  if (!previous) return;
  input.value = '';
  if (!csv) return;
  note.textContent = `The schema ${previous} was picked for the previous file and is not used for ${file.name}: pick it again if it describes this file too.`;
  note.dataset.kind = 'cleared';
  note.hidden = false;
  announcer.say(note.textContent);
}

/**
 * Continues an interrupted upload of the chosen file, valid and not being
 * uploaded: one this browser recorded, or one the connected server has open
 * under the file's label. Called when a file is checked and on Connect.
 */
async function continuePending() {
  const file = state.file;
  if (!file || !state.report?.valid || state.upload) return;
  const recorded = recordedUpload();
  // Recorded for other servers than this page's: continued only there.
  const elsewhere = [...uploadRecords(state.fingerprint).values()].filter((r) => r.url !== serverUrl());
  const pending = recorded ?? (await findOpenImport(state.fingerprint));
  if (state.file !== file || state.upload) return;
  const note = $('resume-note');
  if (!pending) {
    if (elsewhere.length > 0) {
      note.hidden = false;
      const uploads = elsewhere.map((r) => `${r.url} (import ${r.importId ?? 'not yet created'})`).join(' and to ');
      const here = serverUrl() ? ` An upload to ${serverUrl()} starts a new import, and leaves ${elsewhere.length === 1 ? 'that one' : 'those'} open.` : '';
      note.textContent = `This file was being uploaded to ${uploads}: connect to ${elsewhere.length === 1 ? 'that server' : 'one of them'} to continue it.${here}`;
      announcer.say(note.textContent);
    }
    return;
  }
  // Started elsewhere as a table of another name than this page checked the file as: checked
  // again under the name its label gives, which continuing it packs with.
  if (!recorded && pending.table && !pending.tableChanged && !$('single').hidden && $('table').value.trim() !== pending.table) {
    $('table').value = pending.table;
    await check();
    if (state.file !== file) return;
    return continuePending();
  }
  note.hidden = false;
  if (recorded) {
    // Started from this browser: its mode and what it removes were agreed to then.
    // Paused by its user, it stays paused until they resume it.
    const how = pending.paused ? 'paused: Resume continues it where it stopped' : 'continuing where it stopped';
    note.textContent = `This file was being uploaded to ${pending.url} (import ${pending.importId ?? 'not yet created'}): ${how}.`;
    startUpload(pending);
    return;
  }
  // Started elsewhere, and another import changed a table of it since: it can no longer finish
  // (nothing this page checks differently would change that), and it is left to where it was started.
  if (pending.tableChanged) {
    note.textContent = `The server has an upload of this file open, started elsewhere (import ${pending.importId}, ${modeName(pending.mode)}), which can no longer finish: ${pending.tableChanged.message} Choose a mode and Upload to start a new one.`;
    announcer.say(note.textContent);
    return;
  }
  // Started elsewhere: nothing goes on until this user says so.
  const go = h('button', { type: 'button' }, 'Continue that upload');
  go.addEventListener('click', () => {
    note.textContent = `Continuing import ${pending.importId} of this file.`;
    startUpload(pending);
  });
  const removes = { replace: ` When it finishes, the ${inputNoun()}’s tables replace the server’s of the same names.`, replaceAll: ` When it finishes, the server’s tables that this ${inputNoun()} lacks are deleted.` }[pending.mode] ?? '';
  const table = pending.table ? `, as table ${pending.table}` : '';
  note.replaceChildren(
    `The server has an upload of this file open, started elsewhere (import ${pending.importId}, ${modeName(pending.mode)}${table}).${removes} `,
    go,
    ' Or choose a mode and Upload to start a new one.',
  );
  announcer.say(note.textContent);
}

/** The server this page talks to: the connected one, else the one last connected to. */
function serverUrl() {
  return state.server?.url ?? loadJson(SERVER_KEY)?.url ?? null;
}

/** The interrupted upload of the chosen file to {@link serverUrl} this browser recorded, if any. */
function recordedUpload() {
  const url = serverUrl();
  return url === null ? null : (uploadRecords(state.fingerprint).get(url) ?? null);
}

/**
 * The label of an import of the file `fingerprint` packed with `options`:
 * the fingerprint, then for a table file ` table NAME`, the table it is
 * imported as, so that a browser without its record continues it under that
 * name (table names have no spaces).
 */
function importLabel(fingerprint, options) {
  return options?.table ? `${fingerprint} table ${options.table}` : fingerprint;
}

/** What an import's label says (see {@link importLabel}): `{ fingerprint, table }`, `table` null when it names none. */
function readLabel(label) {
  const [fingerprint, table = null] = (label ?? '').split(' table ');
  return { fingerprint, table };
}

/**
 * An open import of this file on the connected server, found by its label
 * (the fingerprint, and a table file's table) when this browser has no record of it.
 */
async function findOpenImport(fingerprint) {
  const server = state.server;
  if (!server) return null;
  await retryCancels(server);
  try {
    // Only the open ones: the listing is paged, and however many imports ended since,
    // an open one is on this page (a server before paging lists them all, and they are filtered here).
    const response = await fetch(`${server.url}/api/imports?state=open&limit=1000`, { headers: { Authorization: `Bearer ${server.token}` } });
    if (!response.ok) return null;
    const { imports } = await response.json();
    // One cancelled here whose cancel has not reached the server yet is no upload to go on.
    const cancelling = new Set(pendingCancels().filter((c) => c.url === server.url).map((c) => c.importId));
    const open = imports.filter((i) => i.state === 'open' && !cancelling.has(i.id) && readLabel(i.label).fingerprint === fingerprint).pop();
    // `elsewhere`: its schema is not known here (its table name is, from a label that names it),
    // and it may still be going on there.
    return open ? { url: server.url, mode: open.mode, target: server.tables, importId: open.id, file: state.file.name, size: state.file.size, table: readLabel(open.label).table, elsewhere: true, tableChanged: open.tableChanged } : null;
  } catch {
    return null;
  }
}

async function validateOptions() {
  const options = {};
  if (!$('single').hidden) {
    options.table = $('table').value.trim();
    const schemaFile = $('schema').files[0];
    if (!$('schema-field').hidden && schemaFile) options.schema = JSON.parse(await schemaFile.text());
    // None picked: an upload of the file started with one goes on with it, and is checked so.
    else if (!$('schema-field').hidden && recordedUpload()?.options?.schema != null) options.schema = recordedUpload().options.schema;
  }
  // The note that the upload's schema is used holds only while it is.
  if (options.schema === undefined && $('schema-note').dataset.kind === 'recorded') $('schema-note').hidden = true;
  return options;
}

// ---------- checking ----------

async function check() {
  const file = state.file;
  state.optionsChanged = false;
  state.checking?.abort();
  stopConflictCheck();
  // Reports against the server's tables are of the file as last checked.
  state.targetReports = new Map();
  const controller = new AbortController();
  state.checking = controller;
  $('check').hidden = false;
  $('report').hidden = true;
  $('send').hidden = true;
  $('checking').hidden = false;
  $('check-bar').value = 0;
  $('check-text').textContent = 'Starting…';
  $('check-cancel').disabled = false;
  announcer.say(`Checking ${file.name}`);
  const rate = new Rate();
  let options;
  try {
    options = await validateOptions();
  } catch (error) {
    $('checking').hidden = true;
    $('check-text').textContent = '';
    showProblem(`The schema is not valid JSON: ${error.message}`);
    return;
  }
  try {
    const report = await validate(file, {
      ...options,
      maxErrors: LISTED_AT_MOST,
      signal: controller.signal,
      onProgress: ({ bytesRead, bytesTotal, documents }) => {
        rate.add(bytesRead);
        $('check-bar').value = bytesTotal ? bytesRead / bytesTotal : 1;
        const speed = rate.perSecond;
        const text = `${bytes(bytesRead)} of ${bytes(bytesTotal)} · ${plural(documents, 'document')}${Number.isFinite(speed) ? ` · ${bytes(speed)}/s` : ''}`;
        $('check-text').textContent = text;
        announcer.progress(`Checking: ${Math.floor((100 * bytesRead) / Math.max(1, bytesTotal))}%`);
      },
    });
    if (state.checking !== controller) return;
    state.report = report;
    $('checking').hidden = true;
    showReport(report);
    $('send').hidden = false;
    refreshUploadState();
    if (state.server) checkConflicts();
  } catch (error) {
    if (state.checking !== controller) return;
    $('checking').hidden = true;
    if (controller.signal.aborted) {
      showProblem('Check cancelled. Choose the file again to check it.', 'neutral');
    } else if (error.code === 'InvalidOptions' && options.schema != null && error.message.startsWith(SCHEMA_OPTION)) {
      // The package speaks of its option; the user gave a file.
      const why = error.message.slice(SCHEMA_OPTION.length).replace(/^: /, '').replace(/^ /, 'it ');
      showProblem(`The schema ${$('schema').files[0]?.name ?? ''} is not one snappack reads: ${why}. Fix it, then Check again.`);
    } else {
      showProblem(`The check could not run: ${error.message}`);
    }
  } finally {
    if (state.checking === controller) state.checking = null;
  }
}

/** A message instead of a report: `bad` for what stops the check, `neutral` for what the user chose. */
function showProblem(text, tone = 'bad') {
  $('report').hidden = false;
  $('verdict').className = `verdict ${tone}`;
  $('verdict').replaceChildren(h('p', { class: 'verdict-title' }, text));
  for (const id of ['tables-box', 'errors-box', 'warnings-box', 'download']) $(id).hidden = true;
  $('tables').tBodies[0].replaceChildren();
  $('storage').textContent = '';
  announcer.say(text);
  // Where the keyboard was (a Cancel button) is gone: the message takes focus.
  $('verdict').focus();
}

// ---------- the report ----------

function showReport(report) {
  $('report').hidden = false;
  $('download').hidden = false;
  const tableCount = report.tables.length;
  const verdict = $('verdict');
  if (report.valid) {
    verdict.className = 'verdict good';
    const title = `Ready to import: ${plural(tableCount, 'table')}, ${plural(report.documents, 'document')}, ${bytes(report.bytes)}.`;
    // A ZIP of none of a Convex export's entries (another archive, say) is valid, and empty.
    const empty = tableCount === 0 && !report.storage.files
      ? `It is empty: no entry of it is a table’s documents.jsonl or a stored file, so it may not be a Convex export. Importing it adds nothing; in ${modeName('replaceAll')} it deletes every table of the server.`
      : null;
    verdict.replaceChildren(
      h('p', { class: 'verdict-title' }, h('span', { 'aria-hidden': 'true' }, '✓ '), title),
      h('p', {}, report.warnings.length ? `Convex would accept this ${inputNoun()}, with ${warningCount(report)} below.` : `Convex would accept this ${inputNoun()} as it is.`),
      ...(empty ? [h('p', {}, empty)] : []),
    );
    announcer.say(empty ? `${title} ${empty}` : title);
  } else {
    verdict.className = 'verdict bad';
    const title = `Not importable: ${plural(report.error_count, 'error')}${whereErrors(report.errors)}.`;
    const hint = formatHint(report);
    verdict.replaceChildren(
      h('p', { class: 'verdict-title' }, h('span', { 'aria-hidden': 'true' }, '✗ '), title),
      h('p', {}, `Convex would refuse this ${inputNoun()}. Fix the errors listed below; uploading is disabled until then.`),
      ...(hint ? [h('p', {}, hint)] : []),
    );
    announcer.say(hint ? `${title} ${hint}` : title);
  }

  const rows = report.tables.map((t) =>
    h('tr', {},
      h('td', {}, t.component || h('span', { class: 'muted' }, '(root)')),
      h('th', { scope: 'row' }, t.name),
      h('td', {}, t.number ?? '—'),
      h('td', {}, NUMBER_SOURCES[t.number_source] ?? t.number_source),
      h('td', { class: 'num' }, integer.format(t.documents)),
      h('td', { class: 'num' }, bytes(t.bytes))));
  // The verdict counts the tables: no table, no header row of one.
  $('tables-box').hidden = rows.length === 0;
  $('tables').tBodies[0].replaceChildren(...rows);
  $('storage').textContent = report.storage.files ? `Stored files: ${integer.format(report.storage.files)} (${bytes(report.storage.bytes)}).` : '';

  $('errors-box').hidden = report.errors.length === 0;
  $('errors-heading').textContent = report.error_count > report.errors.length
    ? `Errors (the first ${integer.format(report.errors.length)} of ${integer.format(report.error_count)})`
    : `Errors (${integer.format(report.error_count)})`;
  $('filter').value = '';
  renderErrors();

  $('warnings-box').hidden = report.warnings.length === 0;
  $('warnings-heading').textContent = report.warning_count > report.warnings.length
    ? `Warnings (the first ${integer.format(report.warnings.length)} of ${integer.format(report.warning_count)})`
    : `Warnings (${integer.format(report.warnings.length)})`;
  $('warnings').replaceChildren(...report.warnings.map(findingItem));
  verdict.focus();
}

/**
 * A table file of the other JSON format than its extension says (JSON lines
 * named .json, a JSON array named .jsonl) fails with Convex's words for a
 * broken file: the extension it needs is said too. Null for other reports.
 */
function formatHint(report) {
  const name = state.file?.name ?? 'The file';
  // A second value after the first: one document a line.
  if (report.format === 'json' && report.errors.some((e) => e.code === 'NotJson' && /trailing characters/.test(e.message))) {
    return `${name} holds more than one JSON value: if it has one document a line (JSON lines), name it .jsonl and choose it again.`;
  }
  // Its first line opens an array: one JSON array of documents.
  if (report.format === 'jsonl' && report.errors.some((e) => e.line === 1 && e.excerpt?.trimStart().startsWith('['))) {
    return `${name} starts with [: if it is one JSON array of documents, name it .json and choose it again.`;
  }
  return null;
}

/** The report's warnings, all of them (it lists at most `LISTED_AT_MOST`). */
function warningCount(report) {
  return plural(Math.max(report.warning_count, report.warnings.length), 'warning');
}

/**
 * Where the listed errors are, as the list groups them: in how many tables,
 * and whether about the archive (errors of no table). Empty for one place.
 */
function whereErrors(errors) {
  const tables = new Set(errors.filter((e) => e.table !== null).map((e) => `${e.component ?? ''}/${e.table}`)).size;
  const archive = errors.some((e) => e.table === null);
  if (tables > 0 && archive) return ` in ${plural(tables, 'table')} and about the archive`;
  return tables > 1 ? ` in ${plural(tables, 'table')}` : '';
}

function place(finding) {
  if (!finding.entry) return finding.table ? `table ${finding.component ? `${finding.component}/` : ''}${finding.table}` : null;
  let text = finding.line ? `${finding.entry}:${finding.line}` : finding.entry;
  if (finding.field) text += `, field ${finding.field}`;
  if (finding.first_line) {
    // The other line: a duplicate's first occurrence, the `_storage` row declaring a file's digest,
    // or where another table took the number first.
    const what = finding.code === 'Sha256Mismatch' ? 'its row at line' : 'first at line';
    text += ` (${what} ${finding.first_line}${finding.first_entry ? ` of ${finding.first_entry}` : ''})`;
  }
  return text;
}

function findingItem(finding) {
  const where = place(finding);
  return h('li', { class: 'finding' },
    h('p', {}, h('code', { class: 'code' }, finding.code), ' ', where ? h('span', { class: 'where' }, where) : null),
    h('p', { class: 'message' }, finding.message),
    finding.excerpt ? h('pre', { class: 'excerpt' }, h('code', {}, finding.excerpt)) : null);
}

/** The group an error is listed under: its table (`component/name`), or '' for the archive. */
function groupOf(finding) {
  return finding.table === null ? '' : tableName({ component: finding.component, name: finding.table });
}

/** An error's text as the list shows it, for the filter: its code, place (`entry:line, field …`), message, excerpt and table. */
function shownText(finding) {
  return [finding.code, place(finding), finding.message, finding.excerpt, groupOf(finding)].filter(Boolean).join('\n');
}

function renderErrors() {
  const report = state.report;
  if (!report) return;
  const needle = $('filter').value.trim().toLowerCase();
  const matches = report.errors.filter((e) => !needle || containsFilter(shownText(e).toLowerCase(), needle));
  const groups = new Map();
  for (const error of matches) {
    const key = groupOf(error);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(error);
  }
  // A capped list counts the errors it lists, not all of a table's.
  const capped = report.error_count > report.errors.length ? ' listed' : '';
  const sections = [...groups].map(([table, errors]) =>
    h('section', { class: 'group' },
      h('h4', {}, table ? `Table ${table}` : report.format === 'zip' ? 'The archive' : 'The file', h('span', { class: 'muted' }, ` — ${plural(errors.length, 'error')}${capped}`)),
      h('ul', { class: 'findings' }, errors.map(findingItem))));
  $('errors').replaceChildren(...sections);
  // Only the listed errors can be searched: a capped list says so.
  const listed = report.error_count > report.errors.length ? ` listed (of ${integer.format(report.error_count)} in all)` : '';
  $('filter-count').textContent = needle
    ? `${integer.format(matches.length)} of the ${plural(report.errors.length, 'error')}${listed} ${matches.length === 1 ? 'matches' : 'match'}.`
    : '';
}

function downloadReport() {
  if (!state.report) return;
  const blob = new Blob([`${JSON.stringify(state.report, null, 2)}\n`], { type: 'application/json' });
  const link = h('a', { href: URL.createObjectURL(blob), download: `${state.file?.name ?? 'snapshot'}.report.json` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// ---------- server and conflicts ----------

function selectedMode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

/** The deflate level chosen for packing. */
function selectedLevel() {
  return Number(document.querySelector('input[name="level"]:checked').value);
}

async function connect(event) {
  event?.preventDefault();
  const url = $('url').value.trim().replace(/\/+$/, '');
  const token = $('token').value;
  saveJson(SERVER_KEY, { url, token });
  stopConflictCheck();
  $('server-status').className = 'status';
  $('server-status').textContent = `Connecting to ${url}…`;
  try {
    const tables = await fetchTables(url, token);
    state.server = { url, token, tables };
    // Imports cancelled here while it did not answer are cancelled now, before one is taken for an upload to go on.
    await retryCancels(state.server);
    showServerTables(tables);
    // Said first: what the check against its tables finds comes after.
    announcer.say($('server-status').textContent);
    await checkConflicts();
    // An upload of this file that stopped (a refused token, another browser) goes on.
    await continuePending();
  } catch (error) {
    state.server = null;
    state.conflicts = null;
    $('server-status').className = 'status bad';
    // A server elsewhere that runs but does not allow this page's origin looks unreachable from here.
    const elsewhere = error.code === 'NetworkError' && new URL(url).origin !== location.origin
      ? ` If it runs, it must allow this page's origin: snappack serve --allow-origin ${location.origin}`
      : '';
    $('server-status').textContent = error.status === 401
      ? 'The server refused the token: enter the right one and Connect.'
      : `Cannot connect: ${error.message}.${elsewhere}`;
    $('conflicts').hidden = true;
    announcer.say($('server-status').textContent);
  }
  refreshUploadState();
}

function showServerTables(tables) {
  const count = tables.tables.length;
  const names = tables.tables.slice(0, 8).map(tableName);
  $('server-status').className = 'status good';
  const more = count > names.length ? ` and ${count - names.length} more` : '';
  $('server-status').textContent = `Connected. The server has ${plural(count, 'table')}${count ? `: ${names.join(', ')}${more}` : ''}.`;
}

/** Stops the running check against the server's tables, which is no longer the page's. */
function stopConflictCheck() {
  const running = state.conflictCheck;
  state.conflictCheck = null;
  state.conflicts = null;
  if (!running) return;
  running.abort();
  // Its progress and Cancel button would stand still.
  $('conflicts').hidden = true;
}

/**
 * Checks the file's report against the server's tables in the chosen mode,
 * and lists the conflicts. A check already running stops: each mode, server
 * or file change starts over. The report's tables are checked without
 * reading the file again; only when that cannot be exact (ids the server's
 * table numbers decide), or the table name or schema changed since the
 * file's check, is the whole file validated with the server's tables, which
 * the box shows with progress and a Cancel button. A report is kept per mode
 * and server tables, and choosing a mode again with the same tables reuses it.
 */
async function checkConflicts() {
  stopConflictCheck();
  state.imported = false;
  const box = $('conflicts');
  if (!state.server || !state.file || !state.report?.valid || state.upload) {
    box.hidden = true;
    refreshUploadState();
    return;
  }
  const controller = new AbortController();
  const { signal } = controller;
  state.conflictCheck = controller;
  const mode = selectedMode();
  const { file, server } = state;
  const bar = h('progress', { max: 1, value: 0, 'aria-label': 'Checking against the server' });
  const numbers = h('p', { class: 'numbers' });
  const cancel = h('button', { type: 'button' }, 'Cancel check');
  cancel.addEventListener('click', () => controller.abort());
  box.hidden = false;
  box.className = 'conflicts neutral';
  box.replaceChildren(h('p', {}, `Checking against the server's tables for ${modeName(mode)}…`), bar, numbers, cancel);
  refreshUploadState();
  const rate = new Rate();
  let report;
  let removed;
  try {
    // The tables as they are now: another import may have changed them.
    server.tables = await fetchTables(server.url, server.token, { signal });
    showServerTables(server.tables);
    const key = `${mode} ${JSON.stringify(server.tables)}`;
    ({ report, removed } = state.targetReports.get(key) ?? {});
    const checked = report || state.optionsChanged ? null : await checkTarget(state.report, { target: server.tables, mode });
    signal.throwIfAborted();
    if (checked?.exact) {
      // The file's report is valid: with the server's tables, its errors are the conflicts.
      const { errors, tables } = checked;
      report = { ...state.report, valid: errors.length === 0, tables, errors, error_count: errors.length };
      removed = checked.removed;
    } else if (!report) {
      report = await validate(file, {
        ...(await validateOptions()),
        target: server.tables,
        mode,
        signal,
        onProgress: ({ bytesRead, bytesTotal }) => {
          rate.add(bytesRead);
          bar.value = bytesTotal ? bytesRead / bytesTotal : 1;
          const speed = rate.perSecond;
          numbers.textContent = `${bytes(bytesRead)} of ${bytes(bytesTotal)}${Number.isFinite(speed) ? ` · ${bytes(speed)}/s` : ''}`;
        },
      });
    }
    // What the import removes from the server's tables (replace and replaceAll).
    removed ??= (checked ?? (await checkTarget(report, { target: server.tables, mode }))).removed;
    signal.throwIfAborted();
    state.targetReports.set(key, { report, removed });
  } catch (error) {
    if (state.conflictCheck !== controller) return;
    state.conflictCheck = null;
    if (signal.aborted) {
      // Named apart from the table file's Check again, which reads the file again.
      const again = h('button', { type: 'button' }, 'Check against the server again');
      again.addEventListener('click', checkConflicts);
      box.className = 'conflicts neutral';
      box.replaceChildren(h('p', {}, 'Check against the server’s tables cancelled. Uploading waits for it.'), again);
      // The Cancel button is gone: the keyboard goes on from the box.
      box.focus();
    } else {
      box.className = 'conflicts bad';
      box.replaceChildren(h('p', {}, `Cannot check against the server: ${error.message}`));
    }
    announcer.say(box.querySelector('p').textContent);
    refreshUploadState();
    return;
  }
  if (state.conflictCheck !== controller) return;
  state.conflictCheck = null;
  const conflicts = report.errors.filter((e) => CONFLICT_CODES.has(e.code));
  const deleted = removed.filter((t) => !t.replaced);
  const replaced = removed.filter((t) => t.replaced);
  // Deleting tables takes a confirmation, given in the box.
  state.conflicts = { mode, report, conflicts, removed, confirmed: deleted.length === 0 };
  const empty = report.tables.length === 0;
  if (report.valid && deleted.length > 0) {
    box.className = 'conflicts warn';
    const documents = deleted.reduce((sum, t) => sum + t.documents, 0);
    const confirm = h('input', { type: 'checkbox', id: 'confirm-delete' });
    confirm.addEventListener('change', () => {
      state.conflicts.confirmed = confirm.checked;
      refreshUploadState();
    });
    box.replaceChildren(
      h('p', { class: 'verdict-title' }, empty
        ? `This snapshot has no tables: in ${modeName(mode)} the import deletes every table of the server (${plural(deleted.length, 'table')}, ${plural(documents, 'document')}) and imports nothing.`
        : `No conflicts, but ${modeName(mode)} deletes ${plural(deleted.length, 'table')} of the server that ${deleted.length === 1 ? 'is' : 'are'} not in this ${inputNoun()} (${plural(documents, 'document')}):`),
      tableList('deleted', deleted),
      ...(replaced.length > 0 ? [replacedNote(replaced)] : []),
      h('p', {}, h('label', {}, confirm, ` Delete ${deleted.length === 1 ? 'this table' : `these ${integer.format(deleted.length)} tables`} when the import finishes`)));
  } else if (report.valid) {
    box.className = 'conflicts good';
    box.replaceChildren(h('p', {}, `No conflicts with the server's tables in ${modeName(mode)}.`));
    if (replaced.length > 0) box.append(replacedNote(replaced));
    if (empty) box.append(h('p', {}, 'This snapshot has no tables: importing it changes nothing.'));
    // The page knows the server's tables, not its documents.
    if (mode === 'append') box.append(h('p', { class: 'help' }, 'A document whose _id the server already has is found by the server as it imports: the import then stops, and nothing of it lands.'));
  } else {
    box.className = 'conflicts bad';
    const others = report.errors.length - conflicts.length;
    box.replaceChildren(
      h('p', { class: 'verdict-title' }, `${plural(report.error_count, 'conflict')} with the server's tables in ${modeName(mode)}:`),
      h('ul', { class: 'findings' }, (conflicts.length ? conflicts : report.errors).map(findingItem)),
      ...(others > 0 && conflicts.length ? [h('p', {}, `and ${plural(others, 'other error')}.`)] : []),
      h('p', { class: 'help' }, 'Choose another mode, or change the server’s tables first.'));
  }
  // The tables a mode deletes are said with its warning: the checkbox that agrees to it does not name them.
  const names = deleted.slice(0, 10).map(tableName).join(', ');
  const more = deleted.length > 10 ? ` and ${integer.format(deleted.length - 10)} more` : '';
  const deleting = report.valid && deleted.length > 0 ? ` Tables deleted: ${names}${more}.` : '';
  // So are the first conflicts, which the title announces with a colon.
  const listed = conflicts.length ? conflicts : report.errors;
  const rest = report.error_count > 3 ? ` And ${integer.format(report.error_count - 3)} more.` : '';
  const conflicting = report.valid ? '' : ` ${listed.slice(0, 3).map((e) => e.message).join(' ')}${rest}`;
  announcer.say(box.querySelector('p').textContent + deleting + conflicting);
  refreshUploadState();
}

/** A table as the page names it: `component/name`, or `name` in the root. */
function tableName(table) {
  return (table.component ? `${table.component}/` : '') + table.name;
}

/** A list of the server's `tables`, each with its documents. */
function tableList(className, tables) {
  return h('ul', { class: className }, tables.map((t) => h('li', {}, tableName(t), h('span', { class: 'muted' }, ` — ${plural(t.documents, 'document')}`))));
}

/** What Replace and Replace all modes do to the server's tables the snapshot has too. */
function replacedNote(replaced) {
  const documents = replaced.reduce((sum, t) => sum + t.documents, 0);
  return h('div', {},
    h('p', {}, `When the import finishes, the ${inputNoun()}’s documents replace the ${plural(documents, 'document')} of ${replaced.length === 1 ? 'this table' : `these ${integer.format(replaced.length)} tables`} of the server:`),
    tableList('replaced', replaced));
}

function modeName(mode) {
  return { requireEmpty: 'Require empty', append: 'Append', replace: 'Replace', replaceAll: 'Replace all' }[mode] + ' mode';
}

function refreshUploadState() {
  const button = $('upload');
  let why = '';
  if (state.upload) why = '';
  else if (state.optionsChanged) why = 'Check again: the table name or schema changed.';
  else if (!state.report?.valid) why = `The ${inputNoun()} has errors.`;
  else if (state.imported) why = 'Imported. To upload this file again, choose a mode (or Connect) to check it against the server’s tables first.';
  else if (!state.server) why = 'Connect to a server first.';
  else if (state.conflictCheck) why = 'Checking for conflicts…';
  else if (!state.conflicts || state.conflicts.mode !== selectedMode()) why = 'Check against the server’s tables first.';
  else if (!state.conflicts.report.valid) why = 'Resolve the conflicts first.';
  else if (!state.conflicts.confirmed) why = 'Confirm above that the tables listed are to be deleted.';
  button.disabled = Boolean(state.upload) || why !== '';
  $('upload-why').textContent = why;
}

// ---------- uploading ----------

/**
 * Packs the chosen file and sends each frame as soon as it is packed.
 * `pending` is a stored record of an interrupted upload of the same file: its
 * import, server, mode and the server tables it was packed against (so the
 * stream is the same bytes).
 */
async function startUpload(pending) {
  if (state.upload || state.starting || !state.file) return;
  const url = pending?.url ?? state.server?.url;
  state.starting = true;
  // One tab of this browser uploads a file to a server at a time: another
  // would take over its import, and find frames it neither checked nor sent.
  // (A file has one record of its upload per server: another tab may send it
  // to another server meanwhile.)
  await requestUploadLock(`snappack-upload-${state.fingerprint}@${url}`, async (lock) => {
    state.starting = false;
    if (lock) return runUpload(pending);
    const note = $('resume-note');
    note.hidden = false;
    // Its record says whether its user paused it there.
    const paused = uploadRecords(state.fingerprint).get(url)?.paused;
    note.textContent = paused
      ? `This file is being uploaded to ${url} in another tab of this browser, where it is paused: Resume there continues it.`
      : `This file is being uploaded to ${url} in another tab of this browser: it goes on there.`;
    announcer.say(note.textContent);
  });
}

/**
 * Runs `callback(lock)` with the lock `name` held by this tab, or with null
 * when another tab of this browser holds it, as a Web Lock asked for if
 * available. A page served over plain HTTP by another machine is no secure
 * context and has no Web Locks: then the tabs ask each other over a
 * BroadcastChannel (see {@link tabLocks}).
 */
async function requestUploadLock(name, callback) {
  if (navigator.locks) return navigator.locks.request(name, { ifAvailable: true }, callback);
  const locks = tabLocks();
  if (!locks) return callback(true);
  if (locks.held.has(name) || (await locks.heldElsewhere(name))) return callback(null);
  locks.held.add(name);
  try {
    return await callback(true);
  } finally {
    locks.held.delete(name);
  }
}

/** How long a tab waits for another to say that it holds a lock. */
const TAB_LOCK_WAIT_MS = 300;

let tabLockChannel;

/**
 * The upload locks of this tab, where Web Locks are missing: `held`, the
 * names this tab holds, and `heldElsewhere(name)`, which asks the other tabs
 * of this page's origin whether one holds `name` (or is asking for it too and
 * comes first: of two tabs asking at once, one goes on). A closed tab holds
 * nothing, as it answers nothing. Null without BroadcastChannel.
 */
function tabLocks() {
  if (tabLockChannel !== undefined) return tabLockChannel;
  if (!globalThis.BroadcastChannel) return (tabLockChannel = null);
  const channel = new BroadcastChannel('snappack-upload-locks');
  const me = `${Date.now()}-${Math.random()}`;
  const held = new Set();
  const asking = new Map(); // name -> the handler of answers to this tab's question
  channel.addEventListener('message', ({ data }) => {
    if (data?.type === 'ask') {
      // Held here, or asked for here first (by the order of the tabs' ids): it is not theirs.
      const mine = held.has(data.name) || (asking.has(data.name) && me < data.asker);
      if (mine) channel.postMessage({ type: 'held', name: data.name, asker: data.asker });
    } else if (data?.type === 'held' && data.asker === me) {
      asking.get(data.name)?.();
    }
  });
  const heldElsewhere = (name) =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        asking.delete(name);
        resolve(false);
      }, TAB_LOCK_WAIT_MS);
      asking.set(name, () => {
        clearTimeout(timer);
        asking.delete(name);
        resolve(true);
      });
      channel.postMessage({ type: 'ask', name, asker: me });
    });
  return (tabLockChannel = { held, heldElsewhere });
}

/** {@link startUpload}'s work, while this tab holds the upload lock of the file and server. */
async function runUpload(pending) {
  // A pending upload is one to this page's server (recordedUpload, findOpenImport).
  const token = state.server?.url === pending?.url ? state.server.token : loadJson(SERVER_KEY)?.token;
  const server = pending ? { url: pending.url, token: token ?? $('token').value } : state.server;
  if (!server?.token) {
    $('resume-note').textContent += ' Enter the server’s token and Connect to continue.';
    return;
  }
  const record = pending ?? {
    url: server.url,
    mode: selectedMode(),
    level: selectedLevel(),
    target: state.server.tables,
    // The table name and schema it is packed with: a continued upload packs with them too.
    options: await validateOptions(),
    importId: null,
    file: state.file.name,
    size: state.file.size,
  };
  // One found on the server by its label is packed with the page's table name (its label's)
  // and schema: kept in its record, so that it is packed with them again after a reload.
  record.options ??= await validateOptions();
  if (state.upload || !state.file) return;
  const key = recordKey(state.fingerprint, server.url);
  const upload = {
    file: state.file,
    report: state.report, // the file's, for what the import removes
    fingerprint: state.fingerprint,
    record,
    key,
    packing: null,
    packed: 0, // the fraction of the file packed so far
    progress: null, // the last progress of sending
    total: null, // the packed stream's size, once it is all packed
    done: 0, // the fraction of the file the server has, as the bar shows it
    pace: null, // { share, at }: the fraction the server had when sending began, and when
    resumedBytes: 0, // continuing: the stream bytes the server had, checked again but not sent
    rechecking: false, // continuing, until packing reached the frames the server lacks
    controller: new AbortController(),
    // A pause is recorded with the upload, and outlives a reload: the user resumes it.
    paused: Boolean(record.paused),
    cancelled: false,
    rate: new Rate(),
    wake: null,
    lost: false, // the server stopped answering, and that was said: { framesSent } then
  };
  state.upload = upload;
  stopConflictCheck();
  // A new import: an open one found on the server is no longer offered.
  if (!pending) $('resume-note').hidden = true;
  if (pending) {
    // The mode of the import being continued; conflicts were shown when it started.
    document.querySelector(`input[name="mode"][value="${record.mode}"]`).checked = true;
    // Continuing packs at the level it started with, so the frames are the same bytes.
    const level = document.querySelector(`input[name="level"][value="${record.level ?? 5}"]`);
    if (level) level.checked = true;
    $('conflicts').hidden = true;
  }
  refreshUploadState();
  for (const input of document.querySelectorAll('#modes input, #levels input, #server input, #server button, #conflicts input')) input.disabled = true;
  $('uploading').hidden = false;
  $('upload-bar').hidden = false;
  $('upload-text').hidden = false;
  $('summary').hidden = true;
  $('pause').textContent = upload.paused ? 'Resume' : 'Pause';
  $('pause').hidden = false;
  $('upload-cancel').hidden = false;
  $('upload-bar').value = 0;
  $('upload-text').textContent = '';
  setUploadState('Checking the tables…');
  announcer.say(upload.paused ? 'The upload is paused: Resume continues it' : pending ? 'Resuming the upload' : 'Upload started');
  // Not on Cancel, where a second Enter would end the upload.
  $('pause').focus();

  try {
    // Continuing: the frames the server has are checked again, not packed.
    let status = null;
    if (record.importId) {
      try {
        status = await fetchImport(server.url, server.token, record.importId);
      } catch (error) {
        // Without the import's status no frame it has can be checked: nothing is packed to send it.
        if (error.retryable) throw new Error(`cannot reach ${server.url} to continue import ${record.importId}: choose the file again, or Connect, to try again`);
        // Otherwise (an unknown import, a refused token) sending finds out and says so.
      }
    }
    // It finished while this page did not hear of it (a reload during the finish): nothing to pack.
    if (status?.state === 'finished') {
      saveJson(key, null);
      await finishUpload(upload, { state: 'finished' }, server);
      return;
    }
    // Another import changed a table of it since: it can no longer finish, however much is
    // sent, so nothing is packed for it (packing would only check again what the server has).
    if ((status?.state === 'open' || status?.state === 'failed') && status.tableChanged) {
      const { message, ...changed } = status.tableChanged;
      throw new UploadError({ ...changed, message: `${message} (import ${record.importId} can no longer finish: Upload starts a new one)`, status: 200 }, record.importId);
    }
    const firstFrame = status?.state === 'open' ? status.nextSeq : 0;
    if (firstFrame > 0) {
      const has = firstFrame === 1 ? 'its first frame' : `its first ${plural(firstFrame, 'frame')}`;
      $('resume-note').textContent += ` The server has ${has}: packing continues from there.`;
      upload.resumedBytes = status.receivedBytes;
      upload.rechecking = true;
      // The bar starts at the share the server had at the last answer this page saw (it has at least that).
      if (record.sent?.frames <= firstFrame) upload.done = record.sent.share;
      setUploadState(sendingState(upload));
      renderUploadProgress(upload);
    }
    upload.packing = startPacking(upload.file, {
      ...record.options,
      target: record.target,
      mode: record.mode,
      level: record.level,
      // A new stream is packed in frames the server takes (its tables, as
      // fetched, say how large); a continued one in its own.
      frameSize: firstFrame > 0 ? status.frameSize : undefined,
      firstFrame,
      // Another file, however like this one in name, size and ends, is refused.
      prefixCrc32: firstFrame > 0 ? status.prefixCrc32 : undefined,
      onProgress: ({ bytesRead, bytesTotal }) => {
        upload.packed = bytesTotal ? bytesRead / bytesTotal : 1;
        // Before the frames to send, packing reads what the server has.
        // (Not while paused: packing goes on past them, and nothing is sent.)
        if (upload.rechecking && !upload.paused) upload.done = Math.max(upload.done, upload.packed);
        renderUploadProgress(upload);
      },
    });
    upload.packing.result.then(({ stream }) => {
      upload.total = stream?.size ?? null;
      renderUploadProgress(upload);
    }, () => {});
    saveJson(key, record);
    const answer = await sendUntilDone(upload, server);
    saveJson(key, null);
    finishUpload(upload, answer, server);
  } catch (error) {
    if (upload.cancelled) {
      await cancelOnServer(upload, server);
    } else {
      if (error.report) showReport(error.report);
      const why = error.code === 'ResumeMismatch' && record.elsewhere ? FOREIGN_MISMATCH : describeFailure(error);
      setUploadState(`Upload failed: ${why}`, 'bad');
      announcer.say(`Upload failed: ${why}`);
      // The import stays open when only the token was refused: Connect with
      // the right one and the upload goes on. Other refusals end it.
      // A refused token: the page is no longer connected, and says so where it says it is.
      if (error.code === 'Unauthorized') {
        state.server = null;
        $('server-status').className = 'status bad';
        $('server-status').textContent = 'The server refused the token: enter the right one and Connect.';
      }
      const ended = error.importId && !error.retryable && error.code !== 'Unauthorized';
      if (ended) {
        saveJson(key, null);
        $('resume-note').hidden = true;
      }
      // Nothing could ever continue it, and left open it would be found again by its label
      // (a refusal of a frame, such as FrameTooLarge, leaves an import open on the server,
      // whose record this page has just dropped).
      // One started elsewhere that could still finish is left to where it was started: there
      // it goes on (this page may only have another table name or schema for it).
      const doomed = error.code === 'TableChanged' || (error.code === 'ResumeMismatch' && !record.elsewhere) || (ended && !record.elsewhere);
      // How far it got stays, without a speed; of an import that ended, nothing was imported.
      // (Shown with the failure, not once the cancel is answered; packing, which would redraw it, stops.)
      upload.packing?.stop();
      showStalled(upload);
      if (ended) $('upload-text').textContent = `${bytes(upload.progress?.bytesSent ?? 0)} sent: nothing of it was imported.`;
      if (doomed) await cancelImport(server, record.importId);
      endUploadAndCheck(upload);
    }
  } finally {
    upload.packing?.stop();
  }
}

/**
 * Whether `text` has `needle`; one ending in `:` and digits (`entry:99`)
 * matches that line only, not lines 990 and on.
 */
function containsFilter(text, needle) {
  if (!/:\d+$/.test(needle)) return text.includes(needle);
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
    if (!/\d/.test(text[at + needle.length] ?? '')) return true;
  }
  return false;
}

/** What the page's user can do about refusals of the import itself, not of its data. */
const PAGE_WORDS = {
  Unauthorized: 'the server refused the token. Enter the right one and Connect: the upload goes on where it stopped.',
  ImportNotOpen: 'the server no longer has this upload open (it was cancelled, or it expired). Upload starts it again.',
  UnknownImport: 'the server does not know this upload (another server, or its data folder was replaced). Upload starts it again.',
  ResumeMismatch: 'the part of this upload the server has is not this file as it is checked now (another file, or another table name or schema), so that import was cancelled. Upload starts a new one.',
};

/** A ResumeMismatch of an import started elsewhere, which is left open. */
const FOREIGN_MISMATCH = 'the part of that upload the server has is not this file as it is checked here (another file, or another table name or schema than where it was started), so it is left open for where it was started. To continue it here, check the file with the table name and schema it was started with, then Connect; or Upload to start a new one.';

function describeFailure(error) {
  if (PAGE_WORDS[error.code]) return PAGE_WORDS[error.code];
  // The page packs frames of the package's default size, which this server's --max-frame-size is
  // under: a server too old to advertise its limit (newer ones get frames of their limit).
  if (error.code === 'FrameTooLarge') {
    return `the server takes smaller frames than this page packs (${error.message}). Its operator can start snappack serve with --max-frame-size ${PAGE_FRAME_SIZE} or more; or upload this file with snappack upload and a --frame-size the server takes.`;
  }
  let text = error.code && error.code !== 'NetworkError' ? `${error.code}: ${error.message}` : error.message;
  if (error.table) text += ` (table ${error.component ? `${error.component}/` : ''}${error.table}${error.line ? `, document ${error.line}` : ''}${error.field ? `, field ${error.field}` : ''})`;
  return text;
}

/**
 * Sends until the server finished the import; pauses and reconnects as long
 * as it takes, while packing goes on.
 */
async function sendUntilDone(upload, server) {
  for (;;) {
    if (upload.cancelled) throw new Error('cancelled');
    if (upload.paused) {
      setUploadState('Paused. The server keeps what it has; Resume continues from there.');
      await new Promise((resolve) => {
        upload.wake = resolve;
      });
      continue;
    }
    upload.controller = new AbortController();
    upload.rate = new Rate();
    setUploadState(sendingState(upload));
    try {
      return await sendUpload(upload.packing, {
        url: server.url,
        token: server.token,
        mode: upload.record.mode,
        importId: upload.record.importId ?? undefined,
        label: importLabel(upload.fingerprint, upload.record.options),
        signal: upload.controller.signal,
        onImport: (id) => {
          upload.record.importId = id;
          saveJson(upload.key, upload.record);
          setUploadState(sendingState(upload));
        },
        onProgress: (progress) => showUploadProgress(upload, progress),
      });
    } catch (error) {
      if (upload.cancelled) throw error;
      if (upload.paused) continue;
      if (error.code === 'ImportNotOpen' && (await isFinished(server, upload.record.importId))) {
        // This file's import finished but its answer was lost (a reload, a pause): it is done.
        return { state: 'finished' };
      }
      if (!error.retryable) throw error;
      // The protocol's own retries gave up: the server is down or the network is gone.
      showStalled(upload);
      setUploadState((left) => `Connection lost (${error.message}). Trying again in ${left}…`, 'warn', RECONNECT_SECONDS * 1000);
      lostConnection(upload);
      await new Promise((resolve) => {
        upload.wake = resolve;
        setTimeout(resolve, RECONNECT_SECONDS * 1000);
      });
    }
  }
}

/** What the upload does while it sends. */
function sendingState(upload) {
  const { importId } = upload.record;
  if (upload.rechecking) return `Continuing import ${importId}: checking again the part of the file the server has, which is not sent twice…`;
  return importId ? `Sending (import ${importId})…` : 'Sending…';
}

async function isFinished(server, importId) {
  const status = await fetchImport(server.url, server.token, importId).catch(() => null);
  return status?.state === 'finished';
}

/** Says once per outage that the server stopped answering (the countdown line is not read out). */
function lostConnection(upload) {
  if (upload.lost) return;
  // Back once frames past these are acknowledged (an answer to a status alone is not the upload going on).
  upload.lost = { framesSent: upload.progress?.framesSent ?? 0 };
  announcer.say('No answer from the server: the upload waits and tries again.');
}

function showUploadProgress(upload, progress) {
  const { state: phase, bytesSent, bytesTotal, packing, retryInMs } = progress;
  if (phase === 'retrying') {
    showStalled(upload);
    setUploadState((left) => `No answer from the server; retrying in ${left}…`, 'warn', retryInMs);
    lostConnection(upload);
    return;
  }
  if (upload.lost && (progress.framesSent > upload.lost.framesSent || phase === 'finished')) {
    upload.lost = false;
    announcer.say('The server answers again: the upload goes on.');
  }
  // Sending only starts once packing reached the frames the server lacks.
  upload.rechecking = false;
  upload.rate.add(bytesSent);
  upload.progress = progress;
  // How far into the file the frames the server acknowledged reach.
  if (progress.inputSent != null) upload.done = Math.max(upload.done, upload.file.size ? progress.inputSent / upload.file.size : 1);
  // Where the share stood when sending began: the time left, while the stream's size is not known, follows its pace.
  upload.pace ??= { share: upload.done, at: performance.now() };
  // Where a continued upload's bar starts, should the page be closed.
  upload.record.sent = { frames: progress.framesSent, share: upload.done };
  saveJson(upload.key, upload.record);
  const percent = renderUploadProgress(upload);
  if (phase === 'sending') setUploadState(!packing && bytesSent >= bytesTotal ? 'Finishing the import…' : sendingState(upload));
  announcer.progress(`Upload ${percent}%`);
}

/** Shows how much of the file the server has, the bytes sent and packing; returns the percentage. */
function renderUploadProgress(upload) {
  const { bytesSent = 0 } = upload.progress ?? {};
  const percent = Math.floor(100 * upload.done);
  const speed = upload.rate.perSecond;
  const rate = !upload.paused && Number.isFinite(speed) && speed > 0 ? ` · ${bytes(speed)}/s` : '';
  let sent;
  const read = `${Math.floor(100 * upload.packed)}% of the file read`;
  if (upload.rechecking && upload.paused) {
    // Continued, then paused before anything was sent: packing goes on past the part the
    // server has, but nothing of it goes out, so what it read is no measure of the upload.
    sent = `paused: the server has ${bytes(upload.resumedBytes)} of it, and nothing more is sent until Resume · packing meanwhile: ${read}`;
  } else if (upload.rechecking) {
    // Packing may be past that part already: what it read is said apart.
    sent = `the server already has ${bytes(upload.resumedBytes)} of it, checked again but not sent · packing: ${read}`;
  } else if (upload.total !== null) {
    const eta = rate ? ` · ${duration((upload.total - bytesSent) / speed)} left` : '';
    // Continued, the stream to send is only what the server lacked.
    const of = upload.resumedBytes > 0 ? `sent of the ${bytes(upload.total)} the server lacked` : `of ${bytes(upload.total)} sent`;
    sent = `${bytes(bytesSent)} ${of}${rate}${eta}`;
  } else {
    const packing = `packing: ${read}`;
    const { pace } = upload;
    const gained = pace ? upload.done - pace.share : 0;
    const eta = rate && gained > 0 ? ` · ${duration(((performance.now() - pace.at) / 1000) * ((1 - upload.done) / gained))} left` : '';
    sent = `${upload.progress ? `${bytes(bytesSent)} sent${rate}${eta}` : 'nothing sent yet'} · ${packing}`;
  }
  $('upload-text').textContent = `${percent}% of the file uploaded · ${sent}`;
  $('upload-bar').value = upload.done;
  return percent;
}

/** The timer of a wait the state line counts down. */
let countdown = null;

/**
 * Shows what the upload does. With `waitMs`, `text` is a function of the
 * time left, shown second by second until the next state.
 */
function setUploadState(text, tone = '', waitMs = 0) {
  clearInterval(countdown);
  const line = $('upload-state');
  line.className = `status ${tone}`;
  if (!waitMs) {
    line.textContent = text;
    return;
  }
  const end = performance.now() + waitMs;
  const tick = () => {
    const shown = text(duration(Math.max(1000, end - performance.now()) / 1000));
    if (line.textContent !== shown) line.textContent = shown;
  };
  tick();
  countdown = setInterval(tick, 200);
}

/** No answer: the bytes stand still, so the upload line shows no speed and no time left. */
function showStalled(upload) {
  upload.rate = new Rate();
  renderUploadProgress(upload);
}

function togglePause() {
  const upload = state.upload;
  if (!upload) return;
  upload.paused = !upload.paused;
  $('pause').textContent = upload.paused ? 'Resume' : 'Pause';
  // Kept with the upload's record (once it has one: it may have ended meanwhile), so that
  // after a reload the upload stays as the user left it.
  upload.record.paused = upload.paused;
  if (loadJson(upload.key)) saveJson(upload.key, upload.record);
  if (upload.paused) {
    upload.controller.abort(new DOMException('paused', 'AbortError'));
    // No speed or time left while paused.
    renderUploadProgress(upload);
    announcer.say('Upload paused');
  } else {
    // The pace is measured again from here: the pause is no part of it.
    upload.pace = null;
    // No longer said to be paused.
    renderUploadProgress(upload);
    announcer.say('Upload resumed');
  }
  upload.wake?.();
}

function cancelUpload() {
  const upload = state.upload;
  if (!upload) return;
  upload.cancelled = true;
  setUploadState('Cancelling…');
  upload.packing?.stop(new DOMException('cancelled', 'AbortError'));
  upload.controller.abort(new DOMException('cancelled', 'AbortError'));
  upload.wake?.();
}

async function cancelOnServer(upload, server) {
  saveJson(upload.key, null);
  const cancelled = await cancelImport(server, upload.record.importId);
  // Cancelled while it finished (its last request had gone out): it is imported.
  if (upload.record.importId && (await isFinished(server, upload.record.importId))) {
    announcer.say('The import had finished before the cancel reached the server.');
    await finishUpload(upload, { state: 'finished' }, server);
    return;
  }
  // The server did not answer: it still has the import open, and is asked again once it is reached.
  const later = cancelled ? '' : ` The server could not be told: it drops what it received of it when this page next connects to ${server.url}.`;
  setUploadState(`Upload cancelled. Nothing of it was imported.${later}`, cancelled ? '' : 'warn');
  announcer.say(`Upload cancelled.${later}`);
  // Nothing of it is on the server: its progress goes.
  $('upload-bar').hidden = true;
  $('upload-text').hidden = true;
  endUploadAndCheck(upload);
}

/**
 * Cancels import `id` on `server`, if any; the server drops what it has of
 * it. Resolves false when the server did not take the cancel (no answer, a
 * failure, a refused token): the import stays open there, so it is
 * remembered and cancelled when the page next reaches that server
 * ({@link retryCancels}), not found later by its label as an upload to go on.
 */
async function cancelImport(server, id) {
  if (!id) return true;
  const others = () => pendingCancels().filter((c) => !(c.url === server.url && c.importId === id));
  // Remembered before it is sent: a page closed meanwhile sends it again.
  saveJson(CANCELS_KEY, [...others(), { url: server.url, importId: id }]);
  let done = false;
  try {
    const response = await fetch(`${server.url}/api/imports/${encodeURIComponent(id)}/cancel`, { method: 'POST', headers: { Authorization: `Bearer ${server.token}` } });
    // Cancelled, or no longer open (finished, failed, cancelled) or known: nothing left to cancel.
    done = response.ok || response.status === 404 || response.status === 409;
  } catch {
    // No answer.
  }
  if (done) {
    const left = others();
    saveJson(CANCELS_KEY, left.length ? left : null);
  }
  return done;
}

/** The imports cancelled while their server did not answer (see {@link cancelImport}). */
function pendingCancels() {
  const list = loadJson(CANCELS_KEY);
  return Array.isArray(list) ? list.filter((c) => typeof c?.url === 'string' && typeof c?.importId === 'string') : [];
}

/** Cancels on `server` the imports cancelled here while it did not answer. */
async function retryCancels(server) {
  for (const { url, importId } of pendingCancels()) {
    if (url === server.url) await cancelImport(server, importId);
  }
}

function endUpload(upload) {
  if (state.upload !== upload) return;
  state.upload = null;
  // A file refused while it was uploading may have replaced its line.
  if (state.file === upload.file) $('file-info').textContent = `${upload.file.name} · ${bytes(upload.file.size)}`;
  // Buttons about to be hidden must not take the keyboard focus with them.
  if ([$('pause'), $('upload-cancel')].includes(document.activeElement)) $('upload-state').focus();
  // Nothing is left to pause or cancel.
  $('pause').hidden = true;
  $('upload-cancel').hidden = true;
  for (const input of document.querySelectorAll('#modes input, #levels input, #server input, #server button, #conflicts input')) input.disabled = false;
  refreshUploadState();
}

/**
 * After an upload that imported nothing: the server's tables may have
 * changed all the same, so the page shows what the next upload would meet.
 */
function endUploadAndCheck(upload) {
  endUpload(upload);
  // Without a server (its token was refused), no check: none is shown.
  if (state.server) checkConflicts();
  else $('conflicts').hidden = true;
}

async function finishUpload(upload, answer, server) {
  $('resume-note').hidden = true;
  $('upload-bar').value = 1;
  const sent = upload.total ?? upload.progress?.bytesTotal;
  // Found finished (its answer was lost), this page sent nothing of it now.
  $('upload-text').textContent = sent === undefined || sent === null ? 'The server has the whole file.' : `${bytes(sent)} sent.`;
  setUploadState('Finished.', 'good');
  // The server now holds this file: a check of it against the server's tables
  // would list its own tables as conflicts. The next check is asked for.
  state.imported = true;
  $('conflicts').hidden = true;
  endUpload(upload);
  // The server's tables changed: the connection line says what it has now.
  const now = await fetchTables(server.url, server.token).catch(() => null);
  if (now && state.server?.url === server.url) {
    state.server.tables = now;
    showServerTables(now);
  }
  // Resumed after the import had finished: the server's tables say what is there.
  // In the order of the check's table of tables, then by name.
  const order = new Map(upload.report.tables.map((t, i) => [tableName(t), i]));
  const place = (t) => order.get(tableName(t)) ?? order.size;
  // Without the finish's answer (it was lost, or a pause cut it), the server's tables that are the snapshot's.
  const imported = answer.tables ?? (now?.tables ?? []).filter((t) => order.has(tableName(t)));
  const tables = [...imported].sort((a, b) => place(a) - place(b) || tableName(a).localeCompare(tableName(b)));
  const documents = tables.reduce((sum, t) => sum + (t.documents ?? 0), 0);
  const title = `Imported: ${plural(tables.length, 'table')}, ${plural(documents, 'document')} (import ${upload.record.importId}, ${modeName(upload.record.mode)}).`;
  // Replace all deleted the tables the server had when the upload started and the snapshot lacks.
  let deletions = null;
  if (upload.record.mode === 'replaceAll') {
    const { removed } = await checkTarget(upload.report, { target: upload.record.target, mode: 'replaceAll' }).catch(() => ({ removed: [] }));
    const deleted = removed.filter((t) => !t.replaced);
    deletions = h('p', {}, deleted.length === 0
      ? `No table of the server was deleted: it had none that this ${inputNoun()} lacks.`
      : `Deleted, as ${modeName('replaceAll')} does: ${plural(deleted.length, 'table')} not in this ${inputNoun()} (${deleted.map((t) => `${tableName(t)}, ${plural(t.documents, 'document')}`).join('; ')}).`);
  }
  const summary = $('summary');
  summary.hidden = false;
  summary.className = 'summary good';
  summary.replaceChildren(
    h('p', { class: 'verdict-title' }, h('span', { 'aria-hidden': 'true' }, '✓ '), title),
    h('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Imported tables' },
      h('table', {},
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Component'), h('th', { scope: 'col' }, 'Table'), h('th', { scope: 'col' }, 'Number'), h('th', { scope: 'col', class: 'num' }, 'Documents'), h('th', { scope: 'col' }, 'How'))),
        h('tbody', {}, tables.map((t) => h('tr', {},
          h('td', {}, t.component || h('span', { class: 'muted' }, '(root)')),
          h('th', { scope: 'row' }, t.name),
          h('td', {}, t.number),
          h('td', { class: 'num' }, integer.format(t.documents ?? 0)),
          h('td', {}, t.appended === undefined ? '' : t.appended ? 'appended' : 'imported')))))));
  // An empty snapshot imports no table: no empty table of them.
  if (tables.length === 0) summary.querySelector('.scroll').remove();
  if (deletions) summary.append(deletions);
  announcer.say(deletions ? `${title} ${deletions.textContent}` : title);
  summary.focus();
}

// ---------- wiring ----------

function init() {
  // Checking a file needs nothing from the server once the page has loaded
  // (it may go away): the WebAssembly and the workers are kept from now.
  // Should that fail, a check fetches them again, and says so if it cannot.
  preload().catch(() => {});
  for (const type of ['click', 'keydown', 'change', 'drop']) {
    document.addEventListener(type, () => (announcer.acted = true), { capture: true });
  }
  const saved = loadJson(SERVER_KEY);
  $('url').value = saved?.url ?? location.origin;
  $('token').value = saved?.token ?? '';

  $('choose').addEventListener('click', () => $('file').click());
  $('file').addEventListener('change', () => {
    choose($('file').files[0]);
    $('file').value = '';
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const files = event.dataTransfer?.files ?? [];
    const folder = Boolean(event.dataTransfer?.items?.[0]?.webkitGetAsEntry?.()?.isDirectory);
    choose(files[0], { others: files.length - 1, folder });
  });
  // A file dropped next to the zone must not replace the page.
  window.addEventListener('dragover', (event) => event.preventDefault());
  window.addEventListener('drop', (event) => event.preventDefault());

  $('single').addEventListener('submit', (event) => {
    event.preventDefault();
    if (state.file && !state.upload) check();
  });
  // The report is of the table name and schema it was checked with.
  const optionsChanged = () => {
    state.optionsChanged = true;
    refreshUploadState();
  };
  $('table').addEventListener('input', optionsChanged);
  // A schema is picked to be used: the file is checked with it at once.
  $('schema').addEventListener('change', () => {
    $('schema-note').hidden = true;
    if (state.file && !state.upload) check();
    else optionsChanged();
  });
  $('check-cancel').addEventListener('click', () => state.checking?.abort());
  $('download').addEventListener('click', downloadReport);
  $('filter').addEventListener('input', renderErrors);
  $('server').addEventListener('submit', connect);
  $('modes').addEventListener('change', checkConflicts);
  // After an import, choosing the mode already chosen checks again too: a
  // click on it fires no change (one that does has checked by now).
  $('modes').addEventListener('click', (event) => {
    if (!event.target.matches('input[name="mode"]')) return;
    setTimeout(() => state.imported && checkConflicts());
  });
  // An upload of this file that stopped and can go on (a refused token) does.
  $('upload').addEventListener('click', () => startUpload(recordedUpload()));
  $('pause').addEventListener('click', togglePause);
  $('upload-cancel').addEventListener('click', cancelUpload);
  window.addEventListener('online', () => state.upload?.wake?.());

  if (saved?.token) connect();
}

init();
