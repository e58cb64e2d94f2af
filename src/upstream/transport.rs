//! The HTTP client `openidconnect`/`oauth2` use to talk to a provider.
//!
//! Both crates are built without their own reqwest (it would be 0.12 with `ring`), so this
//! bridges their `AsyncHttpClient` trait to Portcullis' reqwest 0.13 client. The bridge refuses
//! to follow redirects even when handed a client that would (a discovery document or token
//! endpoint that redirects elsewhere is an SSRF vector), bounds every request in time and every
//! body in size, and its errors never carry a request body (which holds codes and secrets).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// Upper bound on one request to a provider, whatever the client was built with.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Discovery documents, JWKS and token responses are a few kilobytes; this is generous.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A reqwest client built the way provider calls need it: no redirects, bounded in time.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// `AsyncHttpClient` over a reqwest 0.13 client.
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    pub(crate) fn new(inner: reqwest::Client) -> Self {
        Self { inner }
    }
}

/// Why a call to a provider failed, described without the request's contents.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("{0}")]
    Request(String),
    #[error("the provider answered with a redirect to another URL, which is not followed")]
    Redirected,
    #[error("the provider's response is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
}

impl From<reqwest::Error> for HttpError {
    fn from(err: reqwest::Error) -> Self {
        // reqwest names the URL (never a secret here: codes and tokens travel in bodies and
        // headers) and hides the useful part (refused, timed out, TLS…) in its source chain.
        Self::Request(error_chain(&err))
    }
}

/// An error with its causes: reqwest and openidconnect put the useful part in the source chain.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut request = reqwest::Request::try_from(request)?;
            *request.timeout_mut() = Some(REQUEST_TIMEOUT);
            let requested = request.url().clone();
            let mut response = self.inner.execute(request).await?;
            // A client built without `Policy::none()` follows redirects silently; the final URL
            // is the only trace of it.
            if response.url() != &requested {
                return Err(HttpError::Redirected);
            }
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            builder
                .body(body)
                .map_err(|err| HttpError::Request(err.to_string()))
        })
    }
}
