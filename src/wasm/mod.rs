//! WebAssembly driver: the JavaScript API of the core, built with wasm-bindgen.
//!
//! Deliberately thin. It turns a JavaScript input (`Uint8Array`, `Blob`/`File`
//! in a Web Worker, or a read callback) into `Read + Seek` (see [`reader`]),
//! runs [`crate::validate::validate`], and returns the [`crate::Report`] as the
//! same JSON text the native CLI prints with `--json`; or, for workers that
//! share one archive, each one's [`crate::validate::validate_shard`] and then
//! [`crate::validate::merge_shards`]. `checkTables` and `checkTarget` check
//! an input's tables, or a Report's, against a target's in an import mode;
//! [`upload`] packs and drives the upload state machine. The npm package's
//! hand-written JavaScript (`js/`) wraps this into Promises, a Worker and
//! typed options.
//!
//! Errors thrown to JavaScript are `Error`s with a `code` property, for API
//! misuse only; findings about the input are in the Report. A panic calls the
//! handler set with `setPanicHandler` (and logs through
//! `console_error_panic_hook`) before the instance traps, so the wrapper can
//! reject with the panic's message and start a fresh instance.

mod reader;
mod upload;

use std::cell::RefCell;

use js_sys::{Function, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::{ImportMode, Options, Progress};
use reader::{BlobSource, BytesSource, CallbackSource, ReadAhead, Source};

thread_local! {
    static PANIC_HANDLER: RefCell<Option<Function>> = const { RefCell::new(None) };
}

/// Runs when the module is instantiated: installs the panic hook.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let message = info.to_string();
        PANIC_HANDLER.with(|handler| {
            if let Ok(handler) = handler.try_borrow() {
                if let Some(handler) = handler.as_ref() {
                    let _ = handler.call1(&JsValue::NULL, &JsValue::from_str(&message));
                }
            }
        });
    }));
}

/// Sets the function called with a panic's message just before the instance
/// traps (the call that panicked then throws a `RuntimeError`). The instance
/// must not be used after a panic.
#[wasm_bindgen(js_name = setPanicHandler)]
pub fn set_panic_handler(handler: Option<Function>) {
    PANIC_HANDLER.with(|slot| *slot.borrow_mut() = handler);
}

/// Validates `input` and returns the Report as JSON text, exactly as
/// `snappack validate --json` prints it.
///
/// * `input`: a `Uint8Array`, an `ArrayBuffer`, a `Blob` or `File` (in a Web
///   Worker only, read with `FileReaderSync`), or `{ size, read }` where
///   `read(offset, into)` fills the `Uint8Array` `into` (a view of this
///   module's memory, valid only during the call) with the bytes from
///   `offset` on and returns how many it wrote: all of them.
/// * `file_name`: the input's name; its extension picks the format when the
///   options do not, else the input's first bytes do ([`crate::Format::detect`]).
/// * `options_json`: the options as JSON (`format`, `table`, `component`,
///   `schema`, `target`, `mode`, `maxErrors`).
/// * `on_progress(bytesRead, bytesTotal, documents)`: called about once per
///   MiB read (per 256th of an input under 256 MiB, at most once per 64 KiB)
///   and once at the end. If it throws, validation stops and this
///   function throws that exception (this is how a caller cancels).
#[wasm_bindgen]
pub fn validate(
    input: JsValue,
    file_name: &str,
    options_json: &str,
    on_progress: Option<Function>,
) -> Result<String, JsValue> {
    let options = parse_options(options_json)?;
    let source = ReadAhead::new(source_of(&input)?);
    with_progress(on_progress, |progress| {
        crate::validate(source, file_name, &options, progress)
    })
}

/// Like [`validate`], for worker `index` of `count` that validate `input`
/// together, each in its own instance: plans the whole input, checks only
/// the tables given to this worker, and returns its findings as JSON for
/// [`merge_shards`]. Progress counts this worker's share of the input.
#[wasm_bindgen(js_name = validateShard)]
pub fn validate_shard(
    input: JsValue,
    file_name: &str,
    options_json: &str,
    index: u32,
    count: u32,
    on_progress: Option<Function>,
) -> Result<String, JsValue> {
    let options = parse_options(options_json)?;
    if index >= count {
        return Err(api_error(
            "InvalidOptions",
            &format!("worker {index} of {count} does not exist"),
        ));
    }
    let source = ReadAhead::new(source_of(&input)?);
    let shard = crate::validate::Shard { index, count };
    with_progress(on_progress, |progress| {
        crate::validate::validate_shard(source, file_name, &options, shard, progress)
    })
}

/// The Report (JSON) of an input that workers validated together, from
/// the JSON array of every worker's [`validate_shard`] result.
#[wasm_bindgen(js_name = mergeShards)]
pub fn merge_shards(shards_json: &str) -> Result<String, JsValue> {
    let shards = serde_json::from_str(shards_json)
        .map_err(|e| api_error("InvalidInput", &format!("invalid shard reports: {e}")))?;
    let report = crate::validate::merge_shards(shards)
        .map_err(|e| api_error("InvalidInput", &e.to_string()))?;
    to_json(&report)
}

/// The options JSON of [`validate`].
fn parse_options(options_json: &str) -> Result<Options, JsValue> {
    serde_json::from_str(options_json)
        .map_err(|e| api_error("InvalidOptions", &format!("invalid options: {e}")))
}

/// An import mode by its wire name (`requireEmpty`, `append`, `replace`,
/// `replaceAll`).
fn parse_mode(mode: &str) -> Result<ImportMode, JsValue> {
    mode.parse()
        .map_err(|e: String| api_error("InvalidOptions", &e))
}

/// What [`validate`] finds before the first document: entry and table names,
/// table numbers, and conflicts with the `target` option's tables in `mode`.
/// Returns the report of a walk stopped there (JSON, with a `Cancelled`
/// warning); an upload checks it before it sends anything, and goes on to
/// pack and send only when it has no errors.
#[wasm_bindgen(js_name = checkTables)]
pub fn check_tables(
    input: JsValue,
    file_name: &str,
    options_json: &str,
) -> Result<String, JsValue> {
    let options = parse_options(options_json)?;
    let report = crate::validate(
        ReadAhead::new(source_of(&input)?),
        file_name,
        &options,
        &mut |_| false,
    );
    to_json(&report)
}

/// The table numbers and conflicts an input whose Report is `report_json`
/// meets in the target deployment whose tables are `target_json` (the
/// `target` option's JSON) in `mode`, without reading the input again:
/// [`crate::validate::check_target`], as JSON.
#[wasm_bindgen(js_name = checkTarget)]
pub fn check_target(report_json: &str, target_json: &str, mode: &str) -> Result<String, JsValue> {
    let report: crate::Report = serde_json::from_str(report_json).map_err(|e| {
        api_error(
            "InvalidInput",
            &format!("report is not a Report of validate: {e}"),
        )
    })?;
    let target = serde_json::from_str(target_json)
        .map_err(|e| api_error("InvalidOptions", &format!("invalid target: {e}")))?;
    let mode = parse_mode(mode)?;
    let checked = crate::validate::check_target(&report, &target, mode)
        .map_err(|e| api_error(e.code(), &e.to_string()))?;
    to_json(&checked)
}

/// The input as a [`Source`]: a `Uint8Array`, an `ArrayBuffer`, a `Blob` or
/// `File` (Web Workers only), or `{ size, read }`.
fn source_of(input: &JsValue) -> Result<Box<dyn Source>, JsValue> {
    let bytes = match input.dyn_ref::<js_sys::ArrayBuffer>() {
        Some(buffer) => Some(Uint8Array::new(buffer)),
        None => input.dyn_ref::<Uint8Array>().cloned(),
    };
    if let Some(bytes) = bytes {
        // Its length as JavaScript has it: `length()` is a u32, which 4 GiB wraps to 0.
        let len = js_sys::Reflect::get(&bytes, &JsValue::from_str("length"))
            .ok()
            .and_then(|len| len.as_f64())
            .unwrap_or_default();
        if len >= 4_294_967_296.0 {
            return Err(api_error(
                "InvalidInput",
                &format!("the input holds {len} bytes; bytes in memory may be at most 4 GiB - 1"),
            ));
        }
        return Ok(Box::new(BytesSource(bytes)));
    }
    if let Some(blob) = input.dyn_ref::<web_sys::Blob>() {
        let source = BlobSource::new(blob.clone()).map_err(|_| {
            api_error(
                "Unsupported",
                "a Blob or File can only be read here inside a Web Worker (FileReaderSync)",
            )
        })?;
        return Ok(Box::new(source));
    }
    if let Some(source) = callback_source(input) {
        return Ok(Box::new(source));
    }
    Err(api_error(
        "InvalidInput",
        "input must be a Uint8Array, an ArrayBuffer, a Blob, a File or { size, read }",
    ))
}

/// Panics with `message`, so tests can prove a panic rejects a call instead
/// of taking the page down.
#[doc(hidden)]
#[wasm_bindgen(js_name = __panicForTests)]
pub fn panic_for_tests(message: &str) {
    panic!("{message}");
}

/// `{ size: number, read: (offset, into: Uint8Array) => number }` as a source.
fn callback_source(input: &JsValue) -> Option<CallbackSource> {
    if !input.is_object() {
        return None;
    }
    let read = js_sys::Reflect::get(input, &"read".into()).ok()?;
    let size = js_sys::Reflect::get(input, &"size".into()).ok()?.as_f64()?;
    let read = read.dyn_into::<Function>().ok()?;
    let whole = size >= 0.0 && size.fract() == 0.0 && size <= 2f64.powi(53);
    whole.then(|| CallbackSource::new(read, size as u64))
}

/// Runs a walk with `on_progress` as its progress callback and returns its
/// result as JSON; an exception thrown by the callback stops the walk and is
/// rethrown.
fn with_progress<T: serde::Serialize>(
    on_progress: Option<Function>,
    walk: impl FnOnce(&mut dyn FnMut(Progress) -> bool) -> T,
) -> Result<String, JsValue> {
    let mut thrown = None;
    let result = walk(&mut progress_forwarder(on_progress.as_ref(), &mut thrown));
    if let Some(error) = thrown {
        return Err(error);
    }
    to_json(&result)
}

/// The core's progress callback calling `on_progress(bytesRead, bytesTotal,
/// documents)`; an exception it throws is kept in `thrown` and stops the walk.
fn progress_forwarder<'a>(
    on_progress: Option<&'a Function>,
    thrown: &'a mut Option<JsValue>,
) -> impl FnMut(Progress) -> bool + 'a {
    move |progress: Progress| {
        let Some(callback) = on_progress else {
            return true;
        };
        if thrown.is_some() {
            return false;
        }
        let result = callback.call3(
            &JsValue::NULL,
            &JsValue::from_f64(progress.bytes_read as f64),
            &JsValue::from_f64(progress.bytes_total as f64),
            &JsValue::from_f64(progress.documents as f64),
        );
        match result {
            Ok(_) => true,
            Err(error) => {
                *thrown = Some(error);
                false
            }
        }
    }
}

/// A result as the JSON text handed to JavaScript.
fn to_json(value: &impl serde::Serialize) -> Result<String, JsValue> {
    serde_json::to_string(value).map_err(|e| api_error("Internal", &e.to_string()))
}

/// A JavaScript `Error` with a `code` property.
fn api_error(code: &str, message: &str) -> JsValue {
    let error = js_sys::Error::new(message);
    // Setting a property on a fresh Error cannot fail.
    let _ = js_sys::Reflect::set(&error, &"code".into(), &code.into());
    error.into()
}

#[cfg(test)]
mod tests;
