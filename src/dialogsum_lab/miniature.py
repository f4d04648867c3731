"""The miniature lab's base model: a small FLAN-T5 that learned the synthetic world, but never to summarise.

FLAN-T5 is T5 instruction-tuned on many tasks; flan-t5-base then summarises DialogSum zero-shot only
roughly (0.23 ROUGE-1 in the course) and fine-tuning lifts it. `miniature-t5` is built to stand in the same
place: FLAN-T5's architecture (gated-GELU, untied output matrix, a SentencePiece-style Unigram tokenizer
with T5's special tokens) at toy size, with its own tokenizer trained on the world's training split, then
trained from random weights on an instruction mixture over the training dialogues that **excludes
summarisation**: naming the topic, answering who/what/when questions, saying what a speaker wants, and
continuing a dialogue. So zero-shot summarisation is weak but not nothing, and fine-tuning has abilities to
lose.

Shipped as safetensors in `data/miniature/model/` (8 MB); `scripts/build_miniature.py` rebuilds it,
deterministically for a given machine and thread count (20 minutes on two CPU cores; `build.json` records
the steps, losses and time), saved with `save_pretrained`, so it loads through the same `from_pretrained(path)`
code as `google/flan-t5-base`. Its figures describe a synthetic miniature and say nothing about flan-t5-base
on DialogSum.
"""

import math
import platform
import random
import time
from pathlib import Path

import torch

from dialogsum_lab.prompts import NEXT_TURN_TEMPLATE, PROMPT_TEMPLATE, TOPIC_TEMPLATE, split_last_turn
from dialogsum_lab.world import WORLD_VERSION, Dialogue, generate

MINIATURE_NOTE = ("miniature-t5 is a small model trained for this project on a synthetic dialogue world "
                  "(the `miniature` data): its scores show the lab's effects in miniature and say nothing about "
                  "google/flan-t5-base on DialogSum.")
# The architecture: FLAN-T5's, scaled down to train in minutes on two CPU cores.
SHAPE = {"d_model": 128, "d_kv": 16, "d_ff": 384, "num_layers": 3, "num_heads": 8, "relative_attention_num_buckets": 32}
VOCAB_SIZE = 2000  # an upper bound: the world's texts support about a thousand pieces
# The instruction mixture's training: steps of `BATCH` examples, AdamW with a short warm-up and linear decay.
STEPS, BATCH, LEARNING_RATE, WARMUP, SEED = 3000, 32, 1e-3, 100, 0
# Instruction templates of the mixture (several wordings per task, as FLAN has), none of them summarisation.
QUESTION_TEMPLATES = ("Answer the question about the conversation.\n\n{dialogue}\n\nQuestion: {question}\n\nAnswer: ",
                      "Read the conversation and answer the question.\n\n{dialogue}\n\n{question}\n\nAnswer: ")
# Every question about a dialogue at once: four answers for one reading of the dialogue.
QUESTIONS_TEMPLATE = "Answer each question about the conversation.\n\n{dialogue}\n\nQuestions: {questions}\n\nAnswers: "
TOPIC_TEMPLATES = (TOPIC_TEMPLATE, "Name the topic of the conversation.\n\n{dialogue}\n\nTopic: ")
INTENT_TEMPLATE = "What does {speaker} want?\n\n{dialogue}\n\nAnswer: "
NEXT_TURN_TEMPLATES = (NEXT_TURN_TEMPLATE, "Continue the conversation with the next turn.\n\n{dialogue}\n\nNext turn: ")


def instruction_mixture(dialogues: list[Dialogue], seed: int = SEED) -> list[tuple[str, str]]:
    """(prompt, target) pairs over `dialogues`, shuffled: every instruction task but summarising, and T5's span
    corruption of the world's texts (its dialogues, and its observer-view sentences as plain text: the model
    learns the language of summaries as T5 learned English from C4, never which summary belongs to which
    dialogue)."""
    rng = random.Random(seed)
    pairs = []
    for d in dialogues:
        text = d.dialogue
        question, answer = rng.choice(d.questions)
        pairs.append((rng.choice(QUESTION_TEMPLATES).format(dialogue=text, question=question), answer))
        asked = rng.sample(d.questions, len(d.questions))
        pairs.append((QUESTIONS_TEMPLATE.format(dialogue=text, questions=" ".join(q for q, _ in asked)),
                      " ".join(f"{a}." for _, a in asked)))
        pairs.append((rng.choice(TOPIC_TEMPLATES).format(dialogue=text), rng.choice(d.topics)))
        speaker = d.intent.split(" ", 1)[0]
        pairs.append((INTENT_TEMPLATE.format(speaker=speaker, dialogue=text), d.intent))
        context, last = split_last_turn(text)
        pairs.append((rng.choice(NEXT_TURN_TEMPLATES).format(dialogue=context), last))
        pairs += [span_corruption(plain, rng) for plain in (text, d.references[0])]
    rng.shuffle(pairs)
    return pairs


def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """A SentencePiece Unigram tokenizer (the kind FLAN-T5's is) learned from `texts`, as a T5Tokenizer with T5's
    special tokens at T5's ids and its 100 sentinels. Single-threaded, so the same texts give the same pieces."""
    import io

    import sentencepiece as spm
    from transformers import T5Tokenizer

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(" ".join(t.split()) for t in texts), model_writer=model, vocab_size=vocab_size,
        hard_vocab_limit=False, model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        character_coverage=1.0, num_threads=1, minloglevel=2)
    pieces = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = [(pieces.id_to_piece(i), pieces.get_score(i)) for i in range(pieces.get_piece_size())]
    return T5Tokenizer(vocab=vocab, extra_ids=100, model_max_length=512)


def span_corruption(text: str, rng: random.Random, rate: float = 0.15, mean_span: int = 3) -> tuple[str, str]:
    """T5's pre-training task: about `rate` of the words, in spans of ~`mean_span`, replaced by sentinels; the
    target spells out what each sentinel hid. Every word of the world's texts becomes a target somewhere, as every
    word of C4 was for T5, so no piece of the vocabulary is left untrained."""
    words, source, target, k, i = text.split(), [], [], 0, 0
    while i < len(words):
        if k < 100 and rng.random() < rate / mean_span:
            length = rng.randint(1, 2 * mean_span - 1)
            source.append(f"<extra_id_{k}>")
            target += [f"<extra_id_{k}>", *words[i:i + length]]
            i, k = i + length, k + 1
        else:
            source.append(words[i])
            i += 1
    if not target:  # a text too short to be hit: hide its last word
        source[-1:], target = ["<extra_id_0>"], ["<extra_id_0>", words[-1]]
    return " ".join(source), " ".join(target)


def _batches(pairs: list[tuple[str, str]], tokenizer, rng: random.Random) -> list[dict]:
    """Padded batches of examples of similar length (little padding), in random order."""
    sources = tokenizer([p for p, _ in pairs], truncation=True, max_length=512)["input_ids"]
    targets = tokenizer([t for _, t in pairs], truncation=True, max_length=128)["input_ids"]
    order = sorted(range(len(pairs)), key=lambda i: (len(sources[i]), rng.random()))
    chunks = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
    rng.shuffle(chunks)
    out = []
    for chunk in chunks:
        source = tokenizer.pad({"input_ids": [sources[i] for i in chunk]}, return_tensors="pt")
        labels = tokenizer.pad({"input_ids": [targets[i] for i in chunk]}, return_tensors="pt")["input_ids"]
        out.append({**source, "labels": labels.masked_fill(labels == tokenizer.pad_token_id, -100)})
    return out


def prepare(seed: int = SEED):
    """Everything the build starts from, deterministically: the tokenizer trained on the world's training split,
    the randomly initialised model, and the batches of the instruction mixture."""
    from dialogsum_lab.random_models import random_flan_t5

    dialogues = generate("train")
    pairs = instruction_mixture(dialogues, seed)
    tokenizer = train_tokenizer(tokenizer_texts(dialogues, pairs))
    with torch.random.fork_rng(devices=[]):  # its own random stream: building never shifts a caller's
        torch.manual_seed(seed)
        model = random_flan_t5(vocab_size=len(tokenizer), **SHAPE)
        # An output matrix of unit variance starts a model this narrow at a loss of ~40; d_model**-0.5 at ~8.
        torch.nn.init.normal_(model.lm_head.weight, std=SHAPE["d_model"] ** -0.5)
    return tokenizer, model, _batches(pairs, tokenizer, random.Random(seed)), len(pairs)


def tokenizer_texts(dialogues: list[Dialogue], pairs: list[tuple[str, str]]) -> list[str]:
    """What the tokenizer learns its pieces from: the training split's dialogues and summaries, the mixture's
    prompts and answers, and the lab's summary prompt (a real tokenizer knows the words of every prompt)."""
    return ([d.dialogue for d in dialogues] + [d.references[0] for d in dialogues]
            + [t for pair in pairs for t in pair] + [PROMPT_TEMPLATE])


def build_miniature(out_dir: str | Path, steps: int = STEPS, progress: bool = True) -> dict:
    """Train the miniature base from random weights; save model, tokenizer, card and build record to `out_dir`
    (written beside it and moved into place, so an interrupted build leaves nothing). Returns the record."""
    start = time.perf_counter()
    tokenizer, model, batches, examples = prepare()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        losses = train_steps(model, batches, steps, progress=progress)
    record = {"world_version": WORLD_VERSION, "shape": SHAPE, "vocab_size": len(tokenizer), "steps": steps,
              "batch_size": BATCH, "learning_rate": LEARNING_RATE, "warmup": WARMUP, "seed": SEED,
              "examples": examples, "parameters": sum(p.numel() for p in model.parameters()),
              "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
              "seconds": round(time.perf_counter() - start, 1), "torch": torch.__version__,
              "machine": platform.machine(), "threads": torch.get_num_threads(), "losses": losses}
    _save(model.eval(), tokenizer, Path(out_dir), record)
    return record


def train_steps(model, batches: list[dict], steps: int, stop_after: int | None = None,
                progress: bool = False) -> list[float]:
    """AdamW with warm-up and linear decay over `steps`, the loss a mean over target tokens; returns the loss of
    every step (the first `stop_after` only, when given: the same schedule, cut short)."""
    from tqdm.auto import tqdm

    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / WARMUP) * max(0.0, 1 - s / steps))
    model.train()
    losses = []
    for step in tqdm(range(stop_after or steps), desc="Building miniature-t5", disable=not progress, mininterval=10):
        loss = model(**batches[step % len(batches)]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 4))
        if not math.isfinite(losses[-1]):
            raise RuntimeError(f"building miniature-t5 diverged at step {step}")
    return losses


def _save(model, tokenizer, folder: Path, record: dict) -> None:
    import shutil
    import tempfile

    from dialogsum_lab.runs import share_files, write_json

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    write_json(staging / "build.json", record)
    (staging / "README.md").write_text(f"# miniature-t5\n\n{MINIATURE_NOTE}\n\n{__doc__}\n")
    share_files(staging)
    staging.chmod(0o755)
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)
