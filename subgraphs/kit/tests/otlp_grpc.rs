//! The OTLP exporter over gRPC (the default protocol), against a receiver built from
//! the protocol's own generated service: spans recorded in a process arrive there.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tracing_subscriber::layer::SubscriberExt;

/// Names of the spans received.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<String>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut names = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            for ss in rs.scope_spans {
                names.extend(ss.spans.into_iter().map(|s| s.name));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_grpc() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let received = Receiver::default();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let provider = shop_kit::telemetry::provider(&shop_kit::telemetry::TelemetryOptions {
        service: "grpc-test".into(),
        json_logs: false,
        otlp_endpoint: Some(endpoint),
        otlp_protocol: "grpc".into(),
        sample_ratio: 1.0,
    })
    .unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("sent.over.grpc");
        span.in_scope(|| tracing::info!("inside"));
    });
    // Flushing waits for the export, which runs on this runtime: off its threads.
    let flushed = tokio::task::spawn_blocking(move || {
        let result = provider.force_flush();
        (provider, result)
    })
    .await
    .unwrap();
    assert!(flushed.1.is_ok(), "{:?}", flushed.1);
    let got = shop_kit::testing::eventually(Duration::from_secs(10), || async {
        let names = received.0.lock().unwrap().clone();
        names
            .contains(&"sent.over.grpc".to_string())
            .then_some(names)
    })
    .await;
    assert!(got.is_some(), "the span never arrived over gRPC");
    drop(flushed.0);
}
