//! The inserts that run alone or inside a transaction with others (a grant with its code, a
//! redeemed code with its refresh token), and updates written once for several uses: each
//! statement written once, bound here.

use sqlx::query::Query;

use super::engine::{Bind, Engine, Ts};
use super::{AuthorizationCode, Grant, RefreshToken, UpstreamTokens};

/// The statements' arguments, as each engine holds them.
type Insert<'q, DB> = Query<'q, DB, <DB as sqlx::Database>::Arguments>;

pub(super) fn grant<DB: Engine>(grant: &Grant) -> Insert<'_, DB>
where
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    Ts: Bind<DB>,
    Option<Ts>: Bind<DB>,
{
    sqlx::query(
        "INSERT INTO grants (id, user_id, client_id, provider, scope, resource,
             upstream_access_token_enc, upstream_refresh_token_enc, upstream_id_token_enc,
             upstream_expires_at, created_at, revoked_at, redirect_uri)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(grant.id.clone())
    .bind(grant.user_id.clone())
    .bind(grant.client_id.clone())
    .bind(grant.provider.clone())
    .bind(grant.scope.clone())
    .bind(grant.resource.clone())
    .bind(grant.upstream.access_token_enc.clone())
    .bind(grant.upstream.refresh_token_enc.clone())
    .bind(grant.upstream.id_token_enc.clone())
    .bind(grant.upstream.expires_at.map(Ts))
    .bind(Ts(grant.created_at))
    .bind(grant.revoked_at.map(Ts))
    .bind(grant.redirect_uri.clone())
}

pub(super) fn code<DB: Engine>(code: &AuthorizationCode) -> Insert<'_, DB>
where
    String: Bind<DB>,
    Ts: Bind<DB>,
    Option<Ts>: Bind<DB>,
{
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri,
             code_challenge, expires_at, redeemed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(code.code_hash.clone())
    .bind(code.grant_id.clone())
    .bind(code.client_id.clone())
    .bind(code.redirect_uri.clone())
    .bind(code.code_challenge.clone())
    .bind(Ts(code.expires_at))
    .bind(code.redeemed_at.map(Ts))
}

pub(super) fn refresh_token<DB: Engine>(token: &RefreshToken) -> Insert<'_, DB>
where
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    Ts: Bind<DB>,
    Option<Ts>: Bind<DB>,
{
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, grant_id, client_id, created_at, expires_at,
             rotated_at, successor_enc)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(token.token_hash.clone())
    .bind(token.grant_id.clone())
    .bind(token.client_id.clone())
    .bind(Ts(token.created_at))
    .bind(Ts(token.expires_at))
    .bind(token.rotated_at.map(Ts))
    .bind(token.successor_enc.clone())
}

/// Stores a grant's new upstream tokens; with `replacing`, only while the stored upstream refresh
/// token is still that one.
pub(super) fn grant_upstream<'q, DB: Engine>(
    id: &'q str,
    replacing: Option<&'q str>,
    upstream: &'q UpstreamTokens,
) -> Insert<'q, DB>
where
    String: Bind<DB>,
    Option<String>: Bind<DB>,
    Option<Ts>: Bind<DB>,
{
    sqlx::query(
        "UPDATE grants SET upstream_access_token_enc = $1, upstream_refresh_token_enc = $2,
             upstream_id_token_enc = $3, upstream_expires_at = $4
         WHERE id = $5 AND ($6 IS NULL OR upstream_refresh_token_enc = $6)",
    )
    .bind(upstream.access_token_enc.clone())
    .bind(upstream.refresh_token_enc.clone())
    .bind(upstream.id_token_enc.clone())
    .bind(upstream.expires_at.map(Ts))
    .bind(id.to_owned())
    .bind(replacing.map(str::to_owned))
}
