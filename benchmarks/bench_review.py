"""Benchmark 11: the review app under load, on loopback.

20 raters at once (threads), each asking for a pair and submitting a judgment 50 times through the app's
JSON interface (`/api/next`, `/api/judgments`) on a real server (uvicorn, the Gradio page mounted beside it).
Reported: judgments submitted and stored (they must be equal, with no duplicate), latency percentiles per
judgment (ask + submit), and the throughput as a ratio against the same judgments written straight into the
store in the same run (the baseline: no HTTP, one thread). The systems are synthetic texts: this measures the
server and SQLite, not a model.

    python bench_review.py [--raters 20] [--judgments 50]   ->  results/review_load.json
"""

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dialogsum_lab.review import Review  # noqa: E402
from dialogsum_lab.review_app import build_app  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def synthetic_review(systems: int = 3, dialogues: int = 40) -> Review:
    """Systems of made-up summaries (labelled as such): enough tasks for every rater's 50 judgments."""
    ids = [f"synthetic-{i}" for i in range(dialogues)]
    return Review(systems={f"system-{s}": {i: f"synthetic summary {n} of style {s}" for n, i in enumerate(ids)}
                           for s in range(systems)},
                  dialogues={i: f"#Person1#: synthetic line {n}\n#Person2#: a reply" for n, i in enumerate(ids)},
                  rouge={}, scored={})


def start_server(review: Review, db: Path):
    """The app on a free loopback port in a background thread; returns (url, stop): stop() shuts it down."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(review, review.store(db), None, rate_only=False),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=30)

    for _ in range(400):
        if server.started:
            return f"http://127.0.0.1:{port}", stop
        time.sleep(0.05)
    raise RuntimeError("the review server did not start")


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def load(url: str, raters: int = 20, judgments: int = 50) -> dict:
    """Every rater asks for a pair and answers it, `judgments` times, all raters at once."""
    latencies, submitted, errors = [], [], []

    def rater(name: str) -> None:
        for k in range(judgments):
            start = time.perf_counter()
            try:
                task = _post(f"{url}/api/next", {"rater": name})
                done = _post(f"{url}/api/judgments", {"rater": name, "assignment": task["assignment"],
                                                      "answer": ("A", "B", "tie")[k % 3]})
            except OSError as err:
                errors.append(str(err))
                continue
            latencies.append(time.perf_counter() - start)
            submitted.append((name, task["assignment"], done["stored"]))

    threads = [threading.Thread(target=rater, args=(f"load rater {i}",)) for i in range(raters)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"submitted": len(submitted), "stored_on_submit": sum(s[2] for s in submitted), "errors": errors,
            "seconds": round(seconds, 2), "judgments_per_second": round(len(submitted) / seconds, 1),
            "latency_ms": {q: round(float(np.percentile(ms, p)), 1) for q, p in
                           (("p50", 50), ("p95", 95), ("max", 100))} if len(ms) else {}}


def direct(review: Review, db: Path, raters: int, judgments: int) -> float:
    """The baseline: the same judgments written straight into the store, one thread; judgments per second."""
    store = review.store(db)
    start = time.perf_counter()
    for i in range(raters):
        for k in range(judgments):
            store.record(f"rater {i}", store.next_task(f"rater {i}").assignment, ("A", "B", "tie")[k % 3])
    return raters * judgments / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--judgments", type=int, default=50)
    args = parser.parse_args()
    review = synthetic_review()
    with tempfile.TemporaryDirectory() as folder:
        url, stop = start_server(review, Path(folder) / "load.sqlite")
        result = load(url, args.raters, args.judgments)
        stop()
        stored = review.store(Path(folder) / "load.sqlite").judgments()
        baseline = direct(review, Path(folder) / "direct.sqlite", args.raters, args.judgments)
    result |= {"in_database": len(stored), "duplicates": len(stored) - len({r["assignment_id"] for r in stored}),
               "direct_judgments_per_second": round(baseline, 1),
               "http_vs_direct_throughput": round(result["judgments_per_second"] / baseline, 3),
               "raters": args.raters, "judgments_each": args.judgments,
               "note": "synthetic systems and texts: the server and SQLite under load, not a model"}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "review_load.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
