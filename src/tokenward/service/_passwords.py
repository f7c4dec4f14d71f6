"""Password hashing with argon2id (RFC 9106) through ``argon2-cffi``.

Parameters default to RFC 9106's second recommended option (t=3, m=64 MiB, p=4), which
costs tens of milliseconds per hash here; that cost bounds login throughput on purpose.
When the configured parameters change, a successful login re-hashes the password with
the new ones (:meth:`PasswordHasher.needs_rehash`).

Unknown users are "verified" against a dummy hash made with the same parameters, so a
wrong password and an unknown user take the same time and get the same error.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tokenward.errors import ConfigurationError

__all__ = ["Argon2Parameters", "PasswordHasher"]

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """argon2id cost parameters; memory in KiB."""

    time_cost: int = 3
    memory_cost: int = 64 * 1024
    parallelism: int = 4

    def __post_init__(self) -> None:
        if type(self.time_cost) is not int or self.time_cost < 1:
            raise ConfigurationError("argon2 time_cost must be a positive integer")
        if type(self.memory_cost) is not int or self.memory_cost < 8 * self.parallelism:
            raise ConfigurationError("argon2 memory_cost must be at least 8 KiB per lane")
        if type(self.parallelism) is not int or not 1 <= self.parallelism <= 64:
            raise ConfigurationError("argon2 parallelism must be between 1 and 64")


class PasswordHasher:
    """Hash and verify passwords; never logs or returns a password.

    >>> hasher = PasswordHasher(Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1))
    >>> encoded = hasher.hash("correct horse battery staple")
    >>> hasher.verify(encoded, "correct horse battery staple"), hasher.verify(encoded, "nope")
    (True, False)
    """

    def __init__(self, parameters: Argon2Parameters | None = None) -> None:
        self.parameters = parameters or Argon2Parameters()
        self._hasher = argon2.PasswordHasher(
            time_cost=self.parameters.time_cost,
            memory_cost=self.parameters.memory_cost,
            parallelism=self.parameters.parallelism,
            type=argon2.Type.ID,
        )
        self._dummy: str | None = None

    @staticmethod
    def check_policy(password: str) -> None:
        """Refuse passwords a careful service would not accept (NIST SP 800-63B sec. 5.1.1)."""
        if not isinstance(password, str):
            raise ConfigurationError("a password must be text")
        if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
            raise ConfigurationError(
                f"a password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
            )

    def hash(self, password: str) -> str:
        """An argon2id PHC string for ``password`` (which must meet :meth:`check_policy`)."""
        self.check_policy(password)
        return self._hasher.hash(password)

    def verify(self, encoded: str | None, password: str) -> bool:
        """True iff ``password`` matches ``encoded``; ``None`` burns the same time, then False."""
        if encoded is None:
            # Made on first use, so building a hasher costs nothing.
            if self._dummy is None:
                self._dummy = self._hasher.hash("tokenward dummy password for unknown users")
            with contextlib.suppress(VerificationError):
                self._hasher.verify(self._dummy, password)
            return False
        try:
            return self._hasher.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """True when ``encoded`` was made with other parameters than the configured ones."""
        try:
            return self._hasher.check_needs_rehash(encoded)
        except InvalidHashError:
            return True
