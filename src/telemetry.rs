//! Logging set-up. Security events use the `security` target, audit events `audit`; neither
//! ever carries a secret, a token or a key.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber writing to `sink`. `RUST_LOG` overrides `filter`. Calling it
/// twice is harmless (the second call does nothing), which keeps tests simple.
pub fn init<W>(format: LogFormat, filter: &str, sink: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink)
        // Colour codes only for a terminal: a log file or collector gets plain text.
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
