//! Rust bindings of the WIT contract `passerelle:connector@1.0.0`.
//!
//! Only `http.send` is async on the host (it awaits the network); the other
//! imports answer at once. Every import may trap, so the host can stop a
//! plugin that abuses one (floods the log, asks for huge buffers).

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit/since_v1.0.0",
    imports: {
        "passerelle:connector/http.send": async | trappable,
        default: trappable,
    },
    exports: { default: async },
});

pub use self::exports::passerelle::connector::connector as guest;
pub use self::passerelle::connector::types;
