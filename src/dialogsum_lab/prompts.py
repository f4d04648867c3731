"""The lab's instruction prompts, and the zero/one/few-shot prompts of the course's Week 1 recap.

Kept apart from `data.py` so that generating text needs no dataset library.
"""

from collections.abc import Sequence

# The lab's exact instruction; T5's tokenizer drops the newlines, so they are cosmetic.
PROMPT_TEMPLATE = "Summarize the following conversation.\n\n{dialogue}\n\nSummary: "
TOPIC_TEMPLATE = "What is the topic of this conversation?\n\n{dialogue}\n\nTopic: "
# The dialogue without its last turn, and that turn to say: an ability any dialogue data can test.
NEXT_TURN_TEMPLATE = "What does the next speaker say?\n\n{dialogue}\n\nNext turn: "
TASK_PROMPTS = {"summary": PROMPT_TEMPLATE, "topic": TOPIC_TEMPLATE, "next_turn": NEXT_TURN_TEMPLATE}


def split_last_turn(dialogue: str) -> tuple[str, str]:
    """(every turn but the last, the last turn with its speaker tag): the next-turn task's prompt and answer."""
    turns = dialogue.strip().split("\n")
    if len(turns) < 2:
        return "", turns[0]
    return "\n".join(turns[:-1]), turns[-1]


def few_shot_prompt(examples: Sequence[tuple[str, str]], dialogue: str) -> str:
    """In-context learning: solved (dialogue, summary) examples, then the dialogue to summarise.

    With no examples this is the zero-shot prompt; with one, one-shot. The
    examples' length counts against the model's 512-token input window.
    """
    shots = "".join(PROMPT_TEMPLATE.format(dialogue=d) + f"{s}\n\n\n" for d, s in examples)
    return shots + PROMPT_TEMPLATE.format(dialogue=dialogue)
