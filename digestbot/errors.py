"""The exception hierarchy: every error digestbot raises on purpose is a DigestbotError."""

from __future__ import annotations

from typing import Any


class DigestbotError(Exception):
    """Base of every error digestbot raises on purpose."""


class ConfigError(DigestbotError):
    """Config or watchlist is wrong: one line naming file, line and key."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "config"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class QueryError(DigestbotError):
    """Topic query does not parse; `position` is the 0-based character offset."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.message = message
        self.position = position
        where = "" if position is None else f" (at character {position + 1})"
        super().__init__(message + where)


class FetchError(DigestbotError):
    """HTTP fetch failed: timeout, status, size cap, blocked address, too many redirects."""

    def __init__(self, url: str, reason: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.url = url
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"fetch failed for {url}: {reason}")


class BlockedAddressError(FetchError):
    """Fetch refused: the URL resolves to a loopback, private, link-local or metadata address."""


class FeedError(DigestbotError):
    """Feed body is not a usable RSS/Atom document."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"feed failed for {url}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled back from parsing worker processes; the default would pass only the message.
        return (type(self), (self.url, self.reason))


class StoreError(DigestbotError):
    """Database could not be opened, migrated or written."""


class DeliveryError(DigestbotError):
    """Sending to a destination failed; `permanent` means retrying will not help."""

    def __init__(self, destination: str, reason: str, *, permanent: bool = False) -> None:
        self.destination = destination
        self.reason = reason
        self.permanent = permanent
        super().__init__(f"delivery failed for {destination}: {reason}")
