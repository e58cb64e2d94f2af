//! `portcullis users disable`, `enable` and `delete`.
//!
//! Running instances refuse a revoked grant's tokens by polling `grants.revoked_at`
//! ([`RevocationView`](crate::oauth::revocation::RevocationView)); an access token is a signed
//! JWT that is otherwise good until it expires. So a person is cut off by revoking their
//! grants, and a grant row must outlive every token issued from it: deleting a person cascades
//! their grants away, which would un-revoke whatever token of theirs is still unexpired.
//! `delete` therefore refuses until no token issued to the person can still be valid, and
//! `disable` is the way to cut someone off at once.

use chrono::Duration;

use super::output::{Outcome, Output, time};
use super::{
    Admin, AdminError, AdminResult, audit, grants_count, person_event, publish, resolve_person,
    revoke_grants, who,
};
use crate::cluster::Event;
use crate::store::GrantFilter;

/// How long after its expiry a token is still taken into account: the clock skew the token
/// check allows (30 s, `oauth::tokens::CLOCK_SKEW_SECS`) with room to spare. The revocation
/// view keeps a revocation as long (`oauth::revocation`).
const EXPIRY_MARGIN: Duration = Duration::minutes(2);

pub(super) async fn disable(
    admin: &Admin<'_>,
    user: &str,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let person = resolve_person(admin.store, user).await?;
    let newly = person.disabled_at.is_none();
    // Switched off before the revocations: a sign-in or refresh racing this command is refused
    // from here on, so it cannot leave a fresh grant behind the revocations.
    if newly
        && !admin
            .store
            .set_user_disabled(&person.id, Some(admin.now))
            .await?
    {
        return Err(AdminError::NoSuchPerson(user.to_owned()));
    }
    let grants = admin.store.active_grants_of(&person.id).await?;
    revoke_grants(admin, &grants).await?;
    // Their API keys too: instances judge each key again.
    publish(admin, Event::KeysChanged).await;
    let revoked = format!("{} revoked", grants_count(grants.len()));
    let (message, reason) = match person.disabled_at {
        None => (
            format!("disabled {}; {revoked}", who(&person)),
            format!("disabled by the operator; {revoked}"),
        ),
        Some(since) => (
            format!(
                "{} was disabled already (since {}); {revoked}",
                who(&person),
                time(since)
            ),
            format!("{revoked} by the operator (already disabled)"),
        ),
    };
    let changed = newly || !grants.is_empty();
    if changed {
        audit(admin, person_event(admin, &person, reason)).await?;
    }
    out.outcome(&Outcome::new(message, changed).user(&person).revoked(grants))
}

pub(super) async fn enable(admin: &Admin<'_>, user: &str, out: &mut Output<'_>) -> AdminResult<()> {
    let person = resolve_person(admin.store, user).await?;
    if person.disabled_at.is_none() {
        let message = format!("{} is not disabled", who(&person));
        return out.outcome(&Outcome::new(message, false).user(&person));
    }
    if !admin.store.set_user_disabled(&person.id, None).await? {
        return Err(AdminError::NoSuchPerson(user.to_owned()));
    }
    let reason = "enabled by the operator".to_owned();
    audit(admin, person_event(admin, &person, reason)).await?;
    // Their grants stay revoked: what they held before is not handed back.
    let message = format!(
        "enabled {}; they sign in again to get new grants",
        who(&person)
    );
    out.outcome(&Outcome::new(message, true).user(&person))
}

pub(super) async fn delete(
    admin: &Admin<'_>,
    user: &str,
    yes: bool,
    out: &mut Output<'_>,
) -> AdminResult<()> {
    let person = resolve_person(admin.store, user).await?;
    let active = admin.store.active_grants_of(&person.id).await?;
    if !active.is_empty() {
        return Err(AdminError::Refused(format!(
            "{} still holds {}: run `portcullis users disable {user}` first, which revokes them, \
             and delete them once their tokens have expired ({} later)",
            who(&person),
            grants_count(active.len()),
            humane(admin.access_ttl + EXPIRY_MARGIN),
        )));
    }
    let filter = GrantFilter {
        user_id: Some(person.id.clone()),
        include_revoked: true,
        ..GrantFilter::default()
    };
    let last_revoked = (admin.store.list_grants(&filter).await?)
        .iter()
        .filter_map(|grant| grant.revoked_at)
        .max();
    if let Some(revoked_at) = last_revoked {
        // No token is issued from a grant once it is revoked (its refresh tokens and codes go
        // with it), so every token of theirs has expired by then.
        let expired_by = revoked_at + admin.access_ttl + EXPIRY_MARGIN;
        if expired_by > admin.now {
            return Err(AdminError::Refused(format!(
                "a token issued to {} may be valid until {}: deleting them sooner would undo its \
                 revocation; they are cut off already if disabled",
                who(&person),
                time(expired_by),
            )));
        }
    }
    if !yes {
        return Err(AdminError::Refused(format!(
            "deleting {} ({}) removes them with their identities, roles and grants for good: \
             run again with --yes",
            who(&person),
            person.id
        )));
    }
    if !admin.store.delete_user(&person.id).await? {
        return Err(AdminError::NoSuchPerson(user.to_owned()));
    }
    let reason = "deleted by the operator".to_owned();
    audit(admin, person_event(admin, &person, reason)).await?;
    let message = format!("deleted {} ({})", who(&person), person.id);
    out.outcome(&Outcome::new(message, true).user(&person))
}

/// `1 h 2 min`, `90 s`: a duration for a message.
fn humane(duration: Duration) -> String {
    let seconds = duration.num_seconds();
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 {
        parts.push(format!("{m} min"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s} s"));
    }
    parts.join(" ")
}

/// Durations read from the command line, and the margin for clock skew.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_hours_minutes_and_seconds() {
        assert_eq!(humane(Duration::seconds(0)), "0 s");
        assert_eq!(humane(Duration::seconds(90)), "1 min 30 s");
        assert_eq!(humane(Duration::minutes(62)), "1 h 2 min");
        assert_eq!(humane(Duration::hours(24)), "24 h");
    }

    #[test]
    fn the_margin_covers_the_clock_skew_a_token_check_allows() {
        let skew = Duration::seconds(crate::oauth::tokens::CLOCK_SKEW_SECS);
        assert!(EXPIRY_MARGIN >= skew + Duration::seconds(60));
    }
}
