"""The tokenward exception tree.

Every error tokenward raises derives from :class:`TokenwardError` and carries a stable
``code`` string. The HTTP layer maps codes to statuses and generic bodies; the details
(``str(error)``) are for logs and never contain a token, a password or key material.

::

    TokenwardError
    ├── InvalidTokenError                 a presented token is not acceptable
    │   ├── MalformedTokenError           structure, size, base64url or JSON
    │   ├── UnsupportedHeaderError        crit, b64, zip, JWE or nested tokens
    │   ├── AlgorithmNotAllowedError      alg absent from the allow-list or unknown
    │   ├── KeyMismatchError              alg does not fit the key, or key use forbids it
    │   ├── KeyNotFoundError              no key for the token's kid
    │   ├── BadSignatureError             the signature does not verify
    │   ├── InvalidTypeError              header typ is not the expected one
    │   └── ClaimError                    a claim is missing, mistyped or unacceptable
    │       ├── ExpiredTokenError         exp has passed
    │       ├── ImmatureTokenError        nbf (or iat) is in the future
    │       └── MissingClaimError         a required claim is absent
    ├── InvalidKeyError                   key material or a JWK/JWKS is unusable or weak
    └── ConfigurationError                the caller asked for something unsafe or invalid

Service and store errors join the tree in their own modules.
"""

from __future__ import annotations

__all__ = [
    "AlgorithmNotAllowedError",
    "BadSignatureError",
    "ClaimError",
    "ConfigurationError",
    "ExpiredTokenError",
    "ImmatureTokenError",
    "InvalidKeyError",
    "InvalidTokenError",
    "InvalidTypeError",
    "KeyMismatchError",
    "KeyNotFoundError",
    "MalformedTokenError",
    "MissingClaimError",
    "TokenwardError",
    "UnsupportedHeaderError",
]


class TokenwardError(Exception):
    """Root of every error raised by tokenward; ``code`` is stable across releases."""

    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidTokenError(TokenwardError):
    """A presented token must not be accepted. Callers need only catch this class."""

    code = "invalid_token"


class MalformedTokenError(InvalidTokenError):
    """The token is not a well-formed compact JWS (segments, size, base64url, JSON)."""

    code = "malformed_token"


class UnsupportedHeaderError(InvalidTokenError):
    """The header asks for something this strict profile never does (crit, b64, zip)."""

    code = "unsupported_header"


class AlgorithmNotAllowedError(InvalidTokenError):
    """The header ``alg`` is unknown, malformed, or not in the caller's allow-list."""

    code = "algorithm_not_allowed"


class KeyMismatchError(InvalidTokenError):
    """The token's ``alg`` does not fit the verification key, or the key forbids it."""

    code = "key_mismatch"


class KeyNotFoundError(InvalidTokenError):
    """No key in the key set matches the token's ``kid`` (or the token has none)."""

    code = "key_not_found"


class BadSignatureError(InvalidTokenError):
    """The signature or MAC does not verify."""

    code = "bad_signature"


class InvalidTypeError(InvalidTokenError):
    """The header ``typ`` is missing or differs from the expected token type."""

    code = "invalid_typ"


class ClaimError(InvalidTokenError):
    """A claim is missing, of the wrong type, or has an unacceptable value."""

    code = "invalid_claim"

    def __init__(self, message: str, *, claim: str, reason: str) -> None:
        super().__init__(message)
        self.claim = claim
        self.reason = reason


class ExpiredTokenError(ClaimError):
    """``exp`` is at or before the current time (after leeway)."""

    code = "token_expired"


class ImmatureTokenError(ClaimError):
    """``nbf`` is after the current time, or ``iat`` lies in the future (after leeway)."""

    code = "token_not_yet_valid"


class MissingClaimError(ClaimError):
    """A claim the caller requires is absent or null."""

    code = "missing_claim"


class InvalidKeyError(TokenwardError):
    """Key material, a JWK or a JWKS is malformed, weak, or unfit for the requested use."""

    code = "invalid_key"


class ConfigurationError(TokenwardError):
    """The caller's configuration is invalid or unsafe (an empty allow-list, say)."""

    code = "configuration_error"
