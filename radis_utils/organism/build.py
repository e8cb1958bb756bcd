"""Train the organism from scratch and cache it on disk, keyed by a hash of its config."""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
import transformers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from radis_utils.records import exclusive, write_json

from .skills import score_general, score_translation
from .spec import OrganismConfig
from .tokenizer import build_tokenizer
from .training import Batch, encode_dialogues, pack, train_loop
from .world import TRAINING_TASKS, WORLD_VERSION, World

LOG = logging.getLogger(__name__)
#: Files a finished organism directory must hold; ``organism.json`` is written last.
REQUIRED_FILES: tuple[str, ...] = (
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "train_log.json", "base_scores.json", "organism.json",
)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily set the number of intra-op CPU threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def new_model(cfg: OrganismConfig, tokenizer: Any) -> LlamaForCausalLM:
    """A freshly initialised (seeded) ``LlamaForCausalLM`` of the configured size."""
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.row_len, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.train_seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, do_sample=False, max_new_tokens=96,
    )
    return model


def mixture_batches(world: World, tokenizer: Any, cfg: OrganismConfig) -> Callable[[int], Batch]:
    """``make_batch(step)`` drawing ``batch_size`` dialogues from the task mixture."""
    tasks = [t for t in TRAINING_TASKS if cfg.mixture.get(t, 0) > 0]
    weights = [cfg.mixture[t] for t in tasks]
    rng = random.Random(f"train-{cfg.world_seed}-{cfg.train_seed}")

    def make_batch(step: int) -> Batch:
        chosen = rng.choices(range(len(tasks)), weights, k=cfg.batch_size)
        dialogues = [world.training_dialogue(tasks[i], rng) for i in chosen]
        groups = [TRAINING_TASKS.index(tasks[i]) for i in chosen]
        return pack(encode_dialogues(tokenizer, dialogues), groups, cfg.row_len,
                    tokenizer.pad_token_id)

    return make_batch


def train_organism(cfg: OrganismConfig) -> tuple[LlamaForCausalLM, Any, list[dict], float]:
    """Train in memory: (model, tokenizer, loss log, training seconds). Deterministic per cfg."""
    world = cfg.world()
    tokenizer = build_tokenizer(world)
    with torch_threads(cfg.threads):
        model = new_model(cfg, tokenizer)
        start = time.perf_counter()
        log = train_loop(model, mixture_batches(world, tokenizer, cfg), cfg.steps, cfg.lr,
                         cfg.warmup, group_names=TRAINING_TASKS,
                         progress=lambda e: LOG.info("organism step %(step)d loss %(loss).3f", e))
        seconds = time.perf_counter() - start
    return model, tokenizer, log, seconds


def base_scores(model: Any, tokenizer: Any, cfg: OrganismConfig) -> dict[str, Any]:
    """Held-out general scores and test-set translation scores of a trained organism."""
    world = cfg.world()
    with torch_threads(cfg.threads):
        general = score_general(model, tokenizer, world, cfg.eval_items, seed=0)
        pairs = world.translation_pairs(cfg.eval_pairs, "test", seed=0)
        trans = score_translation(model, tokenizer, world, pairs)
    return {"general": general, "translation": trans}


def is_complete(model_dir: Path) -> bool:
    """Whether ``model_dir`` is a finished organism (all files, hash matching its name)."""
    if not all((model_dir / f).is_file() for f in REQUIRED_FILES):
        return False
    try:
        meta = json.loads((model_dir / "organism.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("config_hash") == model_dir.name


def build_organism(cfg: OrganismConfig, cache_root: Path) -> Path:
    """Directory of the trained organism for ``cfg``, training it only if not cached.

    The model is written to a temporary sibling directory and renamed into place, so an
    interrupted build never leaves a directory that looks complete. One process builds a given
    organism at a time (a second waits, then finds it built); the temporary folders a killed
    build left behind are removed by the next one.
    """
    if not isinstance(cfg, OrganismConfig):
        raise TypeError(f"cfg must be an OrganismConfig, got {type(cfg).__name__}")
    cache_root = Path(cache_root)
    final = cache_root / cfg.config_hash()
    if is_complete(final):
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    with exclusive(cache_root / f".{final.name}", "the organism build", wait=True):
        if is_complete(final):  # built by the process we waited for
            return final
        for stale in cache_root.glob(f".{final.name}.tmp-*"):  # a killed build's leftovers
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=cache_root))
        try:
            _write_organism(cfg, tmp)
            _move_into_place(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _write_organism(cfg: OrganismConfig, out: Path) -> None:
    model, tokenizer, log, seconds = train_organism(cfg)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    _portable_tokenizer_config(out)
    start = time.perf_counter()
    scores = base_scores(model, tokenizer, cfg)
    scores["eval_seconds"] = round(time.perf_counter() - start, 1)
    write_json(out / "train_log.json", log)
    write_json(out / "base_scores.json", scores)
    meta = {
        "config": cfg.to_dict(), "config_hash": cfg.config_hash(),
        "world_version": WORLD_VERSION, "train_seconds": round(seconds, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
        "world": {k: v for k, v in cfg.world().describe().items() if k != "examples"},
    }
    write_json(out / "organism.json", meta)


def _portable_tokenizer_config(out: Path) -> None:
    """Write ``tokenizer_config.json`` in a form both transformers lines load (5.x writes the
    class 'TokenizersBackend' and a list of extra special tokens, which 4.57 cannot read)."""
    path = out / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    extra = config.pop("extra_special_tokens", None)  # a list in 5.x, a dict in 4.x: use the old key
    if isinstance(extra, list):
        config["additional_special_tokens"] = extra
    write_json(path, config)


def _move_into_place(tmp: Path, final: Path) -> None:
    if final.exists() and not is_complete(final):
        shutil.rmtree(final)
    try:
        os.replace(tmp, final)
    except OSError:
        if not is_complete(final):  # another builder won the race with a complete copy
            raise
