//! OpenTelemetry trace export (`--otlp-endpoint`), off by default.
//!
//! The `tracing` spans become OpenTelemetry spans: one per API request
//! (`request`, with its id, method and route pattern) and, as its children,
//! one per plugin HTTP request (`egress`, with the destination host). They
//! are batched and sent over OTLP/HTTP with JSON bodies to
//! `<endpoint>/v1/traces`; spans still queued at shutdown are flushed.
//!
//! A request that carries a W3C `traceparent` header (and `tracestate`)
//! joins the caller's trace: its span is a child of the caller's
//! ([`join_caller_trace`]), so a storefront's trace shows the payment's
//! plugin call and provider requests under its own checkout span.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("--otlp-endpoint {0:?}: expected an http:// or https:// URL")]
    Endpoint(String),
    #[error("cannot set up the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The traces URL for an endpoint: a collector's base URL
/// (`http://collector:4318`) gets `/v1/traces`; a URL already ending in it
/// is kept.
pub fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let url = url::Url::parse(endpoint.trim())
        .map_err(|_| TelemetryError::Endpoint(endpoint.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(TelemetryError::Endpoint(endpoint.to_string()));
    }
    let text = url.as_str().trim_end_matches('/');
    if text.ends_with("/v1/traces") {
        Ok(text.to_string())
    } else {
        Ok(format!("{text}/v1/traces"))
    }
}

/// The exporting tracer provider (keep it, to flush it at exit) and the
/// layer that feeds it from `tracing`.
pub fn otlp_layer<S>(
    endpoint: &str,
) -> Result<
    (
        SdkTracerProvider,
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
    ),
    TelemetryError,
>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(traces_url(endpoint)?)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("passerelle")
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    let tracer = provider.tracer("passerelle");
    Ok((provider, tracing_opentelemetry::layer().with_tracer(tracer)))
}

/// The request headers, as OpenTelemetry's propagators read them.
struct RequestHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl opentelemetry::propagation::Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

/// Makes `span` a child of the trace named by the request's `traceparent`
/// header, when it has a valid one (an invalid one is ignored, as the W3C
/// recommendation says: the request starts a trace of its own).
pub fn join_caller_trace(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !headers.contains_key("traceparent") {
        return;
    }
    let caller = opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&RequestHeaders(headers));
    if !caller.span().span_context().is_valid() {
        return;
    }
    // Fails only when the span is disabled (no exporter): nothing to join.
    let _ = span.set_parent(caller);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_traces_path_once() {
        assert_eq!(
            traces_url("http://collector:4318").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/v1/traces/").unwrap(),
            "https://otel.example/v1/traces"
        );
        assert!(traces_url("collector:4318").is_err());
        assert!(traces_url("ftp://collector").is_err());
    }
}
