//! The `Store` conformance suite: every case runs against SQLite (`store::sqlite::…`) and
//! Postgres (`store::postgres::…`), each on a fresh database.

/// The audit trail: events read back whole, filtered, newest first.
mod audit;
/// Remembered approvals, and the redirect URI a grant keeps.
mod consents;
/// Expiry compared with `now` as times, within one second.
mod expiry;
/// The rows the cases store, at fixed times.
mod fixtures;
/// A database from before identities, migrated.
mod legacy;
/// People as the operator manages them, and the listings of grants and clients.
mod people;
/// Revocations, the purge of expired rows, and step-up requests.
mod revocation;
/// Clients, users, flows and signing keys.
mod sign_in;
/// Grants and what they issue: codes and refresh tokens.
mod tokens;

use portcullis::store::Store;

use audit::*;
use consents::*;
use expiry::*;
use fixtures::{client, seeded_grant};
use people::*;
use revocation::*;
use sign_in::*;
use tokens::*;

/// Generates `sqlite::<case>` and `postgres::<case>` for each case below.
macro_rules! conformance {
    ($($case:ident),+ $(,)?) => {
        /// Every case on a fresh SQLite file.
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _url, _dir) = crate::support::db::fresh_sqlite().await;
                    super::$case(&*store).await;
                }
            )+
        }

        /// Every case on a fresh Postgres database.
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _url) = crate::support::db::fresh_postgres().await;
                    super::$case(&*store).await;
                }
            )+
        }
    };
}

conformance!(
    migrating_again_is_harmless_and_ping_answers,
    a_registered_client_reads_back_as_stored,
    registering_an_existing_client_id_is_a_conflict,
    unknown_ids_read_as_none,
    a_user_keeps_its_id_across_sign_ins_and_takes_the_new_email,
    identities_are_people_by_provider_and_subject_not_by_email,
    roles_are_assigned_once_and_removed_once,
    a_person_is_found_by_identity_with_roles_and_that_identity,
    a_person_is_disabled_enabled_and_deleted_with_everything_theirs,
    the_most_recent_identity_at_a_provider_is_the_persons,
    grants_and_clients_are_listed_and_clients_deleted,
    concurrent_first_sign_ins_of_one_identity_make_one_person,
    a_flow_reads_back_updates_and_is_taken_once,
    a_callback_takes_only_a_flow_sent_upstream_by_its_browser,
    an_expired_flow_is_invisible_and_taking_it_deletes_it,
    inserting_an_existing_flow_id_is_a_conflict,
    concurrent_takes_hand_a_flow_to_one_caller,
    a_flow_moves_to_a_new_id_once_and_only_while_unexpired,
    a_grant_reads_back_with_its_upstream_tokens,
    replacing_upstream_tokens_round_trips,
    upstream_tokens_are_replaced_only_while_the_refresh_token_is_the_one_spent,
    a_grant_for_an_unknown_user_is_refused,
    duplicate_grants_codes_and_refresh_tokens_are_conflicts,
    a_code_is_redeemed_once_then_reported_as_replayed,
    a_code_reads_with_its_grant_and_email_without_being_spent,
    an_unknown_code_is_unknown,
    an_expired_code_is_unknown,
    concurrent_redemptions_spend_a_code_once,
    a_refresh_token_is_stored_with_the_code_it_spends_and_only_then,
    a_grant_and_its_code_are_stored_together_or_not_at_all,
    a_refresh_token_rotates_once_and_remembers_its_successor,
    concurrent_rotations_let_one_caller_win,
    a_deleted_refresh_token_is_gone,
    revoking_a_grant_is_idempotent_and_removes_what_it_issued,
    grants_revoked_since_lists_revocations_at_or_after_the_time,
    revoked_access_tokens_are_listed_since_a_time_and_keep_the_first_revocation,
    a_signing_key_inserted_twice_is_kept_once_and_keys_list_newest_first,
    purging_deletes_only_expired_rows_and_counts_them,
    purging_keeps_redeemed_codes_and_clears_successors_after_their_windows,
    a_step_up_request_is_taken_once_within_its_window,
    timestamps_round_trip_to_the_microsecond,
    expiry_within_one_second_compares_as_time,
    dead_grants_and_unused_clients_are_purged,
    an_audit_event_reads_back_with_every_field,
    every_audit_kind_and_decision_round_trips,
    audit_events_filter_by_user_id_or_email,
    audit_events_filter_by_tool_backend_and_kind,
    audit_events_since_a_time_include_that_time,
    audit_events_list_newest_first_up_to_the_limit,
    batches_of_500_and_more_audit_events_are_inserted,
    a_batch_with_a_duplicate_id_inserts_nothing,
    audit_events_older_than_the_retention_are_purged,
    a_grant_keeps_the_redirect_uri_it_was_issued_through,
    a_consent_is_found_for_its_browser_client_redirect_and_resource_until_it_expires,
    revoking_a_grant_forgets_the_consents_of_its_person_client_and_redirect,
    purging_deletes_expired_consents,
);

async fn migrating_again_is_harmless_and_ping_answers(store: &dyn Store) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

/// `sqlite::memory:` serves throwaway runs: its one connection must live as long as the store.
#[tokio::test]
async fn an_in_memory_sqlite_database_keeps_its_data_between_calls() {
    let store = portcullis::store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();

    store.insert_client(&client("client-1")).await.unwrap();
    seeded_grant(&*store, "grant-1").await;

    assert_eq!(
        store.get_client("client-1").await.unwrap(),
        Some(client("client-1"))
    );
    assert!(store.get_grant("grant-1").await.unwrap().is_some());
}
