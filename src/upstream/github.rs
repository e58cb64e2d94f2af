//! GitHub (`kind = "github"`), and GitHub Enterprise Server with `base_url`: OAuth 2, not
//! OpenID Connect. The person is GitHub's numeric user id (a login can be renamed); the email is
//! the primary verified one from `/user/emails`; organisations and teams are read for the
//! admission and role rules (`orgs`, and `teams` as `org/team`, lower-cased).
//!
//! GitHub answers a failed token request with HTTP 200 and an `error` body, so every token
//! answer is checked for `error` before it is used.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use url::Url;

use super::{AuthorizationRequest, Identity, Provider, ProviderTokens, UpstreamError};
use crate::config::GithubSettings;

/// At most this many organisations and teams are read (GitHub pages by 100).
const PAGE: &str = "100";
/// A token answer, an API answer: small.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A GitHub (or GitHub Enterprise Server) OAuth app.
pub struct GithubProvider {
    id: String,
    display_name: String,
    settings: GithubSettings,
    http: reqwest::Client,
}

impl std::fmt::Debug for GithubProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubProvider")
            .field("id", &self.id)
            .field("base_url", &self.settings.base_url.as_str())
            .finish_non_exhaustive()
    }
}

/// What the token endpoint answers: tokens, or (with HTTP 200) an error.
#[derive(Debug, Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<i64>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GithubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

#[derive(Debug, Deserialize)]
struct GithubOrg {
    login: String,
}

#[derive(Debug, Deserialize)]
struct GithubTeam {
    slug: String,
    organization: GithubOrg,
}

impl GithubProvider {
    pub fn new(
        id: &str,
        display_name: &str,
        settings: &GithubSettings,
        http: reqwest::Client,
    ) -> Self {
        Self {
            id: id.to_owned(),
            display_name: display_name.to_owned(),
            settings: settings.clone(),
            http,
        }
    }

    fn endpoint(&self, path: &str) -> Result<Url, UpstreamError> {
        self.settings
            .base_url
            .join(path)
            .map_err(|e| UpstreamError::Invalid(format!("GitHub URL: {e}")))
    }

    /// A POST to the token endpoint with `form` (client credentials added).
    async fn token_request(
        &self,
        form: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<ProviderTokens, UpstreamError> {
        let secret: &SecretString = &self.settings.client_secret;
        let mut fields = vec![
            ("client_id", self.settings.client_id.as_str()),
            ("client_secret", secret.expose_secret()),
        ];
        fields.extend_from_slice(form);
        let response = self
            .http
            .post(self.endpoint("login/oauth/access_token")?)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&fields)
            .send()
            .await
            .map_err(|e| UpstreamError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        let answer: TokenAnswer = read_json(response).await?;
        if let Some(error) = answer.error {
            // GitHub names a spent or expired code or refresh token its own way.
            if matches!(
                error.as_str(),
                "invalid_grant" | "bad_refresh_token" | "bad_verification_code"
            ) {
                return Err(UpstreamError::InvalidGrant);
            }
            // Never echo the request (it holds the code and the secret).
            let description = answer.error_description.unwrap_or_default();
            return Err(UpstreamError::Refused(format!("{error}: {description}")));
        }
        let Some(access_token) = answer.access_token.filter(|_| status.is_success()) else {
            return Err(UpstreamError::Invalid(format!(
                "the token answer ({status}) carries no access_token"
            )));
        };
        Ok(ProviderTokens {
            access_token: Some(access_token),
            refresh_token: answer.refresh_token,
            id_token: None,
            expires_at: answer
                .expires_in
                .map(|secs| now + chrono::Duration::seconds(secs)),
        })
    }

    /// GET `path` of the REST API with the person's token.
    async fn api<T: DeserializeOwned>(&self, token: &str, path: &str) -> Result<T, UpstreamError> {
        let url = self
            .settings
            .api_url
            .join(path)
            .map_err(|e| UpstreamError::Invalid(format!("GitHub API URL: {e}")))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| UpstreamError::Transport(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(UpstreamError::Refused(format!(
                "GitHub API {path} answered {}",
                response.status()
            )));
        }
        read_json(response).await
    }
}

async fn read_json<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, UpstreamError> {
    let bytes = response
        .bytes()
        .await
        .map_err(|e| UpstreamError::Transport(e.without_url().to_string()))?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(UpstreamError::Invalid(
            "GitHub's answer is too large".into(),
        ));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| UpstreamError::Invalid(format!("GitHub's answer does not parse: {e}")))
}

#[async_trait]
impl Provider for GithubProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<Url, UpstreamError> {
        let mut url = self.endpoint("login/oauth/authorize")?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", request.redirect_uri.as_str())
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", request.state)
            .append_pair("code_challenge", request.pkce_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("allow_signup", "false");
        Ok(url)
    }

    async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        _nonce: &str,
        redirect_uri: &Url,
        now: DateTime<Utc>,
    ) -> Result<Identity, UpstreamError> {
        let tokens = self
            .token_request(
                &[
                    ("code", code),
                    ("redirect_uri", redirect_uri.as_str()),
                    ("code_verifier", pkce_verifier),
                ],
                now,
            )
            .await?;
        let token = tokens.access_token.clone().unwrap_or_default();
        let user: GithubUser = self.api(&token, "user").await?;
        let emails: Vec<GithubEmail> = self.api(&token, "user/emails").await?;
        let email = emails
            .into_iter()
            .find(|e| e.primary && e.verified)
            .map(|e| e.email);
        let orgs: Vec<GithubOrg> = self
            .api(&token, &format!("user/orgs?per_page={PAGE}"))
            .await?;
        let teams: Vec<GithubTeam> = self
            .api(&token, &format!("user/teams?per_page={PAGE}"))
            .await?;
        let orgs: Vec<String> = orgs.into_iter().map(|o| o.login.to_lowercase()).collect();
        let teams: Vec<String> = teams
            .into_iter()
            .map(|t| format!("{}/{}", t.organization.login, t.slug).to_lowercase())
            .collect();
        Ok(Identity {
            subject: user.id.to_string(),
            email_verified: email.is_some(),
            email,
            name: user.name.or_else(|| Some(user.login.clone())),
            claims: json!({ "login": user.login, "orgs": orgs, "teams": teams }),
            tokens,
        })
    }

    async fn refresh(
        &self,
        refresh_token: &str,
        now: DateTime<Utc>,
    ) -> Result<ProviderTokens, UpstreamError> {
        // Only GitHub Apps with expiring user tokens issue refresh tokens.
        self.token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            now,
        )
        .await
    }
}
