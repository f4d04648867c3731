import copy
import random
import shutil

import pytest
import torch
from peft import PromptTuningConfig, TaskType, get_peft_model
from torch._dynamo.utils import counters
from transformers.models.t5 import modeling_t5

from dialogsum_lab.config import EvalConfig
from dialogsum_lab.data import load_dialogsum
from dialogsum_lab.errors import UserError
from dialogsum_lab.evaluation import evaluate_model, load_eval_split
from dialogsum_lab.files import read_jsonl
from dialogsum_lab.generation import generate_summaries, generation_config, summarize
from dialogsum_lab.prompts import PROMPT_TEMPLATE


def test_default_generation_is_greedy_with_room_for_a_summary(tiny):
    model, _ = tiny
    config = generation_config(model)
    assert (config.max_new_tokens, config.do_sample, config.num_beams) == (200, False, 1)


def test_batched_equals_one_at_a_time_and_keeps_input_order(tiny):
    model, tokenizer = tiny
    dialogues = load_dialogsum("sample")["validation"]["dialogue"][:6]
    config = generation_config(model, max_new_tokens=12)
    single = [summarize(model, tokenizer, [d], config, batch_size=1, progress=False)[0] for d in dialogues]
    batched = summarize(model, tokenizer, dialogues, config, batch_size=4, progress=False)
    assert batched == single
    order = list(range(len(dialogues)))
    random.Random(0).shuffle(order)
    shuffled = summarize(model, tokenizer, [dialogues[i] for i in order], config, batch_size=3, progress=False)
    assert shuffled == [single[i] for i in order]
    assert len(set(single)) > 1  # different inputs, different outputs: the order check means something


def test_counts_come_from_token_ids_and_truncation_is_the_tokenizers(tiny, caplog):
    model, tokenizer = tiny
    dialogues = load_dialogsum("sample")["validation"]["dialogue"][:3]
    prompts = [PROMPT_TEMPLATE.format(dialogue=d) for d in dialogues]
    config = generation_config(model, max_new_tokens=5)
    with caplog.at_level("WARNING"):
        result = generate_summaries(model, tokenizer, dialogues, config, batch_size=2, max_source_length=20,
                                    progress=False)
    assert result.prompt_tokens == [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    assert result.truncated_prompts == 3 and "3 of 3 prompts are longer than max_source_length=20" in caplog.text
    for prompt, text, count, finished in zip(prompts, result.texts, result.new_tokens, result.finished, strict=True):
        inputs = tokenizer([prompt], truncation=True, max_length=20, return_tensors="pt")
        ids = model.generate(**inputs, generation_config=config)[0, 1:].tolist()
        ended = 1 in ids  # </s>
        assert (count, finished) == ((ids.index(1), True) if ended else (len(ids), False))
        assert text == tokenizer.decode(ids, skip_special_tokens=True).strip()


def _encoder_shapes(model, run) -> list[tuple[int, int]]:
    """(rows, tokens) of every batch the encoder's first layer read while `run()` ran."""
    shapes = []
    hook = model.get_encoder().block[0].register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple((args or [kwargs["hidden_states"]])[0].shape[:2])),
        with_kwargs=True)
    try:
        run()
    finally:
        hook.remove()
    return shapes


def test_on_a_cpu_the_encoder_reads_each_prompt_without_padding(tiny):
    model, tokenizer = tiny
    dialogues = load_dialogsum("sample")["validation"]["dialogue"][:6]
    config = generation_config(model, max_new_tokens=6)
    whole = [model.generate(**tokenizer([PROMPT_TEMPLATE.format(dialogue=d)], return_tensors="pt"),
                            generation_config=config) for d in dialogues]
    expected = [tokenizer.decode(ids[0], skip_special_tokens=True).strip() for ids in whole]
    ours = []
    shapes = _encoder_shapes(model, lambda: ours.extend(summarize(model, tokenizer, dialogues, config, batch_size=4,
                                                                  progress=False)))
    assert ours == expected
    lengths = [len(ids) for ids in tokenizer([PROMPT_TEMPLATE.format(dialogue=d) for d in dialogues])["input_ids"]]
    assert len(set(lengths)) > 1 and sorted(shapes) == sorted((1, n) for n in lengths)  # no padding


def test_on_a_cpu_generation_attends_eagerly_and_gives_the_model_its_own_attention_back(tiny, monkeypatch):
    model, tokenizer = tiny
    stacks = (model, model.get_encoder(), model.get_decoder())
    assert {m.config._attn_implementation for m in stacks} == {"sdpa"}
    calls = []
    eager = modeling_t5.eager_attention_forward
    monkeypatch.setattr(modeling_t5, "eager_attention_forward", lambda *a, **k: calls.append(1) or eager(*a, **k))
    dialogues = load_dialogsum("sample")["validation"]["dialogue"][:3]
    summarize(model, tokenizer, dialogues, generation_config(model, max_new_tokens=3), progress=False)
    assert calls  # the same summaries as SDPA's: test_on_a_cpu_the_encoder_reads_each_prompt_without_padding
    assert {m.config._attn_implementation for m in stacks} == {"sdpa"}


def test_prompt_tuning_keeps_its_virtual_tokens_when_the_encoder_runs_prompt_by_prompt(tiny):
    model, tokenizer = tiny
    tuned = get_peft_model(copy.deepcopy(model), PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM,
                                                                    num_virtual_tokens=4))
    torch.nn.init.normal_(tuned.prompt_encoder["default"].embedding.weight, std=5.0)
    dialogues = load_dialogsum("sample")["validation"]["dialogue"][:4]
    config = generation_config(model, max_new_tokens=8)
    padded = tokenizer([PROMPT_TEMPLATE.format(dialogue=d) for d in dialogues], padding=True, return_tensors="pt")
    with torch.inference_mode():
        reference = tokenizer.batch_decode(tuned.generate(**padded, generation_config=config),
                                           skip_special_tokens=True)
    ours = []
    shapes = _encoder_shapes(tuned, lambda: ours.extend(summarize(tuned, tokenizer, dialogues, config, batch_size=4,
                                                                  progress=False)))
    assert ours == [text.strip() for text in reference]
    assert ours != summarize(model, tokenizer, dialogues, config, batch_size=4, progress=False)
    lengths = padded["attention_mask"].sum(1).tolist()
    assert sorted(shapes) == sorted((1, n + 4) for n in lengths)  # each prompt alone, after its 4 virtual tokens


def _cxx_found() -> bool:
    return any(shutil.which(name) for name in ("g++", "clang++", "c++"))


@pytest.mark.skipif(not _cxx_found(), reason="torch.compile on a CPU needs a C++ compiler")
def test_compiled_decoding_scores_the_same_summaries_and_says_so(tiny, tmp_path):
    model, tokenizer = tiny
    settings = {"limit": 6, "max_new_tokens": 10, "batch_size": 4, "bootstrap_samples": 20}
    data = load_eval_split(EvalConfig(**settings))[0]
    plain = evaluate_model(model, tokenizer, data, tmp_path / "plain", EvalConfig(**settings))
    torch._dynamo.reset()
    counters.clear()
    compiled = evaluate_model(model, tokenizer, data, tmp_path / "compiled", EvalConfig(**settings, compile=True))
    assert counters["stats"]["unique_graphs"] >= 1  # the decoder step really went through the compiler
    predictions = [[r["prediction"] for r in read_jsonl(tmp_path / run / "predictions.jsonl")]
                   for run in ("plain", "compiled")]
    assert predictions[0] == predictions[1] and len(set(predictions[0])) > 1
    assert compiled["rouge"] == plain["rouge"]
    assert (plain["generation"]["compile"], compiled["generation"]["compile"]) == (False, True)


def test_compiling_without_a_cpp_compiler_is_one_clear_error(tiny, monkeypatch):
    model, tokenizer = tiny
    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", (None, "/nonexistent/g++"))
    monkeypatch.setattr(torch._inductor.config, "fx_graph_cache", False)
    torch._dynamo.reset()
    config = generation_config(model, compile=True, max_new_tokens=3)
    with pytest.raises(UserError, match=r"needs a C\+\+ compiler .*drop --compile"):
        summarize(model, tokenizer, ["#Person1#: Hi. #Person2#: Hello."], config, progress=False)
    torch._dynamo.reset()
