"""Translation quality: the translation cut from a reply, sacreBLEU BLEU/chrF, and COMET.

The paper reports COMET (``Unbabel/wmt22-comet-da``) on WMT'22 test sets (tables 1-2), and no
BLEU; this module adds sacreBLEU's BLEU and chrF, which need no model. COMET needs ``unbabel-comet``, which pins ``transformers<5``, so it lives in its own
environment (``pip install -e '.[eval]'``); without it every COMET entry is skipped with a
message and BLEU/chrF still come out. COMET is imported inside functions only.
"""

from __future__ import annotations

import functools
import importlib.util
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, Sequence

import sacrebleu

from ..replies import split_reply

#: Checkpoint file inside a COMET model folder (the layout of the hub repositories).
COMET_CKPT = Path("checkpoints") / "model.ckpt"


class CometUnavailable(RuntimeError):
    """COMET cannot score here: the package is missing or the checkpoint cannot be loaded."""


def extract_translation(reply: str, rule: str = "first_line") -> str:
    """The translation part of a reply, cut by one of ``replies.EXTRACTION_RULES``."""
    return split_reply(reply, rule)[0]


def _check_pairs(hypotheses: Sequence[str], references: Sequence[str], what: str) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{what}: {len(hypotheses)} hypotheses but {len(references)} "
                         "references; pass one hypothesis per reference, in the same order")
    if not references:
        raise ValueError(f"{what}: no segments to score; pass at least one reference")
    for i, ref in enumerate(references):
        if not isinstance(ref, str) or not ref.strip():
            raise ValueError(f"{what}: reference {i} is empty; drop that test pair or fix "
                             "the test file it came from")


def bleu_tokenizer(target_lang: str) -> str:
    """sacreBLEU's tokenizer for a target language: ``zh`` for Chinese, else the default ``13a``."""
    return "zh" if target_lang == "zh" else "13a"


def corpus_metrics(hypotheses: Sequence[str], references: Sequence[str],
                   target_lang: str) -> dict[str, Any]:
    """Corpus BLEU and chrF (2 decimals) with their sacreBLEU signatures and segment count ``n``."""
    _check_pairs(hypotheses, references, "corpus_metrics")
    # force: the organism's text is pre-tokenized ("word ."); the score is the same, minus a warning
    bleu = sacrebleu.BLEU(tokenize=bleu_tokenizer(target_lang), force=True)
    chrf = sacrebleu.CHRF()
    refs = [list(references)]
    hyps = list(hypotheses)
    return {
        "bleu": round(bleu.corpus_score(hyps, refs).score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf": round(chrf.corpus_score(hyps, refs).score, 2),
        "chrf_signature": str(chrf.get_signature()),
        "n": len(hyps),
    }


def sentence_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """chrF of each hypothesis against its reference (sacreBLEU's sentence score, 3 decimals): the
    per-item spread a power calculation needs."""
    _check_pairs(hypotheses, references, "sentence_chrf")
    chrf = sacrebleu.CHRF()
    return [round(chrf.sentence_score(h, [r]).score, 3) for h, r in zip(hypotheses, references)]


def chrf_statistics(hypotheses: Sequence[str], references: Sequence[str]) -> list[list[float]]:
    """Each sentence's chrF statistics (sacreBLEU's own; summed over any subset of sentences they
    give that subset's corpus chrF, ``chrf_of``): what a paired bootstrap resamples. Callers check
    that the two lists pair up (sacreBLEU pairs them by position)."""
    return sacrebleu.CHRF()._extract_corpus_statistics(list(hypotheses), [list(references)])


def chrf_of(statistics: Sequence[Sequence[float]], picks: Sequence[int]) -> float:
    """Corpus chrF of the sentences ``picks`` (indices, repeats allowed) from ``chrf_statistics``."""
    return sacrebleu.CHRF()._compute_score_from_stats([sum(col) for col in zip(*(statistics[i] for i in picks))]).score


# --- COMET -----------------------------------------------------------------------------------

def comet_available() -> bool:
    """Whether ``unbabel-comet`` is installed (its ``comet`` package is importable)."""
    try:
        metadata.version("unbabel-comet")
    except metadata.PackageNotFoundError:
        return False
    return importlib.util.find_spec("comet") is not None


def comet_checkpoint(name_or_path: str | Path) -> Path | None:
    """The ``.ckpt`` file of a local COMET model (a ``.ckpt`` file or a folder holding
    ``checkpoints/model.ckpt``); ``None`` when ``name_or_path`` is not a local path."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        if path.suffix != ".ckpt":
            raise CometUnavailable(f"COMET checkpoint {path} is not a .ckpt file; pass the "
                                   f"model's {COMET_CKPT} or the folder that holds it")
        return path
    if path.is_dir():
        if not (path / COMET_CKPT).is_file():
            raise CometUnavailable(f"COMET model folder {path} has no {COMET_CKPT}; pass the "
                                   "folder downloaded from the hub (it holds hparams.yaml too)")
        return path / COMET_CKPT
    if path.suffix == ".ckpt" or str(name_or_path).startswith((".", "/", "~")):
        raise CometUnavailable(f"COMET checkpoint {path} does not exist; check the path")
    return None


def load_comet(name_or_path: str | Path, local_files_only: bool = False) -> Any:
    """A COMET model from a local checkpoint (file or folder) or a hub id such as
    ``Unbabel/wmt22-comet-da`` (downloaded once; offline, pass a local path instead)."""
    if not comet_available():
        raise CometUnavailable("unbabel-comet is not installed; create the COMET environment "
                               "(pip install -e '.[eval]') or skip COMET")
    import comet

    ckpt = comet_checkpoint(name_or_path)
    if ckpt is None:
        ckpt = _download_comet(str(name_or_path), local_files_only)
    try:
        return comet.load_from_checkpoint(str(ckpt), local_files_only=local_files_only)
    except Exception as err:  # the encoder's tokenizer/config may need the hub too
        raise CometUnavailable(
            f"could not load COMET checkpoint {ckpt}: {type(err).__name__}: {err}. Its "
            "hparams.yaml names an encoder (pretrained_model) that must be downloaded once or "
            "point to a local folder"
        ) from err


def _download_comet(name: str, local_files_only: bool) -> Path:
    """Checkpoint path of a hub COMET model: the local HF cache first, then the network."""
    import comet

    tries = [True] if local_files_only else [True, False]
    errors = []
    for local in tries:
        try:
            return Path(comet.download_model(name, local_files_only=local))
        except Exception as err:  # comet raises KeyError for any download failure
            errors.append(f"{type(err).__name__}: {err}")
    raise CometUnavailable(
        f"could not download COMET model {name!r} ({'; '.join(dict.fromkeys(errors))}). Offline? "
        "Download it where the hub is reachable and pass the local folder (holding "
        "checkpoints/model.ckpt) or the .ckpt file instead, e.g. eval.comet_model: "
        "/data/wmt22-comet-da"
    )


def comet_score(model: Any, sources: Sequence[str], hypotheses: Sequence[str],
                references: Sequence[str], batch_size: int = 16, gpus: int = 0) -> dict[str, Any]:
    """System COMET and per-segment scores, both x100 and rounded to 2 decimals like the paper."""
    _check_pairs(hypotheses, references, "comet_score")
    if len(sources) != len(references):
        raise ValueError(f"comet_score: {len(sources)} sources but {len(references)} references")
    samples = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(sources, hypotheses, references)]
    out = model.predict(samples, batch_size=batch_size, gpus=gpus, progress_bar=False)
    return {
        "comet": round(100.0 * float(out.system_score), 2),
        "comet_segments": [round(100.0 * float(s), 2) for s in out.scores],
    }


def comet_gpus() -> int:
    """GPUs COMET's ``predict`` should use: 1 when torch sees a CUDA device, else 0 (CPU)."""
    import torch

    return 1 if torch.cuda.is_available() else 0


@functools.lru_cache(maxsize=1)
def _cached_comet(name_or_path: str) -> Any:
    return load_comet(name_or_path)


def score_comet_or_skip(name_or_path: str | None, sources: Sequence[str],
                        hypotheses: Sequence[str], references: Sequence[str],
                        batch_size: int = 16, gpus: int = 0) -> tuple[dict[str, Any] | None, str]:
    """``(scores, message)``: COMET scores, or ``None`` and what was skipped and why."""
    if not name_or_path:
        return None, "COMET skipped: no checkpoint configured (eval.comet_model is empty)"
    if not comet_available():
        return None, ("COMET skipped: unbabel-comet is not installed in this environment; "
                      "BLEU/chrF only (COMET runs in the eval environment: pip install -e '.[eval]')")
    try:
        model = _cached_comet(str(name_or_path))
    except CometUnavailable as err:
        return None, f"COMET skipped: {err}"
    scores = comet_score(model, sources, hypotheses, references, batch_size, gpus)
    return {**scores, "comet_model": str(name_or_path)}, f"COMET scored with {name_or_path}"


# --- tables ----------------------------------------------------------------------------------

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def per_direction_table(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per-direction metrics plus ``avg_en_xx`` and ``avg_xx_en`` (paper tables 1-2).

    Each average covers the directions present on that side and the numeric metrics all of
    them report (``n`` and segment lists are not averaged); a side with no direction is left out.
    """
    table: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[str]] = {"avg_en_xx": [], "avg_xx_en": []}
    for direction, metrics in results.items():
        src, sep, tgt = direction.partition("-")
        if not sep or not src or not tgt:
            raise ValueError(f"per_direction_table: direction {direction!r} must look like 'de-en'")
        table[direction] = dict(metrics)
        if src == "en":
            groups["avg_en_xx"].append(direction)
        elif tgt == "en":
            groups["avg_xx_en"].append(direction)
    for name, directions in groups.items():
        if not directions:
            continue
        rows = [results[d] for d in directions]
        keys = [k for k, v in rows[0].items() if _is_number(v) and k != "n"]
        shared = [k for k in keys if all(_is_number(r.get(k)) for r in rows)]
        table[name] = {k: round(sum(float(r[k]) for r in rows) / len(rows), 2) for k in shared}
        table[name]["directions"] = list(directions)
    return table
