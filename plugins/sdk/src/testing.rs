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
        with(|s| push_capped(&mut s.logs, (level, message.to_string())));
    }

    pub fn now_ms() -> u64 {
        with(|s| s.now_ms).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0)
        })
    }

    pub fn random_bytes(len: u32) -> Vec<u8> {
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
        let expires = now_ms().saturating_add(u64::from(ttl_seconds) * 1000);
        with(|s| {
            s.cache
                .insert(key.to_string(), (value.to_string(), expires))
        });
    }

    pub fn cache_delete(key: &str) {
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
    fn dropping_the_handle_resets() {
        {
            let host = MockHost::new();
            host.set_now_ms(5);
        }
        assert_ne!(clock::now_ms(), 5);
    }
}
