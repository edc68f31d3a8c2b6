//! Raw inflate in WebAssembly, zlib-rs against miniz_oxide, for `npm run
//! bench` (bench/wasm-inflate.mjs): the same code as the native inflate bench,
//! built for wasm32 with the npm package's flags. Plain exports, no
//! wasm-bindgen: `alloc(len)` gives room for the archive, `load(ptr, len)`
//! keeps its documents entries' raw deflate streams, `inflate(which)`
//! inflates them all (0 zlib-rs, 1 miniz_oxide) and returns the bytes made.

use std::io::Cursor;
use std::sync::Mutex;

use zip::ZipArchive;

#[path = "../benches/support/inflaters.rs"]
mod inflaters;

use inflaters::{document_streams, Inflater, Stream};

static STREAMS: Mutex<Vec<Stream>> = Mutex::new(Vec::new());

/// Room for `len` bytes, for the caller to fill; never freed.
#[no_mangle]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    Vec::leak(vec![0u8; len]).as_mut_ptr()
}

/// Keeps the documents entries of the ZIP archive at `ptr`; returns how many.
///
/// # Safety
/// `ptr` must come from [`alloc`] with at least `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn load(ptr: *const u8, len: usize) -> usize {
    // SAFETY: the caller's promise.
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    let mut archive = ZipArchive::new(Cursor::new(bytes)).expect("a ZIP archive");
    let streams = document_streams(&mut archive);
    let count = streams.len();
    *STREAMS.lock().expect("streams") = streams;
    count
}

/// Inflates every kept stream with zlib-rs (0) or miniz_oxide (1).
#[no_mangle]
pub extern "C" fn inflate(which: u32) -> f64 {
    let inflater = if which == 0 {
        Inflater::ZlibRs
    } else {
        Inflater::MinizOxide
    };
    let mut out = vec![0u8; 1 << 20];
    inflater.inflate_all(&STREAMS.lock().expect("streams"), &mut out) as f64
}
