//! The contract's exports, type-checked once per plugin version.
//!
//! The bindings wasmtime generates (`bindings.rs`) look up and type-check
//! every export of the contract each time an instance is created: ten
//! functions whose records and variants are compared field by field, which
//! cost more than a small call itself. Those types belong to the component,
//! not to the instance: [`Exports::check`] checks them on the first instance
//! of a version (its `describe` call, at load), and each later call looks up
//! only the export it calls, by index.

use std::marker::PhantomData;

use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Instance, Lift, Lower, TypedFunc,
};
use wasmtime::{format_err, Store};

use super::bindings::{types as v1_1, v1_0::passerelle::connector::types as v1_0, ContractVersion};
use super::host_imports::CallState;

/// One exported function whose type was found to be `P -> R`.
pub struct Export<P, R> {
    index: ComponentExportIndex,
    ty: PhantomData<fn(P) -> R>,
}

impl<P, R> Export<P, R>
where
    P: ComponentNamedList + Lower + Send + Sync,
    R: ComponentNamedList + Lift + Send + Sync + 'static,
{
    /// Finds `name` in the exported `interface` and checks its type.
    fn check(
        store: &mut Store<CallState>,
        instance: &Instance,
        interface: &ComponentExportIndex,
        name: &str,
    ) -> wasmtime::Result<Self> {
        let index = instance
            .get_export_index(&mut *store, Some(interface), name)
            .ok_or_else(|| format_err!("the component does not export `{name}`"))?;
        instance
            .get_typed_func::<P, R>(&mut *store, &index)
            .map_err(|e| e.context(format!("export `{name}` has the wrong type")))?;
        Ok(Export {
            index,
            ty: PhantomData,
        })
    }

    /// Calls the export on `instance`.
    pub async fn call(
        &self,
        store: &mut Store<CallState>,
        instance: &Instance,
        params: P,
    ) -> wasmtime::Result<R> {
        // The index names an export of one component: on an instance of any
        // other, the lookup finds nothing.
        let func = instance
            .get_func(&mut *store, self.index)
            .ok_or_else(|| format_err!("internal: export looked up on another component"))?;
        // SAFETY: `check` found this export's type to be `P -> R` in this
        // component, and a component's types are the same in all its
        // instances.
        let func = unsafe { TypedFunc::<P, R>::new_unchecked(func) };
        func.call_async(&mut *store, params).await
    }
}

/// Declares the export table of one contract version.
macro_rules! export_table {
    (
        $(#[$doc:meta])*
        $table:ident, $interface:literal {
            $($field:ident: $name:literal ($($param:ty),*) -> $ret:ty,)*
        }
    ) => {
        $(#[$doc])*
        pub struct $table {
            $(pub $field: Export<($($param,)*), ($ret,)>,)*
        }

        impl $table {
            fn check(store: &mut Store<CallState>, instance: &Instance) -> wasmtime::Result<Self> {
                let interface = instance
                    .get_export_index(&mut *store, None, $interface)
                    .ok_or_else(|| format_err!("the component does not export `{}`", $interface))?;
                Ok($table {
                    $($field: Export::check(store, instance, &interface, $name)?,)*
                })
            }
        }
    };
}

export_table! {
    /// `passerelle:connector/connector@1.1.0`.
    ExportsV1_1, "passerelle:connector/connector@1.1.0" {
        describe: "describe" () -> v1_1::ConnectorInfo,
        capabilities: "capabilities" (v1_1::Account)
            -> Result<v1_1::AccountCapabilities, v1_1::ConnectorError>,
        validate_config: "validate-config" (v1_1::Account) -> Result<(), v1_1::ConnectorError>,
        authorize: "authorize" (v1_1::Account, v1_1::AuthorizeRequest)
            -> Result<v1_1::PaymentOutcome, v1_1::ConnectorError>,
        complete: "complete" (v1_1::Account, v1_1::CompleteRequest)
            -> Result<v1_1::PaymentOutcome, v1_1::ConnectorError>,
        capture: "capture" (v1_1::Account, v1_1::CaptureRequest)
            -> Result<v1_1::ModificationOutcome, v1_1::ConnectorError>,
        cancel: "cancel" (v1_1::Account, v1_1::CancelRequest)
            -> Result<v1_1::ModificationOutcome, v1_1::ConnectorError>,
        refund: "refund" (v1_1::Account, v1_1::RefundRequest)
            -> Result<v1_1::ModificationOutcome, v1_1::ConnectorError>,
        sync: "sync" (v1_1::Account, v1_1::PaymentRef)
            -> Result<v1_1::PaymentOutcome, v1_1::ConnectorError>,
        handle_notification: "handle-notification" (v1_1::Account, v1_1::Notification)
            -> Result<v1_1::NotificationOutcome, v1_1::ConnectorError>,
    }
}

export_table! {
    /// `passerelle:connector/connector@1.0.0` (no `capabilities`).
    ExportsV1_0, "passerelle:connector/connector@1.0.0" {
        describe: "describe" () -> v1_0::ConnectorInfo,
        validate_config: "validate-config" (v1_0::Account) -> Result<(), v1_0::ConnectorError>,
        authorize: "authorize" (v1_0::Account, v1_0::AuthorizeRequest)
            -> Result<v1_0::PaymentOutcome, v1_0::ConnectorError>,
        complete: "complete" (v1_0::Account, v1_0::CompleteRequest)
            -> Result<v1_0::PaymentOutcome, v1_0::ConnectorError>,
        capture: "capture" (v1_0::Account, v1_0::CaptureRequest)
            -> Result<v1_0::ModificationOutcome, v1_0::ConnectorError>,
        cancel: "cancel" (v1_0::Account, v1_0::CancelRequest)
            -> Result<v1_0::ModificationOutcome, v1_0::ConnectorError>,
        refund: "refund" (v1_0::Account, v1_0::RefundRequest)
            -> Result<v1_0::ModificationOutcome, v1_0::ConnectorError>,
        sync: "sync" (v1_0::Account, v1_0::PaymentRef)
            -> Result<v1_0::PaymentOutcome, v1_0::ConnectorError>,
        handle_notification: "handle-notification" (v1_0::Account, v1_0::Notification)
            -> Result<v1_0::NotificationOutcome, v1_0::ConnectorError>,
    }
}

/// A version's exports, by the contract version it was built against.
pub enum Exports {
    V1_1(ExportsV1_1),
    V1_0(ExportsV1_0),
}

impl Exports {
    /// Finds the exports of `contract` in `instance`'s component and checks
    /// their types against the host's bindings.
    pub fn check(
        contract: ContractVersion,
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> wasmtime::Result<Self> {
        Ok(match contract {
            ContractVersion::V1_1 => Exports::V1_1(ExportsV1_1::check(store, instance)?),
            ContractVersion::V1_0 => Exports::V1_0(ExportsV1_0::check(store, instance)?),
        })
    }
}
