"""The review in a notebook (ipywidgets, which SageMaker Studio's JupyterLab shows natively): Rate and Results on
the same store as the web app, a generation playground for notebook 01, and a scripted rating session so
that an executed notebook shows real statistics (of simulated raters, said as such).

A widget needs a live kernel; a saved notebook shows each one's text note instead of a frozen control.
"""

import html
import random

import ipywidgets as widgets
from IPython.display import display

from dialogsum_lab.review import agreement_line, report
from dialogsum_lab.review_store import ReviewStore, Task


def show(widget: widgets.Widget, note: str) -> None:
    """Display `widget`, with `note` as what a saved copy of the notebook shows in its place."""
    bundle = widget._repr_mimebundle_()
    bundle["text/plain"] = f"[interactive: {note} Run the notebook to use it; a saved copy cannot.]"
    display(bundle, raw=True)


class RatingPanel:
    """Rate: a dialogue, two summaries (which system wrote which is kept in the store, not here), three
    answers. `answer` is what the buttons call; a scripted session calls it too."""

    def __init__(self, store: ReviewStore, rater: str) -> None:
        self.store, self.rater = store, rater
        self.task: Task | None = None
        self.progress = widgets.HTML()
        self.dialogue = widgets.Textarea(layout=widgets.Layout(width="100%", height="160px"), disabled=True)
        self.summaries = [widgets.Textarea(description=side, layout=widgets.Layout(width="49%", height="80px"),
                                           disabled=True) for side in ("A", "B")]
        buttons = [widgets.Button(description=label, button_style="primary") for label in
                   ("A is better", "Tie", "B is better")]
        for button, answer in zip(buttons, ("A", "tie", "B"), strict=True):
            button.on_click(lambda _, answer=answer: self.answer(answer))
        self.widget = widgets.VBox([self.progress, self.dialogue, widgets.HBox(self.summaries),
                                    widgets.HBox(buttons)])
        self._next()

    def _next(self) -> None:
        self.task = self.store.next_task(self.rater)
        name = html.escape(self.rater)
        if self.task is None:
            self.progress.value = f"<b>{name}</b>: every pair judged. Thank you!"
            self.dialogue.value = self.summaries[0].value = self.summaries[1].value = ""
            return
        self.progress.value = f"Rating as <b>{name}</b>: {self.task.judged} judged so far."
        self.dialogue.value = self.task.dialogue
        self.summaries[0].value, self.summaries[1].value = self.task.summary_a, self.task.summary_b

    def answer(self, answer: str) -> None:
        """Store the answer to the pair on show, then show the next."""
        if self.task is not None:
            self.store.record(self.rater, self.task.assignment, answer)
            self._next()


def results_panel(store: ReviewStore) -> widgets.VBox:
    """Results: the report's tables and plot, refreshed on request."""
    from dialogsum_lab.review_stats import plot_results

    out = widgets.Output()

    def refresh(_=None) -> None:
        out.clear_output()
        with out:
            result = report(store)
            if not result["judgments"]:
                print("No judgments yet.")
                return
            print(f"{result['judgments']} judgments by {result['raters']} rater(s). "
                  f"{agreement_line(result['agreement'])}")
            display(result["wins"].round(3), result["beside"].round(3), result["rouge"].round(3))
            display(plot_results(result["wins"], result["ranking"]))

    button = widgets.Button(description="Refresh results")
    button.on_click(refresh)
    refresh()
    return widgets.VBox([button, out])


def playground(model, tokenizer, dialogues: dict[str, str], prompt_template: str | None = None) -> widgets.VBox:
    """Pick a dialogue, set max new tokens, beams, sampling with temperature and top-p; see the summary."""
    from dialogsum_lab.generation import decoding, generation_config, summarize
    from dialogsum_lab.prompts import PROMPT_TEMPLATE

    pick = widgets.Dropdown(options=list(dialogues), description="dialogue")
    tokens = widgets.IntSlider(64, min=1, max=512, description="max new tokens")
    beams = widgets.IntSlider(1, min=1, max=8, description="beams")
    sample = widgets.Checkbox(False, description="sample")
    temperature = widgets.FloatSlider(1.0, min=0.1, max=2.0, step=0.05, description="temperature")
    top_p = widgets.FloatSlider(1.0, min=0.05, max=1.0, step=0.05, description="top-p")
    out = widgets.Output()

    def run(_=None) -> None:
        settings = decoding(tokens.value, beams.value, sample.value, temperature.value, top_p.value)
        text = summarize(model, tokenizer, [dialogues[pick.value]], generation_config(model, **settings),
                         prompt_template=prompt_template or PROMPT_TEMPLATE, progress=False)[0]
        out.outputs = ()
        out.append_stdout(f"{dialogues[pick.value]}\n\nsummary: {text}\n")

    for control in (pick, tokens, beams, sample, temperature, top_p):
        control.observe(run, names="value")
    run()
    return widgets.VBox([pick, widgets.HBox([tokens, beams]), widgets.HBox([sample, temperature, top_p]), out])


def simulated_rater(seed: int, flip: float = 0.2):
    """A stand-in for a person, for a scripted session: prefers the summary sharing more words with the
    dialogue (ties when equal), and answers at random with probability `flip`. Not a human judgment."""
    rng = random.Random(seed)

    def judge(task: Task) -> str:
        if rng.random() < flip:
            return rng.choice(("A", "B", "tie"))
        words = set(task.dialogue.lower().split())
        a, b = (len(words & set(s.lower().split())) for s in (task.summary_a, task.summary_b))
        return "A" if a > b else "B" if b > a else "tie"

    return judge


def scripted_session(panels: list[RatingPanel], judgments: int, seeds: list[int]) -> None:
    """Each panel's simulated rater answers `judgments` pairs through the panel itself (as its buttons do)."""
    for panel, seed in zip(panels, seeds, strict=True):
        judge = simulated_rater(seed)
        for _ in range(judgments):
            if panel.task is None:
                break
            panel.answer(judge(panel.task))
