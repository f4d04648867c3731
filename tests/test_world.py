"""The synthetic dialogue world: deterministic, varied, in DialogSum's shape, and with a test split that training
never saw (so it measures generalisation, not memory)."""

import re
import string
from collections import Counter

from dialogsum_lab.data import load_dialogsum
from dialogsum_lab.world import SPLIT_SIZES, generate, pools
from dialogsum_lab.world_scenarios import OPEN_POOLS, SCENARIOS


def test_the_world_is_the_same_on_every_call_and_has_thousands_of_training_dialogues():
    assert generate("test", 20) == generate("test", 20)
    assert SPLIT_SIZES["train"] >= 2000 and len({d.dialogue for d in generate("train")}) == SPLIT_SIZES["train"]


def test_every_scenario_uses_exactly_the_slots_it_declares():
    assert len(SCENARIOS) >= 12
    for scenario in SCENARIOS:
        texts = [p for t in scenario.turns for p in t.phrasings + t.note] + list(scenario.summaries) + list(
            scenario.intents) + [x for qa in scenario.questions for x in qa] + list(scenario.greeting)
        used = {name for text in texts for _, name, _, _ in string.Formatter().parse(text) if name}
        assert used - {"a", "b", "notes"} == set(scenario.slots), scenario.name
        assert len(scenario.summaries) >= 3 and len(scenario.topics) >= 3, scenario.name
        assert all(len(t.phrasings) >= 2 for t in scenario.turns), scenario.name


def test_no_test_dialogue_summary_or_held_out_value_occurs_in_training():
    train, test = generate("train"), generate("test")
    seen_dialogues = {d.dialogue for d in train}
    seen_summaries = {r for d in train for r in d.references}
    assert not [d.id for d in test if d.dialogue in seen_dialogues]
    assert not [r for d in test for r in d.references if r in seen_summaries]
    held_out = {v for name, values in pools("test").items() if name in OPEN_POOLS for v in values}
    trained = {v for name, values in pools("train").items() if name in OPEN_POOLS for v in values}
    assert held_out and not held_out & trained
    text = "\n".join(d.dialogue for d in train)
    leaked = [v for v in held_out if re.search(rf"\b{re.escape(v)}\b", text)]
    assert len(leaked) <= len(held_out) // 20, leaked[:10]  # only words that are also parts of other values


def test_dialogues_vary_and_summaries_read_like_dialogsum():
    train = generate("train", 600)
    assert len(Counter(d.scenario for d in train)) == len(SCENARIOS)
    turns = [len(d.turns) for d in train]
    assert min(turns) <= 6 and max(turns) >= 10
    assert {d.turns[0][0] for d in train} == {"#Person1#"}  # the first speaker is #Person1#, as in DialogSum
    roles = Counter(d.references[0].split(" ", 1)[0] for d in train)
    assert roles["#Person1#"] > 50 and roles["#Person2#"] > 50  # either speaker can be the one who wants something
    for d in train[:50]:
        assert re.search(r"#Person[12]#", d.references[0]) and d.references[0].endswith(".")
        assert "{" not in d.dialogue + d.references[0]


def test_test_references_are_paraphrases_in_dialogsums_original_shape():
    test = load_dialogsum("miniature")["test"]
    assert len(test) == SPLIT_SIZES["test"] and all(len(set(r)) == 3 for r in test["references"])
    assert all(len(t) == 3 for t in test["topics"])
    assert test[0]["id"] == "test_0" and set(load_dialogsum("miniature")) == {"train", "validation", "test"}
