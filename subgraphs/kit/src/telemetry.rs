//! Logs and traces of a process: `tracing` spans and events, written as text or JSON
//! lines (`SHOP_LOG_FORMAT=json`, with the trace and span ids of the event), and
//! exported as OpenTelemetry traces over OTLP when an endpoint is configured
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, gRPC or HTTP by `OTEL_EXPORTER_OTLP_PROTOCOL`).
//!
//! Traces cross processes in the W3C `traceparent` header: the gateway injects it into
//! each subgraph request ([`inject`]), subgraphs continue it ([`extract`]), and events
//! carry it from the request that wrote them to every consumer that handles them.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How a process logs and traces.
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetryOptions {
    /// `service.name` of its spans (`OTEL_SERVICE_NAME` overrides it).
    pub service: String,
    /// JSON lines instead of text (`SHOP_LOG_FORMAT=json`).
    pub json_logs: bool,
    /// Where spans go: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); `None` exports nothing (trace ids still
    /// appear in the logs and still travel to subgraphs).
    pub otlp_endpoint: Option<String>,
    /// `grpc` (default, port 4317) or `http/protobuf` (port 4318).
    pub otlp_protocol: String,
    /// Share of new traces recorded (`SHOP_TRACE_SAMPLE_RATIO`, default 0.01); a trace
    /// begun elsewhere follows its caller's decision.
    pub sample_ratio: f64,
}

impl TelemetryOptions {
    /// From the environment, for a process serving as `service`.
    pub fn from_env(service: &str) -> TelemetryOptions {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        TelemetryOptions {
            service: var("OTEL_SERVICE_NAME").unwrap_or_else(|| service.to_string()),
            json_logs: var("SHOP_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")),
            otlp_endpoint: var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT")),
            otlp_protocol: var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
                .unwrap_or_else(|| "grpc".into()),
            sample_ratio: var("SHOP_TRACE_SAMPLE_RATIO")
                .and_then(|r| r.parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(0.01),
        }
    }
}

/// Keeps the tracer provider of the process; dropping it sends what is buffered.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Sends the spans buffered so far (tests, and before exit).
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            eprintln!("flushing traces failed: {e}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Builds the tracer provider: sampled parent-based, exporting over OTLP when an
/// endpoint is set. Needs a Tokio runtime for gRPC.
pub fn provider(options: &TelemetryOptions) -> Result<SdkTracerProvider, String> {
    let sampler = EdgeSampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
        options.sample_ratio,
    ))));
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(options.service.clone())
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_resource(resource);
    if let Some(endpoint) = &options.otlp_endpoint {
        use opentelemetry_otlp::WithExportConfig;
        let exporter = if options.otlp_protocol.starts_with("http") {
            // The HTTP exporter wants the full path; a bare endpoint means the
            // standard one.
            let url = if endpoint.ends_with("/v1/traces") {
                endpoint.clone()
            } else {
                format!("{}/v1/traces", endpoint.trim_end_matches('/'))
            };
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(url)
                .build()
        } else {
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
        }
        .map_err(|e| format!("the OTLP exporter for {endpoint}: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// Installs logging and tracing for the whole process: the filter from `RUST_LOG`
/// (default `default_filter`), text or JSON logs to stdout, and spans to the tracer.
pub fn init(options: &TelemetryOptions, default_filter: &str) -> Result<Telemetry, String> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = provider(options)?;
    let tracer = provider.tracer("shop");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Spans cost on every poll of the futures they instrument: no busy/idle timing, no
    // code locations or thread names, and no OpenTelemetry context made current on each
    // entry (nothing here reads it; propagation goes through the `tracing` span). The
    // protections benchmark (`GWBENCH_PROTECTIONS=1 gwbench`) measured the difference.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer.clone())
        .with_tracked_inactivity(false)
        .with_location(false)
        .with_threads(false)
        .with_context_activation(false);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = if options.json_logs {
        let format = JsonLines::default();
        let dispatch = format.dispatch.clone();
        let installed = registry
            .with(tracing_subscriber::fmt::layer().event_format(format))
            .try_init();
        tracing::dispatcher::get_default(|d| dispatch.set(d.downgrade()).ok());
        installed
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    // Colour codes only for a terminal; collectors get plain text.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init()
    };
    installed.map_err(|e| e.to_string())?;
    let _ = TRACER.set(tracer);
    let _ = RATIO.set(options.sample_ratio);
    Ok(Telemetry { provider })
}

/// One JSON object per line: `timestamp`, `level`, `target`, `message`, the event's
/// fields, the names of the spans it happened in, and `trace_id`/`span_id` when it
/// happened inside a traced span — what Loki, Elasticsearch or OpenSearch index.
#[derive(Default)]
struct JsonLines {
    /// The dispatcher the formatter runs in: inside an event's callback `tracing`
    /// hides the current dispatcher (against recursion), and the trace ids are read
    /// through it.
    dispatch: Arc<OnceLock<tracing::dispatcher::WeakDispatch>>,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        let meta = event.metadata();
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(message) = fields.0.remove("message") {
            line.insert("message".into(), message);
        }
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<serde_json::Value> = scope
                .from_root()
                .map(|s| serde_json::Value::from(s.name()))
                .collect();
            line.insert("spans".into(), spans.into());
        }
        let otel = ctx.lookup_current().and_then(|span| {
            let dispatch = self.dispatch.get()?.upgrade()?;
            tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)
        });
        if let Some(otel) = otel {
            let span = otel.span();
            let sc = span.span_context();
            if sc.is_valid() {
                line.insert("trace_id".into(), sc.trace_id().to_string().into());
                line.insert("span_id".into(), sc.span_id().to_string().into());
            }
        } else if let Ok(trace_id) = QUIET.try_with(|q| q.trace_id.clone()) {
            // An unrecorded request's lines still name its trace, to find them all.
            line.insert("trace_id".into(), trace_id.into());
        }
        if !fields.0.is_empty() {
            line.insert("fields".into(), serde_json::Value::Object(fields.0));
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

struct HeaderInjector<'a>(&'a mut axum::http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            axum::http::header::HeaderName::from_bytes(key.as_bytes()),
            axum::http::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a axum::http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Whether the current span belongs to a trace that is recorded. Work done for one
/// request many times over (plan nodes, fetches) opens spans only then: for the
/// 99 requests in 100 that sampling leaves out, their spans would cost the gateway
/// a tenth of its throughput (the protections benchmark) and be thrown away.
pub fn sampled() -> bool {
    tracing::Span::current()
        .context()
        .span()
        .span_context()
        .is_sampled()
}

/// Adds the current span's `traceparent` (and `tracestate`) to outgoing `headers`;
/// nothing outside a traced span.
pub fn inject(headers: &mut axum::http::HeaderMap) {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid()
        && let Some(quiet) = quiet_headers()
    {
        headers.extend(quiet);
        return;
    }
    inject_context(&cx, headers);
}

fn inject_context(cx: &opentelemetry::Context, headers: &mut axum::http::HeaderMap) {
    if !cx.span().span_context().is_valid() {
        return;
    }
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// Trace headers as a list of name and value, to send with requests.
pub type TraceHeaders = Vec<(axum::http::HeaderName, axum::http::HeaderValue)>;

/// The current span's trace headers ([`inject`]'s). Empty outside a trace.
pub fn trace_headers() -> TraceHeaders {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid()
        && let Some(quiet) = quiet_headers()
    {
        return quiet;
    }
    headers_of(&cx)
}

/// For work that sends many requests: whether the current span's trace is recorded
/// ([`sampled`]) and, when it is not, the trace headers every request sends, worked
/// out once rather than formatted again for each (a recorded trace's requests each
/// send their own span's).
pub fn recorded_or_headers() -> (bool, TraceHeaders) {
    let current = tracing::Span::current();
    if current.is_none()
        && let Some(quiet) = quiet_headers()
    {
        return (false, quiet);
    }
    let cx = current.context();
    if cx.span().span_context().is_sampled() {
        (true, Vec::new())
    } else {
        (false, headers_of(&cx))
    }
}

fn headers_of(cx: &opentelemetry::Context) -> TraceHeaders {
    let mut headers = axum::http::HeaderMap::new();
    inject_context(cx, &mut headers);
    headers
        .into_iter()
        .filter_map(|(name, value)| Some((name?, value)))
        .collect()
}

/// Makes `span` continue the trace an incoming request's `traceparent` names.
pub fn extract(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    if headers.get("traceparent").is_none() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(cx);
}

/// The current span's `traceparent`, for a message that leaves the request (an
/// event); `None` outside a traced span.
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return quiet_headers()?
            .into_iter()
            .find(|(name, _)| name == "traceparent")
            .and_then(|(_, v)| v.to_str().ok().map(str::to_string));
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` continue the trace `traceparent` names (an event's).
pub fn continue_from(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}

/// The share of new traces recorded, once [`init`] has run: requests are sampled
/// where they arrive ([`decide`]).
static RATIO: OnceLock<f64> = OnceLock::new();

/// The attribute (OpenTracing's name for it) by which a request span that [`decide`]
/// chose to record tells the sampler so: without it the sampler would draw again and
/// record only the square of the share.
const SAMPLING_PRIORITY: &str = "sampling.priority";

/// Parent-based sampling by a share of trace ids, except that a root span carrying a
/// positive [`SAMPLING_PRIORITY`] (a request [`decide`] already drew for) is recorded.
#[derive(Clone, Debug)]
struct EdgeSampler(Sampler);

impl opentelemetry_sdk::trace::ShouldSample for EdgeSampler {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: opentelemetry::trace::TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[opentelemetry::KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        let has_parent = parent_context.is_some_and(|cx| cx.has_active_span());
        let chosen = !has_parent
            && attributes.iter().any(|kv| {
                kv.key.as_str() == SAMPLING_PRIORITY
                    && matches!(kv.value, opentelemetry::Value::I64(p) if p > 0)
            });
        if chosen {
            return opentelemetry_sdk::trace::SamplingResult {
                decision: opentelemetry_sdk::trace::SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: Default::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// What an unrecorded request passes on instead of its spans' context: the trace
/// headers (its caller's, or made up for a new trace) and the trace id its log lines
/// carry.
#[derive(Clone, Debug)]
pub struct Quiet {
    headers: TraceHeaders,
    trace_id: String,
}

tokio::task_local! {
    /// The unrecorded request the current task serves ([`serve`]).
    static QUIET: Quiet;
}

/// How one request to this process is traced: in a span (recorded, or no telemetry
/// here), or quietly.
pub enum Decision {
    Span(tracing::Span),
    Quiet(Quiet),
}

/// Samples a request where it arrives: a caller's `traceparent` decides (W3C
/// parent-based), a new trace is drawn with the configured share. Only a recorded
/// request gets `make`'s span; an unrecorded one costs no span at all (building and
/// dropping one per request was most of what tracing cost the gateway), and passes
/// on trace headers saying "not sampled" so the processes it calls skip it too. `make`
/// must declare the field `sampling.priority` (empty).
pub fn decide(headers: &axum::http::HeaderMap, make: impl FnOnce() -> tracing::Span) -> Decision {
    decide_at(RATIO.get().copied(), headers, make)
}

/// [`decide`] with the share given (`None`: no telemetry in this process).
fn decide_at(
    ratio: Option<f64>,
    headers: &axum::http::HeaderMap,
    make: impl FnOnce() -> tracing::Span,
) -> Decision {
    let Some(ratio) = ratio else {
        let span = make();
        extract(&span, headers);
        return Decision::Span(span);
    };
    if headers.get("traceparent").is_some() {
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let given = cx.span().span_context().clone();
        if given.is_valid() {
            if given.is_sampled() {
                let span = make();
                let _ = span.set_parent(cx);
                return Decision::Span(span);
            }
            return Decision::Quiet(Quiet {
                headers: ["traceparent", "tracestate"]
                    .into_iter()
                    .filter_map(|name| {
                        let value = headers.get(name)?.clone();
                        Some((axum::http::HeaderName::from_static(name), value))
                    })
                    .collect(),
                trace_id: given.trace_id().to_string(),
            });
        }
    }
    let mut random = [0u8; 32];
    if getrandom::fill(&mut random).is_err() {
        // No randomness: record nothing rather than everything.
        random[0] = 1;
    }
    let draw = u64::from_le_bytes(random[24..32].try_into().unwrap_or_default());
    if (draw as f64) < ratio * u64::MAX as f64 {
        let span = make();
        span.record(SAMPLING_PRIORITY, 1i64);
        return Decision::Span(span);
    }
    let trace_id = u128::from_le_bytes(random[..16].try_into().unwrap_or_default()).max(1);
    let span_id = u64::from_le_bytes(random[16..24].try_into().unwrap_or_default()).max(1);
    let traceparent = format!("00-{trace_id:032x}-{span_id:016x}-00");
    Decision::Quiet(Quiet {
        headers: axum::http::HeaderValue::from_str(&traceparent)
            .map(|v| vec![(axum::http::HeaderName::from_static("traceparent"), v)])
            .unwrap_or_default(),
        trace_id: format!("{trace_id:032x}"),
    })
}

/// Runs `work` as [`decide`] said: in its span, or with its quiet trace at hand for
/// what it sends on ([`recorded_or_headers`], [`inject`], [`current_traceparent`]) and
/// for its log lines.
pub async fn serve<F: std::future::Future>(decision: Decision, work: F) -> F::Output {
    use tracing::Instrument;
    match decision {
        Decision::Span(span) => work.instrument(span).await,
        Decision::Quiet(quiet) => QUIET.scope(quiet, work).await,
    }
}

/// The trace headers of the unrecorded request this task serves, if any.
fn quiet_headers() -> Option<TraceHeaders> {
    QUIET.try_with(|q| q.headers.clone()).ok()
}

/// The tracer spans are made with directly, not through `tracing` (a query's span is
/// made after the query, with the times it ran); set by [`init`].
static TRACER: OnceLock<opentelemetry_sdk::trace::Tracer> = OnceLock::new();

/// Spans for the resolvers of a traced request: every subgraph schema registers it
/// (`.extension(ResolverSpans)`). Fields that select fields of their own (objects,
/// lists of them: where resolvers load things) get one; a leaf (a scalar, an enum)
/// does not, or a list of products would bury its statements under thousands of
/// spans of microseconds. Whether a resolver waits cannot tell them apart: on
/// SQLite a mutation's six statements can all finish within its first poll.
/// Untraced requests (the 99 in 100 sampling leaves out) pay one check when they
/// start.
pub struct ResolverSpans;

impl async_graphql::extensions::ExtensionFactory for ResolverSpans {
    fn create(&self) -> Arc<dyn async_graphql::extensions::Extension> {
        if sampled() {
            Arc::new(SpanEachObjectField)
        } else {
            Arc::new(Untraced)
        }
    }
}

struct Untraced;

impl async_graphql::extensions::Extension for Untraced {}

struct SpanEachObjectField;

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for SpanEachObjectField {
    async fn resolve(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        info: async_graphql::extensions::ResolveInfo<'_>,
        next: async_graphql::extensions::NextResolve<'_>,
    ) -> async_graphql::ServerResult<Option<async_graphql::Value>> {
        use tracing::Instrument;
        if info.is_for_introspection || info.field.selection_set.node.items.is_empty() {
            return next.run(ctx, info).await;
        }
        let span = tracing::info_span!(
            "graphql.resolve",
            graphql.field.path = %info.path_node,
            graphql.field.parent_type = info.parent_type,
            graphql.field.name = info.name,
        );
        next.run(ctx, info).instrument(span).await
    }
}

/// Records one SQL statement as a span of the traced request (or event) that ran it:
/// SeaORM calls this after each statement ([`crate::db`] registers it on every pool),
/// with how long it took. The text has placeholders, never the values bound to them.
pub fn record_query(info: &sea_orm::metric::Info<'_>) {
    use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
    let current = tracing::Span::current();
    if current.is_none() {
        return;
    }
    let cx = current.context();
    if !cx.span().span_context().is_sampled() {
        return;
    }
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let sql = info.statement.sql.trim_start();
    let operation = sql
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    let system = match info.statement.db_backend {
        sea_orm::DbBackend::MySql => "mysql",
        sea_orm::DbBackend::Sqlite => "sqlite",
        _ => "other_sql",
    };
    let end = std::time::SystemTime::now();
    let start = end.checked_sub(info.elapsed).unwrap_or(end);
    let mut span = tracer
        .span_builder(if operation.is_empty() {
            system.to_string()
        } else {
            operation.clone()
        })
        .with_kind(SpanKind::Client)
        .with_start_time(start)
        .with_attributes([
            opentelemetry::KeyValue::new("db.system.name", system),
            opentelemetry::KeyValue::new("db.operation.name", operation),
            opentelemetry::KeyValue::new(
                "db.query.text",
                crate::input::shortened(sql, MAX_QUERY_TEXT),
            ),
        ])
        .start_with_context(tracer, &cx);
    if info.failed {
        span.set_status(Status::error("the statement failed"));
    }
    span.end_with_timestamp(end);
}

/// Longest statement text a span keeps: a bulk insert's runs to megabytes.
const MAX_QUERY_TEXT: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer the formatter writes lines into.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_long_statement_is_cut_at_a_character_boundary() {
        let sql = format!("INSERT INTO t VALUES {}", "(?, 'é'),".repeat(400));
        let kept = crate::input::shortened(&sql, MAX_QUERY_TEXT);
        assert!(kept.len() <= MAX_QUERY_TEXT + '…'.len_utf8());
        assert!(kept.ends_with('…'));
        assert!(sql.starts_with(kept.trim_end_matches('…')));
        assert_eq!(
            crate::input::shortened("SELECT 1", MAX_QUERY_TEXT),
            "SELECT 1"
        );
    }

    #[test]
    fn json_lines_carry_the_event_its_fields_and_its_trace() {
        let provider = provider(&TelemetryOptions {
            service: "test".into(),
            json_logs: true,
            otlp_endpoint: None,
            otlp_protocol: "grpc".into(),
            sample_ratio: 1.0,
        })
        .expect("a provider");
        let lines = Lines::default();
        let writer = lines.clone();
        let format = JsonLines::default();
        let dispatch = format.dispatch.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(format)
                    .with_writer(move || writer.clone()),
            );
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            tracing::dispatcher::get_default(|d| dispatch.set(d.downgrade()).ok());
            tracing::info!(count = 3, "outside any span");
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            tracing::warn!(order = "o-1", "inside a span");
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            (sc.trace_id().to_string(), sc.span_id().to_string())
        });
        let text = String::from_utf8(lines.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(parsed.len(), 2, "{text}");
        assert_eq!(parsed[0]["level"], "INFO");
        assert_eq!(parsed[0]["message"], "outside any span");
        assert_eq!(parsed[0]["fields"]["count"], 3);
        assert!(parsed[0].get("trace_id").is_none());
        assert_eq!(parsed[1]["level"], "WARN");
        assert_eq!(parsed[1]["fields"]["order"], "o-1");
        assert_eq!(parsed[1]["spans"], serde_json::json!(["work"]));
        assert_eq!(parsed[1]["trace_id"], trace_id.as_str());
        assert_eq!(parsed[1]["span_id"], span_id.as_str());
        assert_eq!(trace_id.len(), 32);
        assert!(
            parsed[1]["timestamp"]
                .as_str()
                .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
        );
    }

    fn test_provider(sample_ratio: f64) -> SdkTracerProvider {
        provider(&TelemetryOptions {
            service: "test".into(),
            json_logs: false,
            otlp_endpoint: None,
            otlp_protocol: "grpc".into(),
            sample_ratio,
        })
        .expect("a provider")
    }

    fn request_span() -> tracing::Span {
        tracing::info_span!("request", sampling.priority = tracing::field::Empty)
    }

    fn traceparent_of(quiet: &Quiet) -> String {
        quiet
            .headers
            .iter()
            .find(|(n, _)| n == "traceparent")
            .and_then(|(_, v)| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }

    /// Requests are sampled where they arrive: the caller's flag, else a draw at the
    /// share; a recorded one has a span the sampler keeps (not drawn for twice), an
    /// unrecorded one none, and says "not sampled" to whoever it calls.
    #[test]
    fn requests_are_sampled_once_where_they_arrive() {
        // Nothing is recorded at share 0, so only the edge's choice can record a root.
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(test_provider(0.0).tracer("t")));
        tracing::subscriber::with_default(subscriber, || {
            let none = axum::http::HeaderMap::new();
            match decide_at(Some(1.0), &none, request_span) {
                Decision::Span(span) => assert!(
                    span.context().span().span_context().is_sampled(),
                    "drawn at the edge, kept by the sampler"
                ),
                Decision::Quiet(_) => panic!("share 1 records every new trace"),
            }
            match decide_at(Some(0.0), &none, request_span) {
                Decision::Quiet(q) => {
                    let tp = traceparent_of(&q);
                    let parts: Vec<&str> = tp.split('-').collect();
                    assert_eq!(parts.len(), 4, "{tp}");
                    assert_eq!((parts[0], parts[3]), ("00", "00"), "not sampled: {tp}");
                    assert_eq!(parts[1], q.trace_id);
                    assert_eq!((parts[1].len(), parts[2].len()), (32, 16));
                }
                Decision::Span(_) => panic!("share 0 records no new trace"),
            }
            // Two unrecorded requests are two traces.
            let ids: Vec<String> = (0..2)
                .map(|_| match decide_at(Some(0.0), &none, request_span) {
                    Decision::Quiet(q) => q.trace_id,
                    Decision::Span(_) => panic!("share 0"),
                })
                .collect();
            assert_ne!(ids[0], ids[1]);

            // A caller's decision wins over the share, both ways.
            let mut sampled = axum::http::HeaderMap::new();
            sampled.insert(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                    .parse()
                    .unwrap(),
            );
            match decide_at(Some(0.0), &sampled, request_span) {
                Decision::Span(span) => {
                    let cx = span.context();
                    let sc = cx.span().span_context().clone();
                    assert!(sc.is_sampled());
                    assert_eq!(
                        sc.trace_id().to_string(),
                        "4bf92f3577b34da6a3ce929d0e0e4736"
                    );
                }
                Decision::Quiet(_) => panic!("the caller records it"),
            }
            let mut unsampled = axum::http::HeaderMap::new();
            let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
            unsampled.insert("traceparent", given.parse().unwrap());
            unsampled.insert("tracestate", "vendor=1".parse().unwrap());
            match decide_at(Some(1.0), &unsampled, request_span) {
                Decision::Quiet(q) => {
                    assert_eq!(traceparent_of(&q), given, "passed on as it came");
                    assert!(
                        q.headers
                            .iter()
                            .any(|(n, v)| n == "tracestate" && v == "vendor=1")
                    );
                    assert_eq!(q.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
                }
                Decision::Span(_) => panic!("the caller does not record it"),
            }
            // A malformed one is no decision: a new trace is drawn.
            let mut bad = axum::http::HeaderMap::new();
            bad.insert("traceparent", "00-nonsense-01".parse().unwrap());
            assert!(matches!(
                decide_at(Some(1.0), &bad, request_span),
                Decision::Span(_)
            ));
            // Without telemetry every request gets its span, as any span would be.
            assert!(matches!(
                decide_at(None, &unsampled, request_span),
                Decision::Span(_)
            ));
        });
    }

    /// What an unrecorded request sends on, and its log lines, name its quiet trace.
    #[test]
    fn an_unrecorded_request_passes_its_trace_on_and_its_logs_name_it() {
        let lines = Lines::default();
        let writer = lines.clone();
        let format = JsonLines::default();
        let dispatch = format.dispatch.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(test_provider(0.0).tracer("t")))
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(format)
                    .with_writer(move || writer.clone()),
            );
        let _default = tracing::subscriber::set_default(subscriber);
        tracing::dispatcher::get_default(|d| dispatch.set(d.downgrade()).ok());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let Decision::Quiet(quiet) =
            decide_at(Some(0.0), &axum::http::HeaderMap::new(), request_span)
        else {
            panic!("share 0");
        };
        let expected = traceparent_of(&quiet);
        let trace_id = quiet.trace_id.clone();
        let (recorded, headers, event, injected) =
            runtime.block_on(serve(Decision::Quiet(quiet), async {
                tracing::warn!("inside an unrecorded request");
                let (recorded, headers) = recorded_or_headers();
                let mut injected = axum::http::HeaderMap::new();
                inject(&mut injected);
                (recorded, headers, current_traceparent(), injected)
            }));
        assert!(!recorded);
        assert_eq!(
            headers
                .iter()
                .find(|(n, _)| n == "traceparent")
                .map(|(_, v)| v.to_str().unwrap_or_default()),
            Some(expected.as_str())
        );
        assert_eq!(event.as_deref(), Some(expected.as_str()), "events carry it");
        assert_eq!(
            injected.get("traceparent").and_then(|v| v.to_str().ok()),
            Some(expected.as_str())
        );
        // Outside it, nothing.
        assert_eq!(current_traceparent(), None);
        let text = String::from_utf8(lines.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default();
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap_or("{}"))
            .unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(line["trace_id"], trace_id.as_str(), "{text}");
    }

    /// The sampler keeps a root the edge chose, and otherwise follows the parent or
    /// the share.
    #[test]
    fn the_sampler_keeps_what_the_edge_chose_and_nothing_else() {
        use opentelemetry::trace::{
            SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState,
        };
        use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};
        let sampler = EdgeSampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            0.0,
        ))));
        let chosen = [opentelemetry::KeyValue::new(SAMPLING_PRIORITY, 1i64)];
        let trace = TraceId::from(7u128);
        let decide = |parent: Option<&opentelemetry::Context>,
                      attrs: &[opentelemetry::KeyValue]| {
            sampler
                .should_sample(parent, trace, "request", &SpanKind::Server, attrs, &[])
                .decision
        };
        assert_eq!(decide(None, &chosen), SamplingDecision::RecordAndSample);
        assert_eq!(decide(None, &[]), SamplingDecision::Drop);
        let unsampled_parent =
            opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                trace,
                SpanId::from(9u64),
                TraceFlags::default(),
                true,
                TraceState::default(),
            ));
        assert_eq!(
            decide(Some(&unsampled_parent), &chosen),
            SamplingDecision::Drop,
            "a parent's decision is not overridden"
        );
    }

    #[test]
    fn a_traceparent_written_into_an_event_is_continued_by_its_consumer() {
        let provider = provider(&TelemetryOptions {
            service: "test".into(),
            json_logs: false,
            otlp_endpoint: None,
            otlp_protocol: "grpc".into(),
            sample_ratio: 1.0,
        })
        .expect("a provider");
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(current_traceparent(), None, "outside a span there is none");
            let writer = tracing::info_span!("write");
            let parent = writer.in_scope(current_traceparent).expect("a traceparent");
            let writer_trace = writer.context().span().span_context().trace_id();
            assert!(parent.starts_with("00-"), "{parent}");
            assert!(parent.contains(&writer_trace.to_string()));
            let consumer = tracing::info_span!("handle");
            continue_from(&consumer, &parent);
            assert_eq!(
                consumer.context().span().span_context().trace_id(),
                writer_trace
            );
        });
    }
}
