"""The authenticated caller, the schemes an operator may turn on, and the one authentication error."""

from __future__ import annotations

from dataclasses import dataclass

from ktes.errors import KtesError

BASIC = "basic"
OIDC = "oidc"
SCHEMES = (BASIC, OIDC)


@dataclass(frozen=True)
class Principal:
    """A user ktes has verified. ``admin`` sees and cancels every task."""

    name: str
    admin: bool = False


class AuthFailed(KtesError):
    """Missing or bad credentials (401). ``reason`` is short and safe to show: what the client must fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_schemes(text: str) -> frozenset[str]:
    """``KTES_AUTH``: ``none``, ``basic``, ``oidc`` or ``basic,oidc``. Raises ValueError naming the setting."""
    words = {word.strip().lower() for word in text.split(",") if word.strip()}
    if not words or words == {"none"}:
        return frozenset()
    unknown = sorted(words - set(SCHEMES))
    if unknown:
        raise ValueError(f"KTES_AUTH: unknown scheme {', '.join(unknown)} (use none, basic, oidc or basic,oidc)")
    return frozenset(words)
