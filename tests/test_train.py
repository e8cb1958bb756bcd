"""The trainer: data per method, span labels, a tiny real run, resume, reload, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch
from transformers import TrainerCallback

from radis_utils import data, models, records, synthesis, train, trainer
from radis_utils.checkpoints import ResumeError
from radis_utils.config import ConfigError, load_profile
from radis_utils.losses import RATIONALE, REFERENCE


@pytest.fixture(scope="module")
def backbone(tiny_backbone):
    return tiny_backbone


def tiny_cfg(backbone, runs, **kw):
    settings = dict(model__backbone=str(backbone), runtime__runs_dir=str(runs), data__max_train_pairs=48,
                    train__max_steps=6, train__save_steps=3, train__logging_steps=1, train__per_device_batch=8,
                    train__effective_batch=16, train__max_length=128)
    return load_profile("ci", **{**settings, **kw})


def fake_synthesis(cfg, kind, text_of):
    examples = data.training_examples(cfg)
    path = synthesis.records_path(cfg, kind)
    recs = [{"id": e.id, "direction": e.direction, "instruction": e.instruction, "source": e.source,
             "reference": e.reference, "target_kind": kind, "text": text_of(e), "model": cfg.model.backbone,
             "decoding": {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 8, "seed": 0, "engine": "hf"}, "created": "2026-01-01T00:00:00Z", "flags": []} for e in examples]
    records.append_records(path, recs)
    return examples


def test_methods_build_their_own_responses(backbone, tmp_path):
    cfg = tiny_cfg(backbone, tmp_path)
    examples = fake_synthesis(cfg, "rationale", lambda e: "" if e.id.endswith("0") else "Because it is.")
    fake_synthesis(cfg, "seqkd", lambda e: e.reference.upper() + " . Also this")
    fake_synthesis(cfg, "sdft", lambda e: "again " + e.reference)
    vanilla, _ = train.training_items(cfg, "vanilla")
    assert [i.reference for i in vanilla] == [e.reference for e in examples]
    radis, counts = train.training_items(cfg, "radis")
    assert counts["empty_rationales"] == sum(e.id.endswith("0") for e in examples) > 0
    assert all(i.reference == e.reference for i, e in zip(radis, examples))
    seqkd, _ = train.training_items(cfg, "seqkd")
    own = [i for i in seqkd if i.regulariser]
    assert len(seqkd) == 2 * len(examples) and len(own) == len(examples)
    assert own[0].reference == examples[0].reference.upper() + " . Also this"  # eq. 5: the whole reply y'
    cut = load_profile("ci", **{**cfg_settings(cfg), "train__seqkd_own": "translation"})
    own_cut = [i for i in train.training_items(cut, "seqkd")[0] if i.regulariser]
    assert own_cut[0].reference == examples[0].reference.upper()  # the named variant: the extraction rule cut "Also this"
    exported = json.loads(synthesis.export_llama_factory(
        cfg, records.read_records(synthesis.records_path(cfg, "seqkd")), tmp_path / "lf", "seqkd",
        models.load_tokenizer(cfg)).read_text())
    assert [(r["instruction"], r["output"]) for r in exported] == sorted(
        [(i.instruction, i.reference) for i in seqkd], key=lambda x: [i.instruction for i in seqkd].index(x[0]))
    sdft, _ = train.training_items(cfg, "sdft")
    assert sdft[0].reference == "again " + examples[0].reference


def test_seqkd_own_translations_are_the_regulariser_span(backbone, tmp_path):
    cfg = tiny_cfg(backbone, tmp_path)
    tok = models.load_tokenizer(cfg)
    items = [train.TrainItem("a", "en-sy", "Translate : a b", "x y"),
             train.TrainItem("a#own", "en-sy", "Translate : a b", "x z", regulariser=True)]
    feats, counts = train.tokenize_items(tok, items, 128)
    assert REFERENCE in feats[0]["spans"] and RATIONALE not in feats[0]["spans"]
    assert RATIONALE in feats[1]["spans"] and REFERENCE not in feats[1]["spans"]
    assert counts == {"dropped_too_long": 0, "truncated_rationales": 0}


def test_bad_input_gets_clear_errors(backbone, tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cfg = tiny_cfg(backbone, tmp_path)
    with pytest.raises(train.TrainingError, match="unknown; choose one of"):
        train.training_items(cfg, "lora")
    with pytest.raises(train.TrainingError, match="rationale.jsonl not found.*chapter 03"):
        train.training_items(cfg, "radis")
    examples = data.training_examples(cfg)
    fake_synthesis(load_profile("ci", model__backbone=str(backbone), runtime__runs_dir=str(tmp_path),
                                data__max_train_pairs=10), "rationale", lambda e: "r")
    with pytest.raises(train.TrainingError, match=r"have no record .*re-run the synthesis"):
        train.training_items(cfg, "radis", examples)
    tok = models.load_tokenizer(cfg)
    with pytest.raises(train.TrainingError, match="'bad'.*empty reference"):
        train.tokenize_items(tok, [train.TrainItem("bad", "en-sy", "Translate : a", "  ")], 64)


def cfg_settings(cfg):
    """The overrides that ``tiny_cfg`` applied, to rebuild a variant of it."""
    return dict(model__backbone=cfg.model.backbone, runtime__runs_dir=cfg.runtime.runs_dir,
                data__max_train_pairs=cfg.data.max_train_pairs, train__max_length=cfg.train.max_length)


def test_accumulation_needs_a_whole_number_of_micro_batches(backbone, tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cfg = tiny_cfg(backbone, tmp_path)  # effective 16, per device 8
    assert train.accumulation_steps(cfg) == 2
    # app. B: Seq-KD's batch is doubled (256 vs 128) so that y + y' take as many steps as the others
    assert train.accumulation_steps(cfg, "seqkd") == 4 and train.effective_batch(cfg, "seqkd") == 32
    assert train.training_arguments(cfg, tmp_path, 0, "seqkd").gradient_accumulation_steps == 4
    single = load_profile("ci", **{**cfg_settings(cfg), "train__per_device_batch": 8, "train__effective_batch": 16,
                                   "train__seqkd_double_batch": False})
    assert train.accumulation_steps(single, "seqkd") == 2
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert train.accumulation_steps(cfg) == 1
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ConfigError, match="not a multiple"):
        train.accumulation_steps(cfg)


class Interrupt(TrainerCallback):
    """Stops the run (as a crash would) after ``at`` optimizer steps."""

    def __init__(self, at):
        self.at = at

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.at:
            raise KeyboardInterrupt


class FirstStep(TrainerCallback):
    def __init__(self):
        self.first = None

    def on_step_end(self, args, state, control, **kw):
        self.first = self.first or state.global_step


def test_train_resumes_after_interruption_and_loads_back(backbone, tmp_path):
    cfg = tiny_cfg(backbone, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train.train(cfg, "vanilla", seed=0, callbacks=[Interrupt(4)])
    out = train.adapter_dir(cfg, "vanilla", 0)
    assert (out / "checkpoints" / "checkpoint-3").is_dir() and train.read_summary(out) is None
    first = FirstStep()
    assert train.train(cfg, "vanilla", seed=0, callbacks=[first]) == out
    summary = train.read_summary(out)
    assert first.first == 4  # continued from checkpoint-3, did not restart at step 1
    assert summary["resumed_from_step"] == 3 and summary["steps"] == 6
    assert [e["step"] for e in train.train_log(out)] == [1, 2, 3, 4, 5, 6]
    assert all(e["mt_loss"] is not None and e["reg_loss"] is None for e in train.train_log(out))
    assert summary["parameters"]["trainable"] < summary["parameters"]["total"]
    # finished: a re-run loads instead of training; other settings are refused
    assert train.train(cfg, "vanilla", seed=0, callbacks=[Interrupt(1)]) == out
    with pytest.raises(train.TrainingError, match=r"other settings \(train\.learning_rate: 0\.004 stored, 1e-05 asked"):
        train.train(tiny_cfg(backbone, tmp_path, train__learning_rate=1e-5), "vanilla", seed=0)
    # the adapter loads back and changes the backbone's outputs
    tuned, base = models.load_adapter(cfg, out), models.load_model(cfg)
    ids = torch.tensor([[1, 2, 3, 4]])
    assert not torch.allclose(tuned(input_ids=ids).logits, base(input_ids=ids).logits)
    merged = models.load_adapter(cfg, out, merge=True)
    assert torch.allclose(merged(input_ids=ids).logits, tuned(input_ids=ids).logits, atol=1e-4)


def test_a_resumed_run_logs_the_same_entries_as_one_never_stopped(backbone, tmp_path):
    """Checkpoints (save_steps 4, the midpoint 3) off the logging grid (every 2 steps): each save
    logs too, so the entry after a resume averages the same steps as in an uninterrupted run."""
    settings = dict(train__logging_steps=2, train__save_steps=4)
    whole = train.train(tiny_cfg(backbone, tmp_path / "whole", **settings), "vanilla", 0)
    cfg = tiny_cfg(backbone, tmp_path / "cut", **settings)
    with pytest.raises(KeyboardInterrupt):
        train.train(cfg, "vanilla", seed=0, callbacks=[Interrupt(4)])  # after the midpoint's save at 3
    resumed = train.train(cfg, "vanilla", seed=0)
    assert train.read_summary(resumed)["resumed_from_step"] == 3

    def entries(out):
        return [(e["step"], round(e["loss"], 6), round(e["mt_loss"], 6)) for e in train.train_log(out)]
    assert [e[0] for e in entries(whole)] == [2, 3, 4, 6]
    assert entries(resumed) == entries(whole)


def test_the_kept_midpoint_leaves_the_run_as_it_was(backbone, tmp_path, monkeypatch):
    """``KeepMidpoint`` adds a save at step 3 of 6 (save_steps 4 would not save there) and keeps a copy;
    the run ends on the same weights as one without it."""
    from safetensors.torch import load_file

    kept = train.train(tiny_cfg(backbone, tmp_path / "kept", train__save_steps=4), "vanilla", 0)
    mid = kept / "midpoint" / "checkpoint-3"
    assert (mid / "optimizer.pt").is_file() and (mid / "radis_run.json").is_file()
    assert sorted(p.name for p in (kept / "checkpoints").iterdir()) == ["checkpoint-6"]  # finished: the last is kept
    monkeypatch.setattr(trainer, "KeepMidpoint", lambda out: TrainerCallback())
    plain = train.train(tiny_cfg(backbone, tmp_path / "plain", train__save_steps=4), "vanilla", 0)
    assert not (plain / "midpoint").exists()
    a, b = adapter_weights(kept), adapter_weights(plain)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(w, a[k]) for k, w in load_file(str(mid / "adapter_model.safetensors")).items())


class EndInterrupt(TrainerCallback):
    """Stops the run after its last checkpoint, before the adapter and summary are written."""

    def on_train_end(self, args, state, control, **kw):
        raise KeyboardInterrupt


def adapter_weights(out):
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


def test_a_killed_run_resumes_exactly_and_its_summary_covers_every_session(backbone, tmp_path):
    # the defaults: group_by_length on; 3 optimizer steps per epoch, a checkpoint every 2
    small = dict(train__save_steps=2, data__max_train_pairs=24, train__per_device_batch=4, train__effective_batch=8)
    cfg = tiny_cfg(backbone, tmp_path, **small)
    assert cfg.train.group_by_length
    whole = train.train(cfg, "vanilla", seed=0, tag="whole")
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 2, after checkpoint-4
        train.train(cfg, "vanilla", seed=0, callbacks=[Interrupt(5)])
    out = train.adapter_dir(cfg, "vanilla", 0)
    ledger = out / "checkpoints" / "checkpoint-4" / "radis_run.json"
    for key, shown in [("train__learning_rate", r"train\.learning_rate: 0\.004 stored, 0\.001 asked"),
                       ("synthesis__max_rationale_tokens", r"synthesis\.max_rationale_tokens: None stored, 5 asked"),
                       ("synthesis__sdft_min_chrf", r"synthesis\.sdft_min_chrf: None stored, 10\.0 asked")]:
        value = {"train__learning_rate": 1e-3, "synthesis__max_rationale_tokens": 5}.get(key, 10.0)
        with pytest.raises(ResumeError, match=rf"{ledger}: this checkpoint was trained with other settings "
                                                    rf"\({shown}.*delete .*checkpoints to train from the start"):
            train.train(tiny_cfg(backbone, tmp_path, **small, **{key: value}), "vanilla", seed=0)
    with pytest.raises(KeyboardInterrupt):  # killed again after the last checkpoint, before the summary
        train.train(cfg, "vanilla", seed=0, callbacks=[EndInterrupt()])
    assert train.read_summary(out) is None
    train.train(cfg, "vanilla", seed=0)  # nothing left to train: only the summary is written
    a, b = adapter_weights(whole), adapter_weights(out)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    fields = ("step", "loss", "mt_loss", "learning_rate", "grad_norm")
    log_a = [[e.get(f) for f in fields] for e in train.train_log(whole)]
    log_b = [[e.get(f) for f in fields] for e in train.train_log(out)]
    assert [e[0] for e in log_b] == [1, 2, 3, 4, 5, 6]
    assert len(log_a) == len(log_b) and all(x == pytest.approx(y, abs=1e-6) for x, y in zip(log_a, log_b))
    one, three = train.read_summary(whole), train.read_summary(out)
    assert [s["steps"] for s in three["sessions"]] == [[0, 4], [4, 6], [6, 6]]
    assert three["train_loss"] == pytest.approx(one["train_loss"], abs=1e-4) and one["train_loss"] > 0
    assert three["real_tokens"] == one["real_tokens"] > 0 and three["token_efficiency"] == one["token_efficiency"]
    assert three["train_seconds"] > 0 and three["tokens_per_s"] > 0


def _hold_lock(path, seconds):  # run in a second process
    with records.exclusive(path, "a test"):
        print("holding", flush=True)
        time.sleep(seconds)


def test_a_second_training_process_stops_at_once_naming_the_first(backbone, tmp_path, root):
    cfg = tiny_cfg(backbone, tmp_path)
    out = train.adapter_dir(cfg, "vanilla", 0)
    code = f"from tests.test_train import _hold_lock; _hold_lock({str(out / 'training')!r}, 60)"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        with pytest.raises(records.LockError, match=rf"the vanilla seed 0 training run is being written by another "
                                                    rf"process \(pid {child.pid} on .*_hold_lock"):
            train.train(cfg, "vanilla", seed=0)
    finally:
        child.kill()
        child.wait()
    assert not (out / "checkpoints").exists()


def test_training_refuses_records_of_edited_examples(backbone, tmp_path):
    cfg = tiny_cfg(backbone, tmp_path)
    examples = fake_synthesis(cfg, "rationale", lambda e: "r")
    edited = [data.Example(e.id, e.direction, e.template, e.instruction, e.source, e.reference + " x")
              for e in examples]
    with pytest.raises(train.TrainingError, match=rf"rationale\.jsonl: the record of {examples[0].id} answers another "
                                                  r"example \(reference: .*delete .*run the synthesis again"):
        train.training_items(cfg, "radis", edited)


def test_radis_logs_both_terms_and_counts_empty_rationales(backbone, tmp_path):
    cfg = tiny_cfg(backbone, tmp_path, train__max_steps=2, train__save_steps=100)
    fake_synthesis(cfg, "rationale", lambda e: "" if e.id.endswith("0") else "Because it is .")
    out = train.train(cfg, "radis", seed=1)
    summary = train.read_summary(out)
    assert summary["empty_rationales"] > 0 and summary["features"] == summary["examples"]
    assert all(e["mt_loss"] > 0 and e["reg_loss"] > 0 for e in train.train_log(out))
    assert 0 < summary["token_efficiency"] <= 1


def test_training_arguments_follow_the_profile(backbone, tmp_path):
    cfg = tiny_cfg(backbone, tmp_path)
    args = train.training_arguments(cfg, tmp_path, seed=3)
    assert args.gradient_accumulation_steps == 2 and args.seed == 3
    assert args.lr_scheduler_type.value == "cosine" and args.learning_rate == cfg.train.learning_rate
    grouped = getattr(args, "train_sampling_strategy", None) == "group_by_length" or getattr(args, "group_by_length", False)
    assert grouped
    assert not args.bf16 and not args.fp16  # no CUDA here: fp32


def test_cli_trains_what_it_is_told(backbone, tmp_path, capsys):
    assert train.main(["--profile", "ci", "--method", "vanilla", "--seed", "2",
                       "--set", f"model__backbone={backbone}", "--set", f"runtime__runs_dir={tmp_path}",
                       "--set", "data__max_train_pairs=16", "--set", "train__max_steps=1",
                       "--set", "train__per_device_batch=16", "--set", "train__effective_batch=16"]) == 0
    assert "vanilla seed 2 ->" in capsys.readouterr().out
    assert json.loads((tmp_path / "ci" / "adapters" / "vanilla-seed2" / "summary.json").read_text())["steps"] == 1


@pytest.mark.parametrize("name", ["ddp", "fsdp", "deepspeed_zero2"])
def test_accelerate_configs_in_the_repo_are_valid(root, name):
    from accelerate.commands.config.config_args import ClusterConfig

    path = root / "configs" / "accelerate" / f"{name}.yaml"
    config = ClusterConfig.from_yaml_file(str(path))
    assert config.num_processes > 1 and config.mixed_precision == "bf16"
    assert "-m radis_utils.train --profile a100" in path.read_text()


@pytest.mark.slow
def test_cli_runs_under_accelerate_launch_with_two_processes(backbone, tmp_path):
    """Data-parallel on CPU (gloo): the same CLI users launch on several GPUs."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "-m", "radis_utils.train", "--profile", "ci", "--method", "vanilla",
           "--set", f"model__backbone={backbone}", "--set", f"runtime__runs_dir={tmp_path}",
           "--set", "data__max_train_pairs=32", "--set", "train__max_steps=2",
           "--set", "train__per_device_batch=4", "--set", "train__effective_batch=16", "--set", "runtime__threads=1"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}  # torchrun + gloo on CPU
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ci" / "adapters" / "vanilla-seed0" / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["processes"] == 2
    assert summary["gradient_accumulation_steps"] == 2  # 16 = 4 per device × 2 processes × 2
    # the summary counts both processes' work: 2 steps × 2 micro-batches on each of 2 ranks
    assert summary["sessions"][-1]["micro_batches"] == 8


# --- saving under accelerate (issue 14) ------------------------------------------------------
# FSDP itself cannot run on CPU here: accelerate (1.15) turns FSDP on only for GPU-like
# distributed types (a CPU run under `accelerate launch` is MULTI_CPU) and its FSDP plugin asks
# for an accelerator device when `fsdp_sync_module_states` is on. So these tests check the
# state-dict setting and that every process takes part in the save, not a real FSDP run.

def test_fsdp_config_gathers_a_full_state_dict_as_peft_recipe_does(root):
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(root / "configs" / "accelerate" / "fsdp.yaml"))
    assert config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def test_every_process_takes_part_in_saving_the_adapter_and_counting_tokens(backbone, tmp_path, monkeypatch):
    """Under FSDP, gathering the adapter is a collective: a save on rank 0 alone hangs; so is
    summing the session's tokens over ranks."""
    saves = []
    save_model = train.SpanTrainer.save_model

    def spy(self, output_dir=None, _internal_call=False):
        if not _internal_call:  # checkpoints call it too
            saves.append(output_dir)
        return save_model(self, output_dir, _internal_call)

    counted = []
    counters = train.SpanTrainer.session_counters
    monkeypatch.setattr(train.SpanTrainer, "session_counters", lambda self: counted.append(1) or counters(self))
    monkeypatch.setattr(train.SpanTrainer, "save_model", spy)
    monkeypatch.setattr(train.SpanTrainer, "is_world_process_zero", lambda self: False)  # rank 1
    cfg = tiny_cfg(backbone, tmp_path, train__max_steps=1, train__save_steps=100)
    out = train.train(cfg, "vanilla", seed=0)
    assert saves == [str(out)]
    assert train.read_summary(out) is None  # the summary is rank 0's alone
    assert counted  # but the token counts are summed over ranks, a collective rank 1 joins too


def test_under_fsdp_the_adapter_is_gathered_in_full_then_saved(tmp_path):
    import types

    log = []
    plugin = types.SimpleNamespace(set_state_dict_type=log.append)
    trainer = types.SimpleNamespace(
        is_fsdp_enabled=True, accelerator=types.SimpleNamespace(state=types.SimpleNamespace(fsdp_plugin=plugin)),
        save_model=lambda path: log.append(("save_model", path)), is_world_process_zero=lambda: False)
    train.save_adapter(trainer, None, tmp_path)  # rank 1: no tokenizer to write
    assert log == ["FULL_STATE_DICT", ("save_model", str(tmp_path))]


def test_merge_leaves_the_trained_model_alone_and_matches_the_adapter(backbone, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = tiny_cfg(backbone, tmp_path, train__max_steps=2, train__save_steps=100, train__merge=True)
    out = train.train(cfg, "vanilla", seed=0)
    params = train.read_summary(out)["parameters"]
    assert 0 < params["trainable"] < params["total"]  # counted on the LoRA model, not a merged one
    merged = AutoModelForCausalLM.from_pretrained(out / "merged")
    tuned = models.load_adapter(cfg, out)
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.allclose(merged(input_ids=ids).logits, tuned(input_ids=ids).logits, atol=1e-4)
    assert getattr(merged.config, "quantization_config", None) is None


def test_an_adapter_copied_anywhere_loads_and_merges_with_plain_peft_from_any_folder(backbone, tmp_path, monkeypatch):
    """The adapter names a local base by its absolute path: ``AutoPeftModelForCausalLM`` loads a copy
    of it from a folder outside the checkout, and merges it, as the project's loader does. A moved
    ``runs/`` still loads through the project's loader, which takes the base from the profile."""
    import shutil

    from peft import AutoPeftModelForCausalLM

    checkout = tmp_path / "checkout"
    (checkout / "radis_utils").mkdir(parents=True)
    (checkout / "_config.yml").write_text("title: t\n")
    base = tmp_path / "models" / "tiny"
    shutil.copytree(backbone, base)
    monkeypatch.chdir(checkout)
    cfg = load_profile("ci", model__backbone=str(base), runtime__runs_dir="runs", data__max_train_pairs=16,
                       train__max_steps=1, train__per_device_batch=16, train__effective_batch=16, train__save_steps=100)
    out = train.train(cfg, "vanilla", seed=0)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base.resolve())
    ours = models.load_adapter(cfg, out, merge=True)
    copy = tmp_path / "shared" / "vanilla-adapter"
    shutil.copytree(out, copy)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    plain = AutoPeftModelForCausalLM.from_pretrained(str(copy)).merge_and_unload()
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.allclose(plain(input_ids=ids).logits, ours(input_ids=ids).logits, atol=1e-5)
    shutil.move(str(checkout / "runs"), str(elsewhere / "runs"))  # runs/ moved: the project's loader still reads it
    moved = load_profile("ci", model__backbone=str(base), runtime__runs_dir=str(elsewhere / "runs"),
                         data__max_train_pairs=16, train__max_steps=1, train__per_device_batch=16,
                         train__effective_batch=16, train__save_steps=100)
    again = models.load_adapter(moved, train.adapter_dir(moved, "vanilla", 0), merge=True)
    assert torch.allclose(again(input_ids=ids).logits, ours(input_ids=ids).logits, atol=1e-5)


def test_adapters_name_a_local_base_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "organism" / "x" / "model").mkdir(parents=True)
    assert models.base_reference("mistralai/Mistral-7B-Instruct-v0.2") == "mistralai/Mistral-7B-Instruct-v0.2"
    assert models.base_reference("runs/organism/x/model") == str(tmp_path / "runs" / "organism" / "x" / "model")
    assert models.base_reference(str(tmp_path / "models" / "llama")) == str(tmp_path / "models" / "llama")
    assert models.base_reference(None) is None


def test_one_process_over_several_gpus_is_refused_naming_accelerate(backbone, monkeypatch):
    """transformers would wrap the model in DataParallel and feed it per-device batch × GPUs rows:
    the effective batch silently multiplied. One process per GPU, or one GPU pinned."""
    import torch

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(train.ConfigError, match="accelerate launch.*CUDA_VISIBLE_DEVICES=0"):
        train.check_one_process_per_gpu(visible_gpus=4)
    train.check_one_process_per_gpu(visible_gpus=1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    cfg = load_profile("ci", model__backbone=str(backbone), train__per_device_batch=16)
    with pytest.raises(train.ConfigError, match="sees 2 GPUs"):
        train.accumulation_steps(cfg)
    monkeypatch.setenv("WORLD_SIZE", "2")  # under accelerate launch: one process per GPU, as it should be
    assert train.accumulation_steps(cfg) >= 1


def test_the_process_group_exists_before_the_backbone_loads(backbone, tmp_path, monkeypatch):
    """FSDP's low-memory loading only works when ``from_pretrained`` runs after the process group
    is up, which ``TrainingArguments`` starts under ``accelerate launch``; and the loader leaves
    placement to FSDP then."""
    order = []
    real_args, real_load = train.training_arguments, models.load_backbone
    monkeypatch.setattr(train, "training_arguments", lambda *a, **k: order.append("arguments") or real_args(*a, **k))
    monkeypatch.setattr(models, "load_backbone", lambda *a, **k: order.append("backbone") or real_load(*a, **k))
    cfg = tiny_cfg(backbone, tmp_path, train__max_steps=1)
    train.train(cfg, "vanilla", 0)
    assert order[:2] == ["arguments", "backbone"]
    monkeypatch.setattr(models, "fsdp_loading", lambda: True)
    monkeypatch.setattr(models, "device", lambda: "meta")
    assert models.load_model(cfg).device.type == "cpu"  # not moved: FSDP shards it


@pytest.mark.parametrize("content, where", [(b'{"steps": 12, "loss"', ":1:"), (b'{"a": 1}\n{"b": \xff}', ":2:")])
def test_a_truncated_or_non_utf8_record_names_its_file_and_line(tmp_path, content, where):
    from radis_utils import records

    path = tmp_path / "summary.json"
    path.write_bytes(content)
    with pytest.raises(records.RecordError) as err:
        train.read_summary(tmp_path)
    assert str(path) + where in str(err.value)


def test_a_checkpoint_killed_before_its_ledger_is_set_aside_not_blocking(tmp_path):
    from radis_utils import checkpoints

    folder = tmp_path / "checkpoints"
    for step, ledger in ((2, True), (4, False)):
        ckpt = folder / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / checkpoints.MARKER).write_text("{}")
        if ledger:
            (ckpt / checkpoints.LEDGER).write_text(json.dumps({"key": {"a": 1}, "sessions": [{"steps": [0, 2]}]}))
    with pytest.warns(UserWarning, match=r"checkpoint-4: no radis_run\.json .* set aside as \.unledgered-checkpoint-4"):
        last, sessions = checkpoints.resume_point(folder, {"a": 1})
    assert last == folder / "checkpoint-2" and sessions == [{"steps": [0, 2]}]
    assert (folder / ".unledgered-checkpoint-4" / checkpoints.MARKER).is_file()  # kept, not deleted
    (folder / "checkpoint-2" / checkpoints.LEDGER).unlink()  # the only checkpoint killed before its ledger
    with pytest.warns(UserWarning, match="checkpoint-2"):
        assert checkpoints.resume_point(folder, {"a": 1}) == (None, [])  # starts over instead of refusing


def test_a_run_killed_while_copying_its_midpoint_copies_it_when_it_resumes(tmp_path):
    from types import SimpleNamespace

    from radis_utils import checkpoints, trainer

    out = tmp_path / "adapter"
    source = out / "checkpoints" / "checkpoint-3"
    source.mkdir(parents=True)
    (source / checkpoints.LEDGER).write_text("{}")
    (source / "adapter_model.safetensors").write_text("w")
    stale = out / checkpoints.MIDPOINT / ".checkpoint-3.tmp"  # the kill came during the copy
    stale.mkdir(parents=True)
    args, state = SimpleNamespace(output_dir=str(out / "checkpoints")), SimpleNamespace(max_steps=6, is_world_process_zero=True)
    trainer.KeepMidpoint(out).on_train_begin(args, state, None)
    assert (out / checkpoints.MIDPOINT / "checkpoint-3" / "adapter_model.safetensors").is_file() and not stale.exists()


#: Every moment a checkpoint (or the end of a run) writes something, in the order they come:
#: ``(function, which call of it)``; a SIGKILL lands just before that call.
KILL_POINTS = [
    ("transformers.trainer.Trainer.save_model", 1),                     # the first checkpoint, nothing written
    ("transformers.trainer.Trainer._save_optimizer_and_scheduler", 1),  # its adapter written, no optimizer
    ("transformers.trainer.Trainer._save_rng_state", 1),
    ("transformers.trainer_callback.TrainerState.save_to_json", 1),     # no trainer_state.json
    ("transformers.trainer.rotate_checkpoints", 3),                     # step 4: the oldest not yet rotated away
    ("radis_utils.trainer.Ledger.on_save", 1),                          # a complete checkpoint without its ledger
    ("radis_utils.trainer.KeepMidpoint.keep", 1),                       # the midpoint not yet copied
    ("radis_utils.trainer.save_adapter", 1),                            # every step done, no adapter
    ("radis_utils.train.write_json", 1),                                # the adapter written, no summary
]
KILL_SETTINGS = dict(train__save_steps=2, data__max_train_pairs=24, train__per_device_batch=4, train__effective_batch=8)


def _train_killed_at(runs: str, backbone: str, target: str, call: int) -> None:  # run in a child process
    import importlib
    import os
    import signal

    module_name, _, attribute = target.rpartition(".")
    owner_name, _, cls_name = module_name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        owner, name = module, attribute
    except ModuleNotFoundError:  # "module.Class.method"
        owner, name = getattr(importlib.import_module(owner_name), cls_name), attribute
    original, calls = getattr(owner, name), []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)
    setattr(owner, name, dying)
    train.train(tiny_cfg(backbone, runs, **KILL_SETTINGS), "vanilla", seed=0)


@pytest.mark.slow  # nine training processes, each killed once
def test_a_kill_at_every_checkpoint_writing_moment_resumes_without_loss(backbone, tmp_path, root):
    whole = train.train(tiny_cfg(backbone, tmp_path / "whole", **KILL_SETTINGS), "vanilla", seed=0)
    expected, fields = adapter_weights(whole), ("step", "loss", "mt_loss", "learning_rate")
    log = [e.get(f) for e in train.train_log(whole) for f in fields]
    for i, (target, call) in enumerate(KILL_POINTS):
        runs = tmp_path / f"killed-{i}"
        code = (f"from tests.test_train import _train_killed_at; "
                f"_train_killed_at({str(runs)!r}, {str(backbone)!r}, {target!r}, {call})")
        child = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
        assert child.returncode == -9, (target, child.returncode, child.stderr[-2000:])  # it died there
        cfg = tiny_cfg(backbone, runs, **KILL_SETTINGS)
        out = train.train(cfg, "vanilla", seed=0)  # resumes (or only writes what was missing)
        got = adapter_weights(out)
        assert got.keys() == expected.keys(), target
        assert all(torch.allclose(got[k], expected[k], atol=1e-6) for k in got), target
        assert [e.get(f) for e in train.train_log(out) for f in fields] == pytest.approx(log, abs=1e-6), target
        assert train.read_summary(out)["steps"] == 6 and (out / "midpoint" / "checkpoint-3").is_dir(), target
