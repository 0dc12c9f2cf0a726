"""The emulated world's services behind the CLI: serving an emulator of any registered family on
a pty or TCP, control lines, the test cards, ESC/POS rendering and the acquirer simulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from terminal import devices
from terminal.errors import ConfigError, InputError
from terminal.profiles import load_terminal_profile

if TYPE_CHECKING:
    from emulator.acquirer.simulator import AcquirerSimulator

__all__ = [
    "check_test_card",
    "control_emulator",
    "control_help_of",
    "control_link",
    "emulated_families",
    "folder_option",
    "render_escpos",
    "save_page_png",
    "serve_acquirer",
    "serve_emulator",
    "serve_link",
    "served_links",
    "test_cards",
    "test_payers",
]


def test_cards() -> list[tuple[str, str, str]]:
    """(name, entry modes, description) of every test card the emulated reader knows."""
    from emulator.card_reader.cards import load_catalogue

    return [(c.name, "/".join(c.entry_modes), c.description) for c in load_catalogue().values()]


def check_test_card(name: str) -> int | None:
    """Refuse an unknown card; returns the amount that shows the card's behaviour, if it has one."""
    from emulator.card_reader.cards import UnknownCardError, get_card

    try:
        return get_card(name).demo_amount_minor
    except UnknownCardError as exc:
        raise ConfigError(str(exc)) from exc


def emulated_families() -> dict[str, devices.DeviceFamily]:
    """Families `till emulate` can serve on a wire, by their URL name (card-reader, printer...)."""
    return {row.url_kind: row for row in devices.families().values()
            if row.emulator is not None and row.profile_kind != "terminal"}


def served_links(*, plugins: bool = True) -> dict[str, devices.DeviceFamily]:
    """Links of the terminal profile (not serial devices) whose simulator serves on its own port
    with `till NAME --listen` (the wallet gateway); the acquirer's is `till host`. `plugins=False`:
    the built-in ones only (see devices.families)."""
    return {row.url_kind: row for row in devices.families(plugins=plugins).values()
            if row.emulator is not None and row.profile_kind == "terminal" and row.family != devices.HOST_LINK}


def serve_link(kind: str, listen: str, *, certfile: str | None = None, keyfile: str | None = None) -> Any:
    """Start the simulator of a served link (`served_links`) on HOST:PORT; returns it running."""
    links = served_links()
    if kind not in links:
        raise ConfigError(f"unknown simulator {kind!r} (known: {', '.join(links)})")
    try:
        return links[kind].emulator_class()(listen, certfile=certfile, keyfile=keyfile).start()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc


def control_link(server: Any, line: str) -> str:
    """One control line for a served link's simulator (its `control(fn)` runs under its lock)."""
    from emulator.control import apply

    reply: str = server.control(lambda state: apply(state, line))
    return reply


def test_payers() -> list[tuple[str, str, str]]:
    """(suffix, example WeChat code, what the payer does) of the wallet gateway's test payment codes."""
    from emulator.wallet.payers import PAYERS, payment_code

    return [(p.suffix, payment_code(p.suffix), p.description) for p in PAYERS.values()]


def control_help(kind: str) -> str:
    """The control vocabulary of a family's emulator, for `till emulate FAMILY --help`."""
    import importlib

    from emulator.control import commands_of

    row = emulated_families()[kind]
    emulator_class = row.emulator_class()
    table = commands_of(emulator_class)
    if not table:
        return "This emulator takes no control lines."
    doc = importlib.import_module(emulator_class.CONTROL).__doc__ or ""
    return doc.strip() or "control lines: " + ", ".join(table)


def control_help_of(row: devices.DeviceFamily) -> str:
    """The control vocabulary (its module docstring) of a row's emulator."""
    import importlib

    return (importlib.import_module(row.emulator_class().CONTROL).__doc__ or "").strip()


def folder_option(kind: str) -> tuple[str, str] | None:
    """The family's folder option for `till emulate` (flag, help): the printer's `--out DIR`,
    the card reader's `--state DIR`; None if its emulator keeps nothing."""
    option = getattr(emulated_families()[kind].emulator_class(), "FOLDER_OPTION", None)
    return None if option is None else (str(option[0]), str(option[1]))


def _profile_name(row: devices.DeviceFamily, profile: str | None) -> str:
    if profile:
        return profile
    slots = load_terminal_profile("emulated-counter")["devices"]
    slot = slots.get(row.family)  # a family this till does not drive has no slot
    return str((slot["profile"] if slot is not None else "") or row.default_profile)


def serve_emulator(
    kind: str, *, profile: str | None, pty: bool, listen: str | None, baud: int | None = None,
    faults: list[str] | None = None, folder: Path | None = None,
) -> Any:
    """Start one emulator on a pty or a TCP socket; returns the running link (call .stop()).
    `faults` are control lines applied before serving (e.g. "fault paper-out"); `folder` is the
    emulator's own (pages it prints, a card's counters: its `use_folder`)."""
    from emulator.control import apply
    from emulator.link import PtyLink, TcpLink

    families = emulated_families()
    if kind not in families:
        raise ConfigError(f"unknown emulator {kind!r} (known: {', '.join(families)})")
    row = families[kind]
    device = devices.load_device_profile(row, _profile_name(row, profile))
    peer: Any = row.emulator_class()(device)
    if folder is not None:
        try:
            peer.use_folder(folder)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{folder}: cannot use this folder: {getattr(exc, 'strerror', None) or exc}") from exc
    for line in faults or []:
        reply = apply(peer, line)
        if reply.startswith("error"):
            raise ConfigError(f"{line!r}: {reply}")
    serial = device["serial"]
    if baud is not None and not 50 <= baud <= 4_000_000:
        raise ConfigError(f"--baud {baud} is not a serial line speed")
    settings = {"baud": baud or int(serial["baud"]), "framing": str(serial["framing"])}
    if pty:
        return PtyLink(peer, **settings).start()
    from drivers.transport import parse_host_port

    try:
        host, port = parse_host_port(listen or "")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return TcpLink(peer, host=host, port=port, **settings).start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc


def control_emulator(link: Any, line: str) -> str:
    """Apply one operator control line (`fault paper-out`, `present approved chip`, ...) to a
    served emulator; returns the one-line reply."""
    from emulator.control import apply

    before = link.endpoint
    reply: str = link.control(lambda peer: apply(peer, line))
    if link.endpoint != before:  # plugged back in after a hard disconnect: a new pty
        reply += f"; now on {link.endpoint}"
    return reply


def render_escpos(data: bytes, *, profile: str | None) -> Any:
    """What a printer of this profile makes of an ESC/POS byte stream (pages, unknown commands)."""
    from emulator.printer.emulator import render_stream

    row = devices.family("printer")
    return render_stream(data, devices.load_device_profile(row, _profile_name(row, profile)))


def save_page_png(page: Any, out: Path) -> None:
    """A rendered page as a PNG; InputError for a page too long to draw or a file that cannot be written."""
    from emulator.printer.render import RenderLimitError

    try:
        page.save_png(out)
    except RenderLimitError as exc:
        raise InputError(f"--png {out}: {exc}") from exc
    except OSError as exc:
        raise InputError(f"--png {out}: cannot write it: {exc.strerror or exc}") from exc


def serve_acquirer(
    listen: str, *, now: Callable[[], Any] | None = None, state: Path | None = None,
) -> AcquirerSimulator:
    """Start the acquirer simulator on "HOST:PORT" (port 0 picks one) and return it running; the
    caller stops it. `now` is the host's wall clock (a scenario passes its virtual one); `state`
    the folder of its books (`till host --state`). ConfigError for a malformed address, one that
    cannot be bound, or books it cannot read."""
    from datetime import datetime

    from emulator.acquirer.simulator import serve_forever_main

    try:
        return serve_forever_main(listen, now=now or datetime.now, state=state)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror or exc}") from exc
