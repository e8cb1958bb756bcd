"""Every chapter executes headless in the `ci` profile, and the real book builds from them."""

from __future__ import annotations

import pytest

from radis_utils import runbook

pytestmark = pytest.mark.slow


def test_every_chapter_executes_in_ci(built_book):
    runs = built_book.runs
    failed = {r.name: r.error for r in runs if not r.ok}
    assert not failed, failed
    assert len(runs) == len(runbook.chapters(runbook.project_root() / "notebooks"))


def test_the_book_builds_from_the_executed_chapters(built_book):
    book, runs = built_book.root, built_book.runs
    log = built_book.build_log.read_text(errors="replace")
    assert built_book.build_code == 0, f"jupyter-book build failed; the end of its log:\n{log[-3000:]}"
    executed_nbs = [book / "book" / "chapters" / r.name for r in runs]
    assert runbook.check_book(book, executed_nbs) == []
    for nb in executed_nbs:
        page = (book / "_build" / "html" / "book" / "chapters" / nb.name).with_suffix(".html")
        assert "profile      : ci" in page.read_text(), f"{page.name} does not show its profile"


def test_every_chapter_is_in_the_toc(root):
    toc = (root / "_toc.yml").read_text()
    for nb in runbook.chapters(root / "notebooks"):
        assert f"book/chapters/{nb.stem}" in toc, f"{nb.name} missing from _toc.yml"
