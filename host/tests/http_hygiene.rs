//! What the HTTP layer itself guarantees, whatever the route: the access
//! log never records query strings, and a client that stalls while sending
//! a body is answered 408 within the deadline while everyone else is served.

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `passerelle::api::body::BODY_READ_DEADLINE`, and the slack a loaded
/// test machine gets on top of it.
const BODY_READ_DEADLINE: Duration = Duration::from_secs(10);
const SLACK: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_records_paths_without_query_strings() {
    let server = TestServer::start(Backend::Sqlite).await;
    // A shopper's return may carry tokens in its query string; so may a
    // provider's notification. (A distinctive value: a short one such as
    // `abc` could turn up by chance in random ids in the log.)
    let secret = "s3cr3t-abc-7f2e";
    let resp = server
        .http
        .get(server.url(&format!("/v1/payments/pay_x/return?secret={secret}")))
        .send()
        .await
        .unwrap();
    let return_status = resp.status().as_u16();
    let account = server.demo["connectors"]["adyen"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = server
        .http
        .post(server.url(&format!("/v1/webhooks/{account}?token={secret}")))
        .body("{}")
        .send()
        .await
        .unwrap();
    let webhook_status = resp.status().as_u16();
    // A route that does not exist is logged the same way.
    server.get(&format!("/v1/nowhere?x={secret}")).await;

    // The access log is written once the response is; give it a moment.
    let wanted = format!("GET /v1/payments/pay_x/return HTTP/1.1 {return_status}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.logs().contains(&wanted) {
        assert!(
            Instant::now() < deadline,
            "no access log line {wanted:?}: {}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = server.logs();
    assert!(
        logs.contains(&format!(
            "POST /v1/webhooks/{account} HTTP/1.1 {webhook_status}"
        )),
        "{logs}"
    );
    assert!(logs.contains("GET /v1/nowhere HTTP/1.1 404"), "{logs}");
    assert!(
        !logs.contains(secret),
        "a query string reached the log: {logs}"
    );
}

/// Sends a request head promising a 100-byte body, then 4 bytes of it, and
/// stalls.
async fn stall(server: &TestServer, head: &str) -> TcpStream {
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"am"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Reads what the server sends until it closes the connection or a whole
/// response (head and `Content-Length` body) has arrived.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_answered_408_and_others_are_served_meanwhile() {
    let server = TestServer::start(Backend::Sqlite).await;
    let account = server.demo["connectors"]["dummy"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let started = Instant::now();
    // The unauthenticated notification endpoint and the payments API.
    let mut stalled = vec![
        stall(&server, &format!("POST /v1/webhooks/{account} HTTP/1.1")).await,
        stall(
            &server,
            &format!(
                "POST /v1/payments HTTP/1.1\r\nAuthorization: Bearer {}",
                server.secret_key
            ),
        )
        .await,
    ];
    let readers: Vec<_> = stalled
        .drain(..)
        .map(|mut stream| {
            tokio::spawn(async move {
                let response =
                    tokio::time::timeout(BODY_READ_DEADLINE + SLACK, read_response(&mut stream))
                        .await;
                let elapsed = started.elapsed();
                // The rest of the promised body will never come: the server
                // must not keep the connection for it.
                let mut rest = [0u8; 64];
                let closed = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut rest))
                    .await
                    .map(|read| matches!(read, Ok(0) | Err(_)));
                (response, elapsed, closed)
            })
        })
        .collect();

    // Meanwhile the server answers everyone else, payments included.
    while started.elapsed() < BODY_READ_DEADLINE - Duration::from_secs(2) {
        let asked = Instant::now();
        let (status, payment) = server
            .post(
                "/v1/payments",
                payment_body(1_000, "EUR", CARD_OK, "automatic"),
            )
            .await;
        assert_eq!(status, 201, "{payment}");
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "a payment took {:?} while bodies stalled",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for reader in readers {
        let (response, elapsed, closed) = reader.await.unwrap();
        let response = response.unwrap_or_else(|_| {
            panic!(
                "no answer to a stalled body within {:?}",
                BODY_READ_DEADLINE + SLACK
            )
        });
        assert!(
            response.starts_with("HTTP/1.1 408"),
            "after {elapsed:?}: {response}"
        );
        assert!(response.contains("\"code\":\"body_timeout\""), "{response}");
        assert!(
            response.contains("\"type\":\"invalid_request_error\""),
            "{response}"
        );
        assert!(
            elapsed >= BODY_READ_DEADLINE - Duration::from_secs(1),
            "answered too early ({elapsed:?}): {response}"
        );
        assert_eq!(closed, Ok(true), "the connection stays open after the 408");
    }
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200);
}
