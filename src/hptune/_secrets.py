"""Secrets in URLs: how every message and every stored record shows a URL that may carry a
password (a storage, an MLflow tracking URI).

A password hides in three places of a database URL: after the user
(``postgresql://me:s3cret@db/hptune``, also unencoded, ``me:pa@ss@db``), and in query
parameters (``?password=...``, ``?sslpassword=...``, a token or a key). All three are
replaced by ``***``; what is masked too much (an ``@`` in a query value) is harmless.

Example:
    >>> printable_url("postgresql://me:pa@ss@db:5432/hptune?sslmode=require&password=x")
    'postgresql://me:***@db:5432/hptune?sslmode=require&password=***'
"""

from __future__ import annotations

import re
from typing import Any

#: ``scheme://user:`` then anything up to the URL's last ``@`` (a password may hold one).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:)(.*)@")
#: A query parameter whose name says it holds a secret, and its value.
_SECRET_PARAM = re.compile(r"(?i)([?&;][^=&;#]*(?:pass|pwd|secret|token|key)[^=&;#]*=)([^&;#]*)")


def printable_url(url: Any) -> str:
    """``url`` with every password in it replaced by ``***``. Anything that is not a string
    (an Optuna storage object, None) is shown by its type."""
    if not isinstance(url, str):
        return "in-memory storage" if url is None else type(url).__name__
    return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub(r"\1***@", url, count=1))


def secrets_of(url: Any) -> list[str]:
    """The secrets ``url`` holds (its password, secret query values), longest first."""
    if not isinstance(url, str):
        return []
    found = [m.group(2) for m in _SECRET_PARAM.finditer(url)]
    user = _USERINFO.match(url)
    if user:
        found.append(user.group(2))
    return sorted({s for s in found if s}, key=len, reverse=True)


def scrub(text: str, url: Any) -> str:
    """``text`` (a library's error message, say) with ``url``'s secrets replaced by ``***``,
    wherever they appear in it."""
    for secret in secrets_of(url):
        text = text.replace(secret, "***")
    return text
