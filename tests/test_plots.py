import matplotlib
import matplotlib.image

matplotlib.use("Agg")

from radis_utils import plots  # noqa: E402


def test_token_strips_one_axis_per_row_and_legend():
    rows = {
        "a": [("<s>", "template"), ("Hi", "instruction"), (" there", "reference")],
        "b": [("x", "template")] * 100,
    }
    fig = plots.token_strips(rows, max_tokens=10)
    assert len(fig.axes) == 2
    assert "last 10 of 100" in fig.axes[1].get_title(loc="left")
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert labels == {"template", "instruction", "reference"}
    assert "·there" in {t.get_text() for t in fig.axes[0].texts}


def test_tradeoff_leaves_out_an_undefined_rp_and_says_so():
    fig = plots.tradeoff({"backbone": [(10.0, 100.0)], "radis": [(12.0, None)], "vanilla": [(11.0, 90.0), (13.0, 80.0)]},
                         title="t")
    ax = fig.axes[0]
    assert "RP undefined: radis" in ax.get_title(loc="left")
    assert sorted(t.get_text() for t in ax.texts) == ["backbone", "vanilla"]


def test_the_readme_figure_is_made_from_the_committed_record_and_no_chapter_writes_it(tmp_path, root):
    from radis_utils import calibration

    record = calibration.read_record("ci")
    fig = plots.record_tradeoff(record)
    assert len(fig.axes[0].lines) > 0
    out = tmp_path / "f.png"
    assert plots.main(["--out", str(out)]) == 0 and out.stat().st_size > 0
    made, committed = matplotlib.image.imread(out), matplotlib.image.imread(root / plots.README_FIGURE)
    assert made.shape == committed.shape and abs(made - committed).mean() < 0.002  # this record's figure
    chapters = " ".join((root / "notebooks").joinpath(n).read_text() for n in sorted(
        p.name for p in (root / "notebooks").glob("*.ipynb")))
    assert "savefig" not in chapters  # building the book leaves tracked files alone
