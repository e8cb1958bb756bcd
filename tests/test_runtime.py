from __future__ import annotations

import random

import pytest

from radis_utils.config import load_profile
from radis_utils import runtime
from radis_utils.runtime import QUIET_ENV, apply_runtime, device_name, lazy_names, progress, versions


def test_apply_runtime_sets_threads_and_seeds():
    import torch

    cfg = load_profile("ci")
    before = torch.get_num_threads()
    try:
        apply_runtime(cfg)
        assert torch.get_num_threads() == 1
        first = (random.random(), torch.rand(1).item())
        apply_runtime(cfg)
        assert (random.random(), torch.rand(1).item()) == first  # the profile's seed, every time
    finally:
        torch.set_num_threads(before)


def test_progress_bars_are_quiet_when_the_book_job_asks(monkeypatch):
    monkeypatch.setenv(QUIET_ENV, "1")
    assert progress(range(3)).disable
    monkeypatch.setenv(QUIET_ENV, "0")
    assert not progress(range(3), file=open("/dev/null", "w")).disable


def test_versions_name_every_package_and_mark_absent_ones():
    from importlib import metadata

    got = versions(("torch", "no-such-package-radis"))
    assert got["torch"] == metadata.version("torch")
    assert got["no-such-package-radis"] == "-" and got["python"].count(".") == 2


def test_device_name_says_cpu_threads_here():
    import torch

    if torch.cuda.is_available():
        assert " x " in device_name()
    else:
        assert device_name().startswith("CPU (") and f"{torch.get_num_threads()} torch threads" in device_name()


def test_lazy_names_import_on_first_use_and_keep_the_name(monkeypatch):
    import sys
    import types

    module = types.ModuleType("radis_lazy_probe")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    module.__getattr__ = lazy_names(module.__name__, {"dumps": "json"})
    import json

    assert module.dumps is json.dumps and "dumps" in vars(module)  # kept after the first use
    try:
        module.loads
    except AttributeError as err:
        assert "radis_lazy_probe" in str(err) and "loads" in str(err)
    else:
        raise AssertionError("a name outside the map must be an AttributeError")


def test_apply_runtime_lets_tables_show_every_cell_in_full():
    import pandas as pd

    pd.set_option("display.max_colwidth", 50)  # pandas' default
    try:
        apply_runtime(load_profile("ci"))
        assert pd.get_option("display.max_colwidth") is None
        cell = "partly: " + "a long verdict " * 10 + "ends here"
        assert pd.DataFrame({"verdict": [cell]}).to_html().count(cell) == 1
    finally:
        pd.reset_option("display.max_colwidth")


def test_the_device_policy_resolves_auto_to_what_is_there_and_refuses_a_missing_gpu(monkeypatch):
    import torch

    from radis_utils import runtime

    monkeypatch.delenv(runtime.DEVICE_ENV, raising=False)
    assert runtime.device() == ("cuda:0" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv(runtime.DEVICE_ENV, "cpu")
    assert runtime.device() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv(runtime.DEVICE_ENV, "auto")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert runtime.device() == "cuda:3"  # under accelerate launch each rank takes its own GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(runtime.DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        runtime.device()
    monkeypatch.setenv(runtime.DEVICE_ENV, "tpu")
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:<n>"):
        runtime.device()


def test_model_device_says_where_the_parameters_are():
    import torch

    from radis_utils import runtime

    assert runtime.model_device(torch.nn.Linear(2, 2)).startswith("cpu (")
    assert runtime.model_device(torch.nn.Linear(2, 2, device="meta")) == "meta"


def test_parameters_papermill_injects_must_be_the_chapters():
    history = ["", 'PROFILE = "ci"\nSEEDS = []\n', '# Parameters\nPROFIEL = "smol"\n', "CFG = 1"]
    assert runtime.unknown_parameters(history) == (["PROFIEL"], ["PROFILE", "SEEDS"])
    assert runtime.unknown_parameters(["", 'PROFILE = "ci"', '# Parameters\nPROFILE = "smol"\n']) == ([], ["PROFILE"])
    assert runtime.unknown_parameters(["", 'PROFILE = "ci"', "x = 1"]) == ([], [])  # not run by papermill
    runtime.check_injected_parameters()  # outside a kernel: nothing to check


def test_a_misspelt_papermill_parameter_stops_the_chapter_naming_it(tmp_path):
    import nbformat
    import papermill

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}, "language_info": {"name": "python"}})
    params = nbformat.v4.new_code_cell('PROFILE = "ci"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("from radis_utils import runtime\nruntime.check_injected_parameters()")]
    nbformat.write(nb, tmp_path / "t.ipynb")
    papermill.execute_notebook(str(tmp_path / "t.ipynb"), str(tmp_path / "ok.ipynb"), parameters={"PROFILE": "smol"},
                               progress_bar=False)
    with pytest.raises(papermill.PapermillExecutionError, match="PROFIEL: did you mean PROFILE"):
        papermill.execute_notebook(str(tmp_path / "t.ipynb"), str(tmp_path / "bad.ipynb"),
                                   parameters={"PROFIEL": "smol"}, progress_bar=False)
