//! Catalog files in and out: the upload (streamed on to the gateway as a GraphQL
//! multipart request while the browser still sends it), the review of a dry run (its
//! changes field by field and its row errors), applying with a live progress bar
//! (`catalogImportProgress` relayed as server-sent events), cancelling, rolling back,
//! and the export download.

use askama::Template;
use axum::body::Body;
use axum::extract::{Multipart, Path};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::Query;
use serde::Deserialize;
use serde_json::{Value, json};

use super::orders::when;
use super::supplier::supplier_only;
use super::{Chrome, Connection, Posted, Visited, failed, frame_counts, render};
use crate::session::say;

/// The biggest catalog file the portal passes on (the gateway's own default limit).
pub const MAX_IMPORT_BYTES: usize = 512 * 1024 * 1024;

/// A job's state in a supplier's words.
pub fn job_status(code: &str) -> &'static str {
    super::label(&JOB_STATUSES, code).unwrap_or("Unknown")
}

/// States a job leaves by itself: the page follows it live while it is in one.
pub fn moving(code: &str) -> bool {
    matches!(code, "QUEUED" | "VALIDATING" | "APPLYING" | "ROLLING_BACK")
}

/// What the upload form sends besides the file (which comes last, so these are read
/// before the file streams through).
#[derive(Default)]
struct UploadOptions {
    csrf: String,
    review: bool,
    on_error: &'static str,
    missing: &'static str,
}

/// `POST /supplier/catalogs/{id}/import` (multipart): starts an import of the file.
/// The file is never held here: its chunks go on to the gateway as they arrive.
pub async fn start(
    Visited { web, visit }: Visited,
    Path(catalog): Path<String>,
    mut multipart: Multipart,
) -> Response {
    let back = format!("/supplier/catalogs/{catalog}");
    let mut visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let mut opts = UploadOptions {
        on_error: "ABORT",
        missing: "KEEP",
        ..UploadOptions::default()
    };
    let mut started = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::info!(error = %e, "an upload that did not arrive whole");
                visit.notify_error("The file did not arrive whole. Please try again.");
                return visit.finish(Redirect::to(&back));
            }
        };
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if !visit.csrf_ok(&opts.csrf) {
                return super::stale_form(visit, &back);
            }
            let file_name = field.file_name().map(str::to_string).unwrap_or_default();
            if file_name.is_empty() {
                visit.notify_error("Please choose a file to import.");
                return visit.finish(Redirect::to(&back));
            }
            let content_type = field
                .content_type()
                .map(str::to_string)
                .unwrap_or_else(|| "application/octet-stream".into());
            started = Some(
                forward(
                    &web,
                    &visit,
                    &catalog,
                    &opts,
                    field,
                    &file_name,
                    &content_type,
                )
                .await,
            );
            break;
        }
        // The small fields before the file: a few bytes each.
        let text = field.text().await.unwrap_or_default();
        match name.as_str() {
            "csrf" => opts.csrf = text,
            "review" => opts.review = text == "1",
            "on_error" => {
                opts.on_error = if text == "SKIP_ROWS" {
                    "SKIP_ROWS"
                } else {
                    "ABORT"
                }
            }
            "missing" => {
                opts.missing = match text.as_str() {
                    "ARCHIVE" => "ARCHIVE",
                    "DELETE" => "DELETE",
                    _ => "KEEP",
                }
            }
            _ => {}
        }
    }
    match started {
        None => {
            if !visit.csrf_ok(&opts.csrf) {
                return super::stale_form(visit, &back);
            }
            visit.notify_error("Please choose a file to import.");
            visit.finish(Redirect::to(&back))
        }
        Some(Ok(id)) => {
            visit.notify(if opts.review {
                "The file is being checked. Review the changes below, then apply them."
            } else {
                "The file is being imported."
            });
            visit.finish(Redirect::to(&format!("/supplier/imports/{id}")))
        }
        Some(Err(e)) => {
            visit.notify_error(say(&e));
            visit.finish(Redirect::to(&back))
        }
    }
}

/// Sends `startCatalogImport` with the file as a GraphQL multipart request whose file
/// part is fed from the browser's upload chunk by chunk; the new job's id.
async fn forward(
    web: &crate::Web,
    visit: &crate::session::Visit,
    catalog: &str,
    opts: &UploadOptions,
    mut field: axum::extract::multipart::Field<'_>,
    file_name: &str,
    content_type: &str,
) -> Result<String, crate::ApiError> {
    let operations = json!({
        "query": "mutation StartImport($catalog: ID!, $file: Upload, $options: CatalogImportOptions) { startCatalogImport(catalogId: $catalog, file: $file, options: $options) { id } }",
        "variables": {
            "catalog": catalog,
            "file": null,
            "options": { "dryRun": opts.review, "onError": opts.on_error, "missing": opts.missing },
        },
    });
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let chunks =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let send = web.api.upload(
        operations,
        reqwest::Body::wrap_stream(chunks),
        file_name,
        content_type,
        visit.token(),
    );
    let pump = async move {
        let mut total = 0usize;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    total += chunk.len();
                    if total > MAX_IMPORT_BYTES {
                        let _ = tx
                            .send(Err(std::io::Error::other("the file is too large")))
                            .await;
                        return Err("too large");
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(_) => {
                    let _ = tx
                        .send(Err(std::io::Error::other("the upload broke off")))
                        .await;
                    return Err("broken");
                }
            }
        }
    };
    let (sent, pumped) = tokio::join!(send, pump);
    match pumped {
        Err("too large") => Err(crate::ApiError::Refused {
            code: "BAD_USER_INPUT".into(),
            message: format!(
                "the file is larger than {} MB",
                MAX_IMPORT_BYTES / 1024 / 1024
            ),
        }),
        Err(_) => Err(crate::ApiError::Refused {
            code: "BAD_USER_INPUT".into(),
            message: "the file did not arrive whole; please try again".into(),
        }),
        Ok(()) => {
            let data = sent?;
            data["startCatalogImport"]["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| crate::ApiError::Unreachable("no import id".into()))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub rows: i64,
    pub to_create: i64,
    pub to_update: i64,
    pub unchanged: i64,
    pub to_archive: i64,
    pub to_delete: i64,
    pub failed: i64,
    pub applied: i64,
    pub rolled_back: i64,
    pub rollback_kept: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub percent: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RowError {
    pub row: i64,
    pub column: Option<String>,
    pub message: String,
    pub value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldChange {
    pub field: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A value of a change as a cell shows it.
fn cell(v: &Option<Value>) -> String {
    match v {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

impl FieldChange {
    pub fn was(&self) -> String {
        cell(&self.before)
    }
    pub fn now(&self) -> String {
        cell(&self.after)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub row: Option<i64>,
    pub sku: String,
    pub kind: Option<String>,
    pub product_id: String,
    pub state: String,
    pub fields: Vec<FieldChange>,
}

impl Change {
    pub fn kind_text(&self) -> &'static str {
        match self.kind.as_deref() {
            Some("CREATE") => "New",
            Some("UPDATE") => "Changed",
            Some("UNCHANGED") => "Unchanged",
            Some("ARCHIVE") => "Archived",
            Some("DELETE") => "Deleted",
            _ => "Skipped",
        }
    }
    pub fn row_text(&self) -> String {
        self.row.map_or("not in file".into(), |r| r.to_string())
    }
    pub fn state_text(&self) -> &'static str {
        match self.state.as_str() {
            "STAGED" => "to do",
            "APPLIED" => "done",
            "ROLLED_BACK" => "undone",
            "KEPT" => "kept (changed since)",
            _ => "",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub catalog_id: String,
    pub catalog: Option<super::Named>,
    pub status: String,
    pub dry_run: bool,
    pub file_name: String,
    pub file_size: i64,
    pub failure: Option<String>,
    pub unknown_columns: Vec<String>,
    pub created_at: String,
    pub counts: Counts,
    pub progress: Progress,
}

impl Job {
    pub fn status_text(&self) -> &'static str {
        job_status(&self.status)
    }
    pub fn moving(&self) -> bool {
        moving(&self.status)
    }
    pub fn started(&self) -> String {
        when(&self.created_at)
    }
    pub fn size(&self) -> String {
        let kb = self.file_size.div_euclid(1024);
        if kb >= 1024 {
            format!("{:.1} MB", self.file_size as f64 / 1_048_576.0)
        } else {
            format!("{} KB", kb.max(1))
        }
    }
    pub fn catalog_name(&self) -> &str {
        self.catalog
            .as_ref()
            .map_or("(deleted)", |c| c.name.as_str())
    }
}

const JOB_FIELDS: &str = "id catalogId catalog { name } status dryRun fileName fileSize failure unknownColumns createdAt \
  counts { rows toCreate toUpdate unchanged toArchive toDelete failed applied rolledBack rollbackKept } progress { percent }";

/// The kinds of change the review can show, one at a time.
const KINDS: [(&str, &str); 5] = [
    ("CREATE", "New"),
    ("UPDATE", "Changed"),
    ("ARCHIVE", "Archived"),
    ("DELETE", "Deleted"),
    ("UNCHANGED", "Unchanged"),
];

#[derive(Template)]
#[template(path = "supplier_import.html")]
struct ImportPage {
    chrome: Chrome,
    job: Job,
    changes: Vec<Change>,
    changes_total: i64,
    more_changes: Option<String>,
    errors: Vec<RowError>,
    errors_total: i64,
    more_errors: Option<String>,
    kinds: Vec<super::Pick>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ImportParams {
    kind: String,
    changes_after: Option<String>,
    errors_after: Option<String>,
}

/// `GET /supplier/imports/{id}`: where the job is, what it changes (or changed), which
/// rows failed and why, and what may be done next.
pub async fn show(
    Visited { web, visit }: Visited,
    Path(id): Path<String>,
    Query(p): Query<ImportParams>,
) -> Response {
    let mut visit = match supplier_only(visit, &format!("/supplier/imports/{id}")) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    struct Detail {
        #[serde(flatten)]
        job: Job,
        changes: Connection<Change>,
        errors: Connection<RowError>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        catalog_import: Detail,
    }
    // Changes of every kind but "unchanged" unless one kind is asked for: what a
    // reviewer needs to see first.
    let kinds: Vec<&str> = match KINDS.iter().find(|(c, _)| *c == p.kind) {
        Some((c, _)) => vec![c],
        None => KINDS
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| *c != "UNCHANGED")
            .collect(),
    };
    let q = format!(
        "query ImportReview($id: ID!, $kinds: [ImportChangeKind!], $ca: String, $ea: String) {{ catalogImport(id: $id) {{ {JOB_FIELDS} \
         changes(kinds: $kinds, first: 50, after: $ca) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} nodes {{ row sku kind productId state fields {{ field before after }} }} }} \
         errors(first: 50, after: $ea) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} nodes {{ row column message value }} }} }} }}"
    );
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(
            &q,
            json!({ "id": id, "kinds": kinds, "ca": p.changes_after, "ea": p.errors_after }),
            visit.token()
        ),
        frame_counts(&web, &visit)
    );
    let d = match data {
        Ok(d) => d.catalog_import,
        Err(e) => return failed(visit, e),
    };
    let kind = super::shop::encode(&p.kind);
    let more_changes = d.changes.next_page(|after| {
        format!("/supplier/imports/{id}?kind={kind}&changes_after={after}#changes")
    });
    let more_errors = d.errors.next_page(|after| {
        format!("/supplier/imports/{id}?kind={kind}&errors_after={after}#errors")
    });
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        ImportPage {
            chrome,
            job: d.job,
            changes_total: d.changes.total_count,
            changes: d.changes.nodes,
            more_changes,
            errors_total: d.errors.total_count,
            errors: d.errors.nodes,
            more_errors,
            kinds: super::picks(&KINDS, |code| code == p.kind),
        },
    );
    visit.finish(page)
}

/// `GET /supplier/imports/{id}/events`: the job's progress as server-sent events
/// (`progress`: status, its words, percent and counts), ending when the job stops.
pub async fn events(Visited { web, visit }: Visited, Path(id): Path<String>) -> Response {
    if visit.user().is_none() {
        return visit.finish(StatusCode::UNAUTHORIZED);
    }
    let sub = web
        .api
        .subscribe(
            "subscription ImportProgress($id: ID!) { catalogImportProgress(id: $id) { status progress { percent } counts { rows applied rolledBack failed } } }",
            json!({ "id": id }),
            visit.token(),
        )
        .await;
    let sub = match sub {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(error = %e, "import progress stream refused");
            return visit.finish(StatusCode::NOT_FOUND);
        }
    };
    let stream = super::relay(sub, |data| {
        let j = &data["catalogImportProgress"];
        let status = j["status"].as_str().unwrap_or_default();
        let payload = json!({
            "status": status,
            "label": job_status(status),
            "moving": moving(status),
            "percent": j["progress"]["percent"],
            "rows": j["counts"]["rows"],
            "applied": j["counts"]["applied"],
            "failed": j["counts"]["failed"],
        });
        axum::response::sse::Event::default()
            .event("progress")
            .data(payload.to_string())
    });
    visit.finish(stream)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct JobAction {
    /// `apply`, `cancel` or `rollback`.
    action: String,
}

/// `POST /supplier/imports/{id}`: apply the reviewed changes, cancel, or roll back.
pub async fn act(
    Path(id): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<JobAction>,
) -> Response {
    let back = format!("/supplier/imports/{id}");
    let mut visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let (mutation, done) = match form.action.as_str() {
        "apply" => (
            "mutation ApplyImport($id: ID!) { applyCatalogImport(id: $id) { id } }",
            "Applying the changes.",
        ),
        "cancel" => (
            "mutation CancelImport($id: ID!) { cancelCatalogImport(id: $id) { id } }",
            "The import is cancelled; anything it had applied is undone.",
        ),
        "rollback" => (
            "mutation RollbackImport($id: ID!) { rollbackCatalogImport(id: $id) { id } }",
            "Rolling the import back.",
        ),
        _ => {
            visit.notify_error("That did not work. Please try again.");
            return visit.finish(Redirect::to(&back));
        }
    };
    match web
        .api
        .run::<Value>(mutation, json!({ "id": id }), visit.token())
        .await
    {
        Ok(_) => visit.notify(done),
        Err(crate::ApiError::Refused { code, .. }) if code == "CONFLICT" => visit.notify_error(
            "The catalog changed since this file was checked, or another import is running. Import the file again to review the changes anew.",
        ),
        Err(e) => visit.notify_error(say(&e)),
    }
    visit.finish(Redirect::to(&back))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ExportForm {
    format: String,
}

/// `POST /supplier/catalogs/{id}/export`: the catalog as a file, in the import's own
/// columns (so it can be edited and imported back), passed through from the gateway.
pub async fn export(
    Path(catalog): Path<String>,
    Posted {
        web, visit, form, ..
    }: Posted<ExportForm>,
) -> Response {
    let back = format!("/supplier/catalogs/{catalog}");
    let mut visit = match supplier_only(visit, &back) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let format = match form.format.as_str() {
        "XLSX" => "XLSX",
        "JSONL" => "JSONL",
        "TSV" => "TSV",
        _ => "CSV",
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Export {
        url: String,
        file_name: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        export_catalog: Export,
    }
    let made = web
        .api
        .run::<Data>(
            "mutation ExportCatalog($id: ID!, $format: ImportFormat!) { exportCatalog(catalogId: $id, format: $format) { url fileName } }",
            json!({ "id": catalog, "format": format }),
            visit.token(),
        )
        .await;
    let export = match made {
        Ok(d) => d.export_catalog,
        Err(e) => {
            visit.notify_error(say(&e));
            return visit.finish(Redirect::to(&back));
        }
    };
    let file = match web.api.download(&export.url).await {
        Ok(r) => r,
        Err(e) => return failed(visit, e),
    };
    let content_type = file
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| header::HeaderValue::from_static("application/octet-stream"));
    // Only the characters a file name needs survive into the header.
    let name: String = export
        .file_name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let response = (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                    .unwrap_or_else(|_| header::HeaderValue::from_static("attachment")),
            ),
            (
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store"),
            ),
        ],
        Body::from_stream(file.bytes_stream()),
    )
        .into_response();
    visit.finish(response)
}

#[derive(Template)]
#[template(path = "admin_imports.html")]
struct AdminImportsPage {
    chrome: Chrome,
    statuses: Vec<super::Pick>,
    jobs: Vec<Job>,
    total: i64,
    next: Option<String>,
}

const JOB_STATUSES: [(&str, &str); 9] = [
    ("QUEUED", "Waiting to start"),
    ("VALIDATING", "Checking the file"),
    ("READY", "Ready for review"),
    ("APPLYING", "Applying"),
    ("DONE", "Applied"),
    ("FAILED", "Failed"),
    ("CANCELLED", "Cancelled"),
    ("ROLLING_BACK", "Rolling back"),
    ("ROLLED_BACK", "Rolled back"),
];

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AdminImportsParams {
    status: String,
    after: Option<String>,
}

/// `GET /admin/imports`: every supplier's import jobs, newest first, by state.
pub async fn admin_list(
    Visited { web, visit }: Visited,
    Query(p): Query<AdminImportsParams>,
) -> Response {
    let mut visit = match super::admin::admin_only(visit, "/admin/imports") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        catalog_imports: Connection<Job>,
    }
    let status = JOB_STATUSES
        .iter()
        .find(|(c, _)| *c == p.status)
        .map(|(c, _)| *c);
    let q = format!(
        "query AdminImports($status: CatalogImportStatus, $after: String) {{ catalogImports(status: $status, first: 50, after: $after) {{ totalCount pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }} nodes {{ {JOB_FIELDS} }} }} }}"
    );
    let (data, counts) = tokio::join!(
        web.api.run::<Data>(
            &q,
            json!({ "status": status, "after": p.after }),
            visit.token()
        ),
        frame_counts(&web, &visit)
    );
    let d = match data {
        Ok(d) => d,
        Err(e) => return failed(visit, e),
    };
    let next = d.catalog_imports.next_page(|after| {
        format!(
            "/admin/imports?status={}&after={after}",
            super::shop::encode(&p.status)
        )
    });
    let chrome = Chrome::of(&mut visit, counts);
    let page = render(
        StatusCode::OK,
        AdminImportsPage {
            chrome,
            statuses: super::picks(&JOB_STATUSES, |code| code == p.status),
            total: d.catalog_imports.total_count,
            jobs: d.catalog_imports.nodes,
            next,
        },
    );
    visit.finish(page)
}
