"""`till doctor`: is every part of this terminal fit to take payments, and if not, what needs a person?

One row a component: each fitted device slot (the profile's, terminal.devices.fitted), the host
(an 0800 echo test, 回响测试), the wallet gateway, the journal (integrity, capacity, what is owed
to the host), the disk (free space against the reserve) and the clock. A row is "ok", "warn" (a
person should act soon: paper near end, the journal 90 % full) or "fail" (a person must act:
the device does not answer, the journal is damaged). `diagnose_till` asks an open till through
its own drivers and runtime (terminal/service/probes.py), and never sends to the host or a device
that is in the middle of a sale. `diagnose` builds the till from a profile first, opening each
device on its own, so a missing port is a row naming the slot and the port, and every other
component is still reported.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.acquirer.events import HostMessage
from drivers.events import DeviceFault
from drivers.record import Record
from terminal import devices
from terminal.app import build_till, device_profiles, load_terminal_profile
from terminal.checkout.table import HOUSEKEEPING
from terminal.clock import Clock, SystemClock
from terminal.errors import JournalError
from terminal.journal import DISK_FULL_MESSAGE, JOURNAL_FULL_MESSAGE, JournalLocked, disk_free_bytes
from terminal.journal.integrity import check_integrity
from terminal.service.probes import PROBES, Finding, Probe, fault_finding, tapped

if TYPE_CHECKING:
    from terminal.app import Till

__all__ = ["STATUSES", "Check", "Report", "diagnose", "diagnose_till", "needs_emulated_world"]

log = logging.getLogger(__name__)
STATUSES = ("ok", "warn", "fail")  # in order of gravity
WAIT_S = 5.0  # the longest a probe waits for an answer (a link with a longer timeout of its own: up to 30 s)
# The doctor's own till waits this long at most for the host at boot (sign-on, owed reversals),
# not the profile's 60 s: a host that is this slow is reported, not waited out.
BOOT_HOST_WAIT_S = 10.0
MIN_YEAR = 2024  # a wall clock before this was never set (a Pi without its RTC boots in 1970)
_EMULATED_HOSTS = ("emulated", "emu://")


class Check(Record):
    """One row of the report."""

    component: str  # a device slot, "host", "wallet", "journal", "disk", "clock"
    status: str  # "ok" | "warn" | "fail": warn and fail need a person
    detail: str  # one line, 中文 / English
    data: Mapping[str, object]  # the figures behind it (JSON values)


class Report:
    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks

    @property
    def needs_person(self) -> bool:
        return any(check.status != "ok" for check in self.checks)

    def check(self, component: str) -> Check:
        found = next((c for c in self.checks if c.component == component), None)
        if found is None:
            raise KeyError(component)
        return found

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """A report as `as_json` wrote it (the running service's `GET /v1/health`)."""
        return cls([Check(component=str(c["component"]), status=str(c["status"]), detail=str(c["detail"]),
                          data=dict(c.get("data") or {})) for c in data["checks"]])

    def as_json(self) -> dict[str, object]:
        return {"needs_person": self.needs_person,
                "checks": [{"component": c.component, "status": c.status, "detail": c.detail, "data": dict(c.data)}
                           for c in self.checks]}

    def render(self) -> str:
        """An aligned table, then one line: all ok, or how many rows need a person."""
        width = max([len("COMPONENT"), *(len(c.component) for c in self.checks)])
        lines = [f"{'COMPONENT':{width}}  STATUS  DETAIL"]
        lines += [f"{c.component:{width}}  {c.status.upper() if c.status != 'ok' else 'ok':6}  {c.detail}"
                  for c in self.checks]
        waiting = sum(c.status != "ok" for c in self.checks)
        lines.append(f"需要处理 / needs a person: {waiting} of {len(self.checks)}" if waiting
                     else "一切正常 / all ok")
        return "\n".join(lines) + "\n"


def _row(component: str, finding: Finding) -> Check:
    return Check(component=component, status=finding.status, detail=finding.detail, data=finding.data)


def _worst(statuses: list[str]) -> str:
    return max(statuses, key=STATUSES.index, default="ok")


# -- an open till ------------------------------------------------------------------------------
def diagnose_till(till: Till, *, echo: bool = True, wait_s: float = WAIT_S) -> Report:
    """Ask every part of an open till. Housekeeping under way (a sign-on, owed reversals) is let
    finish first, within `wait_s`; a till in a sale is not interrupted (its rows say so)."""
    with tapped(till.runtime) as tap:
        probe = Probe(till, tap, wait_s)
        probe.pump(lambda: till.flow.state not in HOUSEKEEPING)
        checks = [_device(probe, slot, driver) for slot, driver in till.devices.items()]
        fitted = devices.fitted(till.terminal)
        checks += [Check(component=slot, status="warn", detail="未启用 / not in use: optional, and no port given",
                         data={"url": str(settings["url"])})
                   for slot, settings in fitted.items() if slot not in till.devices]
        try:
            host, host_time = _host(probe, echo)
        except Exception as exc:  # a bug of the echo must not hide the other rows
            log.exception("doctor: the host probe failed")
            host, host_time = Check(component="host", status="fail", data={},
                                    detail=f"检查出错 / probe failed: {type(exc).__name__}: {exc}"), None
        checks.append(host)
    last_record = _journal_last_record(till)
    checks += [_journal(till), _disk(till.journal.free_bytes(), till.journal.disk_reserve_bytes),
               _clock(till.clock.wall(), last_record, host_time)]
    return Report(_in_profile_order(checks, till.terminal))


def _in_profile_order(checks: list[Check], terminal: Mapping[str, Any]) -> list[Check]:
    order = [*terminal["devices"], *devices.SECTION_LINKS, "host", "journal", "disk", "clock"]
    return sorted(checks, key=lambda c: order.index(c.component) if c.component in order else len(order))


def _device(probe: Probe, slot: str, driver: Any) -> Check:
    family = str(getattr(driver, "family", slot))
    settings = probe.till.profiles.get(slot) or probe.till.terminal.get(slot) or {}
    ask = PROBES.get(family)
    try:
        if ask is None:  # a plugin's family: what its driver shows without a request
            return Check(component=slot, status="ok", detail="已打开 / open (no health request for this family)",
                         data={"url": str(getattr(driver, "url", "")), "family": family})
        return _row(slot, ask(probe, driver, settings))
    except Exception as exc:  # a probe's bug must not hide the other rows
        log.exception("doctor: the %s probe failed", slot)
        return Check(component=slot, status="fail", detail=f"检查出错 / probe failed: {type(exc).__name__}: {exc}",
                     data={"url": str(getattr(driver, "url", ""))})


def _host(probe: Probe, echo: bool) -> tuple[Check, datetime | None]:
    """The 0800 echo test: only at rest; its answer is the doctor's (taken off the stream)."""
    from terminal.host.messages import echo_request, match, parse_network_response

    till = probe.till
    host, flow = till.host, till.flow
    data: dict[str, object] = {"url": str(getattr(host, "url", "")), "signed_on": bool(flow.signed_on),
                               "needs_sign_on": bool(host.needs_sign_on)}
    if not echo or not probe.at_rest:
        why = "not asked" if not echo else f"the till is busy ({flow.state.name})"
        return _host_state(data, f"未做回响测试 / echo test {why}"), None
    if not host.connected and (fault := host.connect()) is not None:
        return Check(component="host", status="fail", detail=f"无法连接 / cannot connect: {fault.detail}",
                     data=data), None
    try:
        when = till.clock.wall()
        request = echo_request(stan=till.journal.next_stan(), terminal_id=str(till.terminal["terminal_id"]),
                               merchant_id=str(till.terminal["merchant_id"]), when=when)
    except JournalError as exc:
        return Check(component="host", status="fail", detail=f"无法分配流水号 / no STAN for the echo: {exc}",
                     data=data), None
    wait = min(probe.wait_s, float(till.terminal["host"]["timeout_s"]))
    started = till.clock.now()
    answer = probe.ask(lambda: host.send(request), lambda e: isinstance(e, HostMessage) and match(request, e),
                       family=devices.HOST_LINK, wait_s=wait)
    if isinstance(answer, DeviceFault):
        return _row("host", fault_finding(answer, probe.waited, data)), None
    if not isinstance(answer, HostMessage):
        return Check(component="host", status="fail",
                     detail=f"回响测试无应答 / no answer to the echo test in {probe.waited:.1f} s", data=data), None
    reply = parse_network_response(answer, sent_at=when)
    data |= {"response_code": reply.response_code, "round_trip_s": round(till.clock.now() - started, 3),
             "needs_sign_on": bool(host.needs_sign_on)}
    if not reply.approved:
        return Check(component="host", status="warn",
                     detail=f"主机拒绝回响测试 / the host answered {reply.response_code}", data=data), reply.host_time
    return _host_state(data, "回响测试正常 / echo test answered"), reply.host_time


def _host_state(data: dict[str, object], what: str) -> Check:
    if not data["signed_on"] or data["needs_sign_on"]:
        return Check(component="host", status="warn", detail=f"{what}; 未签到 / not signed on: the till retries",
                     data=data)
    return Check(component="host", status="ok", detail=f"{what}; 已签到 / signed on", data=data)


def _journal(till: Till) -> Check:
    journal = till.journal
    problems: list[tuple[str, str]] = []
    if str(journal.path) != ":memory:":
        db = sqlite3.connect(f"file:{journal.path}?mode=ro", uri=True)
        try:
            check_integrity(db, journal.path)
        except JournalError as exc:
            problems.append(("fail", " ".join(str(exc).split())))
        finally:
            db.close()
    capacity = journal.capacity_status()
    if capacity.full:
        problems.append(("fail", JOURNAL_FULL_MESSAGE))
    elif capacity.warn:
        problems.append(("warn", f"流水将满，请尽快结算 / journal {capacity.used}/{capacity.limit} full: settle soon"))
    owed = {"reversals": len(journal.pending_reversals()), "escalated_reversals": len(journal.unresolved_reversals()),
            "advices": len(journal.pending_advices()), "signature_uploads": len(journal.pending_uploads()),
            "qr_unresolved": len(journal.qr_unresolved()),
            "settlement_owed": journal.settlement_owed() is not None}
    waiting = ", ".join(f"{name} {count}" if count is not True else name for name, count in owed.items() if count)
    if waiting:
        problems.append(("warn", f"待送主机 / owed to the host: {waiting} (sent again by itself; if it stays, "
                                 "check the host)"))
    if till.audit.broken:
        problems.append(("fail", f"审计记录异常 / audit trail broken: {till.audit.broken}"))
    data = {"path": str(journal.path), "used": capacity.used, "capacity": capacity.limit,
            "used_ratio": round(capacity.used / capacity.limit, 3) if capacity.limit else 0.0,
            "batch": journal.current_batch(), **owed}
    if not problems:
        return Check(component="journal", status="ok",
                     detail=f"完好 / sound: {capacity.used}/{capacity.limit} in batch {journal.current_batch()}",
                     data=data)
    return Check(component="journal", status=_worst([s for s, _ in problems]),
                 detail="; ".join(text for _, text in problems), data=data)


def _journal_last_record(till: Till) -> datetime | None:
    """When the journal last changed a sale: the clock must not be behind it."""
    journal = till.journal
    if str(journal.path) == ":memory:":
        return None
    db = sqlite3.connect(f"file:{journal.path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT MAX(created_at), MAX(updated_at) FROM transactions").fetchone()
    except sqlite3.Error:
        return None  # the journal row says what is wrong with the file
    finally:
        db.close()
    stamps = []
    for text in row or ():
        try:
            stamps.append(datetime.fromisoformat(str(text)))
        except ValueError:
            continue
    return max(stamps, default=None)


def _disk(free: int, reserve: int) -> Check:
    data = {"free_mb": free // 1_000_000, "reserve_mb": reserve // 1_000_000}
    if free < reserve:
        return Check(component="disk", status="fail", detail=DISK_FULL_MESSAGE, data=data)
    if free < 2 * reserve:
        return Check(component="disk", status="warn",
                     detail=f"磁盘空间偏低 / disk space low: {data['free_mb']} MB free, sales stop below "
                            f"{data['reserve_mb']} MB", data=data)
    return Check(component="disk", status="ok", detail=f"{data['free_mb']} MB 可用 / free", data=data)


def _clock(wall: datetime, last_record: datetime | None, host_time: datetime | None) -> Check:
    data: dict[str, object] = {"wall": wall.isoformat(),
                               "last_record": last_record.isoformat() if last_record else None}
    if wall.year < MIN_YEAR:
        return Check(component="clock", status="fail", detail=f"时钟未设置 / clock not set: {wall:%Y-%m-%d %H:%M}",
                     data=data)
    if last_record is not None and _comparable(last_record, wall) and wall < last_record:
        return Check(component="clock", status="fail",
                     detail=f"时钟早于最后一笔流水 / clock is behind the journal's last record "
                            f"({last_record:%Y-%m-%d %H:%M:%S})", data=data)
    if host_time is not None and _comparable(host_time, wall):
        # A figure, not a verdict: DE 12/13 carry no time zone (nor year), and a host may keep
        # another zone's time; an emulated host keeps the machine's, not a FakeClock's.
        data["host_skew_s"] = round((wall - host_time).total_seconds(), 1)
    return Check(component="clock", status="ok", detail=f"{wall:%Y-%m-%d %H:%M:%S %Z}".strip(), data=data)


def _comparable(a: datetime, b: datetime) -> bool:
    return (a.tzinfo is None) == (b.tzinfo is None)


# -- standalone: build the till, ask it, close it ------------------------------------------------
def needs_emulated_world(terminal: Mapping[str, Any]) -> bool:
    """Would `build_till` refuse this profile for want of emulators (the host "emulated", a device
    slot that must be there on emu://, the gateway "emulated")? Then the emulated world builds it."""
    if str(terminal["host"]["url"]).startswith(_EMULATED_HOSTS):
        return True
    if any(str(s["url"]).startswith("emu://") and not s["optional"] for s in devices.fitted(terminal).values()):
        return True
    return any(str((terminal.get(name) or {}).get("url", "")).startswith(_EMULATED_HOSTS)
               for name in devices.SECTION_LINKS)


def diagnose(profile: str, var_dir: Path, *, clock: Clock | None = None, build: Callable[..., Till] | None = None,
             overrides: Mapping[str, Any] | None = None, echo: bool = True, wait_s: float = WAIT_S,
             **parts: Any) -> Report:
    """Build the till of `profile` on `var_dir` with `build` (terminal.app.build_till; the emulated
    world's sim.wiring.build_emulated_till for a profile that needs it: the caller decides), ask
    it, close it. A device that cannot be opened is a fail row and the till is built without it.
    JournalLocked (a till runs on `var_dir`) and bad input (ConfigError) go up to the caller."""
    terminal = load_terminal_profile(profile, overrides)
    profiles = device_profiles(terminal)
    build = build or build_till
    chosen = dict(overrides or {})
    if float(terminal["host"]["timeout_s"]) > BOOT_HOST_WAIT_S:
        chosen.setdefault("host.timeout_s", BOOT_HOST_WAIT_S)
    closed: list[Check] = []
    for slot, settings in devices.fitted(terminal).items():
        url = dict(parts.get("device_urls") or {}).get(slot) or str(settings["url"])
        if url.startswith("emu://"):  # the builder serves it (or refuses it as bad input)
            continue
        if (check := _try_open(slot, settings, url, profiles[slot])) is not None:
            closed.append(check)
            chosen[f"devices.{slot}"] = {**settings, "url": devices.NOT_FITTED}  # the till goes on without it
    try:
        till = build(profile, clock=clock, var_dir=var_dir, overrides=chosen, **parts)
    except JournalLocked:
        raise
    except JournalError as exc:  # damaged, not its witness, an old schema: a person decides
        return _without_till(terminal, var_dir, clock, closed, "journal", " ".join(str(exc).split()))
    except OSError as exc:  # a port that went away between its check and the build
        return _without_till(terminal, var_dir, clock, closed, "till", f"无法启动 / cannot start: {exc}")
    try:
        report = diagnose_till(till, echo=echo, wait_s=wait_s)
    finally:
        till.close()
    return Report(_in_profile_order([*closed, *report.checks], terminal))


def _try_open(slot: str, settings: Mapping[str, Any], url: str, profile: Mapping[str, Any]) -> Check | None:
    """Open and close one device's port: None when it opens, else its fail row."""
    try:
        driver = devices.resolve(slot, settings).driver_class()(url, profile)
        driver.open()
    except (OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())  # a PortError names the port already
        where = f"devices.{slot}" if url in detail else f"devices.{slot} at {url}"
        return Check(component=slot, status="fail", detail=f"无法打开 / {where}: {detail}", data={"url": url})
    driver.close()
    return None


def _without_till(terminal: Mapping[str, Any], var_dir: Path, clock: Clock | None, closed: list[Check],
                  component: str, detail: str) -> Report:
    """The till did not start: that row fails, the devices and links are not asked, disk and clock still are."""
    reserve = int(terminal["limits"]["disk_reserve_mb"]) * 1_000_000
    var_dir.mkdir(parents=True, exist_ok=True)
    checks = [*closed, Check(component=component, status="fail", detail=detail, data={})]
    named = {c.component for c in checks}
    checks += [Check(component=slot, status="warn", detail="未检查 / not checked: the till did not start",
                     data={"url": str(settings["url"])})
               for slot, settings in devices.fitted(terminal).items() if slot not in named]
    links = [name for name in devices.SECTION_LINKS if (terminal.get(name) or {}).get("url")]
    checks += [Check(component=name, status="warn", detail="未检查 / not checked: the till did not start", data={})
               for name in [*links, "host", "journal"] if name not in named]
    checks += [_disk(disk_free_bytes(var_dir), reserve), _clock((clock or SystemClock()).wall(), None, None)]
    return Report(_in_profile_order(checks, terminal))
