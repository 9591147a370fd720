//! Connectors shipped inside the binary. `build.rs` compiles every plugin
//! under `plugins/` to a WebAssembly component and lists it here.

/// A connector compiled into the binary.
pub struct BundledPlugin {
    pub id: &'static str,
    pub manifest_toml: &'static str,
    pub component: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));
