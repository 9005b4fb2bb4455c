"""Which LRS credential the platform uses, and connecting to the embedded LRS.

``LMS_XAPI_KEY``/``LMS_XAPI_SECRET`` win when set (an external LRS, or an
operator's explicit choice). Otherwise the platform reads the credential that
``flask lms xapi connect-embedded`` created in the embedded LRS and saved in the
instance folder (``xapi_credentials.json``, mode 0600, never committed), so a
development or single-node install needs no secret in its environment.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from lms_core.xapi.tincan_adapter import PlatformLRS

#: Scopes of the platform's own LRS client: it writes statements and may read its own back.
SCOPES = ("statements/write", "statements/read/mine")
#: The client's name as the LRS clients page lists it: a stored name, so in the
#: site's language (an English name sat on the Chinese page); older clients keep theirs.
CLIENT_NAME = "本平台（xAPI 发送端）"


class ConnectError(RuntimeError):
    pass


def credentials_path(app: Flask | None = None) -> Path:
    app = app or current_app
    configured = app.config.get("LMS_XAPI_CREDENTIALS_FILE")
    return Path(configured) if configured else Path(app.instance_path) / "xapi_credentials.json"


def saved_credentials(app: Flask | None = None) -> dict[str, str] | None:
    path = credentials_path(app)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConnectError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or not data.get("key") or not data.get("secret"):
        raise ConnectError(f"{path} does not hold a key and a secret")
    return {"key": str(data["key"]), "secret": str(data["secret"])}


def lrs_client(app: Flask | None = None) -> PlatformLRS:
    """The LRS client for delivery: explicit settings first, then the saved credential."""
    app = app or current_app
    config: Any = app.config
    key, secret = config.get("LMS_XAPI_KEY") or None, config.get("LMS_XAPI_SECRET") or None
    if key is None:
        saved = saved_credentials(app)
        if saved is not None:
            key, secret = saved["key"], saved["secret"]
    return PlatformLRS(
        config["LMS_XAPI_ENDPOINT"], key=key, secret=secret, timeout=float(config.get("LMS_XAPI_TIMEOUT") or 10)
    )


def connect_embedded(app: Flask | None = None, *, force: bool = False) -> tuple[str, bool]:
    """Create the platform's client in the embedded LRS and save it; returns (key, created).

    Idempotent: an existing saved credential whose client is still active is kept.
    The embedded LRS is reached through the ``lms_xapi_embedded_client`` hook: the
    core never imports the LRS, which is a plugin like any other.
    """
    from lms_core.pluginhost import get_plugin_manager

    app = app or current_app
    hook = get_plugin_manager(app).hook.lms_xapi_embedded_client
    if not hook.get_hookimpls():
        raise ConnectError(
            "the embedded LRS is not enabled: add lrs to LMS_PLUGINS, or set LMS_XAPI_KEY and "
            "LMS_XAPI_SECRET for an external LRS"
        )
    if app.config.get("LMS_XAPI_KEY"):
        raise ConnectError("LMS_XAPI_KEY is set: the platform uses that credential, not a saved one")
    saved = saved_credentials(app)
    keep_key = saved["key"] if saved is not None and not force else None
    answer = hook(name=CLIENT_NAME, scopes=SCOPES, keep_key=keep_key)
    if answer is None:
        raise ConnectError("no plugin created a client in the embedded LRS")
    key, secret = answer
    if secret is None:
        return key, False
    path = credentials_path(app)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"key": key, "secret": secret}, fh)
    os.replace(tmp, path)  # atomic: a reader sees the old file or the new one
    return key, True
