from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from radis_utils import records as rec
from radis_utils.config import load_profile
from radis_utils.data import Example
from radis_utils.engines import (
    Completion, Decoding, HFEngine, LazyEngine, VLLMEngine, generate, generate_completions, make_engine,
)
from radis_utils.organism import organism_config
from radis_utils.prompts import ChatTemplateError, chat_prompt, continuation_prompt, demo_chat_tokenizer
from radis_utils.synthesis import (
    SDFT_TEMPLATE, build_prompt, postprocess, sdft_request, synthesize,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny():
    return make_tiny()


def make_tiny():
    """A tiny random chat model, the same in every process (seeded)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = demo_chat_tokenizer("mistral")
    tok.pad_token = tok.eos_token
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    return LlamaForCausalLM(cfg).eval(), tok


PROMPTS = ["Hi", "Translate the following sentence from German to English.\nDer Hund.", "A", "What?"]


def make_examples(n: int, prefix: str = "de-en") -> list[Example]:
    return [Example(f"{prefix}-{i:04d}", "de-en", i % 5, f"Translate from German to English.\nSatz {i} ist hier.",
                    f"Satz {i} ist hier.", f"Sentence {i} is here" + " again" * (i % 3) + ".") for i in range(n)]


class Spy:
    """An engine wrapper that counts calls and can fail or stall after some chunks."""

    def __init__(self, engine, fail_after: int | None = None, stall_after: int | None = None):
        self.engine, self.name, self.device, self.calls = engine, engine.name, engine.device, 0
        self.fail_after, self.stall_after = fail_after, stall_after

    def generate(self, prompts, decoding):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("injected failure")
        if self.stall_after is not None and self.calls >= self.stall_after:
            time.sleep(600)  # the test kills us here
        self.calls += 1
        return self.engine.generate(prompts, decoding)


def run(tiny, examples, out, kind="rationale", engine=None, **kw):
    model, tok = tiny
    kw.setdefault("decoding", Decoding(max_new_tokens=6))
    kw.setdefault("chunk_size", 4)
    return synthesize(examples, kind, engine or HFEngine(model, tok, batch_size=3), tok, out,
                      model_name="tiny", **kw)


# --- generation ---------------------------------------------------------------------------

def test_order_is_kept_and_batching_does_not_change_greedy_output(tiny):
    model, tok = tiny
    prompts = [chat_prompt(tok, p) for p in PROMPTS]
    one_by_one = [generate(model, tok, [p], max_new_tokens=6, batch_size=1)[0] for p in prompts]
    batched = generate(model, tok, prompts, max_new_tokens=6, batch_size=4)
    assert batched == one_by_one
    assert generate(model, tok, prompts[::-1], max_new_tokens=6, batch_size=3) == one_by_one[::-1]


def test_sampling_is_seeded(tiny):
    model, tok = tiny
    prompts = [chat_prompt(tok, p) for p in PROMPTS]
    a = generate(model, tok, prompts, max_new_tokens=6, do_sample=True, temperature=1.5, seed=3)
    b = generate(model, tok, prompts, max_new_tokens=6, do_sample=True, temperature=1.5, seed=3)
    assert a == b


def test_bad_sizes(tiny):
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(*tiny, ["x"], max_new_tokens=0)


def test_completions_count_tokens_and_say_how_they_ended(tiny):
    model, tok = tiny
    done = generate_completions(model, tok, [chat_prompt(tok, p) for p in PROMPTS], max_new_tokens=5)
    assert [c.text.strip() for c in done] == generate(model, tok, [chat_prompt(tok, p) for p in PROMPTS],
                                                      max_new_tokens=5)
    for c in done:
        assert 1 <= c.new_tokens <= 5 and (c.finished or c.new_tokens == 5)


def test_make_engine_and_decoding_follow_the_profile(tiny):
    cfg = load_profile("ci", synthesis__batch_size=7, synthesis__seed=5)
    engine = make_engine(cfg, *tiny)
    assert isinstance(engine, HFEngine) and engine.name == "hf" and engine.batch_size == 7
    assert Decoding.from_config(cfg.synthesis) == Decoding(False, 1.0, 1.0, cfg.synthesis.max_new_tokens, 5)


def test_vllm_missing_gives_the_install_command(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'radis-book\[gpu\]'"):
        VLLMEngine("some/model", tiny[1])
    cfg = load_profile("ci", synthesis__engine="vllm")
    with pytest.raises(ImportError, match=r"pip install 'radis-book\[gpu\]'"):
        make_engine(cfg, "some/model", tiny[1])
    with pytest.raises(TypeError, match="loads the backbone itself"):
        make_engine(cfg, tiny[0], tiny[1])


def test_vllm_engine_maps_decoding_and_prompts(tiny, monkeypatch):
    calls = {}

    class LLM:
        def __init__(self, **kw):
            calls["llm"] = kw

        def generate(self, prompts, params, use_tqdm=False):
            calls["prompts"], calls["params"] = prompts, params
            out = types.SimpleNamespace(text=" r", token_ids=[1, 2], finish_reason="length")
            return [types.SimpleNamespace(outputs=[out]) for _ in prompts]

    fake = types.SimpleNamespace(LLM=LLM, SamplingParams=lambda **kw: kw)
    monkeypatch.setitem(sys.modules, "vllm", fake)
    tok = tiny[1]
    engine = VLLMEngine("path/to/model", tok, tensor_parallel_size=2, seed=1)
    assert calls["llm"]["tensor_parallel_size"] == 2 and calls["llm"]["model"] == "path/to/model"
    greedy = engine.sampling_params(Decoding(max_new_tokens=9, seed=4))
    assert greedy["temperature"] == 0.0 and greedy["max_tokens"] == 9 and greedy["seed"] == 4
    assert tok.eos_token_id in greedy["stop_token_ids"]
    sampled = engine.sampling_params(Decoding(do_sample=True, temperature=0.7, top_p=0.9, seed=2))
    assert (sampled["temperature"], sampled["top_p"], sampled["seed"]) == (0.7, 0.9, 2)
    prompt = chat_prompt(tok, "Hi")
    done = engine.generate([prompt], Decoding())
    assert done == [Completion(" r", 2, False)]
    assert calls["prompts"][0]["prompt_token_ids"] == tok(prompt, add_special_tokens=False)["input_ids"]



def test_vllm_loads_the_tokenizer_at_the_model_revision(tiny, monkeypatch):
    """``vllm.LLM`` takes ``tokenizer_revision`` apart from ``revision``: a pinned model needs both."""
    calls = {}
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=lambda **kw: calls.update(kw),
                                                                   SamplingParams=dict))
    VLLMEngine("org/model", tiny[1], revision="abc123")
    assert calls["tokenizer"] == "org/model" and calls["revision"] == calls["tokenizer_revision"] == "abc123"
    calls.clear()
    make_engine(load_profile("a100", synthesis__engine="vllm", model__revision="def456"), "org/model", tiny[1])
    assert calls["revision"] == calls["tokenizer_revision"] == "def456"

# --- prompts and post-processing ----------------------------------------------------------

def test_prompt_per_kind(tiny):
    tok = tiny[1]
    ex = make_examples(1)[0]
    assert build_prompt(tok, ex, "rationale") == continuation_prompt(tok, ex.instruction, ex.reference)
    assert build_prompt(tok, ex, "seqkd") == chat_prompt(tok, ex.instruction)
    sdft = build_prompt(tok, ex, "sdft")
    assert ex.instruction in sdft and ex.reference in sdft
    assert build_prompt(tok, ex, "sdft", "Say {reference} again") == chat_prompt(tok, f"Say {ex.reference} again")
    assert sdft == chat_prompt(tok, sdft_request(ex.instruction, ex.reference, SDFT_TEMPLATE))
    # sail-sg/sdft's alpaca_distill_using: its system sentence and its three fields, as the user turn
    assert sdft_request(ex.instruction, ex.reference + "  ") == (
        "Below are an instruction that describes a task along with a reference answer. Using the reference "
        f"answer as a guide, write your own response.\n\n### Instruction:\n{ex.instruction}\n\n"
        f"### Reference Answer:\n{ex.reference.strip()}\n\n### Response:\n")
    with pytest.raises(ValueError, match="unknown target kind"):
        build_prompt(tok, ex, "summary")


def test_postprocess_rules(tiny):
    tok = tiny[1]
    ex = make_examples(1)[0]
    assert postprocess("rationale", Completion("Note: x. </s> junk", 5, True), ex, tok) == ("Note: x.", [])
    assert postprocess("rationale", Completion("\n\nNote: x.", 5, True), ex, tok) == ("\n\nNote: x.", [])
    assert postprocess("rationale", Completion("  </s>", 1, True), ex, tok) == ("", ["empty_rationale"])
    text, flags = postprocess("rationale", Completion("one two three four five six", 6, True), ex, tok,
                              max_rationale_tokens=2)
    assert flags == ["truncated"] and len(tok(text, add_special_tokens=False)["input_ids"]) == 2
    assert "one two three".startswith(text)
    assert postprocess("seqkd", Completion(" y' ", 3, False), ex, tok) == ("y'", ["truncated"])
    assert postprocess("seqkd", Completion("", 1, True), ex, tok) == ("", ["empty_output"])
    assert postprocess("sdft", Completion("Here it is in other words.", 5, True), ex, tok) == ("Here it is in other words.", [])
    # SDFT's own filter (sail-sg/sdft eval/gen_distilled_data.py): its five phrases, and "Your turn" first
    for bad in ["", "Based on the Reference Answer: x", "Your turn! ...", "As my response: x", "x (your own response)",
                "Now it's your turn.", "In your response, x"]:
        assert postprocess("sdft", Completion(bad, 5, True), ex, tok) == (ex.reference, ["sdft_fallback"])
    for kept in ["Let me rewrite it: x", "It is your turn to read: x"]:  # not in SDFT's list
        assert postprocess("sdft", Completion(kept, 5, True), ex, tok) == (kept, [])


# --- records, resume, repair --------------------------------------------------------------

def test_record_schema_report_and_second_run_is_a_no_op(tiny, tmp_path):
    examples = make_examples(10)
    out = tmp_path / "rationale.jsonl"
    report = run(tiny, examples, out)
    records = rec.read_records(out)
    assert [r["id"] for r in records] == [e.id for e in examples]
    for r, e in zip(records, examples):
        assert set(r) == set(rec.FIELDS) | set(rec.OPTIONAL_FIELDS) | {"key"} and r["key"] == rec.content_key(r)
        assert r["device"].startswith("cpu")  # where the engine ran (the GPU smoke reads it)
        assert (r["direction"], r["instruction"], r["source"], r["reference"]) == (e.direction, e.instruction, e.source, e.reference)
        assert r["target_kind"] == "rationale" and r["model"] == "tiny"
        assert r["decoding"] == {"do_sample": False, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 6,
                                 "seed": 0, "engine": "hf", "max_rationale_tokens": None}
        assert set(r["flags"]) <= set(rec.FLAGS)
    assert report["generated"] == 10 and report["resumed"] == 0 and report["skipped"] == []
    assert 0 <= report["nonempty_share"] <= 1 and report["examples_per_s"] > 0
    before = out.read_bytes()
    again = run(tiny, examples, out)
    assert again["generated"] == 0 and again["resumed"] == 10 and out.read_bytes() == before
    assert again["nonempty_share"] == report["nonempty_share"] and again["flags"] == report["flags"]


def test_min_new_tokens_forbids_an_immediate_end_and_is_a_labelled_variant(tiny, tmp_path):
    model, tok = tiny
    eos = tok.eos_token_id

    def end_at_once(module, inputs, logits):  # a model that always wants to stop first
        logits[..., eos] += 100.0
        return logits

    hook = model.lm_head.register_forward_hook(end_at_once)
    try:
        faithful = generate_completions(model, tok, PROMPTS, max_new_tokens=6, batch_size=2)
        variant = generate_completions(model, tok, PROMPTS, max_new_tokens=6, batch_size=2, min_new_tokens=2)
    finally:
        hook.remove()
    assert all(c.text == "" and c.finished and c.new_tokens == 1 for c in faithful)
    assert all(c.finished and c.new_tokens == 3 for c in variant)  # 2 forced tokens, then the end
    assert "min_new_tokens" not in Decoding().to_dict() and Decoding(min_new_tokens=1).to_dict()["min_new_tokens"] == 1
    from radis_utils.synthesis import records_path

    cfg = load_profile("ci", runtime__runs_dir=str(tmp_path))
    assert records_path(cfg, "rationale").name == "rationale.jsonl"
    assert records_path(load_profile("ci", runtime__runs_dir=str(tmp_path), synthesis__min_new_tokens=1),
                        "rationale").name == "rationale-min1.jsonl"


@pytest.mark.parametrize("decoding", [Decoding(max_new_tokens=6), Decoding(True, 1.3, 0.95, 6, seed=11)],
                         ids=["greedy", "sampled"])
def test_fixed_seed_gives_identical_records(tiny, tmp_path, decoding):
    examples = make_examples(9)
    for kind in ("rationale", "seqkd", "sdft"):
        run(tiny, examples, tmp_path / f"a-{kind}.jsonl", kind, decoding=decoding)
        run(tiny, examples, tmp_path / f"b-{kind}.jsonl", kind, decoding=decoding)
        a = rec.without_created(rec.read_records(tmp_path / f"a-{kind}.jsonl"))
        assert a == rec.without_created(rec.read_records(tmp_path / f"b-{kind}.jsonl"))
    if decoding.do_sample:
        other = Decoding(True, 1.3, 0.95, 6, seed=12)
        run(tiny, examples, tmp_path / "c.jsonl", decoding=other)
        texts = [r["text"] for r in rec.read_records(tmp_path / "c.jsonl")]
        assert texts != [r["text"] for r in rec.read_records(tmp_path / "a-rationale.jsonl")]


def test_failure_mid_run_then_torn_write_resumes_to_the_same_file(tiny, tmp_path):
    model, tok = tiny
    examples = make_examples(14)
    sampled = Decoding(True, 1.2, 1.0, 6, seed=7)
    run(tiny, examples, tmp_path / "whole.jsonl", decoding=sampled)
    whole = rec.without_created(rec.read_records(tmp_path / "whole.jsonl"))

    out = tmp_path / "resumed.jsonl"
    with pytest.raises(RuntimeError, match="injected"):
        run(tiny, examples, out, engine=Spy(HFEngine(model, tok, 3), fail_after=2), decoding=sampled)
    assert len(rec.read_records(out)) == 8  # two chunks of 4 made it to disk
    with open(out, "ab") as f:
        f.write(b'{"id": "de-en-0008", "direction": "de-')  # a torn write: no newline
    with pytest.warns(rec.RepairWarning, match=r"resumed\.jsonl:9: .*truncated it away"):
        report = run(tiny, examples, out, decoding=sampled)
    assert (report["resumed"], report["generated"]) == (8, 6) and report["repaired_bytes"] > 0
    got = rec.read_records(out)
    assert len({r["id"] for r in got}) == len(got) == 14
    assert rec.without_created(got) == whole


@pytest.mark.parametrize("cut", ["mid_line", "line_boundary_inside_chunk"])
def test_torn_chunk_is_regenerated_with_its_own_batches(tiny, tmp_path, cut):
    examples = make_examples(12)
    sampled = Decoding(True, 1.2, 1.0, 6, seed=3)
    out = tmp_path / "r.jsonl"
    run(tiny, examples, out, decoding=sampled)
    whole = rec.without_created(rec.read_records(out))
    data = out.read_bytes()
    lines = data.splitlines(keepends=True)
    keep = sum(len(line) for line in lines[:6])  # chunk 2 (lines 5-8) half written
    out.write_bytes(data[:keep + 10] if cut == "mid_line" else data[:keep])
    if cut == "mid_line":
        with pytest.warns(rec.RepairWarning):
            report = run(tiny, examples, out, decoding=sampled)
    else:
        report = run(tiny, examples, out, decoding=sampled)
    assert (report["resumed"], report["generated"]) == (6, 6)
    assert rec.without_created(rec.read_records(out)) == whole


def test_corrupt_last_line_is_reported_then_repaired(tiny, tmp_path):
    out = tmp_path / "r.jsonl"
    examples = make_examples(6)
    run(tiny, examples, out)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:-1]) + "not json at all\n")
    with pytest.raises(rec.RecordError, match=r"r\.jsonl:6: not a JSON line.*re-run the synthesis"):
        rec.read_records(out)
    with pytest.warns(rec.RepairWarning, match=r"r\.jsonl:6"):
        assert len(rec.repair(out)) == 5
    assert len(rec.read_records(out)) == 5
    assert run(tiny, examples, out)["generated"] == 1


def test_corrupt_middle_line_is_an_error_naming_file_and_line(tiny, tmp_path):
    out = tmp_path / "r.jsonl"
    examples = make_examples(6)
    run(tiny, examples, out)
    lines = out.read_text().splitlines(keepends=True)
    lines[1] = "{oops\n"
    out.write_text("".join(lines))
    for call in (lambda: rec.read_records(out), lambda: run(tiny, examples, out)):
        with pytest.raises(rec.RecordError, match=r"r\.jsonl:2: not a JSON line.*damaged"):
            call()
    record = json.loads(lines[0])
    del record["text"]
    lines[1] = json.dumps(record) + "\n"
    out.write_text("".join(lines))
    with pytest.raises(rec.RecordError, match=r"r\.jsonl:2: field 'text' is missing"):
        rec.read_records(out)
    lines[1] = lines[0]
    out.write_text("".join(lines))
    with pytest.raises(rec.RecordError, match=r"r\.jsonl:2: field 'id' 'de-en-0000' repeats line 1"):
        rec.read_records(out)


def test_resume_refuses_a_file_of_other_settings(tiny, tmp_path):
    out = tmp_path / "r.jsonl"
    run(tiny, make_examples(3), out)
    with pytest.raises(ValueError, match=r"r\.jsonl:1: field 'target_kind'"):
        run(tiny, make_examples(3), out, kind="seqkd")
    with pytest.raises(ValueError, match=r"r\.jsonl:1: record .*decoding\.max_new_tokens: 6 stored, 7 asked"):
        run(tiny, make_examples(3), out, decoding=Decoding(max_new_tokens=7))
    with pytest.raises(ValueError, match=r"r\.jsonl:1: .*decoding\.max_rationale_tokens: None stored, 2 asked"):
        run(tiny, make_examples(3), out, max_rationale_tokens=2)
    sdft = tmp_path / "s.jsonl"
    run(tiny, make_examples(3), sdft, kind="sdft")
    with pytest.raises(ValueError, match=r"s\.jsonl:1: .*decoding\.sdft_min_chrf: None stored, 50\.0 asked"):
        run(tiny, make_examples(3), sdft, kind="sdft", sdft_min_chrf=50.0)


def test_records_are_keyed_by_the_example_they_answer(tiny, tmp_path):
    out = tmp_path / "r.jsonl"
    run(tiny, make_examples(3), out)
    edited = [Example(e.id, e.direction, e.template, e.instruction, e.source, e.reference.replace("here", "there"))
              for e in make_examples(3)]
    with pytest.raises(ValueError, match=r"r\.jsonl:1: record 'de-en-0000' .*reference: 'Sentence 0 is here\.' "
                                         r"stored, 'Sentence 0 is there\.' asked.*delete the file"):
        run(tiny, edited, out)
    lines = out.read_text().splitlines()
    lines[1] = lines[1].replace("Satz 1", "Satz 9")  # hand-edited: key no longer matches
    out.write_text("\n".join(lines) + "\n")
    with pytest.raises(rec.RecordError, match=r"r\.jsonl:2: field 'key' does not match"):
        rec.read_records(out)


def test_a_filesystem_without_flock_still_keeps_a_second_writer_out(tmp_path, monkeypatch):
    """Lustre or GPFS mounted without flock answer ENOSYS: filelock falls back to a lock file of its
    own, and a second writer is still refused, naming the first."""
    import errno
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.warns(UserWarning, match="flock not supported"):
        with rec.exclusive(tmp_path / "r.jsonl", "the test records file"):
            with pytest.raises(rec.LockError, match=rf"r\.jsonl: the test records file is being written by another "
                                                   rf"process \(pid {os.getpid()} on "):
                with rec.exclusive(tmp_path / "r.jsonl", "the test records file"):
                    pass
    with rec.exclusive(tmp_path / "r.jsonl", "the test records file"):  # released: free again
        pass
    assert not (tmp_path / "r.jsonl.lock.holder").exists()


def _hold_records_lock(path, seconds):  # run in a second process
    with rec.exclusive(path, "the test records file"):
        print("holding", flush=True)
        time.sleep(seconds)


def test_a_second_writer_stops_at_once_naming_the_holder(tiny, tmp_path):
    out = tmp_path / "r.jsonl"
    code = f"from tests.test_synthesis import _hold_records_lock; _hold_records_lock({str(out)!r}, 60)"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "holding"
        start = time.monotonic()
        with pytest.raises(rec.LockError, match=rf"r\.jsonl: the rationale records file is being written by "
                                               rf"another process \(pid {child.pid} on .*_hold_records_lock"):
            run(tiny, make_examples(3), out)
        assert time.monotonic() - start < 5 and not out.exists()
    finally:
        child.kill()
        child.wait()
    assert run(tiny, make_examples(3), out)["generated"] == 3  # the lock died with its holder


def test_invalid_examples_fail_before_any_generation(tiny, tmp_path):
    model, tok = tiny
    good = make_examples(4)
    bad = [Example("e1", "de-en", 0, "Translate.\nx", "x", "  "),
           Example("e2", "de-en", 0, "Translate.\ny", "", "y"),
           Example("de-en-0000", "de-en", 0, "Translate.\nz", "z", "z"),
           Example("e4", "de-en", 0, "Translate.\nw", "w", "bad </s> ref")]
    spy = Spy(HFEngine(model, tok, 3))
    out = tmp_path / "r.jsonl"
    with pytest.raises(ValueError, match=r"4 invalid example\(s\).*id e1: field 'reference'.*id e2: field 'source'"
                                         r".*id de-en-0000: field 'id': duplicate.*id e4: field 'reference'.*skip_invalid"):
        run(tiny, good + bad, out, engine=spy)
    assert spy.calls == 0 and not out.exists()
    with pytest.warns(UserWarning, match=r"skipping 4 invalid example\(s\).*e1 \(reference: .*e4 \(reference"):
        report = run(tiny, good + bad, out, engine=spy, skip_invalid=True)
    assert [s["id"] for s in report["skipped"]] == ["e1", "e2", "de-en-0000", "e4"]
    assert report["generated"] == 4 and [r["id"] for r in rec.read_records(out)] == [e.id for e in good]
    with pytest.raises(ValueError, match="unknown target kind"):
        run(tiny, good, tmp_path / "k.jsonl", kind="paraphrase", engine=spy)
    no_template = demo_chat_tokenizer("mistral")
    no_template.chat_template = None
    with pytest.raises(ChatTemplateError, match="no chat_template"):
        synthesize(good, "rationale", spy, no_template, tmp_path / "t.jsonl", model_name="tiny",
                   decoding=Decoding(), skip_invalid=True)
    assert spy.calls == 1 and not (tmp_path / "t.jsonl").exists()


# --- export -------------------------------------------------------------------------------

def test_llama_factory_export(tmp_path):
    base = {"direction": "de-en", "source": "s", "model": "m", "decoding": {}, "created": "", "flags": []}
    records = [
        {**base, "id": "a", "instruction": "Translate.\ns", "reference": "Y.", "target_kind": "rationale", "text": "Note r."},
        {**base, "id": "b", "instruction": "Translate.\nt", "reference": "Y2. ", "target_kind": "rationale", "text": "\n\nNote."},
        {**base, "id": "c", "instruction": "Translate.\nu", "reference": "Y3", "target_kind": "rationale", "text": ""},
        {**base, "id": "d", "instruction": "Translate.\nv", "reference": "Y4", "target_kind": "seqkd", "text": "own y"},
    ]
    (tmp_path / "dataset_info.json").write_text(json.dumps({"other": {"file_name": "o.json"}}))
    path = rec.export_llama_factory(records, tmp_path, "radis_ci")
    assert path == tmp_path / "radis_ci.json"
    rows = json.loads(path.read_text())
    assert rows == [
        {"instruction": "Translate.\ns", "input": "", "output": "Y. Note r."},
        {"instruction": "Translate.\nt", "input": "", "output": "Y2.\n\nNote."},
        {"instruction": "Translate.\nu", "input": "", "output": "Y3"},
        {"instruction": "Translate.\nv", "input": "", "output": "Y4"},  # Seq-KD trains on y and y' (eq. 5)
        {"instruction": "Translate.\nv", "input": "", "output": "own y"},
    ]
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert info["other"] == {"file_name": "o.json"}
    assert info["radis_ci"] == {"file_name": "radis_ci.json",
                                "columns": {"prompt": "instruction", "query": "input", "response": "output"}}



@pytest.mark.parametrize("style, template", [("llama2", "llama2"), ("mistral", "mistral"), ("chatml", "chatml")])
def test_llama_factory_export_names_the_template_for_the_backbone(style, template, tmp_path):
    from radis_utils import synthesis

    base = {"direction": "de-en", "source": "s", "model": "m", "decoding": {}, "created": "", "flags": []}
    records = [{**base, "id": "a", "instruction": "Translate.\ns", "reference": "Y.", "target_kind": "rationale",
                "text": "Note r."}]
    cfg = load_profile("ci", model__backbone="someone/chat-model")
    path = synthesis.export_llama_factory(cfg, records, tmp_path, "radis_x", demo_chat_tokenizer(style))
    assert path == tmp_path / "radis_x.json"
    readme = (tmp_path / "radis_x.README.md").read_text()
    assert f"template: {template}\n" in readme and "dataset: radis_x\n" in readme
    assert "someone/chat-model" in readme


#: A ChatML template that writes a default system turn when a chat has none, as SmolLM2's does.
DEFAULT_SYSTEM_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' -%}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant<|im_end|>\\n' }}{%- endif -%}"
    "{%- for m in messages -%}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}")


def test_the_export_carries_the_system_turn_the_backbone_trains_with(tmp_path):
    """LLaMA-Factory's chatml template writes no system turn unless the data has one; the project
    trains with the default that the backbone's template writes, so every row carries it."""
    from radis_utils import synthesis
    from radis_utils.prompts import default_system_turn

    tok = demo_chat_tokenizer("chatml")
    assert default_system_turn(tok) is None and default_system_turn(demo_chat_tokenizer("mistral")) is None
    tok.chat_template = DEFAULT_SYSTEM_TEMPLATE
    assert default_system_turn(tok) == "You are a helpful assistant"
    base = {"direction": "de-en", "source": "s", "model": "m", "decoding": {}, "created": "", "flags": []}
    records = [{**base, "id": "a", "instruction": "Translate.\ns", "reference": "Y.", "target_kind": "rationale",
                "text": "Note r."}]
    cfg = load_profile("ci", model__backbone="someone/chat-model")
    rows = json.loads(synthesis.export_llama_factory(cfg, records, tmp_path, "radis_x", tok).read_text())
    assert rows == [{"instruction": "Translate.\ns", "input": "", "output": "Y. Note r.",
                     "system": "You are a helpful assistant"}]
    info = json.loads((tmp_path / "dataset_info.json").read_text())["radis_x"]
    assert info["columns"]["system"] == "system" and "template: chatml" in (tmp_path / "radis_x.README.md").read_text()
    # LLaMA-Factory's chatml formatting of that row is the project's own formatting of the chat
    lf = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    ours = tok.apply_chat_template([{"role": "user", "content": rows[0]["instruction"]}], tokenize=False,
                                   add_generation_prompt=True)
    assert lf.format(system=rows[0]["system"], user=rows[0]["instruction"]) == ours


def test_the_export_command_writes_a_profiles_records_or_says_what_to_run(tmp_path, capsys):
    from radis_utils import synthesis

    with pytest.raises(SystemExit) as stop:
        synthesis.main(["--profile", "qlora", "--export-llama-factory", "--out", str(tmp_path)])
    assert stop.value.code == 2 and "run chapter 03 at PROFILE='qlora' first" in capsys.readouterr().err


def test_llama_factory_export_of_the_organism_says_there_is_no_template(tmp_path):
    from radis_utils import synthesis
    from radis_utils.organism import World
    from radis_utils.organism.tokenizer import build_tokenizer

    base = {"direction": "en-sy", "source": "s", "model": "m", "decoding": {}, "created": "", "flags": []}
    records = [{**base, "id": "a", "instruction": "x", "reference": "y", "target_kind": "rationale", "text": "r"}]
    synthesis.export_llama_factory(load_profile("ci"), records, tmp_path, "radis_ci", build_tokenizer(World(0)))
    readme = (tmp_path / "radis_ci.README.md").read_text()
    assert "template:" not in readme and "no LLaMA-Factory template" in readme and "organism" in readme


def test_one_atomic_json_writer():
    """``records.write_json`` is the package's one JSON writer (temporary file, then rename)."""
    import re

    package = ROOT / "radis_utils"
    hand_rolled = re.compile(r'\+ "\.tmp"|write_text\(json\.dumps|json\.dump\(')
    found = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py")
                   if hand_rolled.search(p.read_text(encoding="utf-8")))
    assert found == ["records.py"], f"write JSON with records.write_json, not by hand: {found}"


def tiny_run(out: str, n: int, chunk: int, stall_after: int | None = None) -> dict:
    """A sampled synthesis with the tiny model (also the body of the subprocess that gets killed)."""
    torch.set_num_threads(1)
    model, tok = make_tiny()
    engine = Spy(HFEngine(model, tok, batch_size=3), stall_after=stall_after)
    return synthesize(make_examples(n), "rationale", engine, tok, out, model_name="tiny",
                      decoding=Decoding(True, 1.2, 0.95, 6, seed=5), chunk_size=chunk)


def test_sigkilled_synthesis_resumes_to_the_uninterrupted_file(tmp_path):
    n, chunk = 12, 4
    whole = tmp_path / "whole.jsonl"
    tiny_run(str(whole), n, chunk)
    out = tmp_path / "killed.jsonl"
    code = f"from tests.test_synthesis import tiny_run; tiny_run({str(out)!r}, {n}, {chunk}, stall_after=2)"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_bytes().count(b"\n") >= 2 * chunk):
            assert child.poll() is None and time.monotonic() < deadline, "child ended before its 2nd chunk"
            time.sleep(0.1)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL and len(rec.read_records(out)) == 2 * chunk
    resumed = tiny_run(str(out), n, chunk)  # the dead writer's lock is free
    assert (resumed["resumed"], resumed["generated"]) == (2 * chunk, n - 2 * chunk)
    assert rec.without_created(rec.read_records(out)) == rec.without_created(rec.read_records(whole))


# --- the model organism (slow: builds it when not cached) ---------------------------------

def organism_examples(n: int) -> list[Example]:
    import random

    from radis_utils.organism import World
    from radis_utils.prompts import pick_instruction, translation_request

    rng = random.Random(0)
    out = []
    for i, (source, reference) in enumerate(World(0).translation_pairs(n, "stage2", 0)):
        k = pick_instruction(rng)
        out.append(Example(f"en-sy-{i:05d}", "en-sy", k, translation_request(source, "en", "sy", k), source, reference))
    return out


def organism_run(out: str, n: int, chunk: int, stall_after: int | None = None) -> dict:
    """One synthesis on the ci organism (also the body of the subprocess that gets killed)."""
    from radis_utils import models

    torch.set_num_threads(1)
    cfg = load_profile("ci")
    model, tok = models.load_backbone(cfg)
    engine = Spy(HFEngine(model, tok, 8), stall_after=stall_after)
    return synthesize(organism_examples(n), "rationale", engine, tok, out, model_name="organism",
                      decoding=Decoding.from_config(cfg.synthesis), chunk_size=chunk)


@pytest.mark.slow
def test_killed_subprocess_resumes_without_loss_or_duplicates(tmp_path):
    n, chunk = 40, 8
    whole = tmp_path / "whole.jsonl"
    report = organism_run(str(whole), n, chunk)
    assert report["nonempty_share"] > 0.5  # the organism writes rationales after most translations

    out = tmp_path / "killed.jsonl"
    code = f"from tests.test_synthesis import organism_run; organism_run({str(out)!r}, {n}, {chunk}, stall_after=2)"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while not (out.exists() and out.read_bytes().count(b"\n") >= 2 * chunk):
            assert child.poll() is None and time.monotonic() < deadline, "child ended before its 2nd chunk"
            time.sleep(0.2)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL and len(rec.read_records(out)) == 2 * chunk
    with open(out, "ab") as f:
        f.write(b'{"id": "en-sy-00016", "dire')
    with pytest.warns(rec.RepairWarning, match="truncated it away"):
        resumed = organism_run(str(out), n, chunk)
    assert (resumed["resumed"], resumed["generated"]) == (2 * chunk, n - 2 * chunk)
    got = rec.read_records(out)
    assert sorted(r["id"] for r in got) == sorted(e.id for e in organism_examples(n))
    assert rec.without_created(got) == rec.without_created(rec.read_records(whole))


@pytest.mark.slow
def test_synthesize_for_profile_writes_under_runs(tmp_path, monkeypatch):
    from radis_utils import models
    from radis_utils.synthesis import records_path as synthesis_records_path
    from radis_utils.synthesis import synthesize_for_profile

    model, tok = models.load_backbone(load_profile("ci"))
    cfg = load_profile("ci", runtime__runs_dir=str(tmp_path))
    examples = organism_examples(24)
    folder = tmp_path / "ci" / "synthesis" / f"organism-{organism_config(cfg).config_hash()}"
    for kind in ("rationale", "seqkd", "sdft"):
        path, report = synthesize_for_profile(cfg, kind, examples, model, tok)
        assert path == folder / f"{kind}.jsonl"  # each organism has its own records
        assert report["generated"] == 24 and len(rec.read_records(path)) == 24
    assert synthesis_records_path(load_profile("ci", organism={"world_seed": 1}), "sdft").parent != folder.relative_to(tmp_path)
    sdft = rec.read_records(folder / "sdft.jsonl")
    assert all(r["text"] for r in sdft)

    def no_loading(*args, **kwargs):
        raise AssertionError("a finished synthesis must not load the model")

    monkeypatch.setattr(models, "load_model", no_loading)
    path, report = synthesize_for_profile(cfg, "rationale", examples, tokenizer=tok)  # finished: read back
    assert report["generated"] == 0 and report["resumed"] == 24
    with pytest.raises(AssertionError, match="must not load"):  # something left: the model is loaded
        synthesize_for_profile(cfg, "rationale", organism_examples(30), tokenizer=tok)


def test_source_model_slug(tmp_path):
    from radis_utils.synthesis import source_model_slug

    assert source_model_slug("organism") == "organism"
    assert source_model_slug("mistralai/Mistral-7B-Instruct-v0.2") == "mistralai--Mistral-7B-Instruct-v0.2"
    (tmp_path / "my model").mkdir()
    assert source_model_slug(str(tmp_path / "my model") + "/") == "my-model"


def test_every_kind_goes_through_one_engine_which_is_closed_after(tiny, tmp_path, monkeypatch):
    """vLLM reserves most of the GPU and checks free memory when it starts: a second engine beside
    the first would not start, so chapter 03's three kinds share one, closed at the end."""
    from radis_utils import synthesis

    built, closed = [], []

    class Fake:
        name, device = "hf", "cpu (fake)"

        def generate(self, prompts, decoding):
            return [Completion(" note", 2, True) for _ in prompts]

        def close(self):
            closed.append(self)

    monkeypatch.setattr(synthesis, "make_engine", lambda cfg, model, tok: built.append(Fake()) or built[-1])
    cfg = load_profile("ci", runtime__runs_dir=str(tmp_path))
    tok = tiny[1]
    done = synthesis.synthesize_kinds(cfg, synthesis.KINDS, organism_examples(6), model="given", tokenizer=tok)
    assert list(done) == list(synthesis.KINDS) and len(built) == 1 and closed == built
    assert all(report["device"] == "cpu (fake)" for _, report in done.values())
    again = synthesis.synthesize_kinds(cfg, synthesis.KINDS, organism_examples(6), model="given", tokenizer=tok)
    assert len(built) == 1 and all(r["device"] == "-" for _, r in again.values())  # all on disk: nothing built


def test_the_vllm_engine_shuts_down_and_frees_its_memory(tiny, monkeypatch):
    calls = []

    class LLM:
        def __init__(self, **kw):
            self.llm_engine = types.SimpleNamespace(engine_core=types.SimpleNamespace(
                shutdown=lambda: calls.append("engine_core.shutdown")))

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=dict))
    engine = VLLMEngine("org/model", tiny[1], gpu_memory_utilization=0.5)
    assert engine.device.startswith("cuda (vLLM")
    engine.close()
    engine.close()  # twice is harmless
    assert calls == ["engine_core.shutdown"] and engine.llm is None
    lazy = LazyEngine("vllm", lambda: VLLMEngine("org/model", tiny[1]))
    lazy.close()
    assert not lazy.built and calls == ["engine_core.shutdown"]  # nothing built, nothing to stop


def test_vllm_takes_the_profiles_memory_settings(tiny, monkeypatch):
    calls = {}
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=lambda **kw: calls.update(kw),
                                                                   SamplingParams=dict))
    make_engine(load_profile("a100", synthesis__engine="vllm", synthesis__gpu_memory_utilization=0.6,
                             synthesis__max_model_len=2048), "org/model", tiny[1])
    assert calls["gpu_memory_utilization"] == 0.6 and calls["max_model_len"] == 2048
    calls.clear()
    make_engine(load_profile("a100", synthesis__engine="vllm"), "org/model", tiny[1])
    assert "gpu_memory_utilization" not in calls  # vLLM's own default unless the profile says


def test_a_real_vllm_engine_is_reused_and_closed_by_its_own_interface(tiny_backbone, tmp_path):
    """On a GPU with vLLM: all kinds through one ``vllm.LLM``, and after ``close`` the memory it
    reserved is free again for the next stage (skipped without vLLM or a GPU)."""
    pytest.importorskip("vllm", reason="vLLM is a GPU-only extra (pip install 'radis-book[gpu]')")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a CUDA device")
    from radis_utils import synthesis

    cfg = load_profile("ci", model__backbone=str(tiny_backbone), runtime__runs_dir=str(tmp_path),
                       synthesis__engine="vllm", synthesis__gpu_memory_utilization=0.3,
                       synthesis__max_model_len=256, synthesis__max_new_tokens=4, model__dtype="float32")
    free_before = torch.cuda.mem_get_info()[0]
    done = synthesis.synthesize_kinds(cfg, synthesis.KINDS, organism_examples(4))
    assert {r["device"] for _, r in done.values()} == {"cuda (vLLM, 1 GPU)"}
    assert torch.cuda.mem_get_info()[0] > free_before * 0.9  # given back: the next stage can load
