"""Generation engines: Hugging Face ``generate`` (batched), a leaner CPU loop, and vLLM, behind one interface.

``Engine.generate(prompts, decoding) -> list[Completion]``: full prompt strings in, raw
continuations out (in input order), with their new-token counts and whether each ended by
itself. ``make_engine`` picks the engine a profile names (``synthesis.engine``); ``generate``
takes the name of the loop (``hf`` or ``cpu``, ``eval.engine``).

The ``cpu`` loop (``cpu_completions``, its batching in ``continuous_batching``) calls the same
model forward as ``hf`` and is ours for one reason: ``generate`` pads every prompt of a batch to
the longest and keeps computing rows that have finished, which on a CPU costs time in proportion
(``python -m benchmarks.cpu_paths``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch

from .continuous_batching import Rule, decode_queue, picker
from .prompts import end_of_turn_tokens
from .runtime import model_device, progress


@dataclass(frozen=True)
class Decoding:
    """Decoding settings, recorded with every record (``record["decoding"]``)."""

    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    seed: int = 0
    min_new_tokens: int = 0  # >0: EOS / end of turn forbidden for the first N tokens (a deviation)

    @classmethod
    def from_config(cls, synthesis: Any) -> "Decoding":
        """The decoding part of a profile's ``SynthesisConfig``."""
        return cls(**{f.name: getattr(synthesis, f.name) for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready); ``min_new_tokens`` only when set (the paper's decoding has none)."""
        out = dataclasses.asdict(self)
        if not out["min_new_tokens"]:
            del out["min_new_tokens"]
        return out


@dataclass(frozen=True)
class Completion:
    """One generated continuation: raw ``text`` (special tokens removed), its token count, and
    whether it ended by itself (EOS / end of turn) rather than at ``max_new_tokens``."""

    text: str
    new_tokens: int
    finished: bool


class Engine(Protocol):
    """What ``synthesize`` needs from a generation backend."""

    name: str

    def generate(self, prompts: Sequence[str], decoding: Decoding) -> list[Completion]:
        """Continuations of full prompt strings, in input order."""
        ...


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Ids of EOS and the end-of-turn markers of this tokenizer: generation stops at any."""
    ids = [tokenizer.convert_tokens_to_ids(t) for t in end_of_turn_tokens(tokenizer)]
    return sorted({i for i in ids if isinstance(i, int) and i != tokenizer.unk_token_id})


@torch.no_grad()
def generate_completions(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 64,
                         batch_size: int = 16, do_sample: bool = False, temperature: float = 1.0,
                         top_p: float = 1.0, seed: int = 0, min_new_tokens: int = 0) -> list[Completion]:
    """``generate`` with raw texts, new-token counts and finish state (see ``generate``);
    ``min_new_tokens`` > 0 masks the stop tokens for the first steps (no immediate end)."""
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}")
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    sampling: dict[str, Any] = {"do_sample": False}
    if do_sample:
        sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p}
        torch.manual_seed(seed)
    if min_new_tokens:
        sampling["min_new_tokens"] = min_new_tokens  # masks every id in eos_token_id=stops
    stops = stop_token_ids(tokenizer) or [tokenizer.eos_token_id]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[Completion] = [Completion("", 0, True)] * len(prompts)
    device = next(model.parameters()).device
    for start in progress(range(0, len(order), batch_size), desc="generating", unit="batch"):
        idx = order[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                        add_special_tokens=False, return_token_type_ids=False).to(device)
        gen = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                             max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=stops, **sampling)
        new = gen[:, enc["input_ids"].shape[1]:].tolist()
        for i, row in zip(idx, new):
            out[i] = completion_of(tokenizer, row, stops)
    model.train(was_training)
    return out


def completion_of(tokenizer: Any, row: Sequence[int], stops: Sequence[int]) -> Completion:
    """A ``Completion`` from a row of new token ids: cut at its first stop token (which counts as
    a new token, and anything after it, padding, does not)."""
    end = next((k for k, t in enumerate(row) if t in stops), None)
    content = row if end is None else row[:end]
    return Completion(tokenizer.decode(content, skip_special_tokens=True), len(content) + (end is not None),
                      end is not None)


@torch.no_grad()
def cpu_completions(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 64,
                    batch_size: int = 64, do_sample: bool = False, temperature: float = 1.0,
                    top_p: float = 1.0, seed: int = 0, min_new_tokens: int = 0) -> list[Completion]:
    """What ``generate_completions`` returns, from a loop that wastes less: prompts sorted by token
    count and prefilled ``PREFILL_ROWS`` at a time (little padding); up to ``batch_size`` rows decode
    together, a finished row leaves, and the next prompts join (their KV caches and the running
    one left-padded to one width) whenever a prefill's worth of rows is free. Greedy picks the
    arg-max; sampling applies the temperature, the model's own ``top_k`` if its generation config
    sets one, then top-p, with a generator seeded per call (the same prompts give the same texts)."""
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_new_tokens and batch_size must be >= 1, got {max_new_tokens}, {batch_size}")
    was_training = model.training
    model.eval()
    stops = stop_token_ids(tokenizer) or [tokenizer.eos_token_id]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
    rule = Rule(picker(model, do_sample, temperature, top_p, seed), stops, min_new_tokens, max_new_tokens)
    rows = decode_queue(model, [ids[i] for i in order], batch_size, rule, pad)
    out: list[Completion] = [Completion("", 0, True)] * len(prompts)
    for i, row in zip(order, rows):
        out[i] = completion_of(tokenizer, row, stops)
    model.train(was_training)
    return out


#: ``generate``'s loops by name (``eval.engine``).
LOOPS = {"hf": generate_completions, "cpu": cpu_completions}


def generate(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 64,
             batch_size: int = 16, do_sample: bool = False, temperature: float = 1.0,
             top_p: float = 1.0, seed: int = 0, engine: str = "hf") -> list[str]:
    """Continuations of full prompt strings, in input order (stripped).

    Prompts are sorted by length so each batch pads little (left padding, KV cache), special
    tokens are not added again (the chat template already holds them), and each sequence stops
    at EOS or an end-of-turn token. Sampling is seeded once per call, so a re-run gives the
    same texts. ``engine``: the loop (``LOOPS``), ``hf`` (transformers' ``generate``) or ``cpu``.
    """
    if engine not in LOOPS:
        raise ValueError(f"engine={engine!r} is not one of: {', '.join(LOOPS)}")
    done = LOOPS[engine](model, tokenizer, prompts, max_new_tokens, batch_size, do_sample, temperature, top_p, seed)
    return [c.text.strip() for c in done]


class HFEngine:
    """Batched Hugging Face generation (``generate_completions``) behind the ``Engine`` interface;
    a subclass names another of ``LOOPS``."""

    name = "hf"

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    @property
    def device(self) -> str:
        """Where the model runs (``runtime.model_device``)."""
        return model_device(self.model)

    def close(self) -> None:
        """Nothing to release: the model belongs to the caller."""

    def generate(self, prompts: Sequence[str], decoding: Decoding) -> list[Completion]:
        """Continuations in input order, from the loop ``LOOPS[self.name]``; sampling seeded per call."""
        return LOOPS[self.name](self.model, self.tokenizer, prompts, decoding.max_new_tokens, self.batch_size,
                                decoding.do_sample, decoding.temperature, decoding.top_p, decoding.seed,
                                decoding.min_new_tokens)


class CPUEngine(HFEngine):
    """The ``cpu`` loop (``cpu_completions``) behind the ``Engine`` interface."""

    name = "cpu"


class VLLMEngine:
    """vLLM's ``LLM.generate`` (optional extra ``gpu``; imported only when constructed).

    Prompts go in as token ids encoded by *our* tokenizer without special tokens, so the chat
    template's own BOS is not doubled and a profile's ``model.chat_template`` applies.
    """

    name = "vllm"

    def __init__(self, model_path: str, tokenizer: Any, tensor_parallel_size: int = 1,
                 seed: int = 0, **llm_kwargs: Any) -> None:
        try:
            import vllm
        except ImportError as err:
            raise ImportError(
                "synthesis.engine='vllm' needs the vllm package: pip install 'radis-book[gpu]' "
                "(needs an NVIDIA GPU), or set synthesis.engine: hf"
            ) from err
        self._vllm, self.tokenizer = vllm, tokenizer
        llm_kwargs.setdefault("tokenizer_revision", llm_kwargs.get("revision"))  # vLLM's is separate
        self.llm = vllm.LLM(model=model_path, tokenizer=model_path, seed=seed,
                            tensor_parallel_size=tensor_parallel_size, **llm_kwargs)
        self.device = f"cuda (vLLM, {tensor_parallel_size} GPU{'s' if tensor_parallel_size > 1 else ''})"

    def close(self) -> None:
        """Stop the engine and give its GPU memory back (vLLM reserves most of the card and checks
        free memory when the next engine starts): the engine core's processes first, then the
        Python objects and the CUDA cache."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is None:
            return
        shutdown = getattr(llm, "shutdown", None) or getattr(getattr(getattr(llm, "llm_engine", None),
                                                                      "engine_core", None), "shutdown", None)
        if shutdown is not None:
            shutdown()
        del llm
        import gc

        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def sampling_params(self, decoding: Decoding) -> Any:
        """``SamplingParams`` for ``decoding`` (greedy = temperature 0; seeded; stops at end of turn)."""
        return self._vllm.SamplingParams(
            n=1, max_tokens=decoding.max_new_tokens, seed=decoding.seed,
            temperature=decoding.temperature if decoding.do_sample else 0.0,
            top_p=decoding.top_p if decoding.do_sample else 1.0, min_tokens=decoding.min_new_tokens,
            stop_token_ids=stop_token_ids(self.tokenizer), skip_special_tokens=True,
        )

    def generate(self, prompts: Sequence[str], decoding: Decoding) -> list[Completion]:
        """Continuations in input order (vLLM schedules and batches by itself)."""
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        outputs = self.llm.generate([{"prompt_token_ids": i} for i in ids], self.sampling_params(decoding),
                                    use_tqdm=False)
        firsts = [o.outputs[0] for o in outputs]
        return [Completion(c.text, len(c.token_ids), c.finish_reason == "stop") for c in firsts]


class LazyEngine:
    """An engine built on its first ``generate`` call, so a finished synthesis loads no model."""

    def __init__(self, name: str, build: Callable[[], Engine]) -> None:
        self.name, self._build, self._engine = name, build, None

    def generate(self, prompts: Sequence[str], decoding: Decoding) -> list[Completion]:
        """The built engine's continuations (built now if this is the first call)."""
        if self._engine is None:
            self._engine = self._build()
        return self._engine.generate(prompts, decoding)

    @property
    def built(self) -> bool:
        """Whether a ``generate`` call has built the engine."""
        return self._engine is not None

    @property
    def device(self) -> str:
        """The built engine's device; ``-`` when nothing was generated."""
        return getattr(self._engine, "device", "-") if self._engine is not None else "-"

    def close(self) -> None:
        """Close the built engine, if any (a later ``generate`` builds a new one)."""
        if self._engine is not None:
            closing, self._engine = self._engine, None
            getattr(closing, "close", lambda: None)()


def make_engine(cfg: Any, model: Any, tokenizer: Any) -> Engine:
    """The engine ``cfg.synthesis.engine`` names: ``model`` is the loaded model for ``hf``, and for
    ``vllm``, which loads the backbone itself, its folder or hub id (``models.resolve_backbone``)."""
    if cfg.synthesis.engine in ("hf", "cpu"):
        return (HFEngine if cfg.synthesis.engine == "hf" else CPUEngine)(model, tokenizer, cfg.synthesis.batch_size)
    if cfg.synthesis.engine == "vllm":
        if not isinstance(model, str):
            raise TypeError(f"synthesis.engine='vllm' loads the backbone itself: pass its folder or hub id "
                            f"(models.resolve_backbone(cfg)), not {type(model).__name__}")
        memory = {k: v for k, v in (("gpu_memory_utilization", cfg.synthesis.gpu_memory_utilization),
                                     ("max_model_len", cfg.synthesis.max_model_len)) if v is not None}
        return VLLMEngine(model, tokenizer, cfg.synthesis.tensor_parallel_size,
                          seed=cfg.synthesis.seed, dtype=cfg.model.dtype, revision=cfg.model.revision,
                          trust_remote_code=cfg.model.trust_remote_code, **memory)
    raise ValueError(f"synthesis.engine={cfg.synthesis.engine!r} is not one of: hf, cpu, vllm")
