//! OpenTelemetry trace export (`--otlp-endpoint`), off by default.
//!
//! The `tracing` spans become OpenTelemetry spans: one per API request
//! (`request`, with its id, method and route pattern) and, as its children,
//! one per plugin HTTP request (`egress`, with the destination host). They
//! are batched and sent over OTLP/HTTP with JSON bodies to
//! `<endpoint>/v1/traces`; spans still queued at shutdown are flushed.

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
