//! Logging, metrics and tracing set-up. Security events use the `security` target, audit events
//! `audit`; neither ever carries a secret, a token or a key.

/// Prometheus metrics: the names Portcullis exports and the helpers that record them.
pub mod metrics;
/// W3C Trace Context per request, and its propagation to backends.
pub mod trace;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// The service name spans carry when `OTEL_SERVICE_NAME` is not set.
pub const SERVICE_NAME: &str = "portcullis";

/// Where spans are exported over OTLP/HTTP (protobuf).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Otlp {
    /// The collector's traces URL (`…/v1/traces`).
    pub traces_endpoint: String,
    pub service_name: String,
}

impl Otlp {
    /// From the standard variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (with `/v1/traces` appended), and `OTEL_SERVICE_NAME`.
    /// `None` when neither endpoint is set or `OTEL_SDK_DISABLED=true`.
    pub fn from_env() -> Option<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return None;
        }
        let traces_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| {
            var("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        })?;
        Some(Self {
            traces_endpoint,
            service_name: var("OTEL_SERVICE_NAME").unwrap_or_else(|| SERVICE_NAME.to_owned()),
        })
    }
}

/// Keeps the span exporter; [`Telemetry::shutdown`] (or dropping it) sends what is pending.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans ended so far (tests; before a planned stop).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(error) = provider.force_flush()
        {
            eprintln!("portcullis: exporting spans failed: {error}");
        }
    }

    /// Sends what is pending and stops the exporter.
    pub fn shutdown(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("portcullis: stopping the span exporter failed: {error}");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Installs the global subscriber writing to `sink`, and, with `otlp`, the OpenTelemetry layer
/// that exports spans. `RUST_LOG` overrides `filter` (for the log only). Calling it twice is
/// harmless (the second call does nothing), which keeps tests simple.
pub fn init<W>(
    format: LogFormat,
    filter: &str,
    sink: W,
    ansi: bool,
    otlp: Option<&Otlp>,
) -> Telemetry
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let spec = filter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(spec));
    let Some(otlp) = otlp else {
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(sink)
            // Colour codes only for a terminal: a log file or collector gets plain text.
            .with_ansi(ansi);
        let _ = match format {
            LogFormat::Json => builder.json().try_init(),
            LogFormat::Text => builder.try_init(),
        };
        return Telemetry::default();
    };
    let provider = match tracer_provider(otlp) {
        Ok(provider) => provider,
        Err(error) => {
            eprintln!("portcullis: OTLP span export is not available: {error}");
            return init(format, spec, sink, ansi, None);
        }
    };
    let log = tracing_subscriber::fmt::layer()
        .with_writer(sink)
        .with_ansi(ansi);
    let log = match format {
        LogFormat::Json => log.json().with_filter(filter).boxed(),
        LogFormat::Text => log.with_filter(filter).boxed(),
    };
    // The log's filter (and RUST_LOG) do not decide what is exported: INFO spans are.
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SERVICE_NAME))
        .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    if tracing_subscriber::registry()
        .with(log)
        .with(spans)
        .try_init()
        .is_ok()
    {
        trace::set_exporting();
    }
    Telemetry {
        provider: Some(provider),
    }
}

fn tracer_provider(
    otlp: &Otlp,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(otlp.traces_endpoint.clone())
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(otlp.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
