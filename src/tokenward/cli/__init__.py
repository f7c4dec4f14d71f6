"""The ``tokenward`` command-line tool.

::

    tokenward keys generate --alg ES256 --out signing.jwk
    tokenward keys public signing.jwk > signing.pub.jwk
    tokenward token encode --key signing.jwk --sub ada --aud api --exp-in 15m
    tokenward token inspect TOKEN
    tokenward token verify --key signing.pub.jwk --alg ES256 --aud api TOKEN

Exit status: 0 success, 1 a token was refused, 2 a usage or configuration error; every
error is one line on stderr, ``error: <code>: <message>``. See ``docs/cli.md``.

Each command group is a private module with a ``register(commands)`` function, listed
in ``_main.COMMAND_GROUPS``; adding a group (``serve``, ``users``, ``sessions``,
``bench``) or a command to a group (``keys rotate``) touches only that module and, for
a new group, that tuple.
"""

from __future__ import annotations

from tokenward.cli._main import main

__all__ = ["main"]
