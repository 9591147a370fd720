//! The fault matrix: every money-moving operation of a storefront
//! (authorize, capture, cancel, refund, the shopper's return) against every
//! fault (the PSP's answer lost after it acted, a PSP 5xx, the database
//! refusing the write after the PSP acted), then the storefront's retry
//! with the same Idempotency-Key and the janitor. Each payment must end as
//! the PSP's own ledger says: one charge, the same amounts captured and
//! refunded, never more than allowed. (A server killed mid-call, and
//! duplicate or out-of-order notifications, are in `crash_under_load.rs`
//! and `money_safety.rs`.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The PSP acts, then its answer never arrives (the plugin call is cut
    /// off after 2 s).
    AnswerLostAfterEffect,
    /// The PSP answers 500 and does nothing.
    Psp500,
    /// The PSP acts; writing its answer fails.
    WriteFails,
}

#[derive(Debug, Clone, Copy)]
enum Operation {
    Authorize,
    Capture,
    Cancel,
    Refund,
    ShopperReturn,
}

struct Scenario<'a> {
    server: &'a TestServer,
    fault: Fault,
}

impl Scenario<'_> {
    /// Arms the fault for the next call of the operation on `reference`.
    async fn arm(&self, reference: &str, table: &str) {
        match self.fault {
            Fault::AnswerLostAfterEffect => {
                self.server.dummy_fault("timeout_after_effect", 1).await
            }
            Fault::Psp500 => self.server.dummy_fault("http_500", 1).await,
            Fault::WriteFails => self.server.fail_writes(
                "matrix_fault",
                table,
                "UPDATE",
                &if table == "payments" {
                    format!("NEW.reference = '{reference}'")
                } else {
                    "1 = 1".to_string()
                },
            ),
        }
    }

    fn disarm(&self, table: &str) {
        if let Fault::WriteFails = self.fault {
            self.server.heal("matrix_fault", table);
        }
    }

    /// The request with its key until it has a definite answer.
    async fn until_answered(&self, path: &str, body: Value, key: &str) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, answer) = self.server.post_with(path, body.clone(), Some(key)).await;
            let busy = status == 409
                && matches!(
                    answer["error"]["code"].as_str(),
                    Some("idempotency_request_in_progress" | "payment_busy")
                );
            if status < 500 && !busy {
                return (status, answer);
            }
            assert!(Instant::now() < deadline, "{path}: {status} {answer}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn payment(&self, id: &str) -> Value {
        self.server.get(&format!("/v1/payments/{id}")).await.1
    }

    async fn create(&self, body: Value) -> Value {
        let (status, p) = self
            .until_answered("/v1/payments", body, &format!("c-{}", rand_suffix()))
            .await;
        assert_eq!(status, 201, "{p}");
        p
    }

    async fn run(&self, operation: Operation) {
        let capture_method = match operation {
            Operation::Authorize | Operation::Capture | Operation::Cancel => "manual",
            Operation::Refund => "automatic",
            Operation::ShopperReturn => "manual",
        };
        let card = match operation {
            Operation::ShopperReturn => CARD_3DS,
            _ => CARD_OK,
        };
        let body = payment_body(9_000, "EUR", card, capture_method);
        let reference = body["reference"].as_str().unwrap().to_string();
        let key = format!("{operation:?}-{}", rand_suffix());
        let id = match operation {
            Operation::Authorize => {
                self.arm(&reference, "payments").await;
                let first = self
                    .server
                    .post_with("/v1/payments", body.clone(), Some(&key))
                    .await;
                self.disarm("payments");
                let (status, p) = self.until_answered("/v1/payments", body, &key).await;
                assert_eq!(status, 201, "first {first:?}, then {p}");
                p["id"].as_str().unwrap().to_string()
            }
            Operation::Capture | Operation::Cancel | Operation::Refund => {
                let p = self.create(body).await;
                let id = p["id"].as_str().unwrap().to_string();
                let (path, body, table) = match operation {
                    Operation::Capture => ("capture", json!({"amount": 4_000}), "payments"),
                    Operation::Cancel => ("cancel", json!({}), "payments"),
                    _ => ("refunds", json!({"amount": 3_000}), "refunds"),
                };
                let path = format!("/v1/payments/{id}/{path}");
                self.arm(&reference, table).await;
                let first = self.server.post_with(&path, body.clone(), Some(&key)).await;
                self.disarm(table);
                let (status, answer) = self.until_answered(&path, body, &key).await;
                assert!(
                    status == 200 || status == 201,
                    "first {first:?}, then {status} {answer}"
                );
                id
            }
            Operation::ShopperReturn => {
                let p = self.create(body).await;
                let id = p["id"].as_str().unwrap().to_string();
                let url = p["next_action"]["url"].as_str().unwrap().to_string();
                // The shopper approves at the PSP, then comes back through
                // Passerelle, which asks the PSP under the fault.
                let resp = self
                    .server
                    .http
                    .post(format!("{url}/approve"))
                    .send()
                    .await
                    .unwrap();
                let back = resp
                    .headers()
                    .get("location")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                self.arm(&reference, "payments").await;
                let _ = self.server.http.get(&back).send().await;
                self.disarm("payments");
                id
            }
        };
        // Settled by the PSP's notification, a retry or the janitor: the
        // host agrees with the PSP's ledger.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let p = self.payment(&id).await;
            let charges = self.server.psp_charges(&reference).await;
            assert!(
                charges.len() <= 1,
                "{operation:?}/{:?}: {charges:?}",
                self.fault
            );
            if charges.is_empty() {
                // The PSP never made it (a 5xx without effect): the outcome
                // stays unknown to the host until the window ends it.
                if p["status"] == "failed" {
                    assert_eq!(p["failure_code"], "outcome_unknown_expired", "{p}");
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{operation:?}/{:?}: {p}",
                    self.fault
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            let charge = &charges[0];
            let captured = charge["amount_captured"].as_u64().unwrap();
            let refunded = charge["amount_refunded"].as_u64().unwrap();
            assert!(captured <= 9_000 && refunded <= captured, "{charge}");
            let expected_status = match charge["status"].as_str().unwrap() {
                "authorized" if captured > 0 => "partially_captured",
                "authorized" => "requires_capture",
                "captured" => "succeeded",
                "canceled" => "canceled",
                other => other,
            };
            let agrees = p["connector_reference"] == charge["id"]
                && p["amount_captured"] == captured
                && p["amount_refunded"] == refunded
                && p["amount_capture_pending"] == 0
                && p["status"] == expected_status;
            if agrees {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{operation:?}/{:?}: host {p} / PSP {charge}",
                self.fault
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn every_operation_under_every_fault(backend: Backend) {
    let server = TestServer::start_with_args(
        backend,
        &[
            "--plugin-timeout-secs",
            "2",
            "--janitor-grace-secs",
            "1",
            "--janitor-max-backoff-secs",
            "2",
            "--janitor-interval-ms",
            "200",
            // An authorization the PSP never received is given up soon.
            "--janitor-window-secs",
            "8",
        ],
    )
    .await;
    for fault in [
        Fault::AnswerLostAfterEffect,
        Fault::Psp500,
        Fault::WriteFails,
    ] {
        let scenario = Scenario {
            server: &server,
            fault,
        };
        for operation in [
            Operation::Authorize,
            Operation::Capture,
            Operation::Cancel,
            Operation::Refund,
            Operation::ShopperReturn,
        ] {
            scenario.run(operation).await;
        }
    }
}

both_backends!(every_operation_under_every_fault);
