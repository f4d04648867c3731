"""Human evaluation without a browser: the statistics against hand computations and the literature's worked
examples, the store (balanced, blind, durable, never duplicating), and each mistake a user can make."""

import json
import sqlite3
import threading

import pytest
from helpers import one_line_error

from dialogsum_lab.cli import main
from dialogsum_lab.errors import UserError
from dialogsum_lab.review import load_review
from dialogsum_lab.review_stats import (
    agreement,
    bradley_terry,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    preferences,
    rouge_agreement,
    win_rates,
)
from dialogsum_lab.review_store import REPLICATION, ReviewStore

SYSTEMS = {name: {f"d{i}": f"summary {i} in style {k}" for i in range(6)}
           for k, name in enumerate(("sys-x", "sys-y", "sys-z"))}
DIALOGUES = {f"d{i}": f"#Person1#: line {i}\n#Person2#: reply {i}" for i in range(6)}


def judgment(rater, dialogue, shown_a, shown_b, answer):
    first, second = sorted((shown_a, shown_b))
    return {"rater": rater, "dialogue_id": dialogue, "shown_a": shown_a, "shown_b": shown_b, "answer": answer,
            "system_1": first, "system_2": second}


def test_kappas_and_alpha_match_the_literatures_worked_examples():
    # Cohen (Wikipedia's worked example): 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> p_o 0.7, p_e 0.5, 0.4
    a, b = ["y"] * 25 + ["n"] * 25, ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    # Fleiss (1971) as worked on Wikipedia: 10 subjects, 14 raters, 5 categories -> 0.210
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0],
             [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units, nominal -> 0.743
    n = None
    observers = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
                 [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]
    units = [[v for v in unit if v is not None] for unit in zip(*observers, strict=True)]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)


def test_win_rates_and_bradley_terry_by_hand():
    prefs = preferences([judgment("r1", "d0", "sys-x", "sys-y", "A"), judgment("r1", "d1", "sys-y", "sys-x", "B"),
                         judgment("r2", "d2", "sys-x", "sys-y", "tie"), judgment("r2", "d3", "sys-y", "sys-x", "A")])
    row = win_rates(prefs, samples=200).iloc[0]  # x won twice (once shown as B), lost once, tied once
    assert (row["first"], row["first wins"], row["second wins"], row["ties"]) == ("sys-x", 2, 1, 1)
    assert row["first win rate"] == pytest.approx(2.5 / 4) and row["ci_low"] <= 0.625 <= row["ci_high"]
    # two systems: the MLE is the win share itself (ties half): x 2.5 of 4
    assert bradley_terry(prefs) == pytest.approx({"sys-x": 0.625, "sys-y": 0.375})
    cycle = preferences([judgment("r", "d0", "sys-x", "sys-y", "A"), judgment("r", "d0", "sys-y", "sys-z", "A"),
                         judgment("r", "d0", "sys-z", "sys-x", "A")])
    assert bradley_terry(cycle) == pytest.approx({"sys-x": 1 / 3, "sys-y": 1 / 3, "sys-z": 1 / 3})


def test_agreement_and_rouge_agreement_count_their_overlap():
    rows = [judgment("r1", "d0", "sys-x", "sys-y", "A"), judgment("r2", "d0", "sys-y", "sys-x", "B"),  # agree: x
            judgment("r1", "d1", "sys-x", "sys-y", "A"), judgment("r2", "d1", "sys-x", "sys-y", "B"),  # disagree
            judgment("r1", "d2", "sys-x", "sys-y", "tie")]
    result = agreement(preferences(rows))
    assert (result["overlapping tasks"], result["overlapping judgments"]) == (2, 4)
    assert result["cohen_kappa"] == pytest.approx(cohen_kappa([1.0, 1.0], [1.0, 0.0]))
    rouge = {"sys-x": {"d0": 0.5, "d1": 0.1, "d2": 0.3}, "sys-y": {"d0": 0.2, "d1": 0.4, "d2": 0.3}}
    table = rouge_agreement(preferences(rows), rouge).iloc[0]  # d0: ROUGE and both say x; d1: ROUGE y, one of two
    assert table["judgments compared"] == 4 and table["agree with ROUGE-L"] == pytest.approx(3 / 4)


def test_tasks_are_balanced_blind_and_never_repeated_for_a_rater(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    seen, pairs = set(), []
    while (task := store.next_task("ann")) is not None:
        row = sqlite3.connect(store.path).execute("SELECT task_id, shown_a, shown_b FROM assignments WHERE id = ?",
                                                  (task.assignment,)).fetchone()
        assert row[0] not in seen and not any(name in json.dumps(task.__dict__) for name in SYSTEMS)
        seen.add(row[0])
        pairs.append(tuple(sorted(row[1:])))
        store.record("ann", task.assignment, "A")
    assert len(seen) == 18 and all(pairs[:3].count(p) == 1 for p in set(pairs[:3]))  # the 3 pairs rotate
    first = store.next_task("bob")  # a second rater is given tasks already judged once: agreement can be measured
    assert first is not None and sqlite3.connect(store.path).execute(
        "SELECT COUNT(*) FROM assignments WHERE task_id = (SELECT task_id FROM assignments WHERE id = ?)",
        (first.assignment,)).fetchone()[0] == REPLICATION


def test_a_rater_comes_back_to_the_task_they_left_and_resubmitting_counts_once(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    left = store.next_task("ann")
    again = ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES).next_task("ann")  # a restart
    assert again.assignment == left.assignment and again.summary_a == left.summary_a
    assert store.record("ann", left.assignment, "B", {"a_fluency": 4}, "fine") is True
    assert store.record("ann", left.assignment, "B") is False  # a double click: stored once
    rows = store.judgments()
    assert len(rows) == 1 and rows[0]["a_fluency"] == 4 and rows[0]["comment"] == "fine" and rows[0]["answered"]


def test_concurrent_raters_lose_and_duplicate_nothing(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    done = []

    def rate(name):
        while (task := store.next_task(name)) is not None:
            store.record(name, task.assignment, "tie")
            done.append((name, task.assignment))

    threads = [threading.Thread(target=rate, args=(f"rater {i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = store.judgments()
    assert len(rows) == len(done) == 6 * 18 and len({r["assignment_id"] for r in rows}) == len(rows)


@pytest.mark.parametrize(("name", "says"), [("", "give your name first"), ("x" * 10_000, "at most 80 characters")])
def test_a_missing_or_overlong_name_is_refused_in_one_line(tmp_path, name, says):
    with pytest.raises(UserError, match=says):
        ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES).next_task(name)


def test_a_file_that_is_no_database_or_one_made_for_other_systems_is_refused(tmp_path):
    (tmp_path / "notes.sqlite").write_text("these are my notes, not a database" * 50)
    with pytest.raises(UserError, match="is not a review database"):
        ReviewStore(tmp_path / "notes.sqlite", SYSTEMS, DIALOGUES)
    with sqlite3.connect(tmp_path / "app.db") as other_app:
        other_app.execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(UserError, match="another application's database"):
        ReviewStore(tmp_path / "app.db", SYSTEMS, DIALOGUES)
    ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    other = SYSTEMS | {"sys-z": {d: "changed" for d in DIALOGUES}}
    with pytest.raises(UserError, match="holds judgments of other systems"):
        ReviewStore(tmp_path / "r.sqlite", other, DIALOGUES)


@pytest.mark.slow
def test_the_commands_say_what_is_wrong_in_one_line(rated_runs, tmp_path, capsys):
    import socket

    assert main(["review-report", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no review database" in one_line_error(capsys)
    (tmp_path / "notes.sqlite").write_text("not a database" * 100)
    assert main(["review", *map(str, rated_runs), "--db", str(tmp_path / "notes.sqlite")]) == 2
    assert "is not a review database" in one_line_error(capsys)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["review", *map(str, rated_runs), "--db", str(tmp_path / "r.sqlite"), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(capsys)
    load_review(rated_runs[:1]).store(tmp_path / "one.sqlite")  # made for one run and the human reference
    assert main(["review", *map(str, rated_runs), "--db", str(tmp_path / "one.sqlite")]) == 2
    assert "holds judgments of other systems" in one_line_error(capsys)


def review_of(systems=SYSTEMS):
    from dialogsum_lab.review import Review

    return Review(systems, DIALOGUES, rouge={}, scored={})


def test_a_shared_server_needs_the_token_and_shows_raters_the_rate_tab_only(tmp_path):
    from fastapi.testclient import TestClient

    from dialogsum_lab.review_app import build_app

    review = review_of()
    client = TestClient(build_app(review, review.store(tmp_path / "r.sqlite"), "s3cret", rate_only=True))
    assert client.get("/").status_code == 401 and client.post("/api/next", json={"rater": "x"}).status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    assert client.get("/?token=s3cret").status_code == 200  # then the cookie carries it
    config = client.get("/config").text
    assert '"Rate"' in config and '"Try"' not in config and '"Results"' not in config
    task = client.post("/api/next", json={"rater": "Ann"}).json()
    assert task["finished"] is False and not [name for name in SYSTEMS if name in json.dumps(task)]
    assert client.post("/api/judgments", json={"rater": "Ann", "assignment": task["assignment"],
                                                "answer": "A"}).json() == {"stored": True}
    refused = client.post("/api/judgments", json={"rater": "Ann", "assignment": task["assignment"], "answer": "C"})
    assert refused.status_code == 400 and "choose A, B, tie" in refused.json()["error"]
    assert client.post("/api/next", json={"rater": "x" * 10_000}).json()["error"].startswith("a name has at most")
    for odd in ({"rater": "Ann", "assignment": "one", "answer": "A"},
                {"rater": "Ann", "assignment": task["assignment"], "answer": "A", "ratings": [5]}, [1]):
        assert client.post("/api/judgments", json=odd).status_code == 400


def test_serving_beyond_this_machine_warns_and_makes_a_token(tmp_path, monkeypatch, capsys):
    import uvicorn

    from dialogsum_lab.review_app import serve

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **where: served.update(where))
    serve(review_of(), tmp_path / "r.sqlite", host="0.0.0.0", port=0)
    printed = capsys.readouterr().out
    assert printed.startswith("Warning: serving on 0.0.0.0") and "?token=" in printed and served["host"] == "0.0.0.0"


def test_try_loads_each_runs_own_weights_from_wherever_the_app_starts(rated_runs, tmp_path, monkeypatch):
    import shutil

    from dialogsum_lab.review import Summarizer

    monkeypatch.chdir(tmp_path)
    for run in rated_runs:  # evaluated as typed: paths relative to where the user stood
        shutil.copytree(run, tmp_path / run.name)
        assert main(["evaluate", run.name, "--limit", "2", "--bootstrap-samples", "20", "--max-new-tokens", "4",
                     "--device", "cpu", "--overwrite"]) == 0
    review = load_review([tmp_path / run.name for run in rated_runs], dialogues=2)
    decoy = tmp_path / "elsewhere"
    for run in rated_runs:  # where the app starts: other folders under the recorded names, unusable
        (decoy / run.name / "model").mkdir(parents=True)
        (decoy / run.name / "model" / "config.json").write_text("{ damaged")
    monkeypatch.chdir(decoy)
    summaries = Summarizer(review.scored).summaries("#Person1#: Hello.\n#Person2#: Hi, a table for two?",
                                                    max_new_tokens=4)
    assert list(summaries["run"]) == [run.name for run in rated_runs]
