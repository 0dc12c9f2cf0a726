"""Operator sessions of the web terminal: who is signed in at the browser, in memory only.

A browser cannot hold the register's API token (anything the page can read, a script injected
into it could read too), so a cashier signs in with their own operator id and PIN — checked and
audited by the till's access control (`AccessControl.sign_in`) — and gets a session:

- the session id goes in an HttpOnly, SameSite=Strict cookie: scripts cannot read it, and the
  browser sends it only with requests that come from our own page;
- a CSRF token, returned in the JSON of the sign-in, goes in `X-CSRF-Token` on every
  state-changing request (a form another site posts cannot know it);
- a session ends at sign-out or after IDLE_S without a request; a restart ends them all.

Time is the till's Clock (`now()`, monotonic): a FakeClock makes the 15-minute expiry instant.
The ids are 256-bit random; compared in constant time like the token.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["COOKIE", "IDLE_S", "MAX_SESSIONS", "Session", "Sessions"]

COOKIE = "opentill_session"
IDLE_S = 15 * 60.0  # a till left alone signs its operator out
MAX_SESSIONS = 32  # a till has a browser or two; more is someone filling memory: the oldest goes


@dataclass(kw_only=True)
class Session:
    id: str = field(repr=False)
    csrf: str = field(repr=False)
    operator: str
    role: str
    last_seen: float

    def public(self) -> dict[str, str]:
        """What the page is told (the CSRF token it must send back; never the session id)."""
        return {"operator": self.operator, "role": self.role, "csrf": self.csrf}


class Sessions:
    """The signed-in operators, by session id; thread-safe (the API's threads share it)."""

    def __init__(self, now: Callable[[], float], *, idle_s: float = IDLE_S) -> None:
        self._now, self.idle_s = now, idle_s
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, operator: str, role: str) -> Session:
        session = Session(id=secrets.token_urlsafe(32), csrf=secrets.token_urlsafe(32), operator=operator,
                          role=role, last_seen=self._now())
        with self._lock:
            self._expire()
            while len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session of this id (its idle time starts again), or None."""
        if not session_id:
            return None
        with self._lock:
            self._expire()
            found = next((s for key, s in self._sessions.items()
                          if hmac.compare_digest(key.encode(), session_id.encode())), None)
            if found is not None:
                found.last_seen = self._now()
            return found

    def alive(self, session_id: str) -> bool:
        """Whether the session is live, without counting this as its use (an event stream asks)."""
        with self._lock:
            self._expire()
            return session_id in self._sessions

    @staticmethod
    def csrf_ok(session: Session, token: str) -> bool:
        return bool(token) and hmac.compare_digest(session.csrf.encode(), token.encode())

    def end(self, session_id: str) -> Session | None:
        with self._lock:
            return self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sessions)

    def _expire(self) -> None:
        now = self._now()
        for key in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
            del self._sessions[key]
