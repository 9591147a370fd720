//! Cryptographically secure randomness from the host.

/// `len` random bytes. The host serves at most 1024 per call; larger requests
/// are split into several calls.
pub fn bytes(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let chunk = (len - out.len()).min(1024) as u32;
        out.extend(crate::host::random_bytes(chunk));
    }
    out
}

/// `len` random bytes as lowercase hex (`2 * len` characters): nonces,
/// request ids.
pub fn hex(len: usize) -> String {
    crate::crypto::hex_encode(bytes(len))
}
