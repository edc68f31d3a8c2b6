//! The two pure-Rust inflaters that compile to WebAssembly, side by side on
//! a snapshot's documents entries: zlib-rs (through flate2, what snappack
//! uses) and miniz_oxide. Shared by the native bench (benches/inflate.rs)
//! and its WebAssembly twin (examples/wasm_inflate.rs).

use std::io::{Read, Seek};

use flate2::{Decompress, FlushDecompress, Status};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZFlush, MZStatus};
use zip::{CompressionMethod, ZipArchive};

/// An entry's raw deflate stream and its uncompressed size.
pub struct Stream {
    pub deflated: Vec<u8>,
    pub size: u64,
}

/// The raw deflate streams of the archive's `documents.jsonl` entries.
pub fn document_streams<R: Read + Seek>(archive: &mut ZipArchive<R>) -> Vec<Stream> {
    let mut streams = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index_raw(i).expect("entry");
        let name = entry.name().expect("entry name");
        if !name.ends_with("documents.jsonl") || entry.compression() != CompressionMethod::Deflated
        {
            continue;
        }
        let mut deflated = Vec::with_capacity(entry.compressed_size() as usize);
        entry.read_to_end(&mut deflated).expect("read entry");
        streams.push(Stream {
            deflated,
            size: entry.size(),
        });
    }
    streams
}

/// An inflater under test.
#[derive(Clone, Copy)]
pub enum Inflater {
    ZlibRs,
    MinizOxide,
}

impl Inflater {
    /// Inflates every stream into `out` (output is thrown away, as a
    /// validator's chunks are reused) and returns the bytes produced.
    pub fn inflate_all(self, streams: &[Stream], out: &mut [u8]) -> u64 {
        let mut total = 0;
        for stream in streams {
            let produced = match self {
                Inflater::ZlibRs => zlib_rs(&stream.deflated, out),
                Inflater::MinizOxide => miniz_oxide(&stream.deflated, out),
            };
            assert_eq!(produced, stream.size, "inflated size");
            total += produced;
        }
        total
    }
}

fn zlib_rs(deflated: &[u8], out: &mut [u8]) -> u64 {
    let mut inflater = Decompress::new(false);
    loop {
        let consumed = inflater.total_in() as usize;
        let status = inflater
            .decompress(&deflated[consumed..], out, FlushDecompress::None)
            .expect("inflate");
        if status == Status::StreamEnd {
            return inflater.total_out();
        }
    }
}

fn miniz_oxide(deflated: &[u8], out: &mut [u8]) -> u64 {
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let (mut consumed, mut produced) = (0, 0u64);
    loop {
        let result = inflate(&mut state, &deflated[consumed..], out, MZFlush::None);
        consumed += result.bytes_consumed;
        produced += result.bytes_written as u64;
        match result.status {
            Ok(MZStatus::StreamEnd) => return produced,
            Ok(_) => {}
            Err(e) => panic!("inflate: {e:?}"),
        }
    }
}
