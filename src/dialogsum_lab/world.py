"""A synthetic dialogue world in DialogSum's shape: the data of the offline miniature lab.

Seeded and deterministic: the same version gives the same dialogues on every machine. Fourteen everyday
scenarios (`world_scenarios.py`), each turn said in one of several phrasings, with slot values (names,
days, times, prices, places, things), optional detail turns that the summary mentions, small talk that it
does not, varying length and speaker order. Summaries are observer-view with `#PersonN#` tags, like
DialogSum's; the test split carries three paraphrased references and three topics per dialogue.

Validation and test draw names, places and things from a held-out quarter of every open pool, so no test
dialogue or summary occurs in training and the test measures generalisation, not memory. The world was
written for this project; its figures say nothing about DialogSum or flan-t5-base.
"""

import random
import re
from dataclasses import dataclass
from pathlib import Path

from dialogsum_lab.world_scenarios import CLOSED_POOLS, OPEN_POOLS, SCENARIOS, SMALL_TALK, Scenario

WORLD_VERSION = 1  # bump when the generator changes: it names the cached folder
SPLIT_SIZES = {"train": 3000, "validation": 200, "test": 200}
SPLIT_SEEDS = {"train": 1, "validation": 2, "test": 3}
ID_PREFIX = {"train": "train", "validation": "dev", "test": "test"}
HELD_OUT_EVERY = 4  # every 4th value of an open pool is for validation and test only
REFERENCES = {"train": 1, "validation": 1, "test": 3}
SMALL_TALK_CHANCE = (0.4, 0.15)  # chance of a first and of a second small-talk exchange
SPEAKERS = ("#Person1#", "#Person2#")


@dataclass(frozen=True)
class Dialogue:
    """One generated conversation and everything true about it."""

    id: str
    scenario: str
    turns: tuple[tuple[str, str], ...]  # (speaker tag, text)
    references: tuple[str, ...]  # observer-view summaries, paraphrases of one another
    topics: tuple[str, ...]
    intent: str  # what the speaker who wants something wants, as one sentence
    questions: tuple[tuple[str, str], ...]  # (question, answer)
    facts: tuple[tuple[str, str, str], ...] = ()  # (slot, value, pool) of each slot the dialogue states: the truth

    @property
    def dialogue(self) -> str:
        return "\n".join(f"{tag}: {text}" for tag, text in self.turns)

    def row(self) -> dict:
        """DialogSum's original shape: `summary`/`topic` with one reference, `summary1..n`/`topic1..n` with more."""
        if len(self.references) == 1:
            return {"fname": self.id, "dialogue": self.dialogue, "summary": self.references[0],
                    "topic": self.topics[0], "facts": self.fact_rows()}
        return {"fname": self.id, "dialogue": self.dialogue,
                **{f"summary{i}": s for i, s in enumerate(self.references, 1)},
                **{f"topic{i}": t for i, t in enumerate(self.topics, 1)}, "facts": self.fact_rows()}

    def fact_rows(self) -> list[dict]:
        return [{"slot": slot, "value": value, "pool": pool} for slot, value, pool in self.facts]


def pools(split: str) -> dict[str, tuple[str, ...]]:
    """Every slot pool as `split` sees it: training gets three quarters of each open pool, the others the rest."""
    held_out = split != "train"
    open_part = {name: tuple(v for i, v in enumerate(values) if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == held_out)
                 for name, values in OPEN_POOLS.items()}
    return open_part | CLOSED_POOLS


def all_pools() -> dict[str, tuple[str, ...]]:
    """Every pool whole (training's part and the held-out part): the values a fact could have been."""
    return OPEN_POOLS | CLOSED_POOLS


def generate(split: str, n: int | None = None) -> list[Dialogue]:
    """The split's dialogues (the first `n`), the same on every call and every machine."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; the world has {', '.join(SPLIT_SIZES)}")
    rng, values = random.Random(SPLIT_SEEDS[split]), pools(split)
    seen: set[str] = set()
    out: list[Dialogue] = []
    while len(out) < (n or SPLIT_SIZES[split]):
        scenario = SCENARIOS[len(out) % len(SCENARIOS)]
        made = _dialogue(rng, scenario, values, f"{ID_PREFIX[split]}_{len(out)}", REFERENCES[split])
        if made.dialogue not in seen:  # every dialogue of a split is distinct
            seen.add(made.dialogue)
            out.append(made)
    return out


def _dialogue(rng: random.Random, scenario: Scenario, values: dict, ident: str, n_refs: int) -> Dialogue:
    slots = _draw_slots(rng, scenario, values)
    turns, notes = _turns(rng, scenario, values)
    first = turns[0][0]
    tags = {first: SPEAKERS[0], ("b" if first == "a" else "a"): SPEAKERS[1]}
    fill = slots | tags
    rendered = tuple((tags[role], _capital(text.format(**fill))) for role, text in turns)
    templates = rng.sample(scenario.summaries, n_refs)
    references = tuple(_capital(t.format(**fill, notes=_clauses([rng.choice(n) for n in notes]).format(**fill)))
                       for t in templates)
    topics = scenario.topics if n_refs > 1 else (rng.choice(scenario.topics),)
    questions = tuple((q.format(**fill), a.format(**fill)) for q, a in scenario.questions)
    said = " ".join(text for _, text in rendered).lower()
    facts = tuple((slot, value, scenario.slots[slot]) for slot, value in slots.items()  # a slot of a turn left
                  if re.search(rf"(?<![\w-]){re.escape(value.lower())}(?![\w-])", said))  # out is no fact

    return Dialogue(ident, scenario.name, rendered, references, topics,
                    _capital(rng.choice(scenario.intents).format(**fill)), questions, facts)


def _draw_slots(rng: random.Random, scenario: Scenario, values: dict) -> dict[str, str]:
    """A value for every slot; two slots from one pool (a job before and after) never share a value."""
    taken: dict[str, set[str]] = {}
    slots = {}
    for slot, pool in scenario.slots.items():
        choices = [v for v in values[pool] if v not in taken.setdefault(pool, set())]
        slots[slot] = rng.choice(choices)
        taken[pool].add(slots[slot])
    return slots


def _turns(rng: random.Random, scenario: Scenario, values: dict) -> tuple[list[tuple[str, str]], list[tuple]]:
    """(role, text) turns, with a greeting, optional details and small talk decided, and the notes of the details
    that were said; consecutive turns of one role become one turn."""
    turns, notes = [], []
    if scenario.turns[0].role == "a" and rng.random() < scenario.b_opens:
        turns.append(("b", rng.choice(scenario.greeting)))
    for turn in scenario.turns:
        if turn.optional and rng.random() < 0.5:
            continue
        turns.append((turn.role, rng.choice(turn.phrasings)))
        if turn.note:
            notes.append(turn.note)
    for chance in SMALL_TALK_CHANCE:
        if rng.random() < chance:
            at = rng.randrange(2, len(turns))
            opener = rng.choice("ab")
            line, reply = rng.choice(SMALL_TALK)
            chat = {"first": rng.choice(values["first"]), "day": rng.choice(values["day"])}
            turns[at:at] = [(opener, line.format(**chat)), ("b" if opener == "a" else "a", reply.format(**chat))]
    merged: list[tuple[str, str]] = []
    for role, text in turns:
        if merged and merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]} {text}")
        else:
            merged.append((role, text))
    return merged, notes


def _clauses(clauses: list[str]) -> str:
    """Detail clauses appended to a summary sentence: '', ' and X', ', X and Y'."""
    if not clauses:
        return ""
    if len(clauses) == 1:
        return f" and {clauses[0]}"
    return ", " + ", ".join(clauses[:-1]) + f" and {clauses[-1]}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def write_world(folder: Path) -> Path:
    """Every split as JSON Lines in DialogSum's original shape (train.jsonl, validation.jsonl, test.jsonl)."""
    from dialogsum_lab.runs import write_jsonl

    for split in SPLIT_SIZES:
        write_jsonl(folder / f"{split}.jsonl", [d.row() for d in generate(split)])
    return folder
