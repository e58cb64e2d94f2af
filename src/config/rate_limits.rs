//! `[rate_limits]`: how many requests each kind of caller may make per minute, and which
//! proxies' `X-Forwarded-For` is believed.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Requests per minute for each endpoint class. `None` is unlimited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Off: no request is limited.
    pub enabled: bool,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client. A request
    /// from anywhere else is limited by its own address, whatever it claims.
    pub trusted_proxies: Vec<IpNet>,
    /// `/register`, per client address.
    pub register: Option<u32>,
    /// `/authorize`, the provider and consent pages, the callback and the development sign-in,
    /// per client address.
    pub authorize: Option<u32>,
    /// `/token`, `/revoke` and `/introspect`, per client address.
    pub token: Option<u32>,
    /// The MCP endpoints, per person (the token's issuer and subject).
    pub mcp_person: Option<u32>,
    /// The MCP endpoints, per OAuth client. Off by default: a client identified by a metadata
    /// document (claude.ai, Claude Code) is one `client_id` for every installation.
    pub mcp_client: Option<u32>,
    /// The MCP endpoints, per API key.
    pub mcp_api_key: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRateLimits {
    enabled: bool,
    trusted_proxies: Vec<String>,
    register_per_minute: u32,
    authorize_per_minute: u32,
    token_per_minute: u32,
    mcp_person_per_minute: u32,
    mcp_client_per_minute: u32,
    mcp_api_key_per_minute: u32,
}

impl Default for RawRateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            trusted_proxies: Vec::new(),
            // A person connects a client a few times a day; a NAT of many people stays well
            // below this, a registration flood does not.
            register_per_minute: 30,
            // A sign-in is four or five of these requests.
            authorize_per_minute: 300,
            // Clients refresh in parallel bursts; introspecting resource servers are busier.
            token_per_minute: 600,
            mcp_person_per_minute: 1200,
            mcp_client_per_minute: 0,
            mcp_api_key_per_minute: 1200,
        }
    }
}

/// The largest rate accepted: ten thousand requests a second.
const MAX_PER_MINUTE: u32 = 600_000;

fn per_minute(key: &str, value: u32) -> Result<Option<u32>, ConfigError> {
    if value > MAX_PER_MINUTE {
        return Err(ConfigError::invalid(
            format!("rate_limits.{key}"),
            format!("use at most {MAX_PER_MINUTE} requests a minute, or 0 for no limit"),
        ));
    }
    Ok((value > 0).then_some(value))
}

/// `10.0.0.1` or `10.0.0.0/8` (IPv4 or IPv6).
fn proxy(index: usize, text: &str) -> Result<IpNet, ConfigError> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError::invalid(
                format!("rate_limits.trusted_proxies[{index}]"),
                format!("{text:?} is not an IP address or a CIDR range such as 10.0.0.0/8"),
            )
        })
}

pub(super) fn parse_rate_limits(raw: RawRateLimits) -> Result<RateLimitSettings, ConfigError> {
    Ok(RateLimitSettings {
        enabled: raw.enabled,
        trusted_proxies: raw
            .trusted_proxies
            .iter()
            .enumerate()
            .map(|(index, text)| proxy(index, text))
            .collect::<Result<_, _>>()?,
        register: per_minute("register_per_minute", raw.register_per_minute)?,
        authorize: per_minute("authorize_per_minute", raw.authorize_per_minute)?,
        token: per_minute("token_per_minute", raw.token_per_minute)?,
        mcp_person: per_minute("mcp_person_per_minute", raw.mcp_person_per_minute)?,
        mcp_client: per_minute("mcp_client_per_minute", raw.mcp_client_per_minute)?,
        mcp_api_key: per_minute("mcp_api_key_per_minute", raw.mcp_api_key_per_minute)?,
    })
}
