//! Rust bindings of the WIT contract, one module per minor version.
//!
//! The host works in the newest contract ([`v1_1`], re-exported at this
//! module's root). A component built against an older minor version is
//! called through that version's bindings and its answers converted (see
//! `compat.rs`): its imports are served by the newest linker, which wasmtime
//! matches by semver (`http@1.0.0` is satisfied by `http@1.1.0`, whose types
//! are unchanged).
//!
//! Only `http.send` is async on the host (it awaits the network); the other
//! imports answer at once. Every import may trap, so the host can stop a
//! plugin that abuses one (floods the log, asks for huge buffers).

/// `passerelle:connector@1.1.0`: the host's own types.
pub mod v1_1 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/since_v1.1.0",
        imports: {
            "passerelle:connector/http.send": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

/// `passerelle:connector@1.0.0`: used only to call a 1.0.0 component's
/// exports; its imports are linked through [`v1_1`].
#[allow(dead_code)]
pub mod v1_0 {
    wasmtime::component::bindgen!({
        world: "plugin",
        path: "../wit/since_v1.0.0",
        imports: {
            "passerelle:connector/http.send": async | trappable,
            default: trappable,
        },
        exports: { default: async },
    });
}

pub use self::v1_1::exports::passerelle::connector::connector as guest;
pub use self::v1_1::passerelle::connector::types;
pub use self::v1_1::{Plugin, PluginPre};

/// The contract version a component was built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContractVersion {
    V1_0,
    V1_1,
}

impl ContractVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1_0 => "1.0.0",
            Self::V1_1 => "1.1.0",
        }
    }
}
