//! `portcullis clients list`, `show` and `delete`.

use super::output::{ClientView, Outcome, Output, joined, time};
use super::{Admin, AdminError, AdminResult, audit, grants_count, revoke_grants};
use crate::store::{AuditEvent, AuditKind, Decision, GrantFilter};
use crate::table::cell;

pub(super) async fn list(admin: &Admin<'_>, out: &mut Output<'_>) -> AdminResult<()> {
    let clients: Vec<ClientView> = (admin.store.list_clients().await?)
        .into_iter()
        .map(ClientView::from)
        .collect();
    if out.json {
        return out.json_lines(&clients);
    }
    let rows: Vec<Vec<String>> = clients
        .iter()
        .map(|c| {
            vec![
                cell(Some(&c.client_id)),
                cell(c.client_name.as_deref()),
                cell(Some(&c.token_endpoint_auth_method)),
                time(c.created_at),
                // Last: the list may run long.
                cell(Some(&joined(&c.redirect_uris))),
            ]
        })
        .collect();
    out.table(
        &[
            "CLIENT ID",
            "NAME",
            "AUTH METHOD",
            "CREATED",
            "REDIRECT URIS",
        ],
        &rows,
    )
}

pub(super) async fn show(
    admin: &Admin<'_>,
    client_id: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let Some(client) = admin.store.get_client(client_id).await? else {
        return Err(AdminError::NoSuchClient(client_id.to_owned()));
    };
    let client = ClientView::from(client);
    if out.json {
        return out.json_lines(&[client]);
    }
    let metadata = serde_json::to_string(&client.metadata).map_err(std::io::Error::from)?;
    out.fields(&[
        ("client id", client.client_id.clone()),
        ("name", cell(client.client_name.as_deref())),
        ("auth method", client.token_endpoint_auth_method.clone()),
        ("redirect uris", joined(&client.redirect_uris)),
        ("grant types", joined(&client.grant_types)),
        ("response types", joined(&client.response_types)),
        (
            "scope",
            client.scope.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        ("created", time(client.created_at)),
        ("metadata", metadata),
    ])
}

pub(super) async fn delete(
    admin: &Admin<'_>,
    client_id: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let Some(client) = admin.store.get_client(client_id).await? else {
        return Err(AdminError::NoSuchClient(client_id.to_owned()));
    };
    // Revoked, not deleted: the grant rows carry the revocations every instance polls. Grants
    // name their client without a foreign key, so deleting the client leaves them in place.
    let filter = GrantFilter {
        client_id: Some(client_id.to_owned()),
        ..GrantFilter::default()
    };
    let grants: Vec<String> = (admin.store.list_grants(&filter).await?)
        .into_iter()
        .map(|grant| grant.id)
        .collect();
    revoke_grants(admin, &grants).await?;
    if !admin.store.delete_client(client_id).await? {
        return Err(AdminError::NoSuchClient(client_id.to_owned()));
    }
    let revoked = format!("{} revoked", grants_count(grants.len()));
    audit(
        admin,
        AuditEvent::new(AuditKind::Admin, Decision::Allowed, admin.now)
            .client(client_id)
            .reason(format!("client deleted by the operator; {revoked}")),
    )
    .await?;
    let name = client
        .client_name
        .map(|name| format!(" ({name})"))
        .unwrap_or_default();
    let message = format!("deleted client {client_id}{name}; {revoked}");
    out.outcome(
        &Outcome::new(message, true)
            .client(client_id)
            .revoked(grants),
    )
}
