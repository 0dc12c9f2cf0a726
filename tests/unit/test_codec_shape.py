"""Every registered device family's codec has the drivers/codec.py shape (ARCHITECTURE.md §2, §2a).

A new family (built in, or from an `opentill.devices` entry point) whose codec takes another
constructor, or lacks send / receive_data / next_event / data_to_send / role, fails here.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import pytest

from drivers.codec import Codec
from drivers.events import Role
from terminal import devices

ROWS = sorted(devices.families().values(), key=lambda row: row.name)


def _settings(row: devices.DeviceFamily) -> dict[str, Any] | None:
    # The acquirer's row names a terminal profile; its codec reads no settings.
    return None if row.family == "acquirer" else devices.load_device_profile(row, row.default_profile)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_codec_is_built_from_a_role_and_one_settings_object(row: devices.DeviceFamily) -> None:
    cls = row.codec_class()
    settings = _settings(row)
    for role in Role:
        codec = cls(role, settings)
        assert isinstance(codec, Codec), f"{row.codec} does not follow drivers.codec.Codec"
        assert codec.role is role
        assert codec.data_to_send() == b""  # nothing owed before a byte has moved
        assert codec.next_event() is None  # no bytes in, no event out
        assert isinstance(cls(role), Codec)  # settings=None: the family's defaults


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_constructor_signature_is_role_then_settings(row: devices.DeviceFamily) -> None:
    params = list(inspect.signature(row.codec_class()).parameters.values())
    assert [p.name for p in params] == ["role", "settings"], f"{row.codec}: {params}"
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    assert all(p.kind in positional for p in params)
    assert params[1].default is None


def test_a_codec_missing_a_method_does_not_pass() -> None:
    class Half:
        role = Role.HOST

        def send(self, event: object) -> bytes:
            return b""

        def receive_data(self, data: bytes) -> None:
            pass

        def next_event(self) -> None:
            return None

    assert not isinstance(Half(), Codec)  # no data_to_send


if TYPE_CHECKING:  # mypy holds the built-in codecs to the Protocol's types, too
    from drivers.acquirer.codec import AcquirerCodec
    from drivers.acquirer.events import HostMessage
    from drivers.card_reader import events as card_ev
    from drivers.card_reader.codec import CardReaderCodec
    from drivers.printer import events as printer_ev
    from drivers.printer.codec import PrinterCodec

    _printer: Codec[printer_ev.PrinterCommand | printer_ev.PrinterReply,
                    printer_ev.PrinterCommand | printer_ev.PrinterReply] = PrinterCodec(Role.HOST)
    _card: Codec[card_ev.Message, card_ev.Event] = CardReaderCodec(Role.HOST)
    _acquirer: Codec[HostMessage, HostMessage] = AcquirerCodec(Role.HOST)
