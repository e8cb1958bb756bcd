"""Open every page of a built book in headless Chromium and check what a reader would see.

``python -m radis_utils.browser [--root .]`` checks ``ROOT/_build/html`` page by
page (the pages listed in ``_toc.yml``): every image loads, and a chapter shows at least one
image per image output of its executed notebook; no traceback or error output is displayed;
every link to a local file resolves, anchors included; a chapter shows the profile it ran with
(the ``profile      : ci`` line of ``models.environment_report``); math is typeset by the
book's own MathJax (no CDN, no raw LaTeX left). A full-page screenshot of each page goes to
``ROOT/_build/screenshots/<page>.png`` (e.g. ``book/smol/06_evaluation.png``). Needs Debian's
``chromium`` and ``chromium-driver`` (``make test`` installs them) and Selenium; Selenium
Manager is never asked to download anything.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .config import BOOK_PARTS

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,1000"]
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
REMOVED = {"remove-cell", "remove_cell", "remove-output", "remove_output"}
RAW_TEX = ("$$", "\\(", "\\)", "\\[", "\\]", "\\begin{")

# Runs in the page (async): waits for images and MathJax, then reports what the reader sees.
PAGE_JS = r"""
const done = arguments[arguments.length - 1];
const sleep = ms => new Promise(r => setTimeout(r, ms));
(async () => {
  if (!document.body) throw new Error('no document body (the page was being replaced)');
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? 0 : Promise.race([
    new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r); }), sleep(15000)])));
  let mathjax = 'absent';
  if (!document.querySelector('script[src*="mathjax" i]')) { mathjax = 'not included'; }
  else if (document.querySelector('.math')) {
    const t0 = Date.now();
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise) && Date.now() - t0 < 20000)
      await sleep(100);
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      try { await MathJax.startup.promise; mathjax = 'ok'; } catch (e) { mathjax = 'error: ' + e; }
    } else { mathjax = 'did not load'; }
  }
  const skip = 'pre, code, script, style, textarea, mjx-container, .math';  // .math: see untypeset
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const rawTex = [];
  for (let n; (n = walker.nextNode());) {
    if (n.parentElement && !n.parentElement.closest(skip) && RAW.some(d => n.nodeValue.includes(d)))
      rawTex.push(n.nodeValue.trim().slice(0, 80));
  }
  const math = [...document.querySelectorAll('.math')];
  done({
    images: imgs.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
    errors: [...document.querySelectorAll(
        '.output.traceback, .output.error, .output_error, .system-message')]
        .map(e => e.innerText.trim().slice(0, 200)),
    stderr: [...document.querySelectorAll('.output.stderr, .stderr')].map(e => e.innerText),
    text: document.body.innerText,
    links: [...document.querySelectorAll('a[href]')].map(a => [a.getAttribute('href'), a.href]),
    ids: [...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.getAttribute('name')),
    scripts: [...document.scripts].map(s => s.src)  // the combined files, not autoloaded parts
        .filter(s => /mathjax/i.test(s) && /\/(tex|mml)-[\w-]*\.js(\?|$)/.test(s)),
    mathjax: mathjax, math: math.length,
    untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
    merror: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent.slice(0, 80)),
    rawTex: rawTex,
  });
})().catch(e => done({fatal: String(e)}));
""".replace("RAW", json.dumps(RAW_TEX))

TRACEBACK_RE = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b[^\n]*:", re.M)
# The first line of models.environment_report, e.g. "profile      : ci  (config 1a2b3c4d)".
PROFILE_LINE = r"^profile\s*:\s*{}\b"


@dataclass
class PageReport:
    """What one page showed: the problems found and a few counts."""

    doc: str
    problems: list[str] = field(default_factory=list)
    images: int = 0
    math: int = 0
    screenshot: Path | None = None


def find_browser() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` paths from $CHROMIUM/$CHROMEDRIVER or PATH, else None."""
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def start_browser(browser: str, driver: str, profile_dir: str):
    """Headless Chromium driven by the given chromedriver (no Selenium Manager, no network)."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    opts.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})  # failed loads, for check_page
    for flag in FLAGS + [f"--user-data-dir={profile_dir}"]:
        opts.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    chrome.set_script_timeout(60)
    chrome.set_page_load_timeout(60)
    return chrome


def toc_docs(root: Path) -> list[str]:
    """The documents of ``_toc.yml`` in book order (``root`` first), without suffix."""
    import yaml

    def walk(node):
        if isinstance(node, dict):
            yield from (node[k] for k in ("root", "file") if isinstance(node.get(k), str))
            node = list(node.values())
        for item in node if isinstance(node, list) else []:
            yield from walk(item)

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    return [re.sub(r"\.(md|ipynb)$", "", doc) for doc in walk(toc)]


def expected_images(source: Path) -> int:
    """Image outputs of an executed notebook that its page must show (0 for other sources)."""
    if source.suffix != ".ipynb" or not source.is_file():
        return 0
    count = 0
    for cell in json.loads(source.read_text()).get("cells", []):
        if REMOVED & set(cell.get("metadata", {}).get("tags", [])):
            continue
        count += sum(any(m in out.get("data", {}) for m in IMAGE_MIMES) for out in cell.get("outputs", []))
    return count


def link_problems(html_dir: Path, links: list[list[str]], ids: set[str]) -> list[str]:
    """Local links whose file, or anchor in that file, does not exist under ``html_dir``."""
    problems, cache = [], {}
    for raw, absolute in links:
        if raw.startswith("#"):
            if raw[1:] and unquote(raw[1:]) not in ids:
                problems.append(f"broken anchor {raw}")
            continue
        url = urlsplit(absolute)
        if url.scheme != "file":
            continue  # http(s), mailto, javascript: not checked offline
        target = Path(unquote(url.path))
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"broken link {raw}")
        elif url.fragment and target.suffix == ".html":
            if target not in cache:
                text = target.read_text(errors="replace")
                cache[target] = set(re.findall(r'\b(?:id|name)="([^"]+)"', text))
            if unquote(url.fragment) not in cache[target]:
                problems.append(f"broken anchor {raw}")
        if html_dir.resolve() not in target.resolve().parents:
            problems.append(f"link leaves the book: {raw}")
    return problems


def wait_until_loaded(chrome, url: str, timeout: float = 60.0) -> bool:
    """Whether ``url`` is the current document, fully loaded with a body, within ``timeout`` s.

    ``chrome.get`` can return while Chromium still shows the previous document or a new one
    without a body yet (seen under load), so the page script waits for this first."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    check = ("return document.readyState === 'complete' && document.body !== null"
             " && location.href.split('#')[0] === arguments[0];")
    try:
        WebDriverWait(chrome, timeout, poll_frequency=0.1).until(lambda d: d.execute_script(check, url))
        return True
    except TimeoutException:
        return False


def open_and_inspect(chrome, url: str, attempts: int = 3) -> dict:
    """Load ``url`` and run ``PAGE_JS`` on it; a load that never completes, or a script that
    ran on a document being replaced, is retried (``attempts`` in all) before it is reported."""
    seen: dict = {}
    for _ in range(attempts):
        chrome.get(url)
        if not wait_until_loaded(chrome, url):
            seen = {"fatal": f"page did not finish loading: {url}"}
            continue
        seen = chrome.execute_async_script(PAGE_JS)
        if "fatal" not in seen:
            return seen
    return seen


def check_page(chrome, html_dir: Path, doc: str, source: Path | None = None,
               profile: str | None = None, shots: Path | None = None) -> PageReport:
    """Open ``html_dir/doc.html`` and report its problems (see the module docstring)."""
    report = PageReport(doc)
    page = html_dir / f"{doc}.html"
    if not page.is_file():
        report.problems.append(f"page missing: {page}")
        return report
    chrome.get_log("browser")  # drop the previous page's messages
    seen = open_and_inspect(chrome, page.resolve().as_uri())
    if "fatal" in seen:
        report.problems.append(f"page script failed: {seen['fatal']}")
        return report
    bad = report.problems
    report.images, report.math = len(seen["images"]), seen["math"]
    broken_imgs = tuple(i["src"] for i in seen["images"] if not i["ok"])
    bad += [f"image does not load: {src}" for src in broken_imgs]
    failed = [re.sub(r"\s.*", "", e["message"]) for e in chrome.get_log("browser")
              if "Failed to load resource" in e["message"]]  # "URL - Failed to load resource: ..."
    bad += [f"resource does not load: {u}" for u in failed if not u.endswith(broken_imgs)]
    want = expected_images(source) if source else 0
    if report.images < want:
        bad.append(f"{report.images} image(s) on the page, {want} image output(s) in {source.name}")
    bad += [f"error output shown: {e!r}" for e in seen["errors"]]
    bad += [f"traceback in stderr: {s.strip()[:200]!r}" for s in seen["stderr"] if TRACEBACK_RE.search(s)]
    if "Traceback (most recent call last)" in seen["text"] and not seen["errors"]:
        bad.append("'Traceback (most recent call last)' shown on the page")
    bad += link_problems(html_dir, seen["links"], set(seen["ids"]))
    if profile and not re.search(PROFILE_LINE.format(re.escape(profile)), seen["text"], re.M):
        bad.append(f"no 'profile      : {profile}' line (models.environment_report) on the page")
    bad += [f"MathJax from the network: {s}" for s in seen["scripts"] if not s.startswith("file:")]
    if len(seen["scripts"]) > 1:
        bad.append(f"MathJax included {len(seen['scripts'])} times")
    if seen["math"] and seen["mathjax"] != "ok":
        bad.append(f"MathJax {seen['mathjax']} (scripts: {seen['scripts']})")
    bad += _summary("math element(s) not typeset", seen["untypeset"])
    bad += _summary("TeX error(s)", seen["merror"])
    bad += _summary("raw LaTeX text(s) shown", seen["rawTex"])
    if shots is not None:
        report.screenshot = screenshot(chrome, Path(shots) / f"{doc}.png")  # one per part: book/smol/...
    return report


def _summary(what: str, items: list[str], show: int = 3) -> list[str]:
    """One problem line for a list of findings: the count and the first few."""
    return [f"{len(items)} {what}, e.g. {items[:show]}"] if items else []


def screenshot(chrome, path: Path) -> Path:
    """Full-page PNG through the DevTools protocol (the viewport only if that fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = chrome.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 30000), "scale": 1}
        shot = chrome.execute_cdp_cmd("Page.captureScreenshot",
                                      {"format": "png", "captureBeyondViewport": True, "clip": clip})
        path.write_bytes(base64.b64decode(shot["data"]))
    except Exception:  # noqa: BLE001 - a viewport shot is better than none
        chrome.save_screenshot(str(path))
    return path


def part_profile(doc: str, default: str | None = None) -> str | None:
    """The profile a chapter page must show: its book part's (``config.BOOK_PARTS``), else ``default``."""
    return next((p for p, folder in BOOK_PARTS.items() if doc.startswith(folder + "/")), default)


def check_book(root: Path, profile: str | None = None, shots: Path | None = None,
               browser: tuple[str, str] | None = None) -> list[PageReport]:
    """Check every page of ``_toc.yml`` in ``root/_build/html``; a chapter must show its part's
    profile (``profile`` for a page outside the book's parts)."""
    root = Path(root).resolve()
    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError("chromium and chromedriver not found (apt-get install chromium chromium-driver)")
    html_dir = root / "_build" / "html"
    reports = []
    with tempfile.TemporaryDirectory(prefix="radis-chromium-") as user_data:
        chrome = start_browser(*browser, user_data)
        try:
            for doc in toc_docs(root):
                nb = root / f"{doc}.ipynb"
                source = nb if nb.is_file() else None
                reports.append(check_page(chrome, html_dir, doc, source,
                                          part_profile(doc, profile) if source else None, shots))
        finally:
            chrome.quit()
    return reports


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: print one line per page and its problems; non-zero if any."""
    from .config import project_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="book root (default: project root)")
    parser.add_argument("--profile", default=None,
                        help="profile a chapter outside the book's parts must show (default: none checked)")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="folder for screenshots (default: ROOT/_build/screenshots)")
    args = parser.parse_args(argv)
    root = (args.root or project_root()).resolve()
    reports = check_book(root, args.profile, args.screenshots or root / "_build" / "screenshots")
    for r in reports:
        print(f"[{'ok' if not r.problems else 'FAILED':>6}] {r.doc:<36} {r.images} image(s), "
              f"{r.math} math, screenshot {r.screenshot}")
        for p in r.problems:
            print(f"         - {p}")
    return int(any(r.problems for r in reports))


if __name__ == "__main__":
    raise SystemExit(main())
