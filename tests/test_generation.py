import random

from dialogsum_lab.data import load_dialogsum
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
