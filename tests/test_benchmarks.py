"""The benchmark commands run at tiny size on CPU and write their records (no assertion on speed)."""

import importlib.util
import json
import random

import pytest
import torch

from benchmarks import common, generation, hf_batching, lora_step, token_efficiency

RECORD_FIELDS = {"benchmark", "name", "device", "versions", "command", "created", "settings", "figures"}
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU this would build the real 7B model")


def check_record(record, records_dir, benchmark, module=None):
    """The record on disk is the one returned, has every field, and every figure is well-formed."""
    path = common.record_path(record, records_dir)
    assert path.parent == records_dir and path.name.startswith(f"{record['name']}-")
    assert json.loads(path.read_text()) == record
    assert RECORD_FIELDS <= set(record) and record["benchmark"] == benchmark
    assert record["command"].startswith(f"python -m benchmarks.{module or benchmark}")
    assert record["device"] and record["versions"]["torch"] != "-"
    for f in record["figures"]:
        assert set(f) == {"key", "label", "value", "unit", "note"}
        assert f["value"] is not None or "not measured" in f["note"] or "MFU" in f["label"]
    return {f["key"]: f for f in record["figures"]}


@pytest.mark.slow  # loads (or builds) the organism
def test_hf_batching_runs_and_records_a_ratio(tmp_path, capsys):
    out = tmp_path / "bench.json"
    result = hf_batching.main(["-n", "24", "--max-new-tokens", "8", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "ratio" in printed and "identical greedy outputs: True" in printed
    record = json.loads(out.read_text())
    assert record == result and record["command"] and record["device"]
    assert record["ratio"] > 0 and record["identical_outputs"] and record["n_prompts"] == 24


def fake_alma(folder, n=40, seed=0):
    """ALMA's layout with ``n`` line-aligned pairs of varied length per language pair."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "omega", "river", "stone", "light", "north", "table"]
    for other in ("cs", "de", "ru", "zh"):
        pair = folder / "human_written_data" / f"{other}en"
        pair.mkdir(parents=True)
        lines = [" ".join(rng.choices(words, k=rng.randint(2, 40))) for _ in range(n)]
        for lang in (other, "en"):
            (pair / f"train.{other}-en.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_token_efficiency_says_where_the_data_is_missing(tmp_path):
    with pytest.raises(SystemExit, match="ALMA training data not found.*--alma-dir"):
        token_efficiency.main(["--alma-dir", str(tmp_path / "nowhere"), "--ci-steps", "0"])


def test_token_efficiency_compares_grouped_and_random_batches(tmp_path, capsys):
    alma = fake_alma(tmp_path / "alma")
    record = token_efficiency.main(["--alma-dir", str(alma), "--limit", "300", "--vocab-size", "300",
                                    "--ci-steps", "0", "--records-dir", str(tmp_path)])
    figures = check_record(record, tmp_path, "token_efficiency")
    printed = capsys.readouterr().out
    assert all(f["label"] in printed for f in figures.values())
    assert set(figures) == {"qlora_random", "qlora_grouped", "a100_random", "a100_grouped"}
    assert all(0 < f["value"] <= 1 for f in figures.values())
    assert figures["qlora_grouped"]["value"] > figures["qlora_random"]["value"]
    loaders = {(r["profile"], r["grouped"]): r for r in record["loaders"]}
    assert loaders["qlora", True]["per_device_batch"] == 8 and loaders["a100", True]["per_device_batch"] == 16
    assert loaders["qlora", False]["real_tokens"] == loaders["qlora", True]["real_tokens"]  # same data, once
    assert record["settings"]["features"] == 300


@pytest.mark.slow  # trains the ci organism for two steps
def test_token_efficiency_reports_the_ci_trainer_throughput(tmp_path):
    alma = fake_alma(tmp_path / "alma", n=10)
    record = token_efficiency.main(["--alma-dir", str(alma), "--vocab-size", "300", "--ci-steps", "2",
                                    "--ci-method", "vanilla", "--records-dir", str(tmp_path)])
    figures = check_record(record, tmp_path, "token_efficiency")
    assert figures["ci_tokens_per_s"]["value"] > 0 and 0 < figures["ci_token_efficiency"]["value"] <= 1
    assert record["ci_run"]["steps"] == 2 and record["ci_run"]["method"] == "vanilla"


def test_lora_step_tiny_on_cpu(tmp_path):
    record = lora_step.main(["--arch", "tiny", "--batch", "4", "--seq", "64", "--steps", "2", "--warmup", "1",
                             "--device", "cpu", "--records-dir", str(tmp_path)])
    figures = check_record(record, tmp_path, "lora_step")
    config = common.arch_config("tiny")
    assert figures["N_lora"]["value"] == common.lora_parameters(config, 16)
    n = common.matmul_parameters(config)
    assert figures["flops_per_token"]["value"] == 4 * n + 6 * figures["N_lora"]["value"] + 12 * 2 * 64 * 64
    assert figures["tokens_per_s"]["value"] > 0 and figures["peak_memory_gib"]["value"] > 0
    assert figures["mfu"]["value"] is None  # a CPU has no bf16 peak
    assert record["measured"]["steps_timed"] == 2 and record["settings"]["variant"] == "lora"


def test_lora_step_qlora_tiny_quantizes_and_checkpoints(tmp_path):
    pytest.importorskip("bitsandbytes")
    record = lora_step.main(["--arch", "tiny", "--qlora", "--seq", "32", "--steps", "1", "--warmup", "1",
                             "--device", "cpu", "--records-dir", str(tmp_path)])
    check_record(record, tmp_path, "lora_step")
    s = record["settings"]
    assert s["batch"] == 8 and s["quantization"] == "nf4" and s["double_quant"] and s["gradient_checkpointing"]
    assert s["linear_4bit_modules"] == 2 * 7  # every linear layer of both blocks


@no_gpu
def test_lora_step_7b_without_gpu_counts_exactly_and_marks_the_rest(tmp_path):
    record = lora_step.main(["--arch", "llama2_7b", "--batch", "16", "--seq", "512", "--records-dir", str(tmp_path)])
    figures = check_record(record, tmp_path, "lora_step")
    assert figures["N_lora"]["value"] == 39_976_960  # r=16 on q,k,v,o,gate,up,down of 32 layers
    assert figures["N"]["value"] == 6_607_077_376  # 6.74B minus the input embedding
    for key in ("tokens_per_s", "mfu", "peak_memory_gib"):
        assert figures[key]["value"] is None and "no GPU" in figures[key]["note"]
    assert "python -m benchmarks.lora_step --arch llama2_7b" in figures["mfu"]["note"]


def test_arch_files_are_the_published_shapes():
    llama, mistral = common.arch_config("llama2_7b"), common.arch_config("mistral_7b_v02")
    assert (llama.hidden_size, llama.num_hidden_layers, llama.num_attention_heads, llama.intermediate_size,
            llama.vocab_size) == (4096, 32, 32, 11008, 32000)
    assert (mistral.hidden_size, mistral.num_hidden_layers, mistral.num_attention_heads,
            mistral.num_key_value_heads, mistral.intermediate_size, mistral.vocab_size) == (4096, 32, 32, 8, 14336, 32000)
    assert mistral.sliding_window is None
    assert common.load_arch("mistral_7b_v02")["config"]["rope_theta"] == 1e6
    assert common.lora_parameters(mistral, 16) == 41_943_040


def test_generation_tiny_scales_with_batch(tmp_path, capsys):
    record = generation.main(["--arch", "tiny", "--batch-sizes", "1,4", "--max-new-tokens", "4", "--rounds", "1",
                              "--records-dir", str(tmp_path)])
    figures = check_record(record, tmp_path, "generation")
    assert figures["hf_b1_tokens_per_s"]["value"] > 0 and figures["hf_b4_tokens_per_s"]["value"] > 0
    assert all(r["all_ran_to_cap"] and r["new_tokens"] == r["sequences"] * 4 for r in record["rows"])
    assert figures["hf_scaling"]["value"] > 0
    if not torch.cuda.is_available():
        assert figures["vllm_b1_tokens_per_s"]["value"] is None
    assert "hf engine, batch 4" in capsys.readouterr().out


def test_records_are_read_back_and_named_by_device(tmp_path):
    rec = common.make_record("x", "x-tiny", "python -m benchmarks.x", [common.figure("a", "A", 0.5, "ratio")])
    path = common.write_record(rec, tmp_path)
    assert path.name == f"x-tiny-{common.slug(rec['device'])}.json"
    assert common.read_records(tmp_path, "x") == [rec] and common.read_records(tmp_path, "y") == []
    assert common.slug("1 x NVIDIA H100 80GB HBM3") == "1-x-nvidia-h100-80gb-hbm3"
    assert lora_step.peak_tflops("1 x NVIDIA H100 80GB HBM3") == 989.0
    assert lora_step.peak_tflops("1 x NVIDIA A100-SXM4-80GB") == 312.0
    assert lora_step.peak_tflops("CPU (2 cores, 1 torch threads)") is None


def test_chapter_tables_read_the_committed_records(tmp_path):
    from benchmarks import report

    assert report.collect(tmp_path / "scratch", run_missing=False, records_dir=tmp_path / "none") == []
    records = report.collect(tmp_path / "scratch", run_missing=False)
    if not records:
        pytest.skip("no records in benchmarks/records/")
    lora = report.lora_table(records)
    unmeasured = lora[lora["tokens/s"] == "—"]
    assert all("python -m benchmarks.lora_step" in note for note in unmeasured["note"])
    todo = report.commands(records)["need a GPU"]
    assert all(cmd.startswith("python -m benchmarks.") for cmd in todo)
    assert all(0 < ratio <= 1 for ratio in report.flop_table(records)["LoRA / full FT"])


# --- the one GPU command (python -m benchmarks.gpu) -----------------------------------------------

@pytest.fixture(scope="module")
def gpu_dry_run(tmp_path_factory):
    """One dry run of every row (CPU, tiny shapes): its run record and records by name."""
    from benchmarks import gpu

    before = {p.name: p.stat().st_mtime for p in common.RECORDS_DIR.glob("*.json")}
    out = tmp_path_factory.mktemp("gpu-dry-run")
    run = gpu.main(["--dry-run", "--records-dir", str(out)])
    after = {p.name: p.stat().st_mtime for p in common.RECORDS_DIR.glob("*.json")}
    assert after == before  # a dry run never writes into benchmarks/records/
    return run, {r["name"]: r for r in common.read_records(out)}, out


def test_gpu_dry_run_runs_every_row_and_records_it(gpu_dry_run):
    run, records, out = gpu_dry_run
    check_record(run, out, "gpu_run", "gpu")
    status = {r["row"]: r["status"] for r in run["rows"]}
    assert list(status) == ["lora-tiny", "batching", "generation", "qlora", "smol"]
    expected_qlora = "done" if importlib.util.find_spec("bitsandbytes") else "skipped"
    assert status == {"lora-tiny": "done", "batching": "done", "generation": "done", "qlora": expected_qlora,
                      "smol": "done"}, run["rows"]
    assert run["goal"]["key"] == "gpu_budget" and run["goal"]["met"] in (True, False)
    for rec in records.values():
        assert rec["command"].startswith("python -m benchmarks.gpu --dry-run") and rec["settings"]["dry_run"]
    assert {"lora_step-tiny-lora-b4-s64", "lora_step-tiny-lora-ckpt-b4-s64", "batching-tiny-b4", "generation-tiny",
            "pipeline-smol", "gpu_run"} <= set(records)
    assert records["lora_step-tiny-lora-b4-s64"]["goal"]["key"] == "lora_mfu"
    assert records["lora_step-tiny-lora-b4-s64"]["goal"]["met"] is None  # a CPU has no MFU


def test_gpu_dry_run_batching_sees_the_same_conversations_three_ways(gpu_dry_run):
    _, records, out = gpu_dry_run
    rec = records["batching-tiny-b4"]
    figures = check_record(rec, out, "batching", "gpu")
    runs = rec["runs"]
    assert set(runs) == {"random", "grouped", "padding_free"}
    assert len({r["real_tokens"] for r in runs.values()}) == 1  # one epoch each over the same conversations
    assert runs["padding_free"]["token_efficiency"] == 1.0 and runs["random"]["token_efficiency"] < 1.0
    assert figures["padding_free_vs_random"]["value"] == pytest.approx(
        runs["padding_free"]["real_tokens_per_s"] / runs["random"]["real_tokens_per_s"], rel=1e-2)
    best = max(figures["grouped_vs_random"]["value"], figures["padding_free_vs_random"]["value"])
    assert rec["goal"]["value"] == best and rec["goal"]["met"] == (best >= 1.8)


def test_gpu_dry_run_pipeline_times_every_stage(gpu_dry_run):
    _, records, out = gpu_dry_run
    figures = check_record(records["pipeline-smol"], out, "pipeline", "gpu")
    stages = records["pipeline-smol"]["stages"]
    for method in ("vanilla", "seqkd", "sdft", "radis"):
        assert f"train {method}" in stages and f"evaluate {method}" in stages
    assert {"synthesis rationale", "synthesis seqkd", "synthesis sdft", "evaluate backbone"} <= set(stages)
    assert figures["total_seconds"]["value"] == pytest.approx(sum(stages.values()), abs=0.2)


def test_gpu_dry_run_generation_says_why_vllm_is_missing(gpu_dry_run):
    _, records, _ = gpu_dry_run
    rec = records["generation-tiny"]
    figures = {f["key"]: f for f in rec["figures"]}
    assert figures["hf_b4_tokens_per_s"]["value"] > 0
    assert figures["vllm_vs_hf"]["value"] is None and "vLLM" in figures["vllm_vs_hf"]["note"]
    assert rec["goal"]["key"] == "vllm_speedup" and rec["goal"]["by"] == "not measured"


def test_gpu_tables_read_gpu_records_and_say_not_measured_otherwise(gpu_dry_run):
    from benchmarks import report

    _, records, _ = gpu_dry_run
    dry = list(records.values())
    assert report.gpu_records(dry) == []  # dry runs are never shown as GPU figures
    table = report.gpu_rows_table(dry)
    assert all("not measured" in text for text in table["records"])
    assert all("not measured" in text for text in report.batching_table(dry)["note"])
    as_gpu = [{**r, "command": "python -m benchmarks.gpu", "settings": {**r["settings"], "dry_run": False}}
              for r in dry]
    batching = report.batching_table(as_gpu)
    assert list(batching["batches"]) == ["random", "grouped", "padding-free"]
    assert all(v != "—" for v in batching["real tokens/s"])
    pipeline = report.pipeline_table(as_gpu, profile="smol")
    assert len(pipeline) == len(records["pipeline-smol"]["figures"]) and "—" not in list(pipeline["seconds"])
    goals = report.goals_table(as_gpu)
    assert set(goals["goal"].str.split(":").str[0]) >= {"bf16 LoRA r=16 step on a 7B shape"}
    assert report.gpu_rows_table(as_gpu).loc["batching", "records"] == "batching-tiny-b4"


def test_gpu_without_cuda_skips_every_row_with_one_line(tmp_path, capsys):
    from benchmarks import gpu

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the command would measure")
    run = gpu.main(["--records-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert all(r["status"] == "skipped" and "no CUDA GPU" in r["line"] for r in run["rows"])
    assert [r["row"] for r in run["rows"]] == gpu.rows(gpu.GPU_PLAN)
    lines = [line for line in printed.splitlines() if line.startswith("[")]
    assert lines == [f"[{r}] skipped: {run['rows'][0]['line']}" for r in gpu.rows(gpu.GPU_PLAN)]
    assert [p.name.split("-")[0] for p in tmp_path.glob("*.json")] == ["gpu_run"]


def test_gpu_dry_run_never_writes_the_committed_records():
    from benchmarks import gpu

    with pytest.raises(SystemExit):
        gpu.main(["--dry-run", "--records-dir", str(common.RECORDS_DIR)])
    with pytest.raises(SystemExit):
        gpu.main(["--only", "nonsense"])


def test_an_isolated_row_is_stopped_at_its_cap(tmp_path, monkeypatch):
    import sys
    import time

    from benchmarks import gpu

    ctx = gpu.Context(tmp_path, tmp_path, "python -m benchmarks.gpu", dry_run=True)
    pid_file = tmp_path / "grandchild.pid"
    hang = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('started', flush=True); time.sleep(60)")
    monkeypatch.setattr(gpu, "child_command", lambda row, ctx, status: [sys.executable, "-c", hang])
    start = time.perf_counter()
    result = gpu.run_isolated("qlora", gpu.DRY_PLAN, ctx, cap=3)
    assert time.perf_counter() - start < 20
    assert result["status"] == "timed out" and "3 s cap" in result["line"]
    import os

    with pytest.raises(ProcessLookupError):  # what the row started went with it
        for _ in range(50):
            os.kill(int(pid_file.read_text()), 0)
            time.sleep(0.1)


def test_an_isolated_row_reports_its_status_file(tmp_path, monkeypatch):
    import sys

    from benchmarks import gpu

    ctx = gpu.Context(tmp_path, tmp_path, "python -m benchmarks.gpu", dry_run=True)
    done = ("import json, sys, time; time.sleep(0.3); "  # long enough to be timed at 0.1 s resolution
            "json.dump({'row': 'smol', 'status': 'skipped', 'line': 'why', 'seconds': 0, "
            "'records': []}, open(sys.argv[1], 'w'))")
    monkeypatch.setattr(gpu, "child_command", lambda row, ctx, status: [sys.executable, "-c", done, str(status)])
    result = gpu.run_isolated("smol", gpu.DRY_PLAN, ctx, cap=30)
    assert result["status"] == "skipped" and result["line"] == "why" and result["seconds"] > 0
    crash = "import sys; print('boom', flush=True); sys.exit(3)"
    monkeypatch.setattr(gpu, "child_command", lambda row, ctx, status: [sys.executable, "-c", crash])
    result = gpu.run_isolated("smol", gpu.DRY_PLAN, ctx, cap=30)
    assert result["status"] == "failed" and "code 3" in result["line"] and "boom" in result["line"]


def test_goals_say_by_how_much_they_are_met_or_missed():
    from benchmarks.goals import check

    missed = check("lora_mfu", 0.36)
    assert missed["met"] is False and missed["by"].startswith("missed by 0.09") and "80 % of the goal" in missed["by"]
    met = check("qlora_peak_memory", 12.5)
    assert met["met"] is True and met["by"].startswith("met with 3.5 to spare")
    assert check("vllm_speedup", None) == {**check("vllm_speedup", None), "met": None, "by": "not measured"}
    assert check("gpu_budget", 500, target=600)["met"] is True and check("gpu_budget", 500)["met"] is False


def test_padding_free_batches_give_the_padded_loss():
    from benchmarks import batching
    from radis_utils.losses import span_losses
    from radis_utils.train import SpanCollator

    model = common.random_model("tiny", torch.float32, "cpu", "sdpa").train()
    features = lora_step.varied_features([5, 17, 9, 30], 1024, seed=3)
    flat = batching.FlatSpanCollator()(features)
    assert flat["input_ids"].shape == (1, 61) and "attention_mask" not in flat
    assert flat["position_ids"][0, 5].item() == 0 and flat["position_ids"][0, 21].item() == 16
    with torch.no_grad():
        packed, padded = span_losses(model, flat), span_losses(model, SpanCollator(0)(features))
        alone = sum(float(span_losses(model, SpanCollator(0)([f]))["total_sum"]) for f in features)
    assert int(packed["total_tokens"]) == int(padded["total_tokens"])
    assert float(packed["total_sum"]) == pytest.approx(float(padded["total_sum"]), rel=1e-5)
    assert float(packed["total_sum"]) == pytest.approx(alone, rel=1e-5)


def test_alma_length_table_is_shipped_and_sampled():
    from benchmarks import batching

    table = batching.length_table()
    assert table["conversations"] == sum(table["counts"].values()) > 100_000
    drawn = batching.sample_lengths(table, 2000, seed=0, max_length=512)
    assert drawn == batching.sample_lengths(table, 2000, seed=0, max_length=512)
    assert max(drawn) <= 512 and min(drawn) >= min(map(int, table["counts"]))
    median = sorted(drawn)[1000]
    assert 60 < median < 160  # ALMA's conversations: median near 95 tokens with the stand-in tokenizer
    with pytest.raises(FileNotFoundError, match="--write-lengths"):
        batching.length_table(common.HERE / "no-such-table.json")


def test_lora_table_shows_a_gpu_run_in_place_of_its_meta_record(gpu_dry_run):
    from benchmarks import report

    _, records, _ = gpu_dry_run
    rec = records["lora_step-tiny-lora-b4-s64"]
    oom = {**rec, "measured": None, "device": "1 x NVIDIA H200", "settings": {**rec["settings"], "device": "cuda"},
           "figures": [{**f, "value": None, "note": "not measured — out of memory"} if f["key"] == "tokens_per_s"
                       else f for f in rec["figures"]]}
    meta = {**rec, "measured": None, "device": "CPU", "settings": {**rec["settings"], "device": "meta"}}
    table = report.lora_table([meta, oom])
    assert len(table) == 1 and table.iloc[0]["device"] == "1 x NVIDIA H200"
    assert table.iloc[0]["tokens/s"] == "—" and "out of memory" in table.iloc[0]["note"]
    assert report.lora_table([meta]).iloc[0]["device"] == "none (meta: shapes only)"


def test_organism_step_times_both_attention_settings_on_the_same_batches(capsys):
    from benchmarks import organism_step

    assert organism_step.main(["--steps", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "ms/step" in line]
    assert [line.split()[0] for line in lines] == ["sdpa", "eager"]
    losses = {line.rsplit(" ", 1)[-1] for line in lines}
    assert len(losses) == 1  # one initialisation, one batch: the same loss whatever the attention


def test_smol_threads_times_both_speedups_back_to_back(capsys):
    """Its code path on the organism (one direction, 8 prompts): the lines and ratios it prints."""
    from benchmarks import smol_threads

    smol_threads.main(["--profile", "ci", "--limit", "8"])
    out = capsys.readouterr().out
    assert "ci: 8 test prompts over 1 directions" in out
    assert "1 thread(s): translation per direction" in out and "2 thread(s)" in out
    for line in ("all at once vs per direction, 1 thread:", "2 threads vs 1, train step:", "both ("):
        assert line in out


def test_chapter_setup_times_both_variants_in_fresh_interpreters(capsys):
    """One repeat: both variants run the setup in a new process and the ratio is printed."""
    from benchmarks import chapter_setup

    medians = chapter_setup.main(["--profile", "ci", "--repeats", "1"])
    out = capsys.readouterr().out
    assert set(medians) == {"with build", "spec only"} and all(m > 0 for m in medians.values())
    assert "setup with build / spec only: " in out and "over 1 fresh interpreters" in out


def test_the_smol_row_skips_when_its_gguf_package_is_missing(tmp_path, monkeypatch):
    """A machine without the SmolLM2 wheel (or gguf) cannot run the row: that is "skipped" with
    the reason, not "failed"."""
    import dataclasses

    from benchmarks import gpu, gpu_rows

    from radis_utils.config import resolve_path

    ctx = gpu.Context(tmp_path, tmp_path, "python -m benchmarks.gpu", dry_run=False,
                      alma_dir=str(resolve_path("../shared/data/alma")))
    plan = dataclasses.replace(gpu.GPU_PLAN, smol_overrides={
        "model__backbone": "gguf:no_such_wheel_pkg/model.gguf"})
    with pytest.raises(gpu.Skip, match="no_such_wheel_pkg"):  # run_row reports a Skip as "skipped"
        gpu_rows.pipeline(plan, ctx)


# --- the GPU smoke (python -m benchmarks.gpu --smoke): every chapter at the tiny GPU profiles --------

@pytest.fixture(scope="module")
def smoke_dry_run(tmp_path_factory):
    """One dry run of the smoke: every chapter at a100-tiny on the CPU (qlora-tiny with bitsandbytes)."""
    from benchmarks import gpu

    before = {p.name: p.stat().st_mtime for p in common.RECORDS_DIR.glob("*.json")}
    out = tmp_path_factory.mktemp("smoke")
    record = gpu.main(["--smoke", "--dry-run", "--records-dir", str(out)])
    assert {p.name: p.stat().st_mtime for p in common.RECORDS_DIR.glob("*.json")} == before
    return record, out


@pytest.mark.slow  # executes the eleven chapters (about two minutes)
def test_smoke_dry_run_executes_every_chapter_at_a100_tiny_and_every_stage_says_cpu(smoke_dry_run, root):
    from benchmarks.gpu_smoke import STAGES
    from radis_utils.runbook import chapters

    record, out = smoke_dry_run
    figures = check_record(record, out, "gpu_smoke", "gpu")
    assert record["command"].startswith("python -m benchmarks.gpu --smoke --dry-run")
    runs = {r["profile"]: r for r in record["profiles"]}
    a100 = runs["a100-tiny"]
    assert [c["chapter"] for c in a100["chapters"]] == [nb.name for nb in chapters(root / "notebooks")]
    assert all(c["ok"] for c in a100["chapters"]), [c for c in a100["chapters"] if not c["ok"]]
    assert {c["stage"] for c in a100["checks"]} == set(STAGES)
    assert all(c["ok"] and c["devices"] and all(d.startswith("cpu") for d in c["devices"]) for c in a100["checks"]), \
        [c for c in a100["checks"] if not c["ok"]]
    assert record["ok"] and figures["checks_failed"]["value"] == 0
    if importlib.util.find_spec("bitsandbytes") is None:
        assert runs["qlora-tiny"]["status"] == "skipped" and "bitsandbytes" in runs["qlora-tiny"]["line"]


def test_smoke_checks_fail_on_the_wrong_device_a_missing_stage_or_no_memory(tmp_path):
    from benchmarks.gpu_smoke import STAGES, stage_checks
    from radis_utils.records import write_json

    runs = tmp_path
    write_json(runs / "results/observation.json", {"device": "cuda:0 (NVIDIA H100 80GB HBM3)"})
    (runs / "synthesis/m").mkdir(parents=True)
    from radis_utils import records as rec

    line = {"id": "a", "direction": "de-en", "instruction": "x", "source": "x", "reference": "y",
            "target_kind": "rationale", "text": "r", "model": "m", "created": "-", "flags": [],
            "decoding": {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 4, "seed": 0,
                         "engine": "hf"},
            "device": "cpu (2 cores)"}
    (runs / "synthesis/m/rationale.jsonl").write_text(json.dumps({**line, "key": rec.content_key(line)}) + "\n")
    write_json(runs / "adapters/radis-seed0/summary.json", {"device": "cuda:0 (H100)", "peak_memory_gib": 0.0})
    for name in ("backbone", "vanilla-seed0", "seqkd-seed0", "sdft-seed0", "radis-seed0"):
        write_json(runs / f"results/{name}.json", {"device": "cuda:0 (H100)"})
    checks = {c.stage: c for c in stage_checks(runs, "cuda")}
    assert set(checks) == set(STAGES)
    assert checks["02 observation"].ok and checks["06 evaluation"].ok
    assert not checks["03 synthesis"].ok and "ran on cpu (2 cores), not cuda" in checks["03 synthesis"].why
    assert not checks["05 training"].ok and "no memory was measured" in checks["05 training"].why
    assert not checks["08 gradients"].ok and "no file matches" in checks["08 gradients"].why


def test_cpu_paths_measures_both_loops_and_every_training_setting(capsys):
    """Its code path on the organism (4 prompts of each kind, one timed step): every row, its
    agreement with ``generate`` and both goal lines; the chapter's table reads such a record."""
    from benchmarks import cpu_paths, report
    from radis_utils.trainer import cpu_has_bf16

    assert cpu_paths.main(["--profile", "ci", "--per-kind", "4", "--batch-sizes", "3", "--train-steps", "1",
                           "--no-record"]) == 0
    out = capsys.readouterr().out
    assert "ci: 12 prompts (4 translation, 4 continuation, 4 general)" in out
    assert "generation, cpu, batch 3:" in out and "100 % of outputs identical to hf's" in out
    settings = [name for name, bf16, _ in cpu_paths.TRAINING_SETTINGS if cpu_has_bf16() or not bf16]
    assert all(f"LoRA training, {name}:" in out for name in settings)
    assert "generation at identical greedy text (cpu, batch 3):" in out and "against a goal of 2.0x" in out
    assert "against a goal of 1.5x" in out
    table = report.cpu_paths_table([{"benchmark": "cpu_paths", "created": "2026-12-07T00:00:00+00:00", "figures": [
        common.figure("generation_hf_b16", "generation, hf, batch 16", 50.0, "new tokens/s", "1.00x hf")]}])
    assert table.iloc[0].to_dict() == {"setting": "generation, hf, batch 16", "rate": "50.0 new tokens/s",
                                       "note": "1.00x hf"}


def test_kv_cache_runs_both_settings_on_the_same_prompts(capsys):
    """Its code path on the organism: both rows, the ratio line, replies identical across settings."""
    from benchmarks import kv_cache

    assert kv_cache.main(["--profile", "ci", "--prompts", "12", "--max-new-tokens", "24", "--batch-size", "4",
                          "--no-record"]) == 0
    out = capsys.readouterr().out
    assert "ci: 12 IFEval prompts, 24 new tokens, greedy, batch 4" in out
    assert "cpu loop, transformers' DynamicLayer" in out and "cpu loop, spare room, padding dropped" in out
    assert "100 % of replies identical" in out.splitlines()[-1]
