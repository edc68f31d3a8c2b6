#!/usr/bin/env node
// `npm run bench`: every way of checking a snapshot, side by side, on the
// same generated archive, in one run; writes docs/BENCHMARKS.md.
//
// 1. native `snappack validate` (one thread, and `--threads 2`: two walks of two threads on the two cores)
// 2. the npm package's WebAssembly build in Node
// 3. the same in headless Chromium, in a Web Worker, on a File (with memory)
// 4. a plain-JavaScript peer (fflate, JSON.parse, a Set): bench/js-peer.mjs
// 5. `snappack pack`: throughput and packed size against the ZIP
// 6. `snappack upload` into `snappack serve` on loopback, SQLite and PostgreSQL
// and the ceiling: raw inflate of the same entries, natively (benches/inflate.rs)
// and in WebAssembly (examples/wasm_inflate.rs, bench/wasm-inflate.mjs), by
// zlib-rs (what snappack uses) and by miniz_oxide for comparison.
//
// Every figure is the median of several repetitions, with the spread (min to
// max). Throughput is MB/s (10^6 bytes) of uncompressed document lines. The
// machine is shared, so CPU time (user + system of the process doing the
// work) is measured besides wall time: single-threaded rates are computed from
// CPU time, the two-thread rate from wall time.
//
// Environment: BENCH_REPS (default 5), BENCH_SLOW_REPS (the JS peer, pack and
// ingest; default 3), BENCH_MB (uncompressed size of the
// snapshot, default 240), BENCH_ONLY / BENCH_SKIP (comma-separated parts:
// native, inflate, node, chromium, js, memory, pack, sqlite, postgres),
// BENCH_UPLOAD_LEVEL (deflate level of uploaded frames, default 0),
// BENCH_NO_BUILD=1 (use the builds as they are), BENCH_OUT (where to write
// the Markdown; default docs/BENCHMARKS.md).

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = join(ROOT, 'target', 'bench');
const SNAPPACK = join(ROOT, 'target', 'release', 'snappack');
const REPS = Number(process.env.BENCH_REPS ?? 5);
// The slow parts (the JS peer, pack, server ingest) repeat fewer times.
const SLOW_REPS = Number(process.env.BENCH_SLOW_REPS ?? Math.min(REPS, 3));
const TARGET_MB = Number(process.env.BENCH_MB ?? 240);
// Frames of the ingest runs are stored (level 0), as for a fast link: on
// loopback compressing only costs time, and the client shares this machine's
// two cores with the server whose ingest is measured.
const UPLOAD_LEVEL = process.env.BENCH_UPLOAD_LEVEL ?? '0';
const ONLY = process.env.BENCH_ONLY?.split(',');
// Workers of the package's shared validation runs: one per core here.
const SHARED_WORKERS = 2;
const SKIP = process.env.BENCH_SKIP?.split(',') ?? [];
const OUT = process.env.BENCH_OUT ?? join(ROOT, 'docs', 'BENCHMARKS.md');
const wanted = (part) => (!ONLY || ONLY.includes(part)) && !SKIP.includes(part);

const log = (...args) => console.error('bench:', ...args);

function run(command, args, options = {}) {
  log(`> ${command} ${args.join(' ')}`);
  return execFileSync(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], ...options });
}

// ---------------------------------------------------------------- statistics

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Median and spread of `runs` (seconds), as rates of `amount` per second. */
function rates(amount, seconds) {
  const values = seconds.map((s) => amount / s);
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), n: values.length };
}

// ------------------------------------------------------------------ snapshot

/** The generator's spec: several tables, two child components, stored files. */
function snapshotSpec(megabytes) {
  // About 440 bytes a document with the default shape (measured).
  const documents = Math.round((megabytes * 1e6) / 440);
  return {
    seed: 7,
    tables: 4,
    totalDocuments: documents,
    components: ['billing', 'billing/audit'],
    storageFiles: 24,
    storageMinBytes: 1000,
    storageMaxBytes: 200000,
    compressionLevel: 6,
  };
}

function generate(megabytes = TARGET_MB) {
  mkdirSync(WORK, { recursive: true });
  const spec = snapshotSpec(megabytes);
  const zip = join(WORK, `snapshot-${megabytes}mb.zip`);
  const specPath = `${zip}.spec.json`;
  const specText = JSON.stringify(spec, null, 2);
  if (!existsSync(zip) || !existsSync(specPath) || readFileSync(specPath, 'utf8') !== specText) {
    writeFileSync(specPath, specText);
    run(SNAPPACK, ['gen', zip, '--spec', specPath]);
  }
  return zip;
}

// --------------------------------------------------------------- processes

/**
 * Runs a command and measures it: wall time and peak RSS from GNU time, CPU
 * time (user + system) from bash's `times`, which reads getrusage to the
 * millisecond where GNU time rounds to 10 ms (almost 2% of a 0.6 s run).
 */
function timed(command, args, options = {}) {
  const stats = join(WORK, 'time.txt');
  const cpuStats = join(WORK, 'cpu.txt');
  const script = 'stats=$0 cpu=$1; shift; /usr/bin/time -o "$stats" -f "%e %M" "$@"; status=$?; times > "$cpu"; exit $status';
  const result = spawnSync('bash', ['-c', script, stats, cpuStats, command, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    ...options,
  });
  if (result.status !== 0 && result.status !== 1) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  }
  const [wall, rssKb] = readFileSync(stats, 'utf8').trim().split('\n').at(-1).split(' ').map(Number);
  // The second line of `times`: the children's user and system time, as 0m0.608s.
  const seconds = (text) => {
    const [, minutes, secs] = text.match(/^(\d+)m([\d.]+)s$/);
    return Number(minutes) * 60 + Number(secs);
  };
  const [user, sys] = readFileSync(cpuStats, 'utf8').trim().split('\n')[1].split(' ').map(seconds);
  return { wall, cpu: user + sys, rss: rssKb * 1024, stdout: result.stdout };
}

function nativeValidate(zip, threads) {
  const runs = [];
  let report;
  for (let r = 0; r < REPS; r++) {
    const t = timed(SNAPPACK, ['validate', '--json', '--quiet', '--threads', String(threads), zip]);
    report = JSON.parse(t.stdout);
    runs.push(t);
  }
  return { report, runs };
}

/**
 * Two single-threaded validations started together: what the two cores give
 * at that moment, the bound for any two-thread figure measured beside it.
 */
async function nativeSideBySide(zip) {
  const once = () =>
    new Promise((resolve, reject) => {
      const child = spawn(SNAPPACK, ['validate', '--quiet', '--threads', '1', zip], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`validate exited with ${code}`))));
    });
  const runs = [];
  for (let r = 0; r < REPS; r++) {
    const start = process.hrtime.bigint();
    await Promise.all([once(), once()]);
    // Two archives' worth of lines in this wall time.
    runs.push({ wall: Number(process.hrtime.bigint() - start) / 2e9 });
  }
  return { runs };
}

// Its own target directory: built beside the package's dev-dependencies, the
// library's dependencies get other features, and in one directory each build
// would rebuild the library for the other.
const WASM_INFLATE_TARGET = join(ROOT, 'target', 'wasm-inflate');
const WASM_INFLATE = join(WASM_INFLATE_TARGET, 'wasm32-unknown-unknown', 'wasm-release', 'examples', 'wasm_inflate.wasm');

function inflateCeiling(zip) {
  const out = run('cargo', ['bench', '--quiet', '--bench', 'inflate', '--', zip, String(REPS)]);
  const native = JSON.parse(out.toString().trim().split('\n').at(-1));
  const seconds = (runs) => runs.map((r) => ({ wall: r.wallSeconds, cpu: r.cpuSeconds }));
  const wasm = JSON.parse(run('node', [join(ROOT, 'bench', 'wasm-inflate.mjs'), WASM_INFLATE, zip, String(REPS)]).toString());
  return {
    runs: seconds(native.runs),
    minizOxide: seconds(native.minizOxideRuns),
    wasm: fromMilliseconds(wasm.zlibRs),
    wasmMinizOxide: fromMilliseconds(wasm.minizOxide),
  };
}

/** Runs as the Node scripts report them (bench/timing.mjs), in seconds. */
function fromMilliseconds(runs) {
  return runs.map((r) => ({ wall: r.wallMs / 1000, cpu: r.cpuMs / 1000 }));
}

function nodeScript(script, zip, reps = REPS, ...args) {
  const t = timed('node', [join(ROOT, 'bench', script), zip, String(reps), ...args]);
  const result = JSON.parse(t.stdout.trim().split('\n').at(-1));
  return { ...result, runs: fromMilliseconds(result.runs) };
}

function pack(zip) {
  const out = join(WORK, 'snapshot.snpk');
  const runs = [];
  for (let r = 0; r < SLOW_REPS; r++) {
    rmSync(out, { force: true });
    runs.push(timed(SNAPPACK, ['pack', '--quiet', '--out', out, zip]));
  }
  return { runs, packedBytes: statSync(out).size, zipBytes: statSync(zip).size };
}

// ------------------------------------------------------------------ servers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForPort(url, server) {
  for (let i = 0; i < 600; i++) {
    if (server.exitCode !== null) throw new Error(`snappack serve exited (${server.exitCode})`);
    try {
      await fetch(url);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`no server at ${url}`);
}

/** `snappack upload` into a fresh `snappack serve` per repetition. */
async function ingest(zip, databaseFor) {
  const token = 'bench-token';
  const runs = [];
  for (let r = 0; r < SLOW_REPS; r++) {
    const dataDir = join(WORK, `serve-${r}`);
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(dataDir, { recursive: true });
    const port = 18400 + r;
    const database = databaseFor(r, dataDir);
    const server = spawn(
      SNAPPACK,
      ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--no-www', '--token', token, '--database', database],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    try {
      await waitForPort(`http://127.0.0.1:${port}/`, server);
      const t = timed(SNAPPACK, ['upload', '--quiet', '--level', UPLOAD_LEVEL, '--url', `http://127.0.0.1:${port}`, '--token', token, zip]);
      if (!/\S/.test(t.stdout) && t.wall === 0) throw new Error('upload printed nothing');
      runs.push(t);
    } finally {
      server.kill('SIGINT');
      await new Promise((resolve) => (server.exitCode !== null ? resolve() : server.once('exit', resolve)));
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  return { runs };
}

function postgres() {
  const script = join(ROOT, 'scripts', 'pg-test-cluster.sh');
  const wasRunning = existsSync(join(ROOT, 'target', 'pg-test-cluster', 'data', 'postmaster.pid'));
  const started = run('bash', [script, 'start']).toString();
  const url = started.match(/SNAPPACK_TEST_POSTGRES_URL=(\S+)/)[1];
  const bin = readdirSync('/usr/lib/postgresql').sort().at(-1);
  const psql = `/usr/lib/postgresql/${bin}/bin/psql`;
  return {
    url,
    databaseFor: (r) => {
      const name = `bench_${r}`;
      execFileSync(psql, [url, '-q', '-c', `DROP DATABASE IF EXISTS ${name}`, '-c', `CREATE DATABASE ${name}`]);
      return url.replace(/\/[^/]*$/, `/${name}`);
    },
    version: `PostgreSQL ${execFileSync(psql, ['--version']).toString().match(/\d+\.\d+/)?.[0]}`,
    /** Stops the cluster, unless it was running before the bench. */
    stop: () => wasRunning || run('bash', [script, 'stop']),
  };
}

// ------------------------------------------------------------------ Chromium

/** Processes descending from this one whose command line has `needle`. */
function descendants(needle) {
  const parents = new Map();
  const lines = new Map();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parents.set(Number(pid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      lines.set(Number(pid), readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    } catch {
      // Gone meanwhile.
    }
  }
  const isOurs = (pid) => {
    for (let p = pid, i = 0; p > 1 && i < 20; p = parents.get(p), i++) if (p === process.pid) return true;
    return false;
  };
  return [...lines].filter(([pid, line]) => line.includes(needle) && isOurs(pid)).map(([pid]) => pid);
}

function procCpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function peakRss(pid, field = 'VmHWM') {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  // A process that is exiting has no memory lines any more.
  return Number(status.match(new RegExp(`${field}:\\s+(\\d+) kB`))?.[1] ?? 0) * 1024;
}

async function chromium(zip, reps = REPS, { fileOnly = false } = {}) {
  const { chromium: playwright } = await import('playwright-core');
  const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
  const server = createServer((request, response) => {
    const url = new URL(request.url, 'http://localhost');
    const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
    if (url.pathname === '/') {
      response.writeHead(200, { ...headers, 'content-type': types['.html'] });
      response.end('<!doctype html><meta charset="utf-8"><title>bench</title><input type="file" id="file">');
      return;
    }
    const path = normalize(join(ROOT, url.pathname));
    const allowed = path.startsWith(join(ROOT, 'pkg')) || path === join(ROOT, 'bench', 'browser-worker.js');
    if (!allowed || !existsSync(path)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { ...headers, 'content-type': types[extname(path)] ?? 'application/octet-stream' });
    createReadStream(path).pipe(response);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const browser = await playwright.launch({
    executablePath: '/usr/bin/chromium',
    // Measures memory at once instead of at the next collection.
    args: ['--no-sandbox', '--enable-blink-features=ForceEagerMeasureMemory'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.setInputFiles('#file', zip);
    const version = browser.version();
    await page.evaluate(async () => {
      self.benchModule = await WebAssembly.compileStreaming(fetch('/pkg/web/snappack_bg.wasm'));
    });
    const renderers = descendants('--type=renderer');
    // One run of `work` in the page: its renderer CPU time, peak RSS, and
    // peak memory (the peak RSS less the file pages mapped before the run).
    const inRenderer = async (work, arg) => {
      // Peak RSS since here: writing 5 to clear_refs resets VmHWM.
      for (const pid of renderers) writeFileSync(`/proc/${pid}/clear_refs`, '5');
      const rendererStart = Math.max(...renderers.map((pid) => peakRss(pid, 'VmRSS')));
      const filesBefore = renderers.map((pid) => peakRss(pid, 'RssFile'));
      const cpuBefore = renderers.map(procCpuSeconds);
      const result = await page.evaluate(work, arg);
      const cpu = renderers.map(procCpuSeconds).reduce((s, c, i) => s + c - cpuBefore[i], 0);
      const rendererPeak = Math.max(...renderers.map((pid) => peakRss(pid)));
      const rendererMemory = Math.max(...renderers.map((pid, i) => peakRss(pid) - filesBefore[i]));
      const rendererFiles = Math.max(...filesBefore);
      return { wall: result.wallMs / 1000, cpu, rendererPeak, rendererMemory, rendererFiles, rendererStart, ...result };
    };
    const runs = [];
    for (let r = 0; r < reps; r++) {
      const run = await inRenderer(
        () =>
          new Promise((resolve, reject) => {
            const worker = new Worker('/bench/browser-worker.js', { type: 'module' });
            self.benchWorker = worker;
            worker.onmessage = ({ data }) => resolve(data);
            worker.onerror = (event) => reject(new Error(event.message));
            worker.postMessage({ module: self.benchModule, file: document.querySelector('#file').files[0] });
          }),
      );
      // The worker's JavaScript heap (its WebAssembly memory included), now
      // that it is idle, outside the CPU time: a busy worker is not measured
      // until it is done, and workers have no performance.memory.
      run.workerHeapBytes = await page.evaluate(async () => {
        const memory = await performance.measureUserAgentSpecificMemory();
        self.benchWorker.terminate();
        return memory.breakdown
          .filter((b) => b.attribution.some((a) => a.scope === 'DedicatedWorkerGlobalScope'))
          .reduce((sum, b) => sum + b.bytes, 0);
      });
      runs.push(run);
    }
    // The same validation on the File's bytes, read into the worker before
    // the clock starts: the difference is what reading the File costs.
    const inMemory = [];
    for (let r = 0; r < (fileOnly ? 0 : reps); r++) {
      await page.evaluate(
        () =>
          new Promise((resolve, reject) => {
            const worker = new Worker('/bench/browser-worker.js', { type: 'module' });
            self.benchWorker = worker;
            worker.onmessage = () => resolve();
            worker.onerror = (event) => reject(new Error(event.message));
            worker.postMessage({ module: self.benchModule, file: document.querySelector('#file').files[0], inMemory: true });
          }),
      );
      inMemory.push(
        await inRenderer(
          () =>
            new Promise((resolve) => {
              self.benchWorker.onmessage = ({ data }) => {
                self.benchWorker.terminate();
                resolve(data);
              };
              self.benchWorker.postMessage({ go: true });
            }),
        ),
      );
    }
    // The package's own `validate`, its workers sharing the archive.
    const shared = [];
    for (let r = 0; r < reps; r++) {
      const work = async (workers) => {
        const { validate } = await import('/pkg/browser.js');
        const start = performance.now();
        const report = await validate(document.querySelector('#file').files[0], { workers });
        return { wallMs: performance.now() - start, documents: report.documents, valid: report.valid };
      };
      shared.push(await inRenderer(work, SHARED_WORKERS));
    }
    return { runs, inMemory, shared, version };
  } finally {
    await browser.close();
    server.close();
  }
}

// ------------------------------------------------------------------- report

const mb = (bytes) => bytes / 1e6;
const mib = (bytes) => bytes / 2 ** 20;
const fmt = (x, digits = 0) => x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rate = (r, digits = 0) => `${fmt(r.median, digits)} (${fmt(r.min, digits)}–${fmt(r.max, digits)})`;

function machine() {
  const cpu = cpus();
  const version = (command, args) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8' }).trim().split('\n')[0];
    } catch {
      return 'unknown';
    }
  };
  return {
    cpu: `${cpu[0]?.model ?? 'unknown'}, ${cpu.length} cores`,
    memory: `${fmt(totalmem() / 2 ** 30, 1)} GiB`,
    kernel: version('uname', ['-r']),
    rustc: version('rustc', ['--version']),
    node: process.version,
    snappack: version(SNAPPACK, ['--version']),
    // Dirty means changed sources; this file, which the run rewrites, does not count.
    commit:
      version('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) +
      (version('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no', '--', '.', ':!docs/BENCHMARKS.md']) === ''
        ? ''
        : ' with uncommitted changes'),
    load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}

async function main() {
  if (!process.env.BENCH_NO_BUILD) {
    run('cargo', ['build', '--release', '--bin', 'snappack']);
    if (wanted('inflate')) {
      run('cargo', ['bench', '--no-run', '--bench', 'inflate']);
      run('cargo', ['build', '--example', 'wasm_inflate', '--target', 'wasm32-unknown-unknown', '--profile', 'wasm-release', '--target-dir', WASM_INFLATE_TARGET]);
    }
    if (wanted('node') || wanted('chromium')) run('npm', ['run', '--silent', 'build'], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  const zip = generate();
  const results = {};
  const step = async (part, f) => {
    if (!wanted(part)) return;
    log(`measuring ${part}`);
    results[part] = await f();
  };
  await step('native', async () => ({
    one: nativeValidate(zip, 1),
    two: nativeValidate(zip, 2),
    pair: await nativeSideBySide(zip),
  }));
  const report = results.native?.one.report ?? JSON.parse(timed(SNAPPACK, ['validate', '--json', '--quiet', zip]).stdout);
  const documentBytes = report.tables.reduce((sum, t) => sum + t.bytes, 0);
  const documents = report.documents;
  await step('inflate', () => inflateCeiling(zip));
  // The speed of this shared machine drifts by tens of percent over
  // minutes, so WebAssembly is compared with native runs made just before
  // and after it, not with native runs minutes away.
  const besideNative = async (measure) => {
    if (!wanted('native')) return measure();
    const before = nativeValidate(zip, 1).runs;
    const result = await measure();
    const after = nativeValidate(zip, 1).runs;
    results.native.one.runs.push(...before, ...after);
    return { ...result, nativeBeside: [...before, ...after] };
  };
  await step('node', async () => ({
    ...(await besideNative(() => nodeScript('node-wasm.mjs', zip, REPS, '1'))),
    shared: nodeScript('node-wasm.mjs', zip, REPS, String(SHARED_WORKERS)),
  }));
  await step('chromium', () => besideNative(() => chromium(zip)));
  await step('js', () => nodeScript('js-peer.mjs', zip, SLOW_REPS));
  // Memory on an archive of about 1 GB (3.4 GB of documents), once.
  await step('memory', async () => {
    const big = generate(3400);
    return { ...(await chromium(big, 1, { fileOnly: true })), zipBytes: statSync(big).size };
  });
  await step('pack', () => pack(zip));
  await step('sqlite', () => ingest(zip, (r, dir) => join(dir, 'bench.db')));
  if (wanted('postgres')) {
    const pg = postgres();
    results.postgresVersion = pg.version;
    try {
      await step('postgres', () => ingest(zip, pg.databaseFor));
    } finally {
      pg.stop();
    }
  }
  // Native validation and raw inflate again, last: after long builds this
  // shared machine runs slower for minutes, which the first round may meet.
  // Their rows are over both rounds.
  if (results.native) results.native.one.runs.push(...nativeValidate(zip, 1).runs);
  if (results.inflate) {
    const again = inflateCeiling(zip);
    for (const key of Object.keys(again)) results.inflate[key].push(...again[key]);
  }
  writeFileSync(join(WORK, 'results.json'), JSON.stringify(results, null, 2));
  const doc = render({ zip, report, documents, documentBytes, results, loadBefore });
  writeFileSync(OUT, doc);
  console.log(doc);
}

/** What two cores could reach here: the whole work split evenly, from CPU times. */
function pipelineNote(native, inflate, documentBytes) {
  if (!native || !inflate) return '';
  const validateCpu = median(native.one.runs.map((r) => r.cpu));
  const inflateCpu = median(inflate.runs.map((r) => r.cpu));
  const scanCpu = validateCpu - inflateCpu;
  const bound = mb(documentBytes) / (validateCpu / 2);
  return `With \`--threads 2\`, two walks take a run of the tables each; in each, one thread inflates and
reports while the other prechecks and checks chunks of lines (the first prechecks chunks itself
whenever the second is behind), and while one walk's checking thread waits for its inflate,
the other walk's threads run, so on two free cores the work splits about evenly. From the CPU
times above, inflating takes ${fmt(inflateCpu, 2)} s and everything else ${fmt(scanCpu, 2)} s, a bound of
${fmt(bound)} MB/s for two cores (an estimate, not a measurement: the wall-time row above is what
the machine gave).`;
}

/**
 * How much the machine moved during this run, from the steadiest workload:
 * raw inflate, the same work each repetition.
 */
function steadiness(inflate) {
  if (!inflate) return '';
  const cpu = inflate.runs.map((r) => r.cpu);
  const spread = (Math.max(...cpu) - Math.min(...cpu)) / median(cpu);
  return ` In this run raw inflate's CPU time varied by ${fmt(100 * spread, 1)}% across its repetitions${
    spread > 0.05 ? ': the machine was busy, so the ratios below are less certain than usual' : ''
  }.`;
}

/** Why zlib-rs, and the ceiling WebAssembly's inflate sets, from the inflate rows. */
function inflaterNote(figures) {
  const native = figures['raw inflate (zlib-rs), the ceiling'];
  const nativeMiniz = figures['raw inflate (miniz_oxide), for comparison'];
  const wasm = figures['raw inflate in wasm, Node 20 (zlib-rs)'];
  const wasmMiniz = figures['raw inflate in wasm, Node 20 (miniz_oxide)'];
  if (!native || !nativeMiniz || !wasm || !wasmMiniz) return '';
  const validate = figures['native `snappack validate`, 1 thread'];
  // Seconds per MB: native validation with its inflate swapped for wasm's.
  const bound = validate && 1 / validate / (1 / validate - 1 / native + 1 / wasm);
  return `Both pure-Rust inflaters that compile to WebAssembly were measured on the same
entries: zlib-rs inflates ${fmt(native / nativeMiniz, 2)}× as fast as miniz_oxide natively and
${fmt(wasm / wasmMiniz, 2)}× as fast in WebAssembly, so both builds of snappack use zlib-rs. In
WebAssembly zlib-rs alone runs at ${fmt(wasm / native, 2)}× its native speed, before any checking.${
    bound
      ? ` So even if
every check ran as fast in WebAssembly as natively, wasm would reach ${fmt(bound, 2)}× native
(native validation's time with its inflate replaced by wasm's).`
      : ''
  }
`;
}

/** How much of the renderer's resident set was mapped files before the runs. */
function mappedFiles(results) {
  const runs = [...(results.chromium?.runs ?? []), ...(results.memory?.runs ?? [])];
  if (runs.length === 0) return 'not measured in this run';
  const files = runs.map((r) => r.rendererFiles);
  return `${fmt(mib(Math.min(...files)))}–${fmt(mib(Math.max(...files)))} MiB in this run`;
}

function memoryNote(memory) {
  if (!memory) return ' The run that measures it on a 1 GB archive was skipped.';
  const run = memory.runs[0];
  const shared = memory.shared[0];
  return ` On the ${fmt(mb(memory.zipBytes))} MB archive (same spec, ${fmt(run.documents)} documents, one run): renderer peak memory ${fmt(mib(run.rendererMemory))} MiB (peak RSS ${fmt(mib(run.rendererPeak))} MiB), WebAssembly memory ${fmt(mib(run.wasmMemoryBytes))} MiB, ${fmt(run.wall, 1)} s; with the package's \`validate\` and ${SHARED_WORKERS} workers, renderer peak memory ${fmt(mib(shared.rendererMemory))} MiB (peak RSS ${fmt(mib(shared.rendererPeak))} MiB), ${fmt(shared.wall, 1)} s.`;
}

/** What reading a File costs in Chromium, against the same bytes in memory. */
function fileReadNote(figures, browser, versusNative) {
  const name = 'wasm in Chromium, Worker, the same bytes already in memory';
  const file = browser && figures[`wasm in Chromium ${browser.version}, Worker, File`];
  const bytes = figures[name];
  if (!file || !bytes) return '';
  const native = versusNative(name, browser);
  return `
In Chromium a worker reads a File only through \`FileReaderSync\`, on its own thread, in
8 MiB slices: on the same bytes already in the worker's memory, validation runs at
${fmt(bytes)} MB/s instead of ${fmt(file)}, so reading the File takes ${fmt(100 * (1 - file / bytes))}% of the
renderer's CPU time.${
    native ? ` Without it, WebAssembly in Chromium runs at ${fmt(native, 2)}× native with 1 thread (the native runs made beside Chromium's).` : ''
  } Natively the same reads are the kernel's page-cache copies, about 2% of the time.
`;
}

/** What the workers sharing one validation give, against native. */
function sharedNote(figures) {
  const node = figures[`wasm in Node 20 (\`validateFile\`, ${SHARED_WORKERS} workers)`];
  const chrome = figures[`wasm in Chromium, the package's \`validate\`, ${SHARED_WORKERS} workers`];
  const one = figures['native `snappack validate`, 1 thread'];
  const two = figures['native `snappack validate`, 2 cores'];
  if (!node || !one || !two) return '';
  const versus = (x) => `${fmt(x / one, 2)}× native with 1 thread and ${fmt(x / two, 2)}× native on 2 cores`;
  return `WebAssembly has one thread per instance, so the package uses more cores by running
several workers on one archive, each checking some of its tables, and merging their findings
into the report one worker makes (src/validate/shard.rs). With ${SHARED_WORKERS} workers on the 2 cores,
Node validates at ${fmt(node)} MB/s, ${versus(node)}${
    chrome ? `; Chromium at ${fmt(chrome)} MB/s, ${versus(chrome)}` : ''
  }. These are wall times on both cores; the targets below compare single-threaded
WebAssembly with single-threaded native, like with like.
`;
}

function render({ zip, report, documents, documentBytes, results, loadBefore }) {
  const bytesRate = (runs, key) => rates(mb(documentBytes), runs.map((r) => r[key]));
  const docsRate = (runs, key) => rates(documents, runs.map((r) => r[key]));
  const rows = [];
  const figures = {};
  const add = (name, runs, key, note = '') => {
    const r = bytesRate(runs, key);
    figures[name] = r.median;
    rows.push(`| ${name} | ${rate(r)} | ${rate(docsRate(runs, key))} | ${note} |`);
  };
  const { native, inflate, node, chromium: browser, js, pack: packed, sqlite, postgres: pg } = results;
  if (native) {
    add('native `snappack validate`, 1 thread', native.one.runs, 'cpu', 'CPU time');
    add('native `snappack validate`, 2 cores', native.two.runs, 'wall', 'wall time; `--threads 2`: two walks split the tables, each inflating on one thread and checking on another');
    add(
      'two 1-thread validations side by side, per archive',
      native.pair.runs,
      'wall',
      'wall time of both ÷ 2: what the two cores gave then, the bound for 2 cores',
    );
  }
  if (inflate) {
    add('raw inflate (zlib-rs), the ceiling', inflate.runs, 'cpu', 'CPU time, document entries only');
    add('raw inflate (miniz_oxide), for comparison', inflate.minizOxide, 'cpu', 'CPU time, document entries only');
    add('raw inflate in wasm, Node 20 (zlib-rs)', inflate.wasm, 'cpu', 'CPU time, document entries only');
    add('raw inflate in wasm, Node 20 (miniz_oxide)', inflate.wasmMinizOxide, 'cpu', 'CPU time, document entries only');
  }
  if (node) {
    add('wasm in Node 20 (`validateFile`)', node.runs, 'cpu', `CPU time; peak RSS ${fmt(mib(node.peakRssBytes))} MiB`);
    add(
      `wasm in Node 20 (\`validateFile\`, ${SHARED_WORKERS} workers)`,
      node.shared.runs,
      'wall',
      `wall time (the workers split the tables); peak RSS ${fmt(mib(node.shared.peakRssBytes))} MiB`,
    );
  }
  if (browser) {
    const peak = Math.max(...browser.runs.map((r) => r.rendererPeak));
    const memory = Math.max(...browser.runs.map((r) => r.rendererMemory));
    const wasmMemory = Math.max(...browser.runs.map((r) => r.wasmMemoryBytes));
    const workerHeap = Math.max(...browser.runs.map((r) => r.workerHeapBytes));
    figures.chromiumMemory = memory;
    add(
      `wasm in Chromium ${browser.version}, Worker, File`,
      browser.runs,
      'cpu',
      `renderer CPU time; wasm memory ${fmt(mib(wasmMemory))} MiB, worker JS heap after the run ${fmt(mib(workerHeap), 1)} MiB (wasm memory included), renderer peak memory ${fmt(mib(memory))} MiB (peak RSS ${fmt(mib(peak))} MiB)`,
    );
    if (browser.inMemory?.length > 0) {
      add(
        'wasm in Chromium, Worker, the same bytes already in memory',
        browser.inMemory,
        'cpu',
        "renderer CPU time; the File read whole into the worker before the clock starts, to tell the reading's cost from the validation's",
      );
    }
    const sharedPeak = Math.max(...browser.shared.map((r) => r.rendererPeak));
    const sharedMemory = Math.max(...browser.shared.map((r) => r.rendererMemory));
    figures.chromiumSharedMemory = sharedMemory;
    add(
      `wasm in Chromium, the package's \`validate\`, ${SHARED_WORKERS} workers`,
      browser.shared,
      'wall',
      `wall time (the workers split the tables); renderer peak memory ${fmt(mib(sharedMemory))} MiB (peak RSS ${fmt(mib(sharedPeak))} MiB)`,
    );
  }
  if (js) add('plain JavaScript (fflate + JSON.parse + Set), Node 20', js.runs, 'cpu', `CPU time; peak RSS ${fmt(mib(js.peakRssBytes))} MiB`);
  if (packed) {
    figures.packedRatio = packed.packedBytes / packed.zipBytes;
    add('native `snappack pack`, 2 threads', packed.runs, 'wall', `wall time; packed ${fmt(mb(packed.packedBytes), 1)} MB = ${fmt(figures.packedRatio, 3)}× the ZIP`);
  }
  const ingestRow = (name, result, key) => {
    const r = docsRate(result.runs, 'wall');
    figures[key] = r.median;
    rows.push(`| ${name} | ${rate(bytesRate(result.runs, 'wall'))} | ${rate(r)} | wall time, upload start to import done |`);
  };
  if (sqlite) ingestRow(`\`snappack upload --level ${UPLOAD_LEVEL}\` → \`snappack serve\`, SQLite`, sqlite, 'sqlite');
  if (pg) ingestRow(`\`snappack upload --level ${UPLOAD_LEVEL}\` → \`snappack serve\`, PostgreSQL`, pg, 'postgres');

  const ratio = (a, b) => (figures[a] && figures[b] ? figures[a] / figures[b] : undefined);
  // WebAssembly against the native runs made beside it, when there are some.
  const versusNative = (name, result) =>
    result?.nativeBeside?.length > 0 && figures[name]
      ? figures[name] / bytesRate(result.nativeBeside, 'cpu').median
      : ratio(name, 'native `snappack validate`, 1 thread');
  const nativeOne = 'native `snappack validate`, 1 thread';
  const nativeTwo = 'native `snappack validate`, 2 cores';
  const inflateName = 'raw inflate (zlib-rs), the ceiling';
  const nodeName = 'wasm in Node 20 (`validateFile`)';
  const chromeName = browser && `wasm in Chromium ${browser.version}, Worker, File`;
  const jsName = 'plain JavaScript (fflate + JSON.parse + Set), Node 20';
  const targets = [
    ['wasm in Node ÷ plain JS', ratio(nodeName, jsName), 3, '×'],
    ['wasm in Chromium ÷ plain JS', chromeName && ratio(chromeName, jsName), 3, '×'],
    ['wasm in Node ÷ native, 1 thread (native run just before and after)', versusNative(nodeName, node), 0.85, '×'],
    [
      'wasm in Chromium ÷ native, 1 thread (native run just before and after)',
      chromeName && versusNative(chromeName, browser),
      0.85,
      '×',
    ],
    ['native, 1 thread (MB/s)', figures[nativeOne], 400, ''],
    ['native, 2 cores (MB/s)', figures[nativeTwo], 600, ''],
    ['native 1 thread ÷ raw inflate', ratio(nativeOne, inflateName), 0.4, '×'],
    ['native, 2 cores ÷ raw inflate on one core', ratio(nativeTwo, inflateName), 0.4, '×'],
    ['wasm in Node ÷ raw inflate in wasm (its own ceiling)', ratio(nodeName, 'raw inflate in wasm, Node 20 (zlib-rs)'), 0.4, '×'],
    ['Chromium renderer peak memory, this archive (MiB)', figures.chromiumMemory && mib(figures.chromiumMemory), 256, '', true],
    [
      `Chromium renderer peak memory, this archive, ${SHARED_WORKERS} workers (MiB)`,
      figures.chromiumSharedMemory && mib(figures.chromiumSharedMemory),
      256,
      '',
      true,
    ],
    [
      `Chromium renderer peak memory, ${results.memory ? fmt(mb(results.memory.zipBytes)) : '?'} MB archive (MiB)`,
      results.memory && mib(results.memory.runs[0].rendererMemory),
      256,
      '',
      true,
    ],
    [
      `Chromium renderer peak memory, ${results.memory ? fmt(mb(results.memory.zipBytes)) : '?'} MB archive, ${SHARED_WORKERS} workers (MiB)`,
      results.memory && mib(results.memory.shared[0].rendererMemory),
      256,
      '',
      true,
    ],
    ['ingest into SQLite (documents/s)', figures.sqlite, 150000, ''],
    ['ingest into PostgreSQL (documents/s)', figures.postgres, 100000, ''],
  ]
    .filter(([, value]) => value !== undefined)
    .map(([name, value, goal, unit, lower]) => {
      const met = lower ? value < goal : value >= goal;
      // One more digit while the rounded value reads as the goal, so that
      // "0.40 against ≥ 0.40: no" cannot be printed.
      let digits = value < 10 ? 2 : 0;
      while (digits < 4 && fmt(value, digits) === fmt(goal, digits) && value !== goal) digits += 1;
      return `| ${name} | ${fmt(value, digits)}${unit} | ${lower ? '<' : '≥'} ${fmt(goal, goal < 10 ? 2 : 0)}${unit} | ${met ? 'yes' : '**no**'} |`;
    });

  const m = machine();
  const zipBytes = statSync(zip).size;
  const tables = report.tables.length;
  const components = new Set(report.tables.map((t) => t.component)).size;
  return `# Benchmarks

Produced by \`npm run bench\` (bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}; every figure
below comes from one run of it, on one archive. Do not edit by hand: run it again.

## The archive

\`snappack gen\` with the spec in bench/run.mjs (seed 7, deflate level 6): ${fmt(mb(zipBytes), 1)} MB of ZIP
holding ${fmt(mb(documentBytes), 1)} MB of document lines (${fmt(documents)} documents in ${tables} tables,
${components} components) and ${report.storage.files} stored files (${fmt(mb(report.storage.bytes), 1)} MB).

## Machine

| | |
|---|---|
| CPU | ${m.cpu} |
| memory | ${m.memory} |
| kernel | ${m.kernel} |
| Rust | ${m.rustc} |
| Node | ${m.node} |
| Chromium | ${browser?.version ?? 'not measured'} |
| PostgreSQL | ${results.postgresVersion ?? 'not measured'} |
| snappack | ${m.snappack}, commit ${m.commit} |
| load average | ${loadBefore} before, ${m.load} after |

The machine is a 2-core virtual machine shared with other people's builds, and
it has no hardware performance counters. So every figure is the median of
${REPS} repetitions (${SLOW_REPS} for the JS peer, pack and ingest; ${2 * REPS} for raw inflate,
measured first and again last, and ${results.native?.one.runs.length ?? 0} for native one-thread validation,
measured first, just before and after WebAssembly in Node and in Chromium, and last,
because this machine's speed drifts over minutes), with the spread (lowest–highest) beside it, and the
single-threaded rates are computed from the CPU time (user + system) of the
process or thread doing the work, which other load disturbs much less than wall
time. The two-thread rate and the server ingest are wall time and suffer most
from the shared load.${steadiness(results.inflate)} Profiles for the work on speed use \`perf record\` (timer
sampling) and Node's \`--cpu-prof\`.

Native figures are of the build the project's scripts make, for the CPU it runs on
(\`target-cpu=native\`, .cargo/config.toml): with AVX2 known at compile time zlib-rs
inflates about a third faster than a portable x86-64 build, which raises the
inflate ceiling and native validation alike. The WebAssembly build uses simd128.

## Throughput

The plain-JavaScript peer (bench/js-peer.mjs) is the check a frontend team would
write instead: fflate's \`unzipSync\` one entry at a time, \`TextDecoder\`, \`split('\\n')\`,
\`JSON.parse\` per line, the \`_id\` decoded (base32, table number, footer), a \`Set\` of
ids per table, table numbers from \`_tables\` and from first ids, with conflicts. It
checks less than snappack (no field names, nesting, sizes, value types or stored-file
hashes), which only flatters it.

MB/s are 10^6 bytes of uncompressed document lines (${fmt(mb(documentBytes), 1)} MB) per second;
documents/s count the ${fmt(documents)} documents.

| what | MB/s | documents/s | measured by |
|---|---|---|---|
${rows.join('\n')}

${pipelineNote(native, inflate, documentBytes)}

${inflaterNote(figures)}
${sharedNote(figures)}${fileReadNote(figures, browser, versusNative)}
## Against the targets (issue #7)

| ratio | measured | target | met |
|---|---|---|---|
${targets.join('\n')}

Memory in Chromium is the renderer process's peak memory: its peak resident set
(page, workers, WebAssembly memory and FileReaderSync slices together, reset before
each repetition) less the file pages it had mapped before the run. Those are
Chromium's own program and data files (${mappedFiles(results)}), shared with every
Chromium process and present before snappack runs. File pages leave the resident set
only under memory pressure, far off on this 24 GiB machine, so this is an upper bound of
the memory the page and the workers held at any moment. The full peak RSS is given beside it. The worker's JavaScript heap can only be read once it is idle
(\`performance.measureUserAgentSpecificMemory\` waits for a busy worker, and
workers have no \`performance.memory\`), so it is given after the run, with the
WebAssembly memory in it; during the run the peak RSS bounds it.${memoryNote(results.memory)}
`;
}

await main();
