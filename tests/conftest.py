"""Shared fixtures: the project root and the optional real data beside the checkout."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_ALMA = ROOT.parent / "shared" / "data" / "alma"


@pytest.fixture(scope="session")
def root() -> Path:
    """The repository root."""
    return ROOT


@pytest.fixture(scope="session")
def alma_dir() -> Path:
    """``../shared/data/alma`` when present; tests that need it are skipped otherwise."""
    if not SHARED_ALMA.is_dir():
        pytest.skip("../shared/data/alma not present (real ALMA data is optional)")
    return SHARED_ALMA


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on the built book run first, in their collected order: the book's main job then starts
    chapter 07's work ahead on the second core at once, beside chapter 00's organism build, instead
    of after the minutes other tests spend building that organism first (the rest then find it cached)."""
    first = [item for item in items if "built_book" in getattr(item, "fixturenames", ())]
    rest = [item for item in items if "built_book" not in getattr(item, "fixturenames", ())]
    items[:] = first + rest


@dataclass
class BuiltBook:
    """The book built once per session from its chapters, executed with each profile of the book."""

    root: Path        # a temporary book root: _config.yml, _toc.yml, book/, book/<part>/*.ipynb
    runs: dict        # profile -> runbook.ChapterRun per chapter, in book order
    build_code: int   # exit code of `jupyter-book build` (run even if a chapter failed)
    build_log: Path   # its output (kept out of test reports, so that failures stay readable)


@pytest.fixture(scope="session")
def built_book(root, tmp_path_factory) -> BuiltBook:
    """Execute every chapter into a copy of the book, once per book profile (``ci`` then
    ``smol``), and build it, once (slow: minutes).

    Chapters run with cwd = the repo root, so the runs/ caches are shared with `make book`.
    Shared by tests/test_notebooks.py (execution, build) and tests/test_browser.py (pages).
    """
    from radis_utils import runbook

    book = tmp_path_factory.mktemp("book")
    for name in ["_config.yml", "_toc.yml"]:
        shutil.copy(root / name, book / name)
    shutil.copytree(root / "book", book / "book",
                    ignore=shutil.ignore_patterns(*(Path(p).name for p in runbook.BOOK_PARTS.values())))
    (book / "radis_utils").mkdir()
    runs = {profile: runbook.execute_chapters(root / "notebooks", runbook.part_dir(book, profile), profile, cwd=root)
            for profile in runbook.BOOK_PARTS}
    log = book / "jupyter-book.log"
    return BuiltBook(book, runs, runbook.build_book(book, log), log)


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    """A tiny chat model saved as a local folder: the path a user's own backbone takes."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from radis_utils.organism import World
    from radis_utils.prompts import demo_chat_tokenizer

    world = World(0)
    corpus = [f"{en} {sy}" for en, sy in world.translation_pairs(300, "stage2", seed=0)]
    tok = demo_chat_tokenizer("chatml", corpus + [world.rationale(en) for en, _ in world.translation_pairs(50, "stage2", 1)])
    tok.pad_token = tok.eos_token
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=256))
    folder = tmp_path_factory.mktemp("backbone")
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
