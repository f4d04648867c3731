"""Training throughput: the lab's tokenisation vs dialogsum_lab's, one epoch each, same model and data.

Lab: inputs and labels padded to 512 tokens, no attention mask, pad tokens trained on as targets.
Ours: truncation only, per-batch padding, padded labels set to -100, length-grouped batches.
Afterwards both models are scored by the same held-out loss over real (non-pad) summary tokens.
"""

import copy
import math

import torch
from common import dialogues, median_time, model_and_tokenizer, parser, print_table, save
from datasets import Dataset
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, default_data_collator

from dialogsum_lab.data import build_prompts, make_collator, tokenize


def lab_features(rows: list[dict], tokenizer) -> Dataset:
    """The lab's `tokenize_function` in effect, on the same (prompt, summary) pairs as ours."""
    pairs = build_prompts(Dataset.from_list(rows))
    inputs = tokenizer(list(pairs["prompt"]), padding="max_length", truncation=True, max_length=512).input_ids
    labels = tokenizer(list(pairs["target"]), padding="max_length", truncation=True, max_length=512).input_ids
    return Dataset.from_dict({"input_ids": inputs, "labels": labels})


def our_features(rows: list[dict], tokenizer) -> Dataset:
    return tokenize(build_prompts(Dataset.from_list(rows)), tokenizer, 512, 128)


def train_epoch(model, features: Dataset, collator, grouped: bool, args: dict) -> dict:
    trainer = Seq2SeqTrainer(model=model, train_dataset=features, data_collator=collator,
                             args=Seq2SeqTrainingArguments(
                                 train_sampling_strategy="group_by_length" if grouped else "random", **args))
    return trainer.train().metrics


@torch.no_grad()
def real_token_loss(model, features: Dataset, collator, batch_size: int = 16) -> float:
    """Mean cross-entropy over non-pad summary tokens (labels -100 where padded)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(features), batch_size):
        batch = collator([features[i] for i in range(start, min(start + batch_size, len(features)))])
        batch = {k: v.to(model.device) for k, v in batch.items()}
        logits = model(**batch).logits
        mask = batch["labels"] != -100
        total += torch.nn.functional.cross_entropy(logits[mask], batch["labels"][mask], reduction="sum").item()
        count += mask.sum().item()
    return total / count


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=128, help="training dialogues (one epoch)")
    p.add_argument("--n-eval", type=int, default=48, help="held-out dialogues for the real-token loss")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    args = p.parse_args()
    if args.smoke:
        args.n, args.n_eval, args.repeats = 8, 4, 1
    source, rows = dialogues(args.data, args.n + args.n_eval)
    train_rows, eval_rows = rows[:args.n], rows[args.n:]
    initial, tokenizer = model_and_tokenizer(args.model, args.device)
    initial.train()
    collator = make_collator(tokenizer, initial, pad_to_multiple_of=8 if initial.device.type == "cuda" else None)
    held_out = our_features(eval_rows, tokenizer)
    common = {"output_dir": "benchmarks/scratch", "per_device_train_batch_size": args.batch_size,
              "learning_rate": args.learning_rate, "num_train_epochs": 1, "save_strategy": "no", "report_to": [],
              "logging_steps": 1000, "seed": 0, "use_cpu": initial.device.type == "cpu", "disable_tqdm": True,
              "bf16": initial.device.type == "cuda" and torch.cuda.is_bf16_supported()}
    setups = {"lab": (lab_features(train_rows, tokenizer), default_data_collator, False),
              "ours": (our_features(train_rows, tokenizer), collator, True)}
    result = {"data": source, "model": args.model, "device": str(initial.device), "train_dialogues": args.n,
              "eval_dialogues": len(eval_rows), "batch_size": args.batch_size, "repeats": args.repeats,
              "initial_real_token_loss": real_token_loss(initial, held_out, collator)}
    for name, (features, coll, grouped) in setups.items():
        models = []

        def run(features=features, coll=coll, grouped=grouped, models=models):
            models.append(copy.deepcopy(initial))  # the same starting weights every time
            return train_epoch(models[-1], features, coll, grouped, common)

        seconds, metrics = median_time(run, args.repeats)
        tokens = sum(len(x) for x in features["input_ids"]) + sum(len(x) for x in features["labels"])
        result[name] = {"seconds": seconds, "examples": len(features), "samples_per_second": len(features) / seconds,
                        "tokens_processed": tokens, "train_loss_as_optimised": metrics["train_loss"],
                        "real_token_loss_after": real_token_loss(models[-1], held_out, collator)}
    result["speedup"] = result["lab"]["seconds"] / result["ours"]["seconds"]
    lab, ours = result["lab"], result["ours"]
    print_table([("", "seconds", "samples/s", "tokens", "held-out loss (real tokens)"),
                 ("lab (pad 512, pads in loss)", f"{lab['seconds']:.1f}", f"{lab['samples_per_second']:.2f}",
                  lab["tokens_processed"], f"{lab['real_token_loss_after']:.3f}"),
                 ("ours (dynamic, -100, grouped)", f"{ours['seconds']:.1f}", f"{ours['samples_per_second']:.2f}",
                  ours["tokens_processed"], f"{ours['real_token_loss_after']:.3f}"),
                 ("speedup", f"{result['speedup']:.1f}x", "", "",
                  f"before training: {result['initial_real_token_loss']:.3f}")])
    assert math.isfinite(ours["real_token_loss_after"])
    save("train" + ("-smoke" if args.smoke else ""), result, args.out)


if __name__ == "__main__":
    main()
