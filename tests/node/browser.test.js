// The package's browser entry in real Chromium (Debian's, driven by
// playwright-core): a File picked in a page is validated in the package's Web
// Worker, read with FileReaderSync, and its Report equals the native CLI's.
// Cancelling ends the worker; a panic rejects with code Panic.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { ROOT, cli, freePort, gen, nativeReport, scratch, sortedJson } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const PKG = join(ROOT, 'pkg');
const TYPES = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const STRICT_CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";
const PAGE = '<!doctype html><meta charset="utf-8"><title>snappack</title><input type="file" id="file">';

const dir = scratch();
let server;
let browser;
let page;

/** Serves the test page at / and the built package under /pkg/. */
async function serve() {
  const port = await freePort();
  return new Promise((resolve) => {
    const httpServer = createServer((request, response) => {
      const url = new URL(request.url, 'http://localhost');
      if (url.pathname === '/') {
        response.writeHead(200, { 'content-type': TYPES['.html'] });
        response.end(PAGE);
        return;
      }
      // The page under a Content-Security-Policy that allows the package's
      // files and its WebAssembly, but no worker from a `blob:` URL.
      if (url.pathname === '/strict-csp') {
        response.writeHead(200, { 'content-type': TYPES['.html'], 'content-security-policy': STRICT_CSP });
        response.end(PAGE);
        return;
      }
      const path = normalize(join(PKG, url.pathname.replace(/^\/pkg\//, '')));
      if (!url.pathname.startsWith('/pkg/') || !path.startsWith(PKG) || !existsSync(path) || !statSync(path).isFile()) {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
      createReadStream(path).pipe(response);
    });
    httpServer.listen(port, '127.0.0.1', () => resolve(httpServer));
  });
}

/** A `snappack serve` (no page, a data folder of its own) with `args`, once it answers. */
async function startSnappackServe(args) {
  const port = await freePort();
  const token = 'node-test-token';
  const url = `http://127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(dir, 'serve-'));
  const child = spawn(cli(), ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--no-www', '--token', token, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = () => child.kill('SIGKILL');
  for (let i = 0; ; i += 1) {
    try {
      if ((await fetch(`${url}/api/tables`, { headers: { Authorization: `Bearer ${token}` } })).ok) break;
    } catch {
      // not up yet
    }
    if (i > 200) {
      stop();
      throw new Error('snappack serve did not start');
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, token, stop };
}

before(async () => {
  server = await serve();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  page = await browser.newPage();
  page.on('pageerror', (error) => console.error('page error:', error));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
});

after(async () => {
  await browser?.close();
  server?.close();
});

/** Picks `path` in the page's file input, as a user would. */
async function pick(path) {
  await page.setInputFiles('#file', path);
}

test('a picked File validates in the Worker with the CLI\'s report', async () => {
  const path = join(dir, 'browser.zip');
  gen(path, {
    tables: 3,
    totalDocuments: 30000,
    components: ['a'],
    storageFiles: 2,
    compressionLevel: 1,
    faults: ['duplicateId', 'foreignTableId'],
  });
  await pick(path);
  const { report, progress, ticks, alone, made } = await page.evaluate(async () => {
    const { validate } = await import('/pkg/browser.js');
    // Counts the Web Workers the package starts.
    const made = [];
    const RealWorker = Worker;
    globalThis.Worker = class extends RealWorker {
      constructor(...args) {
        super(...args);
        made[made.length - 1] += 1;
      }
    };
    made.push(0);
    const progress = [];
    // Timer callbacks keep running while the worker works: the page never freezes.
    let timer = 0;
    const interval = setInterval(() => (timer += 1), 0);
    const ticks = [];
    const file = document.querySelector('#file').files[0];
    const report = await validate(file, {
      workers: 3,
      onProgress: (p) => {
        progress.push(p);
        ticks.push(timer);
      },
    });
    clearInterval(interval);
    made.push(0);
    const alone = await validate(file, { workers: 1 });
    globalThis.Worker = RealWorker;
    return { report, progress, ticks, alone, made };
  });
  // Three workers share the walk, a fourth merges what they found.
  assert.deepEqual(made, [4, 1]);
  assert.equal(sortedJson(report), sortedJson(JSON.parse(nativeReport(path))));
  assert.equal(sortedJson(alone), sortedJson(report));
  assert.equal(report.error_count, 2);
  const size = statSync(path).size;
  assert.ok(size > 4 << 20, 'read in several growing fetches');
  assert.ok(progress.length >= 3, `${progress.length} progress events`);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i].bytesRead >= progress[i - 1].bytesRead);
  assert.deepEqual(progress.at(-1), { bytesRead: size, bytesTotal: size, documents: report.documents });
  assert.ok(ticks.at(-1) > ticks[0], `timers ran between the first and last progress: ${ticks}`);
});

test('bytes and single-table files validate in the browser too', async () => {
  const path = join(dir, 'users.jsonl');
  writeFileSync(path, '{"name":"ada"}\nnot json\n');
  await pick(path);
  const { fromFile, fromBytes } = await page.evaluate(async () => {
    const { validate } = await import('/pkg/browser.js');
    const file = document.querySelector('#file').files[0];
    const fromFile = await validate(file, { table: 'users' });
    const bytes = new Uint8Array(await file.arrayBuffer());
    const fromBytes = await validate(bytes, { table: 'users', fileName: 'users.jsonl' });
    return { fromFile, fromBytes };
  });
  const native = JSON.parse(nativeReport(path, { table: 'users' }));
  assert.equal(sortedJson(fromFile), sortedJson(native));
  assert.equal(sortedJson(fromBytes), sortedJson(native));
});

test('aborting ends the worker and rejects with the signal\'s reason', async () => {
  const path = join(dir, 'abort.zip');
  gen(path, { tables: 2, totalDocuments: 30000, compressionLevel: 1 });
  await pick(path);
  const outcome = await page.evaluate(async () => {
    const { validate } = await import('/pkg/browser.js');
    const file = document.querySelector('#file').files[0];
    const controller = new AbortController();
    let events = 0;
    try {
      await validate(file, {
        signal: controller.signal,
        onProgress: () => {
          events += 1;
          if (events === 1) controller.abort();
        },
      });
      return 'resolved';
    } catch (error) {
      return { name: error.name, events };
    }
  });
  assert.deepEqual(outcome, { name: 'AbortError', events: 1 });
});

test('misuse and panics reject with a SnappackError code', async () => {
  const codes = await page.evaluate(async () => {
    const { prepareUpload, validate } = await import('/pkg/browser.js');
    // Internal, not exported by the package: a worker's run of a request, to provoke a panic.
    const { inWorker, workerModule } = await import('/pkg/runner.js');
    const codeOf = (promise) => promise.then(() => 'resolved', (error) => `${error.name}:${error.code}`);
    // A frame size below what snappack packs, and one above what a server reads by default.
    const rows = new TextEncoder().encode(`{"a":1}\n`);
    const tooSmall = prepareUpload(rows, { fileName: 'rows.jsonl', table: 'rows', frameSize: 4095 });
    const tooLarge = prepareUpload(rows, { fileName: 'rows.jsonl', table: 'rows', frameSize: 16 * 2 ** 20 + 1 });
    return [
      await codeOf(tooSmall),
      await codeOf(tooLarge),
      await codeOf(validate('a path')),
      await codeOf(validate(new Uint8Array(4), { mode: 'sideways' })),
      // Bytes and Blobs have no name: their first bytes tell the format, or a finding says to give it.
      (await validate(new Uint8Array(4))).errors[0].code,
      (await validate(new Blob(['{}\n']), { table: 't' })).format,
      await codeOf(inWorker({ type: 'panic', module: await workerModule(), message: 'on purpose' }, {})),
      // After the panic, a fresh worker validates as usual; a broken ZIP is a finding.
      (await validate(new Uint8Array(4), { fileName: 'x.zip' })).errors[0].code,
    ];
  });
  assert.deepEqual(codes, [
    'SnappackError:InvalidOptions',
    'SnappackError:InvalidOptions',
    'SnappackError:InvalidInput',
    'SnappackError:InvalidOptions',
    'InvalidOptions',
    'jsonl',
    'SnappackError:Panic',
    'InvalidZip',
  ]);
});

test('a worker whose script cannot be loaded rejects with WorkerFailed saying so', async () => {
  await page.route('**/pkg/worker.js', (route) => route.abort());
  try {
    const answer = await page.evaluate(async () => {
      const { validate } = await import('/pkg/browser.js');
      return validate(new Uint8Array(4), { fileName: 'x.zip' }).then(() => 'resolved', (e) => `${e.code}: ${e.message}`);
    });
    assert.equal(answer, "WorkerFailed: snappack's worker failed: it could not be started: its script could not be loaded (is the server that served this page reachable?)");
  } finally {
    await page.unroute('**/pkg/worker.js');
  }
});

test('upload options of the wrong type reject with InvalidOptions before any request', async () => {
  const path = join(dir, 'options.zip');
  gen(path, { tables: 1, totalDocuments: 20 });
  await pick(path);
  const { answers, requests } = await page.evaluate(async () => {
    const { fetchImport, fetchTables, prepareUpload, sendUpload, startPacking, upload } = await import('/pkg/browser.js');
    const file = document.querySelector('#file').files[0];
    const prepared = await prepareUpload(file, { mode: 'replace' });
    const requests = [];
    const realFetch = window.fetch;
    window.fetch = (address, init) => {
      requests.push(String(address));
      return realFetch(address, init);
    };
    const server = { url: 'http://127.0.0.1:9', token: 'token' };
    const answerOf = (promise) => promise.then(() => 'resolved', (e) => `${e.name}:${e.code}:${e.message}`);
    const answers = [];
    const handlers = [{ onProgress: 'render' }, { onImport: 1 }, { signal: {} }];
    const misspelt = { onprogress: () => {} };
    for (const wrong of [{ label: 42 }, { label: {} }, { importId: 7 }, { importId: '' }, ...handlers, { label: 'x'.repeat(257) }, misspelt]) {
      answers.push(await answerOf(sendUpload(prepared, { ...server, ...wrong })));
      answers.push(await answerOf(upload(file, { ...server, ...wrong })));
    }
    answers.push(await answerOf(fetchImport(server.url, server.token, '')));
    // A relative URL would be answered by the page's own server.
    answers.push(await answerOf(fetchTables('not a url', server.token)));
    // Frame sizes out of range are refused at once, not by the workers later.
    try {
      startPacking(file, { frameSize: 10 });
      answers.push('returned');
    } catch (e) {
      answers.push(`${e.name}:${e.code}:${e.message}`);
    }
    answers.push(await answerOf(prepareUpload(file, { target: [] })));
    answers.push(await answerOf(prepareUpload(file, { target: {} })));
    // A prepared input with errors is refused as the README says, with its report.
    const invalid = await prepareUpload(new TextEncoder().encode('{"a":1}\nnot json\n'), { fileName: 't.jsonl', table: 't' });
    answers.push(await sendUpload(invalid, server).then(
      () => 'resolved',
      (e) => `${e.name}:${e.code}:${e.message}:${e.report?.errors[0]?.line}`,
    ));
    window.fetch = realFetch;
    return { answers, requests };
  });
  const label = 'SnappackError:InvalidOptions:option "label" must be a string';
  const importId = 'SnappackError:InvalidOptions:option "importId" must be a non-empty string';
  const misuse = (message) => [`SnappackError:InvalidOptions:${message}`, `SnappackError:InvalidOptions:${message}`];
  assert.deepEqual(answers, [
    label, label, label, label, importId, importId, importId, importId,
    ...misuse('onProgress must be a function'), ...misuse('onImport must be a function'), ...misuse('signal must be an AbortSignal'),
    ...misuse('option "label" must be at most 256 bytes (UTF-8)'), ...misuse('unknown option "onprogress"'),
    importId,
    "SnappackError:InvalidOptions:url must be the server's URL, such as http://127.0.0.1:8080",
    'SnappackError:InvalidOptions:frameSize must be a whole number of bytes, 4096 to 16777216',
    'SnappackError:InvalidOptions:option "target" must be an object',
    'SnappackError:InvalidOptions:option "target": tables must be an array (the server\'s tables, as fetchTables gives them: { tables: [{ component, name, number, documents }] })',
    'UploadError:InvalidSnapshot:the snapshot has 1 error; nothing was imported:2',
  ]);
  assert.deepEqual(requests, []);
});

test('upload functions given options that are not an object reject with InvalidOptions before any request', async () => {
  const answers = await page.evaluate(async () => {
    const { prepareUpload, sendUpload, startPacking, upload } = await import('/pkg/browser.js');
    const rows = new TextEncoder().encode('{"a":1}\n');
    const requests = [];
    const realFetch = window.fetch;
    // Requests to a server (the package's own files are fetched too, to pack).
    window.fetch = (address, init) => {
      if (!String(address).includes('/pkg/')) requests.push(String(address));
      return realFetch(address, init);
    };
    const answerOf = (promise) => promise.then(() => 'resolved', (e) => `${e.name}:${e.code}:${e.message}`);
    const answers = [];
    try {
      for (const wrong of ['http://127.0.0.1:9', ['x']]) {
        try {
          startPacking(rows, wrong);
          answers.push('returned');
        } catch (e) {
          answers.push(`${e.name}:${e.code}:${e.message}`);
        }
        answers.push(await answerOf(prepareUpload(rows, wrong)));
        const packing = startPacking(rows, { fileName: 'rows.jsonl', table: 'rows' });
        answers.push(await answerOf(sendUpload(packing, wrong)));
        packing.stop();
        answers.push(await answerOf(upload(rows, wrong)));
      }
    } finally {
      window.fetch = realFetch;
    }
    return { answers, requests };
  });
  assert.deepEqual(answers, {
    answers: Array(8).fill('SnappackError:InvalidOptions:options must be an object'),
    requests: [],
  });
});

test('fetchImport() without an import id rejects with InvalidOptions before any request', async () => {
  const answers = await page.evaluate(async () => {
    const { fetchImport } = await import('/pkg/browser.js');
    const requests = [];
    const realFetch = window.fetch;
    window.fetch = (address, init) => {
      requests.push(String(address));
      return realFetch(address, init);
    };
    const answerOf = (promise) => promise.then(() => 'resolved', (e) => `${e.name}:${e.code}:${e.message}`);
    try {
      const answers = [await answerOf(fetchImport('http://127.0.0.1:9', 'token')), await answerOf(fetchImport('http://127.0.0.1:9', 'token', null))];
      return { answers, requests };
    } finally {
      window.fetch = realFetch;
    }
  });
  const importId = 'SnappackError:InvalidOptions:option "importId" must be a non-empty string';
  assert.deepEqual(answers, { answers: [importId, importId], requests: [] });
});

test('a URL that is not a snappack server: the listing, the status and the upload reject saying so, never blaming an option', async () => {
  // Another service, which answers every request with JSON of its own, and a
  // server with no API at all (the test page's, which answers 404).
  const port = await freePort();
  const other = await new Promise((resolve) => {
    const httpServer = createServer((request, response) => {
      response.writeHead(200, {
        'content-type': 'application/json',
        'access-control-allow-origin': '*',
        'access-control-allow-headers': '*',
        'access-control-allow-methods': '*',
      });
      response.end(request.method === 'OPTIONS' ? '' : '{"hello":"world"}');
    });
    httpServer.listen(port, '127.0.0.1', () => resolve(httpServer));
  });
  try {
    const answers = await page.evaluate(async ({ json, none }) => {
      const { fetchImport, fetchTables, upload } = await import('/pkg/browser.js');
      const rows = new TextEncoder().encode('{"a":1}\n');
      const answerOf = (promise) => promise.then(() => 'resolved', (e) => `${e.name}:${e.code}:${e.message}`);
      const answers = [];
      for (const url of [json, none]) {
        answers.push(await answerOf(fetchTables(url, 'token')));
        answers.push(await answerOf(fetchImport(url, 'token', 'abc')));
        answers.push(await answerOf(upload(rows, { url, token: 'token', fileName: 'rows.jsonl', table: 'rows' })));
      }
      return answers;
    }, { json: `http://127.0.0.1:${port}`, none: `http://127.0.0.1:${server.address().port}` });
    const json = `http://127.0.0.1:${port}`;
    const none = `http://127.0.0.1:${server.address().port}`;
    const listing = `UploadError:Protocol:${json}/api/tables did not answer with a snappack server's table listing: is ${json} a snappack server?`;
    const notFound = (path) => `UploadError:Http404:${none}${path} answered HTTP 404 and no snappack error: is ${none} a snappack server?`;
    assert.deepEqual(answers, [
      listing,
      `UploadError:Protocol:${json}/api/imports/abc did not answer with a snappack server's import status: is ${json} a snappack server?`,
      listing,
      notFound('/api/tables'),
      notFound('/api/imports/abc'),
      notFound('/api/tables'),
    ]);
  } finally {
    other.close();
  }
});

test('sendUpload() refused the listing (a wrong token, a URL that is not a snappack server): rejects with that refusal, and creates no import', { timeout: 120_000 }, async () => {
  const origin = `http://127.0.0.1:${server.address().port}`;
  const snappack = await startSnappackServe(['--allow-origin', origin]);
  try {
    const { answers, requests } = await page.evaluate(async ({ url, none }) => {
      const { sendUpload, startPacking } = await import('/pkg/browser.js');
      const rows = new TextEncoder().encode('{"a":1}\n');
      const requests = [];
      const realFetch = window.fetch;
      window.fetch = (address, init) => {
        const { pathname } = new URL(address, location.href);
        if (pathname.startsWith('/api/')) requests.push(`${init?.method ?? 'GET'} ${pathname}`);
        return realFetch(address, init);
      };
      const answers = [];
      try {
        for (const [to, token] of [[url, 'not the token'], [none, 'token']]) {
          const packing = startPacking(rows, { fileName: 'rows.jsonl', table: 'rows' });
          answers.push(await sendUpload(packing, { url: to, token }).then(() => 'resolved', (e) => `${e.name}:${e.code}:${e.status}`));
          packing.stop();
        }
      } finally {
        window.fetch = realFetch;
      }
      return { answers, requests };
    }, { url: snappack.url, none: origin });
    assert.deepEqual(answers, ['UploadError:Unauthorized:401', 'UploadError:Http404:404']);
    assert.deepEqual(requests, ['GET /api/tables', 'GET /api/tables']);
  } finally {
    snappack.stop();
  }
});

test('an upload whose server goes away for good gives up after its retries, naming the server and the import to continue', { timeout: 120_000 }, async () => {
  const path = join(dir, 'server-gone.zip');
  gen(path, { seed: 3, tables: 2, totalDocuments: 3000 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const snappack = await startSnappackServe(['--allow-origin', origin]);
  try {
    await pick(path);
    await page.evaluate(async ({ url, token }) => {
      const { upload } = await import('/pkg/browser.js');
      const file = document.querySelector('#file').files[0];
      globalThis.uploadCreated = new Promise((created) => {
        globalThis.uploadOutcome = upload(file, { url, token, frameSize: 4096, framesPerRequest: 1, onImport: created }).then(
          (r) => ({ state: r.state }),
          (e) => ({ name: e.name, code: e.code, retryable: e.retryable, importId: e.importId, message: e.message }),
        );
      });
    }, { url: snappack.url, token: snappack.token });
    const importId = await page.evaluate(() => globalThis.uploadCreated);
    snappack.stop();
    const outcome = await page.evaluate(() => globalThis.uploadOutcome);
    assert.deepEqual(outcome, {
      name: 'UploadError',
      code: 'NetworkError',
      retryable: true,
      importId,
      message: `gave up after 8 retries: cannot reach ${snappack.url}: Failed to fetch`,
    });
  } finally {
    snappack.stop();
  }
});

test('a picked File moved away before its size was read is a read failure, not an empty archive', async () => {
  const path = join(dir, 'moved.zip');
  gen(path, { tables: 1, totalDocuments: 20 });
  await pick(path);
  // Chromium says such a File has 0 bytes; only reading it tells it is gone.
  unlinkSync(path);
  const found = await page.evaluate(async () => {
    const { prepareUpload, validate } = await import('/pkg/browser.js');
    const file = document.querySelector('#file').files[0];
    const first = (report) => `${report.errors[0]?.code}: ${report.errors[0]?.message}`;
    return [first(await validate(file)), first((await prepareUpload(file)).report)];
  });
  for (const finding of found) {
    assert.match(finding, /^ReadFailed: cannot read the input: FileReaderSync: .*could not be found/);
  }
});

test("upload() to a server that takes smaller frames than the package packs: frames of its limit, and the import lands; an older server's refusal stays", { timeout: 120_000 }, async () => {
  const path = join(dir, 'small-frames.zip');
  const summary = gen(path, { seed: 7, tables: 2, totalDocuments: 2000 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const snappack = await startSnappackServe(['--max-frame-size', '65536', '--allow-origin', origin]);
  try {
    await pick(path);
    const answers = await page.evaluate(async ({ url, token }) => {
      const { upload } = await import('/pkg/browser.js');
      const file = document.querySelector('#file').files[0];
      const realFetch = window.fetch;
      // The max frame size each new stream declares in its header (bytes 12..16).
      const declared = [];
      let old = false;
      window.fetch = async (address, init) => {
        if (String(address).endsWith('/frames?seq=0')) {
          declared.push(new DataView(await init.body.slice(12, 16).arrayBuffer()).getUint32(0, true));
        }
        const response = await realFetch(address, init);
        if (!old || !String(address).endsWith('/api/tables')) return response;
        // As a server from before the listing advertised its frame limit.
        const { tables } = await response.json();
        return new Response(JSON.stringify({ tables }), { status: 200, headers: { 'content-type': 'application/json' } });
      };
      const answers = [];
      try {
        // The package's default frame size, then one asked for: both over the server's limit.
        const first = await upload(file, { url, token });
        const second = await upload(file, { url, token, mode: 'replace', frameSize: 1 << 20 });
        answers.push(first.state, second.state);
        // A server that does not say: the default frame size, which it refuses.
        old = true;
        answers.push(await upload(file, { url, token, mode: 'replace' }).then(() => 'resolved', (e) => `${e.name}:${e.code}`));
      } finally {
        window.fetch = realFetch;
      }
      return { answers, declared };
    }, { url: snappack.url, token: snappack.token });
    assert.deepEqual(answers, { answers: ['finished', 'finished', 'UploadError:FrameTooLarge'], declared: [65536, 65536, 1 << 20] });
    const { tables } = await (await fetch(`${snappack.url}/api/tables`, { headers: { Authorization: `Bearer ${snappack.token}` } })).json();
    for (const table of summary.tables) {
      assert.equal(tables.find((t) => t.name === table.name)?.documents, table.documents, table.name);
    }
  } finally {
    snappack.stop();
  }
});

test('sendUpload() of a packing made without the server\'s listing, in frames over its limit: refused before any import, naming both sizes', { timeout: 120_000 }, async () => {
  const path = join(dir, 'unlisted-frames.zip');
  const summary = gen(path, { seed: 8, tables: 2, totalDocuments: 1000 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const snappack = await startSnappackServe(['--max-frame-size', '65536', '--allow-origin', origin]);
  try {
    await pick(path);
    const { refusal, requests, finished } = await page.evaluate(async ({ url, token }) => {
      const { fetchTables, sendUpload, startPacking } = await import('/pkg/browser.js');
      const file = document.querySelector('#file').files[0];
      const realFetch = window.fetch;
      const requests = [];
      window.fetch = (address, init) => {
        const { pathname } = new URL(address, location.href);
        // The server's requests; the package's own files (its .wasm) are not counted.
        if (pathname.startsWith('/api/')) requests.push(`${init?.method ?? 'GET'} ${pathname}`);
        return realFetch(address, init);
      };
      try {
        // No target: the package's default frame size, 1 MiB, over the server's 64 KiB.
        const packing = startPacking(file);
        const refusal = await sendUpload(packing, { url, token }).then(() => null, (e) => ({ name: e.name, code: e.code, message: e.message }));
        packing.stop();
        const sentBefore = requests.splice(0);
        // Packed with the server's listing, as the error says: it lands.
        const listed = startPacking(file, { target: await fetchTables(url, token) });
        const finished = (await sendUpload(listed, { url, token })).state;
        return { refusal, requests: sentBefore, finished };
      } finally {
        window.fetch = realFetch;
      }
    }, { url: snappack.url, token: snappack.token });
    assert.equal(refusal?.name, 'UploadError');
    assert.equal(refusal.code, 'FrameTooLarge');
    assert.match(refusal.message, /frames of up to 1048576 bytes/);
    assert.match(refusal.message, /at most 65536 bytes \(its maxFrameSize\)/);
    assert.match(refusal.message, /target: await fetchTables\(url, token\)/);
    // Only the listing was asked for: no import was created, no frame sent.
    assert.deepEqual(requests, ['GET /api/tables']);
    assert.equal(finished, 'finished');
    const headers = { Authorization: `Bearer ${snappack.token}` };
    const { imports } = await (await fetch(`${snappack.url}/api/imports`, { headers })).json();
    assert.equal(imports.length, 1);
    const { tables } = await (await fetch(`${snappack.url}/api/tables`, { headers })).json();
    for (const table of summary.tables) {
      assert.equal(tables.find((t) => t.name === table.name)?.documents, table.documents, table.name);
    }
  } finally {
    snappack.stop();
  }
});

test('sendUpload() whose first look at the server\'s listing gets no answer: the upload goes on with its own retries and lands', { timeout: 120_000 }, async () => {
  const path = join(dir, 'listing-unanswered.zip');
  const summary = gen(path, { seed: 9, tables: 2, totalDocuments: 500 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const snappack = await startSnappackServe(['--allow-origin', origin]);
  try {
    await pick(path);
    const { outcome, requests } = await page.evaluate(async ({ url, token }) => {
      const { sendUpload, startPacking } = await import('/pkg/browser.js');
      const file = document.querySelector('#file').files[0];
      const realFetch = window.fetch;
      const requests = [];
      // The server cannot be reached for the first request, then can.
      window.fetch = (address, init) => {
        const { pathname } = new URL(address, location.href);
        if (!pathname.startsWith('/api/')) return realFetch(address, init);
        requests.push(`${init?.method ?? 'GET'} ${pathname}`);
        return requests.length === 1 ? Promise.reject(new TypeError('Failed to fetch')) : realFetch(address, init);
      };
      try {
        const outcome = await sendUpload(startPacking(file), { url, token }).then((r) => r.state, (e) => `${e.code}: ${e.message}`);
        return { outcome, requests };
      } finally {
        window.fetch = realFetch;
      }
    }, { url: snappack.url, token: snappack.token });
    assert.equal(outcome, 'finished');
    assert.equal(requests[0], 'GET /api/tables');
    assert.ok(requests.includes('POST /api/imports'), requests.join(', '));
    const headers = { Authorization: `Bearer ${snappack.token}` };
    const { tables } = await (await fetch(`${snappack.url}/api/tables`, { headers })).json();
    for (const table of summary.tables) {
      assert.equal(tables.find((t) => t.name === table.name)?.documents, table.documents, table.name);
    }
  } finally {
    snappack.stop();
  }
});

/**
 * A TCP server on a free port that accepts connections and never answers;
 * with `partial`, it answers CORS preflights and sends the head of each
 * other answer and the start of its body, then nothing more.
 */
async function silentServer(partial = false) {
  const port = await freePort();
  const sockets = new Set();
  const tcp = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    if (!partial) return;
    socket.on('data', (data) => {
      const cors = 'Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Headers: *\r\nAccess-Control-Allow-Methods: GET, POST\r\n';
      if (data.toString('latin1').startsWith('OPTIONS ')) socket.write(`HTTP/1.1 204 No Content\r\n${cors}\r\n`);
      else socket.write(`HTTP/1.1 200 OK\r\n${cors}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"tables":`);
    });
  });
  await new Promise((resolve) => tcp.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => {
      for (const socket of sockets) socket.destroy();
      tcp.close();
    },
  };
}

/**
 * A TCP proxy on a free port in front of the server at `target` (a URL)
 * that passes everything on, but swallows the first request whose first
 * line starts with `stall` and keeps that connection open without an answer;
 * with `cutHead`, it passes that request on, and of its answer only the
 * head, without the empty line that ends it, then closes the connection.
 */
async function stallingProxy(target, stall, cutHead = false) {
  const port = await freePort();
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set();
  const stalled = [];
  const tcp = createNetServer((client) => {
    const upstream = connect(Number(targetPort), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => sockets.delete(socket));
    }
    let held = false;
    let answer = Buffer.alloc(0);
    client.on('data', (data) => {
      const text = data.toString('latin1');
      if (!held && stalled.length === 0 && text.startsWith(stall)) {
        held = true;
        stalled.push(text.split('\r\n')[0]);
      }
      if (!held || cutHead) upstream.write(data);
    });
    upstream.on('data', (data) => {
      if (!held) return client.write(data);
      if (!cutHead) return;
      answer = Buffer.concat([answer, data]);
      const end = answer.indexOf('\r\n\r\n');
      if (end >= 0) client.end(answer.subarray(0, end));
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
  });
  await new Promise((resolve) => tcp.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    stalled,
    close: () => {
      for (const socket of sockets) socket.destroy();
      tcp.close();
    },
  };
}

test('a server that takes the connection and never answers, or stops mid-answer: each request gives up after its time limit, naming the server', { timeout: 60_000 }, async () => {
  const silent = await silentServer();
  const halting = await silentServer(true);
  try {
    const outcomes = await page.evaluate(async ({ silent, halting }) => {
      const { fetchTables, fetchImport, upload } = await import('/pkg/browser.js');
      const rows = new TextEncoder().encode('{"a":1}\n');
      const said = (e) => `${e.name}:${e.code}:${e.retryable}: ${e.message}`;
      const settled = (promise) => promise.then(() => 'resolved', said);
      const started = Date.now();
      const outcomes = [
        await settled(fetchTables(silent, 'token', { timeout: 500 })),
        await settled(fetchImport(silent, 'token', 'abc', { timeout: 500 })),
        await settled(upload(rows, { url: silent, token: 'token', fileName: 'rows.jsonl', table: 'rows', timeout: 500 })),
        await settled(fetchTables(halting, 'token', { timeout: 500 })),
        await settled(fetchTables(silent, 'token', { timeout: 0 })),
      ];
      return { outcomes, elapsed: Date.now() - started };
    }, { silent: silent.url, halting: halting.url });
    const late = (url) => `UploadError:NetworkError:true: ${url} did not answer within 0.5 s (the option timeout sets how long a request may take)`;
    assert.deepEqual(outcomes.outcomes.slice(0, 4), [late(silent.url), late(silent.url), late(silent.url), late(halting.url)]);
    assert.match(outcomes.outcomes[4], /^SnappackError:InvalidOptions:undefined: option "timeout" must be a number of milliseconds/);
    assert.ok(outcomes.elapsed < 10_000, `${outcomes.elapsed} ms`);
  } finally {
    silent.close();
    halting.close();
  }
});

test('an upload whose frames request gets no answer ever: the request times out, is retried, and the import lands whole', { timeout: 120_000 }, async () => {
  const path = join(dir, 'stalled-frames.zip');
  const summary = gen(path, { seed: 5, tables: 2, totalDocuments: 1500 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const snappack = await startSnappackServe(['--allow-origin', origin]);
  // The first frames request (`POST /api/imports` alone creates the import).
  const proxy = await stallingProxy(snappack.url, 'POST /api/imports/');
  try {
    await pick(path);
    const { outcome, retries } = await page.evaluate(async ({ url, token }) => {
      const { upload } = await import('/pkg/browser.js');
      const file = document.querySelector('#file').files[0];
      const retries = [];
      const onProgress = (p) => p.state === 'retrying' && retries.push(p.retryInMs);
      const outcome = await upload(file, { url, token, frameSize: 4096, framesPerRequest: 1, timeout: 1000, onProgress })
        .then((r) => r.state, (e) => `${e.code}: ${e.message}`);
      return { outcome, retries };
    }, { url: proxy.url, token: snappack.token });
    assert.equal(outcome, 'finished');
    assert.equal(proxy.stalled.length, 1);
    assert.ok(retries.length >= 1, 'the stalled request was retried');
    const headers = { Authorization: `Bearer ${snappack.token}` };
    const { tables } = await (await fetch(`${snappack.url}/api/tables`, { headers })).json();
    for (const table of summary.tables) {
      assert.equal(tables.find((t) => t.name === table.name)?.documents, table.documents, table.name);
    }
  } finally {
    proxy.close();
    snappack.stop();
  }
});

test('an answer whose connection is cut within its head (Chromium gives it without a body) is a network error: retried, and the import lands whole', { timeout: 120_000 }, async () => {
  const path = join(dir, 'cut-head.zip');
  const summary = gen(path, { seed: 6, tables: 2, totalDocuments: 1500 });
  const origin = `http://127.0.0.1:${server.address().port}`;
  const snappack = await startSnappackServe(['--allow-origin', origin]);
  const cutListing = await stallingProxy(snappack.url, 'GET /api/tables', true);
  const cutFrames = await stallingProxy(snappack.url, 'POST /api/imports/', true);
  try {
    await pick(path);
    const { listing, outcome } = await page.evaluate(async ({ cutListing, cutFrames, token }) => {
      const { fetchTables, upload } = await import('/pkg/browser.js');
      const file = document.querySelector('#file').files[0];
      const listing = await fetchTables(cutListing, token).then(() => 'resolved', (e) => `${e.code}:${e.retryable}: ${e.message}`);
      const outcome = await upload(file, { url: cutFrames, token, frameSize: 4096, framesPerRequest: 1 })
        .then((r) => r.state, (e) => `${e.code}: ${e.message}`);
      return { listing, outcome };
    }, { cutListing: cutListing.url, cutFrames: cutFrames.url, token: snappack.token });
    assert.equal(listing, `NetworkError:true: cannot reach ${cutListing.url}: the answer (HTTP 200) ended before its body: the connection was cut`);
    assert.equal(outcome, 'finished');
    assert.equal(cutFrames.stalled.length, 1);
    const headers = { Authorization: `Bearer ${snappack.token}` };
    const { tables } = await (await fetch(`${snappack.url}/api/tables`, { headers })).json();
    for (const table of summary.tables) {
      assert.equal(tables.find((t) => t.name === table.name)?.documents, table.documents, table.name);
    }
  } finally {
    cutListing.close();
    cutFrames.close();
    snappack.stop();
  }
});

test('preload() under a dev server that rewrites the workers\' imports to root paths: calls start their workers from memory', async () => {
  // As Vite's dev server serves a package: `from './common.js'` becomes
  // `from "/pkg/common.js?v=…"`, which a `blob:` module cannot resolve by itself.
  const devPage = await browser.newPage();
  devPage.on('pageerror', (error) => console.error('page error:', error));
  // Every module of the package, those the rewritten imports ask for with `?v=dev` too.
  await devPage.route((url) => url.pathname.startsWith('/pkg/') && url.pathname.endsWith('.js'), async (route) => {
    const response = await route.fetch();
    const path = new URL(route.request().url()).pathname;
    const dir = path.slice(0, path.lastIndexOf('/') + 1);
    const body = (await response.text()).replace(/(\bfrom\s*)(['"])(\.{1,2}\/[^'"]+)\2/g, (_, from, _quote, specifier) =>
      `${from}"${new URL(specifier, `http://host${dir}`).pathname}?v=dev"`);
    await route.fulfill({ response, body });
  });
  try {
    await devPage.goto(`http://127.0.0.1:${server.address().port}/`);
    const preloaded = await devPage.evaluate(async () => {
      const { preload } = await import('/pkg/browser.js');
      return preload().then(() => 'preloaded', (e) => `${e.code}: ${e.message}`);
    });
    assert.equal(preloaded, 'preloaded');
    // Nothing more of the package can be fetched: the workers run what preload kept.
    await devPage.route('**/pkg/**', (route) => route.abort());
    const answers = await devPage.evaluate(async () => {
      const { validate, pack } = await import('/pkg/browser.js');
      const rows = new TextEncoder().encode('{"a":1}\n{"a":2}\n');
      const answerOf = (promise) => promise.then((v) => v, (e) => `${e.code}: ${e.message}`);
      const report = await answerOf(validate(rows, { fileName: 'rows.jsonl', table: 'rows' }));
      let packed = 0;
      for await (const chunk of pack(rows, { fileName: 'rows.jsonl', table: 'rows', target: { tables: [] } })) packed += chunk.byteLength;
      return { documents: report.documents ?? report, packed };
    });
    assert.equal(answers.documents, 2);
    assert.ok(answers.packed > 0, 'packed from memory');
  } finally {
    await devPage.close();
  }
});

test('preload() under a Content-Security-Policy without worker-src blob: rejects naming the directive, and calls still work', async () => {
  const strictPage = await browser.newPage();
  strictPage.on('pageerror', (error) => console.error('page error:', error));
  try {
    await strictPage.goto(`http://127.0.0.1:${server.address().port}/strict-csp`);
    const answers = await strictPage.evaluate(async () => {
      const { preload, validate, pack } = await import('/pkg/browser.js');
      const answerOf = (promise) => promise.then((v) => v ?? 'resolved', (e) => `${e.name}:${e.code}:${e.message}`);
      const rows = new TextEncoder().encode('{"a":1}\n{"a":2}\n');
      const preloaded = await answerOf(preload());
      // The workers then start from the package's files, which the policy allows.
      const report = await answerOf(validate(rows, { fileName: 'rows.jsonl', table: 'rows' }));
      let packed = 0;
      for await (const chunk of pack(rows, { fileName: 'rows.jsonl', table: 'rows', target: { tables: [] } })) packed += chunk.byteLength;
      return { preloaded, documents: report.documents ?? report, packed };
    });
    assert.match(answers.preloaded, /^SnappackError:WorkerFailed:cannot start snappack's (validate|pack) worker from memory: the page's Content-Security-Policy does not allow workers from blob: URLs: add blob: to its worker-src directive/);
    assert.equal(answers.documents, 2);
    assert.ok(answers.packed > 0);
  } finally {
    await strictPage.close();
  }
});

test('bundled where import.meta.url is undefined (esbuild\'s IIFE): the page loads, and calls reject with Unsupported saying how to bundle', async () => {
  // esbuild's default format replaces `import.meta` with `{}`.
  const iifePage = await browser.newPage();
  await iifePage.route('**/pkg/**/*.js', async (route) => {
    const response = await route.fetch();
    await route.fulfill({ response, body: (await response.text()).replaceAll('import.meta.url', '({}).url') });
  });
  try {
    await iifePage.goto(`http://127.0.0.1:${server.address().port}/`);
    const answers = await iifePage.evaluate(async () => {
      const { preload, prepareUpload, validate } = await import('/pkg/browser.js');
      const answerOf = (promise) => promise.then(() => 'resolved', (e) => `${e.name}:${e.code}:${e.message}`);
      return [
        await answerOf(validate(new Uint8Array(4), { fileName: 'x.zip' })),
        await answerOf(preload()),
        await answerOf(prepareUpload(new Uint8Array(4), { fileName: 'x.zip' })),
      ];
    });
    for (const answer of answers) {
      assert.match(answer, /^SnappackError:Unsupported:snappack cannot find its workers and WebAssembly \(.+\): it must be bundled as an ES module, .*--format=esm/);
    }
  } finally {
    await iifePage.close();
  }
});

test('a page served where the .wasm should be: calls reject with WorkerFailed naming the URL and what was sent', async () => {
  // As a dev server with a fallback page answers a path it does not have.
  const fallbackPage = await browser.newPage();
  await fallbackPage.route('**/pkg/web/snappack_bg.wasm', (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>app</title>' }));
  try {
    await fallbackPage.goto(`http://127.0.0.1:${server.address().port}/`);
    const answer = await fallbackPage.evaluate(async () => {
      const { validate } = await import('/pkg/browser.js');
      return validate(new Uint8Array(4), { fileName: 'x.zip' }).then(() => 'resolved', (e) => `${e.name}:${e.code}:${e.message}`);
    });
    const url = `http://127.0.0.1:${server.address().port}/pkg/web/snappack_bg.wasm`;
    assert.ok(
      answer.startsWith(`SnappackError:WorkerFailed:cannot load snappack's WebAssembly: ${url} is not snappack's WebAssembly (the server sent text/html): `),
      answer,
    );
  } finally {
    await fallbackPage.close();
  }
});
