"""The notebook widgets: the rating panel stores what its buttons say, escapes names, and stays blind; the
scripted session goes through the same buttons; the playground answers its controls; a saved notebook
shows each widget's note."""

import pytest
from test_review import DIALOGUES, SYSTEMS

from dialogsum_lab import review_widgets
from dialogsum_lab.review_store import ReviewStore
from dialogsum_lab.review_widgets import RatingPanel, playground, scripted_session, show


def buttons(panel: RatingPanel) -> dict:
    return {b.description: b for b in panel.widget.children[-1].children}


def test_the_panels_buttons_store_each_answer_and_show_the_next_pair_blind(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    panel = RatingPanel(store, "Ann <script>x</script>")
    assert "&lt;script&gt;" in panel.progress.value and "<script>" not in panel.progress.value
    first = panel.task
    buttons(panel)["B is better"].click()
    buttons(panel)["Tie"].click()
    rows = store.judgments()
    assert [r["answer"] for r in rows] == ["B", "tie"] and rows[0]["assignment_id"] == first.assignment
    shown = " ".join(w.value for w in (panel.progress, panel.dialogue, *panel.summaries))
    assert not [name for name in SYSTEMS if name in shown]


def test_a_scripted_session_answers_through_the_panels(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    scripted_session([RatingPanel(store, f"simulated rater {i}") for i in (1, 2)], judgments=7, seeds=[1, 2])
    rows = store.judgments()
    assert len(rows) == 14 and {r["rater"] for r in rows} == {"simulated rater 1", "simulated rater 2"}


def test_a_saved_notebook_shows_the_widgets_note(monkeypatch):
    shown = []
    monkeypatch.setattr(review_widgets, "display", lambda bundle, raw: shown.append(bundle))
    import ipywidgets

    show(ipywidgets.Button(description="x"), "a button.")
    assert "application/vnd.jupyter.widget-view+json" in shown[0]
    assert shown[0]["text/plain"].startswith("[interactive: a button. Run the notebook")


@pytest.mark.slow
def test_the_playground_summarises_again_when_a_control_moves(tiny):
    model, tokenizer = tiny
    panel = playground(model, tokenizer, {"d0": DIALOGUES["d0"], "d1": DIALOGUES["d1"]})
    out = panel.children[-1]
    before = out.outputs
    panel.children[1].children[0].value = 3  # max new tokens
    assert out.outputs and out.outputs != before and "summary:" in out.outputs[0]["text"]
