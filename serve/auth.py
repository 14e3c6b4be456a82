"""API keys on requests: who calls and whether their role may (`require`).

Every ``/v1`` route declares its action, e.g. ``Depends(require("score"))``. The key comes in the
``X-API-Key`` header and is checked against ``request.app.state.keyring`` (a
`pipelines.usecases.access.KeyRing`: active keys in memory, reloaded every few seconds, so a
revoked key stops working within that delay). A missing, malformed, unknown or revoked key is 401
with ``WWW-Authenticate: ApiKey``; a role without the action is 403. Both raise `AuthError`, which
the app's handler turns into its JSON error body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from pipelines.usecases.access import ACTIONS, ROLES, KeyRing, allowed

API_KEY_HEADER = "X-API-Key"
CHALLENGE = {"WWW-Authenticate": "ApiKey"}


class AuthError(Exception):
    """The call is not authenticated (401) or not authorised (403): why, and what to do."""

    def __init__(self, status: int, reason: str, hint: str):
        self.status, self.reason, self.hint = status, reason, hint
        super().__init__(reason)

    @property
    def headers(self) -> dict[str, str]:
        """The response headers: the challenge on a 401."""
        return dict(CHALLENGE) if self.status == 401 else {}


@dataclass(frozen=True)
class Principal:
    """Who calls: the key's name and its role."""

    key_name: str
    role: str


def _keyring(request: Request) -> KeyRing:
    return request.app.state.keyring


def require(action: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller, when their key is valid and their role may do
    ``action`` (one of `ACTIONS`); sets ``request.state.principal``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    least = ACTIONS[action]
    may = ", ".join(ROLES[ROLES.index(least) :])

    async def dependency(request: Request) -> Principal:
        given = request.headers.get(API_KEY_HEADER)
        ring = _keyring(request)
        if ring.fresh:  # from memory, on the event loop: a thread hop costs more than the check
            key = ring.check(given, reload=False)
        else:  # the reload reads the store: off the loop
            key = await run_in_threadpool(ring.check, given)
        if key is None:
            reason = "no API key" if not given else "the API key is not valid or was revoked"
            raise AuthError(
                401,
                reason,
                f"send a key in the {API_KEY_HEADER} header; "
                "an admin makes one with `creditrisk keys create NAME --role ROLE`",
            )
        request.state.principal = principal = Principal(key.name, key.role)
        if not allowed(principal.role, action):
            raise AuthError(
                403,
                f"the key {principal.key_name!r} has role {principal.role!r}, "
                f"which may not {action}",
                f"use a key with role {may}",
            )
        return principal

    dependency.__name__ = f"require_{action}"
    return dependency
