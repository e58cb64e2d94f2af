//! The inserts that run alone or inside a transaction with others (a grant with its code, a
//! redeemed code with its refresh token), and updates written once for several uses: each
//! statement written once, bound here.

use super::db::{Statement, sql};
use super::{AuthorizationCode, Grant, RefreshToken, UpstreamTokens};

pub(super) fn grant(grant: &Grant) -> Statement<'_> {
    sql(
        "INSERT INTO grants (id, user_id, client_id, provider, scope, resource,
             upstream_access_token_enc, upstream_refresh_token_enc, upstream_id_token_enc,
             upstream_expires_at, created_at, revoked_at, redirect_uri)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&grant.id)
    .bind(&grant.user_id)
    .bind(&grant.client_id)
    .bind(&grant.provider)
    .bind(&grant.scope)
    .bind(&grant.resource)
    .bind(&grant.upstream.access_token_enc)
    .bind(&grant.upstream.refresh_token_enc)
    .bind(&grant.upstream.id_token_enc)
    .bind(grant.upstream.expires_at)
    .bind(grant.created_at)
    .bind(grant.revoked_at)
    .bind(&grant.redirect_uri)
}

pub(super) fn code(code: &AuthorizationCode) -> Statement<'_> {
    sql(
        "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri,
             code_challenge, expires_at, redeemed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&code.code_hash)
    .bind(&code.grant_id)
    .bind(&code.client_id)
    .bind(&code.redirect_uri)
    .bind(&code.code_challenge)
    .bind(code.expires_at)
    .bind(code.redeemed_at)
}

pub(super) fn refresh_token(token: &RefreshToken) -> Statement<'_> {
    sql(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, created_at, expires_at,
             rotated_at, successor_enc)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&token.token_hash)
    .bind(&token.grant_id)
    .bind(&token.client_id)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.rotated_at)
    .bind(&token.successor_enc)
}

/// Stores a grant's new upstream tokens; with `replacing`, only while the stored upstream refresh
/// token is still that one.
pub(super) fn grant_upstream<'q>(
    id: &'q str,
    replacing: Option<&'q str>,
    upstream: &'q UpstreamTokens,
) -> Statement<'q> {
    sql(
        "UPDATE grants SET upstream_access_token_enc = $1, upstream_refresh_token_enc = $2,
             upstream_id_token_enc = $3, upstream_expires_at = $4
         WHERE id = $5 AND ($6 IS NULL OR upstream_refresh_token_enc = $6)",
    )
    .bind(&upstream.access_token_enc)
    .bind(&upstream.refresh_token_enc)
    .bind(&upstream.id_token_enc)
    .bind(upstream.expires_at)
    .bind(id)
    .bind(replacing)
}
