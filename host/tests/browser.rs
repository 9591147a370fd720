//! A real checkout in headless Chromium: `passerelle serve --demo` runs, a
//! payment is created with the 3-D Secure test card, the browser opens the
//! PSP's 3-D Secure page, clicks the first form's button (approve) and must
//! end on the merchant's `return_url` with `payment_id`; the payment is then
//! authorized.
//!
//! Chromium is driven over the Chrome DevTools protocol (a websocket, no
//! driver binary). Skipped with a notice when no Chromium is installed,
//! except in CI (`CI` set), where it must run. `CHROMIUM=/path` picks the
//! binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{payment_body, Backend, TestServer, CARD_3DS};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

fn find_chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// The merchant's site: answers every GET with a small "thank you" page and
/// records the request targets it saw.
struct MerchantSite {
    base_url: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MerchantSite {
    async fn start() -> MerchantSite {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = serve_merchant(stream, log).await;
                });
            }
        });
        MerchantSite {
            base_url,
            seen,
            task,
        }
    }
}

impl Drop for MerchantSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_merchant(
    mut stream: TcpStream,
    log: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let target = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("")
        .to_string();
    let body = if target.starts_with("/favicon") {
        String::new()
    } else {
        log.lock().unwrap().push(target);
        "<!DOCTYPE html><html><head><title>Order confirmed</title></head>\
         <body><h1>Thank you for your order</h1></body></html>"
            .to_string()
    };
    let status = if body.is_empty() {
        "404 Not Found"
    } else {
        "200 OK"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Headless Chromium with a DevTools websocket to its first page.
struct Browser {
    child: Child,
    profile: PathBuf,
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Browser {
    async fn launch(binary: &Path) -> Browser {
        let profile =
            std::env::temp_dir().join(format!("passerelle-chromium-{}", common::rand_suffix()));
        std::fs::create_dir_all(&profile).unwrap();
        let child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let mut browser_guard = ChildGuard(Some(child), profile.clone());

        // Chromium writes the DevTools port to <profile>/DevToolsActivePort.
        let port_file = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(60);
        let port: u16 = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                    break port;
                }
            }
            if let Some(child) = browser_guard.0.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("chromium exited early with {status}");
                }
            }
            assert!(Instant::now() < deadline, "chromium did not open DevTools");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };

        // The page target opened on about:blank.
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let ws_url = loop {
            if let Ok(resp) = http
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
            {
                if let Ok(targets) = resp.json::<Value>().await {
                    let page = targets.as_array().and_then(|list| {
                        list.iter()
                            .find(|t| t["type"] == "page")
                            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                            .map(str::to_string)
                    });
                    if let Some(url) = page {
                        break url;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no page target in chromium");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (page, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("DevTools websocket");
        let child = browser_guard.0.take().unwrap();
        Browser {
            child,
            profile,
            page,
            next_id: 0,
        }
    }

    /// Sends one DevTools command and waits for its answer (events are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.page.send(Message::text(message)).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, self.page.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            let Some(Ok(Message::Text(text))) = next else {
                match next {
                    Some(Ok(_)) => continue,
                    other => panic!("DevTools connection ended: {other:?}"),
                }
            };
            let reply: Value = serde_json::from_str(text.as_str()).unwrap();
            if reply["id"] == id {
                assert!(reply["error"].is_null(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Waits until the page's URL satisfies `done` and the document is loaded.
    async fn wait_for_url(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self
                .eval("JSON.stringify([location.href, document.readyState])")
                .await;
            let state: Value =
                serde_json::from_str(state.as_str().unwrap_or("[]")).unwrap_or(Value::Null);
            let href = state[0].as_str().unwrap_or("").to_string();
            if done(&href) && state[1] == "complete" {
                return href;
            }
            assert!(
                Instant::now() < deadline,
                "the browser never reached {what}; it is at {href}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            self.next_id += 1;
            let message = json!({"id": self.next_id, "method": "Browser.close"}).to_string();
            let _ = self.page.send(Message::text(message)).await;
        })
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Drop kills it if it is still running and removes the profile.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Kills Chromium if the launch fails half-way.
struct ChildGuard(Option<Child>, PathBuf);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_d_secure_checkout_in_headless_chromium() {
    let Some(chromium) = find_chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("CI must run the browser test, but no chromium binary was found");
        }
        eprintln!(
            "NOTICE: browser test skipped: no chromium binary (install Debian's `chromium`, \
             or set CHROMIUM=/path/to/chrome)"
        );
        return;
    };
    let merchant = MerchantSite::start().await;
    let server = TestServer::start(Backend::Sqlite).await;

    let mut body = payment_body(4_200, "EUR", CARD_3DS, "manual");
    let return_url = format!("{}/checkout/done?cart=42", merchant.base_url);
    body["return_url"] = json!(return_url);
    let (status, payment) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{payment}");
    assert_eq!(payment["status"], "requires_action", "{payment}");
    let id = payment["id"].as_str().unwrap().to_string();
    let challenge_url = payment["next_action"]["url"].as_str().unwrap().to_string();

    let mut browser = Browser::launch(&chromium).await;
    browser
        .call("Page.navigate", json!({"url": challenge_url}))
        .await;
    browser
        .wait_for_url("the 3-D Secure page", |href| href == challenge_url)
        .await;
    let forms = browser.eval("document.forms.length").await;
    assert!(forms.as_u64().unwrap_or(0) >= 2, "the page has two forms");
    // A real click on the first form's button: the browser submits the form
    // and follows the redirects (PSP → Passerelle → merchant).
    let clicked = browser
        .eval(
            "(() => { const b = document.forms[0].querySelector('button, [type=submit]'); \
             if (!b) return false; b.click(); return true; })()",
        )
        .await;
    assert_eq!(clicked, json!(true), "the first form has a button");
    let merchant_prefix = format!("{}/checkout/done", merchant.base_url);
    let final_url = browser
        .wait_for_url("the merchant's return_url", |href| {
            href.starts_with(&merchant_prefix)
        })
        .await;
    let heading = browser
        .eval("document.querySelector('h1').textContent")
        .await;
    assert_eq!(heading, json!("Thank you for your order"));
    browser.close().await;

    let final_url = url::Url::parse(&final_url).unwrap();
    let query: Vec<(String, String)> = final_url.query_pairs().into_owned().collect();
    assert!(query.contains(&("cart".into(), "42".into())), "{final_url}");
    assert!(
        query.contains(&("payment_id".into(), id.clone())),
        "{final_url}"
    );
    let seen = merchant.seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|t| t.contains(&format!("payment_id={id}"))),
        "the merchant's site was loaded: {seen:?}"
    );

    let (status, payment) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(payment["status"], "requires_capture", "{payment}");
    assert_eq!(payment["amount_capturable"], 4_200);
    assert!(payment["next_action"].is_null());
}

/// `demo.json` names each provider simulator, its URLs and credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_json_lists_the_provider_sandboxes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let sandbox = &server.demo["sandbox"];
    assert!(sandbox["dummy"]["base_url"].is_string(), "{sandbox}");
    for (provider, credential) in [
        ("adyen", "api_key"),
        ("sips", "secret_key"),
        ("hipay", "api_username"),
        ("paypal", "client_id"),
    ] {
        let entry = &sandbox[provider];
        let base = entry["base_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{provider}: {entry}"));
        assert!(base.ends_with(&format!("/{provider}")), "{base}");
        assert!(
            entry["hosts"].as_object().is_some_and(|h| !h.is_empty()),
            "{entry}"
        );
        assert!(entry[credential].is_string(), "{provider}: {entry}");
    }
    assert_eq!(
        sandbox["adyen"]["hosts"]["https://checkout-test.adyen.com/v71"],
        sandbox["adyen"]["base_url"]
    );
    let ca = sandbox["paypal"]["ca_certificate"].as_str().unwrap();
    let pem = std::fs::read_to_string(ca).unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
}

/// `passerelle sandbox` prints the base URLs and serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_command_serves_every_provider() {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("passerelle sandbox starts");
    let stdout = child.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take(8)
            .collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(60), lines)
        .await
        .expect("the sandbox prints its URLs")
        .unwrap();
    let text = lines.join("\n");
    let base = lines[0].rsplit(' ').next().unwrap_or("").to_string();
    let served = async {
        let http = reqwest::Client::new();
        let nowhere = http.get(format!("{base}/nowhere")).send().await.ok()?;
        let dummy = http
            .post(format!("{base}/dummy/v1/charges"))
            .json(&json!({}))
            .send()
            .await
            .ok()?;
        Some((nowhere.status().as_u16(), dummy.status().as_u16()))
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(served, Some((404, 401)), "{text}");
    assert!(
        text.starts_with("PSP sandbox listening on http://127.0.0.1:"),
        "{text}"
    );
    for provider in ["dummy", "adyen", "sips", "hipay", "paypal"] {
        assert!(
            lines.iter().any(
                |l| l.trim_start().starts_with(provider) && l.contains(&format!("/{provider}"))
            ),
            "{provider} missing: {text}"
        );
    }
    assert!(text.contains("Request validation: "), "{text}");
}
