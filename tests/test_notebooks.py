"""Every chapter executes headless at `ci` (the organism) and at `smol` (SmolLM2-135M-Instruct on
ALMA), and the real book builds from them, one part per profile."""

from __future__ import annotations

import pytest

from radis_utils import runbook

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("profile", list(runbook.BOOK_PARTS))
def test_every_chapter_executes(built_book, profile):
    runs = built_book.runs[profile]
    failed = {r.name: r.error for r in runs if not r.ok}
    assert not failed, failed
    assert len(runs) == len(runbook.chapters(runbook.project_root() / "notebooks"))


def test_no_chapter_shows_an_empty_table(built_book):
    """An empty DataFrame on a page is a silent failure (a results format the chapter no longer
    reads); a table with nothing to show says so in words instead."""
    import json

    found = []
    for profile in built_book.runs:
        for nb in sorted(runbook.part_dir(built_book.root, profile).glob("*.ipynb")):
            for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
                for out in cell.get("outputs", []):
                    text = "".join(out.get("data", {}).get("text/plain", ""))
                    if text.startswith("Empty DataFrame"):
                        found.append(f"{profile}/{nb.name}: {text.splitlines()[:3]}")
    assert not found, found


def test_the_book_builds_from_the_executed_chapters(built_book):
    """What the main job checks (runbook.check_book on every chapter it executed, at every part):
    a page for each, no error output, and each page shows the profile it ran with."""
    book = built_book.root
    log = built_book.build_log.read_text(errors="replace")
    assert built_book.build_code == 0, f"jupyter-book build failed; the end of its log:\n{log[-3000:]}"
    for profile, runs in built_book.runs.items():
        executed = [runbook.part_dir(book, profile) / r.name for r in runs]
        assert runbook.check_book(book, executed) == []
        for nb in executed:
            page = (book / "_build" / "html" / nb.relative_to(book)).with_suffix(".html")
            assert f"profile      : {profile}" in page.read_text(), f"{page} does not show its profile"


def test_every_chapter_of_every_part_is_in_the_toc(root):
    """The main job executes every chapter in every part and fails on a missing page, so the
    table of contents lists them all."""
    toc = (root / "_toc.yml").read_text()
    missing = [f"{part}/{nb.stem}" for part in runbook.BOOK_PARTS.values()
               for nb in runbook.chapters(root / "notebooks") if f"file: {part}/{nb.stem}\n" not in toc]
    assert not missing, f"missing from _toc.yml: {missing}"


def test_smol_results_hold_every_column_of_tables_1_to_3(built_book, root):
    """What chapter 06 at `smol` leaves in runs/smol/results/: per model BLEU and chrF per direction
    with both averages, GSM8K and AdvBench (keyword judge) scored, MT-Bench and AlpacaEval answer
    files written (their judge skipped without an endpoint), and RP over what ran."""
    from radis_utils import evaluate
    from radis_utils.config import load_profile
    from radis_utils.evaluate import alpaca_eval, mt_bench

    assert all(r.ok for r in built_book.runs["smol"]), "a smol chapter failed (see test_every_chapter_executes)"
    cfg = load_profile("smol")
    for method in (evaluate.BACKBONE, "vanilla", "seqkd", "sdft", "radis"):
        path = evaluate.results_path(cfg, method, cfg.train.seeds[0])
        result = evaluate.read_results(path, cfg)
        table = result["translation"]
        assert set(cfg.data.directions) | {"avg_en_xx", "avg_xx_en"} <= set(table), (path, list(table))
        assert all(isinstance(table[d][m], float) for d in table for m in ("bleu", "chrf")), path
        assert {"gsm8k", "advbench"} <= set(result["general"]), (path, result["general"])
        details = result["general_details"]
        assert "keyword" in details["advbench"]["judge"], details["advbench"]
        assert details["gsm8k"]["n"] == cfg.eval.benchmark_limit
        folder = cfg.runs_dir / "results" / "general" / path.stem
        model_id = f"{cfg.profile}-{path.stem}"
        assert mt_bench.answer_file(folder, model_id).is_file() and alpaca_eval.outputs_file(folder, model_id).is_file()
        if method == evaluate.BACKBONE:
            assert result["rp"] == 100.0
            base = result["general"]
        elif result["rp"] is None:  # RP is undefined only when the backbone scored 0 on every benchmark
            assert result["rp_benchmarks"] == [] and not any(base.values()), (path, base)
        else:
            assert isinstance(result["rp"], float) and result["rp_benchmarks"], path
            assert set(result["rp_benchmarks"]) <= {b for b, v in base.items() if v}


@pytest.mark.parametrize("profile", list(runbook.BOOK_PARTS))
def test_the_books_adapters_load_and_merge_with_plain_peft_from_outside_the_checkout(built_book, profile, tmp_path,
                                                                                    monkeypatch):
    """A `ci` (organism) and a `smol` (SmolLM2) adapter, copied out of the checkout and loaded from
    another folder by peft alone, equal the project's own merged model."""
    import shutil

    import torch
    from peft import AutoPeftModelForCausalLM

    from radis_utils import models, train
    from radis_utils.config import load_profile

    assert all(r.ok for r in built_book.runs[profile]), f"a {profile} chapter failed"
    cfg = load_profile(profile)
    adapter = train.adapter_dir(cfg, "vanilla", cfg.train.seeds[0])
    ours = models.load_adapter(cfg, adapter, merge=True)
    copy = tmp_path / "copied" / adapter.name
    shutil.copytree(adapter, copy, ignore=shutil.ignore_patterns("checkpoints", "midpoint"))
    monkeypatch.chdir(tmp_path)
    plain = AutoPeftModelForCausalLM.from_pretrained(str(copy)).merge_and_unload().eval()
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(plain(input_ids=ids).logits, ours(input_ids=ids).logits, atol=1e-4)
