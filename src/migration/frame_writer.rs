//! Compressing and writing the encoder's frames. Each frame is deflated on
//! its own, so natively a helper thread can compress some of them while the
//! encoder goes on; frames are still written in the order they were cut,
//! byte for byte as one thread writes them. Compression is most of the
//! time `pack` takes, so two threads nearly halve it.

use std::io::{self, Write};

use flate2::Compress;

use super::frame::{self, FrameHeader};

/// Compresses frames and writes them, in order, to the writer it is given.
pub(super) struct FrameWriter {
    deflater: Deflater,
    /// Frame bytes, reused.
    bytes: Vec<u8>,
    #[cfg(not(target_arch = "wasm32"))]
    helper: Option<shared::Helper>,
}

impl FrameWriter {
    /// A writer that compresses at `level`, with a helper thread when
    /// `threads` is 2 or more (natively; WebAssembly has one thread).
    pub fn new(level: u32, threads: usize) -> Self {
        #[cfg(target_arch = "wasm32")]
        let _ = threads;
        FrameWriter {
            deflater: Deflater::new(level),
            bytes: Vec::new(),
            #[cfg(not(target_arch = "wasm32"))]
            helper: (threads >= 2).then(|| shared::Helper::start(level)),
        }
    }

    /// Takes the frame `sequence` made of `payload` (left empty, its
    /// capacity kept) and writes every frame that is ready; returns the
    /// bytes written now.
    pub fn frame<W: Write>(
        &mut self,
        sequence: u64,
        payload: &mut Vec<u8>,
        out: &mut W,
    ) -> io::Result<u64> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(helper) = &mut self.helper {
            return helper.frame(sequence, payload, &mut self.deflater, out);
        }
        self.deflater.encode(sequence, payload, &mut self.bytes);
        payload.clear();
        out.write_all(&self.bytes)?;
        Ok(self.bytes.len() as u64)
    }

    /// Writes the frames still being compressed; returns the bytes written.
    pub fn finish<W: Write>(&mut self, out: &mut W) -> io::Result<u64> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(helper) = &mut self.helper {
            return helper.finish(out);
        }
        let _ = out;
        Ok(0)
    }
}

/// One thread's deflate state.
struct Deflater {
    level: u32,
    deflate: Option<Compress>,
    compressed: Vec<u8>,
}

impl Deflater {
    fn new(level: u32) -> Self {
        Deflater {
            level,
            deflate: None,
            compressed: Vec::new(),
        }
    }

    /// One whole frame, header and stored payload, into `bytes`.
    fn encode(&mut self, sequence: u64, payload: &[u8], bytes: &mut Vec<u8>) {
        let deflated =
            frame::compress(&mut self.deflate, self.level, payload, &mut self.compressed);
        let (method, stored) = if deflated {
            (frame::METHOD_DEFLATE, &self.compressed[..])
        } else {
            (frame::METHOD_STORED, payload)
        };
        bytes.clear();
        bytes.extend_from_slice(&FrameHeader::write(sequence, method, payload.len(), stored));
        bytes.extend_from_slice(stored);
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod shared {
    //! The helper thread: it takes frames while it has room, and the
    //! encoder's thread compresses the others itself.

    use std::collections::BTreeMap;
    use std::io::{self, Write};
    use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
    use std::thread::JoinHandle;

    use super::Deflater;

    /// A frame to compress: its place in the output, its sequence, its
    /// payload and a buffer for its bytes.
    type Job = (u64, u64, Vec<u8>, Vec<u8>);
    /// A compressed frame: its place, its bytes, and the payload buffer back.
    type Done = (u64, Vec<u8>, Vec<u8>);

    /// Frames queued for the helper beyond the one it is compressing.
    const QUEUE: usize = 1;
    /// Frames held for writing before the encoder waits for the helper.
    const MAX_HELD: usize = 8;

    pub(super) struct Helper {
        jobs: Option<SyncSender<Job>>,
        done: Receiver<Done>,
        thread: Option<JoinHandle<()>>,
        /// Frames compressed but not written yet, by place.
        held: BTreeMap<u64, Vec<u8>>,
        /// Places given out, and the next to write.
        given: u64,
        next: u64,
        /// Frames the helper has and has not given back.
        with_helper: usize,
        /// Buffers to reuse: payloads and frame bytes.
        spare_payloads: Vec<Vec<u8>>,
        spare_bytes: Vec<Vec<u8>>,
    }

    impl Helper {
        pub fn start(level: u32) -> Self {
            let (jobs, queued) = mpsc::sync_channel::<Job>(QUEUE);
            let (finished, done) = mpsc::channel::<Done>();
            let thread = std::thread::spawn(move || {
                let mut deflater = Deflater::new(level);
                for (place, sequence, payload, mut bytes) in queued {
                    deflater.encode(sequence, &payload, &mut bytes);
                    if finished.send((place, bytes, payload)).is_err() {
                        break;
                    }
                }
            });
            Helper {
                jobs: Some(jobs),
                done,
                thread: Some(thread),
                held: BTreeMap::new(),
                given: 0,
                next: 0,
                with_helper: 0,
                spare_payloads: Vec::new(),
                spare_bytes: Vec::new(),
            }
        }

        pub fn frame<W: Write>(
            &mut self,
            sequence: u64,
            payload: &mut Vec<u8>,
            local: &mut Deflater,
            out: &mut W,
        ) -> io::Result<u64> {
            let place = self.given;
            self.given += 1;
            let spare = self
                .spare_payloads
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(payload.capacity()));
            let taken = std::mem::replace(payload, spare);
            let bytes = self.spare_bytes.pop().unwrap_or_default();
            let jobs = self.jobs.as_ref().ok_or_else(helper_gone)?;
            match jobs.try_send((place, sequence, taken, bytes)) {
                Ok(()) => self.with_helper += 1,
                // The helper is busy: this thread compresses the frame.
                Err(TrySendError::Full((_, _, taken, mut bytes))) => {
                    local.encode(sequence, &taken, &mut bytes);
                    self.held.insert(place, bytes);
                    self.recycle_payload(taken);
                }
                Err(TrySendError::Disconnected(_)) => return Err(helper_gone()),
            }
            // Take what the helper finished; wait for it only when holding many.
            while let Ok(done) = self.done.try_recv() {
                self.take(done);
            }
            while self.held.len() >= MAX_HELD && self.with_helper > 0 {
                let done = self.done.recv().map_err(|_| helper_gone())?;
                self.take(done);
            }
            self.write_ready(out)
        }

        pub fn finish<W: Write>(&mut self, out: &mut W) -> io::Result<u64> {
            self.jobs = None;
            while self.with_helper > 0 {
                let done = self.done.recv().map_err(|_| helper_gone())?;
                self.take(done);
            }
            if let Some(thread) = self.thread.take() {
                thread.join().map_err(|_| helper_gone())?;
            }
            self.write_ready(out)
        }

        fn take(&mut self, (place, bytes, payload): Done) {
            self.with_helper -= 1;
            self.held.insert(place, bytes);
            self.recycle_payload(payload);
        }

        fn recycle_payload(&mut self, mut payload: Vec<u8>) {
            payload.clear();
            self.spare_payloads.push(payload);
        }

        /// Writes the held frames that are next in order.
        fn write_ready<W: Write>(&mut self, out: &mut W) -> io::Result<u64> {
            let mut written = 0;
            while let Some(bytes) = self.held.remove(&self.next) {
                out.write_all(&bytes)?;
                written += bytes.len() as u64;
                self.next += 1;
                self.spare_bytes.push(bytes);
            }
            Ok(written)
        }
    }

    impl Drop for Helper {
        fn drop(&mut self) {
            // The helper ends when its queue closes.
            self.jobs = None;
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    fn helper_gone() -> io::Error {
        io::Error::other("the frame compression thread stopped")
    }
}
