// The Web Workers behind the browser entry point (browser.js) and uploads
// (upload.js): where the package's files are, the WebAssembly module compiled
// once per page, `preload`, and a call's run in a worker. Not part of the
// package's API: the entry point exports only what its types declare.

import { SnappackError, unsendableRequest, routeWorkerMessage, wasmLoadFailed } from './common.js';

/**
 * The package's files, each URL written out as `new URL('./…',
 * import.meta.url)`, the pattern by which bundlers find the files a package
 * uses. Made when a call needs them, not when the package loads: a bundle
 * without `import.meta.url` (esbuild's default IIFE format) then loads, and
 * each call rejects with `Unsupported`, saying so.
 */
function packageFiles() {
  try {
    return {
      wasm: new URL('./web/snappack_bg.wasm', import.meta.url),
      /** The workers' scripts, by kind, for `preload`. */
      workers: {
        validate: new URL('./worker.js', import.meta.url),
        pack: new URL('./pack-worker.js', import.meta.url),
      },
      /** The modules the workers' scripts import, by their specifier in the package's sources. */
      workerImports: {
        './web/snappack.js': new URL('./web/snappack.js', import.meta.url),
        './common.js': new URL('./common.js', import.meta.url),
      },
    };
  } catch (error) {
    throw new SnappackError(
      'Unsupported',
      `snappack cannot find its workers and WebAssembly (${error.message}): it must be bundled as an ES module, where import.meta.url is the bundle's URL (esbuild: --format=esm)`,
      { cause: error },
    );
  }
}

let compiled;

/** `preload`'s work, while under way or once done: the workers' `blob:` URLs by kind. */
let preloaded;

/** The workers' `blob:` URLs by kind, once `preload` has them. */
let workerUrls;

/**
 * Fetches and compiles the WebAssembly module and fetches the workers'
 * scripts now, and keeps them for the page: the calls after it start their
 * workers from memory (`blob:` URLs) and need nothing more from the server
 * that served the package. A worker of each kind is started from memory
 * first, and must answer. Rejects with `WorkerFailed` when they cannot be
 * loaded or started (a Content-Security-Policy without `worker-src blob:`,
 * which the error names); calls then fetch them as they would without it.
 * @returns {Promise<void>}
 */
export function preload() {
  if (preloaded === undefined) {
    preloaded = Promise.all([compiledModule(), workerScripts()]).then(async ([module, urls]) => {
      await Promise.all(Object.entries(urls).map(([kind, url]) => startsFromMemory(kind, url, module)));
      workerUrls = urls;
    });
    preloaded.catch(() => {
      preloaded = undefined;
    });
  }
  return preloaded;
}

/**
 * The compiled module for a worker, once a `preload` under way is done (its
 * workers then start from memory).
 * @internal (browser.js, upload.js)
 */
export async function workerModule() {
  await preloaded?.catch(() => {});
  return compiledModule();
}

/**
 * A new module Worker running the script of `kind` (`'validate'` or
 * `'pack'`): the one `preload` keeps, else the package's file.
 * @internal (browser.js, upload.js)
 */
export function newWorker(kind, name) {
  if (workerUrls) return new Worker(workerUrls[kind], { type: 'module', name });
  // Written out so that bundlers find the workers.
  return kind === 'pack'
    ? new Worker(new URL('./pack-worker.js', import.meta.url), { type: 'module', name })
    : new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name });
}

/**
 * Resolves once a worker started from `url` (a `blob:` URL of the script of
 * `kind`) answers; rejects with `WorkerFailed` when it cannot start, naming
 * the Content-Security-Policy directive that refused it, if one did.
 */
async function startsFromMemory(kind, url, module) {
  const refusals = [];
  const onViolation = (event) => {
    if (event.effectiveDirective === 'worker-src' || /^blob/.test(event.blockedURI)) refusals.push(event);
  };
  globalThis.document?.addEventListener('securitypolicyviolation', onViolation);
  try {
    await inWorker({ type: 'ping', module }, {}, new Worker(url, { type: 'module', name: `snappack-${kind}-preload` }));
  } catch (error) {
    // The violation is reported as a task of its own: it may come after the error.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const refused = refusals.length > 0 || error?.name === 'SecurityError';
    const why = refused
      ? "the page's Content-Security-Policy does not allow workers from blob: URLs: add blob: to its worker-src directive (or, without one, to script-src, else default-src)"
      : `a worker could not be started from it (${error?.message ?? error})`;
    throw new SnappackError('WorkerFailed', `cannot start snappack's ${kind} worker from memory: ${why}`, { cause: error });
  } finally {
    globalThis.document?.removeEventListener('securitypolicyviolation', onViolation);
  }
}

/**
 * The workers' scripts as `blob:` URLs by kind, each module they import
 * fetched too and its specifier pointed at a `blob:` URL of it (a `blob:`
 * module cannot import by a relative or root-relative path); rejects with
 * `WorkerFailed`. A specifier as the package's sources write it
 * (`./common.js`) is taken from where the bundler put that module
 * (`workerImports`); any other one, such as the `/node_modules/…?v=…` a
 * dev server rewrites it to, is resolved against the script that imports it.
 */
async function workerScripts() {
  const text = async (url) => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`fetching ${url}: HTTP ${response.status}`);
    return response.text();
  };
  const blobUrl = (source) => URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
  // `import … from '…'`, `export … from '…'` and `import '…'` (a specifier has no spaces).
  const staticImport = /(\bfrom\s*|\bimport\s*)(['"])([^'"\s]+)\2/g;
  /** Blob URLs of the modules linked so far, by their URL. */
  const linked = new Map();
  const link = (url, chain, aliases = {}) => {
    if (chain.includes(url.href)) throw new Error(`${url} imports itself (through ${chain.join(', ')})`);
    if (!linked.has(url.href)) {
      linked.set(url.href, text(url).then(async (source) => {
        const specifiers = [...new Set(Array.from(source.matchAll(staticImport), (match) => match[3]))];
        const urls = {};
        await Promise.all(specifiers.map(async (specifier) => {
          const target = aliases[specifier] ?? moduleUrl(specifier, url);
          urls[specifier] = await link(target, [...chain, url.href]);
        }));
        return blobUrl(source.replace(staticImport, (_, keyword, quote, specifier) => `${keyword}${quote}${urls[specifier]}${quote}`));
      }));
    }
    return linked.get(url.href);
  };
  const { workers, workerImports } = packageFiles();
  try {
    const kinds = Object.keys(workers);
    const urls = await Promise.all(kinds.map((kind) => link(workers[kind], [], workerImports)));
    return Object.fromEntries(kinds.map((kind, i) => [kind, urls[i]]));
  } catch (error) {
    throw new SnappackError('WorkerFailed', `cannot load snappack's workers: ${error.message}`, { cause: error });
  }
}

/**
 * The URL of the module `specifier` that the module at `base` imports: a
 * relative or root-relative path, or a URL. A bare name (`'pkg'`) means
 * nothing outside a bundler, so preload cannot fetch it.
 */
function moduleUrl(specifier, base) {
  if (!/^(\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(specifier)) {
    throw new Error(`${base} imports ${specifier}, which is not a path or a URL`);
  }
  return new URL(specifier, base);
}

/**
 * The compiled module, fetched and compiled once per page (again after a
 * failure); rejects with `WorkerFailed` when it cannot be loaded.
 * @internal (browser.js, upload.js)
 */
export function compiledModule() {
  if (compiled === undefined) {
    compiled = compile();
    compiled.catch(() => {
      compiled = undefined;
    });
  }
  return compiled;
}

async function compile() {
  const url = packageFiles().wasm;
  try {
    try {
      return await WebAssembly.compileStreaming(fetch(url));
    } catch {
      // A server that does not send `application/wasm` still works.
      const response = await fetch(url);
      if (!response.ok) throw new Error(`fetching ${url}: HTTP ${response.status}`);
      const bytes = await response.arrayBuffer();
      try {
        return await WebAssembly.compile(bytes);
      } catch (error) {
        // Such as the page a dev server answers every unknown path with.
        const type = response.headers.get('content-type') ?? 'no content type';
        throw new Error(`${url} is not snappack's WebAssembly (the server sent ${type}): ${error.message}`, { cause: error });
      }
    }
  } catch (error) {
    throw wasmLoadFailed(error);
  }
}

/**
 * Posts `request` to a fresh worker (validate's by default) and settles with
 * its answer (the Report, or what the request asks for); the worker ends
 * either way. Chunks a packing worker posts on the way go to `onChunk`.
 * @internal (browser.js, upload.js)
 */
export function inWorker(
  request,
  { onProgress, onChunk, signal },
  worker = newWorker('validate', 'snappack'),
) {
  return new Promise((resolve, reject) => {
    const settle = (settleWith, value) => {
      worker.terminate();
      signal?.removeEventListener('abort', onAbort);
      settleWith(value);
    };
    // The worker is busy in WebAssembly and cannot be told to stop: it is ended.
    const onAbort = () => settle(reject, signal.reason);
    signal?.addEventListener('abort', onAbort, { once: true });

    worker.onmessage = ({ data }) =>
      routeWorkerMessage(data, { onProgress, onChunk }, (value) => settle(resolve, value), (error) => settle(reject, error));
    worker.onerror = (event) => {
      event.preventDefault?.();
      // An error without a message: the worker's script or what it imports could not be loaded.
      const why = event.message ?? 'it could not be started: its script could not be loaded (is the server that served this page reachable?)';
      settle(reject, new SnappackError('WorkerFailed', `snappack's worker failed: ${why}`));
    };
    worker.onmessageerror = () => {
      settle(reject, new SnappackError('WorkerFailed', "snappack's worker sent a message that cannot be read"));
    };
    try {
      worker.postMessage(request);
    } catch (error) {
      settle(reject, unsendableRequest(error));
    }
  });
}
