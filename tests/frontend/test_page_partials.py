"""Shared page parts (#13): the planning, CO2 and health pages' header, and the log-in form's
fields of the planning and CO2 pages and the operator console, are written once
(frontend/partials/*.html) and put into each page at build by the Vite plugin in
frontend/page-partials.js. The built pages carry their own title (and the health page its own
back link) in the shared header; a marker naming no part, or a part's slot left without a
value or a default, fails the build."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
DIST = FRONTEND / "dist"
# page: (its header marker's values, the title key, the back link's class and text key).
# The planning and CO2 pages take the back link's defaults; the health page names its own.
PAGES = {
    "planning.html": ("title=plTitle", "plTitle", "navlink", "backToPlanner"),
    "emissions.html": ("title=co2Title", "co2Title", "navlink", "backToPlanner"),
    "health.html": ("title=hTitle back=hBack backClass=nav-link", "hTitle", "nav-link", "hBack"),
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_built_pages_carry_the_shared_header_and_a_login_form(page: str) -> None:
    marker, title, link_class, back = PAGES[page]
    source = (FRONTEND / page).read_text(encoding="utf-8")
    assert f"<!-- partial: header {marker} -->" in source
    assert "<header>" not in source  # written once, in the partial
    built = DIST / page
    assert built.is_file(), "frontend/dist is not built: cd frontend && npm run build"
    html = built.read_text(encoding="utf-8")
    assert "partial:" not in html and "{{" not in html
    header = re.search(r"<header>.*?</header>", html, re.S)
    assert header, "the header is in the static page"
    assert html.count("<header>") == 1
    for needle in (
        f'<span data-i18n="{title}"></span></h1>',
        f'<a href="/" class="{link_class}" data-i18n="{back}"></a>',
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


def _expanded(html: str, tmp_path: Path) -> str:
    """``html`` expanded; fails the test if the plugin refused it."""
    run = _expand(html, tmp_path)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _refusal(html: str, tmp_path: Path) -> str:
    """Why the plugin refused ``html`` (its error output); fails the test if it did not."""
    run = _expand(html, tmp_path)
    assert run.returncode != 0, run.stdout
    return run.stderr


def test_expansion_fills_slots_and_refuses_typos(tmp_path: Path) -> None:
    (tmp_path / "head.html").write_text("<h1>{{ title }}</h1>\n<p>x</p>\n", encoding="utf-8")
    ok = _expanded("<body>\n  <!-- partial: head title=plTitle -->\n</body>", tmp_path)
    assert ok == "<body>\n  <h1>plTitle</h1>\n  <p>x</p>\n</body>"
    assert 'unknown partial "nothere"' in _refusal("  <!-- partial: nothere -->", tmp_path)
    assert "needs title=" in _refusal("<!-- partial: head -->", tmp_path)
    assert "no slot for colour" in _refusal("<!-- partial: head title=a colour=b -->", tmp_path)
    # Not a marker (inside a line): left as it is.
    inline = "<p><!-- partial: nothere --></p>"
    assert _expanded(inline, tmp_path) == inline


def test_a_slot_default_serves_where_the_marker_gives_no_value(tmp_path: Path) -> None:
    (tmp_path / "link.html").write_text(
        '<a class="{{ cls = nav-link }}" data-i18n="{{back=backToPlanner}}">{{title}}</a>\n',
        encoding="utf-8",
    )
    default = _expanded("<!-- partial: link title=t -->", tmp_path)
    assert default == '<a class="nav-link" data-i18n="backToPlanner">t</a>'
    own = _expanded("<!-- partial: link title=t back=hBack cls=x.y -->", tmp_path)
    assert own == '<a class="x.y" data-i18n="hBack">t</a>'
    # A default does not stand in for a slot that has none, nor take values for no slot.
    assert "needs title=" in _refusal("<!-- partial: link back=hBack -->", tmp_path)
    assert "no slot for bakc" in _refusal("<!-- partial: link title=t bakc=hBack -->", tmp_path)
