//! Native test kit: the host's imports, simulated in the current thread.
//!
//! Compiled only for non-`wasm32` targets, where the SDK routes every import
//! here instead of to the host:
//!
//! - HTTP goes to the handler set with [`set_http_handler`] (without one, a
//!   `connect` error); sent requests are recorded ([`requests`]).
//! - The clock reads the system time until fixed with [`set_now_ms`].
//! - Logs are recorded ([`logs`]) and not printed.
//! - Random bytes are deterministic (a seeded xorshift): tests are reproducible.
//! - The cache is an in-memory map honouring TTLs against the (mock) clock.
//!
//! State is per thread, so tests running in parallel do not see each other.
//! The recordings keep only the last [`RECORD_LIMIT`] entries, so a native
//! benchmark can run for long without growing.
//!
//! A program that links a connector natively and serves its imports for
//! real (the host's benchmark build, cargo feature `native-dummy`) installs
//! a [`NativeHost`] around each call with [`with_native_host`]: while it is
//! installed, every import of that thread goes to it instead of the mock.
//!
//! ```ignore
//! use passerelle_connector_sdk::testing::MockHost;
//! use passerelle_connector_sdk::http::Response;
//!
//! let host = MockHost::new(); // fresh state, reset again when dropped
//! host.set_now_ms(1_767_225_600_000);
//! host.on_http(|req| {
//!     assert_eq!(req.url, "http://psp/v1/charges");
//!     Ok(Response::from_json(201, &serde_json::json!({"id": "ch_1"})))
//! });
//! let outcome = MyPsp::authorize(account, request);
//! assert_eq!(host.requests().len(), 1);
//! ```

use crate::http::{HttpError, Request, Response};
use crate::log::Level;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::rc::Rc;

/// How many requests and log lines are kept (the oldest are dropped).
pub const RECORD_LIMIT: usize = 1000;

/// What a mock HTTP handler is: the request in, the answer or a transport error out.
pub type HttpHandler = dyn FnMut(&Request) -> Result<Response, HttpError>;

struct State {
    http: Option<Rc<RefCell<Box<HttpHandler>>>>,
    requests: VecDeque<Request>,
    logs: VecDeque<(Level, String)>,
    now_ms: Option<u64>,
    rng: u64,
    /// key → (value, expiry in Unix ms).
    cache: HashMap<String, (String, u64)>,
}

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

impl Default for State {
    fn default() -> Self {
        State {
            http: None,
            requests: VecDeque::new(),
            logs: VecDeque::new(),
            now_ms: None,
            rng: SEED,
            cache: HashMap::new(),
        }
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
    static NATIVE_HOST: RefCell<Option<Rc<RefCell<dyn NativeHost>>>> = const { RefCell::new(None) };
}

/// The imports of a connector linked natively into a program that serves
/// them for real, as the WebAssembly host does for a component: one method
/// per import of the contract. See [`with_native_host`].
pub trait NativeHost {
    /// `http.send`.
    fn http_send(&mut self, request: &Request) -> Result<Response, HttpError>;
    /// `log.log`.
    fn log(&mut self, level: Level, message: &str);
    /// `clock.now-ms`.
    fn now_ms(&mut self) -> u64;
    /// `random.bytes` (`len` is at most 1024, as for the import).
    fn random_bytes(&mut self, len: u32) -> Vec<u8>;
    /// `cache.get`.
    fn cache_get(&mut self, key: &str) -> Option<String>;
    /// `cache.set`.
    fn cache_set(&mut self, key: &str, value: &str, ttl_seconds: u32);
    /// `cache.delete`.
    fn cache_delete(&mut self, key: &str);
}

/// Runs `f` (a call into a connector) with every import of this thread
/// served by `host` instead of the mock, then gives `host` back. Nothing is
/// recorded by the mock meanwhile. Calls do not nest: `f` must not call
/// `with_native_host` itself.
pub fn with_native_host<H: NativeHost + 'static, R>(host: H, f: impl FnOnce() -> R) -> (R, H) {
    /// Uninstalls the host however `f` ends (a panic included), so a thread
    /// that is reused never serves a later call with a stale host.
    struct Installed;
    impl Drop for Installed {
        fn drop(&mut self) {
            NATIVE_HOST.with(|h| h.borrow_mut().take());
        }
    }
    let host = Rc::new(RefCell::new(host));
    let shared: Rc<RefCell<dyn NativeHost>> = host.clone();
    NATIVE_HOST.with(|h| {
        let previous = h.borrow_mut().replace(shared);
        assert!(previous.is_none(), "with_native_host calls do not nest");
    });
    let installed = Installed;
    let result = f();
    drop(installed);
    let host = Rc::try_unwrap(host)
        .ok()
        .expect("the native host is held by no one once uninstalled");
    (result, host.into_inner())
}

/// The native host installed on this thread, if any.
fn native_host() -> Option<Rc<RefCell<dyn NativeHost>>> {
    NATIVE_HOST.with(|h| h.borrow().clone())
}

fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|s| f(&mut s.borrow_mut()))
}

fn push_capped<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() == RECORD_LIMIT {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// Clears everything: handler, recordings, clock, cache, random seed.
pub fn reset() {
    with(|s| *s = State::default());
}

/// Answers every HTTP request of this thread with `handler`.
pub fn set_http_handler(handler: impl FnMut(&Request) -> Result<Response, HttpError> + 'static) {
    let handler: Box<HttpHandler> = Box::new(handler);
    with(|s| s.http = Some(Rc::new(RefCell::new(handler))));
}

/// Fixes the clock at `ms` (Unix milliseconds).
pub fn set_now_ms(ms: u64) {
    with(|s| s.now_ms = Some(ms));
}

/// Moves a fixed clock forward by `ms` (fixing it at the system time first
/// if it was not fixed).
pub fn advance_ms(ms: u64) {
    let now = mock::now_ms();
    set_now_ms(now + ms);
}

/// Goes back to the system clock.
pub fn use_system_clock() {
    with(|s| s.now_ms = None);
}

/// The requests sent so far (oldest first).
pub fn requests() -> Vec<Request> {
    with(|s| s.requests.iter().cloned().collect())
}

/// The log lines written so far (oldest first).
pub fn logs() -> Vec<(Level, String)> {
    with(|s| s.logs.iter().cloned().collect())
}

/// A handle on this thread's mock host: [`MockHost::new`] starts from a clean
/// state and dropping it cleans up again. Every method is the free function of
/// the same name; the handle only scopes them to a test.
pub struct MockHost {
    // The state is thread-local: keep the handle on its thread.
    _not_send: PhantomData<*const ()>,
}

impl MockHost {
    /// Resets this thread's mock host and returns a handle on it.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        reset();
        MockHost {
            _not_send: PhantomData,
        }
    }

    /// See [`set_http_handler`].
    pub fn on_http(
        &self,
        handler: impl FnMut(&Request) -> Result<Response, HttpError> + 'static,
    ) -> &Self {
        set_http_handler(handler);
        self
    }

    /// See [`set_now_ms`].
    pub fn set_now_ms(&self, ms: u64) -> &Self {
        set_now_ms(ms);
        self
    }

    /// See [`advance_ms`].
    pub fn advance_ms(&self, ms: u64) -> &Self {
        advance_ms(ms);
        self
    }

    /// See [`requests`].
    pub fn requests(&self) -> Vec<Request> {
        requests()
    }

    /// The last request sent, if any.
    pub fn last_request(&self) -> Option<Request> {
        with(|s| s.requests.back().cloned())
    }

    /// See [`logs`].
    pub fn logs(&self) -> Vec<(Level, String)> {
        logs()
    }

    /// The cache entry `key`, as the connector would see it.
    pub fn cache_get(&self, key: &str) -> Option<String> {
        mock::cache_get(key)
    }
}

impl Drop for MockHost {
    fn drop(&mut self) {
        reset();
    }
}

/// The import implementations used by `crate::host` off wasm32.
pub(crate) mod mock {
    use super::*;

    pub fn http_send(request: &Request) -> Result<Response, HttpError> {
        if let Some(host) = native_host() {
            return host.borrow_mut().http_send(request);
        }
        // Take the handler out of the state before calling it, so that a
        // handler may itself use the clock, the cache or logs.
        let handler = with(|s| {
            push_capped(&mut s.requests, request.clone());
            s.http.clone()
        });
        match handler {
            Some(handler) => (handler.borrow_mut())(request),
            None => Err(HttpError::Connect(
                "no HTTP handler: call passerelle_connector_sdk::testing::set_http_handler".into(),
            )),
        }
    }

    pub fn log(level: Level, message: &str) {
        if let Some(host) = native_host() {
            return host.borrow_mut().log(level, message);
        }
        with(|s| push_capped(&mut s.logs, (level, message.to_string())));
    }

    pub fn now_ms() -> u64 {
        if let Some(host) = native_host() {
            return host.borrow_mut().now_ms();
        }
        with(|s| s.now_ms).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        })
    }

    pub fn random_bytes(len: u32) -> Vec<u8> {
        if let Some(host) = native_host() {
            return host.borrow_mut().random_bytes(len);
        }
        with(|s| {
            (0..len)
                .map(|_| {
                    // xorshift64*: deterministic, good enough for tests, not for secrets.
                    s.rng ^= s.rng >> 12;
                    s.rng ^= s.rng << 25;
                    s.rng ^= s.rng >> 27;
                    (s.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
                })
                .collect()
        })
    }

    pub fn cache_get(key: &str) -> Option<String> {
        if let Some(host) = native_host() {
            return host.borrow_mut().cache_get(key);
        }
        let now = now_ms();
        with(|s| match s.cache.get(key) {
            Some((value, expires)) if *expires > now => Some(value.clone()),
            Some(_) => {
                s.cache.remove(key);
                None
            }
            None => None,
        })
    }

    pub fn cache_set(key: &str, value: &str, ttl_seconds: u32) {
        if let Some(host) = native_host() {
            return host.borrow_mut().cache_set(key, value, ttl_seconds);
        }
        let expires = now_ms().saturating_add(u64::from(ttl_seconds) * 1000);
        with(|s| {
            s.cache
                .insert(key.to_string(), (value.to_string(), expires))
        });
    }

    pub fn cache_delete(key: &str) {
        if let Some(host) = native_host() {
            return host.borrow_mut().cache_delete(key);
        }
        with(|s| s.cache.remove(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cache, clock, random};

    #[test]
    fn http_goes_to_the_handler_and_is_recorded() {
        let host = MockHost::new();
        let err = Request::get("http://x").send().unwrap_err();
        assert_eq!(err.code, "connect");
        host.on_http(|req| Ok(Response::new(200, req.url.clone())));
        let res = Request::get("http://y").header("A", "b").send().unwrap();
        assert_eq!(res.text(), "http://y");
        assert_eq!(host.requests().len(), 2);
        assert_eq!(host.last_request().unwrap().header_value("a"), Some("b"));
        host.on_http(|_| Err(HttpError::Timeout));
        assert!(Request::get("http://z").send().unwrap_err().is_retryable());
    }

    #[test]
    fn clock_cache_random_logs() {
        let host = MockHost::new();
        host.set_now_ms(1_000_000);
        assert_eq!(clock::now_ms(), 1_000_000);
        assert_eq!(clock::now_secs(), 1_000);
        cache::set("k", "v", 10);
        assert_eq!(cache::get("k").as_deref(), Some("v"));
        host.advance_ms(10_000);
        assert_eq!(cache::get("k"), None);
        cache::set("k", "v", 10);
        cache::delete("k");
        assert_eq!(host.cache_get("k"), None);

        let a = random::bytes(2000);
        assert_eq!(a.len(), 2000);
        reset();
        assert_eq!(random::bytes(2000), a, "deterministic after reset");
        assert_eq!(random::hex(4).len(), 8);

        crate::info!("hello {}", 1);
        crate::warn!("careful");
        assert_eq!(
            host.logs(),
            vec![
                (Level::Info, "hello 1".into()),
                (Level::Warn, "careful".into())
            ]
        );
        for i in 0..RECORD_LIMIT + 5 {
            crate::debug!("{i}");
        }
        assert_eq!(host.logs().len(), RECORD_LIMIT);
    }

    #[test]
    fn a_native_host_serves_every_import_while_installed() {
        struct Host(Vec<String>);
        impl NativeHost for Host {
            fn http_send(&mut self, request: &Request) -> Result<Response, HttpError> {
                self.0.push(format!("http {}", request.url));
                Ok(Response::new(200, "real"))
            }
            fn log(&mut self, _level: Level, message: &str) {
                self.0.push(format!("log {message}"));
            }
            fn now_ms(&mut self) -> u64 {
                42
            }
            fn random_bytes(&mut self, len: u32) -> Vec<u8> {
                vec![7; len as usize]
            }
            fn cache_get(&mut self, key: &str) -> Option<String> {
                Some(format!("cached {key}"))
            }
            fn cache_set(&mut self, key: &str, value: &str, _ttl_seconds: u32) {
                self.0.push(format!("set {key}={value}"));
            }
            fn cache_delete(&mut self, key: &str) {
                self.0.push(format!("delete {key}"));
            }
        }
        let host = MockHost::new();
        let (body, native) = with_native_host(Host(Vec::new()), || {
            crate::info!("hi");
            cache::set("k", "v", 1);
            cache::delete("k");
            assert_eq!(clock::now_ms(), 42);
            assert_eq!(random::bytes(3), vec![7, 7, 7]);
            assert_eq!(cache::get("k").as_deref(), Some("cached k"));
            Request::get("http://psp/x").send().unwrap().text()
        });
        assert_eq!(body, "real");
        assert_eq!(
            native.0,
            ["log hi", "set k=v", "delete k", "http http://psp/x"]
        );
        // Nothing reached the mock; once uninstalled, the mock answers again.
        assert!(host.requests().is_empty() && host.logs().is_empty());
        assert_eq!(Request::get("http://y").send().unwrap_err().code, "connect");
        let panicked = std::panic::catch_unwind(|| {
            with_native_host(Host(Vec::new()), || panic!("connector bug"))
        });
        assert!(panicked.is_err());
        assert_ne!(clock::now_ms(), 42, "a panic uninstalls the host too");
    }

    #[test]
    fn dropping_the_handle_resets() {
        {
            let host = MockHost::new();
            host.set_now_ms(5);
        }
        assert_ne!(clock::now_ms(), 5);
    }
}
