"""The rendered book, tested the way a reader meets it: in a real browser, with no network.

One session builds the book (`jupyter-book build -W --keep-going`) into a temporary folder,
serves it on 127.0.0.1 and opens every page of `_toc.yml` (plus the API page) in headless
Chromium (Debian's `/usr/bin/chromium`, installed by `tools/install_browser.sh`, driven by the
`playwright` package; no browser is downloaded). Every request that is not for the local server
is recorded and aborted. A page fails on: a request that left the machine, a page or console
error, an HTTP error for any resource, an image that did not load, a `#anchor` with no target,
math that MathJax did not typeset (or typeset as an error), a code cell with an error output
(unless the cell is tagged `raises-exception`). The first page of every part of `_toc.yml` (and the
root and the API page) is checked again as file://, the way a reader opens `_build/html` without a
server, and a page with one fault of each kind proves that the checks catch them.

The static tests need no browser: the build has no warning; the built HTML and CSS reference no
http(s) script, stylesheet, font or image; every local link and its anchor resolve; MathJax is
served from the site itself.

`MINI_DL_SCREENSHOTS=/some/dir` also saves a full-page PNG of every page there.
Without Chromium (and no way to install it) the browser tests skip, unless CI=true: then they fail.
"""
from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the browser fixture then skips (or fails under CI=true) with a clear reason
    PlaywrightTimeout = TimeoutError

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
API_PAGE = "book/api"


def toc_pages() -> list[str]:
    """Every document of `_toc.yml` (root first, reading order) plus the API page, no suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))

    walk(toc)
    pages = [str(Path(page).with_suffix("")) for page in pages]
    return list(dict.fromkeys(pages + [API_PAGE]))


def part_openings() -> list[str]:
    """The root, the first page of every part of `_toc.yml`, and the API page. Opened as file://
    they fetch every kind of file the site has (its shared scripts, stylesheets and MathJax
    with its fonts, figures, Markdown and notebook pages) the way every other page does; each
    page's own content is checked over http by `test_page_in_browser`."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    firsts = [part["chapters"][0]["file"] for part in toc.get("parts", []) if part.get("chapters")]
    pages = [str(Path(page).with_suffix("")) for page in [toc["root"], *firsts]]
    return list(dict.fromkeys(pages + [API_PAGE]))


def unavailable(reason: str):
    """Skip a browser test for a reader's machine without Chromium; under CI=true, fail."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)")
    pytest.skip(reason)


# --- the built site -----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The book built once per session, warnings as errors; the folder of its HTML."""
    out = tmp_path_factory.mktemp("book")
    build = subprocess.run(
        [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT), "-W",
         "--keep-going", "--path-output", str(out)],
        check=False, capture_output=True, text=True, cwd=ROOT,
    )
    html_dir = out / "_build" / "html"
    if not (html_dir / "index.html").exists():
        pytest.fail(f"jupyter-book wrote no HTML:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}")
    html_dir.joinpath("build.log").write_text(build.stdout + build.stderr)
    html_dir.joinpath("build.rc").write_text(str(build.returncode))
    return html_dir


def test_build_has_no_warnings(site):
    log = re.sub(r"\x1b\[[0-9;]*m", "", site.joinpath("build.log").read_text())
    warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
    assert site.joinpath("build.rc").read_text() == "0" and not warnings, "\n".join(warnings)


class References(html.parser.HTMLParser):
    """URLs an HTML page makes the browser fetch: scripts, stylesheets, fonts, icons, media."""

    FETCHING_LINKS = frozenset({"stylesheet", "preload", "modulepreload", "prefetch", "icon",
                                "preconnect", "dns-prefetch", "manifest", "apple-touch-icon"})

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.update(attrs[key] for key in ("id", "name") if attrs.get(key) and tag != "meta")
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            content = attrs.get("content") or ""
            self.links.append(re.sub(r"^.*?url=", "", content, flags=re.IGNORECASE))
        if tag == "link" and self.FETCHING_LINKS & set((attrs.get("rel") or "").lower().split()):
            self.urls.append(attrs.get("href") or "")
        elif tag in ("script", "img", "iframe", "source", "audio", "video", "embed", "track"):
            self.urls.append(attrs.get("src") or "")
        elif tag == "object":
            self.urls.append(attrs.get("data") or "")
        if "style" in attrs:
            self.styles.append(attrs["style"] or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")
EXTERNAL = re.compile(r"^(https?:)?//", re.IGNORECASE)


def test_html_and_css_reference_nothing_remote(site):
    """Static check, no browser: no http(s) (or protocol-relative) script, stylesheet, font or
    image URL in any built .html or .css file (data: URLs and XML namespaces are fine)."""
    remote = []
    for page in sorted(site.rglob("*.html")):
        parser = References()
        parser.feed(page.read_text(errors="replace"))
        css_urls = [a or b for style in parser.styles for a, b in CSS_URL.findall(style)]
        remote += [f"{page.relative_to(site)}: {url}" for url in parser.urls + css_urls
                   if EXTERNAL.match(url.strip())]
    for sheet in sorted(site.rglob("*.css")):
        remote += [f"{sheet.relative_to(site)}: {a or b}"
                   for a, b in CSS_URL.findall(sheet.read_text(errors="replace"))
                   if EXTERNAL.match((a or b).strip())]
    assert not remote, "remote resources:\n" + "\n".join(remote)


def test_local_links_and_anchors_resolve(site):
    """Static check of every built page: each relative link (between chapters, to the API page,
    to the highlighted source, to the .ipynb download) names a file of the site, and its
    `#anchor` an id in that file."""
    pages = {}
    for page in site.rglob("*.html"):
        pages[page] = References()
        pages[page].feed(page.read_text(errors="replace"))
    broken = []
    for page, parser in sorted(pages.items()):
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not (parts.path or parts.fragment):
                continue  # an external link (not fetched by the page) or "#"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{page.relative_to(site)}: {link} (no such file)")
            elif parts.fragment and target.suffix == ".html" and target in pages \
                    and unquote(parts.fragment) not in pages[target].ids:
                broken.append(f"{page.relative_to(site)}: {link} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_mathjax_is_served_by_the_site(site):
    """Pages load MathJax from `_static/mathjax/` (copied there after the build by
    sphinx-mathjax-offline), never a CDN, and only its entry script, not all its components."""
    assert (site / "_static/mathjax/tex-chtml.js").is_file()
    assert (site / "_static/mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()
    for page in sorted(site.rglob("*.html")):
        parser = References()
        parser.feed(page.read_text(errors="replace"))
        mathjax = [url for url in parser.urls if "mathjax" in url.lower()]
        name = page.relative_to(site)
        assert all(url.split("?")[0].endswith("_static/mathjax/tex-chtml.js") for url in mathjax), \
            f"{name}: {mathjax}"
        assert len(mathjax) <= 1, f"{name} loads MathJax components as page scripts: {mathjax}"


# --- the browser --------------------------------------------------------------------------------

SELFTEST_PAGE = "__selftest__.html"
SELFTEST_HTML = r"""<!DOCTYPE html><html><head>
<script>window.MathJax = {options: {processHtmlClass: "math"}}</script>
<script defer src="_static/mathjax/tex-chtml.js"></script></head><body>
<span class="math">\(\color{red}{x}\)</span> <span class="math">\(x^{2\)</span>
<span class="math">\(\frac{a}\)</span> <span class="math">\(\undefinedmacro x\)</span>
<img src="missing.png"> <img src="https://example.com/remote.png">
<a href="#nowhere">broken</a> <a id="fine" href="#fine">fine</a>
<div class="cell"><div class="cell_output"><pre>Traceback (most recent call last)</pre></div></div>
<div class="cell tag_raises-exception"><div class="output traceback">raises on purpose</div></div>
<script>console.error("from the self-test"); throw new Error("thrown by the self-test")</script>
</body></html>"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def do_GET(self):
        if self.path == "/" + SELFTEST_PAGE:
            body = SELFTEST_HTML.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        # Chromium asks every server for /favicon.ico on its own; the book does not reference one.
        if self.path == "/favicon.ico" and not Path(self.directory, "favicon.ico").exists():
            self.send_response(204)
            self.end_headers()
            return
        super().do_GET()


@pytest.fixture(scope="session")
def server(site):
    """The built site on http://127.0.0.1:<free port>/."""
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser_context(tmp_path_factory, server):
    """Headless Chromium with a fresh profile; any request not for `server` is aborted and
    recorded in `context.remote_requests`."""
    if not os.access(CHROMIUM, os.X_OK):
        install = subprocess.run([str(ROOT / "tools/install_browser.sh")], check=False,
                                 capture_output=True, text=True)
        if not os.access(CHROMIUM, os.X_OK):
            unavailable(f"no Chromium at {CHROMIUM} and tools/install_browser.sh could not "
                        f"install it: {install.stderr.strip()[-500:]}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is missing: pip install -e '.[test]'")

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, service_workers="block",
            viewport={"width": 1280, "height": 900},
        )
        context.remote_requests = []
        # Under `make test` the other worker runs notebooks beside this one: the book's largest
        # pages (figures inlined as data) then take more than Playwright's default 30 s to load
        # and typeset on 2 cores. A broken page fails on what it shows, not on how long it took.
        context.set_default_timeout(180_000)

        def route(request_route):
            url = request_route.request.url
            if url.startswith(server) or urlsplit(url).scheme in ("data", "blob", "about", "file"):
                request_route.continue_()
            else:
                context.remote_requests.append(url)
                request_route.abort("blockedbyclient")

        context.route("**/*", route)
        yield context
        context.close()


# Runs in the page after MathJax's startup promise (initial typesetting done): every problem found.
PAGE_CHECKS_JS = r"""
() => {
  const problems = [];
  const text = (el) => (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 120);
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push(`image did not load: ${img.src}`);
  }
  for (const a of document.querySelectorAll('a[href^="#"]')) {
    const id = decodeURIComponent(a.getAttribute("href").slice(1));
    if (id && !document.getElementById(id) && !document.getElementsByName(id).length)
      problems.push(`anchor #${id} has no target (link text: "${text(a)}")`);
  }
  for (const el of document.querySelectorAll(".math")) {
    if (!el.querySelector("mjx-container")) problems.push(`math not typeset: ${text(el)}`);
  }
  for (const el of document.querySelectorAll("mjx-merror")) {
    problems.push(`MathJax error: ${el.getAttribute("data-mjx-error") || text(el)}`);
  }
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const item of MathJax.startup.document.math) {
      const mml = MathJax.startup.toMML(item.root);
      const undefinedMacro = mml.match(/<mtext mathcolor="red">(\\[^<]*)<\/mtext>/);
      if (undefinedMacro) problems.push(`undefined TeX macro ${undefinedMacro[1]} in: ${item.math}`);
    }
  }
  const errorOutputs = ".output.error, .output.traceback, .output_traceback, .output_error";
  for (const cell of document.querySelectorAll(".cell")) {
    if (cell.classList.contains("tag_raises-exception")) continue;  // declared by its author
    const outputs = cell.querySelectorAll(".cell_output, .output");
    const failed = cell.querySelector(errorOutputs)
      || Array.from(outputs).find((out) => out.textContent.includes("Traceback"));
    if (failed) problems.push(`code cell with an error output: ${text(failed)}`);
  }
  return problems;
}
"""


# A page has settled when no image is still loading and the document's fonts are loaded.
SETTLED_JS = """() => Array.from(document.images).every((img) => img.complete)
                      && document.fonts.status === 'loaded'"""
PENDING_JS = """() => `images still loading: ${Array.from(document.images)
    .filter((img) => !img.complete).map((img) => img.src.slice(0, 80)).join(", ") || "none"}; `
  + `fonts: ${document.fonts.status}`"""
SETTLE_TIMEOUT_MS = 120_000


def problems_on(context, url: str, screenshot: Path | None = None) -> list[str]:
    """Open `url` in a new tab of `context`, wait for MathJax and the network to settle, and
    return every problem found (empty: the page is fine)."""
    problems = []
    remote_before = len(context.remote_requests)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(
        f"console error: {message.text} ({message.location.get('url')})")
        if message.type == "error" else None)
    page.on("response", lambda response: problems.append(
        f"HTTP {response.status}: {response.url}") if response.status >= 400 else None)
    page.on("requestfailed", lambda request: problems.append(
        f"request failed ({request.failure}): {request.url}"))
    try:
        response = page.goto(url, wait_until="load")
        if response is None or not response.ok:
            return [f"HTTP {response and response.status}: {url} (a page of _toc.yml not written?)"]
        if page.locator("script[src*='mathjax']").count():
            page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
            page.evaluate("() => MathJax.startup.promise")
        # Settled: every image decoded or failed, and the fonts MathJax asked for loaded. Not
        # Playwright's "networkidle" (500 ms with no request in flight), which it discourages:
        # on CI's Chromium one file:// page never reached it within 180 s (the same page passes
        # over http and here), and a hang names no fault.
        try:
            page.wait_for_function(SETTLED_JS, timeout=SETTLE_TIMEOUT_MS)
        except PlaywrightTimeout:
            problems.append(f"not settled after {SETTLE_TIMEOUT_MS // 1000} s: "
                            f"{page.evaluate(PENDING_JS)}")
        problems += page.evaluate(PAGE_CHECKS_JS)
        if screenshot:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    problems += [f"request left the machine (blocked): {url}"
                 for url in context.remote_requests[remote_before:]]
    return list(dict.fromkeys(problems))


@pytest.mark.parametrize("name", toc_pages())
def test_page_in_browser(name, browser_context, server):
    shots = os.environ.get("MINI_DL_SCREENSHOTS")
    screenshot = Path(shots, name.replace("/", "_") + ".png") if shots else None
    problems = problems_on(browser_context, server + f"{name}.html", screenshot)
    assert not problems, f"{name}.html:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", part_openings())
def test_page_opens_from_disk(name, browser_context, site):
    """A reader without a server opens `_build/html/index.html` (a redirect to the first page,
    checked by test_local_links_and_anchors_resolve): the same checks on the opening page of
    every part, opened as file:// (MathJax's fonts and extensions load from disk, too)."""
    if not (site / f"{name}.html").exists():
        pytest.skip("a missing page fails test_page_in_browser")
    problems = problems_on(browser_context, (site / f"{name}.html").as_uri())
    assert not problems, f"{name}.html (file://):\n" + "\n".join(problems)


def test_the_checks_catch_a_broken_page(browser_context, server):
    """The checker itself: a page with one of each fault (served from memory, see QuietHandler)."""
    problems = "\n".join(problems_on(browser_context, server + SELFTEST_PAGE))
    for expected in [
        "request left the machine (blocked): https://example.com/remote.png",
        "HTTP 404", "image did not load", "anchor #nowhere has no target",
        "math not typeset: \\(x^{2\\)", "MathJax error", "undefined TeX macro \\undefinedmacro",
        "code cell with an error output", "console error: from the self-test",
        "page error: thrown by the self-test",
    ]:
        assert expected in problems, f"missed {expected!r} in:\n{problems}"
    assert "\\color" not in problems and "#fine" not in problems and "raises" not in problems
