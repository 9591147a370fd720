//! Diesel schema shared by the SQLite and PostgreSQL backends; it mirrors
//! `migrations/{sqlite,postgres}/*/up.sql`.

diesel::table! {
    merchants (id) {
        id -> Text,
        name -> Text,
        created_at -> Text,
        default_connector -> Nullable<Text>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        merchant_id -> Nullable<Text>,
        kind -> Text,
        key_hash -> Text,
        prefix -> Text,
        created_at -> Text,
        revoked_at -> Nullable<Text>,
    }
}

diesel::table! {
    connector_accounts (id) {
        id -> Text,
        merchant_id -> Text,
        name -> Text,
        connector -> Text,
        environment -> Text,
        base_url -> Nullable<Text>,
        config_ciphertext -> Text,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    payments (id) {
        id -> Text,
        merchant_id -> Text,
        connector_account_id -> Text,
        connector -> Text,
        reference -> Text,
        amount -> BigInt,
        currency -> Text,
        capture_method -> Text,
        status -> Text,
        amount_authorized -> BigInt,
        amount_captured -> BigInt,
        amount_refunded -> BigInt,
        connector_reference -> Nullable<Text>,
        connector_data -> Nullable<Text>,
        next_action -> Nullable<Text>,
        return_url -> Text,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        provider_status -> Nullable<Text>,
        payment_method_type -> Text,
        card_last4 -> Nullable<Text>,
        metadata -> Text,
        version -> BigInt,
        created_at -> Text,
        updated_at -> Text,
        amount_capture_pending -> BigInt,
        cancel_pending -> Bool,
        reconcile_after -> Nullable<BigInt>,
        reconcile_attempts -> Integer,
        three_ds -> Nullable<Text>,
        capture_before_ms -> Nullable<BigInt>,
        delayed_capture -> Nullable<Text>,
    }
}

diesel::table! {
    payment_events (id) {
        id -> Text,
        payment_id -> Text,
        seq -> BigInt,
        from_status -> Nullable<Text>,
        to_status -> Text,
        cause -> Text,
        detail -> Nullable<Text>,
        created_at -> Text,
    }
}

diesel::table! {
    refunds (id) {
        id -> Text,
        payment_id -> Text,
        amount -> BigInt,
        currency -> Text,
        status -> Text,
        reason -> Nullable<Text>,
        connector_reference -> Nullable<Text>,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        created_at -> Text,
        updated_at -> Text,
        psp_key -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (merchant_id, key) {
        merchant_id -> Text,
        key -> Text,
        request_hash -> Text,
        state -> Text,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Text>,
        created_at -> Text,
        updated_at -> Text,
        resource_id -> Nullable<Text>,
        lease_until -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    payment_locks (payment_id) {
        payment_id -> Text,
        owner -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    notifications_seen (connector_account_id, event_id) {
        connector_account_id -> Text,
        event_id -> Text,
        received_at -> Text,
    }
}

diesel::table! {
    plugin_versions (plugin_id, version) {
        plugin_id -> Text,
        version -> Text,
        digest -> Text,
        publisher -> Text,
        trust -> Text,
        signed_by -> Nullable<Text>,
        manifest_toml -> Text,
        package -> Nullable<Binary>,
        installed_at -> Text,
    }
}

diesel::table! {
    plugins (id) {
        id -> Text,
        active_version -> Nullable<Text>,
        previous_version -> Nullable<Text>,
        disabled -> Bool,
        updated_at -> Text,
    }
}

// Plugin ownership (migration 2026-12-07-020000_plugin_publishers).
diesel::table! {
    plugin_publishers (plugin_id) {
        plugin_id -> Text,
        publisher -> Text,
        trust -> Text,
        signed_by -> Nullable<Text>,
        bound_at -> Text,
    }
}

diesel::table! {
    plugin_secret_fields (plugin_id, field) {
        plugin_id -> Text,
        field -> Text,
        recorded_at -> Text,
    }
}

diesel::joinable!(api_keys -> merchants (merchant_id));
diesel::joinable!(connector_accounts -> merchants (merchant_id));
diesel::joinable!(payments -> merchants (merchant_id));
diesel::joinable!(payments -> connector_accounts (connector_account_id));
diesel::joinable!(payment_events -> payments (payment_id));
diesel::joinable!(refunds -> payments (payment_id));
diesel::joinable!(idempotency_keys -> merchants (merchant_id));
diesel::joinable!(notifications_seen -> connector_accounts (connector_account_id));

diesel::allow_tables_to_appear_in_same_query!(
    merchants,
    api_keys,
    connector_accounts,
    payments,
    payment_events,
    refunds,
    idempotency_keys,
    notifications_seen,
    payment_locks,
    plugin_versions,
    plugins,
);
