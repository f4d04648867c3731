"""`dialogsum-lab review`: the human-evaluation web app. Gradio for the page (Try, Rate, Results), and a small
JSON interface beside it on the same server (`/api/next`, `/api/judgments`) for scripted raters and the load
test; both call the one store.

Blind by construction: the rating page and the JSON interface carry dialogues, summaries, a task number and
counts, never a system's name (the store keeps which system was A); Try and Results, which name systems, fill
in only when asked. Bound to 127.0.0.1 unless told otherwise; on any other address the page is the Rate tab
alone, raters never see results, and every request needs the shared token (in the URL once, then a cookie).
"""

import json
import os
import secrets
import socket
import tempfile
from dataclasses import asdict
from pathlib import Path

from dialogsum_lab.errors import UserError
from dialogsum_lab.review import Review, Summarizer, agreement_line, judgments_csv, report
from dialogsum_lab.review_store import DIMENSIONS, MAX_COMMENT, MAX_NAME, ReviewStore, Task

LOOPBACK = ("127.0.0.1", "localhost", "::1")
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
    ranked = gr.Dataframe(label="Bradley-Terry ranking", elem_id="results-ranking")
    rouge = gr.Dataframe(label="Human preference vs ROUGE-L", elem_id="results-rouge")
    side = gr.Dataframe(label="Human preference beside ROUGE-L and the details each system keeps or invents",
                        elem_id="results-beside")
    plot = gr.Plot(label="Preferences and ranking")
    export = gr.DownloadButton("Export judgments (CSV)", elem_id="results-csv")
    folder = Path(tempfile.mkdtemp(prefix="dialogsum-review-"))

    def refresh():
        result = report(store)
        csv_file = folder / "judgments.csv"
        csv_file.write_text(judgments_csv(store), encoding="utf-8", newline="")
        if not result["judgments"]:
            return "No judgments yet.", None, None, None, None, None, str(csv_file)
        line = f"**{result['judgments']} judgments by {result['raters']} rater(s).** " + agreement_line(
            result["agreement"])
        return (line, result["wins"].round(3), result["ranking"].round(3), result["rouge"].round(3),
                result["beside"].round(3), plot_results(result["wins"], result["ranking"]), str(csv_file))

    show.click(refresh, [], [headline, wins, ranked, rouge, side, plot, export])


def build_app(review: Review, store: ReviewStore, token: str | None, rate_only: bool, root_path: str | None = None):
    """The server: the JSON interface, the token check, and the Gradio page mounted at /."""
    import gradio as gr
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def require_token(request: Request, call_next):
        if token is None:
            return await call_next(request)
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or \
            request.headers.get("x-review-token") or ""
        if not secrets.compare_digest(given, token):
            return PlainTextResponse("This review needs its access token: open the link dialogsum-lab review "
                                     "printed.", status_code=401)
        response = await call_next(request)
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    async def body(request: Request) -> dict:
        raw = await request.body()
        if len(raw) > MAX_REQUEST_BYTES:
            raise UserError(f"a request has at most {MAX_REQUEST_BYTES:,} bytes.")
        try:
            data = json.loads(raw or b"{}")
        except ValueError as err:
            raise UserError("send a JSON object.") from err
        if not isinstance(data, dict):
            raise UserError("send a JSON object.")
        return data

    @app.post("/api/next")
    async def next_task(request: Request):
        try:
            task = store.next_task((await body(request)).get("rater", ""))
        except UserError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        return {"finished": True} if task is None else {"finished": False, **asdict(task)}

    @app.post("/api/judgments")
    async def judgment(request: Request):
        try:
            data = await body(request)
            stored = store.record(data.get("rater", ""), int(data.get("assignment", -1)), data.get("answer"),
                                  data.get("ratings") or {}, str(data.get("comment") or ""))
        except (UserError, TypeError, ValueError) as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        return {"stored": stored}

    return gr.mount_gradio_app(app, build_page(review, store, rate_only), path="/", footer_links=[],
                               root_path=root_path)


def serve(review: Review, db: str | Path, host: str = "127.0.0.1", port: int = 7860, token: str | None = None,
          root_path: str | None = None, say=print) -> None:
    """Open (or create) the database, then serve until interrupted."""
    import uvicorn

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
    uvicorn.run(build_app(review, store, token, rate_only=shared, root_path=root_path), host=host, port=port,
                log_level="warning")
