//! Provider choice and consent: the two pages between `/authorize` and the upstream sign-in.
//!
//! Every step checks that the browser is the one that started the flow (a cookie whose hash the
//! flow keeps) and that the form carries the flow's CSRF token, so neither a forged form nor a
//! flow link opened in another browser can approve anything.

use chrono::{DateTime, Utc};
use url::Url;

use super::access::{Entitlement, PROTOCOL_SCOPES};
use super::authorize::error_redirect;
use super::cimd::{ClientKind, ResolvedClient};
use super::error::{ErrorCode, FlowError, OAuthError};
use super::params::Params;
use super::scope::Scopes;
use super::server::AuthorizationServer;
use crate::crypto::{constant_time_eq, pkce_s256, random_token, sha256_hex};
use crate::paths;
use crate::store::{AuditEvent, AuditKind, Decision};
use crate::store::{Client, Consent, Flow, UpstreamLeg};
use crate::telemetry::metrics::{self, SignIn};
use crate::upstream::AuthorizationRequest;

/// What the consent page shows.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub flow_id: String,
    pub csrf: String,
    pub client_name: String,
    pub client_id: String,
    pub redirect_host: String,
    /// The client is identified by a metadata document at the URL `client_id`.
    pub document_client: bool,
    /// A well-known client (a pinned document) or one from a host the operator trusts.
    pub verified: bool,
    /// A metadata document client whose every redirect URI is on this computer: any program
    /// here could claim to be it.
    pub local_only: bool,
    /// What the token will carry.
    pub scopes: Vec<String>,
    /// What the client asked for that this provider may not grant.
    pub withheld: Vec<String>,
    /// Roles decide: the person gets those of `scopes` their roles allow.
    pub by_role: bool,
    pub resource: String,
    pub provider_name: String,
}

/// One choice on the provider page.
#[derive(Debug, Clone)]
pub struct ProviderChoice {
    pub id: String,
    pub name: String,
    /// A `data:` URL, or none: the page shows the name's initial instead.
    pub logo: Option<String>,
}

impl ProviderChoice {
    /// The first letter of the name, for a provider without a logo.
    pub fn initial(&self) -> String {
        self.name
            .chars()
            .find(|c| c.is_alphanumeric())
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct ProviderView {
    pub flow_id: String,
    pub csrf: String,
    pub client_name: String,
    pub providers: Vec<ProviderChoice>,
}

fn browser_matches(flow: &Flow, browser_secret: Option<&str>) -> bool {
    browser_secret
        .is_some_and(|secret| constant_time_eq(&sha256_hex(secret), &flow.data.browser_hash))
}

/// The flow, if it exists and this browser started it.
pub async fn flow_for_browser(
    server: &AuthorizationServer,
    flow_id: &str,
    browser_secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Flow, FlowError> {
    let flow = server
        .store
        .get_flow(flow_id, now)
        .await?
        .ok_or(FlowError::FlowGone)?;
    if !browser_matches(&flow, browser_secret) {
        tracing::warn!(target: "security", event = "flow.foreign_browser", "a flow was opened in a browser that did not start it");
        return Err(FlowError::ForeignBrowser);
    }
    Ok(flow)
}

fn check_csrf(flow: &Flow, form: &Params) -> Result<(), FlowError> {
    match form.get("csrf") {
        Some(token) if constant_time_eq(token, &flow.data.csrf) => Ok(()),
        _ => {
            tracing::warn!(target: "security", event = "consent.csrf_rejected", client_id = %flow.data.client_id);
            Err(FlowError::FormExpired)
        }
    }
}

async fn client_of(
    server: &AuthorizationServer,
    flow: &Flow,
    now: DateTime<Utc>,
) -> Result<ResolvedClient, FlowError> {
    match server.clients.resolve(&flow.data.client_id, now).await {
        Ok(resolved) => Ok(resolved),
        // Deleted since the flow began.
        Err(super::cimd::ClientError::Unknown) => Err(FlowError::FlowGone),
        Err(error) => Err(error.into()),
    }
}

fn display_name(client: &Client) -> String {
    client
        .client_name
        .clone()
        .unwrap_or_else(|| "An unnamed application".into())
}

pub async fn provider_view(
    server: &AuthorizationServer,
    flow: &Flow,
    now: DateTime<Utc>,
) -> Result<ProviderView, FlowError> {
    let client = client_of(server, flow, now).await?.client;
    Ok(ProviderView {
        flow_id: flow.id.clone(),
        csrf: flow.data.csrf.clone(),
        client_name: display_name(&client),
        providers: server
            .providers
            .all()
            .iter()
            .map(|p| ProviderChoice {
                id: p.id().to_owned(),
                name: p.display_name().to_owned(),
                logo: server.logos.get(p.id()).cloned(),
            })
            .collect(),
    })
}

/// Records the provider chosen on the provider page. Returns the flow id for the consent page.
pub async fn choose_provider(
    server: &AuthorizationServer,
    form: &Params,
    browser_secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<String, FlowError> {
    let flow_id = form.get("flow").ok_or(FlowError::FlowGone)?;
    let mut flow = flow_for_browser(server, flow_id, browser_secret, now).await?;
    check_csrf(&flow, form)?;
    let provider = form
        .get("provider")
        .and_then(|id| server.providers.get(id))
        .ok_or(FlowError::UnknownProvider)?;
    flow.data.provider = Some(provider.id().to_owned());
    if !server.store.update_flow(&flow, now).await? {
        return Err(FlowError::FlowGone);
    }
    Ok(flow.id)
}

/// What the consent step does: show the page, or, when this person approved the same client,
/// redirect URI, resource and scopes in this browser before (remembered consent), go on.
#[derive(Debug)]
pub enum ConsentStep {
    Ask(Box<ConsentView>),
    /// Where to send the browser: the upstream provider.
    Remembered(Url),
}

/// The consent step of `flow`: the page, or straight on when the approval is remembered.
pub async fn consent_step(
    server: &AuthorizationServer,
    flow: &Flow,
    now: DateTime<Utc>,
) -> Result<ConsentStep, FlowError> {
    let resolved = client_of(server, flow, now).await?;
    if let Some(consent) = remembered(server, flow, now).await? {
        let mut flow = flow.clone();
        flow.data.remembered_user = Some(consent.user_id);
        tracing::info!(target: "audit", event = "consent.remembered", client_id = %flow.data.client_id, redirect_uri = %flow.data.redirect_uri);
        return send_upstream(server, flow, now)
            .await
            .map(ConsentStep::Remembered);
    }
    consent_view(server, flow, resolved).map(|view| ConsentStep::Ask(Box::new(view)))
}

/// The approval of this browser for the flow's client, redirect URI and resource, if it covers
/// every scope asked for now.
async fn remembered(
    server: &AuthorizationServer,
    flow: &Flow,
    now: DateTime<Utc>,
) -> Result<Option<Consent>, FlowError> {
    if server.remember_consent <= chrono::Duration::zero() {
        return Ok(None);
    }
    let Some(consent) = server
        .store
        .remembered_consent(
            &flow.data.browser_hash,
            &flow.data.client_id,
            &flow.data.redirect_uri,
            &flow.data.resource,
            now,
        )
        .await?
    else {
        return Ok(None);
    };
    let approved = Scopes::parse(&consent.scope).unwrap_or_default();
    Ok(requested_scopes(flow)
        .is_subset(&approved)
        .then_some(consent))
}

/// After the upstream sign-in, before anything is granted: a remembered approval holds only for
/// the person who gave it, and an explicit approval is remembered when the operator wants it.
pub async fn after_sign_in(
    server: &AuthorizationServer,
    flow: &Flow,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    let data = &flow.data;
    match data.remembered_user.as_deref() {
        Some(approver) if approver != user_id => {
            // Someone else signed in in this browser: they approved nothing. The approval is
            // forgotten so that the next attempt asks.
            tracing::warn!(target: "security", event = "consent.remembered_for_another", client_id = %data.client_id);
            server
                .store
                .forget_consent(
                    &data.browser_hash,
                    &data.client_id,
                    &data.redirect_uri,
                    &data.resource,
                )
                .await?;
            Err(OAuthError::new(
                ErrorCode::AccessDenied,
                "the person who signed in has not approved this application; connect again",
            ))
        }
        Some(_) => Ok(()),
        None if server.remember_consent > chrono::Duration::zero() => {
            server
                .store
                .remember_consent(&Consent {
                    browser_hash: data.browser_hash.clone(),
                    client_id: data.client_id.clone(),
                    redirect_uri: data.redirect_uri.clone(),
                    resource: data.resource.clone(),
                    user_id: user_id.to_owned(),
                    scope: requested_scopes(flow).to_string(),
                    created_at: now,
                    expires_at: now + server.remember_consent,
                })
                .await?;
            Ok(())
        }
        None => Ok(()),
    }
}

fn consent_view(
    server: &AuthorizationServer,
    flow: &Flow,
    resolved: ResolvedClient,
) -> Result<ConsentView, FlowError> {
    let ResolvedClient { client, kind } = resolved;
    let provider = flow
        .data
        .provider
        .as_deref()
        .and_then(|id| server.providers.get(id))
        .ok_or(FlowError::FlowGone)?;
    let requested = requested_scopes(flow);
    // Before the sign-in the person is unknown: the page lists the most this sign-in can
    // grant, and the person's roles decide within it.
    let granted = scopes_for(server, flow, &server.access.most_for(provider.id()));
    let redirect_host = Url::parse(&flow.data.redirect_uri)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(port) => format!("{h}:{port}"),
                None => h.to_owned(),
            })
        })
        .unwrap_or_default();
    let document_client = matches!(kind, ClientKind::Document { .. });
    let local_only = document_client
        && client
            .redirect_uris
            .iter()
            .all(|uri| super::redirect::is_loopback(uri));
    Ok(ConsentView {
        flow_id: flow.id.clone(),
        csrf: flow.data.csrf.clone(),
        client_name: display_name(&client),
        client_id: client.client_id,
        redirect_host,
        document_client,
        verified: matches!(kind, ClientKind::Document { verified: true }),
        local_only,
        scopes: granted.iter().map(str::to_owned).collect(),
        // `offline_access`, `openid` and the like are about the sign-in, not permissions.
        withheld: requested
            .iter()
            .filter(|s| !granted.contains(s) && !PROTOCOL_SCOPES.contains(s))
            .map(str::to_owned)
            .collect(),
        by_role: server.access.uses_roles(),
        resource: flow.data.resource.clone(),
        provider_name: provider.display_name().to_owned(),
    })
}

fn requested_scopes(flow: &Flow) -> Scopes {
    // Validated at /authorize; an unparsable value cannot be stored.
    flow.data
        .scope
        .as_deref()
        .and_then(|raw| Scopes::parse(raw).ok())
        .unwrap_or_default()
}

/// What this flow grants a person with `entitlement`, as the resource's grant mode says.
pub fn scopes_for(server: &AuthorizationServer, flow: &Flow, entitlement: &Entitlement) -> Scopes {
    let Some(resource) = server.resources.by_uri(&flow.data.resource) else {
        return Scopes::default();
    };
    entitlement.grant(
        resource.grant,
        &requested_scopes(flow),
        &resource.scopes_supported,
    )
}

/// Applies the person's decision: deny goes back to the client with `access_denied`; approve
/// goes to the upstream provider with Portcullis' own state, nonce and PKCE. Either way the
/// flow is taken, so a form can be used once.
pub async fn decide(
    server: &AuthorizationServer,
    form: &Params,
    browser_secret: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Url, FlowError> {
    let flow_id = form.get("flow").ok_or(FlowError::FlowGone)?;
    let flow = flow_for_browser(server, flow_id, browser_secret, now).await?;
    check_csrf(&flow, form)?;
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(FlowError::InvalidForm("choose approve or deny"));
        }
    };
    if !approve {
        // Taking the flow makes the decision single-use even under a double submit.
        let flow = server
            .store
            .take_flow(&flow.id, now)
            .await?
            .ok_or(FlowError::FlowGone)?;
        metrics::sign_in(
            flow.data.provider.as_deref().unwrap_or("none"),
            SignIn::ConsentDenied,
        );
        server.auditor.record(
            AuditEvent::new(AuditKind::SignIn, Decision::Denied, now)
                .client(flow.data.client_id.clone())
                .reason("the person denied consent"),
        );
        let error = OAuthError::new(ErrorCode::AccessDenied, "the person declined the request");
        return error_redirect(
            &flow.data.redirect_uri,
            &error,
            flow.data.state.as_deref(),
            server.issuer(),
        )
        .ok_or(FlowError::Internal);
    }
    send_upstream(server, flow, now).await
}

/// Moves the approved flow to the upstream leg and returns the provider's authorization URL.
async fn send_upstream(
    server: &AuthorizationServer,
    mut flow: Flow,
    now: DateTime<Utc>,
) -> Result<Url, FlowError> {
    let provider_id = flow.data.provider.clone().ok_or(FlowError::FlowGone)?;
    let provider = server
        .providers
        .get(&provider_id)
        .ok_or(FlowError::FlowGone)?;
    let upstream_state = random_token(32);
    let nonce = random_token(24);
    let verifier = random_token(48);
    let consented_id = std::mem::replace(&mut flow.id, upstream_state.clone());
    flow.data.upstream = Some(UpstreamLeg {
        nonce: nonce.clone(),
        pkce_verifier_enc: server.secrets.encrypt(&verifier),
    });
    // The flow moves to the upstream state in one statement: of a double submit only one
    // moves it, so the decision is single-use.
    if !server.store.rekey_flow(&consented_id, &flow, now).await? {
        return Err(FlowError::FlowGone);
    }
    let redirect_uri = Url::parse(&server.public.url(&paths::callback(&provider_id)))
        .map_err(|_| FlowError::Internal)?;
    let challenge = pkce_s256(&verifier);
    provider
        .authorization_url(&AuthorizationRequest {
            state: &upstream_state,
            nonce: &nonce,
            pkce_challenge: &challenge,
            redirect_uri: &redirect_uri,
        })
        .map_err(|error| {
            tracing::error!(%error, provider = %provider_id, "building the upstream authorization URL failed");
            FlowError::Internal
        })
}
