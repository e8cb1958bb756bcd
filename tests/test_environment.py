"""The set-up files agree with each other: pyproject extras, conda files, Makefile, README, CI."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def pip_lines(name: str) -> list[str]:
    env = yaml.safe_load((ROOT / name).read_text())
    pips = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    return pips[0]


def makefile_torch() -> str:
    return re.search(r"^TORCH\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)


def test_extras_exist():
    assert {"book", "test", "gpu", "eval"} <= set(EXTRAS)
    assert any(d.startswith("jupyter-book>=1,<2") for d in EXTRAS["book"])
    assert any(d.startswith("bitsandbytes") for d in EXTRAS["gpu"])
    assert any(d.startswith("vllm") for d in EXTRAS["gpu"])
    assert "unbabel-comet==2.2.7" in EXTRAS["eval"]


def test_comet_extra_pins_what_comet_needs():
    pins = set(EXTRAS["eval"])
    assert {"transformers>=4.57,<5", "huggingface-hub<1", "numpy<2", "setuptools<81"} <= pins


def test_conda_files_use_declared_extras_and_the_same_torch():
    for name, must in [("environment.yml", {"gpu"}), ("environment-eval.yml", {"eval"})]:
        lines = pip_lines(name)
        assert makefile_torch() in lines, f"{name} pins a different torch than the Makefile"
        editable = [line for line in lines if line.startswith("-e")]
        extras = set(re.search(r"\[(.*)\]", editable[0]).group(1).split(","))
        assert extras <= set(EXTRAS) and must <= extras, name
    assert "eval" not in set(re.search(r"\[(.*)\]", pip_lines("environment.yml")[-1]).group(1).split(","))


def test_cpu_setup_pins_torch():
    assert makefile_torch() == "torch==2.13.0"


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- setup -->\s*```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert commands == ["make book", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test( \|\| status=\$\?)?$", ci, re.M)
    assert "set -euo pipefail" in ci and 'exit "$status"' in ci  # a failing suite fails CI


def test_every_accelerate_config_has_its_backend_in_the_gpu_environment(root):
    """configs/accelerate/ offers DDP, FSDP and DeepSpeed ZeRO-2: the last needs the deepspeed
    package, which the GPU environment (environment.yml: the ``gpu`` extra) must install."""
    import tomllib

    import yaml

    extras = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    gpu = " ".join(extras["gpu"])
    assert '".[book,test,gpu]"' in (root / "environment.yml").read_text(encoding="utf-8")
    for path in sorted((root / "configs" / "accelerate").glob("*.yaml")):
        if yaml.safe_load(path.read_text(encoding="utf-8")).get("distributed_type") == "DEEPSPEED":
            assert "deepspeed" in gpu, f"{path.name} needs deepspeed in the gpu extra"
