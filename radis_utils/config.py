"""Run profiles as data, turned into one frozen, hashable config.

``load_profile("ci")`` reads ``profiles.yaml``; defaults below are the paper's settings
(paper §4 and appendix B), so a profile only states how it differs from the paper.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import yaml

PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
METHODS = ("vanilla", "seqkd", "sdft", "radis")
PAPER_DIRECTIONS = ("cs-en", "de-en", "ru-en", "zh-en", "en-cs", "en-de", "en-ru", "en-zh")

#: ISO code -> English name, for the paper's languages (cs, de, ru, zh <-> en) and the
#: model organism's synthetic language (``sy``, see ``radis_utils.organism``). Plain data here so
#: that a profile's directions are checked when it loads; ``prompts`` re-exports it.
LANGUAGE_NAMES: dict[str, str] = {
    "cs": "Czech",
    "de": "German",
    "en": "English",
    "ru": "Russian",
    "zh": "Chinese",
    "sy": "Synthian",
}

#: The paper's five translation instructions (fig. 5, app. B.1), character for character, with
#: the figure's placeholders: ``{lang1}``/``{lang2}`` are the source/target language names,
#: ``{sent1}`` the source sentence. One is drawn at random per example. A profile may give its own
#: set (``prompts.instructions``); ``prompts.check_instructions`` says what a template must hold.
#: Plain data here (the default of a profile's ``prompts.instructions``); ``prompts`` re-exports it.
INSTRUCTIONS: tuple[str, ...] = (
    "Could you please translate this sentence from {lang1} to {lang2}?\n{sent1}",
    "Translate the following sentence from {lang1} to {lang2}:\n{sent1}",
    "Translate this sentence from {lang1} to {lang2}.\n{sent1}",
    "Translate from {lang1} to {lang2}:\n{sent1}",
    "{sent1}\nTranslate this sentence to {lang2}.",
)

#: How ``replies.split_reply`` cuts the translation from a reply (the values of ``eval.extraction``).
EXTRACTION_RULES = ("first_line", "first_paragraph", "first_sentence", "whole")


class ConfigError(ValueError):
    """A profile, key or value that does not exist or does not fit."""


@dataclass(frozen=True)
class ModelConfig:
    """Which backbone and how to load it."""

    backbone: str = "mistralai/Mistral-7B-Instruct-v0.2"
    revision: str | None = None
    chat_template: str | None = None  # Jinja string overriding the tokenizer's own
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    quantization: str | None = None  # None | nf4 (QLoRA, needs bitsandbytes)
    double_quant: bool = False
    attn_implementation: str = "sdpa"
    trust_remote_code: bool = False


@dataclass(frozen=True)
class DataConfig:
    """Where training and test pairs come from."""

    source: str = "alma"  # alma | organism
    alma_dir: str = "../shared/data/alma"
    directions: tuple[str, ...] = PAPER_DIRECTIONS
    max_train_pairs: int | None = None  # per direction; None = all
    max_test_pairs: int | None = None


@dataclass(frozen=True)
class PromptsConfig:
    """Instruction templates (one drawn per example with ``instruction_seed``)."""

    instructions: tuple[str, ...] = INSTRUCTIONS
    instruction_seed: int = 0


#: Settings that size an engine's memory and never change what it writes: absent from
#: ``Config.to_dict`` when unset, and left out of every hash and cache key (``models.config_hash``,
#: ``train.train_key``), so tuning them to a card keeps every cached file valid.
ENGINE_MEMORY: tuple[tuple[str, str], ...] = (("synthesis", "gpu_memory_utilization"), ("synthesis", "max_model_len"))

#: Settings added after files were cached under the hashes they feed: absent from ``Config.to_dict``
#: (so from every hash) at these defaults, so a profile that leaves them alone keeps its cache and
#: its calibration record; set otherwise, they count like any setting.
LATER_DEFAULTS: tuple[tuple[str, str, Any], ...] = (("eval", "engine", "hf"), ("train", "logits_on_labels", False))


@dataclass(frozen=True)
class SynthesisConfig:
    """Generation of rationales (RaDis), own translations (Seq-KD) and paraphrases (SDFT)."""

    engine: str = "hf"  # hf | cpu | vllm
    batch_size: int = 16
    max_new_tokens: int = 512
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    tensor_parallel_size: int = 1
    chunk_size: int = 256  # records appended (and resumed) per chunk
    max_rationale_tokens: int | None = None  # cap on a rationale's length; None = max_new_tokens
    sdft_template: str | None = None  # None: SDFT's own template (prompts.SDFT_TEMPLATE)
    sdft_min_chrf: float | None = None  # keep a rewrite only if its chrF vs y reaches this (None: no check)
    min_new_tokens: int = 0  # >0: end of turn masked for the first N tokens (a labelled deviation, not the paper)
    gpu_memory_utilization: float | None = None  # vLLM: share of the GPU it may reserve (None: vLLM's 0.92)
    max_model_len: int | None = None  # vLLM: longest prompt + continuation (None: the model's own context)


@dataclass(frozen=True)
class TrainConfig:
    """One trainer for four methods; paper: LoRA r=16 on all linear layers, 3 epochs, lr 1e-4."""

    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0,)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: str = "all-linear"
    epochs: float = 3.0
    max_steps: int | None = None
    learning_rate: float = 1e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.01
    effective_batch: int = 128
    per_device_batch: int = 4
    max_length: int = 1024
    gradient_checkpointing: bool = False
    precision: str = "bf16"  # bf16 | fp16 | fp32
    rationale_weight: float = 1.0  # λ on the rationale term (exercises); 1.0 = paper
    group_by_length: bool = True  # batches of similar length: little padding (benchmarks/token_efficiency.py)
    logits_on_labels: bool = False  # LM head only where a token is learned: the same loss, less work (benchmarks/cpu_paths.py)
    logging_steps: int = 10
    save_steps: int = 200  # checkpoint every N optimizer steps; an interrupted run resumes there
    short_run_steps: int = 100  # chapter 04's short RaDis run that shows the two loss terms
    merge: bool = False  # also write the merged model (base + adapter) beside the adapter
    #: Seq-KD's y' (paper eq. 5, app. A.1): the backbone's whole generated reply ("whole"), or only
    #: its translation cut by ``eval.extraction`` ("translation", a named variant, not the paper's).
    seqkd_own: str = "whole"
    #: Seq-KD trains on twice the examples (y and y'); app. B doubles its batch (256 vs 128) so that
    #: it takes as many optimizer steps as the others. ``False`` keeps the batch (twice the steps).
    seqkd_double_batch: bool = True


@dataclass(frozen=True)
class EvalConfig:
    """Translation metrics and the general-ability suite."""

    batch_size: int = 16
    engine: str = "hf"  # hf | cpu: the generation loop (engines.LOOPS); cpu: same greedy text, faster on a CPU
    max_new_tokens: int = 256
    extraction: str = "first_line"
    comet_model: str = "Unbabel/wmt22-comet-da"
    general_items: int = 100  # organism: held-out items per general skill
    benchmarks: tuple[str, ...] = ("gsm8k", "advbench", "mt_bench", "alpaca_eval")  # real backbones (table 3)
    benchmarks_dir: str = "../shared/data/benchmarks"  # the benchmark files (relative to the project root)
    benchmark_limit: int | None = None  # items per benchmark; None = all (paper)
    guard_model: str | None = None  # AdvBench judge (hub id or path); None = refusal-keyword judge
    general_max_new_tokens: int = 512  # reply length for the general benchmarks
    observation_requests: int = 200  # chapter 02: translation requests to classify (paper §3.1: 200)
    gradient_items: int = 128  # chapter 08: validation examples per direction (paper §5.3: 128)


@dataclass(frozen=True)
class RuntimeConfig:
    """Threads, seed and where stages write their files."""

    threads: int | None = None  # None: leave torch's default
    seed: int = 0
    runs_dir: str = "runs"


@dataclass(frozen=True)
class Config:
    """The frozen config of one run: a profile plus overrides."""

    profile: str
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    prompts: PromptsConfig = field(default_factory=PromptsConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    organism: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON-ready); ``ENGINE_MEMORY`` settings only when set, ``LATER_DEFAULTS``
        only when not at their default."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value = dataclasses.asdict(value)
            elif isinstance(value, Mapping):
                value = json.loads(json.dumps(dict(value)))
            out[f.name] = value
        for section, key in ENGINE_MEMORY:
            if out[section].get(key) is None:
                out[section].pop(key, None)
        for section, key, default in LATER_DEFAULTS:
            if out[section].get(key) == default:
                del out[section][key]
        return json.loads(json.dumps(out))  # lists, not tuples: as it reads back from a file

    @property
    def runs_dir(self) -> Path:
        """``runs/<profile>/`` under the project root: where every stage of this profile writes."""
        return resolve_path(self.runtime.runs_dir) / self.profile


def project_root(start: Path | None = None) -> Path:
    """The checkout's root (the folder holding ``_config.yml`` and ``radis_utils/``).

    Found from the working directory upwards, so a chapter run from ``notebooks/`` and one run
    by the book job from the root write to the same ``runs/``; falls back to the working dir.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "radis_utils").is_dir():
            return folder
    return here


def resolve_path(path: str | Path, start: Path | None = None) -> Path:
    """``path`` if absolute, else relative to the project root (found from ``start``, default the cwd)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root(start) / path


_SECTION_TYPES: dict[str, type] = {
    "model": ModelConfig, "data": DataConfig, "prompts": PromptsConfig,
    "synthesis": SynthesisConfig, "train": TrainConfig, "eval": EvalConfig,
    "runtime": RuntimeConfig,
}


def read_profiles(path: Path | str = PROFILES_FILE) -> dict[str, dict[str, Any]]:
    """All profiles in a YAML file, as plain dicts."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"profiles file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte {err.start}: {err.reason}); save it as UTF-8") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: YAML syntax error: {problem}; fix the file (a missing colon, "
                          "quote or indentation is the usual cause)") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: expected a mapping of profile name -> settings")
    return data


def profile_names(path: Path | str = PROFILES_FILE, derived: bool = True) -> list[str]:
    """Names of the profiles defined in ``path``; ``derived=False`` leaves out those that extend another."""
    return [n for n, p in read_profiles(path).items() if derived or EXTENDS not in p]


#: A profile may name another that it ``extends``: its sections are laid over that one's, key by key.
EXTENDS = "extends"


def _resolved(profiles: Mapping[str, Any], name: str, where: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Profile ``name``'s settings with those of the profile it extends underneath."""
    raw = json.loads(json.dumps(profiles[name]))  # deep copy
    base = raw.pop(EXTENDS, None)
    if base is None:
        return raw
    if base not in profiles or base in (*seen, name):
        why = "no such profile" if base not in profiles else "a cycle"
        raise ConfigError(f"{where}:{name}: extends {base!r}, {why}; valid profiles: {', '.join(profiles)}")
    merged = _resolved(profiles, str(base), where, (*seen, name))
    for key, value in raw.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if both else value
    return merged


def load_profile(name: str, profiles_file: Path | str = PROFILES_FILE, **overrides: Any) -> Config:
    """Frozen config for profile ``name`` with ``overrides`` applied.

    Overrides are either a section with a dict (``train={"learning_rate": 1e-3}``) or one key
    as ``section__key`` (``train__learning_rate=1e-3``).
    """
    profiles = read_profiles(profiles_file)
    if name not in profiles:
        raise ConfigError(
            f"unknown profile {name!r} in {profiles_file}; valid profiles: {', '.join(profiles)}"
        )
    raw = _resolved(profiles, name, str(profiles_file))
    for key, value in overrides.items():
        section, _, sub = key.partition("__")
        if sub:
            raw.setdefault(section, {})
            if not isinstance(raw[section], dict):
                raise ConfigError(f"override {key!r}: section {section!r} is not a mapping")
            raw[section][sub] = value
        elif isinstance(value, Mapping) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return build_config(name, raw, where=f"{profiles_file}:{name}")


def build_config(name: str, raw: Mapping[str, Any], where: str = "<config>") -> Config:
    """Validate a nested mapping and freeze it into a ``Config``."""
    valid_keys = [f.name for f in dataclasses.fields(Config) if f.name != "profile"]
    unknown = set(raw) - set(valid_keys)
    if unknown:
        valid = ", ".join(valid_keys)
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {valid}")
    kwargs: dict[str, Any] = {"profile": name}
    for key, value in raw.items():
        if key in _SECTION_TYPES:
            kwargs[key] = _build_section(_SECTION_TYPES[key], value or {}, f"{where}.{key}")
        elif key == "organism":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}.organism: expected a mapping")
            kwargs[key] = MappingProxyType(dict(value))
        else:
            kwargs[key] = str(value)
    cfg = Config(**kwargs)
    _check_values(cfg, where)
    return cfg


def _build_section(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in raw.items()})


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a YAML value against the field's annotation (lists -> tuples, each item checked; ints
    -> floats). A float field also takes a numeric string: YAML 1.1 reads ``1e-4`` (no dot) as the
    string "1e-4", which is converted; a string that is not a number is an error naming the field."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        hint = next(a for a in options if a is not type(None))
    if value is None:
        raise ConfigError(f"{where}: may not be null")
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


#: Numeric settings and where they must lie: ``(lo, hi, closed)``; an open range excludes both ends.
_RANGES: dict[str, tuple[float, float, bool]] = {
    "train.epochs": (0, math.inf, False), "train.learning_rate": (0, math.inf, False),
    "train.warmup_ratio": (0, 1, True), "train.lora_dropout": (0, 1, True),
    "train.rationale_weight": (0, math.inf, True), "synthesis.temperature": (0, math.inf, True),
    "synthesis.top_p": (0, 1, True), "synthesis.gpu_memory_utilization": (0, 1, True),
}


@functools.lru_cache(maxsize=1)
def _scheduler_names() -> tuple[str, ...] | None:
    """The learning-rate schedules the installed transformers knows (its ``SchedulerType``);
    ``None`` in an environment without transformers (one that only scores or judges)."""
    try:
        from transformers import SchedulerType
    except ImportError:
        return None
    return tuple(s.value for s in SchedulerType)


def _check_values(cfg: Config, where: str) -> None:
    checks = {
        "model.dtype": (cfg.model.dtype, {"auto", "float32", "bfloat16", "float16"}),
        "model.quantization": (cfg.model.quantization, {None, "nf4"}),
        "data.source": (cfg.data.source, {"alma", "organism"}),
        "synthesis.engine": (cfg.synthesis.engine, {"hf", "cpu", "vllm"}),
        "eval.engine": (cfg.eval.engine, {"hf", "cpu"}),
        "train.precision": (cfg.train.precision, {"bf16", "fp16", "fp32"}),
        "train.seqkd_own": (cfg.train.seqkd_own, {"whole", "translation"}),
        "eval.extraction": (cfg.eval.extraction, set(EXTRACTION_RULES)),
    }
    for key, (value, allowed) in checks.items():
        if value not in allowed:
            shown = ", ".join(sorted(str(a) for a in allowed))
            raise ConfigError(f"{where}: {key}={value!r} is not one of: {shown}")
    for key in ("train.per_device_batch", "train.effective_batch", "train.logging_steps", "train.save_steps",
                "train.lora_r", "train.max_length", "synthesis.batch_size", "synthesis.chunk_size",
                "synthesis.max_new_tokens", "eval.batch_size", "eval.max_new_tokens"):
        value = getattr(getattr(cfg, key.split(".")[0]), key.split(".")[1])
        if value < 1:
            raise ConfigError(f"{where}: {key}={value} must be at least 1")
    for direction in cfg.data.directions:
        src, sep, tgt = direction.partition("-")
        if not sep or src == tgt or src not in LANGUAGE_NAMES or tgt not in LANGUAGE_NAMES:
            raise ConfigError(f"{where}: data.directions has {direction!r}; a direction is 'src-tgt' with two "
                              f"different known codes: {', '.join(sorted(LANGUAGE_NAMES))}")
    for section in _SECTION_TYPES:
        for f in dataclasses.fields(getattr(cfg, section)):
            value = getattr(getattr(cfg, section), f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{where}: {section}.{f.name}={value!r} must be a finite number")
    for key, (lo, hi, closed) in _RANGES.items():
        value = getattr(getattr(cfg, key.split(".")[0]), key.split(".")[1])
        if value is not None and not (lo <= value <= hi if closed else lo < value < hi):
            shown = f"[{lo}, {hi}]" if closed else f"({lo}, {hi})"
            raise ConfigError(f"{where}: {key}={value!r} must lie in {shown}")
    if _scheduler_names() is not None and cfg.train.lr_scheduler not in _scheduler_names():
        raise ConfigError(f"{where}: train.lr_scheduler={cfg.train.lr_scheduler!r} is not one of transformers' "
                          f"schedulers: {', '.join(_scheduler_names())}")
    bad = set(cfg.train.methods) - set(METHODS)
    if bad:
        raise ConfigError(f"{where}: train.methods {sorted(bad)} unknown; valid: {', '.join(METHODS)}")
    if cfg.train.effective_batch % cfg.train.per_device_batch:
        raise ConfigError(
            f"{where}: train.effective_batch ({cfg.train.effective_batch}) must be a multiple "
            f"of train.per_device_batch ({cfg.train.per_device_batch})"
        )


#: The book's parts: each profile the main job executes, and the folder (under the book root)
#: its executed chapters go to, which `_toc.yml` lists. Another profile writes to ``book/<name>/``.
BOOK_PARTS: dict[str, str] = {"ci": "book/chapters", "smol": "book/smol"}
