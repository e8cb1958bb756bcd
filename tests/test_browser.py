"""What a reader sees: every page of the ci-built book opened in headless Chromium.

The slow test reuses the session's `built_book` (tests/conftest.py: chapters executed with
PROFILE=ci, book built once, shared with test_notebooks.py). Chromium and chromedriver are the
Debian packages that `make test` installs; without them these tests skip, except under CI
(env CI set, as .ci/run does), where a missing browser is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import tempfile

import pytest

from radis_utils import browser
from radis_utils.config import load_profile
from radis_utils.models import environment_report
from tests.conftest import ROOT

SCREENSHOTS = ROOT / "_build" / "screenshots"
PNG_1X1 = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


@pytest.fixture(scope="session")  # session: so it can skip before `built_book` executes
def chromium():
    found = browser.find_browser()
    if found is None:
        msg = ("chromium/chromedriver not found: `make test` installs them "
               "(apt-get install chromium chromium-driver), or set $CHROMIUM and $CHROMEDRIVER")
        if os.environ.get("CI"):
            pytest.fail(f"CI: {msg}")
        pytest.skip(msg)
    return found


@pytest.fixture(scope="module")
def chrome(chromium):
    with tempfile.TemporaryDirectory(prefix="radis-chromium-") as user_data:
        driver = browser.start_browser(*chromium, user_data)
        yield driver
        driver.quit()


@pytest.mark.slow
def test_every_page_of_the_built_book_in_chromium(chromium, built_book):
    assert built_book.build_code == 0, "the book did not build (see test_notebooks.py)"
    html = built_book.root / "_build" / "html"
    assert (html / "mathjax" / "tex-mml-chtml.js").is_file(), \
        "MathJax not vendored into the build: run `make mathjax` (book/vendor/mathjax)"
    reports = browser.check_book(built_book.root, None, SCREENSHOTS, chromium)
    docs = browser.toc_docs(built_book.root)
    assert [r.doc for r in reports] == docs and len(docs) > len(built_book.runs["ci"]) + 1
    problems = {r.doc: r.problems for r in reports if r.problems}
    (SCREENSHOTS / "problems.json").write_text(json.dumps(problems, indent=1))
    first = "; ".join(f"{doc}: {found[0]}" for doc, found in problems.items())  # the summary line
    assert not problems, f"{len(problems)} page(s) with problems: {first}\n{json.dumps(problems, indent=1)}"
    for r in reports:
        assert r.screenshot.is_file() and r.screenshot.stat().st_size > 10_000, r.doc
    assert len({r.screenshot for r in reports}) == len(reports), "two pages share a screenshot file"
    chapters = [r for r in reports if browser.part_profile(r.doc)]
    assert all(r.images >= 1 for r in chapters), {r.doc: r.images for r in chapters}
    assert sum(r.math for r in reports) > 0, "no page has math: the MathJax check ran on nothing"


def test_the_checks_catch_a_broken_page(tmp_path, chrome):
    (tmp_path / "fig.png").write_bytes(PNG_1X1)
    (tmp_path / "other.html").write_text('<html><body><h1 id="there">x</h1></body></html>')
    (tmp_path / "bad.html").write_text("""<html><body>
      <img src="missing.png"><img src="fig.png">
      <div class="output traceback"><pre>ValueError: boom</pre></div>
      <div class="output stderr"><pre>Traceback (most recent call last):\n  ...\nKeyError: 'x'</pre></div>
      <a href="nowhere.html">a</a> <a href="other.html#gone">b</a> <a href="#nope">c</a>
      <a href="other.html#there">ok</a> <a href="https://example.org/">external, not checked</a>
      <p>Raw $$x^2$$ here.</p> <span class="math">\\(y\\)</span>
      <pre>profile      : qlora  (config 0)</pre></body></html>""")
    nb = tmp_path / "bad.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "outputs": [
        {"output_type": "display_data", "data": {"image/png": "x"}}] * 3}]}))
    report = browser.check_page(chrome, tmp_path, "bad", nb, "ci", tmp_path / "shots")
    text = "\n".join(report.problems)
    for expected in ["image does not load: missing.png", "2 image(s) on the page, 3 image output",
                     "error output shown: 'ValueError: boom'", "traceback in stderr",
                     "broken link nowhere.html", "broken anchor other.html#gone",
                     "broken anchor #nope", "no 'profile      : ci' line",
                     "MathJax not included", "1 math element(s) not typeset",
                     "1 raw LaTeX text(s) shown"]:
        assert expected in text, f"{expected!r} not reported:\n{text}"
    assert len(report.problems) == 11, text
    assert report.screenshot.is_file()


def test_a_good_page_passes(tmp_path, chrome):
    (tmp_path / "fig.png").write_bytes(PNG_1X1)
    (tmp_path / "good.html").write_text("""<html><body><h2 id="top">t</h2><img src="fig.png">
      <a href="#top">up</a> <a href="good.html#top">self</a>
      <pre>profile      : ci  (config 0)</pre><pre>$$ not math in code $$</pre></body></html>""")
    assert browser.check_page(chrome, tmp_path, "good", None, "ci").problems == []


def test_profile_line_matches_the_environment_report():
    report = environment_report(load_profile("ci"))
    assert re.search(browser.PROFILE_LINE.format("ci"), report, re.M), report
    assert not re.search(browser.PROFILE_LINE.format("c"), report, re.M)


def test_toc_docs_and_expected_images(tmp_path):
    docs = browser.toc_docs(ROOT)
    assert docs[0] == "book/intro" and all(browser.part_profile(d) for d in docs[1:])
    assert browser.part_profile("book/smol/06_evaluation") == "smol"
    assert browser.part_profile("book/chapters/06_evaluation") == "ci"
    assert browser.part_profile("book/intro", "x") == "x"
    nb = tmp_path / "c.ipynb"
    fig = {"output_type": "display_data", "data": {"image/png": "x", "text/plain": "<Figure>"}}
    nb.write_text(json.dumps({"cells": [
        {"cell_type": "code", "metadata": {}, "outputs": [fig, {"output_type": "stream", "text": "x"}]},
        {"cell_type": "code", "metadata": {"tags": ["remove-output"]}, "outputs": [fig]}]}))
    assert browser.expected_images(nb) == 1
    assert browser.expected_images(tmp_path / "page.md") == 0
