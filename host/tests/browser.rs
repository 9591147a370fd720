//! Real checkouts in headless Chromium, driven over WebDriver (the
//! fantoccini client and Debian's chromedriver, one per browser) against
//! `passerelle serve --demo`.
//!
//! - The dummy PSP: a payment is created with the 3-D Secure test card, the
//!   browser opens the PSP's 3-D Secure page, clicks the first form's button
//!   (approve) and must end on the merchant's `return_url` with
//!   `payment_id`; the payment is then authorized.
//! - Adyen, HiPay, Worldline Sips and PayPal: the merchant's checkout page
//!   collects the browser data 3-D Secure 2 needs with JavaScript and posts
//!   it to the merchant's server, which creates the payment with it
//!   (`shopper.browser`, the `Accept` header and the IP it saw); the page
//!   follows `next_action` to the provider's simulator, the test approves
//!   there, and the browser must end on the merchant's return URL. The
//!   payment is then authorized, and what the simulator recorded (and the
//!   payment's `three_ds`, where the provider reports it) shows that the
//!   provider got the browser's data and authenticated the shopper.
//!
//! Skipped with a notice when Chromium or chromedriver is not installed
//! (Debian's `chromium` and `chromium-driver`, which `scripts/chromium.sh`
//! installs), except in CI (`CI` set), where it must run. `CHROMIUM=/path`
//! and `CHROMEDRIVER=/path` pick the binaries.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{payment_body, rand_suffix, Backend, TestServer, CARD_3DS};
use fantoccini::error::CmdError;
use futures_util::FutureExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The browser and the WebDriver server that drives it.
struct Binaries {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

/// Chromium and chromedriver, or `None` (with one notice naming what is
/// missing) when the test is to be skipped; panics in CI, where it must run.
fn binaries_or_skip() -> Option<Binaries> {
    const CHROMIUM_NAMES: &[&str] = &[
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ];
    let chromium = find_binary("CHROMIUM", CHROMIUM_NAMES, "chromium");
    let chromedriver = find_binary("CHROMEDRIVER", &["chromedriver"], "chromium-driver");
    let missing = match (chromium, chromedriver) {
        (Ok(chromium), Ok(chromedriver)) => {
            return Some(Binaries {
                chromium,
                chromedriver,
            })
        }
        (chromium, chromedriver) => [chromium.err(), chromedriver.err()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("; "),
    };
    if std::env::var_os("CI").is_some() {
        panic!("CI must run the browser test, but {missing}");
    }
    eprintln!("NOTICE: browser test skipped: {missing}");
    None
}

/// The binary `$var` names, else the first of `names` found on `PATH`; the
/// error says what is missing and how to install it (Debian's `package`).
fn find_binary(var: &str, names: &[&str], package: &str) -> Result<PathBuf, String> {
    let install = format!(
        "install Debian's `{package}` (`bash scripts/chromium.sh` does) \
         or set {var}=/path/to/{}",
        names[0]
    );
    if let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(format!("{var}={} is not a file: {install}", path.display()));
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| format!("no {} binary on PATH: {install}", names[0]))
}

/// The shopper's e-mail address the merchant sends with every payment.
const SHOPPER_EMAIL: &str = "ada.lovelace@example.com";

/// What the merchant's server did for one cart's checkout.
#[derive(Debug, Clone)]
struct Checkout {
    /// The browser data the checkout page's JavaScript posted.
    reported: Value,
    /// The `Accept` header of that request.
    accept: String,
    /// The shopper's IP address, from the connection.
    ip: String,
    /// The answer of `POST /v1/payments`.
    status: u16,
    answer: Value,
}

#[derive(Default)]
struct Shop {
    /// Passerelle's base URL and the merchant's secret key.
    api: Option<(String, String)>,
    /// Cart → the payment to create (without `shopper`).
    orders: HashMap<String, Value>,
    checkouts: HashMap<String, Checkout>,
    /// Request targets of the pages served.
    seen: Vec<String>,
}

/// The merchant's site:
/// - `GET /checkout?cart=…`: the checkout page, whose JavaScript collects
///   the browser data 3-D Secure 2 needs when the shopper clicks "Pay" and
///   posts it (a form post, so the request carries the browser's own
///   navigation `Accept` header) to
/// - `POST /checkout/pay`: creates the payment with `POST /v1/payments`
///   and answers a page whose JavaScript follows `next_action`;
/// - any other `GET`: a "thank you" page (the return URL).
struct MerchantSite {
    base_url: String,
    shop: Arc<Mutex<Shop>>,
    task: tokio::task::JoinHandle<()>,
}

impl MerchantSite {
    async fn start() -> MerchantSite {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let shop = Arc::new(Mutex::new(Shop::default()));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let (state, origin) = (shop.clone(), base_url.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let (state, origin, http) = (state.clone(), origin.clone(), http.clone());
                tokio::spawn(async move {
                    let _ = serve_merchant(stream, peer, state, origin, http).await;
                });
            }
        });
        MerchantSite {
            base_url,
            shop,
            task,
        }
    }

    /// Payments are created on `server` with its merchant's secret key.
    fn use_api(&self, server: &TestServer) {
        self.shop.lock().unwrap().api = Some((server.base_url.clone(), server.secret_key.clone()));
    }

    fn add_order(&self, cart: &str, payment: Value) {
        self.shop
            .lock()
            .unwrap()
            .orders
            .insert(cart.to_string(), payment);
    }

    fn checkout(&self, cart: &str) -> Option<Checkout> {
        self.shop.lock().unwrap().checkouts.get(cart).cloned()
    }

    fn seen(&self) -> Vec<String> {
        self.shop.lock().unwrap().seen.clone()
    }
}

impl Drop for MerchantSite {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<String> {
        let query = self.target.split_once('?')?.1;
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    if length > 64 * 1024 {
        return Ok(None);
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        target,
        headers,
        body,
    }))
}

async fn serve_merchant(
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
    shop: Arc<Mutex<Shop>>,
    origin: String,
    http: reqwest::Client,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let path = request.target.split('?').next().unwrap_or("").to_string();
    let (status, body) = match (request.method.as_str(), path.as_str()) {
        (_, p) if p.starts_with("/favicon") => ("404 Not Found", String::new()),
        ("GET", "/checkout") => {
            shop.lock().unwrap().seen.push(request.target.clone());
            let cart = request.query("cart").unwrap_or_default();
            if shop.lock().unwrap().orders.contains_key(&cart) {
                ("200 OK", checkout_page(&cart))
            } else {
                (
                    "404 Not Found",
                    page("Unknown cart", "<h1>Unknown cart</h1>"),
                )
            }
        }
        ("POST", "/checkout/pay") => {
            shop.lock().unwrap().seen.push(request.target.clone());
            pay(&request, peer, &shop, &origin, &http).await
        }
        ("GET", _) => {
            shop.lock().unwrap().seen.push(request.target.clone());
            (
                "200 OK",
                page("Order confirmed", "<h1>Thank you for your order</h1>"),
            )
        }
        _ => ("405 Method Not Allowed", String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body>{body}</body></html>"
    )
}

/// The checkout page: "Pay" posts the cart and what the browser reports
/// (3-D Secure 2's browser data) to the merchant's server.
fn checkout_page(cart: &str) -> String {
    let cart: String = cart
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    page(
        "Checkout",
        &format!(
            r#"<h1>Checkout</h1>
<form id="checkout" method="post" action="/checkout/pay">
<input type="hidden" name="cart" value="{cart}">
<input type="hidden" name="browser" value="">
<button id="pay" type="submit">Pay</button>
</form>
<script>
document.getElementById("checkout").addEventListener("submit", function () {{
  var javaEnabled = false;
  try {{
    javaEnabled = typeof navigator.javaEnabled === "function" ? navigator.javaEnabled() : false;
  }} catch (e) {{
    javaEnabled = false;
  }}
  this.elements.browser.value = JSON.stringify({{
    user_agent: navigator.userAgent,
    language: navigator.language,
    color_depth: screen.colorDepth,
    screen_height: screen.height,
    screen_width: screen.width,
    time_zone_offset: new Date().getTimezoneOffset(),
    java_enabled: javaEnabled,
    javascript_enabled: true
  }});
}});
</script>"#
        ),
    )
}

/// `POST /checkout/pay`: the merchant's server creates the payment with the
/// browser data the page posted, the request's `Accept` header and the
/// connection's IP address, and answers a page that follows `next_action`.
async fn pay(
    request: &Request,
    peer: std::net::SocketAddr,
    shop: &Mutex<Shop>,
    origin: &str,
    http: &reqwest::Client,
) -> (&'static str, String) {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    let cart = form.get("cart").cloned().unwrap_or_default();
    let (api, order) = {
        let shop = shop.lock().unwrap();
        (shop.api.clone(), shop.orders.get(&cart).cloned())
    };
    let (Some((api_base, secret_key)), Some(mut payment)) = (api, order) else {
        return (
            "404 Not Found",
            page("Unknown cart", "<h1>Unknown cart</h1>"),
        );
    };
    let reported: Value = form
        .get("browser")
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let accept = request.header("accept").unwrap_or("").to_string();
    let ip = peer.ip().to_string();
    // The fields 3-D Secure 2 needs, each taken from what the page posted.
    let mut browser = json!({"accept_header": accept});
    for field in [
        "user_agent",
        "language",
        "color_depth",
        "screen_height",
        "screen_width",
        "time_zone_offset",
        "java_enabled",
        "javascript_enabled",
    ] {
        browser[field] = reported[field].clone();
    }
    payment["shopper"] = json!({
        "email": SHOPPER_EMAIL,
        "ip_address": ip,
        "origin": origin,
        "browser": browser,
    });
    let (status, answer) = match http
        .post(format!("{api_base}/v1/payments"))
        .bearer_auth(&secret_key)
        .json(&payment)
        .send()
        .await
    {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        Err(err) => (0, Value::String(err.to_string())),
    };
    shop.lock().unwrap().checkouts.insert(
        cart,
        Checkout {
            reported,
            accept,
            ip,
            status,
            answer: answer.clone(),
        },
    );
    let action = &answer["next_action"];
    if !action.is_object() {
        return (
            "200 OK",
            page(
                "Payment not started",
                "<h1>Your payment could not start</h1>",
            ),
        );
    }
    // Inside <script>: no "<" can close the element.
    let action = action.to_string().replace('<', "\\u003c");
    let body = format!(
        r#"<h1>Redirecting to your payment</h1>
<script id="next-action" type="application/json">{action}</script>
<script>
var action = JSON.parse(document.getElementById("next-action").textContent);
if (action.method === "POST") {{
  var form = document.createElement("form");
  form.method = "post";
  form.action = action.url;
  var fields = action.form || {{}};
  Object.keys(fields).forEach(function (name) {{
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = fields[name];
    form.appendChild(input);
  }});
  document.body.appendChild(form);
  form.submit();
}} else {{
  location.assign(action.url);
}}
</script>"#
    );
    ("200 OK", page("Redirecting", &body))
}

/// Chromium's flags for every browser: headless, and nothing that talks to
/// the network on its own. chromedriver adds its own (the DevTools port it
/// drives Chromium through, `--enable-automation`, ...).
const CHROMIUM_FLAGS: &[&str] = &[
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
];

/// How long one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Headless Chromium in a WebDriver session of its own chromedriver.
struct Browser {
    client: fantoccini::Client,
    driver: Driver,
}

/// A chromedriver process, the session it runs and Chromium's temporary
/// profile. chromedriver runs in a process group of its own, which the
/// Chromium it starts joins. Dropping it (also when a test panics) ends the
/// session, so that chromedriver closes Chromium, then kills the group and
/// removes the profile.
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
    profile: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free port (`--port=0`: it picks one and
    /// says which) with the environment variables `env`, which Chromium
    /// inherits.
    async fn start(chromedriver: &Path, env: &[(&str, &str)]) -> Driver {
        let profile = std::env::temp_dir().join(format!("passerelle-chromium-{}", rand_suffix()));
        std::fs::create_dir_all(&profile).unwrap();
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .envs(env.iter().copied())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().unwrap();
        let mut driver = Driver {
            child,
            port: 0,
            session: None,
            profile,
        };
        // "ChromeDriver was started successfully on port 12345."; the rest
        // of what it prints is read and dropped.
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let port = line
                    .split_once("started successfully on port ")
                    .and_then(|(_, port)| port.trim().trim_end_matches('.').parse::<u16>().ok());
                if let Some(port) = port {
                    let _ = port_tx.send(port);
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        driver.port = loop {
            if let Ok(port) = port_rx.try_recv() {
                break port;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited early with {status}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not say which port it listens on"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // chromedriver closes Chromium with its session.
            let _ = delete_session(self.port, &session);
        }
        // chromedriver and whatever is left of Chromium.
        let group = -(self.child.id() as libc::pid_t);
        // SAFETY: kill(2) with a negative pid signals that process group,
        // which chromedriver leads: it has not been waited for yet, so its
        // id cannot have been reused.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `DELETE /session/{id}`, blocking (for `Drop`, where nothing can be
/// awaited): chromedriver answers once Chromium is closed.
fn delete_session(port: u16, session: &str) -> std::io::Result<()> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let _ = stream.read(&mut [0u8; 1024])?;
    Ok(())
}

impl Browser {
    async fn launch(binaries: &Binaries) -> Browser {
        Browser::launch_with(binaries, &[], &[]).await
    }

    /// Chromium with more command-line arguments and environment variables
    /// (the shopper's language, time zone).
    async fn launch_with(binaries: &Binaries, args: &[&str], env: &[(&str, &str)]) -> Browser {
        let mut driver = Driver::start(&binaries.chromedriver, env).await;
        let mut chromium_args: Vec<String> = CHROMIUM_FLAGS
            .iter()
            .chain(args)
            .map(|arg| arg.to_string())
            .collect();
        chromium_args.push(format!("--user-data-dir={}", driver.profile.display()));
        let mut capabilities = fantoccini::wd::Capabilities::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"binary": binaries.chromium, "args": chromium_args}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let session = fantoccini::ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await;
        let client = session.unwrap_or_else(|err| panic!("no WebDriver session: {err}"));
        driver.session = client
            .session_creation_response()
            .map(|created| created.session_id().to_string());
        Browser { client, driver }
    }

    /// Opens `url` and waits until it is loaded.
    async fn goto(&self, url: &str) {
        answer("Navigate To", self.client.goto(url))
            .await
            .unwrap_or_else(|err| panic!("opening {url}: {err}"));
    }

    /// Evaluates a JavaScript expression in the page; an error when it
    /// threw or the browser refused.
    async fn try_eval(&self, expression: &str) -> Result<Value, CmdError> {
        let script = format!("return ({expression});");
        answer(expression, self.client.execute(&script, Vec::new())).await
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    async fn eval(&self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|err| panic!("{expression} threw: {err}"))
    }

    /// Like [`Browser::eval`], but `None` while the page cannot answer (it
    /// is navigating, or the expression threw).
    async fn poll(&self, expression: &str) -> Option<Value> {
        self.try_eval(expression).await.ok()
    }

    /// Where the page is and whether it is loaded.
    async fn location(&self) -> Option<(String, bool)> {
        let state = self
            .poll("JSON.stringify([location.href, document.readyState])")
            .await?;
        let state: Value = serde_json::from_str(state.as_str()?).ok()?;
        Some((state[0].as_str()?.to_string(), state[1] == "complete"))
    }

    /// Waits until the page's URL satisfies `done` and the document is loaded.
    async fn wait_for_url(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut href = String::new();
        loop {
            if let Some((at, loaded)) = self.location().await {
                if done(&at) && loaded {
                    return at;
                }
                href = at;
            }
            assert!(
                Instant::now() < deadline,
                "the browser never reached {what}; it is at {href}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the session: chromedriver closes Chromium.
    async fn close(self) {
        let Browser { client, mut driver } = self;
        let closed = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        if matches!(closed, Ok(Ok(()))) {
            driver.session = None;
        }
        // Dropping the driver kills chromedriver and removes the profile.
    }
}

/// A WebDriver command's result, which must come within [`COMMAND_TIMEOUT`].
async fn answer<T>(
    what: &str,
    command: impl Future<Output = Result<T, CmdError>>,
) -> Result<T, CmdError> {
    tokio::time::timeout(COMMAND_TIMEOUT, command)
        .await
        .unwrap_or_else(|_| panic!("no answer to {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_d_secure_checkout_in_headless_chromium() {
    let Some(binaries) = binaries_or_skip() else {
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

    let browser = Browser::launch(&binaries).await;
    browser.goto(&challenge_url).await;
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
    let seen = merchant.seen();
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

/// The amount of each provider's checkout (EUR cents).
const AMOUNT: u64 = 4_200;
/// How long the browser may take to reach a page.
const PAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one provider's checkout may take in all.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);
/// The shopper's browser settings: a French browser in India (UTC+05:30,
/// no daylight saving time), so that what reaches the provider is not a
/// default.
const SHOPPER_LANGUAGE: &str = "fr-FR";
const SHOPPER_TIME_ZONE: &str = "Asia/Kolkata";
const SHOPPER_TIME_ZONE_OFFSET: i64 = -330;

/// Adyen's 3-D Secure test card (docs/sandbox/adyen.md: a redirect to the
/// 3-D Secure page with a complete `browserInfo`, refused 38 without).
const ADYEN_CARD_3DS: &str = "4212345678901237";
/// HiPay's PSD2 card (sandbox/src/hipay/cards.rs `PSD2_CARD`: challenged
/// with `authentication_indicator` and `browser_info`, soft-declined 178
/// without).
const HIPAY_CARD_PSD2: &str = "4000027600000009";

/// What the shopper pays with.
enum Method {
    /// A card, in the payment request (and typed on the provider's page
    /// where the provider hosts the card form).
    Card(&'static str),
    /// A wallet (`payment_method.type`), approved on the provider's page.
    Wallet(&'static str),
}

/// One thing the shopper does on the provider's pages: once the browser
/// shows a page of the simulator whose first form posts to a URL ending
/// with `form_action`, fill `fields` in that form, check that its
/// `button.approve` reads `button`, and click it.
struct Step {
    form_action: &'static str,
    fields: &'static [(&'static str, &'static str)],
    button: &'static str,
}

/// One provider's checkout.
struct Case {
    /// The demo's connector account, named after the provider (as
    /// `passerelle serve --demo` names them), and its simulator in demo.json.
    provider: &'static str,
    method: Method,
    steps: &'static [Step],
}

fn provider_cases() -> [Case; 4] {
    [
        Case {
            provider: "adyen",
            method: Method::Card(ADYEN_CARD_3DS),
            // sandbox/src/adyen/redirect.rs: approve, fail, cancel.
            steps: &[Step {
                form_action: "/approve",
                fields: &[],
                button: "Authenticate",
            }],
        },
        Case {
            provider: "hipay",
            method: Method::Card(HIPAY_CARD_PSD2),
            // sandbox/src/hipay/pages.rs, the 3-D Secure page.
            steps: &[Step {
                form_action: "/approve",
                fields: &[],
                button: "Authenticate",
            }],
        },
        Case {
            provider: "sips",
            method: Method::Card(CARD_3DS),
            // sandbox/src/sips/paypage.rs: Sips hosts the card form, then
            // its 3-D Secure step (approve first).
            steps: &[
                Step {
                    form_action: "/payment/card",
                    fields: &[
                        ("cardNumber", CARD_3DS),
                        ("expiryMonth", "12"),
                        ("expiryYear", "2030"),
                        ("cvv", "123"),
                    ],
                    button: "Pay",
                },
                Step {
                    form_action: "/payment/3ds/approve",
                    fields: &[],
                    button: "Approve",
                },
            ],
        },
        Case {
            provider: "paypal",
            method: Method::Wallet("paypal"),
            // sandbox/src/paypal/approval.rs: the buyer approves.
            steps: &[Step {
                form_action: "/approve",
                fields: &[],
                button: "Pay with PayPal",
            }],
        },
    ]
}

/// What a browser reports, read over WebDriver (not through the merchant's
/// page): what the checkout page must post.
const BROWSER_REPORT: &str = "JSON.stringify({\
    user_agent: navigator.userAgent, \
    language: navigator.language, \
    color_depth: screen.colorDepth, \
    screen_height: screen.height, \
    screen_width: screen.width, \
    time_zone_offset: new Date().getTimezoneOffset(), \
    java_enabled: typeof navigator.javaEnabled === 'function' ? navigator.javaEnabled() : false, \
    javascript_enabled: true})";

/// For each of Adyen, HiPay, Sips and PayPal: the browser pays on the
/// merchant's checkout page with the 3-D Secure 2 data its JavaScript
/// collected, approves on the provider's page and comes back to the
/// merchant; the payment is authorized and the provider got the browser's
/// data. One browser, one server; every provider is tried, and the test
/// fails naming each provider that did not get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_d_secure_2_browser_data_reaches_each_provider() {
    let Some(binaries) = binaries_or_skip() else {
        return;
    };
    let started = Instant::now();
    let merchant = MerchantSite::start().await;
    let server = TestServer::start(Backend::Sqlite).await;
    merchant.use_api(&server);
    let accept_language = format!("--accept-lang={SHOPPER_LANGUAGE}");
    let browser =
        Browser::launch_with(&binaries, &[&accept_language], &[("TZ", SHOPPER_TIME_ZONE)]).await;

    // What this browser reports, asked over WebDriver on the merchant's site.
    let probe = format!("{}/checkout/done?cart=probe", merchant.base_url);
    browser.goto(&probe).await;
    browser
        .wait_for_url("the merchant's site", |href| href == probe)
        .await;
    let report = browser.eval(BROWSER_REPORT).await;
    let browser_report: Value = serde_json::from_str(report.as_str().unwrap()).unwrap();
    assert_eq!(
        browser_report["language"], SHOPPER_LANGUAGE,
        "{browser_report}"
    );
    assert_eq!(
        browser_report["time_zone_offset"], SHOPPER_TIME_ZONE_OFFSET,
        "{browser_report}"
    );

    let mut failures = Vec::new();
    for case in provider_cases() {
        let case_started = Instant::now();
        let run = tokio::time::timeout(
            CASE_TIMEOUT,
            pay_with_browser_data(&browser, &merchant, &server, &browser_report, &case),
        );
        let outcome = AssertUnwindSafe(run).catch_unwind().await;
        let took = case_started.elapsed();
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(_)) => Some(format!("did not finish within {CASE_TIMEOUT:?}")),
            Err(panic) => Some(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            ),
        };
        match failure {
            None => eprintln!("{}: passed in {took:.1?}", case.provider),
            Some(why) => {
                eprintln!("{}: FAILED in {took:.1?}: {why}", case.provider);
                failures.push(format!("{}: {why}", case.provider));
            }
        }
    }
    browser.close().await;
    eprintln!("four providers in {:.1?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "{} of 4 providers failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One provider's checkout in the browser, then what Passerelle and the
/// provider's simulator show.
async fn pay_with_browser_data(
    browser: &Browser,
    merchant: &MerchantSite,
    server: &TestServer,
    browser_report: &Value,
    case: &Case,
) {
    let provider = case.provider;
    assert_eq!(
        server.demo["connectors"][provider]["plugin"], provider,
        "the demo has a {provider} account: {}",
        server.demo["connectors"]
    );
    let simulator = server.demo["sandbox"][provider]["base_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no {provider} simulator in demo.json"))
        .to_string();

    // The merchant's order, paid through the provider's account.
    let cart = format!("{provider}-{}", rand_suffix());
    let return_url = format!("{}/checkout/done?cart={cart}", merchant.base_url);
    let mut order = match case.method {
        Method::Card(card) => payment_body(AMOUNT, "EUR", card, "manual"),
        Method::Wallet(kind) => json!({
            "amount": AMOUNT,
            "currency": "EUR",
            "reference": format!("order-{}", rand_suffix()),
            "capture_method": "manual",
            "payment_method": {"type": kind},
        }),
    };
    order["connector"] = json!(provider);
    order["return_url"] = json!(return_url);
    merchant.add_order(&cart, order);

    // The shopper opens the checkout page and clicks "Pay".
    let checkout_url = format!("{}/checkout?cart={cart}", merchant.base_url);
    browser.goto(&checkout_url).await;
    browser
        .wait_for_url("the checkout page", |href| href == checkout_url)
        .await;
    let clicked = browser
        .eval(
            "(() => { const b = document.getElementById('pay'); \
             if (!b) return false; b.click(); return true; })()",
        )
        .await;
    assert_eq!(clicked, json!(true), "the checkout page has its Pay button");

    // The merchant's server got the browser's data and created the payment.
    let deadline = Instant::now() + PAGE_TIMEOUT;
    let checkout = loop {
        if let Some(checkout) = merchant.checkout(&cart) {
            break checkout;
        }
        assert!(
            Instant::now() < deadline,
            "the checkout page never posted to the merchant's server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        &checkout.reported, browser_report,
        "the checkout page posts what the browser reports"
    );
    assert!(
        checkout.accept.contains("text/html"),
        "the browser's Accept header: {:?}",
        checkout.accept
    );
    assert_eq!(checkout.ip, "127.0.0.1", "the shopper's address");
    let created = &checkout.answer;
    assert_eq!(
        checkout.status, 201,
        "POST /v1/payments with the browser data: {created}"
    );
    assert_eq!(created["connector"], provider, "{created}");
    assert_eq!(
        created["status"], "requires_action",
        "the provider did not send the shopper to authenticate: {created}"
    );
    let action = &created["next_action"];
    assert_eq!(action["type"], "redirect", "{created}");
    assert!(
        action["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(&simulator)),
        "next_action leads to the {provider} simulator ({simulator}): {created}"
    );
    let id = created["id"].as_str().unwrap().to_string();

    // The page followed next_action; the shopper approves on the provider's pages.
    for step in case.steps {
        act_on_provider_page(browser, &simulator, step).await;
    }

    // Back on the merchant's return URL, with the payment's id.
    let final_url = browser
        .wait_for_url("the merchant's return URL", |href| {
            href.starts_with(&return_url)
        })
        .await;
    let heading = browser
        .eval("document.querySelector('h1') && document.querySelector('h1').textContent")
        .await;
    assert_eq!(heading, json!("Thank you for your order"), "{final_url}");
    let final_url = url::Url::parse(&final_url).unwrap();
    let query: Vec<(String, String)> = final_url.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("cart".into(), cart.clone())),
        "{final_url}"
    );
    assert!(
        query.contains(&("payment_id".into(), id.clone())),
        "{final_url}"
    );

    // Authorized.
    let payment = settled_payment(server, &id).await;
    assert_eq!(payment["status"], "requires_capture", "{payment}");
    assert_eq!(payment["amount_capturable"], AMOUNT, "{payment}");
    assert!(payment["next_action"].is_null(), "{payment}");

    // What the provider received, as its simulator shows it.
    match provider {
        "adyen" => adyen_received(server, &simulator, &payment).await,
        "hipay" => hipay_received(server, &simulator, &payment, &checkout).await,
        "sips" => sips_received(server, &simulator, &payment).await,
        "paypal" => paypal_received(server, &simulator, action).await,
        other => panic!("no checks for {other}"),
    }
}

/// Waits for a page of the simulator whose first form posts to a URL ending
/// with the step's `form_action`, fills the step's fields and clicks the
/// form's approve button, after checking what it reads.
async fn act_on_provider_page(browser: &Browser, simulator: &str, step: &Step) {
    const PROBE: &str = "JSON.stringify({href: location.href, ready: document.readyState, \
        action: document.forms.length ? document.forms[0].action : null, \
        button: document.forms.length && document.forms[0].querySelector('button.approve') \
            ? document.forms[0].querySelector('button.approve').textContent.trim() : null})";
    let deadline = Instant::now() + PAGE_TIMEOUT;
    let page = loop {
        let state: Value = browser
            .poll(PROBE)
            .await
            .and_then(|v| serde_json::from_str(v.as_str()?).ok())
            .unwrap_or(Value::Null);
        let href = state["href"].as_str().unwrap_or("");
        if href.starts_with(simulator)
            && state["ready"] == "complete"
            && state["action"]
                .as_str()
                .is_some_and(|a| a.ends_with(step.form_action))
        {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "the browser never reached the simulator's page whose first form posts to …{}; \
             it shows {state}",
            step.form_action
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page["button"], step.button, "{page}");
    let fields: serde_json::Map<String, Value> = step
        .fields
        .iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect();
    let script = format!(
        "(() => {{ const form = document.forms[0]; const fields = {}; \
         for (const name of Object.keys(fields)) {{ \
           const input = form.elements[name]; \
           if (!input) return 'no field ' + name; \
           input.value = fields[name]; }} \
         form.querySelector('button.approve').click(); return 'clicked'; }})()",
        Value::Object(fields)
    );
    let clicked = browser.eval(&script).await;
    assert_eq!(clicked, json!("clicked"), "{page}");
}

/// The payment once the shopper's return has been dealt with.
async fn settled_payment(server: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, payment) = server.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(status, 200, "{payment}");
        let waiting = payment["status"] == "requires_action" || payment["status"] == "processing";
        if !waiting || Instant::now() >= deadline {
            return payment;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The payment's `three_ds` must be `status` (and `liability_shift`, when
/// given); otherwise the message shows the payment and how it got there
/// (its events: the shopper's return, a notification, ...).
async fn assert_three_ds(
    server: &TestServer,
    payment: &Value,
    status: &str,
    liability_shift: Option<bool>,
) {
    let three_ds = &payment["three_ds"];
    let matches = three_ds["status"] == status
        && liability_shift.is_none_or(|shift| three_ds["liability_shift"] == shift);
    if matches {
        return;
    }
    let id = payment["id"].as_str().unwrap_or("");
    let (_, events) = server.get(&format!("/v1/payments/{id}/events")).await;
    let history: Vec<String> = events["data"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    format!(
                        "{} {}→{}",
                        e["cause"].as_str().unwrap_or("?"),
                        e["from_status"].as_str().unwrap_or("-"),
                        e["to_status"].as_str().unwrap_or("-"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    panic!(
        "the payment's three_ds is {three_ds}, expected status {status:?}{}; \
         its events (cause from→to): {history:?}",
        liability_shift
            .map(|s| format!(" with liability_shift {s}"))
            .unwrap_or_default()
    );
}

/// A simulator's control endpoint (no authentication).
async fn simulator_get(server: &TestServer, url: &str) -> Value {
    let resp = server.http.get(url).send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "GET {url}: {status} {body}");
    body
}

/// Whatever the simulator checked against the provider's documents passed.
async fn simulator_validated(server: &TestServer, simulator: &str, operation: &str) {
    let report = simulator_get(server, &format!("{simulator}/_sandbox/validation")).await;
    assert!(
        report["checked"][operation].as_u64().unwrap_or(0) >= 1,
        "the simulator checked {operation}: {report}"
    );
    assert_eq!(
        report["violations"],
        json!([]),
        "the simulator refused requests: {report}"
    );
}

/// Adyen: the payment went to 3-D Secure because `browserInfo` was complete
/// (the test card is refused 38 without it), and was authenticated. The
/// simulator records only whether a complete `browserInfo` came, not its
/// values.
async fn adyen_received(server: &TestServer, simulator: &str, payment: &Value) {
    let psp = payment["connector_reference"]
        .as_str()
        .unwrap_or_else(|| panic!("no Adyen pspReference: {payment}"));
    let at_adyen = simulator_get(server, &format!("{simulator}/_sandbox/payments/{psp}")).await;
    assert_eq!(at_adyen["resultCode"], "Authorised", "{at_adyen}");
    assert_eq!(
        at_adyen["browserInfo"], true,
        "Adyen got a complete browserInfo: {at_adyen}"
    );
    assert_eq!(at_adyen["threeDs"], "authenticated", "{at_adyen}");
    assert_eq!(at_adyen["value"], AMOUNT, "{at_adyen}");
    simulator_validated(server, simulator, "POST /payments").await;
    // Adyen reports threeDAuthenticated and liabilityShift.
    assert_three_ds(server, payment, "authenticated", Some(true)).await;
}

/// HiPay: challenged because `browser_info` and `authentication_indicator`
/// came (the PSD2 card is soft-declined without them); the shopper's IP,
/// the browser's language (as HiPay's locale) and e-mail address are on the
/// order. The simulator records whether `browser_info` came, not its
/// values.
async fn hipay_received(
    server: &TestServer,
    simulator: &str,
    payment: &Value,
    checkout: &Checkout,
) {
    let id = payment["id"].as_str().unwrap();
    let order = simulator_get(server, &format!("{simulator}/_sandbox/orders/{id}")).await;
    let tx = order["transactions"]
        .as_array()
        .and_then(|t| t.last())
        .unwrap_or_else(|| panic!("HiPay has no transaction for the order: {order}"));
    assert_eq!(tx["state"], "completed", "{tx}");
    assert_eq!(tx["status"], "116", "{tx}");
    assert_eq!(
        tx["threeDSecure"]["authenticationStatus"], "Y",
        "HiPay authenticated the shopper: {tx}"
    );
    assert_eq!(tx["ipAddress"], checkout.ip, "{tx}");
    assert_eq!(tx["order"]["email"], SHOPPER_EMAIL, "{tx}");
    let language = checkout.reported["language"].as_str().unwrap_or("");
    let locale = language.replace('-', "_");
    assert_eq!(
        tx["order"]["language"], locale,
        "HiPay got the browser's language ({language}): {tx}"
    );
    simulator_validated(server, simulator, "POST /v1/order").await;
    // HiPay reports the authentication and the ECI, not the liability shift.
    assert_three_ds(server, payment, "authenticated", None).await;
    assert_ne!(payment["three_ds"]["liability_shift"], false, "{payment}");
}

/// Sips: its Paypage hosts the card form and 3-D Secure, so the browser
/// gives Sips its data itself; the simulator does not record what the
/// browser sent it. It shows the authentication and the guarantee.
async fn sips_received(server: &TestServer, simulator: &str, payment: &Value) {
    let merchant_id = server.demo["sandbox"]["sips"]["merchant_id"]
        .as_str()
        .unwrap();
    let reference = payment["connector_reference"]
        .as_str()
        .unwrap_or_else(|| panic!("no Sips transactionReference: {payment}"));
    let tx = simulator_get(
        server,
        &format!("{simulator}/_sandbox/transactions/{merchant_id}/{reference}"),
    )
    .await;
    assert_eq!(tx["status"], "TO_VALIDATE", "{tx}");
    assert_eq!(tx["responseCode"], "00", "{tx}");
    assert_eq!(tx["authentication"]["status"], "3D_SUCCESS", "{tx}");
    assert_eq!(tx["authentication"]["guarantee"], "Y", "{tx}");
    assert_eq!(tx["cardLast4"], &CARD_3DS[12..], "{tx}");
    // Sips reports holderAuthentStatus and guaranteeIndicator.
    assert_three_ds(server, payment, "authenticated", Some(true)).await;
}

/// PayPal: the buyer approved on PayPal's page, where PayPal sees the
/// browser itself; there is no 3-D Secure in the wallet flow and the
/// Orders API takes no browser data. The order is authorized.
async fn paypal_received(server: &TestServer, simulator: &str, action: &Value) {
    let approval = url::Url::parse(action["url"].as_str().unwrap()).unwrap();
    let order_id = approval
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("the approval link names the order: {approval}"));
    let order = simulator_get(server, &format!("{simulator}/_sandbox/orders/{order_id}")).await;
    assert_eq!(order["status"], "COMPLETED", "{order}");
    assert_eq!(order["intent"], "AUTHORIZE", "{order}");
    let authorization = &order["purchase_units"][0]["payments"]["authorizations"][0];
    assert_eq!(authorization["status"], "CREATED", "{order}");
    assert_eq!(
        authorization["amount"],
        json!({"currency_code": "EUR", "value": "42.00"}),
        "{order}"
    );
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
