//! The HTTP API (`docs/PROTOCOL.md`): axum routes over [`Imports`], bearer
//! token authentication, CORS for the page's origins, and the static page.

use std::path::{Component, Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::imports::{Imports, ImportsError};
use super::store::{ImportMode, ImportState, ImportsQuery};
use crate::client::{ImportTarget, MAX_LABEL_LEN};

/// What the handlers share.
pub(super) struct AppState {
    pub imports: Arc<Imports>,
    pub token: String,
    pub allow_origins: Vec<String>,
    pub www: Option<PathBuf>,
}

type Shared = Arc<AppState>;

/// The application: `/api/...` behind the token, the page at `/`, CORS around both.
pub(super) fn router(state: Shared, max_request_bytes: usize, body_timeout: Duration) -> Router {
    let api = Router::new()
        .route("/api/tables", get(list_tables))
        .route("/api/imports", post(create_import).get(list_imports))
        .route(
            "/api/imports/{id}",
            get(import_status).delete(cancel_import),
        )
        .route("/api/imports/{id}/frames", post(append_frames))
        .route("/api/imports/{id}/finish", post(finish_import))
        .route("/api/imports/{id}/cancel", post(cancel_import))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(max_request_bytes))
        .layer(middleware::from_fn(move |request: Request, next| {
            let request = request.map(|body| Body::new(IdleBody::new(body, body_timeout)));
            api_errors(max_request_bytes, request, next)
        }));
    Router::new()
        .merge(api)
        .fallback(static_file)
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

/// A request body that fails when no bytes come for `idle`: a client that
/// declares more than it sends would otherwise hold its request (and the
/// memory read so far) for good. The time counts between pieces, so a slow
/// link that keeps sending is never cut off.
struct IdleBody {
    inner: Body,
    idle: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl IdleBody {
    fn new(inner: Body, idle: Duration) -> Self {
        IdleBody {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }
}

impl http_body::Body for IdleBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        use std::future::Future as _;
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.idle;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(format!(
                    "no bytes of the body came for {} s",
                    this.idle.as_secs()
                ))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A static file as a response body, read a piece at a time, so that a
/// large file in `--www` is never held in memory whole. It ends at the
/// length the file had when opened; a file cut short meanwhile is an error.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
}

impl FileBody {
    /// Bytes read at a time.
    const PIECE: usize = 256 << 10;

    fn new(file: tokio::fs::File, len: u64) -> Self {
        FileBody {
            file,
            remaining: len,
            buf: vec![0; Self::PIECE.min(len as usize)],
        }
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        use tokio::io::AsyncRead as _;
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = this.buf.len().min(this.remaining as usize);
        let mut piece = tokio::io::ReadBuf::new(&mut this.buf[..want]);
        match std::pin::Pin::new(&mut this.file).poll_read(cx, &mut piece) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if piece.filled().is_empty() => Poll::Ready(Some(Err(
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file was cut short"),
            ))),
            Poll::Ready(Ok(())) => {
                let data = Bytes::copy_from_slice(piece.filled());
                this.remaining -= data.len() as u64;
                Poll::Ready(Some(Ok(http_body::Frame::data(data))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

/// Equal in time whatever the bytes (the length is not secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// `400 BadRequest`, saying what is wrong with the request.
fn bad_request(message: String) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        json!({"code": "BadRequest", "message": message}),
    )
}

async fn authenticate(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110, section 11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim_start_matches(' '));
    match given {
        Some(token) if constant_time_eq(token.as_bytes(), state.token.as_bytes()) => {
            next.run(request).await
        }
        _ => {
            let mut answer = error(
                StatusCode::UNAUTHORIZED,
                json!({"code": "Unauthorized", "message": "missing or wrong bearer token: send `Authorization: Bearer TOKEN` with the server's admin token (its --token, $SNAPPACK_TOKEN, or the token file in its data folder)"}),
            );
            // RFC 9110, section 11.6.1: a 401 names the scheme it takes.
            answer
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            answer
        }
    }
}

/// The largest refused body read to its end before the refusal: a
/// client still sending when the connection closes gets a reset instead of
/// the answer (a frame too large for `--max-request-bytes`, say, then looks
/// like a network failure). Larger ones are refused without reading them.
const MAX_DRAINED_BYTES: u64 = 64 << 20;

/// How long a refused body may take to arrive before it is refused anyway.
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Reads `body` to its end and throws it away, for at most [`DRAIN_TIME`].
async fn drain(mut body: Body) {
    use http_body::Body as _;
    let read = async {
        while let Some(Ok(_)) =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
        {}
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

/// Every API error as JSON with `code` and `message`, as PROTOCOL says, the
/// framework's own refusals too (a bad query string, a body over the limit,
/// a method a path does not take); and a body declared over the limit is
/// refused without being kept (read and thrown away, up to
/// [`MAX_DRAINED_BYTES`], so that the client reads the refusal).
async fn api_errors(max_request_bytes: usize, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = declared.filter(|&length| length > max_request_bytes as u64) {
        if length <= MAX_DRAINED_BYTES {
            drain(request.into_body()).await;
        }
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"code": "RequestTooLarge", "message": format!("the request body is {length} bytes, over the limit of {max_request_bytes} (--max-request-bytes)")}),
        );
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let body = response.into_body();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::PAYLOAD_TOO_LARGE => "RequestTooLarge",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        _ => "HttpError",
    };
    let message = match text.is_empty() {
        // A body without a length, found over the limit while it was read.
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the request body is over the limit of {max_request_bytes} bytes (--max-request-bytes)"
        ),
        // The framework says only "Method Not Allowed"; the router adds the
        // `Allow` header after this layer, so it is named, not copied.
        _ if status == StatusCode::METHOD_NOT_ALLOWED => format!(
            "{path} does not take {method}: the answer's Allow header lists the methods it takes"
        ),
        true => status.canonical_reason().unwrap_or("error").to_owned(),
        false => text,
    };
    error(status, json!({"code": code, "message": message}))
}

async fn cors(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .filter(|origin| {
            state
                .allow_origins
                .iter()
                .any(|allowed| allowed == "*" || origin.to_str().is_ok_and(|o| o == allowed))
        })
        .cloned();
    let preflight = request.method() == Method::OPTIONS;
    let mut response = match (&origin, preflight) {
        (Some(_), true) => StatusCode::NO_CONTENT.into_response(),
        // A page of another origin asks before its call: say why it may not
        // (the browser shows the page only a CORS failure, the network
        // panel this), rather than ask it for the token a preflight never has.
        (None, true)
            if request
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) =>
        {
            let asking = request
                .headers()
                .get(header::ORIGIN)
                .map_or("(none)".into(), |o| {
                    String::from_utf8_lossy(o.as_bytes()).into_owned()
                });
            error(
                StatusCode::FORBIDDEN,
                json!({"code": "OriginNotAllowed", "message": format!(
                    "pages of origin {asking} may not call this server: start snappack serve \
                     with --allow-origin {asking} to let them"
                )}),
            )
        }
        _ => next.run(request).await,
    };
    let headers = response.headers_mut();
    if !state.allow_origins.is_empty() {
        // Whether an answer allows its origin depends on the origin, allowed
        // or not: a cache must not serve one origin's answer to another.
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
    }
    response
}

/// Runs blocking import code off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ImportsError> + Send + 'static,
) -> Result<T, ImportsError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ImportsError::Internal(format!("task failed: {e}"))))
}

impl IntoResponse for ImportsError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            ImportsError::Unknown(_) => error(
                StatusCode::NOT_FOUND,
                json!({"code": "UnknownImport", "message": message}),
            ),
            ImportsError::NotOpen { state, .. } => error(
                StatusCode::CONFLICT,
                json!({"code": "ImportNotOpen", "message": message, "state": state}),
            ),
            ImportsError::Sequence { expected, .. } => error(
                StatusCode::CONFLICT,
                json!({"code": "SequenceMismatch", "message": message, "expectedSeq": expected}),
            ),
            ImportsError::Incomplete { expected } => error(
                StatusCode::CONFLICT,
                json!({"code": "StreamIncomplete", "message": message, "expectedSeq": expected}),
            ),
            ImportsError::Frame { seq, error: e } => {
                let status = if e.code() == "FrameTooLarge" {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                error(
                    status,
                    json!({"code": e.code(), "message": message, "seq": seq, "expectedSeq": seq, "offset": e.offset()}),
                )
            }
            ImportsError::Rejected(r) => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"code": r.code, "message": r.message, "component": r.component,
                       "table": r.table, "line": r.line, "field": r.field, "seq": r.seq, "expectedSeq": r.seq}),
            ),
            ImportsError::Truncated { seq, .. } => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"code": "Truncated", "message": message, "seq": seq, "expectedSeq": seq}),
            ),
            ImportsError::Refused(e) => {
                let mut body = json!({"code": e.code, "message": e.message, "component": e.component, "table": e.table});
                // A refusal about one document names it as a rejected frame does.
                if let Some(line) = e.line {
                    body["line"] = json!(line);
                    body["field"] = json!("_id");
                }
                error(StatusCode::UNPROCESSABLE_ENTITY, body)
            }
            // The server is stopping: the import resumes on the one that
            // holds the database now, or on this one started again.
            ImportsError::Halted(_) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"code": "DatabaseInUse", "message": message}),
            ),
            // Only a start reopens under other limits; a request cannot meet it.
            ImportsError::OverLimit { .. }
            | ImportsError::Internal(_)
            | ImportsError::StoreRefused(_) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"code": "Internal", "message": message}),
            ),
        }
    }
}

async fn list_tables(State(state): State<Shared>) -> Result<Response, ImportsError> {
    let imports = state.imports.clone();
    let max_frame_size = imports.limits().max_frame_size;
    let tables = blocking(move || Ok(imports.store().tables()?)).await?;
    // The frame limit too: clients read this listing before they pack, and
    // pack frames no larger.
    Ok(Json(json!({ "tables": tables, "maxFrameSize": max_frame_size })).into_response())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateImport {
    #[serde(default)]
    mode: ImportMode,
    /// The client's label, e.g. a fingerprint of the file, to find the import again.
    #[serde(default)]
    label: Option<String>,
    /// What the import targets (its component, a table file's table).
    #[serde(default)]
    target: Option<ImportTarget>,
}

/// `POST /api/imports`: the body is JSON whatever its content type; empty means the defaults.
async fn create_import(State(state): State<Shared>, body: Bytes) -> Result<Response, ImportsError> {
    let request: CreateImport = if body.iter().all(u8::is_ascii_whitespace) {
        CreateImport::default()
    } else {
        // An object: serde would also take the fields in order from an array.
        let object = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body);
        // serde words a mode of another type as "expected string or map".
        if let Some(mode) = object
            .as_ref()
            .ok()
            .and_then(|o| o.get("mode"))
            .filter(|mode| !mode.is_string())
        {
            return Ok(bad_request(format!(
                "bad import request: mode must be one of \"requireEmpty\", \"append\", \"replace\", \"replaceAll\" (or left out), not {mode}"
            )));
        }
        match object.and_then(|o| serde_json::from_value(serde_json::Value::Object(o))) {
            Ok(request) => request,
            Err(e) => return Ok(bad_request(format!("bad import request: {e}"))),
        }
    };
    if request
        .label
        .as_ref()
        .is_some_and(|l| l.len() > MAX_LABEL_LEN)
    {
        return Ok(bad_request(format!(
            "label is longer than {MAX_LABEL_LEN} bytes"
        )));
    }
    if let Some(why) = request.target.as_ref().and_then(|t| t.check().err()) {
        return Ok(bad_request(format!("bad import target: {why}")));
    }
    let imports = state.imports.clone();
    let status = blocking(move || {
        imports.create_for(
            request.mode,
            request.label.as_deref(),
            request.target.as_ref(),
        )
    })
    .await?;
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

/// How many imports `GET /api/imports` lists without a `limit`.
pub const LIST_DEFAULT: usize = 100;
/// The most imports `GET /api/imports` lists at once.
pub const LIST_MAX: usize = 1000;

/// What `GET /api/imports` is asked: `limit`, `before` (an import id) and
/// `state`, each at most once; the message of a bad one says what to send.
fn list_query(
    query: &[(String, String)],
) -> Result<(Option<String>, Option<ImportState>, usize), String> {
    let mut before = None;
    let mut state = None;
    let mut limit = None;
    for (key, value) in query {
        let seen = match key.as_str() {
            "before" => before.replace(value.clone()).is_some(),
            "state" => {
                let parsed = ImportState::parse(value).ok_or_else(|| {
                    format!("state {value:?} is none of open, finished, failed and cancelled")
                })?;
                state.replace(parsed).is_some()
            }
            "limit" => {
                let parsed = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=LIST_MAX).contains(n))
                    .ok_or_else(|| {
                        format!("limit {value:?} is not a whole number from 1 to {LIST_MAX}")
                    })?;
                limit.replace(parsed).is_some()
            }
            other => {
                return Err(format!(
                    "unknown parameter {other:?}: the listing takes limit, before and state"
                ))
            }
        };
        if seen {
            return Err(format!("{key} is given twice"));
        }
    }
    Ok((before, state, limit.unwrap_or(LIST_DEFAULT)))
}

/// `GET /api/imports`: the newest imports (`limit`, at most [`LIST_MAX`],
/// else [`LIST_DEFAULT`]), made before import `before` and in `state` when
/// given, oldest first; `older` is the `before` of the next older page,
/// when there are older ones.
async fn list_imports(
    State(state): State<Shared>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ImportsError> {
    let (before, wanted, limit) = match list_query(&query) {
        Ok(asked) => asked,
        Err(message) => return Ok(bad_request(message)),
    };
    let imports = state.imports.clone();
    let asked = before.clone();
    let listed = blocking(move || {
        imports.list(ImportsQuery {
            before: asked.as_deref(),
            state: wanted,
            limit,
        })
    })
    .await;
    let (list, older) = match listed {
        Ok(listed) => listed,
        Err(ImportsError::Unknown(id)) if before.as_deref() == Some(id.as_str()) => {
            return Ok(bad_request(format!(
                "before {id:?} names no import: give the id of a listed import"
            )))
        }
        Err(e) => return Err(e),
    };
    let oldest = list.first().map(|status| status.id.clone());
    let mut body = json!({ "imports": list });
    if older {
        body["older"] = json!(oldest);
    }
    Ok(Json(body).into_response())
}

async fn import_status(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ImportsError> {
    let imports = state.imports.clone();
    let status = blocking(move || imports.status(&id)).await?;
    Ok(Json(status).into_response())
}

/// The `seq` of a frames request's query (its pairs, in order): the number
/// of its first frame, or what is wrong with it, said as what to send. Any
/// other parameter is refused, as the listing refuses those it does not take.
fn frame_seq(query: &[(String, String)]) -> Result<u64, String> {
    if let Some((other, _)) = query.iter().find(|(key, _)| key != "seq") {
        return Err(format!(
            "unknown parameter {other:?}: a frames request takes only seq"
        ));
    }
    let mut given = query.iter().filter(|(key, _)| key == "seq");
    match (given.next(), given.next()) {
        (None, _) => Err(
            "`seq` is missing: give the number of the request's first frame, `?seq=N` \
             (the import's nextSeq)"
                .into(),
        ),
        (Some(_), Some(_)) => Err("`seq` is given more than once: give it once".into()),
        (Some((_, value)), None) => value.parse().map_err(|_| {
            format!(
                "`seq` must be a frame number (a whole number from 0), not {value:?}: \
                 give the number of the request's first frame (the import's nextSeq)"
            )
        }),
    }
}

async fn append_frames(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ImportsError> {
    let seq = match frame_seq(&query) {
        Ok(seq) => seq,
        Err(message) => return Ok(bad_request(message)),
    };
    let imports = state.imports.clone();
    let appended = blocking(move || imports.append(&id, seq, &body)).await?;
    Ok(Json(appended).into_response())
}

async fn finish_import(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ImportsError> {
    let imports = state.imports.clone();
    let tables = blocking(move || imports.finish(&id)).await?;
    Ok(Json(json!({ "state": "finished", "tables": tables })).into_response())
}

async fn cancel_import(
    State(state): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ImportsError> {
    let imports = state.imports.clone();
    blocking(move || imports.cancel(&id)).await?;
    Ok(Json(json!({ "state": "cancelled" })).into_response())
}

fn content_type(path: &FsPath) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("wasm") => "application/wasm",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Serves `--www`: `/` is `index.html`; paths leaving the folder are not found.
async fn static_file(
    State(state): State<Shared>,
    method: Method,
    uri: axum::http::Uri,
) -> Response {
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            json!({"code": "NotFound", "message": "not found"}),
        )
    };
    let Some(root) = &state.www else {
        return not_found();
    };
    if method != Method::GET && method != Method::HEAD {
        return not_found();
    }
    let relative = uri.path().trim_start_matches('/');
    let relative = if relative.is_empty() || relative.ends_with('/') {
        format!("{relative}index.html")
    } else {
        relative.to_owned()
    };
    let relative = PathBuf::from(relative);
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return not_found();
    }
    let path = root.join(&relative);
    let Ok(file) = tokio::fs::File::open(&path).await else {
        return not_found();
    };
    match file.metadata().await {
        Ok(meta) if meta.is_file() => (
            [(header::CONTENT_TYPE, content_type(&path))],
            Body::new(FileBody::new(file, meta.len())),
        )
            .into_response(),
        _ => not_found(),
    }
}
