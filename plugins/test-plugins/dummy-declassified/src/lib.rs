//! A test-only version of the `dummy` connector (0.3.0) whose `describe`
//! declares `api_key` non-secret where the bundled 0.1.0 declares it secret.
//! The host's tests install it to check that a credential field written
//! while it was secret stays masked whatever a later version says. It makes
//! no payment: every operation is `unsupported`.

use passerelle_connector_sdk::prelude::*;

/// The connector.
pub struct DummyDeclassified;

passerelle_connector_sdk::export_connector!(DummyDeclassified);

impl Connector for DummyDeclassified {
    fn capabilities(_account: Account) -> Result<AccountCapabilities> {
        Err(ConnectorError::unsupported("capabilities"))
    }

    fn describe() -> ConnectorInfo {
        ConnectorInfo {
            id: "dummy".into(),
            name: "Dummy PSP".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            operations: vec![Operation::Authorize],
            payment_methods: vec!["card".into()],
            currencies: Vec::new(),
            credential_fields: vec![
                CredentialField {
                    name: "api_key".into(),
                    label: "API key".into(),
                    // The point of this plugin: 0.1.0 says true.
                    secret: false,
                    required: true,
                },
                CredentialField {
                    name: "webhook_secret".into(),
                    label: "Webhook signing secret".into(),
                    secret: true,
                    required: true,
                },
            ],
        }
    }

    fn validate_config(_account: Account) -> Result<()> {
        Ok(())
    }

    fn authorize(_account: Account, _request: AuthorizeRequest) -> Result<PaymentOutcome> {
        Err(ConnectorError::unsupported("authorize"))
    }

    fn complete(_account: Account, _request: CompleteRequest) -> Result<PaymentOutcome> {
        Err(ConnectorError::unsupported("complete"))
    }

    fn capture(_account: Account, _request: CaptureRequest) -> Result<ModificationOutcome> {
        Err(ConnectorError::unsupported("capture"))
    }

    fn cancel(_account: Account, _request: CancelRequest) -> Result<ModificationOutcome> {
        Err(ConnectorError::unsupported("cancel"))
    }

    fn refund(_account: Account, _request: RefundRequest) -> Result<ModificationOutcome> {
        Err(ConnectorError::unsupported("refund"))
    }

    fn sync(_account: Account, _payment: PaymentRef) -> Result<PaymentOutcome> {
        Err(ConnectorError::unsupported("sync"))
    }

    fn handle_notification(
        _account: Account,
        _notification: Notification,
    ) -> Result<NotificationOutcome> {
        Err(ConnectorError::unsupported("notifications"))
    }
}
