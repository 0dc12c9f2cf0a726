"""deploy/: the udev rules, the systemd unit, the profile template and install.sh agree with each
other and with the code (docs/deploy-raspberry-pi.md). Read as files; systemd-analyze and bash
run once each where the machine has them."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from firmware_profiles import load_profile
from terminal import app, cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "99-opentill.rules"
UNIT = DEPLOY / "opentill.service"
PROFILE = DEPLOY / "till.toml"
INSTALL = DEPLOY / "install.sh"
LINK_NAMES = {"printer", "card-reader", "scanner", "signature-pad"}
# `till run`'s flags as issue 13 names them, for as long as the CLI has no `run` to ask.
RUN_FLAGS = {"--profile", "--var", "--listen"}

# One udev rule token: KEY, KEY{attr}; an operator; a double-quoted value (udev(7)).
TOKEN = re.compile(r'\s*([A-Z_]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(?:,|$)')
MATCH_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
              "ATTR", "ATTRS", "ENV", "TAG", "TAGS", "PROGRAM", "RESULT", "NAME", "SYMLINK", "TEST"}
ASSIGN_KEYS = {"SYMLINK", "GROUP", "OWNER", "MODE", "ENV", "TAG", "RUN", "NAME", "OPTIONS", "ATTR", "LABEL", "GOTO"}


def rules() -> list[list[tuple[str, str, str, str]]]:
    """Each rule of the file as its (key, attribute, operator, value) tokens."""
    text = RULES.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tokens, at = [], 0
        while at < len(line):
            m = TOKEN.match(line, at)
            assert m, f"99-opentill.rules:{number}: cannot read from {line[at:at + 40]!r}"
            key, attr, op, value = m.groups()
            matching = op in ("==", "!=")
            assert key in (MATCH_KEYS if matching else ASSIGN_KEYS), \
                f"99-opentill.rules:{number}: {key} {op} is not a udev {'match' if matching else 'assignment'}"
            tokens.append((key, attr or "", op, value))
            at = m.end()
        out.append(tokens)
    return out


@cache
def unit() -> dict[str, dict[str, list[str]]]:
    """The unit file as section -> key -> values (a key may repeat, as DeviceAllow= does)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section = None
    for number, raw in enumerate(UNIT.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None and not line.endswith("\\"), f"opentill.service:{number}: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(key: str) -> str:
    values = unit()["Service"].get(key)
    assert values, f"opentill.service has no {key}="
    return values[-1]


def seconds(value: str) -> float:
    """A systemd time span as the unit writes them: 30s, 2, 2min."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min|)", value)
    assert m, f"not a time span this test reads: {value!r}"
    return float(m[1]) * {"ms": 0.001, "s": 1, "": 1, "min": 60}[m[2]]


def run_flags() -> set[str]:
    """The option strings of `till run`: from the CLI once it has the command."""
    for action in cli._parser()._actions:
        if isinstance(action, argparse._SubParsersAction) and "run" in action.choices:
            return {s for a in action.choices["run"]._actions for s in a.option_strings}
    return RUN_FLAGS


# -- udev rules -------------------------------------------------------------------------------------
def test_every_rule_matches_a_tty_and_makes_one_opentill_link_for_dialout() -> None:
    names = []
    for tokens in rules():
        keys = {(key, op) for key, _, op, _ in tokens}
        assert ("SUBSYSTEM", "==") in keys or ("KERNEL", "==") in keys, tokens
        assert ("SUBSYSTEM", "==", "tty") in {(k, o, v) for k, _, o, v in tokens}, tokens
        links = [v for k, _, o, v in tokens if k == "SYMLINK" and o == "+="]
        assert len(links) == 1 and links[0].startswith("opentill/"), tokens
        assigned = {k: v for k, _, o, v in tokens if o == "="}
        assert assigned.get("GROUP") == "dialout" and assigned.get("MODE") == "0660", tokens
        # by serial (ATTRS{serial}) or by port (KERNELS / ENV{ID_PATH}): never by VID:PID alone
        assert {("ATTRS", "serial"), ("KERNELS", ""), ("ENV", "ID_PATH")} & {(k, a) for k, a, _, _ in tokens}, tokens
        names.append(links[0].removeprefix("opentill/"))
    assert sorted(names) == sorted(LINK_NAMES)


def test_the_profile_template_names_the_rules_links() -> None:
    linked = {f"/dev/opentill/{name}" for name in LINK_NAMES}
    urls = {slot: str(d["url"]) for slot, d in load_profile("terminal", PROFILE)["devices"].items()}
    assert set(urls.values()) == linked, urls
    for slot, url in urls.items():  # the slot's link is named like the slot
        assert url == f"/dev/opentill/{slot.replace('_', '-')}"


# -- the profile template ------------------------------------------------------------------------------
def test_the_profile_template_loads_validated_with_its_device_profiles() -> None:
    profile = load_profile("terminal", PROFILE)
    assert profile["name"] == "till"  # installed as /etc/opentill/till.toml: the name is the file's
    assert str(profile["host"]["url"]).startswith("tcp://")
    assert sorted(app.device_profiles(profile)) == ["card_reader", "printer", "scanner", "signature_pad"]
    assert seconds(service("TimeoutStopSec")) > float(profile["host"]["timeout_s"])  # a stop waits out an auth


# -- the systemd unit -----------------------------------------------------------------------------------
def test_the_unit_is_a_notify_service_with_a_watchdog_and_restarts() -> None:
    assert service("Type") == "notify"
    assert service("NotifyAccess") == "main"
    assert seconds(service("WatchdogSec")) > 0
    assert service("Restart") == "on-failure"
    assert (service("User"), service("Group")) == ("opentill", "opentill")
    assert set(service("SupplementaryGroups").split()) == {"dialout", "lp"}
    assert service("ProtectSystem") == "strict"
    assert service("StandardOutput") == "journal"
    assert unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_exec_start_runs_till_run_with_flags_the_cli_accepts() -> None:
    program, command, *args = shlex.split(service("ExecStart"))
    assert (program, command) == ("/opt/opentill/.venv/bin/till", "run")
    flags = dict(zip(args[::2], args[1::2], strict=True))
    assert set(flags) <= run_flags(), f"till run does not take {sorted(set(flags) - run_flags())}"
    assert flags["--profile"] == "/etc/opentill/till.toml"  # where install.sh puts the template
    assert flags["--var"] == f"/var/lib/{service('StateDirectory')}"  # writable under ProtectSystem=strict


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    # verify wants ExecStart's program to exist: a stub stands in for the venv's `till`
    stub = tmp_path / "till"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    text = UNIT.read_text(encoding="utf-8").replace("/opt/opentill/.venv/bin/till", str(stub))
    (tmp_path / "opentill.service").write_text(text, encoding="utf-8")
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "opentill.service")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


# -- install.sh ------------------------------------------------------------------------------------------
def test_install_dry_run_needs_no_root_and_changes_nothing(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(INSTALL), "--dry-run", "--prefix", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == []
    for step in ("apt_install python3-venv fonts-wqy-microhei jbigkit-bin", "usermod --append --groups dialout\\,lp",
                 f"{tmp_path}/etc/opentill/till.toml", f"{tmp_path}/etc/udev/rules.d/99-opentill.rules",
                 "udevadm control --reload", f"{tmp_path}/etc/systemd/journald.conf.d/opentill.conf",
                 f"{tmp_path}/etc/systemd/system/opentill.service", "systemctl daemon-reload",
                 "systemctl enable --now opentill"):
        assert step in done.stdout, step


def test_install_into_a_prefix_is_idempotent_and_keeps_the_sites_files(tmp_path: Path) -> None:
    def install() -> str:
        done = subprocess.run(["bash", str(INSTALL), "--prefix", str(tmp_path)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    install()
    profile, rules = tmp_path / "etc/opentill/till.toml", tmp_path / "etc/udev/rules.d/99-opentill.rules"
    assert profile.read_bytes() == PROFILE.read_bytes() and profile.stat().st_mode & 0o777 == 0o640
    journald = (tmp_path / "etc/systemd/journald.conf.d/opentill.conf").read_text()
    assert "Storage=volatile" in journald and "RuntimeMaxUse=32M" in journald
    profile.write_text(PROFILE.read_text().replace("CHANGE-ME-00000", "898310048990001"))
    rules.write_text(RULES.read_text() + "# this till's adapters\n")
    said = install()
    assert "898310048990001" in profile.read_text()  # never overwritten
    assert rules.read_text().endswith("# this till's adapters\n")  # kept; the shipped one beside it
    assert (tmp_path / "etc/udev/rules.d/99-opentill.rules.new").read_bytes() == RULES.read_bytes()
    assert "opentill.service: up to date" in said


# scripts/install-tools.sh installs shellcheck (make test runs it); outside CI a machine without it skips.
@pytest.mark.skipif(shutil.which("shellcheck") is None and not os.environ.get("CI"), reason="shellcheck not installed")
def test_install_script_is_shellcheck_clean() -> None:
    done = subprocess.run(["shellcheck", str(INSTALL)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout
