"""A Passerelle connector for the local dummy PSP, written in Python.

It does what the reference Rust connector (plugins/dummy) does, operation by
operation, and shows that the contract (wit/since_v1.0.0/connector.wit) is
all a connector needs, whatever its language. Built into a component by
`build.sh` with componentize-py.

Layout, as in the Rust connector:
- `app.py` (this file): the flow of each operation — check the request, call
  the provider, hand the answer to `transformers`;
- `transformers.py`: the provider's wire format and its mapping to the
  contract's types;
- `kit.py`: provider-neutral helpers (errors, account, HTTP).

Rules worth copying:
- Refuse what you cannot serve *before* any HTTP call (currency, method).
- Classify every failure by what a retry would do (see `kit.py`); when in
  doubt whether the provider acted, say `retryable`: the host then syncs.
- Trust the provider's API, never the shopper's browser, for an outcome.
- Never log the account or card data. Log ids and statuses only; the host
  masks card numbers in plugin logs anyway, but that is a safety net.

The host creates a fresh instance for every call: module-level state does
not survive from one call to the next, so there is none.
"""

from __future__ import annotations

# Import everything here, at module level. componentize-py runs these imports
# at build time and snapshots the interpreter; at run time the component has
# no file system, so a module first imported during a call is not found
# (ModuleNotFoundError, and the call traps). `warnings` is one such: `hmac`
# imports it lazily when OpenSSL's `_hashlib` is missing, as it is here.
import hashlib
import hmac
import json
import warnings  # noqa: F401  (for hmac, see above)
from typing import Any, Callable, Optional, Sequence, TypeVar

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import clock, log, types

import kit
import transformers
from kit import Header
from transformers import Charge, Refund, ShapeError

T = TypeVar("T")

#: Must equal `version` in manifest.toml: the host refuses a mismatch.
VERSION = "0.1.0"

#: How far a notification's timestamp may be from our clock, in seconds:
#: older ones could be replays of a captured request.
SIGNATURE_TOLERANCE_SECS = 300

SIGNATURE_HEADER = "Dummy-Signature"


class Connector(exports.Connector):
    """The export componentize-py binds to the contract's `connector`
    interface. Raising `Err(ConnectorError)` answers `result::err`."""

    def describe(self) -> types.ConnectorInfo:
        def secret(name: str, label: str) -> types.CredentialField:
            return types.CredentialField(name=name, label=label, secret=True, required=True)

        op = types.Operation
        return types.ConnectorInfo(
            id="python-dummy",
            name="Dummy PSP (Python)",
            version=VERSION,
            operations=[
                op.AUTHORIZE,
                op.COMPLETE,
                op.CAPTURE,
                op.PARTIAL_CAPTURE,
                op.CANCEL,
                op.REFUND,
                op.PARTIAL_REFUND,
                op.SYNC,
                op.NOTIFICATIONS,
            ],
            payment_methods=["card"],
            # Any currency the PSP takes; `kit.check_currency` still refuses
            # codes that are not ISO 4217.
            currencies=[],
            credential_fields=[
                secret("api_key", "API key"),
                secret("webhook_secret", "Webhook signing secret"),
            ],
        )

    def validate_config(self, account: types.Account) -> None:
        # The same checks as a real call makes, without the call.
        Api(account)
        kit.require(account, "webhook_secret")

    def authorize(
        self, account: types.Account, request: types.AuthorizeRequest
    ) -> types.PaymentOutcome:
        kit.check_currency(request.amount)
        method = request.payment_method
        if not isinstance(method, types.PaymentMethod_Card):
            raise kit.invalid_request(
                "payment_method", f"the dummy PSP takes cards only, not {method.value.kind!r}"
            )
        api = Api(account)
        body = transformers.charge_request(request, method.value)
        charge = api.call(api.post("/v1/charges", request.idempotency_key, body), Charge.parse)
        info(f"charge {charge.id} for {request.reference} is {charge.status}")
        return charge.outcome()

    def complete(
        self, account: types.Account, request: types.CompleteRequest
    ) -> types.PaymentOutcome:
        charge_id = payment_charge_id(request.payment)
        # The browser's parameters are the shopper's to forge: use them only
        # to catch a mix-up, and ask the PSP for the outcome.
        for name, value in request.params:
            if name == "charge":
                if value != charge_id:
                    raise kit.invalid_request(
                        "charge", "the return URL names another charge than this payment's"
                    )
                break
        api = Api(account)
        return api.call(api.get(charge_path(charge_id)), Charge.parse).outcome()

    def capture(
        self, account: types.Account, request: types.CaptureRequest
    ) -> types.ModificationOutcome:
        kit.check_same_currency(request.amount, request.payment.amount)
        charge_id = payment_charge_id(request.payment)
        api = Api(account)
        path = charge_path(charge_id, "/capture")
        body = transformers.capture_body(request)
        charge = api.call(api.post(path, request.idempotency_key, body), Charge.parse)
        # A 200 means the capture happened; the charge stays `authorized`
        # until the whole amount is captured, so report its status as is.
        return types.ModificationOutcome(
            status=types.ModificationStatus_Succeeded(),
            connector_reference=None,
            provider_status=charge.status,
        )

    def cancel(
        self, account: types.Account, request: types.CancelRequest
    ) -> types.ModificationOutcome:
        charge_id = payment_charge_id(request.payment)
        api = Api(account)
        path = charge_path(charge_id, "/void")
        charge = api.call(api.post(path, request.idempotency_key, None), Charge.parse)
        return types.ModificationOutcome(
            status=types.ModificationStatus_Succeeded(),
            connector_reference=None,
            provider_status=charge.status,
        )

    def refund(
        self, account: types.Account, request: types.RefundRequest
    ) -> types.ModificationOutcome:
        kit.check_same_currency(request.amount, request.payment.amount)
        charge_id = payment_charge_id(request.payment)
        api = Api(account)
        path = charge_path(charge_id, "/refunds")
        body = transformers.refund_body(request)
        refund = api.call(api.post(path, request.idempotency_key, body), Refund.parse)
        return types.ModificationOutcome(
            status=refund.modification_status(),
            # The refund's own id: notifications about it carry this one.
            connector_reference=refund.id,
            provider_status=refund.status,
        )

    def sync(self, account: types.Account, payment: types.PaymentRef) -> types.PaymentOutcome:
        charge_id = payment_charge_id(payment)
        api = Api(account)
        return api.call(api.get(charge_path(charge_id)), Charge.parse).outcome()

    def handle_notification(
        self, account: types.Account, notification: types.Notification
    ) -> types.NotificationOutcome:
        secret = kit.require(account, "webhook_secret")
        # Verify before parsing: nothing in an unverified body is trusted.
        try:
            verify_signature(
                secret,
                kit.header(notification.headers, SIGNATURE_HEADER),
                notification.body,
                clock.now_ms() // 1000,
            )
        except Err as rejection:
            log.log(log.Level.WARN, f"rejected a notification: {rejection.value.message}")
            raise
        try:
            event = transformers.notification_event(json.loads(notification.body))
        except (ValueError, ShapeError) as e:
            raise kit.invalid_request("body", f"not a dummy PSP event: {e}") from None
        return types.NotificationOutcome(
            events=[event],
            response_status=200,
            response_content_type="application/json",
            response_body='{"received":true}',
        )


def verify_signature(secret: str, header: Optional[str], body: bytes, now_secs: int) -> None:
    """Checks `Dummy-Signature: t=<secs>,v1=<hex>`: HMAC-SHA256 keyed with
    the webhook secret over `"<t>.<raw body>"`, and `t` within
    SIGNATURE_TOLERANCE_SECS of `now_secs`."""
    if header is None:
        raise kit.invalid_signature("missing Dummy-Signature header")
    parsed = transformers.parse_signature_header(header)
    if parsed is None:
        raise kit.invalid_signature("malformed Dummy-Signature header")
    if abs(now_secs - parsed.timestamp_secs) > SIGNATURE_TOLERANCE_SECS:
        raise kit.invalid_signature("Dummy-Signature timestamp too far from now (replay?)")
    payload = parsed.timestamp.encode() + b"." + body
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest().encode()
    # Constant-time: an early-exit `==` would leak how much of a forgery is right.
    if not any(hmac.compare_digest(expected, sig.encode()) for sig in parsed.signatures):
        raise kit.invalid_signature("Dummy-Signature does not match")


class Api:
    """The PSP's API for one account: base URL and key, read once per call."""

    def __init__(self, account: types.Account) -> None:
        # The dummy PSP has no public URL: the account's base URL (the
        # sandbox) is mandatory, hence the empty defaults.
        self.base = kit.base_url(account, "", "")
        self._api_key = kit.require(account, "api_key")

    def get(self, path: str) -> "Call":
        return Call("GET", self.base + path, [], b"")

    def post(self, path: str, idempotency_key: str, body: Optional[dict]) -> "Call":
        """A POST carrying `idempotency_key`: the PSP answers a repeat of the
        same call (after a timeout, say) with the first result instead of
        acting twice."""
        headers: list[Header] = [("Idempotency-Key", idempotency_key)]
        if body is None:
            return Call("POST", self.base + path, headers, b"")
        headers.append(("Content-Type", "application/json"))
        return Call("POST", self.base + path, headers, kit.json_body(body))

    def call(self, call: "Call", parse: Callable[[Any], T]) -> T:
        """Sends `call` with the credentials and reads the answer with
        `parse`; raises the connector error its status and body mean."""
        headers = [
            *call.headers,
            ("Authorization", f"Bearer {self._api_key}"),
            ("Accept", "application/json"),
        ]
        response = kit.send(call.method, call.url, headers, call.body)
        if not kit.is_success(response):
            raise transformers.error_from_response(response)
        value = kit.parse_json(response)
        try:
            return parse(value)
        except ShapeError as e:
            # JSON, but not what the API documents: as retryable as garbage.
            raise kit.invalid_response(response, str(e)) from None


class Call:
    """One request to the PSP, before the credentials are added."""

    __slots__ = ("method", "url", "headers", "body")

    def __init__(self, method: str, url: str, headers: Sequence[Header], body: bytes) -> None:
        self.method = method
        self.url = url
        self.headers = list(headers)
        self.body = body

    def __repr__(self) -> str:
        # The body may hold a card number: never show it.
        return f"Call({self.method} {self.url})"


def charge_path(charge_id: str, suffix: str = "") -> str:
    """`/v1/charges/{id}{suffix}`, the id escaped."""
    return f"/v1/charges/{kit.percent_encode(charge_id)}{suffix}"


def payment_charge_id(payment: types.PaymentRef) -> str:
    """The PSP's charge id, which every operation after `authorize` needs."""
    if not payment.connector_reference:
        raise kit.invalid_request("connector_reference", "the payment has no dummy PSP charge id")
    return payment.connector_reference


def info(message: str) -> None:
    log.log(log.Level.INFO, message)
