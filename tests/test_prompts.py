from __future__ import annotations

import random

import pytest

from radis_utils import prompts
from radis_utils.prompts import (
    CHAT_FORMATS, INSTRUCTIONS, ChatTemplateError, continuation_prompt, demo_chat_tokenizer,
    translation_request,
)

REFERENCE = "The dog is sleeping in the garden."
SOURCE = "Der Hund schläft im Garten."


@pytest.fixture(scope="module", params=sorted(CHAT_FORMATS))
def tok(request):
    return demo_chat_tokenizer(request.param, [SOURCE, REFERENCE])


def test_five_instructions_name_the_target_and_put_the_sentence_on_its_own_line():
    assert len(INSTRUCTIONS) == 5
    for i in range(5):
        lines = translation_request(SOURCE, "de", "en", template=i).split("\n")
        head = lines[0] if i < 4 else lines[1]
        assert len(lines) == 2 and lines[1 if i < 4 else 0] == SOURCE
        assert "English" in head and ("German" in head) == (i < 4)  # fig. 5's no. 5 names only the target


def test_instruction_sets_are_checked():
    prompts.check_instructions(INSTRUCTIONS)
    for bad in ([], "Translate {sent1} to {lang2}", ["Translate to {lang2}."], ["{sent1} {sent1} {lang2}"],
                ["{sent1} to {tgt}"], ["{sent1} {lang2} {"]):
        with pytest.raises(ValueError, match="prompts.instructions"):
            prompts.check_instructions(bad)
    with pytest.raises(ValueError, match="template 0"):
        translation_request(SOURCE, "de", "en", 0, ("Translate from {src} to {tgt}:",))


def test_instruction_draw_is_seeded_and_covers_all():
    a = [prompts.pick_instruction(random.Random(3)) for _ in range(3)]
    draws1 = [prompts.pick_instruction(r) for r in [random.Random(7)] * 200]
    draws2 = [prompts.pick_instruction(r) for r in [random.Random(7)] * 200]
    assert draws1 == draws2 and set(draws1) == set(range(5)) and len(set(a)) == 1


def test_bad_language_and_template():
    with pytest.raises(KeyError, match="known codes"):
        translation_request(SOURCE, "xx", "en")
    with pytest.raises(IndexError):
        translation_request(SOURCE, "de", "en", template=5)


def test_continuation_leaves_assistant_turn_open(tok):
    x = translation_request(SOURCE, "de", "en", template=2)
    closed = tok.apply_chat_template(
        [{"role": "user", "content": x}, {"role": "assistant", "content": REFERENCE}], tokenize=False)
    end = prompts.end_of_turn_tokens(tok)
    assert any(closed.rstrip().endswith(t) for t in end)  # the closed chat does end the turn ...
    prompt = continuation_prompt(tok, x, REFERENCE)
    assert prompt.endswith(REFERENCE)  # ... the continuation prompt does not
    assert not any(t in prompt[prompt.rindex(REFERENCE):] for t in end)
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[-1] not in {tok.convert_tokens_to_ids(t) for t in end}
    assert tok.decode(ids).endswith(REFERENCE)
    assert x in prompt and prompt.index(x) < prompt.index(REFERENCE)


def test_reference_whitespace_is_trimmed(tok):
    prompt = continuation_prompt(tok, "Translate.", "  " + REFERENCE + "\n ")
    assert prompt.endswith(REFERENCE)


def test_llama2_system_prompt_goes_into_first_user_turn():
    tok = demo_chat_tokenizer("llama2")
    text = tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "Hi"}], tokenize=False)
    assert text == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]"


def test_missing_chat_template_is_a_clear_error():
    tok = demo_chat_tokenizer("mistral")
    tok.chat_template = None
    with pytest.raises(ChatTemplateError, match="model.chat_template"):
        continuation_prompt(tok, "Translate.", REFERENCE)
    with pytest.raises(ChatTemplateError, match="demo-mistral"):
        prompts.chat_prompt(tok, "Translate.")


def test_template_that_rewrites_content_is_refused():
    tok = demo_chat_tokenizer("mistral")
    tok.chat_template = tok.chat_template.replace("m['content'] + eos_token", "m['content'].upper() + eos_token")
    with pytest.raises((ChatTemplateError, ValueError)):
        continuation_prompt(tok, "Translate.", REFERENCE)


def test_reference_with_end_token_is_refused():
    tok = demo_chat_tokenizer("mistral")
    with pytest.raises(ChatTemplateError, match="end-of-turn"):
        continuation_prompt(tok, "Translate.", "The dog</s> sleeps.")
    with pytest.raises(ValueError, match="empty"):
        continuation_prompt(tok, "Translate.", "   ")


def test_chat_prompt_opens_assistant_turn():
    tok = demo_chat_tokenizer("chatml")
    assert prompts.chat_prompt(tok, "Hi").endswith("<|im_start|>assistant\n")


def test_token_roles_mark_instruction_and_reference(tok):
    x = translation_request(SOURCE, "de", "en")
    prompt = continuation_prompt(tok, x, REFERENCE)
    roles = prompts.token_roles(tok, prompt, prompts.continuation_spans(prompt, x, REFERENCE))
    assert "".join(t for t, r in roles if r == "reference").strip() == REFERENCE
    assert roles[-1][1] == "reference"
    assert {"template", "instruction", "reference"} <= {r for _, r in roles}


def test_llama_factory_template_follows_the_chat_format():
    """LLaMA-Factory's ``template:`` names (its data/template.py) for the formats we recognise."""
    name = prompts.llama_factory_template
    assert [name(CHAT_FORMATS[s][0]) for s in ("llama2", "mistral", "chatml")] == ["llama2", "mistral", "chatml"]
    assert name("{{ '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud.<|im_end|>' }}") == "qwen"
    assert name("{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>' }}") == "llama3"
    assert name("{{ '<start_of_turn>user\\n' + m['content'] }}") == "gemma"
    assert name("{{ '<|user|> ' + m['content'] }}") is None  # e.g. the organism's own format
