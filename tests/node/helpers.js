// Helpers of the package tests: the native CLI (built once, debug profile),
// scratch files, and key-sorted JSON for comparing Reports.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

let cliPath;

/** The native `snappack` binary, built on first use. */
export function cli() {
  if (cliPath === undefined) {
    execFileSync('cargo', ['build', '--quiet', '--locked', '--bin', 'snappack'], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    cliPath = join(ROOT, 'target', 'debug', 'snappack');
  }
  return cliPath;
}

/** A scratch folder, removed at exit. */
export function scratch() {
  const dir = mkdtempSync(join(tmpdir(), 'snappack-node-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a synthetic snapshot with `snappack gen` and returns its summary. */
export function gen(path, spec) {
  const specPath = `${path}.spec.json`;
  writeFileSync(specPath, JSON.stringify(spec));
  const out = execFileSync(cli(), ['gen', path, '--spec', specPath, '--json'], { encoding: 'utf8' });
  return JSON.parse(out);
}

/**
 * The CLI's `validate --json` output for `path`. `options` are the package's
 * options, turned into the CLI's flags (schema and target through files).
 */
export function nativeReport(path, options = {}) {
  const args = ['validate', path, '--json', '--quiet'];
  const flag = { format: '--format', table: '--table', component: '--component', mode: '--mode', maxErrors: '--max-errors' };
  for (const [name, value] of Object.entries(options)) {
    if (flag[name]) {
      args.push(flag[name], String(value));
    } else if (name === 'schema' || name === 'target') {
      const file = `${path}.${name}.json`;
      writeFileSync(file, JSON.stringify(value));
      args.push(name === 'schema' ? '--schema' : '--target-tables', file);
    } else {
      throw new Error(`no CLI flag for option ${name}`);
    }
  }
  const run = spawnSync(cli(), args, { encoding: 'utf8' });
  // 2 with a report: the options were wrong (a single-table file without a table, say).
  const reported = run.status === 2 && run.stdout.startsWith('{');
  if (run.status !== 0 && run.status !== 1 && !reported) {
    throw new Error(`snappack ${args.join(' ')} exited ${run.status}: ${run.stderr}`);
  }
  return run.stdout.trimEnd();
}

/** JSON text with every object's keys sorted, for comparing Reports. */
export function sortedJson(value) {
  return JSON.stringify(value, (_key, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Ports {@link freePort} handed out in this run. */
const givenPorts = new Set();

/**
 * A free loopback port for a test's server: one of `SNAPPACK_TEST_PORTS`
 * (`first-last`) when it is set, so that tests on a shared machine keep to
 * the ports they were given (one not handed out before in this run first),
 * else any the system picks.
 */
export async function freePort() {
  const range = process.env.SNAPPACK_TEST_PORTS;
  if (!range) return bindable(0);
  const [first, last] = range.split('-').map(Number);
  if (!(Number.isInteger(first) && Number.isInteger(last) && first > 0 && first <= last && last < 65536)) {
    throw new Error(`SNAPPACK_TEST_PORTS must be first-last, not ${range}`);
  }
  const ports = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  for (const port of [...ports.filter((p) => !givenPorts.has(p)), ...ports.filter((p) => givenPorts.has(p))]) {
    if ((await bindable(port).catch(() => null)) !== null) {
      givenPorts.add(port);
      return port;
    }
  }
  throw new Error(`no free port in SNAPPACK_TEST_PORTS=${range}`);
}

/** `port` (0: one the system picks) once it could be bound on 127.0.0.1 and released. */
function bindable(port) {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, '127.0.0.1', () => {
      const bound = probe.address().port;
      probe.close(() => resolve(bound));
    });
  });
}
