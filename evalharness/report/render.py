"""Rendering self-contained HTML pages safely.

- Templates are package files rendered by Jinja2 with autoescaping on, so every name,
  prediction or setting that reaches markup is escaped.
- Data for scripts is embedded as JSON in ``<script type="application/json">`` with ``<``,
  ``>``, ``&`` and the two JavaScript line separators written as ``\\u`` escapes, so a
  value containing ``</script>`` or ``<!--`` cannot end the element; scripts read it with
  ``JSON.parse`` and put text in the page with ``textContent`` only.
- Each page carries a Content-Security-Policy that allows no network access at all and
  runs only the page's own inline scripts (by hash): even if something slipped through,
  injected markup could neither run nor fetch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING

from markupsafe import Markup

from evalharness.jsonvalues import JsonValue, float_of

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["asset", "content_security_policy", "embed_json", "render_page", "slugify"]

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def embed_json(data: JsonValue) -> Markup:
    """JSON that is safe as the text of a ``<script type="application/json">`` element."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Markup(re.sub("[<>&\u2028\u2029]", lambda match: _JSON_ESCAPES[match.group(0)], text))


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """A stylesheet or script shipped in ``evalharness/report/templates``."""
    return files("evalharness.report").joinpath("templates", name).read_text(encoding="utf-8")


def _hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def content_security_policy(scripts: Sequence[str]) -> str:
    """No network, no plugins, no forms; only the given inline scripts may run."""
    script_src = " ".join(_hash(script) for script in scripts) or "'none'"
    return (
        "default-src 'none'; "
        f"script-src {script_src}; "
        "style-src 'unsafe-inline'; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


@lru_cache(maxsize=1)
def _environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    environment = Environment(
        loader=PackageLoader("evalharness.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = format_number
    return environment


def format_number(value: object, digits: int = 2) -> str:
    if value is None:
        return "–"
    number = float_of(value)
    if number is None:
        return str(value)
    if number != number or number in (float("inf"), float("-inf")):
        return "–"
    return f"{number:.{digits}f}"


def render_page(template: str, *, title: str, scripts: Sequence[str] = (), data: JsonValue = None, **context: object) -> str:
    """Render ``template`` into one HTML document with inline CSS, scripts and data."""
    from datetime import datetime, timezone

    from evalharness.version import __version__

    # One inline script per page (the assets concatenated, in order): one hash in the policy.
    code = ["\n".join(asset(name) for name in scripts)] if scripts else []
    context.setdefault("generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    return _environment().get_template(template).render(
        title=title,
        version=__version__,
        css=Markup(asset("style.css")),
        scripts=[Markup(script) for script in code],
        csp=content_security_policy(code),
        data=None if data is None else embed_json(data),
        **context,
    )


def slugify(name: str) -> str:
    """A file-name-safe, collision-free slug: ``glue/sst2`` -> ``glue-sst2-1a2b3c4d``.

    Only ``[a-z0-9-]`` survive, so no name (``../../etc``, ``/abs``, ``..``) can leave the
    folder it is written to; the hash keeps ``a/b`` and ``a-b`` apart.
    """
    stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48].strip("-") or "item"
    return f"{stem}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"
