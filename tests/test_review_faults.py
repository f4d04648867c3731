"""The review app against what a security review tried: replaying the blind order, posting from another site or
through a rebound DNS name, oversized and malformed bodies, odd tokens, and a database that is locked, deleted or
read-only. Each answer is one line with its status, never a 500 or a traceback."""

import asyncio
import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import contextmanager

import pytest
from helpers import one_line_error
from test_review import DIALOGUES, SYSTEMS, review_of

from dialogsum_lab import review_store
from dialogsum_lab.cli import main
from dialogsum_lab.errors import UserError
from dialogsum_lab.review_app import MAX_REQUEST_BYTES, build_app
from dialogsum_lab.review_store import ReviewStore

JSON = {"Content-Type": "application/json"}


def client_of(tmp_path, token=None, listen=None, base_url="http://testserver"):
    from fastapi.testclient import TestClient

    review = review_of()
    extra = {} if listen is None else {"listen": listen}
    app = build_app(review, review.store(tmp_path / "r.sqlite"), token, rate_only=False, **extra)
    return TestClient(app, base_url=base_url, raise_server_exceptions=False)


def refused(reply, status: int) -> str:
    """The reply's one line, asserted to carry `status`."""
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    line = reply.json()["error"] if reply.headers["content-type"].startswith("application/json") else reply.text
    assert line and "\n" not in line and "Traceback" not in line, line
    return line


def assigned(store: ReviewStore, rater: str, count: int) -> list[tuple]:
    """The first `count` assignments a rater is given: (assignment, the system shown as A)."""
    shown = []
    for _ in range(count):
        task = store.next_task(rater)
        with sqlite3.connect(store.path) as db:
            shown.append((task.assignment, db.execute("SELECT shown_a FROM assignments WHERE id = ?",
                                                      (task.assignment,)).fetchone()[0]))
        store.record(rater, task.assignment, "A")
    return shown


def test_the_blind_order_and_the_task_numbers_cannot_be_replayed(tmp_path):
    first = assigned(review_of().store(tmp_path / "one.sqlite"), "ann", 18)  # the server's own path
    second = assigned(review_of().store(tmp_path / "two.sqlite"), "ann", 18)
    assert [a for _, a in first] != [a for _, a in second]  # 18 coin flips alike: 1 in 262,144
    numbers = [n for n, _ in first + second]
    assert len(set(numbers)) == 36 and min(numbers) > 2 ** 20  # neither sequential nor small
    for copy in ("a.sqlite", "b.sqlite"):  # two restarts from one state go on differently
        shutil.copy(tmp_path / "one.sqlite", tmp_path / copy)
    again = [assigned(review_of().store(tmp_path / c), "bob", 6) for c in ("a.sqlite", "b.sqlite")]
    assert again[0] != again[1]


def test_a_page_on_another_site_cannot_post_judgments(tmp_path):
    client = client_of(tmp_path)
    task = client.post("/api/next", json={"rater": "Ann"}).json()
    judgment = json.dumps({"rater": "Ann", "assignment": task["assignment"], "answer": "A"})
    assert "application/json" in refused(client.post("/api/judgments", content=judgment,
                                                      headers={"Content-Type": "text/plain"}), 415)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    refused(client.post("/api/judgments", content=judgment, headers=form), 415)
    refused(client.post("/api/judgments", content=judgment, headers=JSON | {"Origin": "http://evil.example"}), 403)
    refused(client.post("/api/next", json={"rater": "Ann"}, headers={"Origin": "null"}), 403)
    own = client.post("/api/judgments", content=judgment, headers={"Content-Type": "application/json; charset=utf-8",
                                                                    "Origin": "http://testserver"})
    assert own.json() == {"stored": True} and client.get("/config", headers={"Origin": "http://testserver"}).is_success


def test_a_rebound_dns_name_is_refused(tmp_path, monkeypatch):
    import uvicorn

    from dialogsum_lab.review_app import serve

    client = client_of(tmp_path, listen=("127.0.0.1", 7860), base_url="http://127.0.0.1:7860")
    for host in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860", "LOCALHOST:7860"):
        assert client.post("/api/next", json={"rater": "Ann"}, headers={"Host": host}).is_success, host
    for host in ("evil.example:7860", "127.0.0.1:9999", "127.0.0.1", "attacker.127.0.0.1.nip.io:7860"):
        refused(client.post("/api/next", json={"rater": "Ann"}, headers={"Host": host}), 403)
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **where: served.update(where, app=app))
    serve(review_of(), tmp_path / "s.sqlite", port=7861, say=lambda *_: None)
    from fastapi.testclient import TestClient

    rebound = TestClient(served["app"], base_url="http://evil.example:7861", raise_server_exceptions=False)
    refused(rebound.post("/api/next", json={"rater": "Ann"}), 403)


def asgi_post(app, headers: list[tuple[bytes, bytes]], chunks: int, size: int) -> tuple[int, int]:
    """POST `chunks` pieces of `size` bytes to the ASGI app as a streaming client would: (status, pieces read)."""
    read, replies = 0, []

    async def receive():
        nonlocal read
        read += 1
        return {"type": "http.request", "body": b"x" * size, "more_body": read < chunks}

    async def send(message):
        replies.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/api/next", "raw_path": b"/api/next", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
             "client": ("127.0.0.1", 5000), "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send))
    return next(m["status"] for m in replies if m["type"] == "http.response.start"), read


def test_an_oversized_body_is_refused_before_it_is_read(tmp_path):
    client = client_of(tmp_path)
    assert "at most 65,536 bytes" in refused(client.post("/api/next", content=b" " * (MAX_REQUEST_BYTES + 1),
                                                         headers=JSON), 413)
    declared = [(b"content-length", str(128 * 2 ** 20).encode())]
    assert asgi_post(client.app, declared, chunks=8192, size=16384) == (413, 0)  # 128 MB announced: none read
    status, read = asgi_post(client.app, [], chunks=512, size=16384)  # 8 MB, chunked: read up to the limit
    assert status == 413 and read <= MAX_REQUEST_BYTES // 16384 + 1


def test_tokens_are_compared_as_bytes_and_must_fit_a_link(tmp_path):
    client = client_of(tmp_path, token="s3cret")
    assert client.get("/", params={"token": "s3crét"}).status_code == 401
    assert client.post("/api/next", json={"rater": "Ann"}, headers={"X-Review-Token": "s3cré".encode()}).status_code \
        == 401
    latin = client_of(tmp_path, token="tökén")
    assert latin.get("/", params={"token": "tökén"}).status_code == 200
    assert latin.get("/", params={"token": "token"}).status_code == 401
    from dialogsum_lab.review_app import serve

    for token in ("тест", "two words", "a&b"):
        with pytest.raises(UserError, match="--token"):
            serve(review_of(), tmp_path / "r.sqlite", host="0.0.0.0", token=token, say=lambda *_: None)


MALFORMED = [b"[" * 60_000, b'{"rater": ' + b"[" * 3000 + b"]" * 3000 + b"}", b'{"rater": ' + b"7" * 5000 + b"}",
             b'{"rater": "\\ud800"}', b'\xff\xfe{"rater": "Ann"}']
JUDGMENT = b'{"rater": "Ann", "assignment": ASSIGNMENT, "answer": "A"'  # then what is odd, and "}"
ODD_JUDGMENTS = [b', "comment": "\\udfff"', b', "ratings": {"\\ud800": 1}', b', "answer": "\\ud800"',
                 b', "assignment": 1e400', b', "assignment": 1000000000000000000000000000000',
                 b', "assignment": -9223372036854775809', b', "assignment": true', b', "assignment": 2.5',
                 b', "assignment": "12"']


@pytest.mark.parametrize(("path", "body"), [(p, b) for b in MALFORMED for p in ("/api/next", "/api/judgments")] +
                         [("/api/judgments", JUDGMENT + odd + b"}") for odd in ODD_JUDGMENTS])
def test_a_malformed_body_is_a_400_in_one_line(tmp_path, path, body):
    client = client_of(tmp_path)
    task = client.post("/api/next", json={"rater": "Ann"}).json()
    refused(client.post(path, content=body.replace(b"ASSIGNMENT", str(task["assignment"]).encode()),
                        headers=JSON), 400)
    assert client.post("/api/judgments", json={"rater": "Ann", "assignment": task["assignment"],
                                               "answer": "A"}).json() == {"stored": True}  # nothing was stored


def test_a_name_or_comment_sqlite_cannot_store_is_refused_in_one_line(tmp_path):
    store = ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    with pytest.raises(UserError, match="name"):
        store.next_task("Ann \ud800")
    task = store.next_task("Ann")
    with pytest.raises(UserError, match="comment"):
        store.record("Ann", task.assignment, "A", comment="\udfff")
    with pytest.raises(UserError, match="task number"):
        store.record("Ann", 10 ** 30, "A")


@contextmanager
def locked(path):
    """Another process holding the database in BEGIN EXCLUSIVE until the block ends."""
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1], "
                               "isolation_level=None)\ndb.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\n"
                               "sys.stdin.read()", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.fixture
def short_wait(monkeypatch):
    """Wait 0.2 s for a lock, not the server's 30 s."""
    monkeypatch.setattr(review_store, "BUSY_SECONDS", 0.2, raising=False)


def test_a_database_locked_at_start_is_one_line(tmp_path, short_wait):
    ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    with locked(tmp_path / "r.sqlite"), pytest.raises(UserError, match="locked by another program"):
        ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    with locked(tmp_path / "r.sqlite"), pytest.raises(UserError, match="locked by another program"):
        ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES).next_task("Ann")


@pytest.mark.parametrize("fault", ["locked", "deleted", "read-only"])
def test_a_database_that_fails_while_serving_is_a_503_in_one_line(tmp_path, short_wait, monkeypatch, capfd, fault):
    client = client_of(tmp_path)
    task = client.post("/api/next", json={"rater": "Ann"}).json()
    db = tmp_path / "r.sqlite"
    judgment = {"rater": "Ann", "assignment": task["assignment"], "answer": "A"}
    if fault == "locked":
        with locked(db):
            refused(client.post("/api/judgments", json=judgment), 503)
    else:
        if fault == "deleted":
            for path in tmp_path.glob("r.sqlite*"):
                path.unlink()
        else:  # what a chmod a-w gives a user that is not root (root writes anyway): SQLite's SQLITE_READONLY
            connect = sqlite3.connect

            def read_only(*args, **kwargs):
                db = connect(*args, **kwargs)
                db.execute("PRAGMA query_only = ON")
                return db

            monkeypatch.setattr(sqlite3, "connect", read_only)
        refused(client.post("/api/judgments", json=judgment), 503)
        refused(client.post("/api/next", json={"rater": "Bob"}), 503)
        assert db.exists() == (fault == "read-only")  # a deleted database is not made again, empty
    assert "Traceback" not in "".join(capfd.readouterr())


def test_review_report_to_a_folder_is_one_line(tmp_path, capsys):
    ReviewStore(tmp_path / "r.sqlite", SYSTEMS, DIALOGUES)
    assert main(["review-report", "--db", str(tmp_path / "r.sqlite"), "--csv", str(tmp_path)]) == 2
    assert "--csv" in one_line_error(capsys)
    (tmp_path / "file").write_text("")
    assert main(["review-report", "--db", str(tmp_path / "r.sqlite"), "--csv", str(tmp_path / "file" / "j.csv")]) == 2
    assert "--csv" in one_line_error(capsys)
