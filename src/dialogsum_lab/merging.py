"""Folding a LoRA or IA3 adapter into its base: a standalone model, checked against the adapter it came from."""

import shutil
from pathlib import Path

import torch

from dialogsum_lab.config import TRAIN_CONFIG, TrainConfig
from dialogsum_lab.errors import UserError
from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.modeling import load_trained, quiet_library_notices
from dialogsum_lab.prompts import PROMPT_TEMPLATE
from dialogsum_lab.runs import share_files, write_json

# Dialogues to check a merged model against its adapter on when the run's own data cannot be loaded here.
PROBE_DIALOGUES = (
    "#Person1#: Could you water my plants while I'm away?\n#Person2#: Of course. How often?\n"
    "#Person1#: Every two days. The key is under the mat.",
    "#Person1#: Is the pharmacy still open?\n#Person2#: Until eight tonight.\n#Person1#: Great, I need cough syrup.",
    "#Person1#: I'd like to change my flight to Friday.\n#Person2#: There is a seat at noon for a small fee.\n"
    "#Person1#: That's fine, please book it.",
    "#Person1#: Did you finish the report?\n#Person2#: Almost. I need the sales figures from Tom.\n"
    "#Person1#: I'll ask him to send them today.",
    "#Person1#: How much is a coffee and a muffin?\n#Person2#: Five dollars together.\n#Person1#: Here you are.",
    "#Person1#: The printer on the second floor is jammed again.\n#Person2#: I'll call the technician.\n"
    "#Person1#: Thanks, I'll use the one downstairs until then.",
    "#Person1#: Shall we go hiking on Sunday?\n#Person2#: Only if it doesn't rain.\n"
    "#Person1#: The forecast says sunny. Let's meet at nine.",
    "#Person1#: My daughter starts school next week.\n#Person2#: Is she excited?\n"
    "#Person1#: Very. She already packed her bag twice.",
)
MERGE_CHECK_DIALOGUES = 8



def merge_adapter(path: str, out: str | Path, base: str | None = None, check_texts: list[str] | None = None,
                  device: str = "auto") -> dict:
    """Fold a LoRA (or IA3) adapter into the base weights, save a standalone model, check outputs agree.

    The check compares logits and greedy summaries of the adapter model and the merged model on
    `check_texts`, by default the first 8 test dialogues of the run's own data (8 built-in ones where that
    data cannot be loaded); it is saved as `merge_check.json`.
    """
    model, tokenizer, info = load_trained(path, base=base, dtype="float32", device=device)
    if not info["adapter"]:
        raise UserError(f"{path} holds no adapter: a fully fine-tuned model is already standalone.")
    peft_type = str(model.peft_config["default"].peft_type.value)
    if peft_type not in ("LORA", "IA3"):
        raise UserError(f"{peft_type} adapters add virtual tokens instead of changing weights, so they cannot be "
                        "merged. Evaluate them with the base model and --adapter instead.")
    texts, source = (check_texts, "given") if check_texts else _check_dialogues(path)
    inputs = tokenizer([PROMPT_TEMPLATE.format(dialogue=t) for t in texts],
                       return_tensors="pt", padding=True).to(model.device)
    decoder = torch.full((len(texts), 8), model.config.decoder_start_token_id, device=model.device)
    config = generation_config(model, max_new_tokens=32)
    with torch.inference_mode():
        before_logits = model(**inputs, decoder_input_ids=decoder).logits
    before = summarize(model, tokenizer, texts, config, progress=False)
    with quiet_library_notices():
        merged = model.merge_and_unload()
    with torch.inference_mode():
        after_logits = merged(**inputs, decoder_input_ids=decoder).logits
    after = summarize(merged, tokenizer, texts, config, progress=False)
    out = Path(out)
    merged.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    share_files(out)
    check = {"adapter": info["adapter"], "base_model": info["model"], "peft_type": peft_type,
             "max_abs_logit_difference": float((before_logits - after_logits).abs().max()),
             "summaries_identical": before == after, "summaries_differing": sum(a != b for a, b in zip(
                 before, after, strict=True)), "dialogues_checked": len(texts), "dialogues_from": source}
    write_json(out / "merge_check.json", check)
    trained_on = Path(path) / "training_set.json"
    if trained_on.is_file():  # the merged model trained on what the run trained on: evaluation checks it too
        shutil.copyfile(trained_on, out / trained_on.name)
    return check


def _check_dialogues(path: str) -> tuple[list[str], str]:
    """The first test dialogues of the run's own data, or the built-in ones where that data cannot be loaded."""
    from dialogsum_lab.data import head, load_dialogsum, select_split

    config = Path(path) / TRAIN_CONFIG
    if config.is_file():
        data = TrainConfig.load(config).data
        try:
            split = head(select_split(load_dialogsum(data), "test"), MERGE_CHECK_DIALOGUES)
            return list(split["dialogue"]), f"{data}[test]"
        except UserError:
            pass
    return list(PROBE_DIALOGUES[:MERGE_CHECK_DIALOGUES]), "built-in dialogues"
