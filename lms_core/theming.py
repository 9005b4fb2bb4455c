"""Themes: a folder of templates and static files that overrides the defaults.

Lookup order for a template: the active theme, the default theme, then the
blueprints' own folders (plugins). So a theme can override any template, core or
plugin, by putting a file at the same name.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, send_file, send_from_directory
from flask.templating import DispatchingJinjaLoader
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader

#: The repository's ``themes/`` folder; ``LMS_THEMES_DIR`` may point elsewhere.
THEMES_DIR = Path(__file__).resolve().parent.parent / "themes"


def theme_dirs(app: Flask) -> list[Path]:
    base = Path(app.config.get("LMS_THEMES_DIR") or THEMES_DIR)
    active = app.config["LMS_THEME"]
    dirs = [base / active]
    if active != "default":
        dirs.append(THEMES_DIR / "default")
    for d in dirs:
        if not d.is_dir():
            raise RuntimeError(f"theme folder {d} does not exist (LMS_THEME={active!r})")
    return dirs


class ThemedFlask(Flask):
    def create_global_jinja_loader(self) -> Any:
        loaders: list[BaseLoader] = [FileSystemLoader(str(d / "templates")) for d in theme_dirs(self)]
        loaders.append(DispatchingJinjaLoader(self))
        return ChoiceLoader(loaders)


def static(filename: str) -> Any:
    """Serve ``/static/<filename>`` from the active theme, falling back to the default."""
    for d in theme_dirs(current_app):
        folder = d / "static"
        if (folder / filename).is_file():
            return send_from_directory(folder, filename, max_age=3600)
    abort(404)


def favicon() -> Any:
    """``/favicon.ico``: browsers ask for it on every page (and on PDFs and JSON) whatever the HTML links.

    Served from memory (a few KB) rather than as an open file: browsers fetch it beside
    every page and often drop the request as the page goes away, and a dropped response
    should leave no file handle behind.
    """
    for d in theme_dirs(current_app):
        path = d / "static" / "favicon.ico"
        if path.is_file():
            stat = path.stat()
            return send_file(
                io.BytesIO(path.read_bytes()),
                mimetype="image/vnd.microsoft.icon",
                max_age=3600,
                etag=f"{stat.st_mtime_ns:x}-{stat.st_size:x}",
                last_modified=stat.st_mtime,
            )
    abort(404)


def init_app(app: Flask) -> None:
    app.add_url_rule("/static/<path:filename>", endpoint="static", view_func=static)
    app.add_url_rule("/favicon.ico", endpoint="favicon", view_func=favicon)
