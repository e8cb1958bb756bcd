"""Loading backbones: a hub id, a local path, a GGUF file (``gguf:...``), a random-weight
architecture (``random:...``), or the model organism.

Every profile goes through the same ``from_pretrained`` calls; the organism is only a local
directory that ``radis_utils.organism`` builds (and caches) first, and a GGUF file one that
``radis_utils.gguf_backbone`` converts (and caches) first. The backbone is part of a run's
identity, so ``config_hash`` (what caches and results files are keyed by) lives here too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .config import ENGINE_MEMORY, Config, project_root, resolve_path
from .gguf_backbone import is_gguf, resolve_gguf
from .prompts import chat_template_of
from .random_backbone import arch_file, folder_for, is_random, resolve_random
from .runtime import device, device_name, versions

ORGANISM = "organism"
_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


class BackboneError(ValueError):
    """A backbone that cannot be found or loaded as configured."""


def resolve_backbone(cfg: Config) -> str:
    """Hub id or existing local directory for ``cfg.model.backbone`` (builds the organism if asked)."""
    name = cfg.model.backbone
    if name == ORGANISM:
        from .organism import build_organism, organism_config

        return str(build_organism(organism_config(cfg), organism_cache(cfg)))
    if is_gguf(name):
        return str(resolve_gguf(name, resolve_path(cfg.runtime.runs_dir)))
    if is_random(name):
        return str(resolve_random(name, resolve_path(cfg.runtime.runs_dir)))
    path = Path(name).expanduser()
    if not path.is_absolute() and not path.exists():
        path = project_root() / path
    if path.exists():
        if not (path / "config.json").is_file():
            raise BackboneError(
                f"model.backbone={name!r}: directory {path} has no config.json; point it at a "
                "folder written by save_pretrained (or a downloaded snapshot)"
            )
        return str(path)
    if looks_like_path(name):
        raise BackboneError(
            f"model.backbone={name!r}: no such directory ({path}). Use an existing local folder "
            "or a Hugging Face hub id such as 'mistralai/Mistral-7B-Instruct-v0.2'."
        )
    return name


def organism_cache(cfg: Config) -> Path:
    """``runs/organism/``: organisms are cached by their own config hash, shared by profiles."""
    return resolve_path(cfg.runtime.runs_dir) / "organism"


def config_hash(cfg: Config) -> str:
    """Stable 12-hex-digit hash of everything that shapes results (not the description, nor
    ``config.ENGINE_MEMORY``); for the organism it includes the organism's own hash, which
    carries its world version."""
    data = cfg.to_dict()
    data.pop("description")
    for section, key in ENGINE_MEMORY:
        data[section].pop(key, None)
    if cfg.model.backbone == ORGANISM:
        from .organism import organism_config

        data["organism_hash"] = organism_config(cfg).config_hash()
    if is_random(cfg.model.backbone):  # the architecture file's content, not only its name
        data["random_backbone"] = folder_for(arch_file(cfg.model.backbone), Path("runs")).name
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def pinned_versions(path: Path | str | None = None) -> dict[str, str]:
    """``{package: version}`` pinned by the checkout's ``constraints.txt`` ({} without one)."""
    path = Path(path) if path is not None else project_root() / "constraints.txt"
    if not path.is_file():
        return {}
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def environment_report(cfg: Config) -> str:
    """The version block printed at the top of every chapter."""
    lines = [
        f"profile      : {cfg.profile}  (config {config_hash(cfg)})",
        f"backbone     : {cfg.model.backbone}",
        f"device       : {device_name()}",
    ]
    pins = pinned_versions()
    lines += [f"{k:<13}: {v}" + (f"  (differs from the pinned {pins[k]}: numbers may differ from the recorded ones)"
                                 if k in pins and v != pins[k] else "") for k, v in versions().items()]
    return "\n".join(lines)


def looks_like_path(name: str) -> bool:
    """True when ``name`` is meant as a filesystem path rather than an ``owner/model`` hub id."""
    return name.startswith((".", "/", "~")) or name.count("/") != 1 or "\\" in name


def unavailable(name_or_path: str, timeout_s: float = 10.0) -> str | None:
    """Why a model cannot be loaded here (``None`` when it can): a missing local folder, or a hub id
    that is neither in the local Hugging Face cache nor reachable on the hub."""
    if looks_like_path(name_or_path):
        return None if Path(name_or_path).expanduser().is_dir() else f"no folder {name_or_path}"
    import huggingface_hub
    from huggingface_hub import constants

    if isinstance(huggingface_hub.try_to_load_from_cache(name_or_path, "config.json"), str):
        return None
    if constants.HF_HUB_OFFLINE:
        return f"{name_or_path} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    try:
        huggingface_hub.HfApi().model_info(name_or_path, timeout=timeout_s)
    except Exception as err:  # noqa: BLE001 - any failure means "cannot fetch it now"
        return f"{name_or_path} is not in the local Hugging Face cache and the hub is unreachable ({type(err).__name__})"
    return None


def load_tokenizer(cfg: Config, name_or_path: str | None = None) -> Any:
    """The backbone's tokenizer, with the profile's chat template if one is set; left padding."""
    from transformers import AutoTokenizer

    source = name_or_path or resolve_backbone(cfg)
    try:
        tok = AutoTokenizer.from_pretrained(
            source, revision=cfg.model.revision, trust_remote_code=cfg.model.trust_remote_code
        )
    except OSError as err:
        raise BackboneError(f"could not load tokenizer {source!r}: {err}") from err
    if cfg.model.chat_template:
        tok.chat_template = cfg.model.chat_template
    chat_template_of(tok)  # a chat model is required: fail now, with the fix in the message
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def torch_dtype(cfg: Config) -> Any:
    """The torch dtype for ``cfg.model.dtype`` ('auto' -> bf16 on capable GPUs, else fp32)."""
    import torch

    if cfg.model.dtype == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, _DTYPES[cfg.model.dtype])


def quantization_config(cfg: Config) -> Any | None:
    """A bitsandbytes 4-bit config for QLoRA profiles (imports bitsandbytes only then)."""
    if cfg.model.quantization is None:
        return None
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise BackboneError(
            f"model.quantization={cfg.model.quantization!r} needs bitsandbytes: "
            "pip install 'radis-book[gpu]' (or set model.quantization: null)"
        ) from err
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.model.quantization,
        bnb_4bit_use_double_quant=cfg.model.double_quant,
        bnb_4bit_compute_dtype=torch_dtype(cfg),
    )


def load_model(cfg: Config, name_or_path: str | None = None, quantize: bool = True, **kwargs: Any) -> Any:
    """The backbone as a causal LM, in the profile's dtype/quantization, in eval mode, on the device
    of the one device policy (``runtime.device``: CUDA when there is one; a 4-bit model is placed
    by its quantizer, on this rank's GPU). ``quantize=False``: unquantized, in the compute dtype,
    whatever the profile says."""
    import transformers
    from transformers import AutoModelForCausalLM

    source = name_or_path or resolve_backbone(cfg)
    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    dtype_key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    options: dict[str, Any] = {
        dtype_key: torch_dtype(cfg),
        "revision": cfg.model.revision,
        "trust_remote_code": cfg.model.trust_remote_code,
        "attn_implementation": cfg.model.attn_implementation,
    }
    quant = quantization_config(cfg) if quantize else None
    where = device()
    if quant is not None:  # bitsandbytes places the 4-bit weights as it loads them: on this rank's device
        options.update(quantization_config=quant, device_map={"": where})
    options.update(kwargs)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **options)
    except OSError as err:
        raise BackboneError(
            f"could not load model {source!r}: {err}. Offline? Download it once, or set "
            "model.backbone to a local folder."
        ) from err
    if quant is None and "device_map" not in options and not fsdp_loading():
        model = model.to(where)
    return model.eval()


def fsdp_loading() -> bool:
    """Whether FSDP's low-memory loading is on (``accelerate launch`` with fsdp.yaml, after the
    process group exists): rank 0 loads the weights on the CPU, the others on the meta device, and
    FSDP shards them onto the GPUs, so the loader must leave placement to it."""
    try:
        from transformers.integrations.fsdp import is_fsdp_enabled
    except ImportError:  # transformers 4.x keeps it in modeling_utils
        from transformers.modeling_utils import is_fsdp_enabled
    return bool(is_fsdp_enabled())


def load_plain(name_or_path: str, dtype: str = "auto") -> Any:
    """A causal LM that is not the run's backbone (e.g. a judge), on the policy's device, in eval mode."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype).to(device()).eval()


def load_backbone(cfg: Config) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for the profile's backbone."""
    source = resolve_backbone(cfg)
    return load_model(cfg, source), load_tokenizer(cfg, source)


# --- LoRA / QLoRA ------------------------------------------------------------------------

def add_lora(cfg: Config, model: Any) -> Any:
    """Wrap ``model`` with the profile's LoRA (all linear layers by default; QLoRA when 4-bit)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.model.quantization is not None:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.train.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(r=cfg.train.lora_r, lora_alpha=cfg.train.lora_alpha,
                      lora_dropout=cfg.train.lora_dropout, target_modules=cfg.train.target_modules,
                      bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def base_reference(name_or_path: str | None) -> str | None:
    """How a saved adapter names its base (``base_model_name_or_path``): a hub id as it is, a local
    folder by its absolute path, so that plain peft (``AutoPeftModelForCausalLM``) loads the adapter
    from any working folder, and a copy of it anywhere on the machine, while the base stays where it
    is. The project's own loader (``load_adapter``) takes the base from the profile instead, so a
    moved ``runs/`` folder still loads through it."""
    if not name_or_path or looks_like_hub_id(name_or_path):
        return name_or_path
    return str(resolve_path(name_or_path).resolve())  # relative: to the checkout's root, as adapters once stored it


def looks_like_hub_id(name: str) -> bool:
    """An ``owner/model`` name that is not an existing local folder."""
    return not looks_like_path(name) and not Path(name).exists()


def trainable_parameters(model: Any) -> dict[str, int]:
    """Trainable and total parameter counts (LoRA adapters vs the whole model)."""
    params = list(model.parameters())
    return {"trainable": sum(p.numel() for p in params if p.requires_grad),
            "total": sum(p.numel() for p in params)}


def load_adapter(cfg: Config, adapter_dir: str | Path, merge: bool = False, trainable: bool = False) -> Any:
    """The backbone with a trained adapter from ``save_pretrained``: merged into the weights if
    asked, or with its LoRA parameters trainable (for gradients; eval mode either way).

    A merge never goes into 4-bit weights: under QLoRA the base is reloaded unquantized, in the
    compute dtype, and the adapter merged into that (unmerged, the base loads as trained)."""
    from peft import PeftModel

    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise BackboneError(f"{adapter_dir}: no adapter_config.json; train it first "
                            "(chapter 05, or `python -m radis_utils.train --profile ... --method ...`)")
    check_adapter_files(adapter_dir)
    model = PeftModel.from_pretrained(load_model(cfg, quantize=not merge), adapter_dir, is_trainable=trainable)
    return (model.merge_and_unload() if merge else model).eval()


def check_adapter_files(adapter_dir: Path) -> None:
    """Refuse an adapter whose files a crash or a copy damaged, naming the file (peft's own errors
    name neither): ``adapter_config.json`` must be JSON, the weights a readable safetensors file."""
    from safetensors import SafetensorError, safe_open

    from .records import read_json

    read_json(adapter_dir / "adapter_config.json")  # RecordError names the file and the line
    weights = adapter_dir / "adapter_model.safetensors"
    if weights.is_file():
        try:
            with safe_open(str(weights), framework="pt") as f:
                for name in f.keys():
                    f.get_slice(name)
        except (SafetensorError, OSError) as err:
            raise BackboneError(f"{weights}: not a readable safetensors file ({err}); the copy or the save "
                                f"was cut short: delete {adapter_dir} and train again") from None
