//! Metadata documents of the well-known clients, shipped in the binary.
//!
//! They are used when the client's own URL cannot be fetched (claude.ai's document has been
//! seen behind a bot challenge that a server cannot pass), and their URLs mark a client as
//! verified on the consent page. Each is the document its publisher serves, with the callbacks
//! the client is known to use.

use serde_json::{Value, json};

const CLAUDE_AI: &str = "https://claude.ai/oauth/mcp-oauth-client-metadata";
const CLAUDE_CODE: &str = "https://claude.ai/oauth/claude-code-client-metadata";
const CHATGPT: &str = "https://chatgpt.com/oauth/client.json";
/// ChatGPT's per-connector documents: `https://chatgpt.com/oauth/{callback_id}/client.json`,
/// whose callback is `https://chatgpt.com/connector/oauth/{callback_id}`.
const CHATGPT_CONNECTOR_PREFIX: &str = "https://chatgpt.com/oauth/";
const CHATGPT_CONNECTOR_SUFFIX: &str = "/client.json";

fn public_client(client_id: &str, name: &str, redirect_uris: &[&str]) -> Value {
    json!({
        "client_id": client_id,
        "client_name": name,
        "redirect_uris": redirect_uris,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// A connector id as ChatGPT makes them: one non-empty path segment of unreserved characters.
fn connector_id(client_id: &str) -> Option<&str> {
    let id = client_id
        .strip_prefix(CHATGPT_CONNECTOR_PREFIX)?
        .strip_suffix(CHATGPT_CONNECTOR_SUFFIX)?;
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~');
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(unreserved)).then_some(id)
}

/// The shipped document for `client_id`, if it is a well-known client.
pub fn document(client_id: &str) -> Option<Value> {
    match client_id {
        CLAUDE_AI => Some(public_client(
            CLAUDE_AI,
            "Claude",
            &[
                "https://claude.ai/api/mcp/auth_callback",
                "https://claude.com/api/mcp/auth_callback",
            ],
        )),
        // RFC 8252 §7.3: a loopback redirect matches on any port.
        CLAUDE_CODE => Some(public_client(
            CLAUDE_CODE,
            "Claude Code",
            &["http://localhost/callback", "http://127.0.0.1/callback"],
        )),
        CHATGPT => Some(public_client(
            CHATGPT,
            "ChatGPT",
            &["https://chatgpt.com/connector_platform_oauth_redirect"],
        )),
        _ => connector_id(client_id).map(|id| {
            public_client(
                client_id,
                "ChatGPT",
                &[&format!("https://chatgpt.com/connector/oauth/{id}")],
            )
        }),
    }
}

/// The pinned documents pass a fetched one's checks.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::cimd::document::{client_from_document, parse_url};
    use crate::oauth::redirect::matches_registered;

    fn client(client_id: &str) -> crate::store::Client {
        assert!(parse_url(client_id).is_ok(), "{client_id}");
        let body = document(client_id).unwrap().to_string();
        client_from_document(client_id, body.as_bytes(), chrono::Utc::now()).unwrap()
    }

    #[test]
    fn every_pinned_document_passes_the_checks_a_fetched_one_must() {
        let claude = client(CLAUDE_AI);
        for uri in [
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.com/api/mcp/auth_callback",
        ] {
            assert!(matches_registered(&claude.redirect_uris, uri), "{uri}");
        }
        let code = client(CLAUDE_CODE);
        assert!(matches_registered(
            &code.redirect_uris,
            "http://localhost:54321/callback"
        ));
        assert!(matches_registered(
            &code.redirect_uris,
            "http://127.0.0.1:1/callback"
        ));
        assert!(!matches_registered(
            &code.redirect_uris,
            "https://localhost:5/callback"
        ));
        let chatgpt = client(CHATGPT);
        assert!(matches_registered(
            &chatgpt.redirect_uris,
            "https://chatgpt.com/connector_platform_oauth_redirect"
        ));
    }

    #[test]
    fn chatgpt_connectors_get_their_own_callback_only() {
        let connector = client("https://chatgpt.com/oauth/OUbdUMlL15Ct/client.json");
        assert_eq!(
            connector.redirect_uris,
            ["https://chatgpt.com/connector/oauth/OUbdUMlL15Ct"]
        );
        for not_a_connector in [
            "https://chatgpt.com/oauth//client.json",
            "https://chatgpt.com/oauth/a/b/client.json",
            "https://chatgpt.com/oauth/../client.json",
            "https://chatgpt.com/oauth/a%2fb/client.json",
            "https://chatgpt.com.evil.example/oauth/x/client.json",
            "https://claude.ai/oauth/other",
        ] {
            assert!(document(not_a_connector).is_none(), "{not_a_connector}");
        }
    }
}
