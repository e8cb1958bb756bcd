"""The main job: execute every chapter headless with papermill, then build the Jupyter Book.

``python -m radis_utils.runbook`` runs ``notebooks/NN_*.ipynb`` in order once per profile of
the book (``config.BOOK_PARTS``: ``ci``, the model organism, then ``smol``, a real chat model),
writes the executed copies to that profile's folder (``book/chapters/``, ``book/smol/``: what the
book renders), builds ``_build/html`` and exits non-zero if any chapter raised, or if the build
misses a page (Jupyter Book 1 can exit 0 after a failure, so the result is checked file by file).
``--profile NAME`` (repeatable) runs only those profiles.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .config import BOOK_PARTS, load_profile, project_root, resolve_path
from .runtime import QUIET_ENV

CHAPTER_GLOB = "[0-9][0-9]_*.ipynb"


@dataclass
class ChapterRun:
    """Outcome of executing one chapter."""

    name: str
    ok: bool
    seconds: float
    error: str = ""


def chapters(notebook_dir: Path, only: list[str] | None = None) -> list[Path]:
    """The chapter notebooks in book order, optionally only those whose name starts with ``only``."""
    found = sorted(Path(notebook_dir).glob(CHAPTER_GLOB))
    if only:
        found = [nb for nb in found if any(nb.name.startswith(p) for p in only)]
    if not found:
        raise FileNotFoundError(f"no chapter notebooks matching {CHAPTER_GLOB} in {notebook_dir}")
    return found


#: How the chapter kernel talks to papermill. Over TCP (Jupyter's default) ipykernel warns
#: "Kernel is running over TCP without encryption" once per chapter; a local run needs no
#: network port, so POSIX systems use IPC (Unix sockets), which carries no such warning. Each
#: chapter's sockets live in a private temporary folder (``kernel_config``), not in the working
#: folder, where two runs at once would pick the same names and read each other's messages.
KERNEL_TRANSPORT = "ipc" if os.name == "posix" else "tcp"


def kernel_config(socket_dir: str) -> Any:
    """papermill's kernel settings: the transport, and for IPC a socket path inside ``socket_dir``."""
    from traitlets.config import Config as TraitletsConfig

    manager: dict[str, str] = {"transport": KERNEL_TRANSPORT}
    if KERNEL_TRANSPORT == "ipc":
        manager["ip"] = os.path.join(socket_dir, "kernel")
    return TraitletsConfig({"KernelManager": manager})


def execute_chapter(notebook: Path, out_dir: Path, profile: str, cwd: Path,
                    heartbeat_s: float = 30.0, cell_timeout_s: float | None = None) -> ChapterRun:
    """Run one chapter with ``PROFILE=profile``; the executed copy lands in ``out_dir``.

    Every ``heartbeat_s`` seconds (0: never) a line says how long it has run, and which cell;
    a cell that runs over ``cell_timeout_s`` (None: no limit) stops the chapter."""
    import tempfile

    import papermill as pm

    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    beat = Heartbeat(notebook.stem, code_cells(notebook) + 1, heartbeat_s)  # + papermill's parameters
    try:
        with kernel_environment(), beat, tempfile.TemporaryDirectory(prefix="radis-kernel-") as sockets:
            pm.execute_notebook(
                str(notebook), str(out_dir / notebook.name), parameters={"PROFILE": profile},
                cwd=str(cwd), progress_bar=False, log_output=False, kernel_name="python3",
                on_cell_start=beat.cell_started, execution_timeout=cell_timeout_s,
                config=kernel_config(sockets),
            )
    except Exception as err:  # papermill raises PapermillExecutionError with the cell's traceback
        return ChapterRun(notebook.name, False, time.perf_counter() - start, _short(err))
    return ChapterRun(notebook.name, True, time.perf_counter() - start)


def part_dir(root: Path, profile: str) -> Path:
    """Where the chapters executed with ``profile`` go: its book part, else ``book/<profile>/``."""
    return Path(root) / BOOK_PARTS.get(profile, f"book/{profile}")


def code_cells(notebook: Path) -> int:
    """How many code cells ``notebook`` has."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    return sum(c.get("cell_type") == "code" for c in cells)


def duration(seconds: float) -> str:
    """``42 s``, ``2 min 30 s``."""
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


class Heartbeat:
    """Prints ``chapter <name>: running, 2 min 30 s, cell 7/21`` every ``every`` seconds while
    its ``with`` block runs (a daemon thread); ``cell_started`` is nbclient's cell-start hook."""

    def __init__(self, name: str, cells: int, every: float) -> None:
        self.name, self.cells, self.every = name, cells, every
        self.cell, self.start = 0, time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def cell_started(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell.get("cell_type") == "code":
            self.cell += 1

    def line(self) -> str:
        elapsed = duration(time.perf_counter() - self.start)
        where = f"cell {self.cell}/{self.cells}" if self.cell else "starting its kernel"
        return f"         chapter {self.name}: running, {elapsed}, {where}"

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            print(self.line(), flush=True)

    def __enter__(self) -> "Heartbeat":
        self.start = time.perf_counter()
        if self.every > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


#: What the chapter kernels see: no progress bars in rendered pages, and figures shown inline
#: even where the caller set ``MPLBACKEND=Agg`` (CI does; a kernel would then show no figure).
KERNEL_ENV = {QUIET_ENV: "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


@contextlib.contextmanager
def kernel_environment(values: dict[str, str] = KERNEL_ENV) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the ``with`` block (kernels started in it inherit
    them; the benchmarks use it to silence progress bars), then restore the previous values."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_chapters(notebook_dir: Path, out_dir: Path, profile: str, cwd: Path,
                     only: list[str] | None = None, heartbeat_s: float = 30.0,
                     prefetch: bool = True) -> list[ChapterRun]:
    """Run every chapter in order (a failure does not stop the others) and report each.

    With ``prefetch`` and a spare core, the ``PREFETCH`` work of later chapters runs meanwhile in
    one background process; the first chapter with such work starts once that process has ended,
    and the chapters ``RUN_WHILE_AHEAD`` names run before it while it waits."""
    runs = []
    if KERNEL_TRANSPORT == "tcp":  # no IPC here: say once what the kernels' warning means
        print("note: chapter kernels talk to this job over TCP on this machine; ipykernel's "
              "'running over TCP without encryption' warning for each is expected", flush=True)
    selected = chapters(notebook_dir, only)
    start = time.perf_counter()
    ahead = Prefetch.start(selected, profile, cwd) if prefetch else None
    try:
        for nb in execution_order(selected, ahead):
            if ahead is not None and nb.name in ahead.names:
                print(ahead.wait(), flush=True)
            run = execute_chapter(nb, out_dir, profile, cwd, heartbeat_s)
            status = "ok" if run.ok else "FAILED"
            print(f"[{status:>6}] {run.name:<32} {run.seconds:7.1f} s {run.error}", flush=True)
            runs.append(run)
    finally:
        if ahead is not None:
            ahead.stop()
    order = {nb.name: i for i, nb in enumerate(selected)}
    runs.sort(key=lambda r: order.get(r.name, len(order)))  # reported in book order
    wall, own = time.perf_counter() - start, sum(r.seconds for r in runs)
    serial = own + (ahead.seconds if ahead is not None else 0.0)
    print(f"chapters: {duration(wall)} in all; the chapters' own times plus the work run ahead add up "
          f"to {duration(serial)} ({serial / max(wall, 1e-9):.2f}x the wall time)", flush=True)
    return runs


# --- work run ahead of its chapter --------------------------------------------------------

#: Chapters whose heavy, self-contained work can run ahead of them on a second core while the
#: chapters before them run: chapter prefix -> ``"module:function"`` (a module path), called
#: as ``function(profile, parameters)`` with the chapter's parameters cell; it must only fill
#: caches the chapter reads (chapter 07: the other rationale sources' organisms, synthesis,
#: adapters and results), so that the chapter computes exactly what it would alone.
PREFETCH = {"07": "radis_utils.ablation:prefetch"}
#: Backbones whose profiles run work ahead: the organism only (``ablation.prefetch``: a real
#: backbone's work there is the other models' rationales, which may need a whole GPU).
AHEAD_BACKBONES = ("organism",)


#: Chapters that may run before a chapter of ``PREFETCH`` while its work ahead is still running,
#: because they read none of the files that work writes (chapter 08 measures chapter 05's adapters,
#: chapter 10 the benchmarks). Chapter 09 reads chapter 07's results, so it waits.
RUN_WHILE_AHEAD: dict[str, tuple[str, ...]] = {"07": ("08", "10")}


def execution_order(selected: list[Path], ahead: "Prefetch | None") -> Iterator[Path]:
    """``selected`` in book order, except that on reaching a chapter whose work still runs ahead,
    the later chapters ``RUN_WHILE_AHEAD`` names for it run first (the book's order is unchanged:
    each chapter writes its own page)."""
    queue = list(selected)
    while queue:
        nb = queue.pop(0)
        if ahead is not None and nb.name in ahead.names and ahead.running():
            meanwhile = [later for later in queue for prefix, names in RUN_WHILE_AHEAD.items()
                         if nb.name.startswith(prefix) and later.name.startswith(names)]
            for later in meanwhile:
                print(f"ahead: {nb.name} still waits for its work; {later.name} runs first", flush=True)
                queue.remove(later)
                yield later
        yield nb


def notebook_parameters(notebook: Path) -> dict[str, Any]:
    """The literal assignments (``NAME = <literal>``) of a chapter's ``parameters`` cell."""
    for cell in json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            out = {}
            for node in ast.parse(source, filename=str(notebook)).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    with contextlib.suppress(ValueError):
                        out[node.targets[0].id] = ast.literal_eval(node.value)
            return out
    return {}


def spare_cores() -> int:
    """CPU cores this process may use besides the one that runs the chapters."""
    try:
        return len(os.sched_getaffinity(0)) - 1
    except AttributeError:  # not Linux
        return (os.cpu_count() or 1) - 1


@dataclass
class Prefetch:
    """One background process running the ``PREFETCH`` work of the selected chapters, in order."""

    process: Any
    names: list[str]
    log: Path
    start_s: float
    seconds: float = 0.0  # how long the background work ran (known once it has ended)

    @classmethod
    def start(cls, selected: list[Path], profile: str, cwd: Path) -> "Prefetch | None":
        """Start it, or ``None`` with no spare core, a profile that is not the organism's
        (``AHEAD_BACKBONES``) or nothing to run (a chapter first in the selection has nothing to
        overlap with, so it does its own work)."""
        jobs = [(nb.name, target, notebook_parameters(nb)) for nb in selected[1:]
                for prefix, target in PREFETCH.items() if nb.name.startswith(prefix)]
        if not jobs or spare_cores() < 1:
            return None
        cfg = load_profile(profile)
        if cfg.model.backbone not in AHEAD_BACKBONES:
            return None
        log = resolve_path(cfg.runtime.runs_dir, Path(cwd)) / profile / "logs" / "prefetch.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        process = multiprocessing.get_context("spawn").Process(
            target=_run_ahead, args=(jobs, profile, str(cwd), str(log)), name="radis-prefetch")
        process.start()
        names = [name for name, _, _ in jobs]
        print(f"ahead: {', '.join(names)} started in the background (pid {process.pid}, log {log})", flush=True)
        return cls(process, names, log, time.perf_counter())

    def running(self) -> bool:
        """Whether the background work is still going."""
        return self.process.is_alive()

    def wait(self) -> str:
        """Block until the background work has ended; a line saying how it went."""
        waited = time.perf_counter()
        self.process.join()
        now = time.perf_counter()
        self.names, self.seconds = [], now - self.start_s
        head = f"ahead: done in {duration(now - self.start_s)} in the background, waited {duration(now - waited)}"
        if self.process.exitcode == 0:
            return head
        return (f"{head}; it FAILED (exit {self.process.exitcode}, see {self.log}): the chapter does "
                "that work itself")

    def stop(self) -> None:
        """End the process if it still runs (the job was interrupted or ended early)."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


def _run_ahead(jobs: list[tuple[str, str, dict[str, Any]]], profile: str, cwd: str, log: str) -> None:
    """The background process: each job's function, its output into ``log``."""
    os.chdir(cwd)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update({QUIET_ENV: "1", "MPLBACKEND": "Agg"})
    for name, target, parameters in jobs:
        module, _, function = target.partition(":")
        start = time.perf_counter()
        print(f"{name}: {target}({profile!r}, ...)", flush=True)
        done = getattr(importlib.import_module(module), function)(profile, parameters)
        print(f"{name}: {done} in {duration(time.perf_counter() - start)}", flush=True)


def error_outputs(notebook: Path) -> list[str]:
    """Error outputs stored in an executed notebook (tracebacks that would show on its page)."""
    nb = json.loads(Path(notebook).read_text())
    found = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"{notebook.name}: {out.get('ename')}: {out.get('evalue')}")
    return found


def build_book(root: Path, log: Path | None = None) -> int:
    """``jupyter-book build`` of the book rooted at ``root``; returns its exit code.

    With ``log``, the build's output goes to that file instead of the terminal."""
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", str(root)]
    if log is None:
        return subprocess.call(cmd, cwd=root)
    with open(log, "w") as out:
        return subprocess.call(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT)


def check_book(root: Path, executed: list[Path]) -> list[str]:
    """Problems with a built book: missing index or chapter pages, error outputs in chapters."""
    html = root / "_build" / "html"
    problems = [] if (html / "index.html").is_file() else [f"missing {html / 'index.html'}"]
    for nb in executed:
        page = html / nb.relative_to(root).with_suffix(".html")
        if not page.is_file():
            problems.append(f"missing page {page.relative_to(root)}")
        if nb.is_file():
            problems += error_outputs(nb)
    return problems


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="append", dest="profiles", metavar="NAME",
                        help=f"profile to execute (repeatable; default: the book's, {' and '.join(BOOK_PARTS)})")
    parser.add_argument("--root", type=Path, default=None, help="book root (default: project root)")
    parser.add_argument("--only", nargs="*", help="chapter name prefixes, e.g. 00 03")
    parser.add_argument("--no-build", action="store_true", help="execute chapters only")
    parser.add_argument("--heartbeat", type=float, default=30.0, metavar="SECONDS",
                        help="print a progress line this often while a chapter runs (0: never)")
    parser.add_argument("--no-ahead", action="store_true",
                        help="run every chapter's work in the chapter (no background process on a second core)")
    args = parser.parse_args(argv)

    root = (args.root or project_root()).resolve()
    if not (root / "notebooks").is_dir() or not (root / "_toc.yml").is_file():
        parser.error(f"{root} is not a radis-book checkout (it has no notebooks/ and _toc.yml): run the "
                     "command from the checkout's root, or pass --root <checkout>")
    executed: list[Path] = []
    failed: list[str] = []
    for profile in args.profiles or list(BOOK_PARTS):
        out_dir = part_dir(root, profile)
        print(f"== profile {profile}: chapters into {out_dir.relative_to(root)}/", flush=True)
        runs = execute_chapters(root / "notebooks", out_dir, profile, cwd=root, only=args.only,
                                heartbeat_s=args.heartbeat, prefetch=not args.no_ahead)
        failed += [f"{r.name} ({profile})" for r in runs if not r.ok]
        executed += [out_dir / r.name for r in runs]
    if failed:
        print(f"{len(failed)} chapter(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.no_build:
        return 0
    code = build_book(root)
    problems = check_book(root, executed)
    if code or problems:
        print(f"book build failed (exit {code}):\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"book: {root / '_build' / 'html' / 'index.html'}")
    return 0


def _short(err: Exception) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(err).__name__


if __name__ == "__main__":
    raise SystemExit(main())
