"""Out of file descriptors, the acquirer simulator refuses the surplus connections, says so on
stderr and keeps serving (issue 10: the accept thread used to die, leaving a process that
accepted nothing). The simulator runs in a child process whose RLIMIT_NOFILE is a few
descriptors above what it holds at start."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from datetime import datetime

from drivers.acquirer.codec import AcquirerCodec
from drivers.events import Role
from terminal.host.messages import echo_request

_CHILD = textwrap.dedent("""
    import os, resource, sys
    from emulator.acquirer.simulator import AcquirerSimulator
    sim = AcquirerSimulator()
    sim.start()
    held = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (held + 4, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    print(sim.url, flush=True)
    sys.stdin.read()  # serve until the parent closes stdin
    sim.stop()
    print("refused", sim._reactor.refused, flush=True)
""")
_BOUND = 20.0  # seconds: a bound on a hang, never waited for when all is well


def _echo(stan: int) -> bytes:
    return AcquirerCodec(Role.HOST).send(echo_request(stan=stan, terminal_id="TERM0001", merchant_id="M" * 15,
                                                      when=datetime(2025, 1, 15, 14, 30, 15)))


def _answered(sock: socket.socket, stan: int) -> bool:
    """Sends an echo; True when its 0810 arrives, False when the host closed the connection."""
    codec = AcquirerCodec(Role.HOST)
    try:
        sock.sendall(_echo(stan))
        while (event := codec.next_event()) is None:
            data = sock.recv(4096)
            if not data:
                return False
            codec.receive_data(data)
    except (ConnectionResetError, BrokenPipeError):
        return False
    return event.mti == "0810" and event.response_code == "00"


def test_out_of_descriptors_the_host_refuses_the_surplus_and_keeps_serving() -> None:
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        host, port = proc.stdout.readline().strip().removeprefix("tcp://").rsplit(":", 1)
        socks = [socket.create_connection((host, int(port)), timeout=_BOUND) for _ in range(12)]
        outcomes = [_answered(s, n) for n, s in enumerate(socks, 1)]
        assert True in outcomes and False in outcomes  # some served, the surplus refused
        for s in socks:
            s.close()
        with socket.create_connection((host, int(port)), timeout=_BOUND) as again:
            assert _answered(again, 99)  # descriptors freed: served again
        proc.stdin.close()
        assert proc.wait(_BOUND) == 0
        assert int(proc.stdout.read().split()[-1]) >= 1
        err = proc.stderr.read() if proc.stderr else ""
        assert "out of file descriptors" in err and "still serving" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
