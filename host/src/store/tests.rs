//! Store tests, run against SQLite (temporary files, and `:memory:`) and
//! PostgreSQL (a fresh database per test on the server named by
//! `PASSERELLE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; set it to `skip` to leave
//! PostgreSQL out).

use std::path::PathBuf;
use std::sync::Arc;

use diesel::prelude::*;

use super::*;

// ----- fixtures ----------------------------------------------------------------

fn ts(second: u32) -> String {
    format!("2026-11-27T13:56:{second:02}.123Z")
}

fn merchant(id: &str) -> MerchantRecord {
    MerchantRecord {
        id: id.to_owned(),
        name: format!("Shop {id}"),
        created_at: ts(0),
        default_connector: None,
    }
}

fn api_key(id: &str, merchant_id: Option<&str>, hash: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.to_owned(),
        merchant_id: merchant_id.map(str::to_owned),
        kind: if merchant_id.is_some() {
            "secret"
        } else {
            "admin"
        }
        .to_owned(),
        key_hash: hash.to_owned(),
        prefix: "sk_test_ab12".to_owned(),
        created_at: ts(1),
        revoked_at: None,
    }
}

fn account(id: &str, merchant_id: &str, name: &str) -> ConnectorAccountRecord {
    ConnectorAccountRecord {
        id: id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        name: name.to_owned(),
        connector: "dummy".to_owned(),
        environment: "test".to_owned(),
        base_url: Some("http://127.0.0.1:9999".to_owned()),
        config_ciphertext: "c2VhbGVk".to_owned(),
        created_at: ts(2),
        updated_at: ts(2),
    }
}

fn payment(id: &str, merchant_id: &str, account_id: &str) -> PaymentRecord {
    PaymentRecord {
        id: id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        connector_account_id: account_id.to_owned(),
        connector: "dummy".to_owned(),
        reference: "order-1001".to_owned(),
        amount: 12_345,
        currency: "EUR".to_owned(),
        capture_method: "manual".to_owned(),
        status: "requires_action".to_owned(),
        amount_authorized: 0,
        amount_captured: 0,
        amount_refunded: 0,
        connector_reference: None,
        connector_data: Some(r#"{"session":"s1"}"#.to_owned()),
        next_action: Some(r#"{"type":"redirect","url":"https://psp/3ds"}"#.to_owned()),
        return_url: "https://shop.example/return".to_owned(),
        failure_code: None,
        failure_message: None,
        provider_status: None,
        payment_method_type: "card".to_owned(),
        card_last4: Some("4242".to_owned()),
        metadata: r#"{"cart":"c-9"}"#.to_owned(),
        version: 1,
        created_at: ts(3),
        updated_at: ts(3),
        amount_capture_pending: 0,
        cancel_pending: false,
        reconcile_after: None,
        reconcile_attempts: 0,
        three_ds: None,
        capture_before_ms: None,
        delayed_capture: None,
    }
}

fn event(payment_id: &str, seq: i64, from: Option<&str>, to: &str) -> PaymentEventRecord {
    PaymentEventRecord {
        id: format!("{payment_id}_ev{seq}"),
        payment_id: payment_id.to_owned(),
        seq,
        from_status: from.map(str::to_owned),
        to_status: to.to_owned(),
        cause: "api.create".to_owned(),
        detail: Some(format!(r#"{{"seq":{seq}}}"#)),
        created_at: ts(3 + seq as u32),
    }
}

fn refund(id: &str, payment_id: &str, amount: i64, created: u32) -> RefundRecord {
    RefundRecord {
        id: id.to_owned(),
        payment_id: payment_id.to_owned(),
        amount,
        currency: "EUR".to_owned(),
        status: "pending".to_owned(),
        reason: Some("requested_by_customer".to_owned()),
        connector_reference: None,
        failure_code: None,
        failure_message: None,
        created_at: ts(created),
        updated_at: ts(created),
        psp_key: None,
    }
}

fn idem(merchant_id: &str, key: &str, hash: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        merchant_id: merchant_id.to_owned(),
        key: key.to_owned(),
        request_hash: hash.to_owned(),
        state: IDEMPOTENCY_IN_PROGRESS.to_owned(),
        response_status: None,
        response_body: None,
        created_at: ts(10),
        updated_at: ts(10),
        resource_id: Some("pay_1".to_owned()),
        lease_until: 1_000,
        expires_at: EXPIRES,
    }
}

/// Far in the future: these keys never expire in the tests below.
const EXPIRES: i64 = 4_000_000_000_000;
/// "Now" for the idempotency calls.
const NOW_MS: i64 = 2_000;

fn seen(account_id: &str, event_id: &str) -> NotificationSeenRecord {
    NotificationSeenRecord {
        connector_account_id: account_id.to_owned(),
        event_id: event_id.to_owned(),
        received_at: ts(20),
    }
}

/// A merchant with one connector account.
async fn seed(store: &Store) {
    store.insert_merchant(merchant("mer_1")).await.unwrap();
    store
        .insert_connector_account(account("ca_1", "mer_1", "dummy"))
        .await
        .unwrap();
}

fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

// ----- databases -----------------------------------------------------------------

/// A temporary directory for an SQLite file, removed on drop.
struct SqliteDir(PathBuf);

impl SqliteDir {
    fn new() -> SqliteDir {
        let dir = std::env::temp_dir().join(format!("passerelle_store_test_{}", random_suffix()));
        SqliteDir(dir)
    }

    /// Inside a directory that does not exist yet: `connect` must create it.
    fn url(&self) -> String {
        format!("sqlite://{}", self.0.join("sub/passerelle.db").display())
    }
}

impl Drop for SqliteDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh PostgreSQL database, dropped on drop.
struct PgDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDb {
    /// `None` when PostgreSQL tests are switched off.
    fn new() -> Option<PgDb> {
        let admin_url = match std::env::var("PASSERELLE_TEST_POSTGRES_URL") {
            Ok(url) if url == "skip" => return None,
            Ok(url) => url,
            Err(_) => "postgres://postgres@127.0.0.1:5432/postgres".to_owned(),
        };
        let name = format!("passerelle_store_test_{}", random_suffix());
        let mut admin = diesel::PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {admin_url}: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap();
        let mut url = url::Url::parse(&admin_url).unwrap();
        url.set_path(&name);
        Some(PgDb {
            admin_url,
            name,
            url: url.to_string(),
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

/// Runs the scenario `$body(store: Store)` on a fresh SQLite file and on a
/// fresh PostgreSQL database.
macro_rules! both_backends {
    ($sqlite:ident, $postgres:ident, $body:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            let dir = SqliteDir::new();
            let store = Store::connect(&dir.url()).await.unwrap();
            assert_eq!(store.backend(), Backend::Sqlite);
            $body(store).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            let Some(db) = PgDb::new() else { return };
            let store = Store::connect(&db.url).await.unwrap();
            assert_eq!(store.backend(), Backend::Postgres);
            $body(store).await;
            drop(db);
        }
    };
}

both_backends!(
    sqlite_every_function,
    postgres_every_function,
    every_function
);
both_backends!(
    sqlite_optimistic_lock,
    postgres_optimistic_lock,
    optimistic_lock
);
both_backends!(
    sqlite_idempotency_race,
    postgres_idempotency_race,
    idempotency_race
);
both_backends!(
    sqlite_notification_dedup,
    postgres_notification_dedup,
    notification_dedup
);
both_backends!(sqlite_dump_all_text, postgres_dump_all_text, dump_all_text);
both_backends!(sqlite_foreign_keys, postgres_foreign_keys, foreign_keys);
both_backends!(
    sqlite_admin_functions,
    postgres_admin_functions,
    admin_functions
);

// ----- scenarios ---------------------------------------------------------------------

async fn every_function(store: Store) {
    store.ping().await.unwrap();

    // Merchants.
    assert_eq!(store.get_merchant("mer_1").await.unwrap(), None);
    store.insert_merchant(merchant("mer_1")).await.unwrap();
    store.insert_merchant(merchant("mer_2")).await.unwrap();
    assert_eq!(
        store.get_merchant("mer_1").await.unwrap(),
        Some(merchant("mer_1"))
    );
    assert!(matches!(
        store.insert_merchant(merchant("mer_1")).await,
        Err(StoreError::Duplicate)
    ));

    // API keys.
    let key = api_key("key_1", Some("mer_1"), "hash_1");
    store.insert_api_key(key.clone()).await.unwrap();
    let admin = api_key("key_admin", None, "hash_admin");
    store.insert_api_key(admin.clone()).await.unwrap();
    let mut revoked = api_key("key_2", Some("mer_1"), "hash_2");
    revoked.revoked_at = Some(ts(5));
    store.insert_api_key(revoked).await.unwrap();
    assert_eq!(
        store.find_api_key_by_hash("hash_1").await.unwrap(),
        Some(key)
    );
    assert_eq!(
        store.find_api_key_by_hash("hash_admin").await.unwrap(),
        Some(admin)
    );
    assert_eq!(store.find_api_key_by_hash("hash_2").await.unwrap(), None);
    assert_eq!(store.find_api_key_by_hash("nope").await.unwrap(), None);
    assert!(matches!(
        store
            .insert_api_key(api_key("key_3", Some("mer_2"), "hash_1"))
            .await,
        Err(StoreError::Duplicate)
    ));

    // Connector accounts.
    let zeta = account("ca_z", "mer_1", "zeta");
    let alpha = account("ca_a", "mer_1", "alpha");
    let mut other = account("ca_o", "mer_2", "alpha");
    other.base_url = None;
    store.insert_connector_account(zeta.clone()).await.unwrap();
    store.insert_connector_account(alpha.clone()).await.unwrap();
    store.insert_connector_account(other.clone()).await.unwrap();
    assert!(matches!(
        store
            .insert_connector_account(account("ca_dup", "mer_1", "alpha"))
            .await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(
        store.get_connector_account("ca_o").await.unwrap(),
        Some(other.clone())
    );
    assert_eq!(store.get_connector_account("ca_x").await.unwrap(), None);
    assert_eq!(
        store.find_connector_account("mer_1", "zeta").await.unwrap(),
        Some(zeta.clone())
    );
    assert_eq!(
        store
            .find_connector_account("mer_2", "alpha")
            .await
            .unwrap(),
        Some(other.clone())
    );
    assert_eq!(
        store.find_connector_account("mer_2", "zeta").await.unwrap(),
        None
    );
    assert_eq!(
        store.list_connector_accounts("mer_1").await.unwrap(),
        vec![alpha.clone(), zeta.clone()]
    );
    assert_eq!(
        store.list_connector_accounts("mer_2").await.unwrap(),
        vec![other.clone()]
    );
    // Upsert: a new id inserts; a known id overwrites all but `created_at`.
    let mut upserted = account("ca_u", "mer_2", "beta");
    store
        .upsert_connector_account(upserted.clone())
        .await
        .unwrap();
    assert_eq!(
        store.get_connector_account("ca_u").await.unwrap(),
        Some(upserted.clone())
    );
    let mut changed = upserted.clone();
    changed.base_url = None;
    changed.config_ciphertext = "cmVzZWFsZWQ".to_owned();
    changed.environment = "live".to_owned();
    changed.created_at = ts(9);
    changed.updated_at = ts(9);
    store
        .upsert_connector_account(changed.clone())
        .await
        .unwrap();
    upserted.base_url = None;
    upserted.config_ciphertext = "cmVzZWFsZWQ".to_owned();
    upserted.environment = "live".to_owned();
    upserted.updated_at = ts(9);
    assert_eq!(
        store.get_connector_account("ca_u").await.unwrap(),
        Some(upserted.clone())
    );
    let mut clash = account("ca_clash", "mer_2", "beta");
    assert!(matches!(
        store.upsert_connector_account(clash.clone()).await,
        Err(StoreError::Duplicate)
    ));
    clash.id = "ca_u".to_owned();
    clash.name = "alpha".to_owned();
    assert!(matches!(
        store.upsert_connector_account(clash).await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(
        store.list_connector_accounts("mer_2").await.unwrap(),
        vec![other.clone(), upserted]
    );
    assert!(store
        .list_connector_accounts("mer_none")
        .await
        .unwrap()
        .is_empty());

    // Payments.
    let p = payment("pay_1", "mer_1", "ca_a");
    store
        .insert_payment(
            p.clone(),
            vec![event("pay_1", 1, None, "processing"), {
                let mut e = event("pay_1", 2, Some("processing"), "requires_action");
                e.detail = None;
                e
            }],
        )
        .await
        .unwrap();
    assert_eq!(store.get_payment("pay_1").await.unwrap(), Some(p.clone()));
    assert_eq!(store.get_payment("pay_x").await.unwrap(), None);
    assert!(matches!(
        store.insert_payment(p.clone(), vec![]).await,
        Err(StoreError::Duplicate)
    ));
    // A failing event rolls the payment back.
    let p2 = payment("pay_2", "mer_1", "ca_a");
    assert!(matches!(
        store
            .insert_payment(
                p2.clone(),
                vec![
                    event("pay_2", 1, None, "processing"),
                    event("pay_2", 1, None, "processing"),
                ],
            )
            .await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(store.get_payment("pay_2").await.unwrap(), None);
    assert!(store.list_payment_events("pay_2").await.unwrap().is_empty());

    // The shopper came back: authorised, with a connector reference.
    let mut p_v2 = p.clone();
    p_v2.status = "requires_capture".to_owned();
    p_v2.amount_authorized = 12_345;
    p_v2.connector_reference = Some("psp_ref_1".to_owned());
    p_v2.provider_status = Some("Authorised".to_owned());
    p_v2.next_action = None;
    p_v2.connector_data = None;
    p_v2.version = 2;
    p_v2.updated_at = ts(30);
    store
        .update_payment(
            p_v2.clone(),
            1,
            vec![event(
                "pay_1",
                3,
                Some("requires_action"),
                "requires_capture",
            )],
            vec![],
        )
        .await
        .unwrap();
    // `None` fields are written as NULL.
    assert_eq!(
        store.get_payment("pay_1").await.unwrap(),
        Some(p_v2.clone())
    );
    assert_eq!(
        store
            .find_payment_by_connector_reference("ca_a", "psp_ref_1")
            .await
            .unwrap(),
        Some(p_v2.clone())
    );
    assert_eq!(
        store
            .find_payment_by_connector_reference("ca_z", "psp_ref_1")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_payment_by_connector_reference("ca_a", "other")
            .await
            .unwrap(),
        None
    );

    // Captured, then two refunds (inserted), then one of them settles (updated).
    let mut p_v3 = p_v2.clone();
    p_v3.status = "succeeded".to_owned();
    p_v3.amount_captured = 12_345;
    p_v3.amount_refunded = 3_000;
    p_v3.version = 3;
    let r_late = refund("re_b", "pay_1", 1_000, 41);
    let r_early = refund("re_a", "pay_1", 2_000, 40);
    let mut r_same_time = refund("re_0", "pay_1", 0, 41);
    r_same_time.reason = None;
    store
        .update_payment(
            p_v3.clone(),
            2,
            vec![event("pay_1", 4, Some("requires_capture"), "succeeded")],
            vec![r_late.clone(), r_early.clone(), r_same_time.clone()],
        )
        .await
        .unwrap();
    assert_eq!(
        store.list_refunds("pay_1").await.unwrap(),
        vec![r_early.clone(), r_same_time.clone(), r_late.clone()]
    );
    let mut r_early_done = r_early.clone();
    r_early_done.status = "succeeded".to_owned();
    r_early_done.connector_reference = Some("psp_refund_a".to_owned());
    r_early_done.reason = None;
    r_early_done.updated_at = ts(50);
    let mut p_v4 = p_v3.clone();
    p_v4.version = 4;
    p_v4.updated_at = ts(50);
    store
        .update_payment(p_v4.clone(), 3, vec![], vec![r_early_done.clone()])
        .await
        .unwrap();
    assert_eq!(
        store.list_refunds("pay_1").await.unwrap(),
        vec![r_early_done.clone(), r_same_time, r_late]
    );
    assert_eq!(
        store
            .find_refund_by_connector_reference("pay_1", "psp_refund_a")
            .await
            .unwrap(),
        Some(r_early_done)
    );
    assert_eq!(
        store
            .find_refund_by_connector_reference("pay_2", "psp_refund_a")
            .await
            .unwrap(),
        None
    );
    assert!(store.list_refunds("pay_x").await.unwrap().is_empty());
    assert_eq!(store.get_payment("pay_1").await.unwrap(), Some(p_v4));

    let events = store.list_payment_events("pay_1").await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(events[0], event("pay_1", 1, None, "processing"));
    assert_eq!(events[1].detail, None);
    assert_eq!(events[3].to_status, "succeeded");

    // Idempotency keys.
    let rec = idem("mer_1", "key-A", "h1");
    assert_eq!(store.get_idempotent("mer_1", "key-A").await.unwrap(), None);
    assert_eq!(
        store.begin_idempotent(rec.clone(), NOW_MS).await.unwrap(),
        IdempotencyBegin::Started
    );
    assert_eq!(
        store
            .begin_idempotent(idem("mer_1", "key-A", "h2"), NOW_MS)
            .await
            .unwrap(),
        IdempotencyBegin::Existing(Box::new(rec.clone()))
    );
    // Keys are per merchant.
    assert_eq!(
        store
            .begin_idempotent(idem("mer_2", "key-A", "h3"), NOW_MS)
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    store
        .finish_idempotent(
            "mer_1",
            "key-A",
            201,
            r#"{"id":"pay_1"}"#.to_owned(),
            ts(11),
        )
        .await
        .unwrap();
    let done = IdempotencyRecord {
        state: IDEMPOTENCY_DONE.to_owned(),
        response_status: Some(201),
        response_body: Some(r#"{"id":"pay_1"}"#.to_owned()),
        updated_at: ts(11),
        ..rec.clone()
    };
    assert_eq!(
        store.get_idempotent("mer_1", "key-A").await.unwrap(),
        Some(done.clone())
    );
    assert_eq!(
        store
            .begin_idempotent(idem("mer_1", "key-A", "h1"), NOW_MS)
            .await
            .unwrap(),
        IdempotencyBegin::Existing(Box::new(done.clone()))
    );
    // A finished key is not forgotten; an in-progress one is.
    store.delete_idempotent("mer_1", "key-A").await.unwrap();
    assert_eq!(
        store.get_idempotent("mer_1", "key-A").await.unwrap(),
        Some(done)
    );
    store.delete_idempotent("mer_2", "key-A").await.unwrap();
    assert_eq!(store.get_idempotent("mer_2", "key-A").await.unwrap(), None);
    store.delete_idempotent("mer_2", "never").await.unwrap();
    assert_eq!(
        store
            .begin_idempotent(idem("mer_2", "key-A", "h4"), NOW_MS)
            .await
            .unwrap(),
        IdempotencyBegin::Started
    );
    assert!(matches!(
        store
            .finish_idempotent("mer_2", "unknown", 200, String::new(), ts(12))
            .await,
        Err(StoreError::Database(diesel::result::Error::NotFound))
    ));

    // Notifications.
    assert!(store
        .mark_notification_seen(seen("ca_a", "evt_1"))
        .await
        .unwrap());
    assert!(!store
        .mark_notification_seen(seen("ca_a", "evt_1"))
        .await
        .unwrap());
    assert!(store
        .mark_notification_seen(seen("ca_z", "evt_1"))
        .await
        .unwrap());

    let dump = store.dump_all_text().await.unwrap();
    assert!(dump.contains("psp_refund_a"));
}

async fn optimistic_lock(store: Store) {
    seed(&store).await;
    let p = payment("pay_1", "mer_1", "ca_1");
    store
        .insert_payment(p.clone(), vec![event("pay_1", 1, None, "processing")])
        .await
        .unwrap();

    // Two writers read version 1; the first wins.
    let mut first = p.clone();
    first.status = "succeeded".to_owned();
    first.version = 2;
    let mut second = p.clone();
    second.status = "failed".to_owned();
    second.version = 2;
    store
        .update_payment(
            first.clone(),
            1,
            vec![event("pay_1", 2, Some("processing"), "succeeded")],
            vec![refund("re_1", "pay_1", 100, 40)],
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .update_payment(
                second,
                1,
                vec![event("pay_1", 2, Some("processing"), "failed")],
                vec![refund("re_2", "pay_1", 100, 40)],
            )
            .await,
        Err(StoreError::Conflict)
    ));
    // Nothing of the loser was written.
    assert_eq!(
        store.get_payment("pay_1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.list_payment_events("pay_1").await.unwrap().len(), 2);
    assert_eq!(store.list_refunds("pay_1").await.unwrap().len(), 1);

    // An unknown payment is a conflict too (nothing matched).
    let mut ghost = payment("pay_ghost", "mer_1", "ca_1");
    ghost.version = 2;
    assert!(matches!(
        store.update_payment(ghost, 1, vec![], vec![]).await,
        Err(StoreError::Conflict)
    ));

    // A failure after the payment update rolls it back.
    let mut third = first.clone();
    third.status = "refunded".to_owned();
    third.version = 3;
    assert!(matches!(
        store
            .update_payment(
                third,
                2,
                vec![event("pay_1", 2, Some("succeeded"), "refunded")],
                vec![],
            )
            .await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(store.get_payment("pay_1").await.unwrap(), Some(first));

    // Racing writers with the same expected version: exactly one wins.
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let mut p = payment("pay_1", "mer_1", "ca_1");
        p.status = format!("writer_{i}");
        p.version = 3;
        tasks.push(tokio::spawn(async move {
            store
                .update_payment(
                    p,
                    2,
                    vec![event("pay_1", 3, Some("succeeded"), &format!("writer_{i}"))],
                    vec![],
                )
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => won += 1,
            Err(StoreError::Conflict) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won, 1);
    let stored = store.get_payment("pay_1").await.unwrap().unwrap();
    assert_eq!(stored.version, 3);
    let events = store.list_payment_events("pay_1").await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].to_status, stored.status);
}

async fn idempotency_race(store: Store) {
    seed(&store).await;
    let store = Arc::new(store);
    for round in 0..10 {
        let key = format!("race-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let start = |hash: &'static str| {
            let store = store.clone();
            let barrier = barrier.clone();
            let rec = idem("mer_1", &key, hash);
            tokio::spawn(async move {
                barrier.wait().await;
                store.begin_idempotent(rec, NOW_MS).await
            })
        };
        let (a, b) = (start("ha"), start("hb"));
        let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
        let stored = store.get_idempotent("mer_1", &key).await.unwrap().unwrap();
        match (a, b) {
            (IdempotencyBegin::Started, IdempotencyBegin::Existing(rec)) => {
                assert_eq!(rec.request_hash, "ha");
                assert_eq!(stored, *rec);
            }
            (IdempotencyBegin::Existing(rec), IdempotencyBegin::Started) => {
                assert_eq!(rec.request_hash, "hb");
                assert_eq!(stored, *rec);
            }
            other => panic!("expected exactly one Started, got {other:?}"),
        }
    }

    // Many at once.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .begin_idempotent(idem("mer_1", "crowd", &format!("h{i}")), NOW_MS)
                .await
        }));
    }
    let mut started = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() == IdempotencyBegin::Started {
            started += 1;
        }
    }
    assert_eq!(started, 1);
}

async fn notification_dedup(store: Store) {
    seed(&store).await;
    store
        .insert_connector_account(account("ca_2", "mer_1", "other"))
        .await
        .unwrap();
    assert!(store
        .mark_notification_seen(seen("ca_1", "evt_1"))
        .await
        .unwrap());
    assert!(!store
        .mark_notification_seen(seen("ca_1", "evt_1"))
        .await
        .unwrap());
    assert!(store
        .mark_notification_seen(seen("ca_1", "evt_2"))
        .await
        .unwrap());
    assert!(store
        .mark_notification_seen(seen("ca_2", "evt_1"))
        .await
        .unwrap());

    // The same notification delivered many times at once is processed once.
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .mark_notification_seen(seen("ca_1", "evt_burst"))
                .await
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
}

async fn dump_all_text(store: Store) {
    const PAN: &str = "4242424242424242";
    seed(&store).await;
    store
        .insert_api_key(api_key("key_1", Some("mer_1"), "hash_marker"))
        .await
        .unwrap();
    let mut p = payment("pay_1", "mer_1", "ca_1");
    p.connector_data = Some("connector_data_marker".to_owned());
    store
        .insert_payment(p.clone(), vec![event("pay_1", 1, None, "processing")])
        .await
        .unwrap();
    let mut r = refund("re_1", "pay_1", 5, 40);
    r.failure_message = Some("refund_marker".to_owned());
    p.version = 2;
    store.update_payment(p, 1, vec![], vec![r]).await.unwrap();
    store
        .begin_idempotent(idem("mer_1", "idem_marker", "h"), NOW_MS)
        .await
        .unwrap();
    store
        .finish_idempotent("mer_1", "idem_marker", 200, "body_marker".to_owned(), ts(1))
        .await
        .unwrap();
    store
        .mark_notification_seen(seen("ca_1", "event_marker"))
        .await
        .unwrap();

    let dump = store.dump_all_text().await.unwrap();
    for marker in [
        "Shop mer_1",
        "hash_marker",
        "c2VhbGVk",
        "connector_data_marker",
        "4242",
        r#"{"seq":1}"#,
        "refund_marker",
        "body_marker",
        "event_marker",
    ] {
        assert!(dump.contains(marker), "{marker} missing from the dump");
    }
    assert!(!dump.contains(PAN));

    // A full card number anywhere would be seen.
    store
        .mark_notification_seen(seen("ca_1", PAN))
        .await
        .unwrap();
    assert!(store.dump_all_text().await.unwrap().contains(PAN));
}

/// Foreign keys hold (on SQLite, proves `PRAGMA foreign_keys` is applied).
async fn foreign_keys(store: Store) {
    assert!(matches!(
        store
            .insert_connector_account(account("ca_1", "mer_missing", "dummy"))
            .await,
        Err(StoreError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _
        )))
    ));
    seed(&store).await;
    assert!(matches!(
        store
            .insert_payment(
                payment("pay_1", "mer_1", "ca_missing"),
                vec![event("pay_1", 1, None, "processing")]
            )
            .await,
        Err(StoreError::Database(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            _
        )))
    ));
}

// ----- connection, migrations ---------------------------------------------------------

/// Number of applied migrations.
fn applied_migrations(store: &Store) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = store.pool.get().unwrap();
    diesel::sql_query("SELECT COUNT(*) AS n FROM __diesel_schema_migrations")
        .get_result::<Count>(&mut *conn)
        .unwrap()
        .n
}

async fn reconnect_is_a_no_op(url: &str) {
    let store = Store::connect(url).await.unwrap();
    seed(&store).await;
    let migrations = applied_migrations(&store);
    assert!(migrations >= 1);
    drop(store);

    let store = Store::connect(url).await.unwrap();
    assert_eq!(applied_migrations(&store), migrations);
    assert_eq!(
        store.get_merchant("mer_1").await.unwrap(),
        Some(merchant("mer_1"))
    );
    // And a third store alongside the second one.
    let again = Store::connect(url).await.unwrap();
    assert_eq!(
        again.get_connector_account("ca_1").await.unwrap(),
        Some(account("ca_1", "mer_1", "dummy"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrations_rerun_is_a_no_op() {
    let dir = SqliteDir::new();
    reconnect_is_a_no_op(&dir.url()).await;
    // Write-ahead logging is on.
    assert!(
        dir.0.join("sub/passerelle.db-wal").exists() || {
            // The WAL file may have been checkpointed away on close; ask.
            #[derive(QueryableByName)]
            struct Mode {
                #[diesel(sql_type = diesel::sql_types::Text)]
                journal_mode: String,
            }
            let mut conn = diesel::SqliteConnection::establish(
                &dir.0.join("sub/passerelle.db").to_string_lossy(),
            )
            .unwrap();
            diesel::sql_query("PRAGMA journal_mode")
                .get_result::<Mode>(&mut conn)
                .unwrap()
                .journal_mode
                == "wal"
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_rerun_is_a_no_op() {
    let Some(db) = PgDb::new() else { return };
    reconnect_is_a_no_op(&db.url).await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_plain_path_and_memory() {
    let dir = SqliteDir::new();
    let path = dir.0.join("plain.db");
    let store = Store::connect(&path.to_string_lossy()).await.unwrap();
    seed(&store).await;
    assert!(path.exists());

    // One in-memory database lives as long as its store.
    let store = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.ping().await.unwrap();
    seed(&store).await;
    let clone = store.clone();
    assert_eq!(
        clone.get_merchant("mer_1").await.unwrap(),
        Some(merchant("mer_1"))
    );
    let other = Store::connect("sqlite::memory:").await.unwrap();
    assert_eq!(other.get_merchant("mer_1").await.unwrap(), None);
    foreign_keys(other).await;
}

#[tokio::test]
async fn unreachable_postgres_is_a_connect_error() {
    let err = Store::connect("postgres://postgres@127.0.0.1:1/nothing")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Connect(_)), "{err:?}");
}

#[test]
fn database_urls() {
    assert_eq!(
        Target::parse("postgres://u@h/db").unwrap(),
        Target::Postgres("postgres://u@h/db".to_owned())
    );
    assert_eq!(
        Target::parse("postgresql://u@h:5433/db?sslmode=disable").unwrap(),
        Target::Postgres("postgresql://u@h:5433/db?sslmode=disable".to_owned())
    );
    assert_eq!(
        Target::parse("sqlite::memory:").unwrap(),
        Target::SqliteMemory
    );
    assert_eq!(
        Target::parse("sqlite://:memory:").unwrap(),
        Target::SqliteMemory
    );
    assert_eq!(
        Target::parse("sqlite:///var/lib/p/p.db").unwrap(),
        Target::SqliteFile("/var/lib/p/p.db".to_owned())
    );
    assert_eq!(
        Target::parse("sqlite://data/p.db?mode=rwc").unwrap(),
        Target::SqliteFile("data/p.db".to_owned())
    );
    assert_eq!(
        Target::parse("sqlite:p.db").unwrap(),
        Target::SqliteFile("p.db".to_owned())
    );
    assert_eq!(
        Target::parse("./p.db").unwrap(),
        Target::SqliteFile("./p.db".to_owned())
    );
    assert!(matches!(
        Target::parse("sqlite://"),
        Err(StoreError::Connect(_))
    ));
}

/// What the admin API needs: listing merchants and keys, revoking keys,
/// updating a connector account in place.
async fn admin_functions(store: Store) {
    assert!(store.list_merchants().await.unwrap().is_empty());
    let mut m2 = merchant("mer_2");
    m2.created_at = ts(5);
    store.insert_merchant(m2).await.unwrap();
    store.insert_merchant(merchant("mer_1")).await.unwrap();
    let ids: Vec<_> = store
        .list_merchants()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, ["mer_1", "mer_2"]);

    let mut later = api_key("key_b", Some("mer_1"), "hash_b");
    later.created_at = ts(9);
    store.insert_api_key(later).await.unwrap();
    store
        .insert_api_key(api_key("key_a", Some("mer_1"), "hash_a"))
        .await
        .unwrap();
    store
        .insert_api_key(api_key("key_c", Some("mer_2"), "hash_c"))
        .await
        .unwrap();
    store
        .insert_api_key(api_key("key_admin", None, "hash_admin"))
        .await
        .unwrap();
    let keys: Vec<_> = store
        .list_api_keys("mer_1")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(keys, ["key_a", "key_b"]);
    assert_eq!(
        store
            .get_api_key("key_c")
            .await
            .unwrap()
            .unwrap()
            .merchant_id,
        Some("mer_2".to_owned())
    );
    assert_eq!(store.get_api_key("nope").await.unwrap(), None);

    let revoked = store
        .revoke_api_key("key_a", ts(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at.as_deref(), Some(ts(20).as_str()));
    assert_eq!(store.find_api_key_by_hash("hash_a").await.unwrap(), None);
    assert!(store
        .find_api_key_by_hash("hash_b")
        .await
        .unwrap()
        .is_some());
    // A second revocation keeps the first time.
    let again = store
        .revoke_api_key("key_a", ts(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.revoked_at.as_deref(), Some(ts(20).as_str()));
    assert_eq!(store.revoke_api_key("nope", ts(30)).await.unwrap(), None);
    assert_eq!(
        store.list_api_keys("mer_1").await.unwrap()[0]
            .revoked_at
            .as_deref(),
        Some(ts(20).as_str())
    );

    let acc = account("acc_1", "mer_1", "main");
    store.insert_connector_account(acc.clone()).await.unwrap();
    let mut changed = acc.clone();
    changed.environment = "live".to_owned();
    changed.base_url = None;
    changed.config_ciphertext = "bmV3".to_owned();
    changed.updated_at = ts(40);
    // Name, merchant and connector are not the update's to change.
    changed.name = "other".to_owned();
    changed.connector = "adyen".to_owned();
    assert!(store.update_connector_account(changed).await.unwrap());
    let stored = store.get_connector_account("acc_1").await.unwrap().unwrap();
    assert_eq!(stored.environment, "live");
    assert_eq!(stored.base_url, None);
    assert_eq!(stored.config_ciphertext, "bmV3");
    assert_eq!(stored.updated_at, ts(40));
    assert_eq!(stored.created_at, acc.created_at);
    assert_eq!(stored.name, "main");
    assert_eq!(stored.connector, "dummy");
    let mut ghost = acc;
    ghost.id = "acc_nope".to_owned();
    assert!(!store.update_connector_account(ghost).await.unwrap());
}
