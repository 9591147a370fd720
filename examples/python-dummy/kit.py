"""Provider-neutral helpers around the generated bindings.

The Python counterparts of the Rust SDK's `error`, `config`, `http` and
`money` modules (plugins/sdk): building connector errors, reading an
account, sending HTTP through the host, classifying failures. Nothing here
knows the dummy PSP; `transformers.py` and `app.py` do.

Errors travel as exceptions: the bindings turn a raised
`Err(ConnectorError)` into the contract's `result::err`. Every helper that
fails returns or raises such an `Err`, so a connector can simply
`raise kit.rejected(...)`.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence, Tuple

from componentize_py_types import Err
from wit_world.imports import http, types
from wit_world.imports.types import ConnectorError, ErrorKind

#: At most this many characters of a provider's body go into a message.
MAX_MESSAGE_CHARS = 300

Header = Tuple[str, str]


# ------------------------------------------------------------------ errors
# Choose the kind by what a retry would do (the table in plugins/sdk/src/error.rs):
# retryable   unreachable, timeout, 5xx, garbage: the provider may have acted
# rejected    the provider said no to this request
# invalid-config / invalid-request / unsupported / invalid-signature


def error(kind: ErrorKind, code: str, message: str, field: Optional[str] = None) -> Err:
    return Err(ConnectorError(kind=kind, code=code, message=message, field=field))


def retryable(code: str, message: str) -> Err:
    return error(ErrorKind.RETRYABLE, code, message)


def rejected(code: str, message: str, field: Optional[str] = None) -> Err:
    return error(ErrorKind.REJECTED, code, message, field)


def invalid_config(field: str, message: str, code: str = "invalid_config") -> Err:
    return error(ErrorKind.INVALID_CONFIG, code, message, field)


def invalid_request(field: str, message: str, code: str = "invalid_request") -> Err:
    return error(ErrorKind.INVALID_REQUEST, code, message, field)


def invalid_signature(message: str) -> Err:
    return error(ErrorKind.INVALID_SIGNATURE, "invalid_signature", message)


# ----------------------------------------------------------------- account
# The account carries secrets: never log it, nor a value read from it.


def optional(account: types.Account, name: str) -> Optional[str]:
    """The config field `name`, trimmed; None when missing or blank."""
    for key, value in account.config:
        if key == name:
            value = value.strip()
            return value or None
    return None


def require(account: types.Account, name: str) -> str:
    """The config field `name`, trimmed; `invalid-config` naming it when missing."""
    value = optional(account, name)
    if value is None:
        raise invalid_config(name, f"`{name}` is required")
    return value


def base_url(account: types.Account, default_test: str, default_live: str) -> str:
    """The base URL to call, without a trailing `/`: the account's own when
    set, else the provider's default for the account's environment. An empty
    default means the provider has none and the account must set one."""
    chosen = (account.base_url or "").strip()
    if not chosen:
        chosen = default_live if account.environment == types.Environment.LIVE else default_test
    if not chosen:
        raise invalid_config(
            "base_url", "this connector has no default URL: set the account's base URL"
        )
    if not chosen.startswith(("https://", "http://")):
        raise invalid_config("base_url", "the base URL must start with https:// or http://")
    return chosen.rstrip("/")


# ------------------------------------------------------------------- money

# ISO 4217 codes with a minor unit, as in plugins/currency/src/lib.rs (the
# table the host and the Rust SDK share): a typo never reaches the PSP.
KNOWN_CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV
    BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE
    CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD
    HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD
    KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV
    MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB
    RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """.split()
)


def check_currency(amount: types.Money) -> None:
    if amount.currency not in KNOWN_CURRENCIES:
        raise invalid_request("currency", f"unknown currency {amount.currency!r}")


def check_same_currency(amount: types.Money, payment_amount: types.Money) -> None:
    """A capture or refund must be in the payment's currency."""
    check_currency(amount)
    if amount.currency != payment_amount.currency:
        raise invalid_request(
            "currency", f"{amount.currency} differs from the payment's {payment_amount.currency}"
        )


# -------------------------------------------------------------------- http

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def percent_encode(value: str) -> str:
    """Escapes `value` for one URL path segment (RFC 3986 unreserved kept):
    an id that came from outside must not be able to change the path."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in value.encode())


def header(headers: Sequence[types.HttpHeader], name: str) -> Optional[str]:
    """The first header named `name` (case-insensitive)."""
    wanted = name.lower()
    for h in headers:
        if h.name.lower() == wanted:
            return h.value
    return None


def send(method: str, url: str, headers: Sequence[Header], body: bytes = b"") -> http.Response:
    """Sends a request through the host (the only way out: the host enforces
    the allowlist, sizes and time). Transport failures become connector
    errors; any HTTP status is a response."""
    request = http.Request(
        method=method,
        url=url,
        headers=[types.HttpHeader(name=n, value=v) for n, v in headers],
        body=body,
        timeout_ms=None,
    )
    try:
        return http.send(request)
    except Err as failure:
        # `from None`: the chained binding exception says nothing useful.
        raise transport_error(failure.value) from None


def transport_error(failure: http.HttpError) -> Err:
    """Timeout, connect, too-large and other failures are retryable (the
    request may have reached the provider); a denied destination is the
    account's base URL at fault; a malformed request is ours."""
    if isinstance(failure, http.HttpError_Timeout):
        return retryable("timeout", "the provider did not answer in time")
    if isinstance(failure, http.HttpError_Connect):
        return retryable("connect", failure.value)
    if isinstance(failure, http.HttpError_TooLarge):
        return retryable("too_large", "request or response over the host's size limit")
    if isinstance(failure, http.HttpError_Denied):
        return invalid_config("base_url", failure.value, code="egress_denied")
    if isinstance(failure, http.HttpError_InvalidRequest):
        return invalid_request("request", failure.value, code="invalid_http_request")
    return retryable("http_error", getattr(failure, "value", "unknown HTTP failure"))


def is_success(response: http.Response) -> bool:
    return 200 <= response.status < 300


def body_excerpt(status: int, body: bytes) -> str:
    """"HTTP 503: <start of the body>", cut at MAX_MESSAGE_CHARS characters,
    control characters (a NUL in garbage, ANSI escapes) turned to spaces."""
    text = body.decode("utf-8", errors="replace").strip()
    message = f"HTTP {status}"
    if text:
        shown = "".join(" " if _is_control(c) else c for c in text[:MAX_MESSAGE_CHARS])
        message += ": " + shown + ("…" if len(text) > MAX_MESSAGE_CHARS else "")
    return message


def _is_control(c: str) -> bool:
    code = ord(c)
    return code < 0x20 or 0x7F <= code < 0xA0


def classify_http_status(status: int, body: bytes) -> Err:
    """The usual reading of a non-2xx answer whose body says nothing more
    specific: 401/403 the credentials, other 4xx a rejection, the rest
    (5xx, and 1xx/3xx, unexpected from an API) retryable."""
    code = f"http_{status}"
    message = body_excerpt(status, body)
    if status in (401, 403):
        return invalid_config("credentials", message, code=code)
    if 400 <= status <= 499:
        return rejected(code, message)
    return retryable(code, message)


def parse_json(response: http.Response) -> Any:
    """The body as JSON. Garbage is `retryable` `invalid_response`: the
    provider answered something, and the operation may have happened."""
    try:
        return json.loads(response.body)
    except ValueError as e:
        raise invalid_response(response, str(e)) from None


def invalid_response(response: http.Response, why: str) -> Err:
    return retryable(
        "invalid_response",
        f"unexpected response body ({why}); {body_excerpt(response.status, response.body)}",
    )


def json_body(value: Any) -> bytes:
    """Compact JSON, as the Rust connectors send it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
