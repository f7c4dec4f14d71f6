"""Who is calling: OAuth client authentication and the client's network address.

Clients (RFC 6749 sec. 2):

* public clients (browser and mobile apps, which cannot keep a secret) identify
  themselves with the ``client_id`` form parameter; the id must be configured;
* confidential clients authenticate with HTTP Basic (sec. 2.3.1, ``client_secret_basic``).
  The configuration holds the SHA-256 of each secret; the presented secret is hashed and
  compared with :func:`hmac.compare_digest`. Client secrets are long random strings, so
  a fast hash is the right tool here (passwords get argon2id).

A failure is ``invalid_client`` with status 401 and ``WWW-Authenticate: Basic`` (sec.
5.2). Secrets in the form body (``client_secret_post``) are refused, not ignored.

The address: the TCP peer, unless the peer is a configured trusted proxy, in which case
``X-Forwarded-For`` is walked from the right, skipping trusted proxies, and the first
address that is not one of them is the client (the left part of the header is whatever
the client chose to send, so it is never believed on its own).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import unquote_plus

from starlette.requests import Request

from tokenward.server._audit import audit
from tokenward.server._config import ClientConfig, Settings
from tokenward.server._http import ApiError, header
from tokenward.server._metrics import Metrics

__all__ = ["authenticate_client", "client_address"]

_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="tokenward", charset="UTF-8"'}
_DUMMY_DIGEST = "0" * 64
_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _invalid_client(metrics: Metrics, reason: str, client_id: str | None) -> ApiError:
    metrics.client_auth_failures.inc()
    audit("client_auth_failed", level=logging.WARNING, client_id=client_id, reason=reason)
    return ApiError(401, "invalid_client", "client authentication failed", headers=_BASIC_CHALLENGE)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        return None
    # RFC 6749 sec. 2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(
    request: Request,
    form: Mapping[str, str],
    settings: Settings,
    metrics: Metrics,
    *,
    confidential_only: bool = False,
) -> ClientConfig:
    """Return the calling client, or raise ``invalid_client`` (or ``invalid_request``)."""
    if "client_secret" in form:
        raise _invalid_client(metrics, "client_secret_post", form.get("client_id"))
    authorization = header(request, b"authorization") or ""
    body_id = form.get("client_id")
    if authorization[:6].lower() == "basic ":
        credentials = _basic_credentials(authorization)
        if credentials is None:
            raise _invalid_client(metrics, "malformed_basic", None)
        client_id, secret = credentials
        if body_id is not None and body_id != client_id:
            raise ApiError(400, "invalid_request", "client_id differs from the Basic credentials")
        client = settings.client(client_id)
        expected = client.secret_sha256 if client and client.secret_sha256 else _DUMMY_DIGEST
        presented = hashlib.sha256(secret.encode("utf-8")).hexdigest()
        # Compare even for unknown clients, so timing does not tell which ids exist.
        matches = hmac.compare_digest(presented, expected)
        if client is None or not client.confidential or not matches:
            raise _invalid_client(metrics, "bad_secret", client_id)
        return client
    if body_id is None:
        raise _invalid_client(metrics, "missing", None)
    client = settings.client(body_id)
    if client is None:
        raise _invalid_client(metrics, "unknown_client", body_id)
    if client.confidential or confidential_only:
        raise _invalid_client(metrics, "authentication_required", body_id)
    return client


@lru_cache(maxsize=64)
def _networks(proxies: tuple[str, ...]) -> tuple[_IPNetwork, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _parse_ip(text: str) -> _IPAddress | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(request: Request, trusted_proxies: tuple[str, ...]) -> str | None:
    """The client's IP address as this server can establish it (see the module docstring)."""
    peer = request.client.host if request.client else None
    if peer is None or not trusted_proxies:
        return peer
    networks = _networks(trusted_proxies)

    def trusted(ip: _IPAddress | None) -> bool:
        return ip is not None and any(ip in net for net in networks)

    if not trusted(_parse_ip(peer)):
        return peer
    hops = [h for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    address = peer
    for hop in reversed(hops):
        ip = _parse_ip(hop)
        if ip is None:
            # Garbage in the chain: stop at the last address a trusted proxy vouched for.
            return address
        address = str(ip)
        if not trusted(ip):
            return address
    return address
