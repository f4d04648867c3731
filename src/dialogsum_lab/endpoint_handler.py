"""A SageMaker real-time endpoint's inference handler: the four functions SageMaker's PyTorch serving
container calls (`model_fn`, `input_fn`, `predict_fn`, `output_fn`), on the package's own batched `summarize`.

In: JSON `{"inputs": "a dialogue"}` or `{"inputs": ["...", "..."]}`, with optional
`"parameters": {"max_new_tokens": N, "num_beams": B}`. Out: `{"summary": "..."}` for one dialogue,
`{"summaries": [...]}` for a list, in order. A request the handler cannot take is refused with a 4xx status and
one line saying why (`RequestRefused`, the serving toolkit's own error class inside the container), never a
500 with a traceback. The model folder is a run folder as `sagemaker_serve.serving_archive` packs it: the
run's settings (its prompt, its source length) travel with the weights.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from dialogsum_lab.config import DEFAULT_MAX_NEW_TOKENS, MAX_DIALOGUE_CHARACTERS, TRAIN_CONFIG, TrainConfig
from dialogsum_lab.data_files import UnreadableJSON, load_json, lone_surrogate

JSON = "application/json"
JSON_RANGES = (JSON, "application/*", "*/*")  # the Accept header's media ranges that take JSON, most specific first
QUALITY = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")  # an Accept q value (RFC 9110); any other is no quality
MAX_BODY_BYTES = 5 * 2**20  # SageMaker refuses payloads over 6 MB before they arrive; refuse earlier, with a reason
MAX_DIALOGUES = 64  # a request must finish inside the endpoint's 60-second limit
MAX_NEW_TOKENS = 512
MAX_BEAMS = 8
BUNDLED_BASE = "base"  # an adapter's local base model, packed beside it (a Hub base is downloaded instead)

try:  # inside SageMaker's serving container: its toolkit turns this error into the HTTP status it carries
    from sagemaker_inference.errors import GenericInferenceToolkitError as _ToolkitError
except ImportError:
    class _ToolkitError(Exception):
        """The toolkit's error, for running the handler outside the container (tests, local checks)."""

        def __init__(self, status_code: int, message: str | None = None, phrase: str | None = None) -> None:
            super().__init__(status_code, message, phrase)
            self.status_code, self.message, self.phrase = status_code, message, phrase or message


class RequestRefused(_ToolkitError):
    """A request this endpoint will not take: its 4xx status and one line saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message, message)

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


@dataclass
class Served:
    """What `model_fn` loads once per container: the model and what the run says about its prompts."""

    model: object
    tokenizer: object
    prompt_template: str
    max_source_length: int


def model_fn(model_dir: str) -> Served:
    """Load the run in `model_dir` (the endpoint's unpacked model.tar.gz) on the instance's GPU if it has one."""
    from dialogsum_lab.modeling import load_trained

    run = Path(model_dir)
    bundled = run / BUNDLED_BASE
    model, tokenizer, _ = load_trained(str(run), base=str(bundled) if bundled.is_dir() else None)
    config = TrainConfig.load(run / TRAIN_CONFIG)
    return Served(model, tokenizer, config.prompt_template, config.max_source_length)


def input_fn(request_body: bytes | str, request_content_type: str | None) -> dict:
    """The request, checked: dialogues (one or a list) and generation parameters within bounds."""
    if (request_content_type or "").split(";")[0].strip().lower() != JSON:  # media types ignore case
        raise RequestRefused(415, f"send {JSON} (got {request_content_type or 'no content type'})")
    if len(request_body) > MAX_BODY_BYTES:
        raise RequestRefused(413, f"the request is {len(request_body):,} bytes; at most {MAX_BODY_BYTES:,}: send "
                                  "fewer dialogues per request")
    try:
        request = load_json(request_body)
    except UnreadableJSON as err:
        raise RequestRefused(400, f"the body cannot be taken: {err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestRefused(400, f"the body is not JSON ({err})") from err
    if not isinstance(request, dict) or "inputs" not in request:
        raise RequestRefused(400, 'send {"inputs": "a dialogue"} or {"inputs": ["a dialogue", ...]}')
    single = isinstance(request["inputs"], str)
    dialogues = [request["inputs"]] if single else request["inputs"]
    if not isinstance(dialogues, list) or not dialogues or not all(isinstance(d, str) for d in dialogues):
        raise RequestRefused(400, '"inputs" must be a dialogue (text) or a non-empty list of dialogues')
    if len(dialogues) > MAX_DIALOGUES:
        raise RequestRefused(413, f"{len(dialogues)} dialogues in one request; at most {MAX_DIALOGUES}")
    for number, dialogue in enumerate(dialogues):
        _check_dialogue(number, dialogue)
    return {"dialogues": dialogues, "single": single, "parameters": _parameters(request.get("parameters", {}))}


def _check_dialogue(number: int, dialogue: str) -> None:
    """Refuse a dialogue that is empty, too long to finish in time, or holds text that is no character (a lone
    surrogate, which JSON may escape as "\\ud800"; it would fail in the tokenizer, as a 500)."""
    if not dialogue.strip():
        raise RequestRefused(400, f"dialogue {number} is empty")
    if len(dialogue) > MAX_DIALOGUE_CHARACTERS:
        raise RequestRefused(413, f"dialogue {number} has {len(dialogue):,} characters; at most "
                                  f"{MAX_DIALOGUE_CHARACTERS:,}")
    found = lone_surrogate(dialogue)
    if found:
        raise RequestRefused(400, f"dialogue {number} holds {found}, half of a UTF-16 surrogate pair and no "
                                  "character on its own: send the character itself")


def _parameters(given) -> dict:
    bounds = {"max_new_tokens": MAX_NEW_TOKENS, "num_beams": MAX_BEAMS}
    if not isinstance(given, dict) or set(given) - set(bounds):
        raise RequestRefused(400, f'"parameters" may hold {" and ".join(bounds)} only')
    for name, value in given.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= bounds[name]:
            raise RequestRefused(400, f"{name} must be a whole number from 1 to {bounds[name]} (got {value!r})")
    return {"max_new_tokens": DEFAULT_MAX_NEW_TOKENS} | given


def predict_fn(data: dict, served: Served) -> dict:
    """Summaries for the request's dialogues, batched and length-sorted, in the request's order."""
    from dialogsum_lab.generation import generation_config, summarize

    config = generation_config(served.model, **data["parameters"])
    summaries = summarize(served.model, served.tokenizer, data["dialogues"], config,
                          prompt_template=served.prompt_template, max_source_length=served.max_source_length,
                          progress=False)
    return {"summary": summaries[0]} if data["single"] else {"summaries": summaries}


def output_fn(prediction: dict, accept: str | None) -> tuple[str, str]:
    """The prediction as JSON, and its content type (the only one this endpoint answers in)."""
    if not _accepts_json(accept):
        raise RequestRefused(406, f"this endpoint answers in {JSON} only (asked for {accept})")
    return json.dumps(prediction, ensure_ascii=False), JSON


def _accepts_json(accept: str | None) -> bool:
    """Whether an Accept header takes JSON. It lists media ranges, each with an optional q (0 refuses); the most
    specific range that covers JSON decides, so `application/json;q=0, */*` refuses it. No header takes anything."""
    if not (accept or "").strip():
        return True
    quality = {}
    for item in accept.split(","):
        media, *parameters = (part.strip().lower() for part in item.split(";"))
        q = next((value.strip() for name, _, value in (p.partition("=") for p in parameters) if name.strip() == "q"),
                 "1")
        quality.setdefault(media, float(q) if QUALITY.fullmatch(q) else 0.0)
    return next((quality[media] for media in JSON_RANGES if media in quality), 0.0) > 0
