//! The one place where the SDK reaches the host.
//!
//! In the WebAssembly sandbox (`target_arch = "wasm32"`) each function calls
//! the contract's import. Anywhere else the imports do not exist (the
//! generated stubs would panic), so each function goes to the thread-local
//! mock of [`crate::testing`] instead. Every other module calls only this one,
//! which keeps the `cfg` split in a single file.

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::passerelle::connector as wit;
    use crate::http::{HttpError, Request, Response};
    use crate::log::Level;

    pub fn http_send(request: &Request) -> Result<Response, HttpError> {
        let request = wit::http::Request {
            method: request.method.clone(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            timeout_ms: request.timeout_ms,
        };
        wit::http::send(&request).map(|r| Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        })
    }

    pub fn log(level: Level, message: &str) {
        wit::log::log(level, message)
    }

    pub fn now_ms() -> u64 {
        wit::clock::now_ms()
    }

    pub fn random_bytes(len: u32) -> Vec<u8> {
        wit::random::bytes(len)
    }

    pub fn cache_get(key: &str) -> Option<String> {
        wit::cache::get(key)
    }

    pub fn cache_set(key: &str, value: &str, ttl_seconds: u32) {
        wit::cache::set(key, value, ttl_seconds)
    }

    pub fn cache_delete(key: &str) {
        wit::cache::delete(key)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub use crate::testing::mock::{
        cache_delete, cache_get, cache_set, http_send, log, now_ms, random_bytes,
    };
}

pub(crate) use imp::*;
