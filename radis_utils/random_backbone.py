"""A random-weight chat model from an architecture file: the GPU profiles' code paths at toy size.

``model.backbone: random:<file>`` names a JSON file whose ``config`` is a transformers config
(``benchmarks/archs/tiny.json``: a two-layer Mistral). ``build_random`` saves that architecture
with seeded random weights (fp32), a small byte-level BPE tokenizer with the family's chat format
(``prompts.demo_chat_tokenizer``; ``chat_format`` in the file overrides it) and a generation
config under ``runs/backbones/random-<name>-<hash>/``, atomically. From there it loads through the
same ``from_pretrained`` calls, dtype, quantization and device policy as a hub model, which is the
point: ``a100-tiny`` and ``qlora-tiny`` run the ``a100``/``qlora`` code in seconds. Its replies
are noise; nothing it scores is a result.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .config import project_root
from .records import read_json, write_json

PREFIX = "random:"
#: Bumped when the folder a file builds changes, so that an old build is not reused.
BUILD_VERSION = 1
#: The chat format of each family when the file names none (``prompts.CHAT_FORMATS``).
CHAT_FORMAT_OF = {"mistral": "mistral", "llama": "llama2"}
SOURCE_FILE = "random_source.json"


class RandomBackboneError(ValueError):
    """An architecture file that is missing or cannot make a chat model."""


def is_random(backbone: str) -> bool:
    """Whether ``model.backbone`` names an architecture file (``random:...``)."""
    return backbone.startswith(PREFIX)


def arch_file(backbone: str) -> Path:
    """The file a ``random:`` backbone names (relative paths: from the checkout's root)."""
    path = Path(backbone[len(PREFIX):]).expanduser()
    if not path.is_absolute():
        path = project_root() / path
    if not path.is_file():
        raise RandomBackboneError(f"model.backbone={backbone!r}: no file {path}; name a JSON file with a "
                                  "transformers 'config' (see benchmarks/archs/tiny.json)")
    return path


def folder_for(arch_path: Path, runs_root: Path) -> Path:
    """``runs/backbones/random-<stem>-<hash of the file and the build version>/``."""
    digest = hashlib.sha256(arch_path.read_bytes() + f"v{BUILD_VERSION}".encode()).hexdigest()[:12]
    return Path(runs_root) / "backbones" / f"random-{arch_path.stem}-{digest}"


def build_random(arch_path: Path, out_dir: Path) -> Path:
    """Save the random-weight model and its chat tokenizer into ``out_dir`` (atomically)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    from .prompts import demo_chat_tokenizer

    arch = read_json(arch_path)
    settings = dict(arch.get("config") or {})
    model_type = settings.pop("model_type", None)
    if model_type is None:
        raise RandomBackboneError(f"{arch_path}: field 'config.model_type' is missing")
    settings.pop("architectures", None)
    style = arch.get("chat_format") or CHAT_FORMAT_OF.get(model_type, "chatml")
    vocab = int(settings.get("vocab_size", 1024))
    tok = demo_chat_tokenizer(style, vocab_size=min(vocab, 512))
    if len(tok) > vocab:
        raise RandomBackboneError(f"{arch_path}: config.vocab_size {vocab} is below the tokenizer's {len(tok)}")
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.eos_token_id}
    config = AutoConfig.for_model(model_type, **{**settings, **ids})
    torch.manual_seed(int(arch.get("seed", 0)))
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(**ids)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    write_json(tmp / SOURCE_FILE, {"arch_file": str(arch_path), "chat_format": style, "build_version": BUILD_VERSION,
                                   "arch": arch})
    try:
        os.replace(tmp, out_dir)
    except OSError:  # another process built it first: keep that one
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out_dir / "config.json").is_file():
            raise
    return out_dir


def resolve_random(backbone: str, runs_root: Path) -> Path:
    """The folder of a ``random:`` backbone, built on first use."""
    path = arch_file(backbone)
    out = folder_for(path, runs_root)
    if not (out / SOURCE_FILE).is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        build_random(path, out)
    return out
