//! The configured providers, built once at start-up: the one place that maps a configured
//! `kind` to an implementation.

use std::sync::Arc;

use url::Url;

use super::dev::DevProvider;
use super::github::GithubProvider;
use super::oidc::OidcProvider;
use super::{Provider, UpstreamError};
use crate::config::{ProviderKind, ProviderSettings, Settings};
use crate::crypto::Secrets;

/// The upstream providers, in configured order (the order of the provider-choice page).
#[derive(Clone)]
pub struct Providers {
    providers: Vec<Arc<dyn Provider>>,
    has_dev: bool,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.providers.iter().map(|p| p.id()))
            .finish()
    }
}

impl Providers {
    /// Builds every configured provider; OIDC discovery runs for all of them concurrently.
    /// A provider that cannot be discovered fails start-up, named by its id.
    pub async fn from_settings(
        settings: &Settings,
        public_base_url: &Url,
        secrets: &Secrets,
        http: reqwest::Client,
    ) -> Result<Providers, UpstreamError> {
        let built = settings.providers.iter().map(|provider| {
            let http = http.clone();
            async move {
                let built: Arc<dyn Provider> = match &provider.kind {
                    ProviderKind::Dev => {
                        Arc::new(DevProvider::new(provider, public_base_url, secrets.clone()))
                    }
                    ProviderKind::Github(github) => Arc::new(GithubProvider::new(
                        &provider.id,
                        &provider.display_name,
                        github,
                        http,
                    )),
                    ProviderKind::Oidc(oidc) => Arc::new(
                        OidcProvider::discover(&provider.id, &provider.display_name, oidc, http)
                            .await
                            .map_err(|err| {
                                let reason = match err {
                                    UpstreamError::InvalidGrant => err.to_string(),
                                    UpstreamError::Discovery(reason)
                                    | UpstreamError::Refused(reason)
                                    | UpstreamError::Invalid(reason)
                                    | UpstreamError::Transport(reason) => reason,
                                };
                                UpstreamError::Discovery(format!(
                                    "provider `{}`: {reason}",
                                    provider.id
                                ))
                            })?,
                    ),
                };
                Ok::<_, UpstreamError>(built)
            }
        });
        let providers = futures::future::try_join_all(built).await?;
        let has_dev = settings.providers.iter().any(ProviderSettings::is_dev);
        Ok(Providers { providers, has_dev })
    }

    /// Providers built by hand (tests, or a caller with its own factory).
    pub fn from_list(providers: Vec<Arc<dyn Provider>>, has_dev: bool) -> Providers {
        Providers { providers, has_dev }
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn Provider>> {
        self.providers.iter().find(|p| p.id() == id).cloned()
    }

    pub fn all(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    pub fn len(&self) -> usize {
        self.providers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// True when a development provider is configured: mount [`super::dev::router`] then.
    pub fn has_dev(&self) -> bool {
        self.has_dev
    }
}

/// Providers built in configured order, failures named.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::fake_idp::{CLIENT_ID, CLIENT_SECRET, FakeIdp};
    use crate::upstream::http_client;

    fn settings(issuer: &str) -> Settings {
        Settings::from_toml(&format!(
            r#"
            fernet_keys = ["{key}"]
            [[providers]]
            id = "corp"
            kind = "oidc"
            issuer = "{issuer}"
            client_id = "{CLIENT_ID}"
            client_secret = "{CLIENT_SECRET}"
            [[providers]]
            id = "partner"
            kind = "oidc"
            display_name = "Partner SSO"
            issuer = "{issuer}"
            client_id = "{CLIENT_ID}"
            client_secret = "{CLIENT_SECRET}"
            "#,
            key = Secrets::generate_key(),
        ))
        .unwrap()
    }

    fn secrets() -> Secrets {
        Secrets::from_keys(&[Secrets::generate_key()]).unwrap()
    }

    #[tokio::test]
    async fn providers_are_built_in_configured_order() {
        let idp = FakeIdp::start().await;
        let base = Url::parse("http://127.0.0.1:8080").unwrap();

        let providers = Providers::from_settings(
            &settings(&idp.issuer),
            &base,
            &secrets(),
            http_client().unwrap(),
        )
        .await
        .unwrap();

        let ids: Vec<&str> = providers.all().iter().map(|p| p.id()).collect();
        assert_eq!(ids, ["corp", "partner"]);
        assert_eq!(providers.len(), 2);
        assert!(!providers.has_dev());
        assert_eq!(
            providers
                .get("partner")
                .map(|p| p.display_name().to_owned())
                .as_deref(),
            Some("Partner SSO")
        );
        assert!(providers.get("nope").is_none());
    }

    #[tokio::test]
    async fn a_provider_that_cannot_be_discovered_is_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let base = Url::parse("http://127.0.0.1:8080").unwrap();

        let err = Providers::from_settings(
            &settings(&issuer),
            &base,
            &secrets(),
            http_client().unwrap(),
        )
        .await
        .unwrap_err();

        assert!(
            matches!(&err, UpstreamError::Discovery(msg) if msg.contains("`corp`")),
            "{err}"
        );
    }
}
