//! Test helpers shared by the server's integration tests: a fresh store on
//! every backend the machine has (SQLite always; PostgreSQL when
//! `SNAPPACK_TEST_POSTGRES_URL` is set, and required when `CI` is set).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use snappack::server::store::{PostgresStore, SqliteStore, Store};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test of this run (or an earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000_000
    )
}

/// A `snappack serve` child process, killed when dropped: a failing test
/// must not leave it running (it holds the test's output open).
pub struct ServeProcess(Child);

impl std::ops::Deref for ServeProcess {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for ServeProcess {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        // Already ended when a test killed it itself.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `snappack serve` as a child process listening on `listen` (a port of 0
/// picks a free one) with `token`; returns it and the address it printed.
pub fn spawn_serve(
    database: &str,
    data_dir: &Path,
    listen: &str,
    token: &str,
) -> (ServeProcess, SocketAddr) {
    let (child, line) = start_serve(database, data_dir, listen, token);
    let addr = line
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr)
}

/// `snappack serve` started as [`spawn_serve`] starts it, and the first
/// line of its standard error: the address it serves, or why it refused.
pub fn start_serve(
    database: &str,
    data_dir: &Path,
    listen: &str,
    token: &str,
) -> (ServeProcess, String) {
    start_serve_with(database, data_dir, listen, token, &[])
}

/// [`start_serve`] with `options` too.
pub fn start_serve_with(
    database: &str,
    data_dir: &Path,
    listen: &str,
    token: &str,
    options: &[&str],
) -> (ServeProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_snappack"))
        .args(["serve", "--no-www", "--listen", listen, "--token", token])
        .args(options)
        .arg("--database")
        .arg(database)
        .arg("--data-dir")
        .arg(data_dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let line = first_stderr_line(&mut child);
    (ServeProcess(child), line)
}

/// The first line a child writes to its piped standard error.
pub fn first_stderr_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().expect("stderr piped"))
        .read_line(&mut line)
        .unwrap();
    line
}

/// The first line of the child's standard error that has `needle`.
pub fn stderr_line_with(child: &mut std::process::Child, needle: &str) -> String {
    let stderr = BufReader::new(child.stderr.as_mut().expect("stderr piped"));
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains(needle) {
            return line;
        }
    }
    panic!("no line of standard error has '{needle}'");
}

/// A fresh directory under the target folder.
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The PostgreSQL URL for tests, if any; panics in CI when it is missing.
pub fn postgres_url() -> Option<String> {
    match std::env::var("SNAPPACK_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!(
            "CI is set but SNAPPACK_TEST_POSTGRES_URL is not: start the cluster with \
             `eval \"$(scripts/pg-test-cluster.sh start)\"`"
        ),
        _ => {
            eprintln!("SNAPPACK_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped");
            None
        }
    }
}

/// A PostgreSQL URL whose connections use a fresh, empty schema.
pub fn postgres_schema_url(url: &str) -> String {
    let schema = unique("t");
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// A `--database` value of a fresh database per backend: `("sqlite", path)`
/// and, when available, `("postgres", url)`.
pub fn databases() -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "sqlite",
        temp_dir("sqlite")
            .join("snappack.db")
            .to_string_lossy()
            .into_owned(),
    )];
    if let Some(url) = postgres_url() {
        out.push(("postgres", postgres_schema_url(&url)));
    }
    out
}

/// A fresh store per backend.
pub fn stores() -> Vec<(&'static str, Box<dyn Store>)> {
    databases()
        .into_iter()
        .map(|(name, db)| {
            let store: Box<dyn Store> = if name == "sqlite" {
                Box::new(SqliteStore::open(&db).unwrap())
            } else {
                Box::new(PostgresStore::connect(&db).unwrap())
            };
            (name, store)
        })
        .collect()
}

use snappack::convex::value::ValueRules;
use snappack::migration::{Decoder, Encoder, EncoderConfig, FileStart, Header, TableDecl, Totals};
use snappack::report::NumberSource;

/// A table of a test stream.
#[derive(Clone, Debug)]
pub struct StreamTable {
    pub component: String,
    pub name: String,
    pub number: Option<u32>,
    /// The value rules the stream declares for it.
    pub rules: ValueRules,
    pub lines: Vec<String>,
}

/// A storage file of a test stream: component, `_storage` id, bytes.
#[derive(Clone, Debug)]
pub struct StreamFile {
    pub component: String,
    pub id: String,
    pub data: Vec<u8>,
}

/// Encodes tables and files into a stream with frames of at most `frame_size` bytes.
pub fn encode(tables: &[StreamTable], files: &[StreamFile], frame_size: usize) -> Vec<u8> {
    let header = Header::new("snappack tests", 0, Totals::default());
    let config = EncoderConfig {
        max_frame_size: frame_size,
        level: 1,
        ..EncoderConfig::default()
    };
    let mut encoder = Encoder::new(Vec::new(), config, header).unwrap();
    for t in tables {
        let index = encoder
            .table(TableDecl {
                component: t.component.clone(),
                name: t.name.clone(),
                number: t.number,
                number_source: if t.number.is_some() {
                    NumberSource::Tables
                } else {
                    NumberSource::Unassigned
                },
                rules: t.rules,
                expected_documents: t.lines.len() as u64,
            })
            .unwrap();
        for line in &t.lines {
            encoder.document(index, line.as_bytes()).unwrap();
        }
        encoder.end_table(index).unwrap();
    }
    for f in files {
        encoder
            .file(FileStart {
                component: f.component.clone(),
                id: f.id.clone(),
                content_type: None,
                size: f.data.len() as u64,
            })
            .unwrap();
        for chunk in f.data.chunks(1000) {
            encoder.file_data(chunk).unwrap();
        }
        encoder.end_file().unwrap();
    }
    encoder.finish().unwrap().0
}

/// The byte ranges of a stream's frames, in order; the first includes the stream header.
pub fn frames(stream: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut start = 0;
    while pos < stream.len() {
        let step = decoder.feed(&stream[pos..]).unwrap();
        pos += step.consumed;
        if let Some(frame) = step.frame {
            let end = (frame.offset + frame.len) as usize;
            out.push(start..end);
            start = end;
        }
    }
    out
}

/// A table of `n` documents with ids of table `number` (internal ids from
/// `seed`), declared `"uniform"` as Convex exports it.
pub fn numbered_table(name: &str, number: u32, n: usize, seed: u8) -> StreamTable {
    StreamTable {
        component: String::new(),
        name: name.into(),
        number: Some(number),
        rules: ValueRules::Uniform,
        lines: (0..n)
            .map(|i| {
                let mut internal = [seed; 16];
                internal[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let id = snappack::convex::DocumentId::new(number, internal);
                format!(r#"{{"_id":"{id}","_creationTime":1700000000000.5,"i":{i},"text":"document {i} of {name}"}}"#)
            })
            .collect(),
    }
}

/// A minimal HTTP/1.1 response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP request over a fresh connection (`Connection: close`).
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap().trim(), 16)
                .unwrap();
            rest = &rest[end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A server running in this process on a loopback port, stopped on drop.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server with `config` (its `listen` is replaced by an ephemeral loopback port).
    pub fn start(mut config: snappack::server::ServeConfig) -> TestServer {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let server = snappack::server::Server::bind(config).await.unwrap();
                ready_tx
                    .send((server.local_addr().unwrap(), server.token().to_owned()))
                    .unwrap();
                server
                    .run(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (addr, token) = ready_rx.recv().unwrap();
        TestServer {
            addr,
            token,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// A request with the bearer token.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        let auth = format!("Bearer {}", self.token);
        http(self.addr, method, path, &[("Authorization", &auth)], body).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Collects what the archive holds: each table's lines and each file's bytes.
#[derive(Default)]
pub struct Archive {
    pub plan: Option<snappack::validate::Plan>,
    pub lines: std::collections::BTreeMap<usize, Vec<String>>,
    pub files: std::collections::BTreeMap<usize, Vec<u8>>,
}

impl snappack::validate::Sink for Archive {
    fn begin(&mut self, plan: &snappack::validate::Plan) -> std::io::Result<()> {
        self.plan = Some(plan.clone());
        Ok(())
    }
    fn document(&mut self, table: usize, line: &[u8], _valid: bool) -> std::io::Result<()> {
        self.lines
            .entry(table)
            .or_default()
            .push(String::from_utf8(line.to_vec()).unwrap());
        Ok(())
    }
    fn file_chunk(&mut self, file: usize, chunk: &[u8]) -> std::io::Result<()> {
        self.files.entry(file).or_default().extend_from_slice(chunk);
        Ok(())
    }
}

impl Archive {
    /// Reads a snapshot ZIP.
    pub fn read(zip: &[u8]) -> Archive {
        let mut archive = Archive::default();
        let (report, _) = snappack::validate::walk(
            std::io::Cursor::new(zip),
            "snapshot.zip",
            &snappack::validate::Options::default(),
            &mut archive,
            &mut |_| true,
        );
        assert!(report.valid, "{:?}", report.errors);
        archive
    }

    /// Asserts that the database at `database` and the files under `data_dir`
    /// hold exactly this archive's tables and files.
    pub fn assert_imported(&self, database: &str, data_dir: &std::path::Path) {
        let store = snappack::server::store::open(database).unwrap();
        let plan = self.plan.as_ref().unwrap();
        for (index, table) in plan.tables.iter().enumerate() {
            let mut expected = self.lines.get(&index).cloned().unwrap_or_default();
            expected.sort();
            let mut stored: Vec<String> = store
                .documents(&table.component, &table.name)
                .unwrap()
                .unwrap_or_else(|| panic!("{}/{} missing", table.component, table.name))
                .into_iter()
                .map(|d| d.json)
                .collect();
            stored.sort();
            assert_eq!(stored, expected, "{}/{}", table.component, table.name);
        }
        let files = snappack::server::files::FileStore::open(data_dir.join("files")).unwrap();
        for (index, bytes) in &self.files {
            use sha2::Digest;
            let sha: [u8; 32] = sha2::Sha256::digest(bytes).into();
            assert_eq!(
                &std::fs::read(files.path(&sha)).unwrap(),
                bytes,
                "file {index}"
            );
        }
        assert_eq!(self.files.len(), plan.files.len());
        assert_eq!(store.hidden_tables().unwrap(), 0);
    }
}
