"""`dialogsum-lab review`: the human-evaluation web app. Gradio for the page (Try, Rate, Results), and a small
JSON interface beside it on the same server (`/api/next`, `/api/judgments`) for scripted raters and the load
test; both call the one store.

Blind by construction: the rating page and the JSON interface carry dialogues, summaries, a task number and
counts, never a system's name (the store keeps which system was A); Try and Results, which name systems, fill
in only when asked. Bound to 127.0.0.1 unless told otherwise; on any other address the page is the Rate tab
alone, raters never see results, and every request needs the shared token (in the URL once, then a cookie).

The JSON interface answers scripts, not other sites' pages: it wants Content-Type application/json (a form or a
text/plain post, which any page can make a browser send, is refused), no Origin but the server's own, and a Host
naming the server (a DNS name rebound to 127.0.0.1 is refused). Whatever goes wrong is one line: 4xx for the
request, 503 for a database that cannot be used now.
"""

import json
import os
import re
import secrets
import socket
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from dialogsum_lab.errors import UserError
from dialogsum_lab.review import Review, Summarizer, agreement_line, judgments_csv, report
from dialogsum_lab.review_store import DIMENSIONS, MAX_COMMENT, MAX_NAME, ReviewStore, StoreUnavailable, Task

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")  # every address of the machine
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9._~-]+")  # what a link and a cookie carry as they are
TOKEN_COOKIE = "dialogsum_review_token"
MAX_REQUEST_BYTES = 64 * 1024
RATE_HELP = ("Read the dialogue, then the two summaries. Which one would you rather give someone who has not "
             "read the dialogue? Judge what they say (is it true to the dialogue, does it keep what matters) "
             "before how they say it. Your answer is saved before the next pair appears; you can stop at any "
             "time and come back under the same name.")


def check_port(host: str, port: int) -> None:
    """One line, before anything starts, when the port is taken (by a listener: as uvicorn does, a port left in
    TIME_WAIT by a server killed a moment ago counts as free)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise UserError(f"cannot listen on {host}:{port} ({err.strerror}): pass another --port, or stop what "
                            "holds it.") from err


def _shown(task: Task | None, name: str) -> tuple:
    """What the Rate tab shows of a task: progress, dialogue, summary A, summary B."""
    if task is None:
        return f"{name}: you have judged every pair in this review. Thank you!", "", "", ""
    return (f"Rating as {name}: {task.judged} judged so far (task {task.assignment}).", task.dialogue,
            task.summary_a, task.summary_b)


def build_page(review: Review, store: ReviewStore, rate_only: bool):
    """The Gradio page: Rate always; Try and Results unless `rate_only`."""
    import gradio as gr

    with gr.Blocks(title="dialogsum-lab review") as page:
        gr.Markdown("# Which summary is better?")
        with gr.Tab("Rate", id="rate"):
            _rate_tab(gr, store)
        if not rate_only:
            with gr.Tab("Try", id="try"):
                _try_tab(gr, review)
            with gr.Tab("Results", id="results"):
                _results_tab(gr, review, store)
    return page


def _rate_tab(gr, store: ReviewStore) -> None:
    gr.Markdown(RATE_HELP)
    with gr.Row():
        name = gr.Textbox(label="Your name", max_length=MAX_NAME, elem_id="rater-name", scale=3)
        start = gr.Button("Start rating", elem_id="start", scale=1)
    progress = gr.Textbox(label="Progress", interactive=False, elem_id="progress")
    dialogue = gr.Textbox(label="Dialogue", lines=8, interactive=False, elem_id="dialogue")
    with gr.Row():
        summary_a = gr.Textbox(label="Summary A", lines=3, interactive=False, elem_id="summary-a")
        summary_b = gr.Textbox(label="Summary B", lines=3, interactive=False, elem_id="summary-b")
    with gr.Accordion("Optional: rate each summary from 1 (poor) to 5 (excellent)", open=False, elem_id="ratings"):
        ratings = [gr.Radio([1, 2, 3, 4, 5], label=f"{side}: {dimension}", elem_id=f"rate-{side.lower()}-{dimension}")
                   for side in ("A", "B") for dimension in DIMENSIONS]
    comment = gr.Textbox(label="Comment (optional)", max_length=MAX_COMMENT, elem_id="comment")
    with gr.Row():
        answers = {answer: gr.Button(label, elem_id=f"answer-{answer}", variant="primary")
                   for answer, label in (("A", "A is better"), ("tie", "Tie"), ("B", "B is better"))}
    rater, assignment = gr.State(""), gr.State(None)
    shown = [progress, dialogue, summary_a, summary_b]

    def begin(typed: str):
        try:
            task = store.next_task(typed)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None
        named = " ".join(typed.split())
        return named, task.assignment if task else None, *_shown(task, named)

    def answered(answer: str):
        def submit(named: str, current, *rest):
            *scores, note = rest
            if not named or current is None:
                raise gr.Error("give your name and press Start rating first.", print_exception=False)
            keys = [f"{side}_{d}" for side in "ab" for d in DIMENSIONS]
            try:
                store.record(named, current, answer, dict(zip(keys, scores, strict=True)), note or "")
                task = store.next_task(named)
            except UserError as err:
                raise gr.Error(str(err), print_exception=False) from None
            return task.assignment if task else None, *_shown(task, named), *([None] * len(ratings)), ""
        return submit

    start.click(begin, [name], [rater, assignment, *shown])
    name.submit(begin, [name], [rater, assignment, *shown])
    for answer, button in answers.items():
        button.click(answered(answer), [rater, assignment, *ratings, comment],
                     [assignment, *shown, *ratings, comment], concurrency_limit=None)


def _try_tab(gr, review: Review) -> None:
    summarizer = Summarizer(review.scored)
    gr.Markdown("Summarise any dialogue with every rated model, under generation settings of your choice.")
    pick = gr.Dropdown(list(review.dialogues), label="Pick a dialogue", elem_id="try-pick")
    text = gr.Textbox(label="or paste one", lines=8, elem_id="try-dialogue")
    with gr.Row():
        tokens = gr.Slider(1, 512, value=64, step=1, label="max new tokens")
        beams = gr.Slider(1, 8, value=1, step=1, label="beams")
        sample = gr.Checkbox(label="sample")
        temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="temperature")
        top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="top-p")
    go = gr.Button("Summarise with every model", elem_id="try-go")
    out = gr.Dataframe(headers=["run", "summary"], wrap=True, elem_id="try-out")

    def run(*settings):
        try:
            return summarizer.summaries(*settings)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None

    pick.change(lambda i: review.dialogues.get(i, ""), [pick], [text])
    go.click(run, [text, tokens, beams, sample, temperature, top_p], [out])


def _results_tab(gr, review: Review, store: ReviewStore) -> None:
    from dialogsum_lab.review_stats import plot_results

    show = gr.Button("Show results", elem_id="results-show")
    headline = gr.Markdown(elem_id="results-headline")
    wins = gr.Dataframe(label="Pairwise win rates (ties count half; 95% bootstrap)", elem_id="results-wins")
    ranked = gr.Dataframe(label="Bradley-Terry ranking, beside ROUGE-L and the details each system keeps or invents",
                          elem_id="results-ranking")
    rouge = gr.Dataframe(label="Human preference vs ROUGE-L", elem_id="results-rouge")
    plot = gr.Plot(label="Preferences and ranking")
    export = gr.DownloadButton("Export judgments (CSV)", elem_id="results-csv")
    folder = Path(tempfile.mkdtemp(prefix="dialogsum-review-"))

    def refresh():
        try:
            result = report(store)
        except UserError as err:  # the database locked, deleted or read-only meanwhile
            raise gr.Error(str(err), print_exception=False) from None
        csv_file = folder / "judgments.csv"
        csv_file.write_text(judgments_csv(store), encoding="utf-8", newline="")
        if not result["judgments"]:
            return "No judgments yet.", None, None, None, None, str(csv_file)
        line = f"**{result['judgments']} judgments by {result['raters']} rater(s).** " + agreement_line(
            result["agreement"])
        return (line, result["wins"].round(3), result["beside"].round(3), result["rouge"].round(3),
                plot_results(result["wins"], result["ranking"]), str(csv_file))

    show.click(refresh, [], [headline, wins, ranked, rouge, plot, export])


class Refused(Exception):
    """A request the JSON interface turns down: its HTTP status, and the one line that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def allowed_hosts(host: str, port: int) -> set[str] | None:
    """The Host headers that name this server: its address and the loopback names, with the port. None on a
    wildcard address, where any name of the machine is its own (such a server is shared: the token guards it)."""
    if host in WILDCARD:
        return None
    return {f"[{name}]:{port}" if ":" in name else f"{name}:{port}" for name in {host.lower(), *LOOPBACK}}


def check_request(request: "Request", hosts: set[str] | None) -> None:
    """Refuse what a page on another site could make a browser send: another Host (DNS rebinding), another
    Origin, or a body that is not declared JSON (a form or text/plain post needs no permission to be sent)."""
    host = request.headers.get("host", "").lower()
    if hosts is not None and host not in hosts:
        raise Refused(403, f"this server does not answer to {host[:80]!r}: call it {' or '.join(sorted(hosts))}.")
    origin = request.headers.get("origin")
    if origin is not None and origin.lower() != f"{request.url.scheme}://{host}":
        raise Refused(403, f"requests from another site's page ({origin[:80]!r}) are refused: call the API from a "
                           "script, or use the page this server serves.")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise Refused(415, "send the body as JSON, with the header Content-Type: application/json.")


async def request_json(request: "Request") -> dict:
    """The request's JSON object, read no further than MAX_REQUEST_BYTES: a longer body is refused as it comes."""
    declared = request.headers.get("content-length", "")
    too_long = Refused(413, f"a request has at most {MAX_REQUEST_BYTES:,} bytes: send a shorter one.")
    if declared.isascii() and declared.isdigit() and (len(declared) > 12 or int(declared) > MAX_REQUEST_BYTES):
        raise too_long
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_REQUEST_BYTES:
            raise too_long
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):  # not JSON, not UTF-8, a 5000-digit number, nested thousands deep
        raise UserError("send a JSON object (UTF-8, numbers under 4,300 digits, nested under 1,000 deep).") from None
    if not isinstance(data, dict):
        raise UserError("send a JSON object.")
    return data


async def answer(request: "Request", hosts: set[str] | None, work: Callable[[dict], dict]) -> "Response":
    """`work` on the request's JSON object, in a worker thread (a database locked elsewhere never stalls the
    server); whatever goes wrong is one line: 4xx for the request, 503 for the database."""
    from fastapi.responses import JSONResponse
    from starlette.concurrency import run_in_threadpool

    try:
        check_request(request, hosts)
        return JSONResponse(await run_in_threadpool(work, await request_json(request)))
    except Refused as err:
        status, line = err.status, str(err)
    except StoreUnavailable as err:
        status, line = 503, str(err)
    except UserError as err:
        status, line = 400, str(err)
    return JSONResponse({"error": line.encode("utf-8", "backslashreplace").decode()}, status_code=status)


def build_app(review: Review, store: ReviewStore, token: str | None, rate_only: bool, root_path: str | None = None,
              listen: tuple[str, int] | None = None):
    """The server: the JSON interface, the token check, and the Gradio page mounted at /. `listen` is the
    (host, port) it is served on, for the Host check (None: a test client, which no DNS name can reach)."""
    import gradio as gr
    from fastapi import FastAPI, Request
    from fastapi.responses import PlainTextResponse

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if token is None:
            return await call_next(request)
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or \
            request.headers.get("x-review-token") or ""
        if not secrets.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass")):
            return PlainTextResponse("This review needs its access token: open the link dialogsum-lab review "
                                     "printed.", status_code=401)
        response = await call_next(request)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    hosts = None if listen is None or root_path else allowed_hosts(*listen)  # behind a proxy, the proxy names it

    def assign(data: dict) -> dict:
        task = store.next_task(data.get("rater", ""))
        return {"finished": True} if task is None else {"finished": False, **asdict(task)}

    def record(data: dict) -> dict:
        return {"stored": store.record(data.get("rater", ""), data.get("assignment"), data.get("answer"),
                                       data.get("ratings") or {}, str(data.get("comment") or ""))}

    @app.post("/api/next")
    async def next_task(request: Request):
        return await answer(request, hosts, assign)

    @app.post("/api/judgments")
    async def judgment(request: Request):
        return await answer(request, hosts, record)

    return gr.mount_gradio_app(app, build_page(review, store, rate_only), path="/", footer_links=[],
                               root_path=root_path)


def serve(review: Review, db: str | Path, host: str = "127.0.0.1", port: int = 7860, token: str | None = None,
          root_path: str | None = None, say=print) -> None:
    """Open (or create) the database, then serve until interrupted."""
    import uvicorn

    if token is not None and not TOKEN_CHARACTERS.fullmatch(token):
        raise UserError("a --token holds letters, digits and - . _ ~ only (it travels in a link and a cookie): choose "
                        "another, or leave it out for a random one.")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    store = review.store(db)
    check_port(host, port)
    shared = host not in LOOPBACK
    if shared:
        token = token or secrets.token_urlsafe(16)
        say(f"Warning: serving on {host}, reachable from other machines. Raters see the Rate tab only and need "
            "the token; Try and Results stay on this machine (dialogsum-lab review-report --db "
            f"{db}, or a second `review` on 127.0.0.1 with the same --db).")
    link = f"http://{'127.0.0.1' if not shared else host}:{port}/" + (f"?token={token}" if token else "")
    say(f"Review of {', '.join(review.systems)} on {len(review.dialogues)} dialogues; judgments in {db}.\n"
        f"Open {link}  (Ctrl-C stops; judgments are kept)")
    uvicorn.run(build_app(review, store, token, rate_only=shared, root_path=root_path, listen=(host, port)), host=host,
                port=port, log_level="warning")
