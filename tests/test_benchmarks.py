"""The benchmark commands run at tiny size on CPU and write their records (no assertion on speed)."""

import json
import random

import pytest
import torch

from benchmarks import common, generation, hf_batching, lora_step, token_efficiency

RECORD_FIELDS = {"benchmark", "name", "device", "versions", "command", "created", "settings", "figures"}
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU this would build the real 7B model")


def check_record(record, records_dir, benchmark):
    """The record on disk is the one returned, has every field, and every figure is well-formed."""
    path = common.record_path(record, records_dir)
    assert path.parent == records_dir and path.name.startswith(f"{record['name']}-")
    assert json.loads(path.read_text()) == record
    assert RECORD_FIELDS <= set(record) and record["benchmark"] == benchmark
    assert record["command"].startswith(f"python -m benchmarks.{benchmark}")
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
