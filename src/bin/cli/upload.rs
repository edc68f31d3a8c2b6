//! `snappack upload`: validate locally (numbering tables against the
//! server's), pack, and stream the frames to a `snappack serve` with the
//! core's upload state machine: progress, retries with backoff, resume.
//! Packing runs on its own thread and each frame is sent as soon as it is
//! packed.

use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use clap::Args;
use snappack::archive::Format;
use snappack::client::{
    advertised_max_frame_size, frame_size_for, import_path, FileIdentity, FrameEnds, ImportTarget,
    InputPosition, Request, Step, Upload, UploadConfig, UploadError, FINGERPRINT_SPAN,
};
use snappack::migration::{
    pack, EncodeError, EncoderConfig, PackError, PackOptions, DEFAULT_LEVEL,
};
use snappack::report::Report;
use snappack::server::TOKEN_ENV;
use snappack::validate::validate;
use snappack::validate::{removed_by_import, ImportMode, Removed, TargetTables};

use super::output::on_interrupt;
use super::{human, parse_frame_size, report_status, Input, InputArgs, PACK_THREADS_HELP};

/// Settings of `snappack upload`.
#[derive(Args)]
#[command(mut_arg("mode", |mode| mode.help(
    "Import mode: requireEmpty (the default), append, replace, replaceAll; \
     --resume takes the import's own",
)))]
#[command(mut_arg("threads", |threads| threads.help(PACK_THREADS_HELP)))]
#[command(mut_arg("target_tables", |tables| tables.help(
    "The target's tables (JSON), instead of the server's (GET /api/tables): \
     to reuse numbers and find conflicts before upload",
)))]
pub struct UploadArgs {
    #[command(flatten)]
    input: InputArgs,
    /// The server, e.g. `http://127.0.0.1:8080` (plain HTTP, as `snappack serve` speaks).
    #[arg(long, value_parser = parse_url)]
    url: String,
    /// The server's admin token (default: $SNAPPACK_TOKEN).
    #[arg(long)]
    token: Option<String>,
    /// Continue this import instead of starting one.
    #[arg(long, value_name = "ID", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    resume: Option<String>,
    /// Frames per request, 1 to 1024.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    frames_per_request: u64,
    /// Frame size (uncompressed payload bound), 4096 to 16777216 bytes
    /// (default 1 MiB; `--resume` takes the import's). A server that takes
    /// smaller frames (its --max-frame-size) gets frames of its limit, and
    /// the upload says so.
    #[arg(long, value_parser = parse_frame_size)]
    frame_size: Option<usize>,
    /// Deflate level of frames, 0 (store) to 9: lower levels pack faster
    /// and send more bytes (for fast links, such as a LAN).
    #[arg(long, default_value_t = DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(0..=9))]
    level: u32,
    /// How long one request may take, to the end of the server's answer, in
    /// seconds: one that takes longer (a server that takes the connection
    /// and never answers) is tried again as a network error is.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86400))]
    timeout: u64,
    /// No progress bar, and a one-line summary at the end without the table
    /// list (the removals to agree to and the import's id are still printed).
    #[arg(long, short)]
    quiet: bool,
    /// Go ahead without asking when the import removes documents from the
    /// server's tables (replace and replaceAll modes). Without it, the
    /// removals are listed and asked about on a terminal, and refused
    /// elsewhere.
    #[arg(long, short)]
    yes: bool,
}

/// `--url`: an `http://` address. `snappack serve` has no TLS, and neither
/// has this client, whose transport would otherwise refuse an `https://`
/// address only when it connects, in words that do not say why.
fn parse_url(url: &str) -> Result<String, String> {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http") => Ok(url.to_owned()),
        Some(scheme) if scheme.eq_ignore_ascii_case("https") => Err(
            "upload speaks plain HTTP only, as snappack serve does (no TLS): give the server's http:// address".into(),
        ),
        _ => Err("give the server's address with its scheme, e.g. http://127.0.0.1:8080".into()),
    }
}

struct Http {
    agent: ureq::Agent,
    base: String,
    auth: String,
    /// The `--timeout` each request has, to the end of its answer.
    timeout: Duration,
}

impl Http {
    fn new(base: &str, token: &str, timeout: Duration) -> Self {
        Http {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .build()
                .into(),
            base: base.trim_end_matches('/').to_owned(),
            auth: format!("Bearer {token}"),
            timeout,
        }
    }

    /// What a failed request says: the server, and why (the time waited,
    /// when it was too long, rather than the transport's `timeout: global`).
    fn failure(&self, error: ureq::Error) -> String {
        match error {
            ureq::Error::Timeout(_) => format!(
                "{} did not answer within {} s (--timeout sets how long a request may take)",
                self.base,
                self.timeout.as_secs()
            ),
            other => format!("cannot reach {}: {other}", self.base),
        }
    }

    /// Status and body, or a network error's text, which names the server.
    fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let url = format!("{}{path}", self.base);
        let result = match method {
            "GET" => self
                .agent
                .get(&url)
                .header("Authorization", &self.auth)
                .call(),
            _ => self
                .agent
                .post(&url)
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/octet-stream")
                .send(body),
        };
        let mut response = result.map_err(|e| self.failure(e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| self.failure(e))?;
        Ok((status, body))
    }
}

/// `token`, given by `from`, if a request can carry it and a server can
/// have it: printable ASCII, spaces inside only (as `snappack serve` takes
/// tokens). Any other is refused before a request, naming where it came
/// from, rather than failing as a server that cannot be reached.
pub(super) fn sendable_token(token: String, from: &str) -> Result<String> {
    let printable = token.bytes().all(|b| (0x20..0x7F).contains(&b));
    if printable && token.trim() == token {
        return Ok(token);
    }
    bail!(
        "the token given by {from} has {}: a server's token is printable ASCII without spaces \
         at its ends (as in its data folder's token file), and no request could carry this one",
        match printable {
            true => "spaces at its ends",
            false => "a character that is not printable ASCII (a line break, say)",
        }
    )
}

/// `$SNAPPACK_TOKEN` (`env`), when it is set: refused, with `if_empty`,
/// when it is empty, and naming the variable when no request could carry it.
pub(super) fn env_token(env: Option<std::ffi::OsString>, if_empty: &str) -> Result<Option<String>> {
    let Some(token) = env else {
        return Ok(None);
    };
    // Not UTF-8: no printable ASCII token either.
    let token = token
        .into_string()
        .unwrap_or_else(|token| token.to_string_lossy().into_owned());
    if token.is_empty() {
        bail!("{if_empty}");
    }
    sendable_token(token, "$SNAPPACK_TOKEN").map(Some)
}

/// The token to send: `--token` when it is given, even empty (an empty one
/// is refused, naming `--token`, rather than passed over for the
/// environment's), else `$SNAPPACK_TOKEN` (`env`) when it is set and not
/// empty.
fn upload_token(given: Option<String>, env: Option<std::ffi::OsString>) -> Result<String> {
    if let Some(token) = given {
        if token.is_empty() {
            bail!("--token is empty: give the server's token (as in its data folder's token file)");
        }
        return sendable_token(token, "--token");
    }
    let if_empty = "no token: give --token or set SNAPPACK_TOKEN (it is set, but empty)";
    match env_token(env, if_empty)? {
        Some(token) => Ok(token),
        None => bail!("no token: give --token or set SNAPPACK_TOKEN"),
    }
}

/// Runs the upload; exit 0 when the import is finished, 1 when the input or
/// the server refuses it, 2 when it cannot run.
pub fn run(args: UploadArgs) -> Result<ExitCode> {
    let token = upload_token(args.token.clone(), std::env::var_os(TOKEN_ENV))?;
    let http = Http::new(&args.url, &token, Duration::from_secs(args.timeout));

    let mut options = args.input.options()?;
    // Resuming: the import goes on in its own mode and frame size, from the
    // frame it expects.
    let mut frame_size = None;
    // What the import's label says of the file it was started with.
    let mut started_with = None;
    // What the import targets, when the server recorded it.
    let mut started_for = None;
    // What the import's frames so far say of the input they were packed from.
    let mut resume_crc32 = None;
    let first_frame = match &args.resume {
        Some(id) => {
            // A closed import, or one whose finish would be refused: sending
            // the rest is no use, and nothing is sent.
            let file = args.input.file.display().to_string();
            let import = match open_import(&http, id)? {
                Ok(import) => import,
                Err(closed) => {
                    say!("snappack: {}", closed.refusal(id, &file));
                    return Ok(ExitCode::from(1));
                }
            };
            if let Some(changed) = &import.table_changed {
                let cancel = format!(
                    ", and cancel {id} (POST {}/api/imports/{id}/cancel) or leave it to the server, which fails it",
                    http.base
                );
                say!(
                    "snappack: {}",
                    table_changed_refusal(id, changed, "can no longer finish", &file, &cancel)
                );
                return Ok(ExitCode::from(1));
            }
            started_with = import.label.as_deref().and_then(FileIdentity::from_label);
            started_for = import.target.clone();
            if args.input.mode.is_some_and(|asked| asked != import.mode) {
                bail!(
                    "import {id} was started in {} mode, not {}: leave out --mode to continue it, or start a new upload",
                    import.mode,
                    options.mode
                );
            }
            options.mode = import.mode;
            if let Some(size) = import.frame_size {
                if let Some(asked) = args.frame_size.filter(|&asked| asked != size) {
                    bail!(
                        "import {id} was started with frames of {size} bytes, not {asked}: leave out --frame-size to continue it"
                    );
                }
                frame_size = Some(size);
            }
            resume_crc32 = import.prefix_crc32;
            import.next_seq
        }
        None => 0,
    };

    // The server's tables (step 3 of table numbering against them, before
    // anything is sent), unless --target-tables gives others: then the
    // listing is asked for once the snapshot is checked, for its frame limit.
    let mut listing = None;
    if options.target.is_none() {
        let tables = list_tables(&http, &args.url)?;
        options.target = Some(listed_tables(&tables, &args.url)?);
        listing = Some(tables);
    }

    let (mut reader, name, format) = args.input.open().map_err(|error| {
        // The snapshot it was packed from is what upload takes.
        match error.downcast_ref::<super::PackedStreamGiven>() {
            Some(given) => anyhow::anyhow!(
                "{given}; `snappack upload` takes the snapshot it was packed from, and a \
                 server the stream itself as an import's frames (POST /api/imports/ID/frames, \
                 docs/PROTOCOL.md)"
            ),
            None => error,
        }
    })?;
    // Told once, for every walk of it below.
    options.format = format;
    let identity = identify(&mut reader, &name)?;
    if let (Some(id), Some(recorded)) = (&args.resume, &started_with) {
        if !identity.matches(recorded) {
            bail!(
                "import {id} was started with {recorded}, not {identity}: continue it with that file, \
                 or upload {name} without --resume to start a new import (and cancel {id} with \
                 POST {}/api/imports/{id}/cancel, or leave it to expire)",
                http.base
            );
        }
    }
    // What the import targets: its tables are numbered and checked against
    // the server's in that component, so another one, on resuming, would
    // find the wrong tables (`TableExists` for a component's tables the
    // root already has, say) rather than say what differs.
    let target = ImportTarget {
        component: options.component.clone(),
        table: options
            .table
            .clone()
            .filter(|_| format != Some(Format::Zip)),
    };
    if let (Some(id), Some(recorded)) = (&args.resume, &started_for) {
        if *recorded != target {
            let (was, has) = target_options(recorded, &target);
            bail!(
                "import {id} was started with {was}, and this upload has {has}: {} to continue \
                 it, or upload without --resume to start a new import. Nothing was sent",
                target_fix(recorded, &target)
            );
        }
    }
    let started = Instant::now();
    let color = std::io::stdout().is_terminal() && super::colors_wanted();
    let print_report = |report: &Report| -> Result<()> {
        human::print(
            &mut std::io::stdout().lock(),
            &name,
            report,
            started.elapsed(),
            color,
        )?;
        Ok(())
    };
    // What is known before the first document (entry and table names, table
    // numbers, the mode against the server's tables) is checked before
    // anything is sent: on an error, the whole snapshot is validated for the
    // report and nothing is sent.
    let tables_checked = validate(&mut reader, &name, &options, &mut |_| false);
    if tables_checked.error_count > 0 {
        let report = validate(&mut reader, &name, &options, &mut |_| true);
        print_report(&report)?;
        match super::only_option_errors(&report) {
            true => say!("snappack: not uploaded: fix the options"),
            false => say!("snappack: not uploaded: the snapshot has errors"),
        }
        return Ok(report_status(&report));
    }
    // What the import removes from the server's tables when it finishes is
    // listed, and agreed to, before anything is sent: the server's own, even
    // when --target-tables numbered the snapshot against others, since the
    // server removes from its own tables.
    if matches!(options.mode, ImportMode::Replace | ImportMode::ReplaceAll) {
        let server = match &listing {
            Some(tables) => tables,
            None => listing.insert(list_tables(&http, &args.url)?),
        };
        let server = listed_tables(server, &args.url)?;
        let removed = removed_by_import(&server, &tables_checked.tables, options.mode);
        let asks = std::io::stdin().is_terminal() && args.input.file.as_os_str() != "-";
        if !removed.is_empty() && !agreed(&removed, options.mode, args.yes, asks)? {
            say!("snappack: not uploaded: nothing was sent");
            return Ok(ExitCode::from(1));
        }
    }

    // A new stream (or one whose first frame the server does not have yet)
    // is packed in frames the server takes.
    let frame_size = match frame_size {
        Some(size) => size,
        None => {
            let listing = match listing {
                Some(listing) => listing,
                None => list_tables(&http, &args.url)?,
            };
            let choice = frame_size_for(args.frame_size, advertised_max_frame_size(&listing))
                .map_err(|e| anyhow::anyhow!("cannot upload to {}: {e}", args.url))?;
            if let Some(asked) = choice.lowered_from {
                say!(
                    "snappack: the server takes frames of at most {} bytes (its --max-frame-size): packing frames of {0} bytes, not {asked}",
                    choice.size
                );
            }
            choice.size
        }
    };

    // Packing (one thread) and sending (this one) overlap: each frame goes
    // out as soon as it is written to the packed stream's file, which also
    // serves frames sent again after a failure.
    let path =
        std::env::temp_dir().join(format!("snappack-upload-{}.snappack", std::process::id()));
    let stream = File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut packed_stream =
        File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
    // Unlinked at once (Unix), so that the system frees it however the
    // upload ends, Ctrl-C or a kill included; where an open file cannot be
    // removed, it is removed at the end.
    let _cleanup = std::fs::remove_file(&path).is_err().then(|| Cleanup(path));
    let mode = options.mode;
    let threads = options.threads;
    // Resuming: the frames the server has are walked again but not compressed.
    if let (Some(id), 1..) = (&args.resume, first_frame) {
        say!("snappack: import {id} continues at frame {first_frame}");
    }
    let pack_options = PackOptions {
        validate: options,
        encoder: EncoderConfig {
            max_frame_size: frame_size,
            level: args.level,
            threads,
            resume_from: first_frame,
            resume_crc32,
            ..EncoderConfig::default()
        },
        producer: format!("snappack {}", env!("CARGO_PKG_VERSION")),
        created_at_ms: 0,
        ..PackOptions::default()
    };
    let (frame_ends, packed_frames) = mpsc::sync_channel(256);
    let pack_name = name.clone();
    let mut packing = Some(std::thread::spawn(move || {
        let read_to = InputPosition::default();
        let tap = FrameTap::new(stream, frame_ends, first_frame, read_to.clone());
        pack(reader, &pack_name, tap, &pack_options, &mut |progress| {
            read_to.set(progress.bytes_read);
            true
        })
        .map(|(_, packed)| packed)
    }));

    let config = UploadConfig {
        mode,
        frames_per_request: args.frames_per_request,
        ..UploadConfig::default()
    };
    let mut upload = match &args.resume {
        Some(id) => Upload::resume(config, 0, id),
        None => Upload::new(config, 0)
            .with_label(identity.label())
            .with_target(target),
    }
    .packing()
    .from_frame(first_frame);
    // The frames packed so far (from `first_frame` on).
    let mut frames: Vec<PackedFrame> = Vec::new();
    let add_frame = |frames: &mut Vec<PackedFrame>, (end, input): (u64, u64)| {
        let start = frames.last().map_or(0, |f| f.end);
        frames.push(PackedFrame { start, end, input });
    };
    let mut bar = Bar::new(!args.quiet, identity.size);
    let mut body = Vec::new();
    let mut announced = args.resume.is_some();
    // Ctrl-C (or a closed terminal, or a kill) ends the upload, and says
    // how to continue the import once there is one.
    let interrupted_import = Arc::new(Mutex::new(args.resume.clone()));
    say_resume_on_interrupt(interrupted_import.clone());
    // The rate counts from here: not the check, nor the question, before.
    let sending_since = Instant::now();
    let mut send = || -> Result<Ended> {
        loop {
            while let Ok(end) = packed_frames.try_recv() {
                add_frame(&mut frames, end);
            }
            upload.add_frames(first_frame + frames.len() as u64);
            let request = match upload.step() {
                Step::Send(request) => request,
                Step::Sleep(ms) => {
                    std::thread::sleep(Duration::from_millis(ms));
                    continue;
                }
                Step::Wait => {
                    if let Ok(end) = packed_frames.recv() {
                        add_frame(&mut frames, end);
                        continue;
                    }
                    // Packing ended.
                    let Some(Ok(outcome)) = packing.take().map(|thread| thread.join()) else {
                        bail!("packing {name} stopped: its thread panicked");
                    };
                    match outcome {
                        Ok(_) => upload.packing_done(),
                        Err(PackError::Invalid(report)) => return Ok(Ended::Invalid(report)),
                        Err(PackError::Encode {
                            error: error @ EncodeError::ResumeMismatch { .. },
                            ..
                        }) => bail!(
                            "import {} cannot continue with {name}: {error}. No frame was sent: continue it with that input, \
                             or upload {name} without --resume to start a new import",
                            args.resume.as_deref().unwrap_or_default()
                        ),
                        Err(e) => bail!("cannot pack {name}: {e}"),
                    }
                    continue;
                }
                Step::Done(answer) => return Ok(Ended::Done(answer)),
                Step::Failed(error) => return Ok(Ended::Failed(error)),
            };
            let bytes: &[u8] = match &request {
                Request::Append { seq, count, .. } => {
                    // The state machine asks for no frame before `first_frame`.
                    let first = seq - first_frame;
                    let start = frames[first as usize].start;
                    let end = frames[(first + *count - 1) as usize].end;
                    body.resize((end - start) as usize, 0);
                    packed_stream.seek(SeekFrom::Start(start))?;
                    packed_stream
                        .read_exact(&mut body)
                        .context("cannot read the packed stream back")?;
                    &body
                }
                other => match other.json_body() {
                    Some(json) => {
                        body = json.into_bytes();
                        &body
                    }
                    None => b"",
                },
            };
            match http.call(request.method(), &request.path(), bytes) {
                Ok((status, answer)) => upload.on_response(status, &answer),
                Err(e) => upload.on_network_error(&e),
            }
            if let (false, Some(id)) = (announced, upload.id()) {
                bar.clear();
                say!(
                    "snappack: import {id} started (continue an interrupted upload with --resume {id})"
                );
                *interrupted_import.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_owned());
                announced = true;
            }
            // A resumed import may have more frames than are packed yet
            // (another client sending to it too), maybe none.
            let acknowledged = upload.acknowledged().saturating_sub(first_frame);
            let (sent, input_sent) = match (acknowledged as usize).min(frames.len()) {
                0 => (0, None),
                n => {
                    let last = &frames[n - 1];
                    (last.end, Some(last.input))
                }
            };
            let total = upload
                .is_packed()
                .then(|| frames.last().map_or(0, |f| f.end));
            bar.update(sent, total, input_sent, sending_since);
        }
    };
    let ended = send();
    bar.clear();
    // A snapshot with errors may not land at all: its import goes. Any other
    // failure (the network, the server, reading the input or the stream
    // back) may pass, so the import stays open for --resume.
    match (&ended, upload.id()) {
        (Ok(Ended::Invalid(_)), Some(id)) => {
            let _ = http.call("POST", &format!("{}/cancel", import_path(id)), b"");
            say!("snappack: import {id} cancelled");
        }
        (Err(_), Some(id)) => say!(
            "snappack: import {id} stays open: continue it with --resume {id} once the cause is fixed"
        ),
        _ => {}
    }
    match ended? {
        Ended::Invalid(report) => {
            print_report(&report)?;
            say!("snappack: not uploaded: the snapshot has errors");
            Ok(report_status(&report))
        }
        Ended::Done(answer) => {
            let id = upload.id().unwrap_or("?");
            // Told by a status or a refused finish (the answer to this
            // upload's finish was lost on the way, or another client
            // finished it): the tables it activated are not known here.
            let Some(tables) = answer.get("tables").and_then(|t| t.as_array()) else {
                tell!(
                    "snappack: import {id} finished (no answer listing its tables reached this upload: GET /api/tables lists them)"
                );
                return Ok(ExitCode::SUCCESS);
            };
            let documents = tables.iter().filter_map(|t| t["documents"].as_u64()).sum();
            tell!(
                "snappack: import {id} finished: {}, {}",
                human::plural(tables.len() as u64, "table"),
                human::plural(documents, "document")
            );
            if !args.quiet {
                for t in tables.iter().take(LISTED_TABLES) {
                    tell!(
                        "  {}{} = {}: {}",
                        t["component"]
                            .as_str()
                            .filter(|c| !c.is_empty())
                            .map(|c| format!("{c}/"))
                            .unwrap_or_default(),
                        t["name"].as_str().unwrap_or("?"),
                        t["number"],
                        human::plural(t["documents"].as_u64().unwrap_or(0), "document")
                    );
                }
                if let Some(more) = tables.len().checked_sub(LISTED_TABLES).filter(|&n| n > 0) {
                    tell!("  and {more} more (GET /api/tables lists every table)");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Ended::Failed(error) => {
            let mut place = String::new();
            if let Some(table) = &error.table {
                // A component's table is named with its path, as the
                // summaries name it: `users` alone would be the root's.
                place = if error.component.is_empty() {
                    format!(" (table {table}")
                } else {
                    format!(" (table {}/{table}", error.component)
                };
                if let Some(line) = error.line {
                    place.push_str(&format!(", document {line}"));
                }
                if let Some(field) = &error.field {
                    place.push_str(&format!(", field {field}"));
                }
                place.push(')');
            }
            say!(
                "snappack: upload failed: {}: {}{place}",
                error.code,
                error.message
            );
            if let Some(id) = upload.id() {
                if let Some(advice) =
                    failed_upload_advice(id, &error, upload.acknowledged(), &http.base)
                {
                    say!("snappack: {advice}");
                }
            }
            // 422: the server refused the input (a document, a conflict with
            // its tables), as a status saying that another import changed a
            // table of this one does; anything else is the server's or the
            // connection's.
            Ok(ExitCode::from(
                if error.status == Some(422) || error.code == "TableChanged" {
                    1
                } else {
                    2
                },
            ))
        }
    }
}

/// The server's table listing (`GET /api/tables`): its tables and its
/// frame limit.
fn list_tables(http: &Http, url: &str) -> Result<serde_json::Value> {
    let (status, body) = http
        .call("GET", "/api/tables", b"")
        .map_err(anyhow::Error::msg)?;
    if status != 200 {
        // A 404 here is most often a URL with a path the server does not
        // have (`.../api`, a page's address).
        let hint = if status == 404 {
            format!(
                " (it has no {}/api/tables: give the address `snappack serve` prints, \
                 without a path such as /api)",
                url.trim_end_matches('/')
            )
        } else {
            String::new()
        };
        bail!(
            "{url} answered {status}: {}{hint}",
            String::from_utf8_lossy(&body)
        );
    }
    serde_json::from_slice(&body).with_context(|| format!("{url} did not list its tables as JSON"))
}

/// The tables of the server's listing (`GET /api/tables`) at `url`.
fn listed_tables(listing: &serde_json::Value, url: &str) -> Result<TargetTables> {
    serde_json::from_value(listing.clone())
        .with_context(|| format!("{url} listed its tables in another shape"))
}

/// What to do about import `id` after its upload failed with `error`, the
/// server (`base`) having acknowledged `acknowledged` frames; `None` when
/// the error says it all (a refused input: the server cancelled the import).
fn failed_upload_advice(
    id: &str,
    error: &UploadError,
    acknowledged: u64,
    base: &str,
) -> Option<String> {
    let cancel =
        format!("cancel import {id} (POST {base}/api/imports/{id}/cancel) or leave it to expire");
    // Told by a status: another import changed one of its tables, so its
    // finish would be refused whatever is sent.
    if error.code == "TableChanged" && error.status != Some(422) {
        return Some(format!(
            "upload again without --resume to start a new import, and {cancel}"
        ));
    }
    match error.status {
        None | Some(500..) => Some(format!("continue with --resume {id}")),
        // Its token changed while it was sending (a restart with another):
        // the import is open and has every frame acknowledged.
        Some(401) => Some(format!(
            "import {id} stays open: continue it with --resume {id} and the server's token"
        )),
        // Even one frame is over the server's limits: only smaller frames
        // go, which an import that has no frame yet can take.
        Some(413) if acknowledged == 0 => Some(format!(
            "the server takes smaller frames: continue with --resume {id} and a smaller --frame-size"
        )),
        Some(413) => Some(format!(
            "the server takes smaller frames: upload again with a smaller --frame-size, and {cancel}"
        )),
        _ => None,
    }
}

/// Tables listed when an import finishes, and of removals agreed to with
/// `--yes`; more are counted.
const LISTED_TABLES: usize = 20;

/// How sending ended.
enum Ended {
    /// The import is finished: the server's answer.
    Done(serde_json::Value),
    /// Packing found errors in the snapshot: its report.
    Invalid(Box<Report>),
    /// The server refused the upload, or the network failed too often.
    Failed(UploadError),
}

/// Lists what the import removes from the server's tables when it finishes
/// and tells whether to go ahead: with `--yes`; else by asking when `asks`
/// (a terminal); else refused, with how to agree.
fn agreed(removed: &[Removed], mode: ImportMode, yes: bool, asks: bool) -> Result<bool> {
    let documents: u64 = removed.iter().map(|r| r.table.documents).sum();
    let mut out = std::io::stderr().lock();
    writeln!(
        out,
        "snappack: in {mode} mode, this import removes {} from {} of the server when it finishes:",
        human::plural(documents, "document"),
        human::plural(removed.len() as u64, "table"),
    )?;
    // Every one when the user is to decide; the first few once agreed to (--yes).
    let listed = if yes { LISTED_TABLES } else { removed.len() };
    for r in removed.iter().take(listed) {
        let table = match r.table.component.as_str() {
            "" => r.table.name.clone(),
            component => format!("{component}/{}", r.table.name),
        };
        let documents = human::plural(r.table.documents, "document");
        match r.replaced {
            true => writeln!(
                out,
                "  {table}: its {documents}, replaced by the snapshot's"
            )?,
            false => writeln!(
                out,
                "  {table}: deleted with its {documents} (the snapshot does not have it)"
            )?,
        }
    }
    if let Some(more) = removed.len().checked_sub(listed).filter(|&n| n > 0) {
        writeln!(out, "  and {more} more")?;
    }
    if yes {
        return Ok(true);
    }
    if !asks {
        bail!("nothing was sent: give --yes to go ahead with these removals");
    }
    write!(out, "Go ahead? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// When the process is interrupted ([`on_interrupt`]), says first, once
/// `import` names the import being sent to, that it stays open and how to
/// continue it: the line that named it when it started may be far back by
/// then.
fn say_resume_on_interrupt(import: Arc<Mutex<Option<String>>>) {
    on_interrupt(move || {
        let import = import.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(id) = import {
            // Below the progress bar's line, which is cleared.
            if std::io::stderr().is_terminal() {
                say_raw!("\r\x1b[K");
            }
            say!("snappack: interrupted: import {id} stays open: continue it with --resume {id}");
        }
    });
}

/// The options by which targets `recorded` and `given` differ, as each was
/// given on the command line: `--component X` (or `no --component`), then
/// `--table T` (or `no --table`).
fn target_options(recorded: &ImportTarget, given: &ImportTarget) -> (String, String) {
    let mut said = (Vec::new(), Vec::new());
    if recorded.component != given.component {
        let component = |target: &ImportTarget| match target.component.as_str() {
            "" => "no --component (the root)".to_owned(),
            path => format!("--component {path}"),
        };
        said.0.push(component(recorded));
        said.1.push(component(given));
    }
    if recorded.table != given.table {
        let table = |target: &ImportTarget| match &target.table {
            Some(table) => format!("--table {table}"),
            None => "no --table".to_owned(),
        };
        said.0.push(table(recorded));
        said.1.push(table(given));
    }
    (said.0.join(" and "), said.1.join(" and "))
}

/// What to change for an upload targeting `given` to continue an import
/// started for `recorded`.
fn target_fix(recorded: &ImportTarget, given: &ImportTarget) -> String {
    let mut fixes = Vec::new();
    if recorded.component != given.component {
        fixes.push(match recorded.component.as_str() {
            "" => "leave out --component".to_owned(),
            path => format!("give --component {path}"),
        });
    }
    if recorded.table != given.table {
        fixes.push(match &recorded.table {
            Some(table) => format!("give --table {table}"),
            None => "leave out --table".to_owned(),
        });
    }
    fixes.join(" and ")
}

/// What a resumed upload needs of open import `id`.
struct OpenImport {
    mode: ImportMode,
    next_seq: u64,
    /// The stream's max frame size, once the server has its header.
    frame_size: Option<usize>,
    /// The label it was created with.
    label: Option<String>,
    /// What it targets, when the server recorded it (not before this was
    /// recorded, nor for an import created without saying it).
    target: Option<ImportTarget>,
    /// CRC-32 of the payloads of its frames before `next_seq`, when the
    /// server says it.
    prefix_crc32: Option<u32>,
    /// The refusal its finish would meet: a table it declared that another
    /// import changed since (`TableChanged`), for a moment before the
    /// server fails it.
    table_changed: Option<serde_json::Value>,
}

/// An import `--resume` named that is no longer open: nothing of the file
/// can be added to it.
struct ClosedImport {
    /// `finished`, `failed` or `cancelled`.
    state: String,
    /// Why it failed or was cancelled, as the server says it.
    error: Option<String>,
    /// The refusal that failed it, when another import changed a table of
    /// it (`TableChanged`).
    table_changed: Option<serde_json::Value>,
}

impl ClosedImport {
    /// Why import `id` cannot be continued with `file`, and what to do.
    fn refusal(&self, id: &str, file: &str) -> String {
        if let Some(changed) = &self.table_changed {
            return table_changed_refusal(
                id,
                changed,
                "failed: it could no longer finish",
                file,
                " (the server let go of what it held)",
            );
        }
        let why = self
            .error
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        match self.state.as_str() {
            "finished" => format!(
                "import {id} is finished: its tables are on the server, and nothing is left to \
                 continue. Nothing was sent: upload {file} without --resume to start a new \
                 import"
            ),
            state => {
                let state = match state {
                    "failed" => "failed".to_owned(),
                    "cancelled" => "was cancelled".to_owned(),
                    other => format!("is {other}"),
                };
                format!(
                    "import {id} {state}{why}: it cannot be continued. Nothing was sent: upload \
                     {file} without --resume to start a new import"
                )
            }
        }
    }
}

/// Why import `id`, which another import changed a table of (`changed`:
/// the refusal its finish meets), cannot be continued with `file`: it
/// `what`, then what to do, ending with `after`.
fn table_changed_refusal(
    id: &str,
    changed: &serde_json::Value,
    what: &str,
    file: &str,
    after: &str,
) -> String {
    format!(
        "import {id} {what}: {}: {} Nothing was sent: upload {file} without --resume to start \
         a new import{after}",
        changed["code"].as_str().unwrap_or("TableChanged"),
        changed["message"].as_str().unwrap_or_default(),
    )
}

/// Import `id`, as the server has it: open, or closed (what `--resume`
/// refuses); an error when the server does not tell (an unknown id, say).
fn open_import(http: &Http, id: &str) -> Result<Result<OpenImport, ClosedImport>> {
    let (status, body) = http
        .call("GET", &import_path(id), b"")
        .map_err(anyhow::Error::msg)?;
    let import: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let table_changed = Some(import["tableChanged"].clone()).filter(|c| c.is_object());
    let state = match (status, import["state"].as_str()) {
        (200, Some(state)) => state.to_owned(),
        (404, _) if import["code"] == "UnknownImport" => bail!(
            "{} has no import {id}: give the id an upload printed when it started (\
             `import ID started`), or upload without --resume to start a new import",
            http.base
        ),
        _ => bail!(
            "cannot continue import {id}: the server answered {status}: {}",
            String::from_utf8_lossy(&body)
        ),
    };
    if state != "open" {
        return Ok(Err(ClosedImport {
            state,
            error: import["error"].as_str().map(str::to_owned),
            table_changed,
        }));
    }
    let mode = serde_json::from_value(import["mode"].clone())
        .with_context(|| format!("the server gave import {id} an unknown mode"))?;
    Ok(Ok(OpenImport {
        mode,
        next_seq: import["nextSeq"].as_u64().unwrap_or(0),
        frame_size: import["frameSize"].as_u64().map(|size| size as usize),
        label: import["label"].as_str().map(str::to_owned),
        target: serde_json::from_value(import["target"].clone()).ok(),
        prefix_crc32: import["prefixCrc32"]
            .as_u64()
            .and_then(|crc| u32::try_from(crc).ok()),
        table_changed,
    }))
}

/// The input as an import's label records it: its name, size and
/// fingerprint (of its first and last MiB). Leaves it read from the start.
fn identify(input: &mut Input, name: &str) -> Result<FileIdentity> {
    let size = input.len();
    let span = FINGERPRINT_SPAN.min(size);
    let mut read_at = |offset: u64| -> std::io::Result<Vec<u8>> {
        let mut bytes = vec![0; span as usize];
        input.seek(SeekFrom::Start(offset))?;
        input.read_exact(&mut bytes)?;
        Ok(bytes)
    };
    let head = read_at(0).with_context(|| format!("cannot read {name}"))?;
    let tail = read_at(size - span).with_context(|| format!("cannot read {name}"))?;
    input.seek(SeekFrom::Start(0))?;
    Ok(FileIdentity::of(name, size, &head, &tail))
}

/// Removes the packed stream when the upload ends (where it could not be
/// unlinked while open).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Progress on stderr, when it is a terminal: how much of the input the
/// server has, the stream bytes sent (of how many, once packing is done),
/// the rate and the time left.
struct Bar {
    enabled: bool,
    last: Option<Instant>,
    input_size: u64,
    /// The share of the input the server had at the first acknowledgement
    /// this upload saw, and when: the time left is measured from there.
    first: Option<(f64, Instant)>,
}

impl Bar {
    fn new(wanted: bool, input_size: u64) -> Self {
        Bar {
            enabled: wanted && std::io::stderr().is_terminal(),
            last: None,
            input_size,
            first: None,
        }
    }

    /// `sent` stream bytes acknowledged, of `total` once all are packed;
    /// `input_sent`: how far into the input the acknowledged frames reach.
    fn update(&mut self, sent: u64, total: Option<u64>, input_sent: Option<u64>, started: Instant) {
        let share = input_sent.map(|input| match self.input_size {
            0 => 1.0,
            size => input as f64 / size as f64,
        });
        if let (None, Some(share)) = (self.first, share) {
            self.first = Some((share, Instant::now()));
        }
        if !self.enabled
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let rate = sent as f64 / started.elapsed().as_secs_f64().max(0.001);
        let left = match (total, share, self.first) {
            (Some(total), _, _) if rate > 0.0 => Some(total.saturating_sub(sent) as f64 / rate),
            // While packing goes on, from the pace of the input's share.
            (None, Some(share), Some((first, at))) if share > first => {
                Some(at.elapsed().as_secs_f64() * (1.0 - share) / (share - first))
            }
            _ => None,
        };
        let percent = share.map_or(String::new(), |share| {
            format!("{:.0}% of the input  ", (100.0 * share).floor())
        });
        let sent = match total {
            Some(total) => format!("{} / {}", human::bytes(sent), human::bytes(total)),
            None => format!("{} sent", human::bytes(sent)),
        };
        let left = left.map_or(String::new(), |s| format!("  {s:.0} s left"));
        let line = format!("{percent}{sent}  {}/s{left}", human::bytes(rate as u64));
        // Never wider than the terminal: a wrapped line is redrawn below itself.
        let room = super::terminal_width().saturating_sub(1);
        say_raw!("\r\x1b[K{}", line.chars().take(room).collect::<String>());
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.enabled && self.last.is_some() {
            say_raw!("\r\x1b[K");
        }
    }
}

/// A frame of the packed stream: where it is in the stream's file, and how
/// far into the input the walk was when it was written.
struct PackedFrame {
    start: u64,
    end: u64,
    input: u64,
}

/// The packed stream's writer: writes to the file and, each time a frame is
/// complete in it, sends the frame's end offset and input position to the sender.
struct FrameTap {
    file: File,
    ready: SyncSender<(u64, u64)>,
    frames: FrameEnds,
    read_to: InputPosition,
    ends: Vec<u64>,
}

impl FrameTap {
    /// A writer of the stream from frame `first` on, of a walk at `read_to`.
    fn new(file: File, ready: SyncSender<(u64, u64)>, first: u64, read_to: InputPosition) -> Self {
        FrameTap {
            file,
            ready,
            frames: FrameEnds::from_frame(first),
            read_to,
            ends: Vec::new(),
        }
    }
}

impl Write for FrameTap {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(buf)?;
        self.frames.feed(buf, &mut self.ends);
        for end in self.ends.drain(..) {
            self.ready
                .send((end, self.read_to.get()))
                .map_err(|_| std::io::Error::other("the upload stopped"))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resume with other options than the import's names only those that
    /// differ, and what to give instead.
    #[test]
    fn a_target_that_differs_is_said_by_its_options() {
        let target = |component: &str, table: Option<&str>| ImportTarget {
            component: component.into(),
            table: table.map(Into::into),
        };
        let started = target("", Some("items"));
        let given = target("", Some("other"));
        assert_eq!(
            target_options(&started, &given),
            ("--table items".into(), "--table other".into())
        );
        assert_eq!(target_fix(&started, &given), "give --table items");
        let started = target("billing", None);
        let given = target("", Some("t"));
        assert_eq!(
            target_options(&started, &given),
            (
                "--component billing and no --table".into(),
                "no --component (the root) and --table t".into()
            )
        );
        assert_eq!(
            target_fix(&started, &given),
            "give --component billing and leave out --table"
        );
    }

    fn error(code: &str, status: Option<u16>) -> UploadError {
        serde_json::from_value(serde_json::json!({"code": code, "message": "m", "status": status}))
            .unwrap()
    }

    #[test]
    fn a_failed_upload_says_what_to_do_with_its_import() {
        let advice = |code, status, acknowledged| {
            failed_upload_advice("i1", &error(code, status), acknowledged, "http://h")
        };
        assert_eq!(
            advice("NetworkError", None, 3).unwrap(),
            "continue with --resume i1"
        );
        assert_eq!(
            advice("Internal", Some(503), 3).unwrap(),
            "continue with --resume i1"
        );
        // Found in a status while retrying: nothing can finish it.
        let changed = advice("TableChanged", Some(200), 3).unwrap();
        assert!(changed.starts_with("upload again without --resume to start a new import"));
        assert!(changed.ends_with(
            "cancel import i1 (POST http://h/api/imports/i1/cancel) or leave it to expire"
        ));
        assert!(advice("TableChanged", None, 3)
            .unwrap()
            .contains("without --resume"));
        assert!(advice("RequestTooLarge", Some(413), 0)
            .unwrap()
            .contains("--resume i1 and a smaller"));
        assert!(advice("RequestTooLarge", Some(413), 2)
            .unwrap()
            .contains("upload again with a smaller"));
        // The server's token changed meanwhile: the import is open.
        assert_eq!(
            advice("Unauthorized", Some(401), 3).unwrap(),
            "import i1 stays open: continue it with --resume i1 and the server's token"
        );
        // A refused input: the server cancelled the import; the error says it all.
        assert_eq!(advice("DuplicateId", Some(422), 3), None);
        assert_eq!(advice("TableChanged", Some(422), 3), None);
    }
}
