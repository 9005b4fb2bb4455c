"""The plugin's HTTP endpoints (thin: parse, call a service, render)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("anti_idle", __name__, url_prefix="/anti-idle", template_folder="templates",
               static_folder="static", static_url_path="/anti-idle/static")
