// The web page (www/) in real Chromium (Debian's, driven by playwright-core)
// against a real `snappack serve`: a valid snapshot dropped, checked, uploaded
// and found in the server's database; an invalid one listed with entry:line
// and not uploadable; an upload that survives the server being killed and
// restarted; an upload resumed after a page reload by picking the file again.
//
// Run: npm run test:browser. Screenshots of every state are written to
// target/browser-artifacts/.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { strToU8, zipSync } from 'fflate';
import { chromium } from 'playwright-core';

import { ROOT, cli, freePort, gen, scratch } from '../node/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = join(ROOT, 'target', 'browser-artifacts');
const TOKEN = 'browser-test-token';
const TIMEOUT = 20_000;

const dir = scratch();
let context;
const servers = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  cli();
  context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'chromium-profile-')), {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1100, height: 900 },
  });
});

after(async () => {
  await context?.close();
  for (const server of servers) server.stop();
});

/** A `snappack serve` with its own data folder and SQLite database, serving www/. */
async function startServer(existing, { args = [] } = {}) {
  const server = existing ?? {
    port: await freePort(),
    dataDir: mkdtempSync(join(dir, 'server-')),
    process: null,
  };
  server.url = `http://127.0.0.1:${server.port}`;
  server.process = spawn(
    cli(),
    ['serve', '--listen', `127.0.0.1:${server.port}`, '--data-dir', server.dataDir, '--www', join(ROOT, 'www'), '--token', TOKEN, ...args],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  server.stop = () => server.process?.kill('SIGKILL');
  if (!existing) servers.push(server);
  for (let i = 0; ; i += 1) {
    try {
      const response = await fetch(`${server.url}/api/tables`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      if (response.ok) break;
    } catch {
      // not up yet
    }
    if (i > 200) throw new Error('snappack serve did not start');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return server;
}

/** Kills the server at once (SIGKILL), as a crash would. */
async function killServer(server) {
  const exited = new Promise((resolve) => server.process.once('exit', resolve));
  server.process.kill('SIGKILL');
  await exited;
}

async function serverTables(server) {
  const response = await fetch(`${server.url}/api/tables`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return (await response.json()).tables;
}

/** Every generated table is on the server with all its documents, and the stored files' rows too. */
async function assertLanded(server, summary) {
  const tables = await serverTables(server);
  const find = (component, name) => tables.find((t) => t.component === component && t.name === name);
  for (const table of summary.tables) {
    const found = find(table.component, table.name);
    assert.ok(found, `table ${table.component}/${table.name} is on the server`);
    assert.equal(found.documents, table.documents, `documents of ${table.component}/${table.name}`);
    assert.equal(found.number, table.number, `number of ${table.component}/${table.name}`);
  }
  const files = new Map();
  for (const file of summary.storage) files.set(file.component, (files.get(file.component) ?? 0) + 1);
  for (const [component, count] of files) {
    assert.equal(find(component, '_storage')?.documents, count, `_storage rows of component "${component}"`);
  }
}

/** A page of `server`'s; `beforeLoad(page)` runs before it loads (to route its requests). */
async function newPage(server, { init, beforeLoad } = {}) {
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  if (init) await page.addInitScript(init);
  await beforeLoad?.(page);
  page.on('pageerror', (error) => console.error('page error:', error));
  // The page's own files (the API's refusals are tests' business).
  page.failedFiles = [];
  page.on('response', (response) => {
    const { pathname } = new URL(response.url());
    if (response.status() >= 400 && !pathname.startsWith('/api/')) page.failedFiles.push(pathname);
  });
  await page.goto(server.url);
  return page;
}

/**
 * For `newPage`'s `init`: counts the page's Web Workers alive (the package ends each with
 * terminate()), the most at once, and those started, and their requests; not the workers
 * `preload` starts to see that they can (named `snappack-<kind>-preload`), as the page loads.
 */
function countWorkers() {
  const Native = window.Worker;
  const workers = { alive: 0, most: 0, started: 0, requests: [] };
  window.workers = workers;
  window.Worker = class extends Native {
    constructor(...args) {
      super(...args);
      this.probe = /-preload$/.test(args[1]?.name ?? '');
      if (this.probe) return;
      workers.alive += 1;
      workers.started += 1;
      workers.most = Math.max(workers.most, workers.alive);
    }

    postMessage(message, ...rest) {
      if (!this.probe) workers.requests.push(message?.type);
      super.postMessage(message, ...rest);
    }

    terminate() {
      if (!this.ended && !this.probe) workers.alive -= 1;
      this.ended = true;
      super.terminate();
    }
  };
}

/**
 * Holds the page's WebAssembly module back until the returned function is
 * called: a check started meanwhile is still running. Called before the page
 * loads (`newPage`'s `beforeLoad`), since the page preloads it.
 */
async function holdWasm(page) {
  let release;
  const held = new Promise((resolve) => {
    release = resolve;
  });
  await page.route('**/snappack_bg.wasm', async (route) => {
    await held;
    await route.continue();
  });
  return release;
}

/** Holds every request to the server's tables list until it is released, and returns the held ones. */
async function holdTables(page) {
  const held = [];
  await page.route('**/api/tables', (route) => held.push(route));
  return held;
}

/** Lets the held requests go on (those the page aborted meanwhile fail), and stops holding new ones. */
async function releaseTables(page, held) {
  await page.unroute('**/api/tables');
  for (const route of held.splice(0)) await route.continue().catch(() => {});
}

async function until(condition) {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Drops `path` on the drop zone, as a drag from the desktop would. */
async function dropFile(page, path, name) {
  const dataTransfer = await page.evaluateHandle(
    ({ base64, name }) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      const transfer = new DataTransfer();
      transfer.items.add(new File([bytes], name, { type: 'application/zip', lastModified: 1_700_000_000_000 }));
      return transfer;
    },
    { base64: readFileSync(path).toString('base64'), name },
  );
  await page.dispatchEvent('#drop', 'drop', { dataTransfer });
}

async function connect(page) {
  await page.fill('#token', TOKEN);
  await page.click('#server button[type="submit"]');
  await page.waitForSelector('#server-status.good');
}

/** Picks `path`, waits for it to check out, connects, and waits for no conflicts with the server's tables. */
async function pickAndConnect(page, path) {
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  await connect(page);
  await page.waitForSelector('#conflicts.good');
}

/** Picks the table file at `path` and checks it again as table `table`. */
async function pickTableFile(page, path, table) {
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  await page.fill('#table', table);
  await page.click('#single button[type="submit"]');
  await page.waitForSelector('#verdict.good');
}

/** Slows every frames request down, so an upload takes long enough to be interrupted. */
async function slowFrames(page, ms) {
  await page.route('**/frames?*', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, ms));
    try {
      await route.continue();
    } catch {
      // The page went away meanwhile.
    }
  });
}

/** The percentage of the file uploaded, as the upload progress shows it. */
async function uploadedPercent(page) {
  const text = await page.textContent('#upload-text');
  const match = /^(\d+)% of the file uploaded/.exec(text ?? '');
  return match ? Number(match[1]) : 0;
}

async function waitForPercent(page, atLeast) {
  await page.waitForFunction((min) => {
    const match = /^(\d+)% of the file uploaded/.exec(document.getElementById('upload-text')?.textContent ?? '');
    return match && Number(match[1]) >= min;
  }, atLeast);
}

/** Records every value the upload bar shows, with the text beside it, and every state of the upload, from now on. */
async function recordUploadBar(page) {
  await page.evaluate(() => {
    window.uploadBar = [];
    window.uploadStates = [];
    const record = () => window.uploadBar.push([document.getElementById('upload-bar').value, document.getElementById('upload-text').textContent]);
    new MutationObserver(record).observe(document.getElementById('upload-text'), { childList: true, characterData: true, subtree: true });
    const state = document.getElementById('upload-state');
    new MutationObserver(() => window.uploadStates.push(state.textContent)).observe(state, { childList: true, characterData: true, subtree: true });
  });
}

/** The bar never goes back, its text says the same percentage, and it ends full. */
async function assertBarHonest(page) {
  const shown = await page.evaluate(() => window.uploadBar);
  assert.ok(shown.length > 3, `${shown.length} updates`);
  for (let i = 1; i < shown.length; i++) {
    assert.ok(shown[i][0] >= shown[i - 1][0], `the bar went back: ${JSON.stringify(shown.slice(i - 1, i + 1))}`);
  }
  for (const [value, text] of shown) {
    const match = /^(\d+)% of the file uploaded/.exec(text);
    if (match) assert.equal(Number(match[1]), Math.floor(100 * value), text);
  }
  assert.equal(shown.at(-1)[0], 1);
}

/** A snapshot large enough for several requests of frames. */
function bigSnapshot(name) {
  const path = join(dir, name);
  const summary = gen(path, {
    seed: 7,
    tables: 3,
    totalDocuments: 24_000,
    components: ['billing'],
    storageFiles: 2,
    compressionLevel: 1,
    document: { fields: 8, maxStringLen: 200 },
  });
  return { path, summary };
}

/**
 * A server, a page with `bigSnapshot(name)` picked, checked and connected,
 * and frames slowed to `slowMs` each, so that its upload can be interrupted.
 */
async function readyToUpload(name, slowMs) {
  const server = await startServer();
  const { path, summary } = bigSnapshot(name);
  const page = await newPage(server);
  await pickAndConnect(page, path);
  await slowFrames(page, slowMs);
  return { server, path, summary, page };
}

/** Writes a JSON-lines table file of 40,000 people (about 4 MB): long enough to interrupt. */
function writePeople(path) {
  const lines = [];
  for (let i = 0; i < 40_000; i++) lines.push(JSON.stringify({ name: `person ${i}`, n: i, note: 'x'.repeat(i % 150) }));
  writeFileSync(path, `${lines.join('\n')}\n`);
}

test('a valid snapshot dropped: report, upload, every row in the database', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'valid.zip');
  const summary = gen(path, { seed: 1, tables: 5, totalDocuments: 3000, components: ['billing'], storageFiles: 2, compressionLevel: 1 });
  const page = await newPage(server);
  assert.equal(await page.isHidden('#load-error'), true, 'the package loads from www/pkg');
  await shot(page, '01-empty');

  await dropFile(page, path, 'valid.zip');
  await page.waitForSelector('#verdict.good');
  assert.deepEqual(page.failedFiles, [], 'every file the page asked for was there');
  const storageTables = new Set(summary.storage.map((f) => f.component)).size;
  const tableCount = summary.tables.length + storageTables;
  const documents = (3000 + summary.storage.length).toLocaleString('en-US');
  assert.match(await page.textContent('#verdict'), new RegExp(`Ready to import: ${tableCount} tables, ${documents} documents`));
  assert.equal(await page.locator('#tables tbody tr').count(), tableCount);
  assert.equal(await page.isHidden('#errors-box'), true);
  assert.equal(await page.getAttribute('#live', 'aria-live'), 'polite');
  assert.match(await page.textContent('#live'), /Ready to import/);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'verdict');
  assert.equal(await page.isDisabled('#upload'), true, 'no upload before a server is chosen');
  await shot(page, '02-valid-report');

  await connect(page);
  await page.waitForSelector('#conflicts.good');
  assert.equal(await page.textContent('#conflicts'), "No conflicts with the server's tables in Require empty mode.");
  assert.equal(await page.isEnabled('#upload'), true);
  await shot(page, '03-connected');

  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])');
  const done = await page.textContent('#summary');
  assert.match(done, new RegExp(`Imported: ${tableCount} tables, ${documents} documents`));
  assert.match(done, /imported$/, 'the summary ends with its table');
  // Its tables in the order the check listed them.
  const tableOrder = (selector) => page.$$eval(`${selector} tbody tr`, (rows) => rows.map((r) => `${r.cells[0].textContent}/${r.cells[1].textContent}`));
  assert.deepEqual(await tableOrder('#summary'), await tableOrder('#tables'));
  // The server now holds these tables: no check of them against themselves shows as conflicts.
  await page.waitForFunction(() => /^Imported\. To upload this file again/.test(document.getElementById('upload-why').textContent));
  assert.equal(await page.isHidden('#conflicts'), true, 'no conflicts box after the import');
  assert.equal(await page.isHidden('#pause'), true, 'nothing left to pause');
  assert.equal(await page.isHidden('#upload-cancel'), true, 'nor to cancel');
  assert.equal(await page.isDisabled('#upload'), true);
  // The connection line says what the server holds now.
  assert.match(await page.textContent('#server-status'), new RegExp(`^Connected\\. The server has ${tableCount} tables: `));
  await shot(page, '04-uploaded');
  await assertLanded(server, summary);
  // Choosing the mode already chosen checks it again, as the hint says.
  await page.click('input[name="mode"]:checked');
  await page.waitForSelector('#conflicts.bad');
  assert.match(await page.textContent('#conflicts'), /conflict/);

  // The same snapshot again in Require empty mode conflicts with what is now there.
  await dropFile(page, path, 'valid.zip');
  await page.waitForSelector('#conflicts.bad');
  assert.match(await page.textContent('#conflicts'), /TableExists/);
  assert.equal(await page.isDisabled('#upload'), true);
  // More tables than the status names (8).
  assert.match(await page.textContent('#server-status'), new RegExp(`^Connected\\. The server has ${tableCount} tables: [^…]* and ${tableCount - 8} more\\.$`));
  await page.check('input[value="replace"]');
  await page.waitForSelector('#conflicts.good');
  assert.equal(await page.isEnabled('#upload'), true);
  // Replace lists the server's tables whose documents go, without asking: the mode says it.
  const replacing = (await serverTables(server)).filter((t) => t.documents > 0);
  const replacedDocuments = replacing.reduce((sum, t) => sum + t.documents, 0);
  assert.match(await page.textContent('#conflicts'), new RegExp(`the snapshot’s documents replace the ${replacedDocuments.toLocaleString('en-US')} documents of these ${replacing.length} tables of the server`));
  assert.equal(await page.locator('#conflicts ul.replaced li').count(), replacing.length);
  await shot(page, '05-conflicts-then-replace');

  // Cancelled mid-way: the server cancels the import and its tables stay as they were.
  const tablesBefore = await serverTables(server);
  await slowFrames(page, 1500);
  await page.click('#upload');
  await page.waitForFunction(() => /import [0-9a-f]+/.test(document.getElementById('upload-state').textContent));
  // Another file is refused while this one uploads; once the upload ends, the file's line is back.
  const fileLine = await page.textContent('#file-info');
  await page.setInputFiles('#file', path);
  await page.waitForFunction(() => /is being uploaded: cancel that upload/.test(document.getElementById('file-info').textContent));
  await page.click('#upload-cancel');
  await page.waitForFunction(() => /Upload cancelled/.test(document.getElementById('upload-state').textContent));
  assert.equal(await page.textContent('#file-info'), fileLine);
  await shot(page, '05b-cancelled');
  assert.equal(await page.isHidden('#upload-bar'), true, 'a cancelled upload leaves no progress bar');
  assert.equal(await page.isHidden('#upload-text'), true, 'nor its percentage and speed');
  assert.equal(await page.isHidden('#pause'), true, 'nor its Pause button');
  assert.equal(await page.isHidden('#upload-cancel'), true, 'nor its Cancel button');
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['finished', 'cancelled']);
  assert.deepEqual(await serverTables(server), tablesBefore);
  await page.waitForSelector('#conflicts.good');
  assert.equal(await page.isEnabled('#upload'), true, 'a new upload can start');

  // Appended to itself, the server refuses its ids: the page does not call the file uploaded.
  await page.unroute('**/frames?*');
  await page.check('input[name="mode"][value="append"]');
  await page.waitForSelector('#conflicts.good');
  await page.click('#upload');
  await page.waitForFunction(() => /Upload failed: DocumentExists/.test(document.getElementById('upload-state').textContent));
  assert.match(await page.textContent('#upload-text'), /^\S+ \S+ sent: nothing of it was imported\.$/);
  assert.match(await page.textContent('#live'), /Upload failed: DocumentExists/);
  await page.close();
});

test('an invalid snapshot: errors with entry:line, upload disabled', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'invalid.zip');
  const summary = gen(path, {
    seed: 2,
    tables: 2,
    totalDocuments: 2000,
    compressionLevel: 1,
    faults: ['duplicateId', 'badJsonLine', 'underscoreField'],
  });
  const page = await newPage(server);
  // Keyboard only: the file picker is the first stop of the tab order.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'choose');
  await page.evaluate(() => {
    document.getElementById('file').addEventListener('click', () => {
      window.pickerOpened = true;
    });
  });
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.pickerOpened === true);
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.bad');
  await connect(page);
  assert.match(await page.textContent('#verdict'), /Not importable: 3 errors/);
  const errors = await page.textContent('#errors');
  for (const fault of summary.faults) {
    assert.ok(errors.includes(fault.code), `${fault.code} is listed`);
    assert.ok(errors.includes(`${fault.entry}:${fault.line}`), `${fault.entry}:${fault.line} is listed`);
  }
  assert.ok(errors.includes(', field _id'), 'the field of the duplicate id is named');
  assert.ok(await page.locator('#errors .excerpt').count() >= 2, 'excerpts of the lines are shown');
  assert.equal(await page.isDisabled('#upload'), true);
  assert.match(await page.textContent('#upload-why'), /errors/);
  await shot(page, '06-invalid-report');

  await page.fill('#filter', 'DuplicateId');
  assert.equal(await page.locator('#errors .finding').count(), 1);
  assert.match(await page.textContent('#filter-count'), /^1 of the 3 errors matches\.$/);
  await shot(page, '07-invalid-filtered');
  // The filter finds an error by its place as shown, entry:line.
  const [fault] = summary.faults;
  await page.fill('#filter', `${fault.entry}:${fault.line}`);
  assert.equal(await page.locator('#errors .finding').count(), 1);
  assert.match(await page.textContent('#errors .finding'), new RegExp(fault.code));
  // Only that line: line 100 does not find line 1000.
  assert.equal(fault.line, 1000, 'the generator put the duplicate on line 1000');
  await page.fill('#filter', `${fault.entry}:100`);
  assert.equal(await page.locator('#errors .finding').count(), 0);

  const download = page.waitForEvent('download');
  await page.click('#download');
  const report = JSON.parse(readFileSync(await (await download).path(), 'utf8'));
  assert.equal(report.valid, false);
  assert.equal(report.error_count, 3);
  assert.deepEqual(await serverTables(server), [], 'nothing reached the server');
  await page.close();
});

test('once the page has loaded, files are checked without the server, which may be gone', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server, { init: countWorkers });
  // The page fetched the workers' scripts at load, before any check (then waits for the rest of its preload).
  await page.waitForFunction(() => {
    const fetched = performance.getEntriesByType('resource').map((entry) => new URL(entry.name).pathname);
    return ['/pkg/worker.js', '/pkg/pack-worker.js', '/pkg/web/snappack_bg.wasm'].every((path) => fetched.includes(path));
  });
  await page.evaluate(async () => (await import('./pkg/browser.js')).preload());
  await killServer(server);
  // A large archive (several workers and their merge), an invalid one, and a table file.
  const { path } = bigSnapshot('big-offline.zip');
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  assert.ok(await page.evaluate(() => window.workers.most > 1), 'several workers shared the archive');
  const invalid = join(dir, 'invalid-offline.zip');
  gen(invalid, { seed: 3, tables: 2, documentsPerTable: 50, faults: ['duplicateId'] });
  await page.setInputFiles('#file', invalid);
  await page.waitForSelector('#verdict.bad');
  assert.match(await page.textContent('#errors'), /DuplicateId/);
  const table = join(dir, 'offline.jsonl');
  writeFileSync(table, '{"a":1}\n');
  await page.setInputFiles('#file', table);
  await page.waitForSelector('#verdict.good');
  await page.close();
});

test("the package's preload(): validate and pack start their workers from memory after it; a failed one changes nothing", { timeout: 60_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'preload.zip');
  gen(path, { seed: 4, tables: 2, documentsPerTable: 20 });
  const good = readFileSync(path).toString('base64');
  const page = await newPage(server);
  await page.evaluate(async () => (await import('./pkg/browser.js')).preload());
  // Nothing more of the package can be fetched.
  await page.route('**/pkg/**', (route) => route.abort());
  const offline = await page.evaluate(async (good) => {
    const { validate, pack } = await import('./pkg/browser.js');
    const bytes = Uint8Array.from(atob(good), (c) => c.charCodeAt(0));
    const report = await validate(bytes, { fileName: 'preload.zip' });
    let packed = 0;
    for await (const chunk of pack(bytes, { fileName: 'preload.zip', target: { tables: [] } })) packed += chunk.byteLength;
    return { valid: report.valid, packed };
  }, good);
  assert.equal(offline.valid, true);
  assert.ok(offline.packed > 0, 'packed without the server');
  await page.close();

  // One script missing: preload says so, and calls fetch what they need as before.
  const partial = await newPage(server, { beforeLoad: (p) => p.route('**/pkg/pack-worker.js', (route) => route.fulfill({ status: 404, body: 'gone' })) });
  const result = await partial.evaluate(async (good) => {
    const { preload, validate } = await import('./pkg/browser.js');
    const failure = await preload().then(() => null, (e) => ({ name: e.name, code: e.code, message: e.message }));
    const bytes = Uint8Array.from(atob(good), (c) => c.charCodeAt(0));
    return { failure, valid: (await validate(bytes, { fileName: 'preload.zip' })).valid };
  }, good);
  assert.equal(result.failure.code, 'WorkerFailed');
  assert.match(result.failure.message, /pack-worker\.js: HTTP 404/);
  assert.equal(result.valid, true);
  await partial.close();
});

test('the server killed and restarted mid-upload: the upload completes', { timeout: 120_000 }, async () => {
  const { server, summary, page } = await readyToUpload('big-kill.zip', 400);
  await page.click('#upload');
  await waitForPercent(page, 1);
  const before = await uploadedPercent(page);
  assert.ok(before < 100, 'the upload is still going');
  await killServer(server);
  await page.waitForSelector('#upload-state.warn');
  await shot(page, '08-server-down');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await startServer(server);
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  await shot(page, '09-after-restart-finished');
  await assertLanded(server, summary);
  await page.close();
});

test("after a reload, the import's status cannot be read: nothing is packed blind, and it goes on once it can", { timeout: 120_000 }, async () => {
  const { server, path, summary, page } = await readyToUpload('big-down.zip', 400);
  await page.click('#upload');
  await waitForPercent(page, 1);
  await page.reload();
  // Recorded as earlier versions of the page did, one record per file (not per server): it is found all the same.
  await page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('snappack.import.'));
    localStorage.setItem(key.slice(0, key.indexOf('@')), localStorage.getItem(key));
    localStorage.removeItem(key);
  });
  // The import's status does not come through; the rest does.
  const status = /\/api\/imports\/[0-9a-f]+$/;
  await page.route('**/api/imports/*', (route) => (route.request().method() === 'GET' && status.test(route.request().url()) ? route.abort('connectionrefused') : route.continue()));
  const frames = [];
  page.on('request', (request) => request.url().includes('/frames?') && frames.push(request.url()));
  await page.setInputFiles('#file', path);
  await page.waitForFunction(() => /Upload failed: cannot reach .* to continue import [0-9a-f]+/.test(document.getElementById('upload-state').textContent));
  assert.deepEqual(frames, [], 'nothing was sent');
  const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('snappack.import.')).length);
  assert.equal(stored, 1, 'the upload is still remembered');
  await page.unroute('**/api/imports/*');
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['finished'], 'the same import went on');
  await assertLanded(server, summary);
  await page.close();
});

test('a reload mid-upload, the same file picked again: the same import resumes', { timeout: 120_000 }, async () => {
  const { server, path, summary, page } = await readyToUpload('big-reload.zip', 400);
  await page.check('input[name="level"][value="1"]');
  await page.click('#upload');
  await waitForPercent(page, 1);
  await shot(page, '10-uploading');
  await page.click('#pause');
  await page.waitForFunction(() => /Paused/.test(document.getElementById('upload-state').textContent));
  assert.equal(await page.textContent('#pause'), 'Resume');
  // Paused, nothing moves: no speed, no time left.
  assert.doesNotMatch(await page.textContent('#upload-text'), /\/s|left/);
  await shot(page, '10b-paused');
  const paused = await uploadedPercent(page);
  await page.click('#pause');
  await waitForPercent(page, paused + 1);
  const beforeReload = await uploadedPercent(page);
  const stored = await page.evaluate(() => {
    const key = Object.keys(localStorage).find((k) => k.startsWith('snappack.import.'));
    return key && JSON.parse(localStorage.getItem(key));
  });
  assert.ok(stored?.importId, 'the import id is remembered with the file fingerprint');
  assert.equal(stored.level, 1, 'with the compression chosen');

  await page.reload();
  const sequences = [];
  page.on('request', (request) => {
    const match = /\/api\/imports\/([0-9a-f]+)\/frames\?seq=(\d+)/.exec(request.url());
    if (match) sequences.push([match[1], Number(match[2])]);
  });
  const creates = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/imports')) creates.push(request.url());
  });
  await recordUploadBar(page);
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#resume-note:not([hidden])');
  await page.waitForSelector('#uploading:not([hidden])');
  assert.deepEqual(
    await page.$$eval('input[name="level"]', (inputs) => inputs.map((i) => [i.value, i.checked, i.disabled])),
    [['5', false, true], ['1', true, true]],
    'a continued upload packs at the level it started with, and it cannot be changed meanwhile',
  );
  await shot(page, '11-resuming-after-reload');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  await shot(page, '12-resumed-finished');
  await assertBarHonest(page);
  // The bar starts where it was, and the page says the part the server has is checked, not sent.
  const shown = await page.evaluate(() => window.uploadBar);
  const first = shown.find(([, text]) => /% of the file uploaded/.test(text));
  assert.ok(Number(/^(\d+)%/.exec(first[1])[1]) >= beforeReload, `continued at ${first[1]}, it was ${beforeReload}% before the reload`);
  assert.match(first[1], /the server already has \S+ \S+ of it, checked again but not sent/);
  // Then the bytes sent count against what the server lacked, not the whole stream.
  assert.ok(shown.some(([, text]) => /\d+% of the file uploaded · \S+ \S+ sent of the \S+ \S+ the server lacked/.test(text)), shown.map(([, t]) => t).join(' | '));
  const states = await page.evaluate(() => window.uploadStates);
  assert.ok(states.some((s) => /checking again the part of the file the server has/.test(s)), states.join(' | '));
  assert.match(await page.textContent('#summary'), new RegExp(`import ${stored.importId}`));
  assert.deepEqual(creates, [], 'no new import was created');
  assert.ok(sequences.length > 0 && sequences.every(([id]) => id === stored.importId));
  assert.ok(sequences[0][1] > 0, `continued at frame ${sequences[0][1]}, not from the start`);
  // Packed from there: the frames the server had were not packed again.
  const note = await page.textContent('#resume-note');
  assert.ok(
    note.includes(`The server has its first ${sequences[0][1]} frames: packing continues from there.`),
    `the note says where packing continued: ${note}`,
  );
  await assertLanded(server, summary);
  assert.equal(
    await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('snappack.import.')).length),
    0,
    'a finished upload is forgotten',
  );

  // 200% zoom of a 640 px window is a 320 CSS px viewport: no horizontal scrolling of the page.
  await page.setViewportSize({ width: 320, height: 800 });
  const overflow = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > width + 1 && !e.parentElement.closest('.scroll'))
      .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
    return { scroll: document.documentElement.scrollWidth - width, wide };
  });
  await shot(page, '13-narrow-320px');
  assert.ok(overflow.scroll <= 1, `no horizontal scroll at 320 px: ${JSON.stringify(overflow)}`);
  await page.close();
});

test('an upload paused, then the page reloaded and the file picked again: it stays paused until Resume', { timeout: 120_000 }, async () => {
  const { server, path, summary, page } = await readyToUpload('big-paused-reload.zip', 400);
  await page.click('#upload');
  await waitForPercent(page, 1);
  await page.click('#pause');
  await page.waitForFunction(() => /Paused/.test(document.getElementById('upload-state').textContent));
  const storedRecord = () =>
    page.evaluate(() => {
      const key = Object.keys(localStorage).find((k) => k.startsWith('snappack.import.'));
      return key && JSON.parse(localStorage.getItem(key));
    });
  const stored = await storedRecord();
  assert.ok(stored?.importId, 'the import is remembered');
  assert.equal(stored.paused, true, 'with its pause');

  await page.reload();
  const frames = [];
  page.on('request', (request) => request.url().includes('/frames?') && frames.push(request.url()));
  const creates = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/imports')) creates.push(request.url());
  });
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#uploading:not([hidden])');
  await page.waitForFunction(() => /Paused/.test(document.getElementById('upload-state').textContent));
  assert.equal(await page.textContent('#pause'), 'Resume');
  assert.match(await page.textContent('#resume-note'), new RegExp(`import ${stored.importId}\\): paused: Resume continues it`));
  await shot(page, '11b-paused-after-reload');
  // Another tab that picks it leaves it there, and says that it is paused there.
  const second = await newPage(server);
  second.on('request', (request) => request.url().includes('/frames?') && frames.push(request.url()));
  await second.setInputFiles('#file', path);
  await second.waitForFunction((url) => document.getElementById('resume-note').textContent === `This file is being uploaded to ${url} in another tab of this browser, where it is paused: Resume there continues it.`, server.url);
  assert.ok(await second.isHidden('#uploading'));
  await second.close();
  // Paused, it stays so: packing may go on, but nothing is sent.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.deepEqual(frames, [], 'nothing was sent while paused');
  assert.match(await page.textContent('#upload-state'), /Paused/);
  // The progress says what the server has and that it is paused, not that the file is checked
  // again (packing goes on past the part the server has, and nothing of it is sent).
  const progress = await page.textContent('#upload-text');
  assert.match(progress, /^\d+% of the file uploaded · paused: the server has \S+ \S+ of it, and nothing more is sent until Resume · packing meanwhile: \d+% of the file read$/, progress);
  const status = await (await fetch(`${server.url}/api/imports/${stored.importId}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.equal(status.state, 'open');

  await page.click('#pause');
  assert.equal((await storedRecord()).paused, false, 'the resume is remembered too');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  assert.ok(frames.length > 0, 'frames were sent once resumed');
  assert.deepEqual(creates, [], 'no new import was created');
  assert.match(await page.textContent('#summary'), new RegExp(`import ${stored.importId}`));
  await assertLanded(server, summary);
  await page.close();
});

test('an upload interrupted on one server is not continued on another: there a new one starts', { timeout: 120_000 }, async () => {
  const { server, path, summary, page } = await readyToUpload('big-two-servers.zip', 300);
  const other = await startServer(undefined, { args: ['--allow-origin', server.url] });
  await page.click('#upload');
  await waitForPercent(page, 1);
  await page.reload();
  const [open] = (await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()).imports;
  const before = open.nextSeq ?? (await (await fetch(`${server.url}/api/imports/${open.id}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()).nextSeq;
  // Another file checked, connected to the other server, then the same file picked again.
  const small = join(dir, 'small-two-servers.zip');
  gen(small, { tables: 1, totalDocuments: 10 });
  await page.setInputFiles('#file', small);
  await page.waitForSelector('#verdict.good');
  // A server that does not allow this page's origin cannot be told from one that is down: the page says both.
  const closed = await startServer();
  await page.fill('#url', closed.url);
  await page.fill('#token', TOKEN);
  await page.click('#server button[type="submit"]');
  await page.waitForSelector('#server-status.bad');
  assert.match(await page.textContent('#server-status'), new RegExp(`Cannot connect: cannot reach ${closed.url}: .*\\. If it runs, it must allow this page's origin: snappack serve --allow-origin ${server.url}$`));
  closed.stop();
  await page.fill('#url', other.url);
  await connect(page);
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#resume-note:not([hidden])');
  const note = await page.textContent('#resume-note');
  assert.ok(
    note.includes(`This file was being uploaded to ${server.url} (import ${open.id}): connect to that server to continue it. An upload to ${other.url} starts a new import`),
    note,
  );
  await page.waitForSelector('#conflicts.good');
  assert.ok(await page.isHidden('#uploading'), 'nothing is sent on its own');
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  await assertLanded(other, summary);
  const status = await (await fetch(`${server.url}/api/imports/${open.id}`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.equal(status.state, 'open', 'the first server\'s import is left as it was');
  assert.ok(status.nextSeq >= before, `${status.nextSeq} frames, ${before} before`);
  // Back on the first server, its import is still this browser's (not one started elsewhere): it goes on.
  await page.fill('#url', server.url);
  await connect(page);
  await page.waitForFunction(() => /continuing where it stopped/.test(document.getElementById('resume-note').textContent));
  assert.match(await page.textContent('#resume-note'), new RegExp(`This file was being uploaded to ${server.url} \\(import ${open.id}\\)`));
  await page.waitForFunction((id) => document.getElementById('summary').textContent.includes(`import ${id}`), open.id, { timeout: 90_000 });
  await assertLanded(server, summary);
  await page.close();
});

test('the same file picked in a second tab while the first uploads it: the second leaves it to the first', { timeout: 120_000 }, async () => {
  const { server, path, summary, page } = await readyToUpload('big-two-tabs.zip', 300);
  await page.click('#upload');
  await waitForPercent(page, 1);
  const second = await newPage(server);
  await second.setInputFiles('#file', path);
  await second.waitForFunction((url) => document.getElementById('resume-note').textContent.includes(`being uploaded to ${url} in another tab of this browser`), server.url);
  assert.ok(await second.isHidden('#uploading'), 'the second tab sends nothing');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['finished']);
  await assertLanded(server, summary);
  await second.close();
  await page.close();
});

test('without Web Locks (a page served over plain HTTP by another machine), a second tab still leaves the upload to the first', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const { path, summary } = bigSnapshot('big-two-tabs-no-locks.zip');
  // Not a secure context: navigator.locks is undefined there.
  const insecure = () => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined });
  const page = await newPage(server, { init: insecure });
  assert.equal(await page.evaluate(() => navigator.locks), undefined);
  await pickAndConnect(page, path);
  await slowFrames(page, 300);
  await page.click('#upload');
  await waitForPercent(page, 1);
  const second = await newPage(server, { init: insecure });
  const sent = [];
  second.on('request', (request) => /\/api\/imports($|\/)/.test(new URL(request.url()).pathname) && request.method() === 'POST' && sent.push(request.url()));
  await second.setInputFiles('#file', path);
  await second.waitForFunction((url) => document.getElementById('resume-note').textContent.includes(`being uploaded to ${url} in another tab of this browser`), server.url);
  assert.ok(await second.isHidden('#uploading'), 'the second tab sends nothing');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  assert.deepEqual(sent, [], 'the second tab neither sent nor cancelled anything');
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['finished']);
  await assertLanded(server, summary);
  await second.close();
  await page.close();
});

test('the same file sent to two servers from two tabs at once: both imports finish', { timeout: 180_000 }, async () => {
  const { server, path, summary, page } = await readyToUpload('big-two-tabs-two-servers.zip', 300);
  const other = await startServer(undefined, { args: ['--allow-origin', server.url] });
  await page.click('#upload');
  await waitForPercent(page, 1);
  // A second tab of the same page, connected to the other server.
  const second = await newPage(server);
  await second.setInputFiles('#file', path);
  await second.waitForFunction((url) => document.getElementById('resume-note').textContent.includes(`being uploaded to ${url} in another tab of this browser`), server.url);
  await second.fill('#url', other.url);
  await connect(second);
  await second.waitForSelector('#conflicts.good');
  await second.click('#upload');
  await second.waitForSelector('#uploading:not([hidden])');
  // Not left to the first tab: no note says so.
  assert.equal(await second.isHidden('#resume-note'), true, await second.textContent('#resume-note'));
  assert.ok(!(await page.isHidden('#uploading')), 'the first tab still sends');
  await second.waitForSelector('#summary:not([hidden])', { timeout: 120_000 });
  await page.waitForSelector('#summary:not([hidden])', { timeout: 120_000 });
  await assertLanded(other, summary);
  await assertLanded(server, summary);
  await second.close();
  await page.close();
});

test('cancelled while the server finishes the import: the page says it was imported', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'cancel-at-finish.zip');
  const summary = gen(path, { seed: 21, tables: 2, totalDocuments: 2000, compressionLevel: 1 });
  const page = await newPage(server);
  await pickAndConnect(page, path);
  // The server finishes the import; its answer is held back until Cancel is pressed.
  let finished;
  const answered = new Promise((resolve) => (finished = resolve));
  await page.route('**/finish', async (route) => {
    const response = await route.fetch();
    finished();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await route.fulfill({ response }).catch(() => {});
  });
  await page.click('#upload');
  await answered;
  await page.click('#upload-cancel');
  await page.waitForSelector('#summary:not([hidden])');
  assert.match(await page.textContent('#summary'), /Imported: 2 tables, 2,000 documents/);
  assert.doesNotMatch(await page.textContent('#upload-state'), /cancelled/i);
  await assertLanded(server, summary);
  await page.close();
});

test('a single table uploaded under a name of its own: after a reload it goes on under that name', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const path = join(dir, 'people.jsonl');
  const rows = 30_000;
  writeFileSync(path, Array.from({ length: rows }, (_, i) => `{"n":${i},"name":"person ${i}","note":"${'x'.repeat(60)}"}\n`).join(''));
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  await page.fill('#table', 'customers');
  await page.click('#single button[type="submit"]');
  await page.waitForFunction(() => /customers/.test(document.getElementById('tables').textContent));
  await connect(page);
  await page.waitForSelector('#conflicts.good');
  await slowFrames(page, 3000);
  await page.click('#upload');
  await page.waitForFunction(() => /import [0-9a-f]+/.test(document.getElementById('upload-state').textContent));
  const importId = /import ([0-9a-f]+)/.exec(await page.textContent('#upload-state'))[1];

  await page.reload();
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#resume-note:not([hidden])');
  assert.equal(await page.inputValue('#table'), 'customers', 'the file is checked under the name it was uploading under');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  assert.match(await page.textContent('#summary'), new RegExp(`import ${importId}`));
  assert.deepEqual(
    (await serverTables(server)).map((t) => [t.name, t.documents]),
    [['customers', rows]],
  );
  await page.close();
});

test('picked again in a browser that forgot the upload: found on the server by its label', { timeout: 120_000 }, async () => {
  const ready = await readyToUpload('big-label.zip', 400);
  const { server, path, summary } = ready;
  let { page } = ready;
  await page.click('#upload');
  await waitForPercent(page, 1);
  await page.close();

  // A browser that knows neither the upload nor the server: the file is
  // picked first, and Connect finds its open import.
  page = await newPage(server);
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  const creates = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/imports')) creates.push(request.url());
  });
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.isHidden('#resume-note'), true, 'not connected: nothing to continue yet');
  await connect(page);
  await page.waitForSelector('#resume-note:not([hidden])');
  // Started elsewhere: it goes on only when this user says so.
  assert.match(await page.textContent('#resume-note'), /^The server has an upload of this file open, started elsewhere \(import [0-9a-f]+, Require empty mode\)\. Continue that upload/);
  assert.equal(await page.isHidden('#uploading'), true, 'nothing sent before the click');
  await shot(page, '14-found-by-label');
  await page.click('#resume-note button');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  await shot(page, '14-resumed-by-label');
  assert.deepEqual(creates, [], 'no new import was created');
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['finished']);
  await assertLanded(server, summary);
  await page.close();
});

/**
 * Starts uploading the table file at `path` as table `people` in a page of
 * `server`'s, and closes that page mid-upload. `labelTable: false` makes the
 * import's label the file's fingerprint alone, as earlier versions of the
 * page labelled imports.
 */
async function startTableUploadElsewhere(server, path, { labelTable = true } = {}) {
  const page = await newPage(server);
  await pickTableFile(page, path, 'people');
  await connect(page);
  await page.waitForSelector('#conflicts.good');
  await slowFrames(page, 400);
  if (!labelTable) {
    await page.route('**/api/imports', async (route) => {
      const request = route.request();
      if (request.method() !== 'POST') return route.continue();
      const body = JSON.parse(request.postData());
      return route.continue({ postData: JSON.stringify({ ...body, label: body.label.split(' table ')[0] }) });
    });
  }
  await page.click('#upload');
  await waitForPercent(page, 1);
  await page.close();
}

test('a table file\'s import started elsewhere: its label names the table, under which another browser continues it, after a reload too', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'elsewhere-labelled.jsonl');
  writePeople(path);
  await startTableUploadElsewhere(server, path);
  const [started] = (await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()).imports;
  assert.match(started.label, / table people$/);

  // Another browser: it knows neither the upload nor its table name; the server's label does.
  const page = await newPage(server);
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.inputValue('#table'), 'elsewhere_labelled');
  await connect(page);
  await page.waitForSelector('#resume-note button');
  assert.equal(await page.inputValue('#table'), 'people');
  assert.match(await page.textContent('#resume-note'), new RegExp(`started elsewhere \\(import ${started.id}, Require empty mode, as table people\\)`));
  assert.deepEqual((await page.evaluate(() => [...document.querySelectorAll('#tables tbody th')].map((th) => th.textContent))), ['people']);
  // Its first request of frames (or the finish, when the server has them all) is held: the
  // upload is under way, and its import still open.
  const held = [];
  const sending = (url) => /\/api\/imports\/[^/]+\/(frames|finish)$/.test(url.pathname);
  await page.route(sending, (route) => held.push(route));
  await page.click('#resume-note button');
  await until(() => held.length > 0);

  // Reloaded mid-upload: this browser's record of it has the table name. Its requests
  // are held until the reload is done (a retry as the page went could otherwise finish it).
  await page.reload();
  await page.unroute(sending);
  for (const route of held) await route.abort().catch(() => {});
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.inputValue('#table'), 'people');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  assert.match(await page.textContent('#summary'), new RegExp(`import ${started.id}`));
  const imports = (await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()).imports;
  assert.deepEqual(imports.map((i) => [i.id, i.state]), [[started.id, 'finished']]);
  const people = (await serverTables(server)).find((t) => t.name === 'people');
  assert.equal(people?.documents, 40_000);
  await page.close();
});

test('a table file\'s import started elsewhere, labelled without its table, under another name: not cancelled, and it goes on under that name', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'elsewhere.jsonl');
  writePeople(path);
  await startTableUploadElsewhere(server, path, { labelTable: false });

  // Another browser: it knows neither the upload nor its table name, and offers the file's own.
  let page = await newPage(server);
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.inputValue('#table'), 'elsewhere');
  await connect(page);
  await page.waitForSelector('#resume-note button');
  await page.click('#resume-note button');
  await page.waitForFunction(() => /Upload failed/.test(document.getElementById('upload-state').textContent));
  assert.match(await page.textContent('#upload-state'), /another table name or schema than where it was started\), so it is left open/);
  const [started] = (await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()).imports;
  assert.equal(started.state, 'open', 'the import started elsewhere is not cancelled');

  // Checked under the name it was started with, Connect continues it.
  await page.fill('#table', 'people');
  await page.click('#single button[type="submit"]');
  await page.waitForSelector('#verdict.good');
  await connect(page);
  await page.waitForSelector('#resume-note button');
  await page.click('#resume-note button');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  assert.match(await page.textContent('#summary'), new RegExp(`import ${started.id}`));
  const people = (await serverTables(server)).find((t) => t.name === 'people');
  assert.equal(people?.documents, 40_000);
  await page.close();
});

test('an import that finished while the page did not hear of it is shown as imported, not sent again', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'lost-answer.zip');
  const summary = gen(path, { seed: 12, tables: 2, totalDocuments: 500, compressionLevel: 1 });
  const page = await newPage(server);
  // Keeps a copy of the record the page stores while it uploads.
  await page.evaluate(() => {
    const setItem = Storage.prototype.setItem;
    Storage.prototype.setItem = function (key, value) {
      if (key.startsWith('snappack.import.')) window.lastRecord = [key, value];
      return setItem.call(this, key, value);
    };
  });
  await pickAndConnect(page, path);
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])');
  // As if the page had been closed before the answer to finish came.
  const [key, record] = await page.evaluate(() => window.lastRecord);
  assert.ok(JSON.parse(record).importId);
  await page.evaluate(([k, v]) => localStorage.setItem(k, v), [key, record]);
  await page.reload();
  const requests = [];
  page.on('request', (request) => {
    if (request.method() === 'POST') requests.push(request.url());
  });
  await page.setInputFiles('#file', path);
  // The import is found finished at once: the summary, without a note about continuing.
  await page.waitForSelector('#summary:not([hidden])');
  assert.match(await page.textContent('#summary'), new RegExp(`Imported: 2 tables, 500 documents \\(import ${JSON.parse(record).importId}`));
  assert.deepEqual(requests, [], 'nothing was sent');
  assert.equal(await page.textContent('#upload-text'), 'The server has the whole file.');
  assert.equal(await page.evaluate((k) => localStorage.getItem(k), key), null, 'the record is forgotten');
  await assertLanded(server, summary);
  await page.close();
});

test('a token refused mid-upload: Connect with the right one and the same import goes on', { timeout: 120_000 }, async () => {
  const { server, summary, page } = await readyToUpload('big-token.zip', 300);
  const creates = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/imports')) creates.push(request.url());
  });
  await page.focus('#upload');
  await page.keyboard.press('Enter');
  // Focus moves on Pause (once this tab holds the file's upload lock), not on Cancel, where a second Enter would end the upload.
  await page.waitForFunction(() => document.activeElement.id !== 'upload');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'pause');
  await waitForPercent(page, 1);
  // From now on the server refuses the token, as after a restart with another one.
  await page.route('**/frames?*', (route) =>
    route.fulfill({ status: 401, contentType: 'application/json', body: JSON.stringify({ code: 'Unauthorized', message: 'missing or wrong bearer token' }) }),
  );
  await page.waitForFunction(() => /refused the token/.test(document.getElementById('upload-state').textContent));
  // The page says it is no longer connected, and shows no check it cannot run.
  assert.equal(await page.textContent('#server-status'), 'The server refused the token: enter the right one and Connect.');
  assert.ok(await page.isHidden('#conflicts'), await page.textContent('#conflicts'));
  await shot(page, '15-token-refused');
  await page.unroute('**/frames?*');
  await page.fill('#token', TOKEN);
  await page.click('#server button[type="submit"]');
  await page.waitForSelector('#resume-note:not([hidden])');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  assert.equal(creates.length, 1, 'the import was created once, then continued');
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['finished']);
  await assertLanded(server, summary);
  await page.close();
});

test('the page sends frames while it packs, and packing goes on while the upload is paused', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'page-streamed.zip');
  const summary = gen(path, {
    seed: 11,
    tables: 2,
    totalDocuments: 60_000,
    compressionLevel: 1,
    document: { fields: 8, maxStringLen: 200 },
  });
  const page = await newPage(server);
  await pickAndConnect(page, path);
  // What the page shows each time a request of frames leaves it.
  const shown = [];
  await page.route('**/frames?*', async (route) => {
    shown.push(await page.textContent('#upload-text'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    try {
      await route.continue();
    } catch {
      // Aborted by the pause.
    }
  });
  await recordUploadBar(page);
  await page.click('#upload');
  while (shown.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
  await page.click('#pause');
  await page.waitForFunction(() => /Paused/.test(document.getElementById('upload-state').textContent));
  const sentBeforePause = shown.length;
  assert.ok(sentBeforePause > 0, 'frames were sent before the pause');
  const packing = / sent · packing: (\d+)% of the file read/.exec(shown[0]);
  assert.ok(packing, `the first frames left while the file was packed: "${shown[0]}"`);
  assert.ok(Number(packing[1]) < 100, `the first frames left at ${packing[1]}% of the file read`);
  await shot(page, '15-paused-while-packing');

  // Paused, the page sends nothing, and packing runs to the end of the file.
  await page.waitForFunction(() => /% of the file uploaded · \S+ \S+ of \S+ \S+ sent/.test(document.getElementById('upload-text').textContent));
  assert.ok(shown.length <= sentBeforePause + 1, `no frames sent while paused: ${shown.length - sentBeforePause}`);
  await shot(page, '16-packed-while-paused');
  await page.click('#pause');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  await assertBarHonest(page);
  await assertLanded(server, summary);
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['finished'], 'one import, resumed after the pause');
  await page.close();
});

test('a file chosen while the last one is checked or fingerprinted: the page speaks only of the new one', { timeout: 60_000 }, async () => {
  const server = await startServer();
  // The WebAssembly module comes late: the first check is still running when notes.txt is chosen.
  let release;
  const page = await newPage(server, { beforeLoad: async (p) => (release = await holdWasm(p)) });
  const table = join(dir, 'first.jsonl');
  writeFileSync(table, '{"a":1}\n');
  const notes = { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') };
  const rename = () => /rename notes\.txt to the extension of its format/.test(document.getElementById('verdict').textContent);

  await page.setInputFiles('#file', table);
  await page.waitForSelector('#checking:not([hidden])');
  await page.setInputFiles('#file', notes);
  await page.waitForFunction(rename);
  release();
  // Once this check has the module, the stopped one has ended too.
  await page.evaluate(async () => {
    const { validate } = await import('./pkg/browser.js');
    await validate(new Uint8Array(), { format: 'jsonl', table: 't' });
  });
  assert.ok(await page.evaluate(rename), await page.textContent('#verdict'));

  // A file chosen while the last one is still fingerprinted: the last one is not checked.
  await page.evaluate(() => {
    const digest = crypto.subtle.digest.bind(crypto.subtle);
    const released = new Promise((resolve) => {
      window.releaseDigests = resolve;
    });
    window.digests = [];
    crypto.subtle.digest = (...args) => {
      window.digests.push(released.then(() => digest(...args)));
      return window.digests.at(-1);
    };
  });
  await page.setInputFiles('#file', table);
  await page.waitForFunction(() => window.digests.length === 1);
  await page.setInputFiles('#file', notes);
  await page.waitForFunction(rename);
  await page.evaluate(async () => {
    window.releaseDigests();
    await Promise.all(window.digests);
  });
  assert.ok(await page.evaluate(rename), await page.textContent('#verdict'));
  assert.equal(await page.isHidden('#checking'), true, 'no check of first.jsonl started');
  await page.close();
});

test('a new file clears what the page showed of the last one', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'with-files.zip');
  gen(path, { seed: 14, tables: 2, totalDocuments: 500, storageFiles: 3, compressionLevel: 1 });
  const page = await newPage(server);
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  assert.match(await page.textContent('#storage'), /^Stored files: 3 /);
  await connect(page);
  await page.waitForSelector('#conflicts.good');
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])');
  assert.equal(await page.isVisible('#uploading'), true);

  // Another file: neither the last upload's progress nor its summary stays.
  const other = join(dir, 'other.jsonl');
  writeFileSync(other, '{"a":1}\n');
  await page.setInputFiles('#file', other);
  await page.waitForSelector('#verdict.good');
  await page.waitForSelector('#conflicts.good');
  assert.equal(await page.isHidden('#uploading'), true, 'the last upload\'s progress is gone');
  assert.equal(await page.isHidden('#summary'), true, 'the last import\'s summary is gone');

  // A file the page cannot read: the stored files of the last report go with its tables.
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  assert.match(await page.textContent('#storage'), /^Stored files: 3 /);
  await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
  await page.waitForFunction(() => /rename notes\.txt/.test(document.getElementById('verdict').textContent));
  assert.equal(await page.locator('#tables tbody tr').count(), 0);
  assert.equal(await page.textContent('#storage'), '');
  await page.close();
});

test('a file that cannot be read when it is chosen: the page says so, and nothing of the last file stays', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'readable.jsonl');
  writeFileSync(path, '{"a":1}\n'.repeat(100));
  const page = await newPage(server);
  await pickTableFile(page, path, 'rows');
  await connect(page);
  await page.waitForSelector('#conflicts.good');
  // The next read of a file fails, as it does for one moved, deleted or changed since it was chosen.
  await page.evaluate(() => {
    const read = Blob.prototype.arrayBuffer;
    Blob.prototype.arrayBuffer = function () {
      Blob.prototype.arrayBuffer = read;
      return Promise.reject(new DOMException('The requested file could not be read', 'NotReadableError'));
    };
  });
  const gone = join(dir, 'gone.jsonl');
  writeFileSync(gone, '{"b":2}\n');
  await page.setInputFiles('#file', gone);
  await page.waitForSelector('#verdict.bad');
  assert.equal(
    await page.textContent('#verdict'),
    'gone.jsonl cannot be read (The requested file could not be read): it may have been moved, deleted or changed since it was chosen. Choose it again.',
  );
  for (const id of ['#send', '#single', '#conflicts', '#tables-box']) assert.equal(await page.isHidden(id), true, `${id} is hidden`);
  // Chosen again, it is read.
  await page.setInputFiles('#file', gone);
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.inputValue('#table'), 'gone');
  await page.close();
});

test('the verdict counts the tables with errors apart from the archive\'s own', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'archive-error.zip');
  gen(path, { seed: 13, tables: 3, totalDocuments: 900, storageFiles: 2, compressionLevel: 1, faults: ['invalidTableName', 'duplicateId', 'badJsonLine', 'sha256Mismatch'] });
  const page = await newPage(server);
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.bad');
  assert.match(await page.textContent('#verdict'), /Not importable: 4 errors in 2 tables and about the archive\./);
  const groups = await page.locator('#errors h4').allTextContents();
  assert.deepEqual(groups.map((g) => g.split(' — ')[0]).sort(), ['Table _storage', 'Table users', 'The archive']);
  await page.close();
});

test('single-table files: a table name for JSONL, a schema for CSV', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const jsonl = join(dir, 'people.jsonl');
  writeFileSync(jsonl, '{"name":"ann"}\n{"name":"bob",\n{"_secret":1}\n');
  await page.setInputFiles('#file', jsonl);
  await page.waitForSelector('#verdict.bad');
  assert.equal(await page.inputValue('#table'), 'people', 'the table name comes from the file name');
  assert.equal(await page.isHidden('#schema-field'), true, 'a schema is only asked for CSV');
  const errors = await page.textContent('#errors');
  assert.match(errors, /people\.jsonl:2/);
  assert.match(errors, /people\.jsonl:3/);
  await page.fill('#table', 'staff');
  await page.click('#single button[type="submit"]');
  await page.waitForFunction(() => /Table staff/.test(document.getElementById('errors').textContent));
  await shot(page, '15-jsonl-errors');

  // A file whose extension names no format is not checked: the page says what to do.
  const odd = join(dir, 'export.txt');
  writeFileSync(odd, '{}\n');
  await page.setInputFiles('#file', odd);
  await page.waitForFunction(() => /rename export\.txt to the extension of its format/.test(document.getElementById('verdict').textContent));
  assert.equal(await page.isHidden('#download'), true, 'no report to download');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'verdict');

  // A report is of the table name it was checked with: a new name must be checked first.
  const good = join(dir, 'good.jsonl');
  writeFileSync(good, '{"a":1}\n');
  await page.setInputFiles('#file', good);
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.isVisible('#download'), true);
  await connect(page);
  await page.waitForSelector('#conflicts.good');
  assert.equal(await page.isEnabled('#upload'), true);
  await page.fill('#table', 'bad name!');
  assert.equal(await page.isEnabled('#upload'), false);
  assert.equal(await page.textContent('#upload-why'), 'Check again: the table name or schema changed.');
  await page.click('#single button[type="submit"]');
  await page.waitForSelector('#verdict.bad');
  assert.equal(await page.isEnabled('#upload'), false);

  // An empty CSV cell is an empty string, unless the schema says the field is optional.
  const csv = join(dir, 'users.csv');
  writeFileSync(csv, 'name,nick\nann,\nbob,bobby\n');
  const schema = join(dir, 'schema.json');
  writeFileSync(schema, JSON.stringify({ tables: { users: { fields: { nick: { optional: true } } } } }));
  await page.setInputFiles('#file', csv);
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.isVisible('#schema-field'), true);
  // A schema of another shape is named, with what is wrong where.
  const misshapen = join(dir, 'misshapen.json');
  writeFileSync(misshapen, JSON.stringify({ tables: { users: { fields: { nick: { optional: 'yes' } } } } }));
  await page.setInputFiles('#schema', misshapen);
  await page.click('#single button[type="submit"]');
  await page.waitForSelector('#verdict.bad');
  assert.match(await page.textContent('#verdict'), /^The schema misshapen\.json is not one snappack reads: tables\["users"\]\.fields\["nick"\]\.optional must be true or false, not "yes" \(e\.g\. .*\)\. Fix it, then Check again\.$/);
  writeFileSync(misshapen, '[]');
  await page.setInputFiles('#schema', misshapen);
  await page.click('#single button[type="submit"]');
  await page.waitForFunction(() => /is not one snappack reads: it must be an object\./.test(document.getElementById('verdict').textContent));
  await page.setInputFiles('#schema', schema);
  await page.click('#single button[type="submit"]');
  await page.waitForSelector('#verdict.good');
  assert.match(await page.textContent('#tables'), /users/);
  await connect(page);
  await page.waitForSelector('#conflicts.good');
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])');
  await shot(page, '16-csv-uploaded');
  const users = (await serverTables(server)).find((t) => t.name === 'users');
  assert.equal(users?.documents, 2);
  await page.close();
});

test('the check against the server: one at a time, shown with progress, cancellable, not repeated for a mode already checked', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const { path } = bigSnapshot('big-modes.zip');
  const page = await newPage(server, { init: countWorkers });
  await pickAndConnect(page, path);
  // The workers one check uses.
  const one = await page.evaluate(() => window.workers.most);
  assert.ok(one >= 1);
  // The file was validated once; its report, not the file, was checked against the server's tables.
  const requests = await page.evaluate(() => window.workers.requests);
  assert.equal(requests.filter((type) => type === 'validate').length, one, `${requests}`);
  assert.deepEqual(requests.filter((type) => type !== 'validate' && type !== 'merge'), ['checkTarget']);

  // Quick mode changes, each check waiting for the server's tables: each change stops the last check.
  let held = await holdTables(page);
  const modes = ['append', 'replace', 'replaceAll', 'requireEmpty', 'append'];
  for (const mode of modes) await page.check(`input[name="mode"][value="${mode}"]`);
  await until(() => held.length === modes.length);
  assert.equal(await page.isVisible('#conflicts progress'), true, 'the check shows its progress');
  assert.equal(await page.textContent('#conflicts button'), 'Cancel check');
  assert.match(await page.textContent('#conflicts'), /Checking against the server's tables for Append mode/);
  assert.equal(await page.textContent('#upload-why'), 'Checking for conflicts…');
  await shot(page, '17-checking-against-server');
  await releaseTables(page, held);
  await page.waitForSelector('#conflicts.good');
  assert.match(await page.textContent('#conflicts'), /in Append mode/);
  const most = await page.evaluate(() => window.workers.most);
  assert.ok(most <= one, `at most one check's workers at once: ${most}, one check uses ${one}`);

  // Connecting again stops the check: its progress does not stay while the server answers.
  held = await holdTables(page);
  await page.check('input[name="mode"][value="replace"]');
  await until(() => held.length === 1);
  await page.click('#server button[type="submit"]');
  await until(() => held.length === 2);
  assert.equal(await page.isHidden('#conflicts'), true, 'the stopped check is not shown');
  await releaseTables(page, held);
  await page.waitForSelector('#conflicts.good');
  assert.match(await page.textContent('#conflicts'), /in Replace mode/);
  await page.check('input[name="mode"][value="append"]');
  await page.waitForSelector('#conflicts.good');

  // A mode checked before, with the same server tables: its report is reused.
  await page.evaluate(() => {
    window.workers.started = 0;
  });
  await page.check('input[name="mode"][value="requireEmpty"]');
  await page.waitForSelector('#conflicts.good');
  assert.match(await page.textContent('#conflicts'), /in Require empty mode/);
  assert.equal(await page.evaluate(() => window.workers.started), 0, 'not validated again');
  assert.equal(await page.isEnabled('#upload'), true);

  // Cancelled: a neutral note, no upload until checked again.
  held = await holdTables(page);
  await page.check('input[name="mode"][value="replace"]');
  await until(() => held.length === 1);
  await page.click('#conflicts button');
  await page.waitForFunction(() => /cancelled/.test(document.getElementById('conflicts').textContent));
  assert.equal(await page.getAttribute('#conflicts', 'class'), 'conflicts neutral');
  assert.equal(await page.isDisabled('#upload'), true);
  assert.equal(await page.evaluate(() => window.workers.alive), 0, 'no worker left running');
  await shot(page, '18-check-against-server-cancelled');
  await releaseTables(page, held);
  await page.click('#conflicts button:text("Check against the server again")');
  await page.waitForSelector('#conflicts.good');
  assert.match(await page.textContent('#conflicts'), /in Replace mode/);
  assert.equal(await page.isEnabled('#upload'), true);
  assert.equal((await page.evaluate(() => window.workers.requests)).filter((type) => type === 'validate').length, one, 'the file was not read again');
  await page.close();
});

test('Replace all lists the server tables it deletes, asks for a confirmation, and says what it deleted', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const first = join(dir, 'three-tables.zip');
  gen(first, { seed: 21, tables: 3, totalDocuments: 300, compressionLevel: 1 });
  await pickAndConnect(page, first);
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])');
  const before = await serverTables(server);
  const names = before.map((t) => t.name).sort();

  // One of the server's tables in the snapshot: the others would go.
  const second = join(dir, 'one-table.zip');
  const summary = gen(second, { seed: 22, tables: 1, totalDocuments: 50, compressionLevel: 1 });
  const kept = summary.tables.map((t) => t.name);
  const gone = before.filter((t) => !kept.includes(t.name));
  assert.ok(gone.length >= 1, `${names} has tables that ${kept} lacks`);
  await page.setInputFiles('#file', second);
  await page.waitForSelector('#verdict.good');
  await page.check('input[name="mode"][value="replaceAll"]');
  await page.waitForSelector('#conflicts.warn');
  const box = await page.textContent('#conflicts');
  assert.match(box, new RegExp(`Replace all mode deletes ${gone.length} tables? of the server`));
  for (const table of gone) assert.ok(box.includes(`${table.name} — ${table.documents.toLocaleString('en-US')} documents`), `${table.name} is listed: ${box}`);
  // The table it keeps has its documents replaced, which the box says too.
  const [replaced] = before.filter((t) => kept.includes(t.name));
  assert.ok(box.includes(`replace the ${replaced.documents.toLocaleString('en-US')} documents of this table of the server:${replaced.name} — `), box);
  assert.equal(await page.isDisabled('#upload'), true, 'no upload before the deletion is confirmed');
  assert.match(await page.textContent('#upload-why'), /Confirm/);
  await shot(page, '19-replace-all-confirm');
  await page.check('#confirm-delete');
  assert.equal(await page.isEnabled('#upload'), true);
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])');
  const done = await page.textContent('#summary');
  assert.match(done, new RegExp(`Deleted, as Replace all mode does: ${gone.length} tables? not in this snapshot`));
  for (const table of gone) assert.ok(done.includes(table.name), `${table.name} is named as deleted: ${done}`);
  assert.deepEqual((await serverTables(server)).filter((t) => !t.name.startsWith('_')).map((t) => t.name), kept);

  // A snapshot with no tables at all would empty the server.
  const empty = join(dir, 'no-tables.zip');
  writeFileSync(empty, Buffer.concat([Buffer.from('PK\x05\x06'), Buffer.alloc(18)]));
  await page.setInputFiles('#file', empty);
  await page.waitForSelector('#verdict.good');
  await page.waitForSelector('#conflicts.warn');
  assert.match(await page.textContent('#conflicts'), /This snapshot has no tables: in Replace all mode the import deletes every table of the server/);
  assert.equal(await page.isDisabled('#upload'), true);
  await shot(page, '20-replace-all-no-tables');
  await page.close();
});

test('no answer from the server: no speed or time left is shown, the wait before the next try counts down, Cancel stops it', { timeout: 120_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'unreachable.zip');
  gen(path, { seed: 23, tables: 2, totalDocuments: 60_000, compressionLevel: 1, document: { fields: 8, maxStringLen: 200 } });
  const page = await newPage(server);
  await pickAndConnect(page, path);
  await slowFrames(page, 300);
  await recordUploadBar(page);
  await page.click('#upload');
  await page.waitForFunction(() => /\/s/.test(document.getElementById('upload-text').textContent));
  // The server stops answering; a cancel waits until it is let through.
  const cancels = [];
  await page.route('**/api/imports/**', (route) => (route.request().url().endsWith('/cancel') ? cancels.push(route) : route.abort('connectionrefused')));
  await page.waitForSelector('#upload-state.warn');
  assert.doesNotMatch(await page.textContent('#upload-text'), /\/s|left/, 'no speed while nothing is sent');
  // The backoff doubles (0.25, 0.5, 1, 2 s…): the 2 s wait is shown going down.
  await page.waitForFunction(() => {
    const states = window.uploadStates;
    const two = states.findIndex((s) => /retrying in 2 s…/.test(s));
    return two >= 0 && states.slice(two + 1).some((s) => /retrying in 1 s…/.test(s));
  });
  assert.doesNotMatch(await page.textContent('#upload-text'), /\/s|left/, 'still no speed');
  // Said once to screen readers, which do not read the countdown.
  const live = (await page.textContent('#live')).trim();
  assert.ok(live.endsWith('No answer from the server: the upload waits and tries again.'), live);
  assert.equal(live.match(/No answer/g).length, 1, live);
  await shot(page, '21-no-answer');

  // Cancelled while the page waits to try again: the countdown stops at once.
  await page.click('#upload-cancel');
  await page.waitForFunction(() => document.getElementById('upload-state').textContent === 'Cancelling…');
  await until(() => cancels.length === 1);
  await page.unroute('**/api/imports/**');
  await cancels[0].continue();
  await page.waitForFunction(() => /Upload cancelled/.test(document.getElementById('upload-state').textContent));
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['cancelled']);
  // Screen readers hear it, whatever the page says right after (the check against the server's tables).
  await page.waitForSelector('#conflicts:not([hidden])');
  assert.match(await page.textContent('#live'), /Upload cancelled/);
  await page.close();
});

test('cancelled while the server is down: the page says the server could not be told, and cancels the import once it is back', { timeout: 120_000 }, async () => {
  const { server, path, page } = await readyToUpload('big-cancel-down.zip', 300);
  await page.click('#upload');
  await waitForPercent(page, 1);
  await killServer(server);
  await page.waitForSelector('#upload-state.warn');
  await page.click('#upload-cancel');
  await page.waitForFunction(() => /Upload cancelled/.test(document.getElementById('upload-state').textContent));
  assert.match(await page.textContent('#upload-state'), new RegExp(`could not be told: it drops what it received of it when this page next connects to ${server.url}`));
  await startServer(server);
  const before = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(before.imports.map((i) => i.state), ['open'], 'the server never heard of the cancel');

  // Back on the page (which connects as it loads), the same file is not offered as an upload started elsewhere.
  await page.reload();
  await page.waitForSelector('#server-status.good', { state: 'attached' });
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  await page.waitForSelector('#conflicts.good');
  assert.ok(await page.isHidden('#resume-note'), await page.textContent('#resume-note'));
  const after = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(after.imports.map((i) => i.state), ['cancelled']);
  assert.equal(await page.evaluate(() => localStorage.getItem('snappack.cancels')), null, 'nothing is left to cancel');
  await page.close();
});

test('the page closed while its cancel is on the way: the cancel is sent again when the page is back', { timeout: 120_000 }, async () => {
  const { server, path, page } = await readyToUpload('big-cancel-reload.zip', 300);
  await page.click('#upload');
  await waitForPercent(page, 1);
  // The cancel leaves the page but never reaches the server.
  const held = [];
  await page.route('**/cancel', (route) => held.push(route));
  await page.click('#upload-cancel');
  await until(() => held.length === 1);
  await page.unroute('**/cancel');
  await page.reload();
  await page.waitForSelector('#server-status.good', { state: 'attached' });
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  await page.waitForSelector('#conflicts.good');
  assert.ok(await page.isHidden('#resume-note'), await page.textContent('#resume-note'));
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['cancelled']);
  assert.equal(await page.evaluate(() => localStorage.getItem('snappack.cancels')), null);
  await page.close();
});

test('a server that takes smaller frames than the page packs by default: frames of its limit are packed, and the upload lands', { timeout: 120_000 }, async () => {
  // It advertises its limit with its tables; a server that did not would refuse every frame (FrameTooLarge).
  const server = await startServer(undefined, { args: ['--max-frame-size', '65536'] });
  const path = join(dir, 'small-frames.zip');
  const summary = gen(path, { seed: 31, tables: 2, totalDocuments: 500, compressionLevel: 1 });
  const page = await newPage(server);
  await pickAndConnect(page, path);
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])', { timeout: 90_000 });
  assert.ok(await page.isHidden('#upload-state.bad'), await page.textContent('#upload-state'));
  await assertLanded(server, summary);
  await page.close();
});

test('a server too old to advertise its frame limit, under the frames the page packs: said in the page\'s words, and the import is not left open', { timeout: 120_000 }, async () => {
  const server = await startServer(undefined, { args: ['--max-frame-size', '65536'] });
  const path = join(dir, 'small-frames-old.zip');
  gen(path, { seed: 31, tables: 2, totalDocuments: 500, compressionLevel: 1 });
  // Its table listing without the limit, as servers before it answered.
  const asOld = (page) =>
    page.route('**/api/tables', async (route) => {
      const response = await route.fetch();
      const { tables } = await response.json();
      await route.fulfill({ response, json: { tables } });
    });
  const page = await newPage(server, { beforeLoad: asOld });
  await pickAndConnect(page, path);
  await page.click('#upload');
  await page.waitForSelector('#upload-state.bad');
  const said = await page.textContent('#upload-state');
  assert.match(said, /the server takes smaller frames than this page packs \(.*over the limit of 65536\)/, said);
  assert.match(said, /--max-frame-size 1048576 or more; or upload this file with snappack upload and a --frame-size/, said);
  await page.waitForSelector('#upload:not([disabled])');
  const imports = await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json();
  assert.deepEqual(imports.imports.map((i) => i.state), ['cancelled'], 'nothing of it stays open on the server');
  // Picked again, it is not offered as an upload started elsewhere.
  await page.reload();
  await page.waitForSelector('#server-status.good', { state: 'attached' });
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  await page.waitForSelector('#conflicts.good');
  assert.ok(await page.isHidden('#resume-note'), await page.textContent('#resume-note'));
  await page.close();
});

test('screens without a report: no empty table of tables, and a cancelled check is not shown as an error', { timeout: 60_000 }, async () => {
  const server = await startServer();
  // Cancelled: the WebAssembly module comes late, so the check is still running when Cancel is pressed.
  let release;
  const page = await newPage(server, { beforeLoad: async (p) => (release = await holdWasm(p)) });
  const tablesShown = () => page.isVisible('#tables');

  const table = join(dir, 'cancelled.jsonl');
  writeFileSync(table, '{"a":1}\n');
  await page.setInputFiles('#file', table);
  await page.waitForSelector('#checking:not([hidden])');
  await page.click('#check-cancel');
  release();
  await page.waitForFunction(() => /Check cancelled/.test(document.getElementById('verdict').textContent));
  assert.equal(await page.getAttribute('#verdict', 'class'), 'verdict neutral', 'a choice of the user, not an error');
  assert.equal(await tablesShown(), false, 'no table of tables');
  await shot(page, '22-check-cancelled');

  // A file of no format the page reads.
  await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
  await page.waitForFunction(() => /rename notes\.txt/.test(document.getElementById('verdict').textContent));
  assert.equal(await page.getAttribute('#verdict', 'class'), 'verdict bad');
  assert.equal(await tablesShown(), false);

  // A CSV file with a schema that is not JSON.
  const csv = join(dir, 'people.csv');
  writeFileSync(csv, 'name\nann\n');
  await page.setInputFiles('#file', csv);
  await page.waitForSelector('#verdict.good');
  assert.equal(await tablesShown(), true, 'a report lists its tables');
  await page.setInputFiles('#schema', { name: 'schema.json', mimeType: 'application/json', buffer: Buffer.from('{"tables":') });
  await page.click('#single button[type="submit"]');
  await page.waitForFunction(() => /The schema is not valid JSON/.test(document.getElementById('verdict').textContent));
  assert.equal(await tablesShown(), false);
  await page.close();
});

test("the package's upload(): bytes in, rows on the server; refusals as UploadError", { timeout: 60_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'api.zip');
  const summary = gen(path, { seed: 3, tables: 2, totalDocuments: 1000, compressionLevel: 1 });
  const bad = join(dir, 'api-bad.zip');
  gen(bad, { seed: 4, tables: 1, totalDocuments: 100, compressionLevel: 1, faults: ['duplicateId'] });
  const larger = join(dir, 'api-larger.zip');
  gen(larger, { seed: 5, tables: 3, totalDocuments: 20000, compressionLevel: 1 });
  const page = await newPage(server);
  const result = await page.evaluate(
    async ({ url, token, good, bad, larger }) => {
      const { upload, fetchTables, pack, prepareUpload, startPacking } = await import('/pkg/browser.js');
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const states = new Set();
      let importId;
      const finished = await upload(bytes(good), {
        url,
        token,
        mode: 'replace',
        fileName: 'api.zip',
        level: 1,
        onImport: (id) => {
          importId = id;
        },
        onProgress: (p) => states.add(p.state),
      });
      const refusal = (promise) => promise.then(
        () => null,
        (e) => ({ name: e.name, code: e.code, status: e.status, errors: e.report?.error_count, retryable: e.retryable }),
      );
      const streamed = new Uint8Array(await new Response(pack(bytes(good), { fileName: 'api.zip' })).arrayBuffer());
      const prepared = await prepareUpload(bytes(good), { fileName: 'api.zip' });
      const whole = new Uint8Array(await prepared.stream.arrayBuffer());
      const readAll = async (stream) => {
        const reader = stream.getReader();
        while (!(await reader.read()).done);
      };
      // Workers sharing the compressing give one worker's bytes, whole or from a frame on.
      const shared = async (options) => {
        const { stream, frames } = await prepareUpload(bytes(larger), { fileName: 'larger.zip', ...options });
        return { stream: Array.from(new Uint8Array(await stream.arrayBuffer())), frames: Array.from(frames) };
      };
      const alone = await shared({ workers: 1 });
      const sharding = {
        frames: alone.frames.length / 2,
        three: JSON.stringify(await shared({ workers: 3 })) === JSON.stringify(alone),
        fromFrame2: JSON.stringify(await shared({ workers: 2, firstFrame: 2 })) === JSON.stringify(await shared({ workers: 1, firstFrame: 2 })),
        badWorkers: await refusal(Promise.resolve().then(() => startPacking(bytes(good), { workers: 0 }))),
      };
      const packRefusal = await readAll(pack(bytes(bad), { fileName: 'bad.zip' })).then(
        () => null,
        (e) => ({ name: e.name, code: e.code, errors: e.report?.error_count, message: e.message }),
      );
      return {
        finished,
        importId,
        packed: {
          magic: new TextDecoder().decode(streamed.subarray(0, 8)),
          same: streamed.length === whole.length && streamed.every((byte, i) => byte === whole[i]),
          frames: prepared.frames.length / 2,
        },
        packRefusal,
        sharding,
        states: [...states],
        invalid: await refusal(upload(bytes(bad), { url, token, mode: 'replace', fileName: 'bad.zip' })),
        unauthorized: await refusal(fetchTables(url, 'wrong')),
        noToken: await refusal(fetchTables(url, '')),
        badLevel: await refusal(Promise.resolve().then(() => startPacking(bytes(good), { level: 12 }))),
        badMode: await refusal(upload(bytes(good), { url, token, mode: 'sideways', fileName: 'api.zip' })),
        badToken: await refusal(fetchTables(url, 'line\nbreak')),
        // A 200 that is not the server's JSON (here the page itself).
        notSnappack: await refusal(fetchTables(`${url}/index.html?`, token)),
        noOptions: (await fetchTables(url, token, null)).tables.length >= 0,
        // The server's tables conflict in the default mode: the unknown import is what is refused.
        unknownImport: await refusal(upload(bytes(good), { url, token, fileName: 'api.zip', importId: 'nosuchimport' })),
      };
    },
    {
      url: server.url,
      token: TOKEN,
      good: readFileSync(path).toString('base64'),
      bad: readFileSync(bad).toString('base64'),
      larger: readFileSync(larger).toString('base64'),
    },
  );
  assert.equal(result.finished.state, 'finished');
  assert.ok(result.sharding.frames > 6, `${result.sharding.frames} frames`);
  assert.ok(result.sharding.three, 'three workers pack the bytes one does');
  assert.ok(result.sharding.fromFrame2, 'and from a frame on');
  assert.equal(result.sharding.badWorkers?.code, 'InvalidOptions');
  assert.match(result.importId, /^[0-9a-f]+$/);
  assert.deepEqual(result.states.sort(), ['finished', 'packing', 'sending']);
  assert.deepEqual(result.invalid, { name: 'UploadError', code: 'InvalidSnapshot', status: null, errors: 1, retryable: false });
  assert.equal(result.packed.magic, 'SNAPPACK');
  assert.ok(result.packed.same, 'pack() streams the same bytes as prepareUpload');
  assert.ok(result.packed.frames >= 1);
  assert.deepEqual(result.packRefusal, { name: 'SnappackError', code: 'InvalidSnapshot', errors: 1, message: 'the input has 1 error; see report.errors' });
  assert.deepEqual(result.unauthorized, { name: 'UploadError', code: 'Unauthorized', status: 401, errors: undefined, retryable: false });
  const misuse = { name: 'SnappackError', code: 'InvalidOptions', status: undefined, errors: undefined, retryable: undefined };
  assert.deepEqual(result.noToken, misuse);
  assert.deepEqual(result.badLevel, misuse);
  assert.deepEqual(result.badMode, misuse);
  assert.deepEqual(result.badToken, misuse);
  assert.deepEqual(result.notSnappack, { name: 'UploadError', code: 'Protocol', status: null, errors: undefined, retryable: false });
  assert.ok(result.noOptions);
  assert.deepEqual(result.unknownImport, { name: 'UploadError', code: 'UnknownImport', status: 404, errors: undefined, retryable: false });
  await assertLanded(server, summary);
  await page.close();

  // The WebAssembly cannot be loaded: every call that needs it says so, typed.
  const offline = await newPage(server, {
    beforeLoad: (p) => p.route('**/snappack_bg.wasm', (route) => route.fulfill({ status: 404, body: 'gone' })),
  });
  const failures = await offline.evaluate(
    async ({ url, token, good }) => {
      const { upload, validate, checkTarget } = await import('/pkg/browser.js');
      const bytes = Uint8Array.from(atob(good), (c) => c.charCodeAt(0));
      const failure = (promise) => promise.then(
        () => null,
        (e) => ({ name: e.name, code: e.code }),
      );
      const report = { valid: true, format: 'zip', tables: [], storage: { files: 0, bytes: 0 }, errors: [], warnings: [], error_count: 0, documents: 0, bytes: 0 };
      return {
        upload: await failure(upload(bytes, { url, token, mode: 'replace', fileName: 'api.zip' })),
        validate: await failure(validate(bytes, { fileName: 'api.zip' })),
        checkTarget: await failure(checkTarget(report, { target: { tables: [] } })),
      };
    },
    { url: server.url, token: TOKEN, good: readFileSync(path).toString('base64') },
  );
  const workerFailed = { name: 'SnappackError', code: 'WorkerFailed' };
  assert.deepEqual(failures, { upload: workerFailed, validate: workerFailed, checkTarget: workerFailed });
  await offline.close();
});

test("the package's upload() sends frames while it packs, and nothing when the tables conflict", { timeout: 240_000 }, async () => {
  const server = await startServer();
  const path = join(dir, 'streamed.zip');
  const summary = gen(path, {
    seed: 9,
    tables: 2,
    totalDocuments: 60_000,
    compressionLevel: 1,
    document: { fields: 8, maxStringLen: 200 },
  });
  const dup = join(dir, 'streamed-dup.zip');
  gen(dup, { seed: 10, tables: 1, totalDocuments: 40_000, compressionLevel: 1, faults: ['duplicateId'] });
  // Another snapshot of the same tables, to continue the import with by mistake.
  const other = join(dir, 'streamed-other.zip');
  gen(other, { seed: 11, tables: 2, totalDocuments: 60_000, compressionLevel: 1, document: { fields: 8, maxStringLen: 200 } });
  const page = await newPage(server);
  const result = await page.evaluate(
    async ({ url, token, good, dup, other }) => {
      const { upload, fetchImport, fetchTables, prepareUpload, sendUpload } = await import('/pkg/browser.js');
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const imports = async () =>
        (await (await fetch(`${url}/api/imports`, { headers: { Authorization: `Bearer ${token}` } })).json()).imports;
      const refusal = (promise) => promise.then(
        () => null,
        (e) => ({ code: e.code, errors: e.report?.error_count, importId: e.importId }),
      );
      const events = [];
      const finished = await upload(bytes(good), {
        url,
        token,
        mode: 'replace',
        fileName: 'streamed.zip',
        framesPerRequest: 1,
        onProgress: (p) => events.push(p),
      });
      const before = (await imports()).length;
      // The tables are there now: an import that requires them empty is refused before a byte is sent.
      const conflict = await refusal(upload(bytes(good), { url, token, mode: 'requireEmpty', fileName: 'streamed.zip' }));
      const afterConflict = (await imports()).length;
      // A duplicate id deep in the table is found while frames go out: the import is cancelled.
      const duplicate = await refusal(upload(bytes(dup), { url, token, mode: 'append', fileName: 'dup.zip', label: 'dup' }));
      const dupImports = (await imports()).filter((i) => i.label === 'dup').map((i) => i.state);
      const dupIds = (await imports()).filter((i) => i.label === 'dup').map((i) => i.id);

      // Stopped after a few frames, then continued by id: packed from the
      // server's frame on, in the import's frame size.
      const stop = new AbortController();
      let importId;
      await upload(bytes(good), {
        url,
        token,
        mode: 'replace',
        fileName: 'streamed.zip',
        framesPerRequest: 1,
        frameSize: 65536,
        signal: stop.signal,
        onImport: (id) => {
          importId = id;
        },
        onProgress: (p) => p.framesSent >= 3 && stop.abort(),
      }).catch(() => {});
      const { nextSeq, frameSize } = await fetchImport(url, token, importId);
      const otherSize = await upload(bytes(good), { url, token, fileName: 'streamed.zip', importId, frameSize: 1 << 20 }).then(
        () => null,
        (e) => e.code,
      );
      // Another input is refused before a frame is sent: its frames are not the import's.
      const otherInput = await upload(bytes(other), { url, token, fileName: 'streamed.zip', importId }).then(
        () => null,
        (e) => ({ name: e.name, code: e.code, importId: e.importId }),
      );
      const afterOther = (await fetchImport(url, token, importId)).nextSeq;
      // A stream packed from frame 0, without the import's prefixCrc32: the
      // frames the server has were never checked against it, so none is sent.
      const unchecked = await prepareUpload(bytes(good), { fileName: 'streamed.zip', mode: 'replace', frameSize: 65536, target: await fetchTables(url, token) });
      const unvouched = await sendUpload(unchecked, { url, token, importId }).then(
        () => null,
        (e) => ({ code: e.code, importId: e.importId }),
      );
      const afterUnvouched = (await fetchImport(url, token, importId)).nextSeq;
      const requested = [];
      const realFetch = window.fetch;
      window.fetch = (address, init) => {
        requested.push(String(address));
        return realFetch(address, init);
      };
      let lastEvent;
      const resumed = await upload(bytes(good), {
        url,
        token,
        mode: 'replace',
        fileName: 'streamed.zip',
        importId,
        onProgress: (p) => {
          lastEvent = p;
        },
      });
      window.fetch = realFetch;
      const whole = await prepareUpload(bytes(good), { fileName: 'streamed.zip', mode: 'replace', frameSize: 65536, target: await fetchTables(url, token) });
      // A finished import, or an open one of another mode, is not continued: nothing is sent.
      const opened = await (await fetch(`${url}/api/imports`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ mode: 'replace' }),
      })).json();
      const sentFrames = [];
      window.fetch = (address, init) => {
        if (String(address).includes('/frames?')) sentFrames.push(String(address));
        return realFetch(address, init);
      };
      const notContinued = (promise) => promise.then(
        (answer) => answer,
        (e) => ({ name: e.name, code: e.code, importId: e.importId, retryable: e.retryable }),
      );
      // Packed and checked for append: not sent to an import in replace mode, nor as one.
      const forAppend = await prepareUpload(bytes(good), { fileName: 'streamed.zip', mode: 'append', frameSize: 65536, target: await fetchTables(url, token) });
      const refused = {
        finished: await notContinued(sendUpload(whole, { url, token, mode: 'replace', importId })),
        otherMode: await notContinued(sendUpload(forAppend, { url, token, importId: opened.id })),
        notPacked: await notContinued(sendUpload(forAppend, { url, token, mode: 'replace' })),
        byUpload: await notContinued(upload(bytes(good), { url, token, mode: 'replace', fileName: 'streamed.zip', importId })),
        opened: opened.id,
        frames: sentFrames,
      };
      window.fetch = realFetch;
      // Without a mode, upload() continues the import in its own.
      refused.ownMode = (await upload(bytes(good), { url, token, fileName: 'streamed.zip', importId: opened.id })).state;
      refused.ownModeImport = (await fetchImport(url, token, opened.id)).state;
      const continued = {
        nextSeq,
        frameSize,
        otherSize,
        otherInput,
        afterOther,
        unvouched,
        afterUnvouched,
        importId,
        state: resumed.state,
        firstFrames: requested.filter((r) => r.includes('/frames?')).slice(0, 1),
        packedBytes: lastEvent.bytesTotal,
        inputSent: lastEvent.inputSent,
        wholeBytes: whole.stream.size,
        bytesBefore: whole.frames[2 * nextSeq - 1],
      };
      return { finished, events, before, conflict, afterConflict, duplicate, dupImports, dupIds, continued, refused };
    },
    {
      url: server.url,
      token: TOKEN,
      good: readFileSync(path).toString('base64'),
      dup: readFileSync(dup).toString('base64'),
      other: readFileSync(other).toString('base64'),
    },
  );
  assert.equal(result.finished.state, 'finished');
  const states = result.events.map((e) => e.state);
  const firstSent = result.events.findIndex((e) => e.state === 'sending' && e.framesSent > 0);
  assert.ok(firstSent >= 0, `frames were sent: ${states}`);
  assert.ok(firstSent < states.lastIndexOf('packing'), `a frame was acknowledged before packing ended: ${states}`);
  const last = result.events.at(-1);
  assert.equal(last.state, 'finished');
  assert.equal(last.framesSent, last.frames);
  assert.ok(last.frames > 4, `${last.frames} frames`);
  // Packing is told in the input's bytes (the stream's size is not known yet), sending in the stream's.
  const size = readFileSync(path).length;
  const packingEvents = result.events.filter((e) => e.state === 'packing');
  for (const e of packingEvents) {
    assert.deepEqual(Object.keys(e).sort(), ['bytesRead', 'bytesTotal', 'documents', 'state']);
    assert.equal(e.bytesTotal, size);
  }
  assert.equal(packingEvents.at(-1).bytesRead, size);
  let inputSent = 0;
  for (const e of result.events.filter((e) => e.state === 'sending')) {
    assert.ok(e.bytesSent <= e.bytesTotal && e.bytesTotal <= last.bytesTotal, JSON.stringify(e));
    // How far into the file the acknowledged frames reach keeps pace with
    // them (the documents are alike all through the file), whichever of the
    // workers packed them and however far the others read ahead.
    if (e.framesSent === 0) {
      assert.equal(e.inputSent, null, JSON.stringify(e));
      continue;
    }
    assert.ok(e.inputSent >= inputSent && e.inputSent <= size, JSON.stringify(e));
    inputSent = e.inputSent;
    assert.ok(Math.abs(e.inputSent / size - e.framesSent / last.frames) < 0.1, `${JSON.stringify(e)} of ${last.frames} frames`);
  }
  assert.equal(last.inputSent, size);
  await assertLanded(server, summary);

  assert.equal(result.conflict?.code, 'InvalidSnapshot');
  assert.ok(result.conflict.errors > 0);
  assert.equal(result.afterConflict, result.before, 'no import was created for the conflicting upload');
  assert.equal(result.conflict.importId, null);
  // The error names the import it stopped, when one was made.
  assert.equal(result.dupIds.length, 1, 'frames went out before the duplicate was found');
  assert.deepEqual(result.duplicate, { code: 'InvalidSnapshot', errors: 1, importId: result.dupIds[0] });
  assert.ok(result.dupImports.every((state) => state === 'cancelled'), `dup imports: ${result.dupImports}`);

  const { continued } = result;
  assert.ok(continued.nextSeq >= 3, `stopped at frame ${continued.nextSeq}`);
  assert.equal(continued.frameSize, 65536, 'the import has its stream\'s frame size');
  assert.equal(continued.otherSize, 'FrameSizeMismatch', 'another frame size is refused');
  assert.deepEqual(continued.otherInput, { name: 'UploadError', code: 'ResumeMismatch', importId: continued.importId }, 'another input is refused');
  assert.equal(continued.afterOther, continued.nextSeq, 'nothing of the other input was sent');
  assert.deepEqual(continued.unvouched, { code: 'ResumeMismatch', importId: continued.importId });
  assert.equal(continued.afterUnvouched, continued.nextSeq, 'nothing of the unchecked stream was sent');
  assert.equal(continued.state, 'finished');
  assert.equal(continued.inputSent, size, 'a continued upload reaches the end of the file');
  assert.match(continued.firstFrames[0], new RegExp(`/frames\\?seq=${continued.nextSeq}$`));
  assert.equal(
    continued.packedBytes,
    continued.wholeBytes - continued.bytesBefore,
    'the continued upload packed only the frames from the server\'s on',
  );
  await assertLanded(server, summary);

  const { refused } = result;
  const notOpen = { name: 'UploadError', code: 'ImportNotOpen', importId: continued.importId, retryable: false };
  assert.deepEqual(refused.finished, notOpen, 'a finished import is not continued');
  assert.deepEqual(refused.byUpload, notOpen, 'nor by upload()');
  assert.deepEqual(refused.otherMode, { name: 'UploadError', code: 'ModeMismatch', importId: refused.opened, retryable: false });
  assert.deepEqual(refused.notPacked, { name: 'SnappackError', code: 'InvalidOptions', importId: undefined, retryable: undefined });
  assert.deepEqual(refused.frames, [], 'nothing was sent');
  assert.deepEqual([refused.ownMode, refused.ownModeImport], ['finished', 'finished'], 'without a mode, in the import\'s own');
  await page.close();
});

test('an import another import changed a table of: failed by the server, not offered, nor packed for, since it can no longer finish', { timeout: 180_000 }, async () => {
  const server = await startServer();
  const one = join(dir, 'changed-one.jsonl');
  writeFileSync(one, '{"n":1}\n');
  execFileSync(cli(), ['upload', one, '--table', 't', '--url', server.url, '--token', TOKEN, '--quiet']);
  const path = join(dir, 'changed.jsonl');
  writePeople(path);
  // Part of an append into `t` (10001), then the page goes away.
  let page = await newPage(server);
  await pickTableFile(page, path, 't');
  await connect(page);
  await page.check('input[name="mode"][value="append"]');
  await page.waitForSelector('#conflicts.good');
  await slowFrames(page, 400);
  await page.click('#upload');
  await waitForPercent(page, 1);
  const recorded = await page.evaluate(() => JSON.stringify(localStorage));
  await page.close();
  // Another import replaces `t`, as 10002: the append can no longer finish.
  const other = join(dir, 'changed-other.zip');
  writeFileSync(other, zipSync({ '_tables/documents.jsonl': strToU8('{"name":"t","id":10002}\n'), 't/documents.jsonl': strToU8('{"n":2}\n') }));
  execFileSync(cli(), ['upload', other, '--mode', 'replace', '--yes', '--url', server.url, '--token', TOKEN, '--quiet']);
  const imports = async () => (await (await fetch(`${server.url}/api/imports`, { headers: { Authorization: `Bearer ${TOKEN}` } })).json()).imports;
  // The server failed it, saying why: at once, or when a frame request the
  // closed page left running ends.
  let appending;
  for (let tries = 0; tries < 100; tries++) {
    [appending] = (await imports()).filter((i) => i.mode === 'append');
    if (appending.state !== 'open') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(appending.state, 'failed');
  assert.equal(appending.tableChanged?.code, 'TableChanged');

  // In a browser that does not know it: nothing is open to offer, and an upload starts anew.
  page = await newPage(server);
  await page.evaluate(() => localStorage.clear());
  await page.reload();
  await pickTableFile(page, path, 't');
  await connect(page);
  await page.check('input[name="mode"][value="append"]');
  await page.waitForSelector('#conflicts.good');
  assert.equal(await page.isHidden('#resume-note'), true, 'an import offered');
  await page.close();

  // In the browser that started it: it fails at once, without packing the part the server has.
  page = await newPage(server, { init: countWorkers });
  await page.evaluate((items) => {
    localStorage.clear();
    for (const [key, value] of Object.entries(JSON.parse(items))) localStorage.setItem(key, value);
  }, recorded);
  await page.reload();
  await page.setInputFiles('#file', path);
  await page.waitForFunction(() => /Upload failed/.test(document.getElementById('upload-state').textContent));
  assert.match(await page.textContent('#upload-state'), /^Upload failed: TableChanged: Table `t` changed while this import was running .*can no longer finish.*\(table t\)/);
  assert.ok(!(await page.evaluate(() => window.workers.requests)).includes('pack'), 'nothing was packed');
  // It stays as the server left it: failed, saying why.
  const after = (await imports()).find((i) => i.id === appending.id);
  assert.equal(after.state, 'failed');
  assert.equal(after.tableChanged?.code, 'TableChanged');
  await page.close();
});

test('a ZIP with no entry of a Convex export: the verdict says it is empty, and what importing it would do', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const other = join(dir, 'photos and notes.zip');
  writeFileSync(other, zipSync({ 'readme.txt': strToU8('hello'), 'img/pic.png': new Uint8Array([0x89, 0x50, 0x4e, 0x47]) }));
  await page.setInputFiles('#file', other);
  await page.waitForSelector('#verdict.good');
  const verdict = await page.textContent('#verdict');
  assert.match(verdict, /Ready to import: 0 tables, 0 documents/);
  assert.match(verdict, /It is empty: no entry of it is a table’s documents\.jsonl or a stored file, so it may not be a Convex export\..*in Replace all mode it deletes every table of the server\./);
  assert.match(await page.textContent('#live'), /It is empty/, 'said, not only shown');

  // A snapshot with tables says nothing of the kind.
  const real = join(dir, 'real.zip');
  writeFileSync(real, zipSync({ 'users/documents.jsonl': strToU8('{"a":1}\n') }));
  await page.setInputFiles('#file', real);
  await page.waitForFunction(() => /1 table/.test(document.getElementById('verdict').textContent));
  assert.equal(await page.textContent('#verdict'), '✓ Ready to import: 1 table, 1 document, 8 B.Convex would accept this snapshot as it is.');
  await page.close();
});

test('more warnings than a report lists: the page counts them all', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  // 1,500 entries Convex ignores, each a warning: the report lists the first 1,000.
  const entries = { 'users/documents.jsonl': strToU8('{"a":1}\n') };
  for (let i = 0; i < 1500; i++) entries[`extra/note${i}.jsonl`] = new Uint8Array();
  const path = join(dir, 'many-warnings.zip');
  writeFileSync(path, zipSync(entries));
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  assert.match(await page.textContent('#verdict'), /with 1,500 warnings below\./);
  assert.equal(await page.textContent('#warnings-heading'), 'Warnings (the first 1,000 of 1,500)');

  // A few warnings are counted as they are.
  writeFileSync(path, zipSync({ 'users/documents.jsonl': strToU8('{"a":1}\n'), 'extra/note.jsonl': new Uint8Array() }));
  await page.setInputFiles('#file', path);
  await page.waitForFunction(() => /with 1 warning below\./.test(document.getElementById('verdict').textContent));
  assert.equal(await page.textContent('#warnings-heading'), 'Warnings (1)');
  await page.close();
});

/**
 * The contrast (WCAG's ratio, 1 to 21) between the focus outline of the
 * element that has the keyboard focus and the background around it.
 */
async function focusContrast(page) {
  return page.evaluate(() => {
    const rgb = (css) => css.match(/[\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
      const linear = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
    };
    const focused = document.activeElement;
    const style = getComputedStyle(focused);
    // The outline is drawn outside the element: on the first ancestor that has a background.
    let around = focused.parentElement;
    while (around && rgb(getComputedStyle(around).backgroundColor)[3] === 0) around = around.parentElement;
    const background = around ? getComputedStyle(around).backgroundColor : 'rgb(255, 255, 255)';
    const [a, b] = [luminance(rgb(style.outlineColor)), luminance(rgb(background))];
    return { id: focused.id, outline: style.outlineStyle, contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
  });
}

test('the keyboard focus is seen: its outline stands out 3:1 from the background around it', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  await page.keyboard.press('Tab');
  const choose = await focusContrast(page);
  assert.equal(choose.id, 'choose');
  assert.equal(choose.outline, 'solid');
  assert.ok(choose.contrast >= 3, `the outline of Choose a file on the drop zone: ${choose.contrast.toFixed(2)}:1`);
  const table = join(dir, 'focus.jsonl');
  writeFileSync(table, '{"a":1}\n');
  await page.setInputFiles('#file', table);
  await page.waitForSelector('#verdict.good');
  await page.keyboard.press('Tab');
  const download = await focusContrast(page);
  assert.equal(download.id, 'download');
  assert.ok(download.contrast >= 3, `the outline of Download on the page: ${download.contrast.toFixed(2)}:1`);
  await page.close();
});

/** The contrast (WCAG's ratio) between the border of `selector` and the background around it. */
async function borderContrast(page, selector) {
  return page.$eval(selector, (element) => {
    const rgb = (css) => css.match(/[\d.]+/g).map(Number);
    const luminance = ([r, g, b]) => {
      const linear = (c) => ((c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
      return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
    };
    let around = element.parentElement;
    while (around && rgb(getComputedStyle(around).backgroundColor)[3] === 0) around = around.parentElement;
    const background = around ? getComputedStyle(around).backgroundColor : 'rgb(255, 255, 255)';
    const [a, b] = [luminance(rgb(getComputedStyle(element).borderTopColor)), luminance(rgb(background))];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}

test('text fields and buttons are seen by their edges: 3:1 against the background around them', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const table = join(dir, 'edges.jsonl');
  writeFileSync(table, '{"a":1}\n');
  await page.setInputFiles('#file', table);
  await page.waitForSelector('#verdict.good');
  for (const selector of ['#table', '#single button[type="submit"]', '#download', '#url', '#token', '#server button[type="submit"]']) {
    const contrast = await borderContrast(page, selector);
    assert.ok(contrast >= 3, `the border of ${selector}: ${contrast.toFixed(2)}:1`);
  }
  await page.close();
});

test('a table file of a long name with spaces and accents: the table name the page gives it is one Convex takes', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const name = 'a very long file name with spaces and ünïcødé 日本語 characters that goes on and on.jsonl';
  const path = join(dir, name);
  writeFileSync(path, '{"a":1}\n');
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict:is(.good, .bad)');
  const table = await page.inputValue('#table');
  assert.equal(table.length, 64, table);
  assert.match(table, /^a_very_long_file_name_with_spaces_and_unic_de_/, 'accents dropped, not their letters');
  assert.match(await page.textContent('#verdict'), /^✓ Ready to import: 1 table, 1 document/);
  assert.equal(await page.textContent('#file-info'), `${name} · 8 B`, 'the file named as it is');
  await page.close();
});

test('a check against the server cancelled for a table file: no two buttons shown have one name', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const path = join(dir, 'named.jsonl');
  writeFileSync(path, '{"a":1}\n');
  await page.setInputFiles('#file', path);
  await page.waitForSelector('#verdict.good');
  await connect(page);
  await page.waitForSelector('#conflicts.good');
  const held = await holdTables(page);
  await page.check('input[name="mode"][value="append"]');
  await until(() => held.length === 1);
  await page.click('#conflicts button');
  await page.waitForFunction(() => /cancelled/.test(document.getElementById('conflicts').textContent));
  await releaseTables(page, held);
  // What a screen reader's list of buttons reads: each name once.
  const names = await page.$$eval('button', (buttons) => buttons.filter((b) => b.checkVisibility()).map((b) => b.textContent.trim()));
  assert.ok(names.includes('Check again'), names.join(' | '));
  assert.deepEqual(names.filter((name, i) => names.indexOf(name) !== i), [], names.join(' | '));
  await page.close();
});

test('a folder dropped (an export unzipped): the page says to drop the .zip file', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  // Chromium gives a dropped folder as a File of the folder's name, whose entry is a directory;
  // no DataTransfer a page makes holds one, so the drop is dispatched with one that does.
  await page.evaluate(() => {
    const event = new Event('drop', { bubbles: true, cancelable: true });
    const folder = new File([], 'snapshot_1700000000');
    Object.defineProperty(event, 'dataTransfer', { value: { files: [folder], items: [{ webkitGetAsEntry: () => ({ isDirectory: true, name: folder.name }) }] } });
    document.getElementById('drop').dispatchEvent(event);
  });
  await page.waitForSelector('#verdict.bad');
  assert.equal(await page.textContent('#verdict'), "snapshot_1700000000 is a folder: drop the Convex export's .zip file itself (or zip the folder), or one table's .jsonl, .json or .csv file.");
  assert.equal(await page.textContent('#file-info'), 'snapshot_1700000000 · a folder');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'verdict');
  await page.close();
});

test('a schema picked for a CSV file: the file is checked with it at once', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const csv = join(dir, 'members.csv');
  writeFileSync(csv, 'name,nick\nann,\n');
  await page.setInputFiles('#file', csv);
  await page.waitForSelector('#verdict.good');
  // A schema without this table: checked with it, the report warns of that, with no Check again pressed.
  const schema = join(dir, 'other-schema.json');
  writeFileSync(schema, JSON.stringify({ tables: { people: { fields: { nick: { optional: true } } } } }));
  await page.setInputFiles('#schema', schema);
  await page.waitForFunction(() => /SchemaTableMissing/.test(document.getElementById('warnings').textContent), null, { timeout: 5000 });
  assert.equal(await page.textContent('#upload-why'), 'Connect to a server first.', 'the report is of the schema picked');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'verdict');
  await page.close();
});

test('a schema picked for one CSV file is not applied to the next one: cleared, and said so', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const members = join(dir, 'schema-members.csv');
  writeFileSync(members, 'name,nick\nann,\n');
  await page.setInputFiles('#file', members);
  await page.waitForSelector('#verdict.good');
  // A schema without this table: the report warns of that.
  const schema = join(dir, 'members-schema.json');
  writeFileSync(schema, JSON.stringify({ tables: { people: { fields: { nick: { optional: true } } } } }));
  await page.setInputFiles('#schema', schema);
  await page.waitForFunction(() => /SchemaTableMissing/.test(document.getElementById('warnings').textContent), null, { timeout: 5000 });
  assert.equal(await page.isHidden('#schema-note'), true);
  // The same file chosen again keeps its schema.
  await page.setInputFiles('#file', members);
  await page.waitForFunction(() => /SchemaTableMissing/.test(document.getElementById('warnings').textContent), null, { timeout: 5000 });
  assert.equal(await page.evaluate(() => document.getElementById('schema').files.length), 1);

  // Another CSV: checked without that schema, which the page says it let go, beside the field and aloud.
  const guests = join(dir, 'schema-guests.csv');
  writeFileSync(guests, 'name,nick\nbob,\n');
  await page.setInputFiles('#file', guests);
  await page.waitForFunction(() => /schema-guests\.csv/.test(document.getElementById('file-info').textContent));
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.evaluate(() => document.getElementById('schema').files.length), 0, 'the schema input is cleared');
  assert.doesNotMatch(await page.textContent('#warnings'), /SchemaTableMissing/, 'the report is of the file without the schema');
  const said = 'The schema members-schema.json was picked for the previous file and is not used for schema-guests.csv: pick it again if it describes this file too.';
  assert.equal(await page.textContent('#schema-note'), said);
  assert.equal(await page.isVisible('#schema-note'), true);
  assert.match(await page.textContent('#live'), new RegExp(said.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  // Picking a schema again puts the note away.
  await page.setInputFiles('#schema', schema);
  await page.waitForFunction(() => /SchemaTableMissing/.test(document.getElementById('warnings').textContent), null, { timeout: 5000 });
  assert.equal(await page.isHidden('#schema-note'), true);
  await page.close();
});

test('a CSV upload started with a schema, the page reloaded and the file picked again: checked with that schema, and said so', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const csv = join(dir, 'schema-resumed.csv');
  writeFileSync(csv, 'name,nick\nann,\nbob,b\n');
  // A schema without this table, so that the report shows whether it was checked with it.
  const schema = join(dir, 'schema-resumed.json');
  writeFileSync(schema, JSON.stringify({ tables: { people: { fields: { nick: { optional: true } } } } }));
  await page.setInputFiles('#file', csv);
  await page.waitForSelector('#verdict.good');
  await connect(page);
  await page.setInputFiles('#schema', schema);
  await page.waitForFunction(() => /SchemaTableMissing/.test(document.getElementById('warnings').textContent), null, { timeout: 5000 });
  await page.waitForSelector('#conflicts.good');
  // The import is not created before the pause: the upload stays to be continued.
  await page.route('**/api/imports', () => {});
  await page.click('#upload');
  await page.click('#pause');
  await page.waitForFunction(() => /Paused/.test(document.getElementById('upload-state').textContent));
  await page.unroute('**/api/imports');

  await page.reload();
  await page.waitForSelector('#server-status.good', { state: 'attached' });
  await page.setInputFiles('#file', csv);
  await page.waitForFunction(() => /Paused/.test(document.getElementById('upload-state').textContent));
  await page.waitForSelector('#verdict.good');
  assert.equal(await page.evaluate(() => document.getElementById('schema').files.length), 0);
  assert.match(await page.textContent('#warnings'), /SchemaTableMissing/, 'checked with the schema the upload goes on with');
  const said = 'The upload of schema-resumed.csv was started with a schema: it is checked and uploaded with that schema.';
  assert.equal(await page.textContent('#schema-note'), said);
  assert.equal(await page.isVisible('#schema-note'), true);
  assert.match(await page.textContent('#live'), /The upload of schema-resumed\.csv was started with a schema/);
  // Resumed, it lands.
  await page.click('#pause');
  await page.waitForSelector('#summary:not([hidden])');
  assert.equal((await serverTables(server)).find((t) => t.name === 'schema_resumed')?.documents, 2);
  await page.close();
});

test('Replace all: the tables it would delete are said, not only shown', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const alpha = join(dir, 'alpha.jsonl');
  writeFileSync(alpha, '{"a":1}\n');
  await pickAndConnect(page, alpha);
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])');
  const beta = join(dir, 'beta.jsonl');
  writeFileSync(beta, '{"b":1}\n');
  await page.setInputFiles('#file', beta);
  await page.waitForSelector('#verdict.good');
  await page.check('input[name="mode"][value="replaceAll"]');
  await page.waitForSelector('#conflicts.warn');
  assert.match(await page.textContent('#live'), /Replace all mode deletes 1 table of the server that is not in this table file \(1 document\): Tables deleted: alpha\./);
  await page.close();
});

test('JSON lines named .json, or a JSON array named .jsonl: the verdict says which extension the file needs', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const lines = join(dir, 'lines named.json');
  writeFileSync(lines, '{"a":1}\n{"a":2}\n');
  await page.setInputFiles('#file', lines);
  await page.waitForSelector('#verdict.bad');
  assert.match(await page.textContent('#verdict'), /lines named\.json holds more than one JSON value: if it has one document a line \(JSON lines\), name it \.jsonl and choose it again\.$/);
  assert.match(await page.textContent('#live'), /name it \.jsonl/, 'said too');

  for (const text of ['[{"a":1},{"a":2}]\n', '[\n  {"a":1},\n  {"a":2}\n]\n']) {
    const array = join(dir, 'array.jsonl');
    writeFileSync(array, text);
    await page.setInputFiles('#file', array);
    await page.waitForFunction(() => /starts with \[/.test(document.getElementById('verdict').textContent));
    assert.match(await page.textContent('#verdict'), /array\.jsonl starts with \[: if it is one JSON array of documents, name it \.json and choose it again\.$/);
  }

  // Other broken files get no such advice.
  const broken = join(dir, 'broken.jsonl');
  writeFileSync(broken, '{"a":1}\n{"a":\n');
  await page.setInputFiles('#file', broken);
  await page.waitForFunction(() => /broken/.test(document.getElementById('errors').textContent));
  assert.doesNotMatch(await page.textContent('#verdict'), /name it/);
  await page.close();
});

test('conflicts with the server\'s tables are said, not only shown', { timeout: 60_000 }, async () => {
  const server = await startServer();
  const page = await newPage(server);
  const path = join(dir, 'twice.jsonl');
  writeFileSync(path, '{"a":1}\n');
  await pickAndConnect(page, path);
  await page.click('#upload');
  await page.waitForSelector('#summary:not([hidden])');
  // The same file again in Require empty mode: its table is there now.
  await page.click('input[name="mode"][value="requireEmpty"]');
  await page.waitForSelector('#conflicts.bad');
  assert.match(await page.textContent('#live'), /1 conflict with the server's tables in Require empty mode: Table twice already exists\./);
  await page.close();
});
