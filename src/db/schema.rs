//! The one diesel schema for both backends. Written by hand with portable SQL types only
//! (`BigInt`, `Integer`, `Text`, `Bool`, `Timestamp`), which is what `MultiConnection` supports.

diesel::table! {
    counters (name) {
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    incidents (id) {
        id -> BigInt,
        number -> BigInt,
        title -> Text,
        severity -> Text,
        status -> Text,
        summary -> Text,
        declared_by_name -> Text,
        declared_by_email -> Text,
        lead_name -> Nullable<Text>,
        lead_email -> Nullable<Text>,
        drill -> Bool,
        impact_started_at -> Nullable<Timestamp>,
        declared_at -> Timestamp,
        mitigated_at -> Nullable<Timestamp>,
        resolved_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
        detected_at -> Nullable<Timestamp>,
        mustered_at -> Nullable<Timestamp>,
        closed_reason -> Nullable<Text>,
        merged_into_number -> Nullable<BigInt>,
    }
}

diesel::table! {
    incident_services (incident_id, service) {
        incident_id -> BigInt,
        service -> Text,
    }
}

diesel::table! {
    timeline_entries (id) {
        id -> BigInt,
        incident_id -> BigInt,
        at -> Timestamp,
        actor_name -> Text,
        actor_email -> Text,
        kind -> Text,
        field -> Nullable<Text>,
        old_value -> Nullable<Text>,
        new_value -> Nullable<Text>,
        body -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        incident_id -> BigInt,
        timeline_entry_id -> Nullable<BigInt>,
        notifier -> Text,
        event -> Text,
        idempotency_key -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        lease_token -> Nullable<Text>,
        last_error -> Nullable<Text>,
        external_id -> Nullable<Text>,
        external_url -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        sequence_key -> Nullable<Text>,
        target -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (key) {
        key -> Text,
        actor_email -> Text,
        request_hash -> Text,
        incident_number -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    external_refs (incident_id, integration, name) {
        incident_id -> BigInt,
        integration -> Text,
        name -> Text,
        value -> Text,
        url -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        slack_user_id -> Nullable<Text>,
        role -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        time_zone -> Nullable<Text>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> BigInt,
        public_id -> Text,
        name -> Text,
        secret_hash -> Text,
        scopes -> Text,
        created_by_email -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    login_attempts (state) {
        state -> Text,
        nonce -> Text,
        code_verifier -> Text,
        next_path -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        email -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    status_updates (id) {
        id -> BigInt,
        incident_id -> BigInt,
        timeline_entry_id -> BigInt,
        at -> Timestamp,
        author_name -> Text,
        author_email -> Text,
        known -> Text,
        doing -> Text,
        next_update_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    nudges (id) {
        id -> BigInt,
        incident_id -> BigInt,
        kind -> Text,
        period -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    follow_ups (id) {
        id -> BigInt,
        incident_id -> BigInt,
        title -> Text,
        owner_name -> Text,
        owner_email -> Nullable<Text>,
        /// A calendar date as `YYYY-MM-DD` text (compares and sorts as text on both backends).
        due_on -> Text,
        status -> Text,
        jira_key -> Nullable<Text>,
        jira_url -> Nullable<Text>,
        jira_status -> Nullable<Text>,
        created_by_name -> Text,
        created_by_email -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    incident_roles (incident_id, role) {
        incident_id -> BigInt,
        role -> Text,
        name -> Text,
        email -> Text,
        assigned_at -> Timestamp,
    }
}

diesel::table! {
    slack_requests_seen (signature) {
        signature -> Text,
        request_ts -> BigInt,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    alert_groups (id) {
        id -> BigInt,
        group_key_hash -> Text,
        group_key -> Text,
        receiver -> Text,
        incident_id -> BigInt,
        external_url -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    alerts (id) {
        id -> BigInt,
        group_id -> BigInt,
        incident_id -> BigInt,
        fingerprint -> Text,
        starts_at -> Timestamp,
        ends_at -> Nullable<Timestamp>,
        status -> Text,
        /// JSON object of the alert's labels.
        labels -> Text,
        /// JSON object of the alert's annotations.
        annotations -> Text,
        generator_url -> Text,
        firing_entry_id -> Nullable<BigInt>,
        resolved_entry_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(external_refs -> incidents (incident_id));
diesel::joinable!(status_updates -> incidents (incident_id));
diesel::joinable!(nudges -> incidents (incident_id));
diesel::joinable!(incident_roles -> incidents (incident_id));
diesel::joinable!(incident_services -> incidents (incident_id));
diesel::joinable!(timeline_entries -> incidents (incident_id));
diesel::joinable!(outbox -> incidents (incident_id));
diesel::joinable!(follow_ups -> incidents (incident_id));
diesel::joinable!(alert_groups -> incidents (incident_id));
diesel::joinable!(alerts -> alert_groups (group_id));

diesel::allow_tables_to_appear_in_same_query!(
    counters,
    app_secrets,
    incidents,
    incident_services,
    timeline_entries,
    outbox,
    idempotency_keys,
    external_refs,
    users,
    api_tokens,
    login_attempts,
    sessions,
    status_updates,
    nudges,
    follow_ups,
    incident_roles,
    slack_requests_seen,
    alert_groups,
    alerts,
);
