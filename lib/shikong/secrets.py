"""The pseudonym key: from the environment or a Databricks secret scope, never from files.

Published tables carry customer ids as keyed HMAC-SHA256 pseudonyms
(:func:`shikong.privacy.pseudonymise`). The key is looked up, in order:

1. the environment variable ``privacy.pseudonym_key_env`` (default ``SHIKONG_PSEUDONYM_KEY``);
2. ``dbutils.secrets.get(privacy.databricks_secret_scope, privacy.databricks_secret_key)``
   when a scope is configured (the config names the scope and key, never the value);
3. the built-in :data:`DEVELOPMENT_KEY`, only where the profile sets
   ``privacy.allow_development_key`` (``conf/local.yaml``, ``conf/small.yaml``): a warning
   says so once per process.

Otherwise :class:`PseudonymKeyError` (a :class:`~shikong.config.ConfigError`: one line,
exit code 2), raised by the command line before Spark starts. The key's value is never
logged, printed or written; its ``repr`` in a :class:`PseudonymKey` is hidden.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shikong.config import AppConfig, ConfigError

log = logging.getLogger(__name__)

#: The key of local development runs: public, in the source, and named to say so. Pseudonyms
#: made with it protect nothing against anyone who has read this file.
DEVELOPMENT_KEY = b"shikong-DEVELOPMENT-ONLY-pseudonym-key-not-a-secret"

#: The shortest key accepted (bytes): HMAC-SHA256 wants a key of the hash's strength.
MIN_KEY_BYTES = 16

_warned = False


class PseudonymKeyError(ConfigError):
    """No usable pseudonym key: the message names the variable or secret to set."""


@dataclass(frozen=True)
class PseudonymKey:
    """The resolved key and where it came from (``env:NAME``, ``databricks:scope/key``,
    ``development``); the value never appears in a repr."""

    value: bytes = field(repr=False)
    source: str

    @property
    def is_development(self) -> bool:
        """Whether this is the public development key."""
        return self.source == "development"


def _from_databricks(scope: str, key: str, env: Mapping[str, str], var: str) -> str:
    hint = f"set {var} or run on Databricks, where scope {scope!r} holds key {key!r}"
    if not env.get("DATABRICKS_RUNTIME_VERSION"):
        raise PseudonymKeyError(f"privacy: no pseudonym key: {hint}")
    try:
        from databricks.sdk.runtime import dbutils  # type: ignore[import-not-found]
    except Exception as exc:  # ImportError, or the SDK finding no workspace
        raise PseudonymKeyError(
            f"privacy: no pseudonym key: dbutils unavailable ({type(exc).__name__}); {hint}"
        ) from None
    try:
        return str(dbutils.secrets.get(scope=scope, key=key))
    except Exception as exc:  # the SDK's own errors; the message never holds the value
        raise PseudonymKeyError(
            f"privacy: no pseudonym key: cannot read secret {key!r} of scope {scope!r} "
            f"({type(exc).__name__}); set {var} or grant the job read access to the scope"
        ) from None


def pseudonym_key(cfg: AppConfig, *, env: Mapping[str, str] | None = None) -> PseudonymKey:
    """The pseudonym key of this run (see the module docstring for the order).

    Raises:
        PseudonymKeyError: One line naming the variable (and secret) to set.
    """
    global _warned
    p = cfg.privacy
    env = os.environ if env is None else env
    raw, source = env.get(p.pseudonym_key_env, ""), f"env:{p.pseudonym_key_env}"
    if not raw and p.databricks_secret_scope:
        raw = _from_databricks(
            p.databricks_secret_scope, p.databricks_secret_key, env, p.pseudonym_key_env
        )
        source = f"databricks:{p.databricks_secret_scope}/{p.databricks_secret_key}"
    if raw:
        value = raw.encode("utf-8")
        if len(value) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"privacy: the pseudonym key from {source} is shorter than {MIN_KEY_BYTES} "
                "bytes; use a long random value (e.g. `openssl rand -hex 32`)"
            )
        return PseudonymKey(value, source)
    if p.allow_development_key:
        if not _warned:
            log.warning(
                "privacy: using the public DEVELOPMENT pseudonym key (privacy."
                "allow_development_key): pseudonyms protect nothing; set %s for real data",
                p.pseudonym_key_env,
            )
            _warned = True
        return PseudonymKey(DEVELOPMENT_KEY, "development")
    scope = (
        f" or the Databricks secret {p.databricks_secret_key!r} in scope "
        f"{p.databricks_secret_scope!r}"
        if p.databricks_secret_scope
        else " (or privacy.databricks_secret_scope on Databricks)"
    )
    raise PseudonymKeyError(
        f"privacy: no pseudonym key: set the environment variable {p.pseudonym_key_env}"
        f"{scope}; published customer ids are HMAC-SHA256 pseudonyms under it"
    )
