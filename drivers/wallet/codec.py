"""Sans-I/O codec of the wallet gateway link (docs/wallet-gateway.md): signed JSON over HTTP POST.

One class, two roles (the drivers/codec.py shape). The HTTP part is the smallest subset both ends
need — `POST /op HTTP/1.1` with a Content-Length body, and `HTTP/1.1 STATUS` answers — so the
in-process `emu://wallet` peer and the byte-at-a-time tests speak the same bytes a real server
would get; over a real `http(s)://` URL the driver hands `request_of()` to an HTTP client and
the status and body it gets back to `answer_of()`, the same functions the stream path uses.

Role.HOST (the terminal): `send(request) -> bytes`, `receive_data(bytes)`, `next_event() ->
WalletAnswer`. Answers pair with requests in order (one connection, HTTP/1.1 without pipelining
surprises). An answer body that is not JSON, not signed or wrongly signed is no exception: it is
a `WalletAnswer(state=UNKNOWN, clear=False)` — the terminal must query. Only broken framing raises
(`FrameError`): the stream is lost and the caller closes.

Role.DEVICE (the gateway simulator): `next_event() -> GatewayCall` (op, params, whether the
signature checked), `send(GatewayReply) -> bytes` (signed here).

Signing (WeChat Pay's rule): the non-empty parameters except `sign`, sorted by name, as
`k1=v1&k2=v2...&key=MERCHANT_KEY`, HMAC-SHA256 with the merchant key, uppercase hex.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from drivers.errors import FrameError, LocalProtocolError
from drivers.events import Role
from drivers.record import Record, field
from drivers.wallet.events import (
    Channel,
    CloseOrder,
    CreateOrder,
    Pay,
    Query,
    Refund,
    Reverse,
    Statement,
    TradeState,
    WalletAnswer,
    WalletRequest,
)

__all__ = [
    "MAX_BODY", "OPS", "SIGN_TYPE", "GatewayCall", "GatewayReply", "WalletCodec", "answer_of", "call_of",
    "canonical", "channel_of", "decode_params", "encode_params", "op_of", "reply_body", "request_params", "sign",
    "verify",
]

SIGN_TYPE: Final = "HMAC-SHA256"
MAX_HEAD: Final = 4096  # start line + headers; a longer head is not our peer
MAX_BODY: Final = 4 * 1024 * 1024  # a statement of a busy day is the largest body (a few hundred KiB)
OPS: Final = ("pay", "query", "reverse", "refund", "create", "close", "statement")
_REASONS: Final = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error",
                   503: "Service Unavailable"}
# result_code FAIL codes that say "not known yet", not "failed": the terminal queries after them.
_UNCLEAR_CODES: Final = frozenset({"SYSTEMERROR", "BANKERROR", "USERPAYING", "TRADE_ERROR"})

AnyRequest = WalletRequest | Statement


# -- signing ------------------------------------------------------------------------------------
def canonical(params: Mapping[str, str], key: str) -> str:
    """`k1=v1&k2=v2...&key=KEY` over the sorted non-empty parameters except `sign`."""
    pairs = [f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v != ""]
    return "&".join([*pairs, f"key={key}"])


def sign(params: Mapping[str, str], key: str) -> str:
    return hmac.new(key.encode(), canonical(params, key).encode(), hashlib.sha256).hexdigest().upper()


def verify(params: Mapping[str, str], key: str) -> bool:
    """A present, HMAC-SHA256, matching signature (compared in constant time)."""
    given = params.get("sign", "")
    if not given or params.get("sign_type", SIGN_TYPE) != SIGN_TYPE:
        return False
    return hmac.compare_digest(given.upper(), sign(params, key))


# -- payment codes ------------------------------------------------------------------------------
def channel_of(code: str) -> Channel | None:
    """The wallet a customer's payment code (付款码) belongs to, by shape; None: not a payment code.
    WeChat 18 digits starting 10-15; Alipay 16-24 digits starting 25-30; UnionPay 19 digits starting 62."""
    if not (code.isascii() and code.isdigit()):
        return None
    head = int(code[:2]) if len(code) >= 2 else -1
    if len(code) == 18 and 10 <= head <= 15:
        return Channel.WECHAT
    if len(code) == 19 and head == 62:
        return Channel.UNIONPAY
    if 16 <= len(code) <= 24 and 25 <= head <= 30:
        return Channel.ALIPAY
    return None


# -- requests -----------------------------------------------------------------------------------
def op_of(request: AnyRequest) -> str:
    ops: dict[type, str] = {Pay: "pay", Query: "query", Reverse: "reverse", Refund: "refund",
                            CreateOrder: "create", CloseOrder: "close", Statement: "statement"}
    try:
        return ops[type(request)]
    except KeyError:
        raise LocalProtocolError(f"{type(request).__name__} is not a wallet request") from None


def _fen(amount: int, what: str) -> str:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise LocalProtocolError(f"{what} must be a positive integer number of fen")
    return str(amount)


def request_params(request: AnyRequest, *, mch_id: str, terminal_id: str, nonce: str) -> dict[str, str]:
    """The unsigned parameters of one request (strings only, amounts in integer fen)."""
    p = {"mch_id": mch_id, "terminal_id": terminal_id, "nonce_str": nonce, "sign_type": SIGN_TYPE}
    if isinstance(request, Statement):
        p |= {"bill_date": request.bill_date, "bill_type": "ALL", "encoding": request.encoding}
        return p
    p["out_trade_no"] = request.order_no
    if isinstance(request, Pay):
        p |= {"auth_code": request.auth_code, "total_fee": _fen(request.amount_fen, "total_fee"),
              "body": request.description}
    elif isinstance(request, CreateOrder):
        p |= {"total_fee": _fen(request.amount_fen, "total_fee"), "body": request.description,
              "trade_type": "NATIVE"}
    elif isinstance(request, Refund):
        p |= {"out_refund_no": request.refund_no, "refund_fee": _fen(request.amount_fen, "refund_fee")}
    return p


def encode_params(params: Mapping[str, str], key: str) -> bytes:
    """Signed JSON body (keys sorted: the same parameters give the same bytes)."""
    signed = {k: v for k, v in params.items() if k != "sign"}
    signed["sign"] = sign(signed, key)
    return json.dumps(signed, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def decode_params(body: bytes) -> dict[str, str] | None:
    """A JSON object of strings, or None (not JSON, not an object, a value that is not a string)."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        return None
    return doc


# -- answers ------------------------------------------------------------------------------------
def _iso_time(time_end: str) -> str:
    """WeChat's yyyyMMddHHmmss (Beijing time) as ISO 8601; "" if it is not that."""
    if len(time_end) != 14 or not time_end.isdigit():
        return ""
    t = time_end
    return f"{t[:4]}-{t[4:6]}-{t[6:8]}T{t[8:10]}:{t[10:12]}:{t[12:14]}+08:00"


def _state(value: str) -> TradeState | None:
    try:
        return TradeState(value)
    except ValueError:
        return None


def _int(value: str) -> int:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 15 else 0


def answer_of(op: str, order_no: str, status: int, body: bytes, key: str) -> WalletAnswer:
    """What a gateway answer means to the terminal. Never raises: whatever is not a signed,
    well-formed answer is `state=UNKNOWN, clear=False` with the reason in `message`."""
    def unclear(why: str, **more: Any) -> WalletAnswer:
        more.setdefault("http_status", status)
        return WalletAnswer(op=op, order_no=order_no, state=TradeState.UNKNOWN, clear=False, message=why, **more)

    if status >= 500:
        return unclear(f"gateway HTTP {status}")
    params = decode_params(body)
    if params is None:
        return unclear(f"answer is not a JSON object of strings (HTTP {status})")
    if not verify(params, key):
        return unclear("answer signature missing or wrong: not trusted")
    g = params.get
    common: dict[str, Any] = {
        "err_code": g("err_code", ""), "message": g("err_code_des", ""),
        "wallet_order_no": g("transaction_id", ""), "channel": g("channel", ""), "payer": g("payer", ""),
        "amount_fen": _int(g("total_fee", "")), "paid_at": _iso_time(g("time_end", "")),
        "recall": g("recall", "N") == "Y", "action": g("action", ""), "code_url": g("code_url", ""),
        "refund_no": g("out_refund_no", ""), "http_status": status,
    }
    if g("out_trade_no", order_no) != order_no:
        return unclear("answer names another order")
    if g("return_code") != "SUCCESS":
        common.pop("message")
        return unclear(g("return_msg", "") or "gateway refused the request", **common)
    if op == "statement" and g("result_code") == "SUCCESS":
        try:
            raw = base64.b64decode(g("bill_data", ""), validate=True)
            text = raw.decode(g("bill_encoding", "utf-8"))
        except (binascii.Error, UnicodeDecodeError, LookupError):
            return unclear("statement data does not decode")
        return WalletAnswer(op=op, order_no=order_no, state=TradeState.SUCCESS, statement=text, **common)
    state = _state(g("trade_state", ""))
    if g("result_code") != "SUCCESS":
        code = common["err_code"]
        if code == "USERPAYING":
            state = TradeState.USERPAYING
        elif code in _UNCLEAR_CODES or common["recall"]:
            return unclear(common.pop("message") or code, **common)
        elif code == "ORDERPAID":  # close of an order that was paid meanwhile: it is paid
            state = TradeState.SUCCESS
        elif code == "ORDERNOTEXIST":  # never reached the gateway: nothing was charged
            state = TradeState.NOTPAY
        else:
            state = TradeState.PAYERROR
    elif state is None:
        state = {"reverse": TradeState.REFUND if common["action"] == "refund" else TradeState.REVOKED,
                 "refund": TradeState.REFUND, "close": TradeState.CLOSED, "create": TradeState.NOTPAY,
                 "pay": TradeState.SUCCESS}.get(op, TradeState.UNKNOWN)
    clear = state not in (TradeState.USERPAYING, TradeState.UNKNOWN) and status != 202
    return WalletAnswer(op=op, order_no=order_no, state=state, clear=clear, **common)


# -- the gateway's side -------------------------------------------------------------------------
class GatewayCall(Record):
    """A request as the gateway reads it: `signed` False = missing or wrong signature (refuse it)."""

    op: str
    params: dict[str, str] = field(default_factory=dict)
    signed: bool = False
    valid: bool = True  # False: not a JSON object of strings, or an unknown path


class GatewayReply(Record):
    """The gateway's answer before signing: HTTP status and the answer parameters."""

    status: int = 200
    params: dict[str, str] = field(default_factory=dict)
    signed: bool = True  # False: sent as given (a simulator's unsigned or wrongly signed answer)


def reply_body(reply: GatewayReply, key: str) -> bytes:
    if not reply.signed:
        return json.dumps(reply.params, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return encode_params(reply.params, key)


def call_of(path: str, body: bytes, key: str) -> GatewayCall:
    op = path.strip("/")
    params = decode_params(body)
    if op not in OPS or params is None:
        return GatewayCall(op=op if op in OPS else "", params=params or {}, valid=False)
    return GatewayCall(op=op, params=params, signed=verify(params, key))


# -- framing (HTTP/1.1 subset) --------------------------------------------------------------------
def _frame(start: str, body: bytes) -> bytes:
    head = f"{start}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


def _split_head(buffer: bytearray) -> tuple[str, int, int] | None:
    """(start line, body length, head length) of the first message, None if incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise FrameError(f"HTTP head longer than {MAX_HEAD} bytes")
        return None
    if end > MAX_HEAD:
        raise FrameError(f"HTTP head longer than {MAX_HEAD} bytes")
    try:
        lines = bytes(buffer[:end]).decode("ascii").split("\r\n")
    except UnicodeDecodeError:
        raise FrameError("HTTP head is not ASCII") from None
    length = -1
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise FrameError("malformed HTTP header line")
        if name.strip().lower() == "content-length":
            value = value.strip()
            if not value.isdigit() or len(value) > 9:
                raise FrameError("bad Content-Length")
            length = int(value)
    if length < 0:
        raise FrameError("no Content-Length")
    if length > MAX_BODY:
        raise FrameError(f"body of {length} bytes exceeds {MAX_BODY}")
    return lines[0], length, end + 4


def _nonce() -> str:
    import secrets  # lazy: secrets (and random under it) is not worth a till's start; a call needs it

    return secrets.token_hex(16)


class WalletCodec:
    """One link's state (the drivers/codec.py shape). `settings`: the terminal profile's `[wallet]`
    section (`key`, `mch_id`) or a whole terminal profile (then `[wallet]` and `terminal_id` are read
    from it); None: the shipped test merchant. After a FrameError the stream is lost: close."""

    TEST_KEY: Final = "opentill-wallet-test-key-0000000"  # the shipped profile's test merchant key
    TEST_MCH_ID: Final = "1900000109"

    def __init__(self, role: Role, settings: Mapping[str, Any] | None = None) -> None:
        self.role = role
        s: Mapping[str, Any] = settings or {}
        wallet = s.get("wallet", s)
        wallet = wallet if isinstance(wallet, Mapping) else {}
        self.key = str(wallet.get("key") or self.TEST_KEY)
        self.mch_id = str(wallet.get("mch_id") or self.TEST_MCH_ID)
        self.terminal_id = str(wallet.get("terminal_id") or s.get("terminal_id") or "")
        self.nonce: Callable[[], str] = _nonce
        self._buffer = bytearray()
        self._broken = False
        self._pending: deque[tuple[str, str]] = deque()  # (op, order_no) of requests sent, in order

    # -- host side ------------------------------------------------------------------------------
    def request_of(self, request: AnyRequest) -> tuple[str, bytes]:
        """(path, signed body) of a request; the HTTP client's half of `send()`."""
        if self.role is not Role.HOST:
            raise LocalProtocolError("only the terminal sends wallet requests")
        op = op_of(request)
        params = request_params(request, mch_id=self.mch_id, terminal_id=self.terminal_id, nonce=self.nonce())
        return f"/{op}", encode_params(params, self.key)

    def answer_of(self, request: AnyRequest, status: int, body: bytes) -> WalletAnswer:
        order_no = "" if isinstance(request, Statement) else request.order_no
        return answer_of(op_of(request), order_no, status, body, self.key)

    # -- the codec shape ----------------------------------------------------------------------------
    def send(self, event: AnyRequest | GatewayReply) -> bytes:
        if self.role is Role.HOST:
            if isinstance(event, GatewayReply):
                raise LocalProtocolError("the terminal does not send gateway replies")
            path, body = self.request_of(event)
            self._pending.append((op_of(event), "" if isinstance(event, Statement) else event.order_no))
            return _frame(f"POST {path} HTTP/1.1\r\nHost: wallet-gateway", body)
        if not isinstance(event, GatewayReply):
            raise LocalProtocolError("the gateway sends GatewayReply only")
        reason = _REASONS.get(event.status, "Status")
        return _frame(f"HTTP/1.1 {event.status} {reason}", reply_body(event, self.key))

    def receive_data(self, data: bytes) -> None:
        if not self._broken:
            self._buffer += data

    def next_event(self) -> WalletAnswer | GatewayCall | None:
        if self._broken:
            raise FrameError("the stream lost framing earlier; close the connection")
        try:
            head = _split_head(self._buffer)
        except FrameError:
            self._broken = True
            self._buffer.clear()
            raise
        if head is None:
            return None
        start, length, head_size = head
        if len(self._buffer) < head_size + length:
            return None
        body = bytes(self._buffer[head_size:head_size + length])
        del self._buffer[:head_size + length]
        parts = start.split(" ")
        if self.role is Role.DEVICE:
            if len(parts) != 3 or parts[0] != "POST" or not parts[2].startswith("HTTP/1."):
                self._broken = True
                raise FrameError("not an HTTP/1.1 POST request line")
            return call_of(parts[1], body, self.key)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not (parts[1].isdigit() and len(parts[1]) == 3):
            self._broken = True
            raise FrameError("not an HTTP/1.1 status line")
        if not self._pending:
            self._broken = True
            raise FrameError("an answer to no request")
        op, order_no = self._pending.popleft()
        return answer_of(op, order_no, int(parts[1]), body, self.key)

    def data_to_send(self) -> bytes:
        """Nothing: HTTP has no acknowledgements of its own."""
        return b""

    def forget_pending(self) -> None:
        """The connection was reset: answers to what was sent will not come on it."""
        self._pending.clear()
        self._buffer.clear()
        self._broken = False
