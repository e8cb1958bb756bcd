"""Continuous batching on a KV cache, for the ``cpu`` generation loop (``engines.cpu_completions``).

A queue of tokenized prompts (sorted by length) is prefilled ``PREFILL_ROWS`` at a time; up to a
batch of rows decode together; a finished row leaves the batch (``DynamicCache.batch_select_indices``)
and the next prompts join it, their cache and the running one left-padded (masked) to one width.
Every forward is the model's own, with its attention mask and position ids, so the arithmetic per
row is that of transformers' ``generate`` up to the padding around it.

Two things keep long replies cheap. Each layer's keys and values live in a ``SpareRoomLayer``: a
step writes its token into room kept after the last position, where transformers' ``DynamicLayer``
concatenates, i.e. copies the whole cache into a fresh tensor, at every step of every layer. And
when rows leave, the columns that are padding in every remaining row are dropped from the left, so
a batch that keeps taking new prompts does not keep the width of its oldest ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from transformers.cache_utils import DynamicLayer

from .runtime import progress

#: Prompts prefilled together: few, of similar length, so little padding.
PREFILL_ROWS = 8
#: Keep the cache in ``SpareRoomLayer``s and drop all-padding columns (False: transformers' own
#: layers, the baseline of ``python -m benchmarks.kv_cache``).
SPARE_ROOM = True


@dataclass
class Rule:
    """How the ``cpu`` loop picks a token and when a row is done."""

    pick: Callable[[torch.Tensor], torch.Tensor]
    stops: Sequence[int]
    min_new_tokens: int
    max_new_tokens: int

    def step(self, logits: torch.Tensor, members: Sequence[int], rows: list[list[int]]) -> tuple[torch.Tensor, list[int]]:
        """Next token of each member row (appended to ``rows``) and the positions still going."""
        young = [j for j, i in enumerate(members) if len(rows[i]) < self.min_new_tokens]
        if young:
            logits[torch.tensor(young, device=logits.device)[:, None],
                   torch.tensor(list(self.stops), device=logits.device)] = float("-inf")
        tokens = self.pick(logits)
        going = []
        for j, (i, token) in enumerate(zip(members, tokens.tolist())):
            rows[i].append(token)
            if token not in self.stops and len(rows[i]) < self.max_new_tokens:
                going.append(j)
        return tokens, going


def picker(model: Any, do_sample: bool, temperature: float, top_p: float,
           seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Next tokens from (rows, vocab) scores: arg-max, or a seeded draw after transformers' warpers."""
    if not do_sample:
        return lambda scores: scores.argmax(-1)
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    top_k = getattr(getattr(model, "generation_config", None), "top_k", None)
    warpers = LogitsProcessorList([TemperatureLogitsWarper(temperature),
                                   *([TopKLogitsWarper(top_k)] if top_k else []), TopPLogitsWarper(top_p)])
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)

    def draw(scores: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(warpers(None, scores), dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return draw


def decode_queue(model: Any, queue: Sequence[list[int]], batch_size: int, rule: Rule, pad: int) -> list[list[int]]:
    """New tokens (stop token included) of every prompt in ``queue`` (sorted by length)."""
    device = next(model.parameters()).device
    rows: list[list[int]] = [[] for _ in queue]
    live: list[int] = []  # queue index of each row in the running batch
    state: tuple[Any, torch.Tensor, torch.Tensor] | None = None  # (cache, mask, next input token)
    taken = 0
    cache_name = cache_argument(model)
    bar = progress(desc="generating", total=len(queue), unit="prompt")
    while taken < len(queue) or live:
        free = batch_size - len(live)
        while taken < len(queue) and free >= min(PREFILL_ROWS, batch_size, len(queue) - taken):
            chunk = list(range(taken, taken + min(PREFILL_ROWS, free, len(queue) - taken)))
            taken, free = taken + len(chunk), free - len(chunk)
            cache, mask, logits = _prefill(model, [queue[i] for i in chunk], pad, device)
            tokens, going = rule.step(logits, chunk, rows)
            bar.update(len(chunk) - len(going))
            if going:
                fresh = _select((cache, mask, tokens), going, len(chunk))
                state = fresh if state is None else _join(state, fresh)
                live += [chunk[j] for j in going]
        if not live:
            continue
        cache, mask, tokens = state
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        logits = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1,
                       use_cache=True, **{cache_name: cache}).logits[:, -1].float()
        tokens, going = rule.step(logits, live, rows)
        bar.update(len(live) - len(going))
        state = _select((cache, mask, tokens), going, len(live)) if going else None
        if state is not None and len(going) < len(live) and SPARE_ROOM:
            state = _drop_padding(state)
        live = [live[j] for j in going]
    bar.close()
    return rows


def _prefill(model: Any, rows: Sequence[list[int]], pad: int, device: Any) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """``rows`` left-padded to the longest and run through the model: ``(cache, mask, last logits)``."""
    longest = max(len(r) for r in rows)
    ids = torch.tensor([[pad] * (longest - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (longest - len(r)) + [1] * len(r) for r in rows], device=device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                use_cache=True, logits_to_keep=1)
    cache = out.cache if "cache" in out else out.past_key_values  # transformers 5.x renamed it
    kinds = {type(layer).__name__ for layer in cache.layers}
    if kinds != {"DynamicLayer"}:
        raise ValueError(f"the cpu engine joins full-attention caches only; this model's cache has {sorted(kinds)}: "
                         "use engine hf")
    if SPARE_ROOM:
        cache.layers = [SpareRoomLayer(layer.keys, layer.values) for layer in cache.layers]
    return cache, mask, out.logits[:, -1].float()


def _select(state: tuple[Any, torch.Tensor, torch.Tensor], keep: list[int], size: int) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """The rows ``keep`` of a ``(cache, mask, tokens)`` state of ``size`` rows (the cache in place)."""
    if len(keep) == size:
        return state
    cache, mask, tokens = state
    index = torch.tensor(keep, device=mask.device)
    cache.batch_select_indices(index)
    return cache, mask[index], tokens[index]


def _join(a: tuple[Any, torch.Tensor, torch.Tensor], b: tuple[Any, torch.Tensor, torch.Tensor]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Two ``(cache, mask, tokens)`` states as one batch, the shorter left-padded (masked) to the longer."""
    from transformers import DynamicCache

    width = max(a[1].shape[1], b[1].shape[1])

    def left(t: torch.Tensor, dim_from_end: int) -> torch.Tensor:
        gap = width - t.shape[-dim_from_end]
        return torch.nn.functional.pad(t, (0, 0) * (dim_from_end - 1) + (gap, 0)) if gap else t
    joined = DynamicCache()
    for n, (x, y) in enumerate(zip(a[0].layers, b[0].layers)):
        keys, values = torch.cat([left(x.keys, 2), left(y.keys, 2)]), torch.cat([left(x.values, 2), left(y.values, 2)])
        if SPARE_ROOM:
            joined.layers.append(SpareRoomLayer(keys, values))
        else:
            joined.update(keys, values, n)
    return joined, torch.cat([left(a[1], 1), left(b[1], 1)]), torch.cat([a[2], b[2]])


def _drop_padding(state: tuple[Any, torch.Tensor, torch.Tensor]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """The state without its leading columns that are padding in every row (positions come from
    the mask, and a masked column adds nothing to attention, so no row's arithmetic changes)."""
    cache, mask, tokens = state
    lead = int(mask.any(0).int().argmax())
    if lead == 0:
        return state
    for layer in cache.layers:
        layer.drop_front(lead)
    return cache, mask[:, lead:], tokens


class SpareRoomLayer(DynamicLayer):
    """A full-attention cache layer (what ``DynamicLayer`` holds) kept in a buffer with room after its
    last position: ``update`` writes the new keys and values into that room, and doubles it when it
    runs out, instead of concatenating into a new tensor every step. ``keys``/``values`` are views of
    the live columns. Only what the ``cpu`` loop and the model's forward call is supported."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        super().__init__()
        self.is_initialized, self.device, self.dtype = True, keys.device, keys.dtype
        self._hold(keys, values, room=keys.shape[-2])

    def _hold(self, keys: torch.Tensor, values: torch.Tensor, room: int) -> None:
        """Copy ``keys``/``values`` to the start of new buffers with ``room`` columns to spare."""
        width = keys.shape[-2]
        self._buffers = []
        for t in (keys, values):
            buffer = t.new_empty(*t.shape[:-2], width + room, t.shape[-1])
            buffer[..., :width, :] = t
            self._buffers.append(buffer)
        self._start, self._end = 0, width
        self._view()

    def _view(self) -> None:
        self.keys, self.values = (b[..., self._start:self._end, :] for b in self._buffers)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        new = key_states.shape[-2]
        if self._end + new > self._buffers[0].shape[-2]:
            self._hold(self.keys, self.values, room=max(self._end - self._start, new))
        for buffer, t in zip(self._buffers, (key_states, value_states)):
            buffer[..., self._end:self._end + new, :] = t
        self._end += new
        self._view()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._buffers = [b[indices] for b in self._buffers]
        self._view()

    def drop_front(self, columns: int) -> None:
        """Forget the first ``columns`` positions (padding in every row)."""
        self._start += columns
        self._view()

    def crop(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("SpareRoomLayer serves the cpu loop only")

    batch_repeat_interleave = reorder_cache = crop


def cache_argument(model: Any) -> str:
    """The forward's name for the KV cache: ``cache`` from transformers 5.x, ``past_key_values`` before."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
