//! Connectors shipped inside the binary. `build.rs` compiles every plugin
//! under `plugins/` to a WebAssembly component and lists it here.

/// A connector compiled into the binary.
pub struct BundledPlugin {
    pub id: &'static str,
    pub manifest_toml: &'static str,
    pub component: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// Plugins made for the host's own tests (`plugins/test-plugins/`, manifests
/// with `test_only = true`), such as `hostile`, which misbehaves on purpose.
/// Never installed by the server: only tests refer to this list, so the
/// linker leaves it out of the binary.
#[doc(hidden)]
pub mod test_plugins {
    use super::BundledPlugin;

    include!(concat!(env!("OUT_DIR"), "/test_plugins.rs"));
}
