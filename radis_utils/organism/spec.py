"""What determines an organism: its config, the config's hash, and a profile's organism section.

Kept apart from ``build`` (which imports torch and Transformers' Llama) so that reading a
profile's config hash, as every chapter's version report does, stays cheap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from radis_utils.config import Config, ConfigError
from radis_utils.prompts import INSTRUCTIONS, check_instructions

from .world import TRAINING_TASKS, WORLD_VERSION, World

DEFAULT_MIXTURE: dict[str, float] = {
    "translate": 0.2, "facts": 0.15, "arithmetic": 0.2, "safety": 0.15,
    "reverse": 0.22, "repeat": 0.08, "guided": 0.1,
}
@dataclass(frozen=True)
class OrganismConfig:
    """Everything that determines the organism; defaults are the book's ``ci`` organism."""

    world_seed: int = 0
    train_seed: int = 0
    hidden_size: int = 96
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 256
    row_len: int = 256
    steps: int = 1400
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 100
    mixture: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIXTURE))
    threads: int = 1
    eval_items: int = 100
    eval_pairs: int = 200
    #: The translation instructions it is trained and scored with: the profile's
    #: ``prompts.instructions`` (``organism_config`` sets them), fig. 5 by default.
    instructions: tuple[str, ...] = INSTRUCTIONS

    def __post_init__(self) -> None:
        object.__setattr__(self, "instructions", tuple(self.instructions))
        check_instructions(self.instructions, "OrganismConfig.instructions")
        ints = ("world_seed", "train_seed", "hidden_size", "num_layers", "num_heads",
                "intermediate_size", "row_len", "steps", "batch_size", "warmup", "threads",
                "eval_items", "eval_pairs")
        for name in ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"OrganismConfig.{name} must be a non-negative int, got {value!r}")
        for name in ("hidden_size", "num_layers", "num_heads", "steps", "batch_size", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"OrganismConfig.{name} must be >= 1")
        if self.hidden_size % self.num_heads:
            raise ValueError("OrganismConfig.hidden_size must be divisible by num_heads")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"OrganismConfig.lr must be a positive number, got {self.lr!r}")
        bad = set(self.mixture) - set(TRAINING_TASKS)
        if bad or not self.mixture or any(w < 0 for w in self.mixture.values()):
            raise ValueError(f"OrganismConfig.mixture: tasks must be among {TRAINING_TASKS} "
                             f"with weights >= 0, got {self.mixture!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view of the config."""
        out = dataclasses.asdict(self)
        out["mixture"] = dict(sorted(self.mixture.items()))
        out["instructions"] = list(self.instructions)
        return out

    def world(self) -> World:
        """The synthetic world this organism lives in (its seed and instruction set)."""
        return World(self.world_seed, self.instructions)

    def config_hash(self) -> str:
        """Stable 12-hex-digit hash of the config (instruction set included) and world version."""
        key = {"config": self.to_dict(), "world_version": WORLD_VERSION}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OrganismConfig":
        """Config from a mapping (e.g. a profile section); unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"OrganismConfig: unknown field(s) {sorted(unknown)}")
        return cls(**data)


def organism_config(cfg: Config) -> OrganismConfig:
    """The ``OrganismConfig`` of a profile's ``organism:`` section (defaults when empty), trained
    and scored with the profile's ``prompts.instructions``."""
    if "instructions" in cfg.organism:
        raise ConfigError(f"profile {cfg.profile!r}, section organism: 'instructions' is set by "
                          "prompts.instructions (one instruction set for every stage); move it there")
    try:
        return OrganismConfig.from_dict({**cfg.organism, "instructions": cfg.prompts.instructions})
    except (TypeError, ValueError) as err:
        raise ConfigError(f"profile {cfg.profile!r}, section organism: {err}") from err
