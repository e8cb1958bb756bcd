"""Figures in one style, for every chapter."""

from __future__ import annotations

from typing import Any, Sequence

ROLE_COLOURS = {
    "template": "#d9d9d9",
    "instruction": "#9ecae1",
    "reference": "#fdae6b",
    "rationale": "#a1d99b",
    "prompt": "#9ecae1",
}


def apply_style() -> None:
    """Matplotlib defaults shared by every chapter (quiet, readable, colour-blind-safe cycle)."""
    import matplotlib as mpl

    mpl.rcParams.update({
        "figure.dpi": 110,
        "savefig.dpi": 110,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "font.size": 10,
        "axes.prop_cycle": mpl.cycler(color=["#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                             "#56B4E9", "#D55E00", "#F0E442", "#000000"]),
    })


def token_strips(rows: dict[str, Sequence[tuple[str, str]]], max_tokens: int = 48) -> Any:
    """One strip of coloured token boxes per row label; colour = role (template/instruction/...).

    Shows the last ``max_tokens`` tokens of each row, where the reference ends the prompt.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    apply_style()
    shown = {label: [(_visible(tok), role) for tok, role in list(tokens)[-max_tokens:]]
             for label, tokens in rows.items()}
    widths = {label: [0.62 * len(text) + 1.0 for text, _ in toks] for label, toks in shown.items()}
    span = max(sum(w) for w in widths.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(min(16, max(8, span * 0.085)), 0.9 * len(rows) + 0.7),
                             squeeze=False)
    for ax, label in zip(axes[:, 0], shown):
        x = 0.0
        for (text, role), width in zip(shown[label], widths[label]):
            ax.add_patch(Rectangle((x, 0), width, 1, color=ROLE_COLOURS.get(role, "#eeeeee"), ec="white"))
            ax.text(x + width / 2, 0.5, text, ha="center", va="center", fontsize=7, family="monospace")
            x += width
        ax.set_xlim(0, span)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.set_title(f"{label}: last {len(shown[label])} of {len(rows[label])} tokens "
                     "(the model writes next)", loc="left", fontsize=9)
    used = {role for tokens in rows.values() for _, role in tokens}
    handles = [Patch(color=c, label=r) for r, c in ROLE_COLOURS.items() if r in used]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def _visible(token: str) -> str:
    """A token as printable text: spaces as '·', newlines as '⏎'."""
    return token.replace(" ", "·").replace("\n", "⏎") or "∅"


def training_curves(log: Sequence[dict[str, Any]], title: str = "") -> Any:
    """Loss per logged step, overall and per task when the log has ``per_task`` entries."""
    import matplotlib.pyplot as plt

    apply_style()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    steps = [row["step"] for row in log]
    ax.plot(steps, [row["loss"] for row in log], color="black", lw=2, label="all tasks")
    tasks = sorted({t for row in log for t in row.get("per_task", {})})
    for task in tasks:
        ax.plot(steps, [row.get("per_task", {}).get(task, float("nan")) for row in log], lw=1, label=task)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("cross-entropy per target token")
    ax.set_title(title, loc="left")
    ax.legend(ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def paired_bars(labels: Sequence[str], series: dict[str, Sequence[float | None]],
                ylabel: str, title: str = "", ax: Any = None) -> Any:
    """Grouped bars, one group per label and one bar per series; ``None`` values are left out."""
    import matplotlib.pyplot as plt

    apply_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4, 0.9 * len(labels) * len(series)), 3.4))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
        kept = [(x, v) for x, v in zip(xs, values) if v is not None]
        bars = ax.bar([x for x, _ in kept], [v for _, v in kept], width, label=name)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 4 else 0)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def token_loss_bars(tokens: Sequence[str], losses: Sequence[float | None], roles: Sequence[str],
                    title: str = "") -> Any:
    """Per-token cross-entropy as bars coloured by span; ``None`` (not learned) shows as a gap."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    apply_style()
    fig, ax = plt.subplots(figsize=(min(16, max(7, 0.28 * len(tokens))), 3.4))
    heights = [v if v is not None else 0.0 for v in losses]
    ax.bar(range(len(tokens)), heights, color=[ROLE_COLOURS.get(r, "#eeeeee") for r in roles], ec="white")
    ax.set_xticks(range(len(tokens)), [_visible(t) for t in tokens], rotation=90, fontsize=7,
                  family="monospace")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(title, loc="left")
    used = [r for r in ROLE_COLOURS if r in set(roles)]
    ax.legend(handles=[Patch(color=ROLE_COLOURS[r], label=r) for r in used], frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def curves(series: dict[str, tuple[Sequence[float], Sequence[float | None]]], ylabel: str,
           title: str = "", log_y: bool = True, ax: Any = None) -> Any:
    """One line per named ``(x, y)`` series (``None`` values are skipped)."""
    import matplotlib.pyplot as plt

    apply_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.4))
    for name, (xs, ys) in series.items():
        kept = [(x, y) for x, y in zip(xs, ys) if y is not None]
        ax.plot([x for x, _ in kept], [y for _, y in kept], lw=1.5, label=name)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def log_series(log: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float | None]]:
    """``(steps, values)`` of one key of a trainer log (``train.train_log``)."""
    rows = [row for row in log if "step" in row]
    return [row["step"] for row in rows], [row.get(key) for row in rows]


METHOD_COLOURS = {"vanilla": "#999999", "seqkd": "#E69F00", "sdft": "#CC79A7", "radis": "#009E73"}


#: ``layer_bars``: the widest panel (inches) and the most unit labels under it, so that a real
#: model's hundreds of gradient units (SmolLM2: 30 layers x 7 modules) still fit a page.
MAX_PANEL_WIDTH = 14.0
MAX_TICK_LABELS = 48


def layer_bars(panels: dict[str, dict[str, Sequence[float | None]]], layers: Sequence[Any],
               ylabel: str = "mean cosine(∇MT, ∇reg)", ncols: int | None = None, xlabel: str = "layer") -> Any:
    """One panel per key (e.g. a seed), grouped bars per layer (or unit), one bar per method; ``None`` = no bar.

    The y axis is shared and symmetric around 0, so the sign of every bar reads at a glance.
    """
    import matplotlib.pyplot as plt

    apply_style()
    ncols = ncols or len(panels)
    nrows = -(-len(panels) // ncols)
    panel_width = min(MAX_PANEL_WIDTH, max(4.2, (0.5 if len(layers) <= 12 else 0.32) * len(layers) + 2.6))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_width * ncols, 3.2 * nrows), squeeze=False, sharey=True)
    values = [abs(v) for series in panels.values() for vs in series.values() for v in vs if v is not None]
    top = max(values, default=1.0) * 1.15 or 1.0
    for ax, (title, series) in zip(axes.flat, panels.items()):
        width = 0.8 / max(len(series), 1)
        for k, (method, vs) in enumerate(series.items()):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(layers))]
            kept = [(x, v) for x, v in zip(xs, vs) if v is not None]
            ax.bar([x for x, _ in kept], [v for _, v in kept], width, label=method,
                   color=METHOD_COLOURS.get(method.split()[0].lower().replace("-", "")))
        ax.axhline(0, color="black", lw=0.8)
        labels = [str(layer) for layer in layers]
        every = -(-len(labels) // MAX_TICK_LABELS)  # a real model's many units: every k-th label
        ticks = list(range(0, len(labels), every))
        ax.set_xticks(ticks, [labels[i] for i in ticks], rotation=90 if max(map(len, labels), default=0) > 3 else 0,
                      fontsize=8 if len(labels) > 12 else None)
        ax.set_xlabel(xlabel)
        ax.set_ylim(-top, top)
        ax.set_title(title, loc="left", fontsize=9)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    axes.flat[0].legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


# --- performance appendix (chapter 10) ----------------------------------------------------------

def throughput_vs_batch(series: dict[str, tuple[Sequence[int], Sequence[float | None]]],
                        ylabel: str = "new tokens / s", title: str = "", ax: Any = None) -> Any:
    """Throughput against batch size, one line per named ``(batch sizes, values)`` series; log-log
    axes with the batch sizes as ticks and a dotted line for perfect (linear) scaling from the first point."""
    import matplotlib.pyplot as plt

    apply_style()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.6))
    ticks: set[int] = set()
    for name, (xs, ys) in series.items():
        kept = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if not kept:
            continue
        line, = ax.plot([x for x, _ in kept], [y for _, y in kept], marker="o", lw=1.5, label=name)
        x0, y0 = kept[0]
        ax.plot([x for x, _ in kept], [y0 * x / x0 for x, _ in kept], ls=":", color=line.get_color(), lw=1)
        for x, y in kept:
            ax.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
        ticks |= {x for x, _ in kept}
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted(ticks), [str(t) for t in sorted(ticks)])
    ax.set_xlabel("batch size (sequences generated together)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=8, title="dotted: linear scaling", title_fontsize=7)
    ax.figure.tight_layout()
    return ax.figure


def tradeoff(points: dict[str, Sequence[tuple[float, float]]], title: str = "",
             xlabel: str = "translation quality (chrF, test set)",
             ylabel: str = "general ability kept (RP, %)", star: str = "radis") -> Any:
    """Paper figure 1: one point per model at the mean of its ``(translation, RP)`` pairs (one
    pair per seed), with bars spanning the seeds; ``star`` is drawn as a star. A model with an
    undefined RP (``None``) on any seed is left out and named under the title."""
    undefined = [name for name, pairs in points.items() if any(p[1] is None for p in pairs)]
    if undefined:
        title = f"{title}\nnot shown, RP undefined: {', '.join(undefined)}"

    def spread(values: Sequence[float]) -> tuple[float, float, float]:
        return sum(values) / len(values), min(values), max(values)
    return interval_tradeoff({name: (spread([p[0] for p in pairs]), spread([p[1] for p in pairs]))
                              for name, pairs in points.items() if name not in undefined},
                             title, xlabel, ylabel, star)


def interval_tradeoff(points: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]],
                      title: str = "", xlabel: str = "translation quality (chrF, test set)",
                      ylabel: str = "general ability kept (RP, %)", star: str = "radis") -> Any:
    """Paper figure 1 with intervals: per model ``((x, lo, hi), (y, lo, hi))``, a point at the
    estimate and bars spanning its interval; ``star`` is drawn as a star."""
    import matplotlib.pyplot as plt

    apply_style()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, ((x, xlo, xhi), (y, ylo, yhi)) in points.items():
        ax.errorbar(x, y, xerr=[[x - xlo], [xhi - x]], yerr=[[y - ylo], [yhi - y]],
                    fmt="*" if name == star else "o", ms=14 if name == star else 8, capsize=3, label=name)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 6), fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left")
    ax.legend(frameon=False, fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


# --- the README's figure --------------------------------------------------------------------

#: Where the README's figure lives: made from the committed calibration record by one command
#: (``python -m radis_utils.plots``), never by a chapter, so building the book leaves it alone.
README_FIGURE = "book/img/figure1_ci.png"


def record_tradeoff(record: dict[str, Any]) -> Any:
    """Figure 1 over a calibration record's worlds: one pair per world (its seed mean of chrF and
    RP), so the bars span the worlds; the backbone keeps RP 100 by definition."""
    points: dict[str, list[tuple[float, float]]] = {"backbone": []}
    for world in record["worlds"]:
        points["backbone"].append((world["backbone"]["chrf"], 100.0))
        for method, runs in world["methods"].items():
            rps = [r["rp"] for r in runs]
            rp = None if None in rps else sum(rps) / len(rps)
            points.setdefault(method, []).append((sum(r["chrf"] for r in runs) / len(runs), rp))
    return tradeoff(points, title=f"The organism ({record['profile']}): {len(record['worlds'])} worlds, "
                                  "mean and range over worlds")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m radis_utils.plots``: the README's figure from ``calibration/ci.json``."""
    import argparse

    from .calibration import read_record
    from .config import resolve_path

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", default=README_FIGURE)
    args = ap.parse_args(argv)
    record = read_record("ci")
    if record is None:
        ap.error("no calibration/ci.json: run python -m radis_utils.calibration first")
    out = resolve_path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    record_tradeoff(record).savefig(out, metadata={"Software": None})  # no version stamp: same record, same file
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
