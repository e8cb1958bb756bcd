"""Every chapter executes headless at `ci` (the organism) and at `smol` (SmolLM2-135M-Instruct on
ALMA), and the real book builds from them, one part per profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from radis_utils import runbook

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("profile", list(runbook.BOOK_PARTS))
def test_every_chapter_executes(built_book, profile):
    runs = built_book.runs[profile]
    failed = {r.name: r.error for r in runs if not r.ok}
    assert not failed, failed
    assert len(runs) == len(runbook.chapters(runbook.project_root() / "notebooks"))


def test_the_book_builds_from_the_executed_chapters(built_book):
    book = built_book.root
    log = built_book.build_log.read_text(errors="replace")
    assert built_book.build_code == 0, f"jupyter-book build failed; the end of its log:\n{log[-3000:]}"
    toc = (book / "_toc.yml").read_text()
    for profile, runs in built_book.runs.items():
        part = runbook.part_dir(book, profile)
        listed = [part / r.name for r in runs if f"{part.relative_to(book).as_posix()}/{Path(r.name).stem}" in toc]
        assert listed, f"no chapter of the {profile} part is in _toc.yml"
        assert runbook.check_book(book, listed) == []
        for nb in listed:
            page = (book / "_build" / "html" / nb.relative_to(book)).with_suffix(".html")
            assert f"profile      : {profile}" in page.read_text(), f"{page} does not show its profile"


def test_every_chapter_is_in_the_toc(root):
    toc = (root / "_toc.yml").read_text()
    for nb in runbook.chapters(root / "notebooks"):
        assert f"book/chapters/{nb.stem}" in toc, f"{nb.name} missing from _toc.yml"
    smol = [nb.stem for nb in runbook.chapters(root / "notebooks") if f"book/smol/{nb.stem}" in toc]
    assert {"02_observation", "03_synthesis", "05_training", "06_evaluation"} <= set(smol), smol
