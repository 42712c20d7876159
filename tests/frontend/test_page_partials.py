"""Shared page parts (#13): the planning and CO2 pages' header, and the log-in form's fields
of those pages and the operator console, are written once (frontend/partials/*.html) and put into each page at build by the Vite plugin in
frontend/page-partials.js. The built pages carry their own title in the shared header; a
marker naming no part, or a part's slot left without a value, fails the build."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
DIST = FRONTEND / "dist"
PAGES = {"planning.html": "plTitle", "emissions.html": "co2Title"}


@pytest.mark.parametrize(("page", "title"), sorted(PAGES.items()))
def test_built_pages_carry_the_shared_header_and_login(page: str, title: str) -> None:
    source = (FRONTEND / page).read_text(encoding="utf-8")
    assert f"<!-- partial: header title={title} -->" in source
    assert "<header>" not in source  # written once, in the partial
    built = DIST / page
    assert built.is_file(), "frontend/dist is not built: cd frontend && npm run build"
    html = built.read_text(encoding="utf-8")
    assert "partial:" not in html and "{{" not in html
    header = re.search(r"<header>.*?</header>", html, re.S)
    assert header, "the header is in the static page"
    for needle in (
        f'<span data-i18n="{title}"></span></h1>',
        'class="navlink" data-i18n="backToPlanner"',
        'id="whoami"',
        'id="lang-toggle"',
        'id="logout"',
    ):
        assert needle in header.group(0), needle
    _assert_login(html)
    # Indented as the marker was: the part's lines sit under <body>.
    assert "\n    <header>\n      <h1>" in html


def _assert_login(html: str) -> None:
    """The log-in form's fields, once, inside the page's own form."""
    form = re.search(r'<form id="login-form"[^>]*>(.*?)</form>', html, re.S)
    assert form and html.count('id="login-form"') == 1
    for needle in ('name="email" type="email"', 'name="password"', 'id="auth-error"'):
        assert form.group(1).count(needle) == 1, needle


def test_operator_console_logs_in_with_the_shared_form() -> None:
    assert "<!-- partial: login -->" in (FRONTEND / "operator.html").read_text(encoding="utf-8")
    built = DIST / "operator.html"
    assert built.is_file(), "frontend/dist is not built: cd frontend && npm run build"
    html = built.read_text(encoding="utf-8")
    assert "partial:" not in html
    _assert_login(html)


def _expand(html: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run the plugin's expandPartials on ``html`` with the parts in ``tmp_path``."""
    node = shutil.which("node")
    assert node, "node (the frontend's build runs on it) is not installed"
    script = (
        f"import {{ expandPartials }} from {json.dumps(str(FRONTEND / 'page-partials.js'))};"
        f"process.stdout.write(expandPartials({json.dumps(html)}, {json.dumps(str(tmp_path))}));"
    )
    return subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_expansion_fills_slots_and_refuses_typos(tmp_path: Path) -> None:
    (tmp_path / "head.html").write_text("<h1>{{ title }}</h1>\n<p>x</p>\n", encoding="utf-8")
    ok = _expand("<body>\n  <!-- partial: head title=plTitle -->\n</body>", tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "<body>\n  <h1>plTitle</h1>\n  <p>x</p>\n</body>"
    missing = _expand("  <!-- partial: nothere -->", tmp_path)
    assert missing.returncode != 0 and 'unknown partial "nothere"' in missing.stderr
    no_value = _expand("<!-- partial: head -->", tmp_path)
    assert no_value.returncode != 0 and "needs title=" in no_value.stderr
    extra = _expand("<!-- partial: head title=a colour=b -->", tmp_path)
    assert extra.returncode != 0 and "no slot for colour" in extra.stderr
    # Not a marker (inside a line): left as it is.
    inline = "<p><!-- partial: nothere --></p>"
    assert _expand(inline, tmp_path).stdout == inline
