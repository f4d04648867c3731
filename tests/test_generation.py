import random

from dialogsum_lab.data import load_dialogsum
from dialogsum_lab.generation import generation_config, summarize


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
