"""Translation instructions, language names and the RaDis continuation prompt.

Paper §3.2 / eq. 1: the rationale ``r`` is what the *original* chat model writes when its own
reply has already been started with the reference translation ``y``. The prompt is therefore
the backbone's chat template with the instruction ``x`` as the user turn and ``y`` as the
*unfinished* assistant turn: no end-of-turn or EOS token may follow ``y``.
"""

from __future__ import annotations

import random
import string
from typing import Any, Sequence

from .config import INSTRUCTIONS, LANGUAGE_NAMES  # noqa: F401  (the default set: a profile's prompts.instructions; names re-exported)

PLACEHOLDERS = ("lang1", "lang2", "sent1")


class ChatTemplateError(ValueError):
    """The tokenizer cannot format chats the way RaDis needs."""


def language_name(code: str) -> str:
    """English name of a language code; raises with the known codes when unknown."""
    try:
        return LANGUAGE_NAMES[code]
    except KeyError:
        known = ", ".join(sorted(LANGUAGE_NAMES))
        raise KeyError(f"unknown language code {code!r}; known codes: {known}") from None


def check_instructions(instructions: Sequence[str], where: str = "prompts.instructions") -> None:
    """Raise ``ValueError`` naming ``where`` unless every template is a string holding ``{sent1}``
    and ``{lang2}`` once each and no placeholder besides ``{lang1}``/``{lang2}``/``{sent1}``."""
    if isinstance(instructions, str) or not instructions:
        raise ValueError(f"{where}: expected a non-empty list of instruction templates")
    for i, template in enumerate(instructions):
        if not isinstance(template, str):
            raise ValueError(f"{where}[{i}]: expected a string, got {template!r}")
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        except ValueError as err:
            raise ValueError(f"{where}[{i}] {template!r}: {err} (write a literal brace as {{{{ or }}}})") from None
        unknown = sorted(set(names) - set(PLACEHOLDERS))
        if unknown or names.count("sent1") != 1 or names.count("lang2") != 1:
            raise ValueError(f"{where}[{i}] {template!r}: a template holds {{sent1}} (the sentence) and "
                             f"{{lang2}} (the target language) once each, optionally {{lang1}}, nothing else"
                             + (f"; unknown: {unknown}" if unknown else ""))


def pick_instruction(rng: random.Random, instructions: Sequence[str] = INSTRUCTIONS) -> int:
    """Index of the instruction template for one example, drawn with a seeded ``rng``."""
    if not instructions:
        raise ValueError("instructions must hold at least one template")
    return rng.randrange(len(instructions))


def translation_request(
    source: str,
    src: str,
    tgt: str,
    template: int = 0,
    instructions: Sequence[str] = INSTRUCTIONS,
) -> str:
    """The user turn ``x``: instruction ``template`` filled with the language names and the source."""
    if not 0 <= template < len(instructions):
        raise IndexError(f"instruction template {template} out of range 0..{len(instructions) - 1}")
    check_instructions(instructions[template:template + 1], f"instruction template {template}")
    return instructions[template].format(lang1=language_name(src), lang2=language_name(tgt), sent1=source)


def chat_template_of(tokenizer: Any) -> str:
    """The tokenizer's chat template, or a clear error that says how to supply one."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ChatTemplateError(
            f"tokenizer {name!r} has no chat_template. RaDis needs the backbone's own chat "
            "format: use a chat/instruct model, or set the profile key `model.chat_template` "
            "(a Jinja string) to the template the model was trained with."
        )
    return template


#: LLaMA-Factory's ``template:`` per chat format, by the markers its Jinja template writes
#: (names from LLaMA-Factory's ``data/template.py``; the first row that matches wins).
LLAMA_FACTORY_TEMPLATES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("<|im_start|>", "Qwen"), "qwen"),
    (("<|im_start|>",), "chatml"),
    (("<|start_header_id|>",), "llama3"),
    (("<start_of_turn>",), "gemma"),
    (("[INST]", "<<SYS>>"), "llama2"),
    (("[INST]",), "mistral"),
)


def default_system_turn(tokenizer: Any) -> str | None:
    """The system message the chat template writes when a chat has none (SmolLM2's "You are a
    helpful AI assistant named SmolLM, ..."), or ``None`` when it writes none. Found by rendering a
    chat with a marker system message and checking that the default, put there, renders the same."""
    marker, question = "\x00SYSTEM\x00", "\x00USER\x00"
    user = [{"role": "user", "content": question}]
    try:
        plain = tokenizer.apply_chat_template(user, tokenize=False)
        marked = tokenizer.apply_chat_template([{"role": "system", "content": marker}, *user], tokenize=False)
    except Exception:  # noqa: BLE001 - a template that refuses system turns writes none by default
        return None
    if marker not in marked or question not in marked.split(marker, 1)[1]:
        return None
    before, after = marked.split(marker, 1)
    between = after.split(question, 1)[0]  # from the end of the system turn to the user's text
    if not plain.startswith(before) or not between or between not in plain[len(before):]:
        return None
    found = plain[len(before):plain.index(between, len(before))]
    rendered = tokenizer.apply_chat_template([{"role": "system", "content": found}, *user], tokenize=False)
    return found if found and rendered == plain else None


def llama_factory_template(chat_template: str) -> str | None:
    """The LLaMA-Factory template that formats chats as ``chat_template`` does, or ``None``."""
    for markers, name in LLAMA_FACTORY_TEMPLATES:
        if all(m in chat_template for m in markers):
            return name
    return None


#: SDFT's distillation request (Yang et al. 2024; sail-sg/sdft's ``alpaca_distill_using``, the
#: "general distillation template" RaDis's app. A.1 adopts): its system sentence, then its
#: ``### Instruction:`` / ``### Reference Answer:`` / ``### Response:`` fields, sent as the user turn
#: of the backbone's own chat template (RaDis app. B.1: the backbone's format for every prompt).
#: ``{instruction}`` is the user turn ``x``, ``{reference}`` the reference ``y``.
SDFT_TEMPLATE = (
    "Below are an instruction that describes a task along with a reference answer. "
    "Using the reference answer as a guide, write your own response.\n\n"
    "### Instruction:\n{instruction}\n\n### Reference Answer:\n{reference}\n\n### Response:\n"
)


def sdft_request(instruction: str, reference: str, template: str = SDFT_TEMPLATE) -> str:
    """The SDFT user turn: ``template`` filled with the request ``x`` and the reference ``y``."""
    return template.format(instruction=instruction, reference=reference.strip())


def chat_prompt(tokenizer: Any, user: str) -> str:
    """The generation prompt for a plain request: user turn, then an open assistant turn."""
    chat_template_of(tokenizer)
    messages = [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def continuation_prompt(tokenizer: Any, instruction: str, reference: str) -> str:
    """RaDis prompt: ``instruction`` as user turn, ``reference`` as the unfinished assistant turn.

    The returned string ends with the reference itself; the model's continuation is the
    rationale. Raises ``ChatTemplateError`` if the template cannot be left open.
    """
    chat_template_of(tokenizer)
    reference = reference.strip()
    if not reference:
        raise ValueError("reference is empty: nothing to continue from")
    messages = [
        {"role": "user", "content": instruction},
        {"role": "assistant", "content": reference},
    ]
    prompt = tokenizer.apply_chat_template(
        messages, tokenize=False, continue_final_message=True
    )
    check_open_assistant_turn(tokenizer, prompt, reference)
    return prompt


def check_open_assistant_turn(tokenizer: Any, prompt: str, reference: str) -> None:
    """Raise unless ``prompt`` ends with ``reference`` and no end-of-turn/EOS token follows it."""
    if not prompt.endswith(reference):
        tail = prompt[-80:]
        raise ChatTemplateError(
            "the chat template did not leave the assistant turn open after the reference "
            f"(prompt ends with {tail!r}); its template may rewrite assistant content"
        )
    inside = [t for t in end_of_turn_tokens(tokenizer) if t in reference]
    if inside:
        raise ChatTemplateError(f"the reference itself contains end-of-turn token(s) {inside}")


def end_of_turn_tokens(tokenizer: Any) -> list[str]:
    """Tokens that close a turn for this tokenizer: EOS plus common end-of-turn markers present."""
    found = {getattr(tokenizer, "eos_token", None)}
    vocab = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>"):
        if marker in vocab:
            found.add(marker)
    return sorted(t for t in found if t)


# --- Reference chat formats -------------------------------------------------------------
# Our own Jinja renderings of three widespread chat formats, so prompts can be shown and
# tested offline. With a real backbone, its tokenizer's own template is always used.

LLAMA2_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- for m in turns -%}"
    "{%- if m['role'] == 'user' -%}"
    "{%- set text = m['content'].strip() -%}"
    "{%- if loop.first and system -%}"
    "{%- set text = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + text -%}{%- endif -%}"
    "{{ bos_token + '[INST] ' + text + ' [/INST]' }}"
    "{%- elif m['role'] == 'assistant' -%}"
    "{{ ' ' + m['content'].strip() + ' ' + eos_token }}"
    "{%- endif -%}{%- endfor -%}"
)
"""Llama-2-Chat style: ``<s>[INST] x [/INST] y </s>`` (assistant turns close with EOS)."""

MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{%- for m in messages -%}"
    "{%- if m['role'] == 'user' -%}{{ '[INST] ' + m['content'] + ' [/INST]' }}"
    "{%- elif m['role'] == 'assistant' -%}{{ m['content'] + eos_token }}"
    "{%- endif -%}{%- endfor -%}"
)
"""Mistral-Instruct style: ``<s>[INST] x [/INST]y</s>`` (one BOS, no system turn)."""

CHATML_TEMPLATE = (
    "{%- for m in messages -%}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
"""ChatML style (Qwen and others): turns close with ``<|im_end|>``, not with EOS."""

CHAT_FORMATS: dict[str, tuple[str, dict[str, str]]] = {
    "llama2": (LLAMA2_CHAT_TEMPLATE, {"bos_token": "<s>", "eos_token": "</s>"}),
    "mistral": (MISTRAL_CHAT_TEMPLATE, {"bos_token": "<s>", "eos_token": "</s>"}),
    "chatml": (CHATML_TEMPLATE, {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>"}),
}


def demo_chat_tokenizer(style: str, corpus: Sequence[str] = (), vocab_size: int = 400) -> Any:
    """A small byte-level BPE tokenizer with a reference chat format, trained offline on ``corpus``.

    For showing and testing prompt construction without downloading a real tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if style not in CHAT_FORMATS:
        raise KeyError(f"unknown chat format {style!r}; known: {', '.join(CHAT_FORMATS)}")
    template, specials = CHAT_FORMATS[style]
    markers = ["[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<|im_start|>"]
    special_tokens = list(dict.fromkeys([*specials.values(), "<unk>", *markers]))
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    text = list(corpus) or [translation_request("Guten Morgen.", "de", "en", k) for k in range(len(INSTRUCTIONS))]
    bpe.train_from_iterator(text, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>",
                                  model_input_names=["input_ids", "attention_mask"], **specials)
    tok.add_special_tokens({"additional_special_tokens": markers})
    tok.chat_template = template
    tok.name_or_path = f"demo-{style}"
    return tok


def token_roles(tokenizer: Any, text: str, spans: dict[str, tuple[int, int]]) -> list[tuple[str, str]]:
    """``(token, role)`` for every token of ``text``; ``spans`` maps role -> character range.

    Tokens outside every span get the role ``"template"``. Needs a fast tokenizer (offsets).
    """
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for tid, (start, end) in zip(enc["input_ids"], enc["offset_mapping"]):
        role = next((r for r, (a, b) in spans.items() if a <= start < b), "template")
        out.append((tokenizer.decode([tid]), role))
    return out


def continuation_spans(prompt: str, instruction: str, reference: str) -> dict[str, tuple[int, int]]:
    """Character ranges of the instruction (user turn) and the reference inside a continuation prompt."""
    ref_start = prompt.rindex(reference)
    ins_start = prompt.rindex(instruction, 0, ref_start)
    return {
        "instruction": (ins_start, ins_start + len(instruction)),
        "reference": (ref_start, ref_start + len(reference)),
    }
