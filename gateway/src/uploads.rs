//! File uploads: the GraphQL multipart request specification (`operations`, `map`,
//! then the files), streamed through to the subgraph that takes them. The gateway
//! reads `operations` and `map`, plans and runs the operation, and when a fetch uses a
//! file's variable it sends that fetch as a multipart request whose file parts are
//! read from the client's body as they arrive: no file is held, in memory or on disk.
//!
//! So files must arrive in the order the fetches that take them run (for the usual one
//! file, one mutation field, that is always so); a file another fetch needs first is
//! refused with `UPLOAD_OUT_OF_ORDER`. Multipart is a content type a browser form can
//! send from any site, so these requests must carry a header no form can set
//! (`Apollo-Require-Preflight` or `X-Apollo-Operation-Name`, as Apollo's clients and
//! router use); without one [`crate::csrf`] refuses them, as any other request a form
//! could send, before this module reads a byte.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde_json::{Map, Value};

use crate::pipeline::request::{GraphQLRequest, GraphQLResponse};

/// Files one request may carry.
pub const MAX_FILES: usize = 4;
/// Variable positions one file may fill.
const MAX_PATHS_PER_FILE: usize = 8;
/// The `operations` part; as a JSON request body.
const MAX_OPERATIONS_BYTES: u64 = crate::transport::REQUEST_BODY_LIMIT as u64;
const MAX_MAP_BYTES: u64 = 64 * 1024;
/// What stands for a file in the variables while the operation is checked: `Upload`
/// is a custom scalar, and a non-null `Upload!` must not see the spec's `null`.
const PLACEHOLDER: &str = "<upload>";

/// A file's part name and the variable paths it fills (without `variables.`).
pub type FileSlots = (String, Vec<Vec<String>>);

/// Why an upload went wrong while it streamed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadFailure {
    TooLarge { limit: u64 },
    OutOfOrder(String),
    Broken(String),
}

/// The files of one request, still in the client's body.
pub struct Uploads {
    /// Each file's part name and the variable paths it fills (without `variables.`).
    files: Vec<FileSlots>,
    parts: tokio::sync::Mutex<Option<multer::Multipart<'static>>>,
    failure: std::sync::Mutex<Option<UploadFailure>>,
    max_file_bytes: u64,
}

impl std::fmt::Debug for Uploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uploads")
            .field("files", &self.files)
            .finish()
    }
}

/// Whether the request is a multipart one.
pub fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| {
            c.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/")
        })
}

fn bad(message: impl Into<String>) -> GraphQLResponse {
    GraphQLResponse::request_error(400, message, "BAD_REQUEST")
}

pub fn too_large(limit: u64) -> GraphQLResponse {
    GraphQLResponse::request_error(
        413,
        format!("a file is larger than the limit of {limit} bytes"),
        "PAYLOAD_TOO_LARGE",
    )
}

/// Reads `operations` and `map`; the files stay in the body for the fetches.
pub async fn begin(
    headers: &HeaderMap,
    body: axum::body::Body,
    max_file_bytes: u64,
) -> Result<(GraphQLRequest, Arc<Uploads>), GraphQLResponse> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| bad("the multipart request has no boundary in its Content-Type"))?;
    let whole = max_file_bytes
        .saturating_mul(MAX_FILES as u64)
        .saturating_add(MAX_OPERATIONS_BYTES + MAX_MAP_BYTES + 64 * 1024);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > whole) {
        return Err(too_large(max_file_bytes));
    }
    let limits = multer::SizeLimit::new()
        .whole_stream(whole)
        .per_field(max_file_bytes)
        .for_field("operations", MAX_OPERATIONS_BYTES)
        .for_field("map", MAX_MAP_BYTES);
    let mut parts = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let read_part = |e: multer::Error, what: &str| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            GraphQLResponse::request_error(
                413,
                format!("the `{what}` part is too large"),
                "PAYLOAD_TOO_LARGE",
            )
        }
        other => bad(format!("the multipart request could not be read: {other}")),
    };
    let operations = match parts.next_field().await {
        Ok(Some(f)) if f.name() == Some("operations") => {
            f.bytes().await.map_err(|e| read_part(e, "operations"))?
        }
        Ok(_) => {
            return Err(bad(
                "the first part of a multipart request must be `operations`",
            ));
        }
        Err(e) => return Err(read_part(e, "operations")),
    };
    let map = match parts.next_field().await {
        Ok(Some(f)) if f.name() == Some("map") => {
            f.bytes().await.map_err(|e| read_part(e, "map"))?
        }
        Ok(_) => return Err(bad("the second part of a multipart request must be `map`")),
        Err(e) => return Err(read_part(e, "map")),
    };
    let mut request = parse_operations(&operations)?;
    let files = parse_map(&map)?;
    let mut variables = Value::Object(request.variables.take().unwrap_or_default());
    for (name, paths) in &files {
        for path in paths {
            let slot = slot(&mut variables, path).ok_or_else(|| {
                bad(format!(
                    "map: `{name}` goes to variables.{}, which the operation's variables do not have",
                    path.join(".")
                ))
            })?;
            *slot = Value::String(PLACEHOLDER.into());
        }
    }
    if let Value::Object(m) = variables {
        request.variables = Some(m);
    }
    Ok((
        request,
        Arc::new(Uploads {
            files,
            parts: tokio::sync::Mutex::new(Some(parts)),
            failure: std::sync::Mutex::new(None),
            max_file_bytes,
        }),
    ))
}

fn parse_operations(bytes: &Bytes) -> Result<GraphQLRequest, GraphQLResponse> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Err(GraphQLResponse::request_error(
            400,
            "batched requests are not supported; send one operation per request",
            "BATCHING_NOT_SUPPORTED",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("`operations` is not a GraphQL request: {e}")))
}

/// `{"0": ["variables.file"], "1": ["variables.files.0"]}` into part names and paths.
fn parse_map(bytes: &Bytes) -> Result<Vec<FileSlots>, GraphQLResponse> {
    let map: Map<String, Value> = serde_json::from_slice(bytes)
        .map_err(|_| bad("`map` must be a JSON object of file names to lists of paths"))?;
    if map.len() > MAX_FILES {
        return Err(bad(format!("at most {MAX_FILES} files per request")));
    }
    let mut files = Vec::with_capacity(map.len());
    for (name, paths) in map {
        let Some(paths) = paths.as_array().filter(|p| !p.is_empty()) else {
            return Err(bad(format!("map: `{name}` needs a list of paths")));
        };
        if paths.len() > MAX_PATHS_PER_FILE {
            return Err(bad(format!(
                "map: `{name}` fills at most {MAX_PATHS_PER_FILE} positions"
            )));
        }
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            let p = p.as_str().unwrap_or_default();
            let Some(rest) = p.strip_prefix("variables.") else {
                return Err(bad(format!(
                    "map: `{p}` must start with `variables.` (batches are not supported)"
                )));
            };
            out.push(rest.split('.').map(str::to_string).collect());
        }
        files.push((name, out));
    }
    Ok(files)
}

/// The value at `path` in the variables (object keys and list indexes).
fn slot<'v>(vars: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    let mut cur = vars;
    for seg in path {
        cur = match cur {
            Value::Object(m) => m.get_mut(seg)?,
            Value::Array(items) => items.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

impl Uploads {
    /// The files a fetch with these variables takes, as (part name, paths).
    pub fn files_for(&self, variables: &[String]) -> Vec<FileSlots> {
        self.files
            .iter()
            .filter(|(_, paths)| {
                paths
                    .iter()
                    .any(|p| p.first().is_some_and(|v| variables.contains(v)))
            })
            .cloned()
            .collect()
    }

    pub fn failure(&self) -> Option<UploadFailure> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    fn fail(&self, f: UploadFailure) {
        if let Ok(mut slot) = self.failure.lock()
            && slot.is_none()
        {
            *slot = Some(f);
        }
    }

    /// The answer for a request whose upload failed while streaming.
    pub fn failure_response(&self) -> Option<GraphQLResponse> {
        Some(match self.failure()? {
            UploadFailure::TooLarge { limit } => too_large(limit),
            UploadFailure::OutOfOrder(m) => {
                GraphQLResponse::request_error(400, m, "UPLOAD_OUT_OF_ORDER")
            }
            UploadFailure::Broken(m) => bad(m),
        })
    }

    /// The multipart body of a fetch that takes `files`: `operations` and `map` first,
    /// then each file as it streams in from the client.
    pub fn body(
        self: &Arc<Self>,
        query: &str,
        mut variables: Map<String, Value>,
        files: Vec<FileSlots>,
    ) -> (String, reqwest::Body) {
        let boundary = format!("shop-upload-{}", uuid_like());
        let mut map = Map::new();
        let mut vars = Value::Object(std::mem::take(&mut variables));
        for (name, paths) in &files {
            let mut list = Vec::new();
            for path in paths {
                if let Some(v) = slot(&mut vars, path) {
                    *v = Value::Null;
                }
                list.push(Value::String(format!("variables.{}", path.join("."))));
            }
            map.insert(name.clone(), Value::Array(list));
        }
        let operations = serde_json::json!({ "query": query, "variables": vars });
        let head = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"operations\"\r\nContent-Type: application/json\r\n\r\n{ops}\r\n--{b}\r\nContent-Disposition: form-data; name=\"map\"\r\nContent-Type: application/json\r\n\r\n{map}\r\n",
            b = boundary,
            ops = operations,
            map = Value::Object(map),
        );
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
        let uploads = self.clone();
        let b = boundary.clone();
        tokio::spawn(async move {
            if tx.send(Ok(Bytes::from(head))).await.is_err() {
                return;
            }
            let wanted: Vec<String> = files.into_iter().map(|(n, _)| n).collect();
            match uploads.stream_files(&wanted, &b, &tx).await {
                Ok(()) => {
                    let _ = tx.send(Ok(Bytes::from(format!("--{b}--\r\n")))).await;
                }
                Err(f) => {
                    let reason = format!("{f:?}");
                    uploads.fail(f);
                    let _ = tx.send(Err(std::io::Error::other(reason))).await;
                }
            }
        });
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (
            format!("multipart/form-data; boundary={boundary}"),
            reqwest::Body::wrap_stream(stream),
        )
    }

    async fn stream_files(
        &self,
        wanted: &[String],
        boundary: &str,
        tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    ) -> Result<(), UploadFailure> {
        let mut guard = self.parts.lock().await;
        let Some(parts) = guard.as_mut() else {
            return Err(UploadFailure::Broken("the upload was already read".into()));
        };
        let mut left: Vec<&String> = wanted.iter().collect();
        while !left.is_empty() {
            let field = match parts.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => {
                    return Err(UploadFailure::Broken(format!(
                        "the request ended before file `{}` (named in map) arrived",
                        left[0]
                    )));
                }
                Err(e) => return Err(self.stream_error(e)),
            };
            let name = field.name().unwrap_or_default().to_string();
            let Some(i) = left.iter().position(|w| **w == name) else {
                let known = self.files.iter().any(|(n, _)| *n == name);
                return Err(if known {
                    UploadFailure::OutOfOrder(format!(
                        "file `{name}` arrived before `{}`, which the operation needs first: send files in the order the operation uses them",
                        left[0]
                    ))
                } else {
                    UploadFailure::Broken(format!("the part `{name}` is not in map"))
                });
            };
            left.remove(i);
            let file_name: String = field
                .file_name()
                .unwrap_or("upload")
                .chars()
                .map(|c| if c == '"' || c.is_control() { '_' } else { c })
                .take(255)
                .collect();
            let content_type = field
                .content_type()
                .map(|m| m.to_string())
                .unwrap_or_else(|| "application/octet-stream".into());
            let part_head = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
            );
            if tx.send(Ok(Bytes::from(part_head))).await.is_err() {
                return Err(UploadFailure::Broken("the subgraph stopped reading".into()));
            }
            let mut field = field;
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if tx.send(Ok(chunk)).await.is_err() {
                            return Err(UploadFailure::Broken(
                                "the subgraph stopped reading the upload".into(),
                            ));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Err(self.stream_error(e)),
                }
            }
            if tx.send(Ok(Bytes::from_static(b"\r\n"))).await.is_err() {
                return Err(UploadFailure::Broken("the subgraph stopped reading".into()));
            }
        }
        Ok(())
    }

    fn stream_error(&self, e: multer::Error) -> UploadFailure {
        match e {
            multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
                UploadFailure::TooLarge {
                    limit: self.max_file_bytes,
                }
            }
            other => UploadFailure::Broken(format!("the upload could not be read: {other}")),
        }
    }
}

/// A random boundary: 32 hex digits.
fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_paths_must_name_variables() {
        let ok = parse_map(&Bytes::from(
            r#"{"0":["variables.file"],"1":["variables.input.files.0"]}"#,
        ))
        .unwrap_or_default();
        assert_eq!(
            ok,
            vec![
                ("0".to_string(), vec![vec!["file".to_string()]]),
                (
                    "1".to_string(),
                    vec![vec![
                        "input".to_string(),
                        "files".to_string(),
                        "0".to_string()
                    ]]
                ),
            ]
        );
        for bad_map in [
            r#"{"0":["0.variables.file"]}"#,
            r#"{"0":[]}"#,
            "[]",
            r#"{"a":["variables.a"],"b":["variables.b"],"c":["variables.c"],"d":["variables.d"],"e":["variables.e"]}"#,
        ] {
            assert!(parse_map(&Bytes::from(bad_map)).is_err(), "{bad_map}");
        }
    }
}
