"""The real `till` command under hostile or careless input: every entry point answers with one
line on stderr and exit 2, never a traceback, and reads bounded input (issue 9).

Each case runs `python -m terminal.cli` in a child process with a memory ceiling, so an
unbounded read fails the test with a MemoryError instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.transport import open_port
from tests.support.processes import served

ROOT = Path(__file__).resolve().parents[2]
MEMORY_CEILING = 1536 * 1024 * 1024  # far above a sane run, far below a 200 MB read blown up
BIG = 200 * 1024 * 1024


def _ceiling() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CEILING, MEMORY_CEILING))


def till(*args: str, cwd: Path, env: dict[str, str] | None = None,
         stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "terminal.cli", *args], cwd=cwd, text=True, stdout=stdout,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=300, preexec_fn=_ceiling,
                          env={**os.environ, **(env or {})})


def assert_one_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    err = result.stderr
    assert "Traceback" not in err, err[-2000:]
    assert result.returncode == 2, (result.returncode, err[-2000:])
    assert err.count("\n") == 1 and err.startswith("till: "), err[-2000:]
    assert len(err) < 600, "the line echoes the whole hostile input"
    for needle in needles:
        assert needle in err, err
    return err


# -- files the cases use ----------------------------------------------------------------------------
def _file(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _big_text(path: Path) -> str:
    """A 200 MB text file (sparse after its first line: the size is what matters)."""
    with path.open("wb") as f:
        f.write(b"[scenario]\nname = \"big\"\n")
        f.truncate(BIG)
    return str(path)


def _nested_profile(path: Path) -> str:
    return _file(path, b'schema = 1\nname = "' + path.stem.encode() + b'"\nx = ' + b"[" * 5000 + b"]" * 5000 + b"\n")


def _nested_scenario(path: Path) -> str:
    return _file(path, b'[scenario]\nname = "n"\nseed = ' + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n")


def _escpos(*chunks: bytes) -> bytes:
    return b"\x1b@hello\n" + b"".join(chunks) + b"\x1dV\x00"


def _qr(data: bytes) -> bytes:
    n = len(data) + 3
    return b"\x1d(k" + bytes((n % 256, n // 256)) + b"1P0" + data + b"\x1d(k\x03\x001Q0"


def _scenario(overrides: str) -> bytes:
    return (f'[scenario]\nname = "bad-override"\n[scenario.overrides]\n{overrides}\n'
            '[[step]]\nsale = { card = "approved", amount = "1.00" }\n').encode()


def _steps(step: str, count: int) -> bytes:
    return ('[scenario]\nname = "long"\n' + f"[[step]]\n{step}\n" * count).encode()


def _var_with(tmp: Path, name: str, *, data: bytes | None = None, folder: bool = False) -> str:
    """A var/ folder where `name` (receipts, keys, keys/pan.key...) is a file or a folder."""
    target = tmp / "var" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        target.mkdir()
    else:
        target.write_bytes(b"x" if data is None else data)
    return str(tmp / "var")


OK_ESCPOS = _escpos()
Setup = Callable[[Path], list[str]]


def _demo(t: Path, *args: str) -> list[str]:
    return ["demo", "--var", str(t / "var"), *args]


def _override(text: str) -> Setup:
    return lambda t: ["scenario", "run", _file(t / "s.toml", _scenario(text))]


def _render(data: bytes, *, png: str | None = "out.png") -> Setup:
    """`escpos render` of `data`; `png` is relative to the test's folder unless absolute."""
    return lambda t: ["escpos", "render", _file(t / "in.bin", data), *(["--png", str(t / png)] if png else [])]


def _profile_scenario(t: Path) -> list[str]:
    deep = _nested_profile(t / "deep.toml")
    text = f'[scenario]\nname = "p"\nprofile = "{deep}"\n[[step]]\nadvance = 1\n'
    return ["scenario", "run", _file(t / "s.toml", text.encode())]


CASES: dict[str, tuple[Setup, tuple[str, ...]]] = {
    # --var
    "var-is-a-file": (lambda t: ["demo", "--var", _file(t / "plain", b"x")], ("plain", "not a folder")),
    "var-is-dev-null": (lambda t: ["demo", "--var", "/dev/null"], ("/dev/null", "not a folder")),
    "var-name-too-long": (lambda t: ["demo", "--var", str(t / ("v" * 300))], ("--var", "too long")),
    "var-path-too-long": (lambda t: ["demo", "--var", str(t / "/".join(["v" * 200] * 25))], ("--var", "too long")),
    "var-empty": (lambda t: ["demo", "--var", ""], ("--var", "empty")),
    "receipts-is-a-file": (lambda t: ["demo", "--var", _var_with(t, "receipts")], ("receipts", "not a folder")),
    "keys-is-a-file": (lambda t: ["demo", "--var", _var_with(t, "keys")], ("keys", "not a folder")),
    "short-pan-key": (lambda t: ["demo", "--var", _var_with(t, "keys/pan.key", data=b"k" * 10)],
                      ("keys/pan.key", "10 bytes", "32")),
    "short-audit-key": (lambda t: ["demo", "--var", _var_with(t, "keys/audit.key", data=b"k" * 10)],
                        ("keys/audit.key", "10 bytes", "32")),
    "key-is-a-folder": (lambda t: ["demo", "--var", _var_with(t, "keys/pan.key", folder=True)], ("keys/pan.key",)),
    # --profile
    "profile-name-5000": (lambda t: _demo(t, "--profile", "p" * 5000), ("too long",)),
    "profile-path-5000": (lambda t: _demo(t, "--profile", "x/" + "p" * 5000 + ".toml"), ("too long",)),
    "profile-nested": (lambda t: _demo(t, "--profile", _nested_profile(t / "deep.toml")), ("deep.toml", "nested")),
    "profile-200mb": (lambda t: _demo(t, "--profile", _big_text(t / "big.toml")), ("big.toml", "MiB")),
    "escpos-profile-5000": (lambda t: [*_render(OK_ESCPOS, png=None)(t), "--profile", "p" * 5000], ("too long",)),
    "emulate-profile-5000": (lambda t: ["emulate", "printer", "--pty", "--profile", "p" * 5000], ("too long",)),
    # scenario run
    "scenario-dev-zero": (lambda t: ["scenario", "run", "/dev/zero"], ("/dev/zero", "MiB")),
    "scenario-nested": (lambda t: ["scenario", "run", _nested_scenario(t / "deep.toml")], ("deep.toml", "nested")),
    "scenario-200mb": (lambda t: ["scenario", "run", _big_text(t / "big.toml")], ("big.toml", "MiB")),
    "scenario-profile-nested": (_profile_scenario, ("deep.toml", "nested")),
    "scenario-1001-steps": (lambda t: ["scenario", "run", _file(t / "s.toml", _steps("advance = 1", 1001))],
                            ("1001 steps", "1000")),
    "scenario-8-days": (lambda t: ["scenario", "run", _file(t / "s.toml", _steps("advance = 86400", 8))],
                        ("691200 s", "7 days")),
    "journal-capacity-0": (_override('"limits.journal_capacity" = 0'), ("limits.journal_capacity", ">= 1")),
    "journal-capacity-neg": (_override("limits = { journal_capacity = -5 }"), ("limits.journal_capacity", ">= 1")),
    "host-timeout-neg": (_override('"host.timeout_s" = -1'), ("host.timeout_s",)),
    "host-timeout-nan": (_override('"host.timeout_s" = nan'), ("host.timeout_s",)),
    "host-timeout-inf": (_override('"host.timeout_s" = inf'), ("host.timeout_s", "<= 3600")),
    "journal-capacity-huge": (_override('"limits.journal_capacity" = 10_000_000'), ("limits.journal_capacity", "<=")),
    "reversal-attempts-0": (_override('"host.reversal_max_attempts" = 0'), ("host.reversal_max_attempts", ">= 1")),
    # escpos render
    "escpos-dev-zero": (lambda t: ["escpos", "render", "/dev/zero"], ("/dev/zero", "MiB")),
    "escpos-200mb": (lambda t: ["escpos", "render", _big_text(t / "big.bin")], ("big.bin", "MiB")),
    "png-missing-folder": (_render(OK_ESCPOS, png="no/x.png"), ("x.png",)),
    "png-is-a-folder": (_render(OK_ESCPOS, png="."), ("--png",)),
    "png-in-proc": (_render(OK_ESCPOS, png="/proc/no-such/x.png"), ("/proc/no-such/x.png",)),
    "png-dev-full": (_render(OK_ESCPOS, png="/dev/full"), ("/dev/full",)),
    "qr-7000-bytes": (_render(_escpos(_qr(b"A" * 7000))), ("QR", "7000 bytes")),
    "feed-bomb": (_render(_escpos(b"\x1bJ\xff" * 200_000)), ("paper",)),
    "feed-lines-bomb": (_render(_escpos(b"\x1bd\xff" * 100)), ("paper",)),
    "char-size-bomb": (_render(_escpos(b"\x1d!\x77" + b"W\n" * 20_000)), ("paper",)),
    "char-size-wrap-bomb": (_render(_escpos(b"\x1d!\x77" + b"W" * 20_000)), ("paper",)),
    "cut-bomb": (_render(_escpos(b"x\x1dV\x00" * 1000)), ("1001 pages", "200")),
    "raster-bomb": (_render(_escpos(b"\x1dv0\x03\x01\x00\x28\x23" + b"\x55" * 9000)), ("paper",)),
    # listen addresses and other arguments
    "host-listen-long": (lambda t: ["host", "--listen", "h" * 5000 + ":1"], ("--listen",)),
    "emulate-listen-bad-port": (lambda t: ["emulate", "printer", "--listen", "[::1]:99999"], ("--listen",)),
    "demo-card-5000": (lambda t: _demo(t, "--card", "c" * 5000), ("unknown test card",)),
    "demo-amount-5000": (lambda t: _demo(t, "--amount", "1" * 5000), ("amount",)),
}


# One child runs every case, one after the other, as `python -m terminal.cli` would (main(),
# exit status, an uncaught exception printed): a process start per case cost ~20 s of the suite.
# Each case has its own folder and working directory, and its own stdout and stderr at the file
# descriptors, so whatever writes to fd 2 is seen; the child lives under the memory ceiling.
# The entry point itself (`python -m terminal.cli`, its exit at the end) is the other tests' here.
_BATCH = """
import json, os, sys, traceback
from terminal.cli import main
captures = sys.argv[1]
with open(os.path.join(captures, "cases.json")) as f:
    cases = json.load(f)
for name, cwd, args in cases:
    os.chdir(cwd)
    saved = [os.dup(1), os.dup(2)]
    for fd, ext in ((1, "out"), (2, "err")):
        out = os.open(os.path.join(captures, f"{name}.{ext}"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, fd)
        os.close(out)
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, old in zip((1, 2), saved):
        os.dup2(old, fd)
        os.close(old)
    with open(os.path.join(captures, f"{name}.code"), "w") as f:
        f.write(str(code))
"""


@pytest.fixture(scope="module")
def bad_input_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    captures = tmp_path_factory.mktemp("captures")
    cases: list[tuple[str, str, list[str]]] = []
    for case, (setup, _) in CASES.items():
        folder = tmp_path_factory.mktemp(case)
        cases.append((case, str(folder), setup(folder)))
    (captures / "cases.json").write_text(json.dumps(cases))
    child = subprocess.run([sys.executable, "-c", _BATCH, str(captures)], cwd=ROOT, text=True,
                           capture_output=True, stdin=subprocess.DEVNULL, timeout=300, preexec_fn=_ceiling)
    assert child.returncode == 0, child.stderr[-2000:]
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    for case, _, args in cases:
        code = (captures / f"{case}.code").read_text()
        results[case] = subprocess.CompletedProcess(args, int(code), (captures / f"{case}.out").read_text(),
                                                    (captures / f"{case}.err").read_text())
    return results


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(bad_input_results: dict[str, subprocess.CompletedProcess[str]],
                                          case: str) -> None:
    assert_one_line(bad_input_results[case], *CASES[case][1])


def test_var_empty_touches_nothing_in_the_working_directory(tmp_path: Path) -> None:
    assert_one_line(till("demo", "--var", "", cwd=tmp_path), "--var")
    assert list(tmp_path.iterdir()) == []


def test_refused_var_is_refused_before_a_sale(tmp_path: Path) -> None:
    """receipts/ being a file is found before the card is charged, not after."""
    var = _var_with(tmp_path, "receipts")
    assert_one_line(till("demo", "--var", var, cwd=tmp_path), "receipts")
    assert not (tmp_path / "var" / "journal.sqlite3").exists()


@pytest.mark.parametrize("args", [["cards"], ["escpos", "render", "ok.bin"], ["demo", "--var", "var", "--json"]])
def test_output_to_a_full_device_is_one_line(tmp_path: Path, args: list[str]) -> None:
    _file(tmp_path / "ok.bin", OK_ESCPOS)
    with open("/dev/full", "w") as full:
        result = till(*args, cwd=tmp_path, stdout=full.fileno())
    assert_one_line(result, "output", "No space left")


def test_a_cut_bomb_writes_no_picture(tmp_path: Path) -> None:
    assert_one_line(till(*_render(_escpos(b"x\x1dV\x00" * 1000))(tmp_path), cwd=tmp_path), "--png")
    assert list(tmp_path.glob("*.png")) == []


def test_escpos_limits_keep_a_real_receipt(tmp_path: Path) -> None:
    """The bounds leave a long real receipt alone: a QR of 2,000 bytes and 1 m of feed render."""
    data = _escpos(_qr(b"A" * 2000), b"\x1bJ\xff" * 30)
    result = till("escpos", "render", _file(tmp_path / "r.bin", data), "--png", str(tmp_path / "r.png"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r.png").stat().st_size > 0


def test_emulate_refuses_an_endless_control_line() -> None:
    with served("emulate", "printer", "--pty") as child:
        assert child.control("fault " + "x" * 100_000).startswith("error: a control line has at most")
        assert child.control("status").startswith("ok")  # the long line is gone; the next one works


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_emulate_listens_on_an_ipv6_literal() -> None:
    with served("emulate", "printer", "--listen", "[::1]:0") as child:
        assert child.endpoint.startswith("socket://[::1]:") and not child.endpoint.endswith(":0")
        port = open_port(child.endpoint, timeout=5)
        try:
            port.write(b"\x10\x04\x01")  # DLE EOT 1: is the printer online?
            assert port.read(1) == b"\x12"
        finally:
            port.close()


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_host_listens_on_an_ipv6_literal() -> None:
    from drivers.acquirer.driver import parse_host_url

    with served("host", "--listen", "[::1]:0") as child:
        assert child.endpoint.startswith("tcp://[::1]:")
        host, port = parse_host_url(child.endpoint)
        with socket.create_connection((host, port), timeout=5):
            pass


# -- scratch folders of killed scenario runs ------------------------------------------------------
_KILLED_RUN = """
import os, signal, sys
from sim.scenario.scratch import scratch_dir
folder = scratch_dir()
(folder / "var").mkdir()
print(folder, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # as `kill -9` mid-run: nothing gets to clean up
"""


def test_a_killed_runs_folder_is_removed_by_the_next_run(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    killed = subprocess.run([sys.executable, "-c", _KILLED_RUN], env=env, text=True, capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = Path(killed.stdout.strip())
    assert left.parent == tmp_path and left.name.startswith("till-scenario-") and left.is_dir()
    # A folder of a run still going (its lock is held, here by this process) must stay.
    from sim.scenario import scratch

    live = scratch.scratch_dir(root=tmp_path)
    try:
        happy = str(ROOT / "sim" / "scenarios" / "00-happy-path.toml")
        result = till("scenario", "run", happy, cwd=tmp_path, env={"TMPDIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr
        assert not left.exists()
        assert live.is_dir()
        assert sorted(p.name for p in tmp_path.glob("till-scenario-*")) == [live.name]
    finally:
        scratch.release_scratch_dir(live)
    assert not live.exists()
