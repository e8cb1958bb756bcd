"""The main job: chapters executed headless, failures caught, the book built and checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from radis_utils import runbook


def write_chapter(path: Path, body: str, params: str = 'PROFILE = "ci"') -> None:
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    params = new_code_cell(params)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {path.stem}"), params, new_code_cell(body)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def make_book(tmp: Path, root: Path, chapters: dict[str, str], parts: tuple[str, ...] = ("book/chapters",)) -> Path:
    """A throw-away copy of the book frame with the given chapters, listed in each part folder."""
    shutil.copy(root / "_config.yml", tmp / "_config.yml")
    (tmp / "radis_utils").mkdir()
    (tmp / "book").mkdir()
    (tmp / "book" / "intro.md").write_text("# Test book\n")
    toc = ["format: jb-book", "root: book/intro", "chapters:"]
    for name, body in chapters.items():
        write_chapter(tmp / "notebooks" / f"{name}.ipynb", body)
    toc += [f"  - file: {part}/{name}" for part in parts for name in chapters]
    (tmp / "_toc.yml").write_text("\n".join(toc) + "\n")
    return tmp


def test_a_failing_chapter_fails_the_main_job(tmp_path, root):
    book = make_book(tmp_path, root, {"00_ok": "print('PROFILE is', PROFILE)",
                                      "01_broken": "raise RuntimeError('deliberate failure')",
                                      "02_after": "x = 1"})
    proc = subprocess.run([sys.executable, "-m", "radis_utils.runbook", "--root", str(book), "--profile", "ci"],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode != 0
    assert "01_broken.ipynb" in proc.stderr and "deliberate failure" in proc.stdout
    executed = book / "book" / "chapters"
    assert (executed / "02_after.ipynb").is_file()  # later chapters still ran and are reported
    assert runbook.error_outputs(executed / "01_broken.ipynb")
    assert not (book / "_build" / "html" / "index.html").exists()  # no book from a failed run


def test_a_good_run_builds_the_book_with_one_part_per_profile(tmp_path, root):
    book = make_book(tmp_path, root, {"00_ok": "print('PROFILE is', PROFILE)"}, ("book/chapters", "book/qlora"))
    assert runbook.main(["--root", str(book), "--profile", "ci", "--profile", "qlora"]) == 0
    assert (book / "_build" / "html" / "index.html").is_file()
    for folder, profile in (("chapters", "ci"), ("qlora", "qlora")):
        page = book / "_build" / "html" / "book" / folder / "00_ok.html"
        assert page.is_file() and f"PROFILE is {profile}" in page.read_text()


def test_the_default_run_executes_every_part_of_the_book(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(runbook, "execute_chapters",
                        lambda nb_dir, out, profile, **kw: seen.append((profile, out)) or [])
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "_toc.yml").write_text("root: index\n")
    assert runbook.main(["--root", str(tmp_path), "--no-build"]) == 0
    assert seen == [(p, tmp_path / folder) for p, folder in runbook.BOOK_PARTS.items()]
    assert list(runbook.BOOK_PARTS)[:2] == ["ci", "smol"]


def test_check_book_reports_missing_pages_and_tracebacks(tmp_path):
    nb = tmp_path / "book" / "chapters" / "03_x.ipynb"
    nb.parent.mkdir(parents=True)
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}]}]}))
    problems = runbook.check_book(tmp_path, [nb])
    assert any("index.html" in p for p in problems)
    assert any("03_x.html" in p for p in problems)
    assert any("ValueError: boom" in p for p in problems)


def test_chapter_selection(tmp_path):
    for name in ["00_a", "01_b", "10_c", "notes"]:
        write_chapter(tmp_path / f"{name}.ipynb", "pass")
    assert [p.stem for p in runbook.chapters(tmp_path)] == ["00_a", "01_b", "10_c"]
    assert [p.stem for p in runbook.chapters(tmp_path, ["01"])] == ["01_b"]
    with pytest.raises(FileNotFoundError, match="no chapter notebooks"):
        runbook.chapters(tmp_path / "empty")


def test_chapter_kernels_show_figures_inline_even_under_agg(monkeypatch):
    """CI exports MPLBACKEND=Agg; a kernel that inherited it would render no figure at all."""
    import os

    from radis_utils.runbook import kernel_environment

    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("RADIS_QUIET", raising=False)
    with kernel_environment():
        assert os.environ["MPLBACKEND"] == "module://matplotlib_inline.backend_inline"
        assert os.environ["RADIS_QUIET"] == "1"
    assert os.environ["MPLBACKEND"] == "Agg" and "RADIS_QUIET" not in os.environ


def test_a_long_chapter_shows_a_progress_line_and_the_kernel_warns_nothing(tmp_path, capfd):
    """A heartbeat while a chapter runs; no 'running over TCP without encryption' from the kernel."""
    import re

    write_chapter(tmp_path / "notebooks" / "00_slow.ipynb", "import time\ntime.sleep(1.5)")
    runs = runbook.execute_chapters(tmp_path / "notebooks", tmp_path / "out", "ci", cwd=tmp_path,
                                    heartbeat_s=0.4)
    out, err = capfd.readouterr()
    assert runs[0].ok, runs[0].error
    beats = [line for line in out.splitlines() if "chapter 00_slow: running" in line]
    # code cells: PROFILE, papermill's injected parameters, the sleep
    assert beats and re.fullmatch(r"\s*chapter 00_slow: running, \d+ s, cell 3/3", beats[-1]), out
    assert "without encryption" not in out + err


def _run_one(args: tuple[str, str]) -> tuple[bool, str]:
    notebook, out = args
    run = runbook.execute_chapter(Path(notebook), Path(out), "ci", cwd=Path(notebook).parent, heartbeat_s=0)
    return run.ok, run.error


def test_two_runs_at_once_in_one_folder_keep_their_kernels_apart(tmp_path):
    """IPC sockets live in a private folder each: none is left in the working folder, and two
    chapters started at once there each read their own kernel's messages."""
    import multiprocessing

    write_chapter(tmp_path / "00_a.ipynb", "import glob, time\ntime.sleep(2)\n"
                  "assert not glob.glob('kernel-ipc*'), 'sockets in the working folder'")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_run_one, [(str(tmp_path / "00_a.ipynb"), str(tmp_path / f"out{i}")) for i in (1, 2)])
    assert all(ok for ok, _ in results), results
    assert not list(tmp_path.glob("kernel-ipc*"))


def test_durations_read_in_minutes_and_seconds():
    assert runbook.duration(42.4) == "42 s"
    assert runbook.duration(150) == "2 min 30 s"
    assert runbook.duration(3600 + 61) == "61 min 1 s"


def write_marker(profile: str, parameters: dict) -> list[str]:
    """A ``PREFETCH`` target for the test below: it leaves a file the later chapter reads."""
    Path(parameters["MARKER"]).write_text(f"{profile} {parameters['SEEDS']}")
    return ["marker"]


def test_later_chapters_work_runs_ahead_in_the_background(tmp_path, monkeypatch, capfd):
    marker = tmp_path / "marker.txt"
    write_chapter(tmp_path / "notebooks" / "00_first.ipynb", "pass")
    write_chapter(tmp_path / "notebooks" / "07_later.ipynb",
                  "from pathlib import Path\nassert Path(MARKER).read_text() == 'ci [3]'",
                  params=f'PROFILE = "ci"\nMARKER = {str(marker)!r}\nSEEDS = [3]\nNOT_LITERAL = len("ab")')
    assert runbook.notebook_parameters(tmp_path / "notebooks" / "07_later.ipynb") == {
        "PROFILE": "ci", "MARKER": str(marker), "SEEDS": [3]}
    monkeypatch.setattr(runbook, "PREFETCH", {"07": "tests.test_runbook:write_marker"})
    monkeypatch.setattr(runbook, "spare_cores", lambda: 1)
    runs = runbook.execute_chapters(tmp_path / "notebooks", tmp_path / "out", "ci", cwd=tmp_path)
    out, _ = capfd.readouterr()
    assert [r.ok for r in runs] == [True, True], [r.error for r in runs]
    assert "ahead: 07_later.ipynb started" in out and "ahead: done in" in out and "FAILED" not in out
    assert "['marker']" in (tmp_path / "runs" / "ci" / "logs" / "prefetch.log").read_text()
    # nothing runs ahead of the first chapter of a selection, or without a spare core
    assert runbook.Prefetch.start(runbook.chapters(tmp_path / "notebooks", ["07"]), "ci", tmp_path) is None
    monkeypatch.setattr(runbook, "spare_cores", lambda: 0)
    assert runbook.Prefetch.start(runbook.chapters(tmp_path / "notebooks"), "ci", tmp_path) is None
    monkeypatch.setattr(runbook, "spare_cores", lambda: 1)
    assert runbook.Prefetch.start(runbook.chapters(tmp_path / "notebooks"), "smol", tmp_path) is None  # not the organism


def test_the_ablation_chapter_parameters_are_read_for_its_work_ahead(root):
    params = runbook.notebook_parameters(root / "notebooks" / "07_ablation.ipynb")
    assert runbook.PREFETCH["07"] == "radis_utils.ablation:prefetch"
    assert set(params) >= {"SEEDS", "ORGANISM_SOURCES", "MODEL_SOURCES"}
    assert all(isinstance(fields, dict) for fields in params["ORGANISM_SOURCES"].values())


def fail_ahead(profile: str, parameters: dict) -> None:
    raise RuntimeError("deliberate failure ahead")


def test_a_failure_ahead_is_reported_and_left_to_the_chapter(tmp_path, monkeypatch):
    for name in ["00_first", "07_later"]:
        write_chapter(tmp_path / "notebooks" / f"{name}.ipynb", "pass")
    monkeypatch.setattr(runbook, "PREFETCH", {"07": "tests.test_runbook:fail_ahead"})
    monkeypatch.setattr(runbook, "spare_cores", lambda: 1)
    ahead = runbook.Prefetch.start(runbook.chapters(tmp_path / "notebooks"), "ci", tmp_path)
    line = ahead.wait()
    assert "FAILED (exit 1" in line and "the chapter does that work itself" in line
    assert "deliberate failure ahead" in ahead.log.read_text()


class FakeAhead:
    """Stands in for ``Prefetch`` in the ordering test: its names and whether it still runs."""

    def __init__(self, names: list[str], running: bool) -> None:
        self.names, self._running = names, running

    def running(self) -> bool:
        return self._running


def test_independent_chapters_run_while_the_work_ahead_still_runs(capsys):
    books = [Path(f"{n}.ipynb") for n in ("05_training", "06_evaluation", "07_ablation",
                                          "08_gradient_similarity", "09_results", "10_performance")]
    names = lambda order: [nb.stem[:2] for nb in order]  # noqa: E731
    assert runbook.RUN_WHILE_AHEAD == {"07": ("08", "10")}
    still = FakeAhead(["07_ablation.ipynb"], running=True)
    assert names(runbook.execution_order(books, still)) == ["05", "06", "08", "10", "07", "09"]
    assert "07_ablation.ipynb still waits for its work; 08_gradient_similarity.ipynb runs first" in capsys.readouterr().out
    done = FakeAhead(["07_ablation.ipynb"], running=False)
    assert names(runbook.execution_order(books, done)) == ["05", "06", "07", "08", "09", "10"]
    assert names(runbook.execution_order(books, None)) == ["05", "06", "07", "08", "09", "10"]
    assert names(runbook.execution_order(books[3:], still)) == ["08", "09", "10"]  # 07 not selected


def test_outside_a_checkout_the_command_says_so_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        runbook.main(["--root", str(tmp_path), "--no-build"])
    assert stop.value.code == 2
    assert f"{tmp_path} is not a radis-book checkout" in capsys.readouterr().err
