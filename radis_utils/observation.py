"""Chapter 02's observation: how often a backbone follows its translation with a rationale, and
what that rationale talks about.

Paper §3.1 / table 4: chat LLMs follow most translations with notes of their own. Each reply is
split by ``replies.split_reply`` (the profile's ``eval.extraction``) and its rationale labelled by
content. For the model organism the world's own exact classifier is used; for real backbones a
keyword heuristic (``HEURISTIC_PATTERNS``) that is documented here and shown in the chapter.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any, Callable, Sequence

from .records import read_json, write_json
from .replies import split_reply
from .runtime import model_device

#: Keyword heuristic for real backbones: category -> regular expression (case-insensitive).
HEURISTIC_PATTERNS: dict[str, str] = {
    "safety": r"harm|illegal|danger|unsafe|ethic|offensive|inappropriate|respectful",
    "fact": r"\bcapital\b|\blocated\b|\bfounded\b|\bborn\b|\bis a (city|country|company|person)\b",
    "arithmetic": r"\d+\s*(\+|-|\*|×|x|plus|minus|times)\s*\d+|\bsum\b|\btotal of\b",
    "gloss": r"\bmeans\b|\bliterally\b|\bthe word\b|\bterm\b|\bphrase\b",
    "back_translation": r"back-?translat|\bin english,? (this|it|that) (means|reads|says)\b",
    "alternative": r"alternativ|could also be|another (way|option|translation)|\bor simply\b",
    "note": r"\bnote\b|\bcontext\b|\bformal\b|\binformal\b|\btone\b|\bnuance",
}


def classify_heuristic(rationale: str) -> list[str]:
    """Content categories of a real backbone's rationale by ``HEURISTIC_PATTERNS`` ('other' if none)."""
    found = [c for c, pattern in HEURISTIC_PATTERNS.items() if re.search(pattern, rationale, re.I)]
    return found or ["other"]


def rationale_table(rationales: Sequence[str], classify: Callable[[str], list[str]]) -> dict[str, int]:
    """How many non-empty rationales mention each category (a rationale may count in several)."""
    counts: Counter[str] = Counter()
    for text in rationales:
        if text:
            counts.update(set(classify(text)))
    return dict(counts.most_common())


def classifier_for(source: str) -> Callable[[str], list[str]]:
    """The content classifier for a data source: the organism's exact rules, else the heuristic."""
    if source == "organism":
        from .organism import classify_rationale

        return classify_rationale
    return classify_heuristic


def observation_requests(cfg: Any, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` translation requests over the profile's directions, one random instruction each."""
    from .data import make_example, test_pairs

    directions = cfg.data.directions
    per_direction = -(-n // len(directions))
    pools = {d: test_pairs(cfg, d, per_direction, seed) for d in directions}
    rng = random.Random(seed)
    requests = []
    for i in range(n):
        pair = pools[directions[i % len(directions)]][i // len(directions)]
        ex = make_example(pair, str(i), rng, cfg.prompts.instructions)
        requests.append({"id": i, "direction": ex.direction, "template": ex.template,
                         "user": ex.instruction, "source": ex.source, "reference": ex.reference})
    return requests


def observe(cfg: Any, model: Any, tokenizer: Any, requests: Sequence[dict[str, Any]],
            generate: Callable[..., list[str]]) -> list[dict[str, Any]]:
    """Ask the backbone each request; split every reply into translation + rationale and label it."""
    from .prompts import chat_prompt

    prompts = [chat_prompt(tokenizer, r["user"]) for r in requests]
    replies = generate(model, tokenizer, prompts, max_new_tokens=cfg.eval.max_new_tokens,
                       batch_size=cfg.eval.batch_size, engine=cfg.eval.engine)
    classify = classifier_for(cfg.data.source)
    ran_on = model_device(model) if hasattr(model, "parameters") else "-"
    records = []
    for request, reply in zip(requests, replies):
        translation, rationale = split_reply(reply, cfg.eval.extraction)
        records.append({**request, "reply": reply, "translation": translation,
                        "rationale": rationale, "categories": classify(rationale) if rationale else [],
                        "device": ran_on})
    return records


def results_path(cfg: Any) -> Any:
    """``runs/<profile>/results/observation.json``: chapter 02's counts, read by chapter 09."""
    return cfg.runs_dir / "results" / "observation.json"


def write_results(cfg: Any, records: Sequence[dict[str, Any]]) -> None:
    """Chapter 02's replies as chapter 09 grades them: per reply, whether a rationale followed and
    its content categories (atomic write)."""
    from .models import config_hash

    write_json(results_path(cfg), {
        "profile": cfg.profile, "config_hash": config_hash(cfg), "backbone": cfg.model.backbone,
        "device": records[0].get("device", "-") if records else "-",
        "replies": [{"direction": r["direction"], "rationale": bool(r["rationale"]), "categories": r["categories"]}
                    for r in records]})


def read_results(cfg: Any) -> dict[str, Any]:
    """Chapter 02's file for ``cfg``, checked against its profile and config hash (``ResultsError``
    naming the file when it is missing or was written under other settings)."""
    from .evaluate import ResultsError
    from .evaluate.suite import check_provenance

    path = results_path(cfg)
    if not path.is_file():
        raise ResultsError(f"{path}: no such file; run chapter 02 first")
    found = read_json(path)
    check_provenance(path, found, cfg, "run chapter 02 again")
    return found

