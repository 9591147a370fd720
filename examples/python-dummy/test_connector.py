"""Unit tests of the Python dummy connector, run natively by CPython.

The host's imports (http, clock, log) are replaced by fakes, so the mapping
and verification logic is checked without a component or a PSP;
host/tests/python_connector.rs runs the built component against the
sandbox. `build.sh` runs these before building:

    PYTHONPATH=target/examples/bindings python3 -m unittest discover -s examples/python-dummy
"""

from __future__ import annotations

import hashlib
import hmac
import json
import unittest
from typing import Callable, List, Optional

from componentize_py_types import Err
from wit_world.imports import clock, http, log, types

import app
import kit

SECRET = "whsec_test"
NOW_SECS = 1_767_225_600


def account(**config: str) -> types.Account:
    values = {"api_key": "sk_test", "webhook_secret": SECRET, **config}
    return types.Account(
        id="acc_1",
        environment=types.Environment.TEST,
        base_url="http://127.0.0.1:9/dummy/",
        config=[(k, v) for k, v in values.items()],
    )


def response(status: int, body: object) -> http.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.Response(status=status, headers=[], body=raw)


CHARGE = {
    "id": "ch_1",
    "status": "authorized",
    "amount": 1050,
    "currency": "EUR",
    "reference": "order-1",
    "amount_captured": 0,
    "refusal_code": None,
    "refusal_reason": None,
    "redirect_url": None,
    "card_last4": "1111",
}


class FakeHost(unittest.TestCase):
    """Replaces the host's imports for each test; `sent` records requests."""

    def setUp(self) -> None:
        self.sent: List[http.Request] = []
        self.answer: Callable[[http.Request], http.Response] = lambda r: response(200, CHARGE)
        self.logged: List[str] = []
        saved = (http.send, clock.now_ms, log.log)

        def send(request: http.Request) -> http.Response:
            self.sent.append(request)
            return self.answer(request)

        http.send = send
        clock.now_ms = lambda: NOW_SECS * 1000
        log.log = lambda level, message: self.logged.append(message)

        def restore() -> None:
            http.send, clock.now_ms, log.log = saved

        self.addCleanup(restore)

    def error(self, action: Callable[[], object]) -> types.ConnectorError:
        with self.assertRaises(Err) as raised:
            action()
        return raised.exception.value


def authorize_request(card: str = "4111111111111111", currency: str = "EUR") -> types.AuthorizeRequest:
    return types.AuthorizeRequest(
        payment_id="pay_1",
        reference="order-1",
        amount=types.Money(minor_units=1050, currency=currency),
        capture_method=types.CaptureMethod.MANUAL,
        payment_method=types.PaymentMethod_Card(
            types.Card(number=card, exp_month=3, exp_year=2030, cvc="737", holder_name=None)
        ),
        shopper=None,
        return_url="https://shop.example/return",
        notification_url="https://host.example/v1/webhooks/acc_1",
        idempotency_key="idem_1",
        metadata=[],
    )


class Authorize(FakeHost):
    def test_sends_the_charge_and_reads_it(self) -> None:
        outcome = app.Connector().authorize(account(), authorize_request())
        self.assertIsInstance(outcome.status, types.PaymentStatus_Authorized)
        self.assertEqual((outcome.connector_reference, outcome.amount_authorized), ("ch_1", 1050))
        [request] = self.sent
        self.assertEqual(request.url, "http://127.0.0.1:9/dummy/v1/charges")
        headers = {h.name: h.value for h in request.headers}
        self.assertEqual(headers["Authorization"], "Bearer sk_test")
        self.assertEqual(headers["Idempotency-Key"], "idem_1")
        body = json.loads(request.body)
        self.assertEqual(body["card"], {"number": "4111111111111111", "exp_month": 3, "exp_year": 2030, "cvc": "737"})
        self.assertIs(body["capture"], False)
        # Ids and statuses only: never the card.
        self.assertEqual(self.logged, ["charge ch_1 for order-1 is authorized"])

    def test_refuses_before_any_call(self) -> None:
        e = self.error(lambda: app.Connector().authorize(account(), authorize_request(currency="EUX")))
        self.assertEqual((e.kind, e.field), (types.ErrorKind.INVALID_REQUEST, "currency"))
        e = self.error(lambda: app.Connector().authorize(account(api_key=" "), authorize_request()))
        self.assertEqual((e.kind, e.field), (types.ErrorKind.INVALID_CONFIG, "api_key"))
        self.assertEqual(self.sent, [])

    def test_three_d_secure_is_a_get_redirect(self) -> None:
        self.answer = lambda r: response(
            201, {**CHARGE, "status": "requires_action", "redirect_url": "http://psp/3ds/ch_1"}
        )
        outcome = app.Connector().authorize(account(), authorize_request())
        self.assertEqual(
            outcome.status,
            types.PaymentStatus_RequiresAction(types.Redirect("http://psp/3ds/ch_1", types.HttpMethod.GET, [])),
        )
        self.assertIsNone(outcome.amount_authorized)

    def test_failures_are_classified(self) -> None:
        cases = [
            (response(401, {"error": {"code": "unauthorized", "message": "bad key"}}), types.ErrorKind.INVALID_CONFIG, "invalid_config", "api_key"),
            (response(400, {"error": {"code": "invalid_card_number", "message": "no", "param": "card.number"}}), types.ErrorKind.REJECTED, "invalid_card_number", "card.number"),
            (response(400, b"<html>"), types.ErrorKind.REJECTED, "http_400", None),
            (response(500, {"error": {"code": "internal"}}), types.ErrorKind.RETRYABLE, "http_500", None),
            (response(200, b"\x00garbage"), types.ErrorKind.RETRYABLE, "invalid_response", None),
            (response(200, {"id": "ch_1"}), types.ErrorKind.RETRYABLE, "invalid_response", None),
            (response(200, {**CHARGE, "amount": True}), types.ErrorKind.RETRYABLE, "invalid_response", None),
            (response(200, {**CHARGE, "status": "exploded"}), types.ErrorKind.RETRYABLE, "unexpected_status", None),
        ]
        for answer, kind, code, field in cases:
            self.answer = lambda r, answer=answer: answer
            e = self.error(lambda: app.Connector().authorize(account(), authorize_request()))
            self.assertEqual((e.kind, e.code, e.field), (kind, code, field), answer)
            self.assertNotIn("\x00", e.message)

    def test_transport_errors_are_classified(self) -> None:
        cases = [
            (http.HttpError_Timeout(), types.ErrorKind.RETRYABLE, "timeout"),
            (http.HttpError_Connect("refused"), types.ErrorKind.RETRYABLE, "connect"),
            (http.HttpError_Denied("not allowed"), types.ErrorKind.INVALID_CONFIG, "egress_denied"),
        ]
        for failure, kind, code in cases:

            def fail(request: http.Request, failure: http.HttpError = failure) -> http.Response:
                raise Err(failure)

            self.answer = fail
            e = self.error(lambda: app.Connector().sync(account(), payment_ref()))
            self.assertEqual((e.kind, e.code), (kind, code))


def payment_ref(reference: Optional[str] = "ch_1") -> types.PaymentRef:
    return types.PaymentRef(
        payment_id="pay_1",
        reference="order-1",
        amount=types.Money(minor_units=1050, currency="EUR"),
        connector_reference=reference,
        connector_data=None,
    )


class LaterOperations(FakeHost):
    def test_the_charge_id_is_escaped_and_required(self) -> None:
        app.Connector().sync(account(), payment_ref("ch_1/../x"))
        self.assertEqual(self.sent[0].url, "http://127.0.0.1:9/dummy/v1/charges/ch_1%2F..%2Fx")
        e = self.error(lambda: app.Connector().sync(account(), payment_ref(None)))
        self.assertEqual(e.field, "connector_reference")

    def test_complete_asks_the_psp_and_catches_a_mix_up(self) -> None:
        request = types.CompleteRequest(payment=payment_ref(), params=[("charge", "ch_2")])
        e = self.error(lambda: app.Connector().complete(account(), request))
        self.assertEqual(e.field, "charge")
        request.params = [("charge", "ch_1")]
        self.assertIsInstance(app.Connector().complete(account(), request).status, types.PaymentStatus_Authorized)
        self.assertEqual(self.sent[-1].method, "GET")

    def test_refund_reports_its_own_id(self) -> None:
        self.answer = lambda r: response(201, {"id": "re_1", "charge": "ch_1", "amount": 300, "status": "succeeded"})
        request = types.RefundRequest(payment_ref(), "rf_1", types.Money(300, "EUR"), None, "idem_r")
        outcome = app.Connector().refund(account(), request)
        self.assertEqual((outcome.connector_reference, outcome.provider_status), ("re_1", "succeeded"))
        self.assertEqual(json.loads(self.sent[0].body), {"amount": 300})
        request.amount = types.Money(300, "USD")
        e = self.error(lambda: app.Connector().refund(account(), request))
        self.assertEqual(e.field, "currency")


def signed(body: bytes, timestamp: object = NOW_SECS, secret: str = SECRET) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class Notifications(FakeHost):
    body = json.dumps(
        {"id": "evt_1", "type": "charge.captured", "created": NOW_SECS * 1000, "charge": {**CHARGE, "amount_captured": 500}, "refund": None}
    ).encode()

    def notify(self, header: Optional[str], body: Optional[bytes] = None) -> types.NotificationOutcome:
        headers = [] if header is None else [types.HttpHeader("dummy-signature", header)]
        notification = types.Notification("POST", "/v1/webhooks/acc_1", headers, body or self.body)
        return app.Connector().handle_notification(account(), notification)

    def test_a_signed_event_is_read(self) -> None:
        outcome = self.notify(signed(self.body))
        [event] = outcome.events
        self.assertEqual((event.event_id, event.connector_reference, event.merchant_reference), ("evt_1", "ch_1", "order-1"))
        self.assertEqual(event.kind, types.NotificationEventKind_Payment(types.PaymentStatus_Authorized()))
        self.assertEqual(event.amount, types.Money(500, "EUR"))
        self.assertEqual(outcome.response_status, 200)

    def test_a_rotated_secret_may_sign_twice(self) -> None:
        other = signed(self.body, secret="whsec_old").split(",")[1]
        self.notify(f"{signed(self.body)},{other}")
        self.notify(f"t={NOW_SECS},{other},{signed(self.body).split(',')[1]}")

    def test_anything_else_is_refused(self) -> None:
        good = signed(self.body)
        for header in [
            None,
            "",
            "garbage",
            f"v1={good.split('v1=')[1]}",
            f"t={NOW_SECS}",
            good.replace(f"t={NOW_SECS}", f"t=+{NOW_SECS}"),
            # Correctly signed, but not digits only: int() alone would take these.
            signed(self.body, f"+{NOW_SECS}"),
            signed(self.body, f" {NOW_SECS}"),
            signed(self.body, f"{NOW_SECS // 10}_0"),
            good.replace(f"t={NOW_SECS}", f"t={NOW_SECS - 301}"),
            signed(self.body, NOW_SECS - 301),
            signed(self.body, secret="whsec_other"),
            good[:-1] + ("0" if good[-1] != "0" else "1"),
        ]:
            e = self.error(lambda: self.notify(header))
            self.assertEqual(e.kind, types.ErrorKind.INVALID_SIGNATURE, header)
        forged = self.body.replace(b'"amount_captured": 500', b'"amount_captured": 1050')
        self.assertNotEqual(forged, self.body)
        e = self.error(lambda: self.notify(good, forged))
        self.assertEqual(e.kind, types.ErrorKind.INVALID_SIGNATURE)

    def test_a_signed_body_that_is_no_event_is_invalid(self) -> None:
        for body in [b"not json", b"[]", b'{"id": "evt_1"}']:
            e = self.error(lambda: self.notify(signed(body), body))
            self.assertEqual((e.kind, e.field), (types.ErrorKind.INVALID_REQUEST, "body"), body)


class Kit(unittest.TestCase):
    def test_percent_encode(self) -> None:
        self.assertEqual(kit.percent_encode("ch 1/2é~"), "ch%201%2F2%C3%A9~")

    def test_body_excerpt(self) -> None:
        self.assertEqual(kit.body_excerpt(500, b"a\x00b\x1b[1m"), "HTTP 500: a b [1m")
        self.assertTrue(kit.body_excerpt(500, b"x" * 1000).endswith("x…"))


if __name__ == "__main__":
    unittest.main()
