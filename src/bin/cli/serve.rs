//! `snappack serve`: the import server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Args;
use snappack::migration::{
    FRAME_HEADER_LEN, MAX_FRAME_SIZE, MIN_PACK_FRAME_SIZE, STREAM_HEADER_LEN,
};
use snappack::server::{serve, ServeConfig, DEFAULT_EXPIRE_AFTER, DEFAULT_STOP_TIMEOUT, TOKEN_ENV};

/// Settings of `snappack serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on: an IP address or a host name (`localhost`), and a port.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    listen: SocketAddr,
    /// Database: `postgres://user@host:port/db` for PostgreSQL, or an SQLite
    /// file (default: `snappack.db` in the data folder).
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    database: Option<String>,
    /// Folder for staging logs, stored files and the admin token; it belongs to the first
    /// database served from it, and another is refused (give each its own folder), as the
    /// database refuses another folder than the first it was served from.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Folder of the web page served at `/`.
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// Serve no web page.
    #[arg(long, conflicts_with = "www")]
    no_www: bool,
    /// Origin allowed to call the API from a browser, as the browser sends
    /// it: `scheme://host[:port]`, such as https://app.example.com (repeat;
    /// `*` for any).
    #[arg(long = "allow-origin", value_name = "ORIGIN", value_parser = parse_origin)]
    allow_origins: Vec<String>,
    /// Admin token (default: $SNAPPACK_TOKEN, which may not be set but empty, else the one
    /// stored in the data folder, else a new one, stored and printed once).
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    token: Option<String>,
    /// Largest frame (uncompressed payload) a stream may use, in bytes: from
    /// 4096 (the smallest frames snappack packs) to 67108864 (the format's
    /// bound); over 67108820, raise --max-request-bytes too.
    #[arg(long, default_value_t = ServeConfig::default().max_frame_size, value_parser = parse_max_frame_size)]
    max_frame_size: usize,
    /// Largest request body, in bytes: at least one frame of `--max-frame-size`
    /// with its headers (44 bytes more).
    #[arg(long, default_value_t = ServeConfig::default().max_request_bytes)]
    max_request_bytes: usize,
    /// Cancel an open import after this many hours without a frame (0: never;
    /// at most 876000, a hundred years).
    #[arg(long, default_value_t = DEFAULT_EXPIRE_AFTER.as_secs() / 3600,
          value_parser = clap::value_parser!(u64).range(0..=876_000))]
    expire_after_hours: u64,
    /// Connections served at once (at least 1); more wait until one closes.
    #[arg(long, default_value_t = ServeConfig::default().max_connections,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// Seconds (1 to 86400) to wait, once told to stop (Ctrl-C, SIGTERM), for the requests
    /// under way and their database writes, before exiting anyway (status
    /// 1; a write cut off is rolled back, and written again from the
    /// staging log at the next start).
    #[arg(long, default_value_t = DEFAULT_STOP_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    stop_timeout: u64,
}

/// `--listen`: an IP address and port, or a host name and port, which
/// listens on the name's first IPv4 address (else its first one), as
/// `localhost:8080` listens where `http://localhost:8080` reaches.
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| {
            format!("give an address and port, such as 127.0.0.1:8080 or localhost:8080 ({e})")
        })?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{s} names no address to listen on"))
}

/// `--allow-origin`: `*`, or an origin as a browser sends it in its
/// `Origin` header, which the server compares byte for byte: one with a
/// path or a trailing `/`, or with capitals (browsers send scheme and host
/// in lower case), would match no request, and the page's calls would fail
/// in the browser without a word from the server.
fn parse_origin(s: &str) -> Result<String, String> {
    if s == "*" || s == "null" {
        return Ok(s.to_owned());
    }
    let example = "give it as a browser sends it: scheme://host[:port], such as https://app.example.com or http://localhost:8080";
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!("{s:?} is not an origin: {example}"));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let host = rest.strip_suffix('/').unwrap_or(rest);
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || "/?#@\\".contains(c));
    if !scheme_ok || !host_ok {
        return Err(format!(
            "{s:?} is not an origin (an origin has no path, query or user): {example}"
        ));
    }
    // Browsers send scheme and host in lower case, and leave out the
    // scheme's default port.
    let mut sent = format!("{scheme}://{host}").to_ascii_lowercase();
    if let Some(stripped) = [("http://", ":80"), ("https://", ":443")]
        .iter()
        .find(|(scheme, port)| sent.starts_with(scheme) && sent.ends_with(port))
        .map(|(_, port)| sent[..sent.len() - port.len()].to_owned())
    {
        sent = stripped;
    }
    if sent != s {
        return Err(format!(
            "a browser sends this origin as {sent}, which is what to give: the server compares \
             them byte for byte"
        ));
    }
    Ok(sent)
}

/// `--max-frame-size`: below what snappack packs, every stream would be
/// refused; past the format's bound, the decoder would hold streams to that
/// bound anyway.
fn parse_max_frame_size(s: &str) -> Result<usize, String> {
    let size: usize = s.parse().map_err(|e| format!("{e}"))?;
    let (min, max) = (MIN_PACK_FRAME_SIZE, MAX_FRAME_SIZE);
    if (min..=max).contains(&size) {
        Ok(size)
    } else {
        Err(format!(
            "the largest frame must be from {min} bytes (the smallest frames snappack packs) to {max} (the format's bound)"
        ))
    }
}

/// The token to serve with, if one is given: `--token` (never empty), else
/// `$SNAPPACK_TOKEN` (`env`) when it is set. A variable set but empty is
/// refused, as `upload` refuses it, rather than taken for unset (the server
/// would then serve with its stored token, or a new one, which the client
/// holding the empty variable would not have); one that no request could
/// carry is refused naming the variable.
fn serve_token(given: Option<String>, env: Option<std::ffi::OsString>) -> Result<Option<String>> {
    if given.is_some() {
        return Ok(given);
    }
    super::upload::env_token(
        env,
        &format!(
            "{TOKEN_ENV} is set, but empty: set it to the token to serve with, or unset it to \
             serve with the one in the data folder's token file (made at the first start)"
        ),
    )
}

/// Runs the server until Ctrl-C.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    // A request carries whole frames, frame 0 with the stream header: under
    // that, no frame of the size allowed could ever be received.
    let one_frame = STREAM_HEADER_LEN + FRAME_HEADER_LEN + args.max_frame_size;
    if args.max_request_bytes < one_frame {
        bail!(
            "--max-request-bytes {} cannot hold one frame of --max-frame-size {} with its headers \
             ({one_frame} bytes): raise --max-request-bytes or lower --max-frame-size",
            args.max_request_bytes,
            args.max_frame_size
        );
    }
    // The default `www` is relative: started outside the repository, it is
    // not there, and `/` would answer 404 without a word.
    if !args.no_www && !args.www.is_dir() {
        say!(
            "snappack: warning: no web page folder at {}: / will answer 404 (give --www DIR, or --no-www)",
            std::path::absolute(&args.www).unwrap_or(args.www.clone()).display()
        );
    }
    let config = ServeConfig {
        listen: args.listen,
        database: args.database,
        data_dir: args.data_dir,
        www: (!args.no_www).then_some(args.www),
        allow_origins: args.allow_origins,
        token: serve_token(args.token, std::env::var_os(TOKEN_ENV))?,
        max_frame_size: args.max_frame_size,
        max_request_bytes: args.max_request_bytes,
        expire_after: (args.expire_after_hours > 0)
            .then(|| Duration::from_secs(args.expire_after_hours * 3600)),
        max_connections: args.max_connections,
        stop_timeout: Duration::from_secs(args.stop_timeout),
        ..ServeConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}
