"""The dummy PSP's wire format (docs/dummy-psp.md) and its mapping to the
contract's types: the Python twin of plugins/dummy/src/transformers.rs.

Everything provider-specific about *data* lives here; `app.py` only
sequences calls. The parsers check every field they read: a body of the
wrong shape raises `ShapeError`, which the caller classifies (garbage from
the API is retryable; a malformed notification is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Type, TypeVar

from componentize_py_types import Err
from wit_world.imports import http, types

import kit

T = TypeVar("T")

U64_MAX = 2**64 - 1


class ShapeError(ValueError):
    """A provider body that is JSON, but not what the API documents."""


# ---------------------------------------------------------------- requests


def charge_request(request: types.AuthorizeRequest, card: types.Card) -> Dict[str, Any]:
    """`POST /v1/charges` for an authorize paid by `card`.

    The result holds the full card number: it is only ever serialized into
    the request body, never logged, printed or put in an error message (and
    neither is `request`, whose dataclass repr would show the card too).
    """
    card_body: Dict[str, Any] = {
        "number": card.number,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
    }
    # Absent rather than null: the PSP treats both alike, the Rust
    # connector omits them, and identical bodies keep idempotent retries equal.
    if card.cvc is not None:
        card_body["cvc"] = card.cvc
    if card.holder_name is not None:
        card_body["holder_name"] = card.holder_name
    return {
        "amount": request.amount.minor_units,
        "currency": request.amount.currency,
        "reference": request.reference,
        # True captures at once; false only reserves the funds.
        "capture": request.capture_method == types.CaptureMethod.AUTOMATIC,
        "card": card_body,
        "return_url": request.return_url,
        "notification_url": request.notification_url,
    }


def capture_body(request: types.CaptureRequest) -> Dict[str, Any]:
    # `final` ends further captures even if some amount remains.
    return {"amount": request.amount.minor_units, "final": request.final_capture}


def refund_body(request: types.RefundRequest) -> Dict[str, Any]:
    body: Dict[str, Any] = {"amount": request.amount.minor_units}
    if request.reason is not None:
        body["reason"] = request.reason
    return body


# --------------------------------------------------------------- responses


def _get(obj: Dict[str, Any], name: str, kind: Type[T], default: Optional[T] = None) -> T:
    """`obj[name]` of type `kind`; a missing or null member takes `default`
    (a required member has none). Unknown members are ignored elsewhere, so
    the PSP can add some without breaking us."""
    value = obj.get(name)
    if value is None:
        if default is None:
            raise ShapeError(f"missing field `{name}`")
        return default
    # bool is an int in Python; JSON `true` is no amount.
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ShapeError(f"`{name}` is not an integer")
    if kind is int and not 0 <= value <= U64_MAX:
        raise ShapeError(f"`{name}` is out of range")
    if not isinstance(value, kind):
        raise ShapeError(f"`{name}` is not a {kind.__name__}")
    return value


def _optional_str(obj: Dict[str, Any], name: str) -> Optional[str]:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ShapeError(f"`{name}` is not a string")


def _object(value: Any, what: str) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{what} is not a JSON object")
    return value


@dataclass(frozen=True)
class Charge:
    """A charge as the PSP reports it. `status` stays a string: it is also
    the operator-facing provider status, and an unknown value must be
    reported, not fail the parse."""

    id: str
    status: str
    amount: int
    currency: str
    reference: Optional[str]
    amount_captured: int
    refusal_code: Optional[str]
    refusal_reason: Optional[str]
    redirect_url: Optional[str]

    @classmethod
    def parse(cls, value: Any) -> "Charge":
        obj = _object(value, "the charge")
        return cls(
            id=_get(obj, "id", str),
            status=_get(obj, "status", str),
            amount=_get(obj, "amount", int),
            currency=_get(obj, "currency", str),
            reference=_optional_str(obj, "reference"),
            amount_captured=_get(obj, "amount_captured", int, 0),
            refusal_code=_optional_str(obj, "refusal_code"),
            refusal_reason=_optional_str(obj, "refusal_reason"),
            redirect_url=_optional_str(obj, "redirect_url"),
        )

    def payment_status(self) -> types.PaymentStatus:
        """Where the payment stands, in the contract's terms."""
        status = self.status
        if status == "requires_action":
            if self.redirect_url is None:
                raise kit.retryable(
                    "invalid_response", "requires_action charge without redirect_url"
                )
            # The PSP's 3-D Secure page is a plain GET: no form to post.
            return types.PaymentStatus_RequiresAction(
                types.Redirect(url=self.redirect_url, method=types.HttpMethod.GET, form=[])
            )
        if status == "authorized":
            return types.PaymentStatus_Authorized()
        if status == "captured":
            return types.PaymentStatus_Captured()
        if status == "refused":
            return types.PaymentStatus_Refused(
                types.Refusal(
                    code=self.refusal_code or "refused", reason=self.refusal_reason or ""
                )
            )
        if status == "canceled":
            return types.PaymentStatus_Canceled()
        # A status this connector does not know is the PSP behaving
        # unexpectedly: retryable, so the host asks again (sync) instead of
        # recording a wrong outcome.
        raise kit.retryable(
            "unexpected_status", f"the dummy PSP reported an unknown charge status {status!r}"
        )

    def outcome(self) -> types.PaymentOutcome:
        """The outcome of an operation that answered this charge."""
        status = self.payment_status()
        # Only these two statuses mean the amount is actually reserved.
        reserved = isinstance(status, (types.PaymentStatus_Authorized, types.PaymentStatus_Captured))
        return types.PaymentOutcome(
            status=status,
            connector_reference=self.id,
            provider_status=self.status,
            amount_authorized=self.amount if reserved else None,
            amount_captured=self.amount_captured,
            # The dummy PSP needs nothing but its charge id later on.
            connector_data=None,
        )


@dataclass(frozen=True)
class Refund:
    id: str
    amount: int
    status: str

    @classmethod
    def parse(cls, value: Any) -> "Refund":
        obj = _object(value, "the refund")
        return cls(
            id=_get(obj, "id", str),
            amount=_get(obj, "amount", int),
            status=_get(obj, "status", str),
        )

    def modification_status(self) -> types.ModificationStatus:
        if self.status == "succeeded":
            return types.ModificationStatus_Succeeded()
        if self.status == "pending":
            return types.ModificationStatus_Pending()
        raise kit.retryable(
            "unexpected_status",
            f"the dummy PSP reported an unknown refund status {self.status!r}",
        )


def error_from_response(response: http.Response) -> Err:
    """Reads a non-2xx answer, `{"error": {"code", "message", "param"?}}`.

    The PSP's own error code is the most useful thing to hand the merchant,
    so a 4xx with a structured body is `rejected` with that code; the generic
    classification covers the rest (5xx retryable, unparseable 4xx rejected).
    """
    detail: Optional[Dict[str, Any]] = None
    try:
        parsed = kit.parse_json(response)
        candidate = parsed.get("error") if isinstance(parsed, dict) else None
        if isinstance(candidate, dict) and isinstance(candidate.get("code"), str):
            detail = candidate
    except Err:
        detail = None
    status = response.status
    if status in (401, 403):
        # Our credentials are wrong: nothing the shopper or a retry can fix.
        message = _detail_str(detail, "message") or ""
        return kit.invalid_config("api_key", f"the dummy PSP refused the API key: {message}")
    if 400 <= status <= 499 and detail is not None:
        return kit.rejected(
            detail["code"], _detail_str(detail, "message") or "", _detail_str(detail, "param")
        )
    return kit.classify_http_status(status, response.body)


def _detail_str(detail: Optional[Dict[str, Any]], name: str) -> Optional[str]:
    value = detail.get(name) if detail else None
    return value if isinstance(value, str) else None


# ----------------------------------------------------------- notifications


def notification_event(body: Any) -> types.NotificationEvent:
    """What one notification tells the host. Raises `ShapeError` for a body
    that is not a dummy PSP event."""
    obj = _object(body, "the event")
    event_id = _get(obj, "id", str)
    kind = _get(obj, "type", str)
    created = _get(obj, "created", int)  # Unix milliseconds
    charge = Charge.parse(obj.get("charge"))
    refund_value = obj.get("refund")
    refund = Refund.parse(refund_value) if refund_value is not None else None

    event_kind: types.NotificationEventKind
    amount: Optional[int]
    if kind in ("charge.authorized", "charge.captured", "charge.refused", "charge.canceled"):
        # A capture event is about the captured amount; the others about the
        # charge's amount.
        amount = charge.amount_captured if kind == "charge.captured" else charge.amount
        event_kind = types.NotificationEventKind_Payment(charge.payment_status())
        provider_status = charge.status
    elif kind == "charge.refunded":
        if refund is None:
            raise kit.invalid_request("body", "charge.refunded event without its refund")
        event_kind = types.NotificationEventKind_Refund((refund.id, refund.modification_status()))
        amount = refund.amount
        provider_status = refund.status
    else:
        # Recorded by the host, not acted on: a newer PSP may send more.
        event_kind = types.NotificationEventKind_Other(kind)
        amount = None
        provider_status = charge.status
    return types.NotificationEvent(
        event_id=event_id,
        connector_reference=charge.id,
        merchant_reference=charge.reference,
        kind=event_kind,
        amount=types.Money(minor_units=amount, currency=charge.currency) if amount is not None else None,
        provider_status=provider_status,
        occurred_at_ms=created,
    )


@dataclass(frozen=True)
class SignatureHeader:
    """The parts of `Dummy-Signature: t=<unix seconds>,v1=<hex>`."""

    #: The timestamp exactly as sent: it is part of the signed payload, so it
    #: must not be re-formatted.
    timestamp: str
    timestamp_secs: int
    #: Every `v1` value (a PSP rotating its secret may send several).
    signatures: List[str]


def parse_signature_header(value: str) -> Optional[SignatureHeader]:
    """Parses a `Dummy-Signature` header; None when malformed."""
    timestamp: Optional[str] = None
    signatures: List[str] = []
    for part in value.split(","):
        name, sep, item = part.strip().partition("=")
        if not sep:
            return None
        if name == "t":
            timestamp = item
        elif name == "v1":
            signatures.append(item)
        # Unknown schemes (a future v2) are ignored.
    if timestamp is None or not signatures:
        return None
    # Digits only: int() would also take "+5", " 5", "5_0" or non-ASCII digits.
    if not (timestamp.isascii() and timestamp.isdigit()):
        return None
    secs = int(timestamp)
    if secs > U64_MAX:
        return None
    return SignatureHeader(timestamp=timestamp, timestamp_secs=secs, signatures=signatures)
