"""Human judgments in SQLite: who rated which pair of summaries of which dialogue, in which order, and what
they said. The web app, the notebook widgets and `review-report` all go through this one store.

One row per judgment (rater, task, both systems, the order shown, the answer, optional 1-5 ratings on
SummEval's dimensions, a comment, when it was assigned and answered), committed before the caller moves on.
WAL mode and one short write transaction per call let several raters (threads or processes) write at once;
an assignment has at most one judgment (a repeated submission is recognised, never counted twice), so a
crash, a `kill -9` or a double click loses and duplicates nothing, and a rater who comes back gets the task
they left. The database records the systems it rates (names and prediction fingerprints) and refuses another
set.

Nothing a rater sees predicts what they are not shown: which system is A, and the task's number, are drawn from the
operating system's randomness, fresh in every process, so no seed can be replayed and numbers say nothing of the
order or count of assignments.
"""

import hashlib
import json
import random
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from dialogsum_lab.errors import UserError

ANSWERS = ("A", "B", "tie")
DIMENSIONS = ("coherence", "consistency", "fluency", "relevance")  # SummEval's (Fabbri et al., 2021)
MAX_NAME = 80
MAX_COMMENT = 2000
MAX_TASK_NUMBER = 2 ** 53  # random task numbers below this: exact in JavaScript's numbers too, and unguessable
BUSY_SECONDS = 30.0  # how long a call waits for another program's lock on the database before saying so
REPLICATION = 2  # raters per task before a new task opens: the overlap inter-rater agreement is measured on
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS raters (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, dialogue_id TEXT NOT NULL, system_1 TEXT NOT NULL,
    system_2 TEXT NOT NULL, UNIQUE (dialogue_id, system_1, system_2));
CREATE TABLE IF NOT EXISTS assignments (id INTEGER PRIMARY KEY, rater_id INTEGER NOT NULL REFERENCES raters,
    task_id INTEGER NOT NULL REFERENCES tasks, shown_a TEXT NOT NULL, shown_b TEXT NOT NULL, assigned REAL NOT NULL,
    UNIQUE (rater_id, task_id));
CREATE TABLE IF NOT EXISTS judgments (id INTEGER PRIMARY KEY,
    assignment_id INTEGER NOT NULL UNIQUE REFERENCES assignments, rater_id INTEGER NOT NULL REFERENCES raters,
    task_id INTEGER NOT NULL REFERENCES tasks, shown_a TEXT NOT NULL, shown_b TEXT NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN ('A', 'B', 'tie')),
    {", ".join(f"{s}_{d} INTEGER CHECK ({s}_{d} BETWEEN 1 AND 5)" for s in "ab" for d in DIMENSIONS)},
    comment TEXT NOT NULL DEFAULT '', assigned REAL NOT NULL, answered REAL NOT NULL);
"""


@dataclass(frozen=True)
class Task:
    """What a rater is shown: never which system wrote which summary."""

    assignment: int
    dialogue: str
    summary_a: str
    summary_b: str
    judged: int  # by this rater so far
    total: int  # tasks in the review


class StoreUnavailable(UserError):
    """The database cannot be used now (locked by another program, deleted, read-only, its disk full): a server
    answers 503 and goes on serving; a command stops with the one line."""


def fingerprint(systems: dict[str, dict[str, str]]) -> dict:
    """What a database rates: each system's name and a digest of its summaries, by dialogue id."""
    return {name: hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()
            for name, texts in sorted(systems.items())}


class ReviewStore:
    """The judgments of one review: `systems` maps a name to {dialogue id: summary}; `dialogues` maps an id to
    its text; `rouge` (kept in the database, for the report) maps a model's name to its ROUGE-L by dialogue.
    Pairs of every two systems on every dialogue are the tasks."""

    def __init__(self, path: str | Path, systems: dict[str, dict[str, str]], dialogues: dict[str, str],
                 rouge: dict[str, dict[str, float]] | None = None,
                 details: dict[str, dict[str, float]] | None = None) -> None:
        self.path, self.systems, self.dialogues, self._rouge = Path(path), systems, dialogues, rouge or {}
        self._details = details or {}
        self._random = random.SystemRandom()  # no seed: a restart must not replay which system was A
        with self._connect(create=True) as db:
            self._check_or_record(db)

    @classmethod
    def existing(cls, path: str | Path) -> "ReviewStore":
        """A database made before, opened to read its judgments (the report; nothing is assigned)."""
        store = cls.__new__(cls)
        store.path, store.systems, store.dialogues = Path(path), None, None
        if not store.path.is_file():
            raise UserError(f"no review database {path}: start one with dialogsum-lab review RUN ... --db {path}")
        with store._connect() as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            rows = dict(db.execute("SELECT key, value FROM meta").fetchall()) if "meta" in tables else {}
        if "systems" not in rows:
            raise UserError(f"{path} is not a review database (it records no systems).")
        store._rouge = json.loads(rows.get("rouge", "{}"))
        store._details = json.loads(rows.get("details", "{}"))  # absent in databases made before the detail view
        return store

    def rouge(self) -> dict[str, dict[str, float]]:
        """Each model's ROUGE-L by dialogue, as recorded when the review began."""
        return self._rouge

    def details(self) -> dict[str, dict[str, float]]:
        """Each model's detail view (`details.py`) over the rated dialogues, as recorded when the review began."""
        return self._details

    @contextmanager
    def _connect(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection for one call, closed after it (transactions are explicit: `_write`). Only the constructor
        creates the file, so one deleted while serving is not made again empty; SQLite's errors become one line."""
        uri = f"{self.path.resolve().as_uri()}?mode={'rwc' if create else 'rw'}"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=BUSY_SECONDS, isolation_level=None)
            try:
                db.execute("PRAGMA foreign_keys=ON")
                yield db
            finally:
                db.close()
        except sqlite3.IntegrityError:
            raise  # a constraint the checks above missed: a bug, not the file's state
        except sqlite3.DatabaseError as err:
            raise _unusable(self.path, err) from err

    def _check_or_record(self, db: sqlite3.Connection) -> None:
        """Record what this review rates in a new database; in an existing one, check it is the same."""
        wanted = fingerprint(self.systems)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "meta" not in tables:
            raise UserError(f"{self.path} is another application's database. Pass another --db (a new file is "
                            "created).")
        db.execute("PRAGMA journal_mode=WAL")  # kept by the file: every later connection writes ahead
        db.executescript(SCHEMA)
        with _write(db):  # two servers opening one new file at once: one records, the other checks
            row = db.execute("SELECT value FROM meta WHERE key = 'systems'").fetchone()
            if row is None:
                self._create(db, wanted)
            elif json.loads(row[0]) != wanted:
                raise UserError(f"{self.path} holds judgments of other systems ({', '.join(json.loads(row[0]))}; "
                                f"given: {', '.join(wanted)}, or the same names with other summaries). Pass the runs "
                                "it was made for, or another --db.")

    def _create(self, db: sqlite3.Connection, wanted: dict) -> None:
        shared = set.intersection(*(set(s) for s in self.systems.values()))
        ids = [d for d in self.dialogues if d in shared]
        db.execute("INSERT INTO meta VALUES ('systems', ?), ('created', ?), ('rouge', ?), ('details', ?)",
                   (json.dumps(wanted), str(time.time()), json.dumps(self._rouge), json.dumps(self._details)))
        db.executemany("INSERT OR IGNORE INTO tasks (dialogue_id, system_1, system_2) VALUES (?, ?, ?)",
                       [(d, a, b) for d in ids for a, b in combinations(sorted(self.systems), 2)])

    def next_task(self, name: str) -> Task | None:
        """The rater's unanswered task if they left one, else a new one (None when they have rated everything)."""
        name = _checked_name(name)
        with self._connect() as db, _write(db):
            rater = _rater(db, name)
            row = db.execute("SELECT a.id FROM assignments a LEFT JOIN judgments j ON j.assignment_id = a.id "
                             "WHERE a.rater_id = ? AND j.id IS NULL", (rater,)).fetchone()
            assignment = row[0] if row else self._assign(db, rater)
            return self._task(db, rater, assignment) if assignment else None

    def _assign(self, db: sqlite3.Connection, rater: int) -> int | None:
        """Balanced: tasks judged by fewer than REPLICATION raters first, then the least judged pair of systems,
        then tasks others have judged (so judgments overlap), then chance; never a task this rater had."""
        candidates = db.execute(
            "SELECT t.id, t.system_1, t.system_2, (SELECT COUNT(*) FROM assignments WHERE task_id = t.id) "
            "FROM tasks t WHERE t.id NOT IN (SELECT task_id FROM assignments WHERE rater_id = ?)", (rater,)).fetchall()
        if not candidates:
            return None
        per_pair = dict(db.execute("SELECT t.system_1 || '|' || t.system_2, COUNT(*) FROM assignments a "
                                   "JOIN tasks t ON t.id = a.task_id GROUP BY t.system_1, t.system_2").fetchall())
        task, first, second, _ = min(candidates, key=lambda c: (c[3] >= REPLICATION, per_pair.get(f"{c[1]}|{c[2]}", 0),
                                                                 -c[3], self._random.random()))
        shown = [first, second]
        self._random.shuffle(shown)  # which system is A: chance, per assignment
        number = _unused_number(db)
        db.execute("INSERT INTO assignments (id, rater_id, task_id, shown_a, shown_b, assigned) VALUES "
                   "(?, ?, ?, ?, ?, ?)", (number, rater, task, *shown, time.time()))
        return number

    def _task(self, db: sqlite3.Connection, rater: int, assignment: int) -> Task:
        dialogue, a, b = db.execute("SELECT t.dialogue_id, a.shown_a, a.shown_b FROM assignments a JOIN tasks t "
                                    "ON t.id = a.task_id WHERE a.id = ?", (assignment,)).fetchone()
        done = db.execute("SELECT COUNT(*) FROM judgments WHERE rater_id = ?", (rater,)).fetchone()[0]
        total = db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        return Task(assignment, self.dialogues[dialogue], self.systems[a][dialogue], self.systems[b][dialogue],
                    done, total)

    def record(self, name: str, assignment: int, answer: str, ratings: dict[str, int | None] | None = None,
               comment: str = "") -> bool:
        """Store a judgment of the rater's own assignment; False when it was stored already (a resubmission)."""
        if answer not in ANSWERS:
            raise UserError(f"answer {answer!r}: choose {', '.join(ANSWERS)}.")
        if len(comment or "") > MAX_COMMENT:
            raise UserError(f"a comment has at most {MAX_COMMENT} characters (this one has {len(comment):,}).")
        _storable(comment or "", "a comment")
        if isinstance(assignment, bool) or not isinstance(assignment, int) or not 0 < assignment < 2 ** 63:
            raise UserError("give the task number next_task (or /api/next) gave: a whole number.")
        scores, name = _ratings(ratings or {}), _checked_name(name)
        with self._connect() as db, _write(db):
            rater = _rater(db, name)
            row = db.execute("SELECT task_id, shown_a, shown_b, assigned FROM assignments WHERE id = ? AND "
                             "rater_id = ?", (assignment, rater)).fetchone()
            if row is None:
                raise UserError(f"task {assignment} is not one assigned to this rater.")
            columns = ", ".join(scores)
            done = db.execute(
                f"INSERT OR IGNORE INTO judgments (assignment_id, rater_id, task_id, shown_a, shown_b, answer, "
                f"{columns + ', ' if columns else ''}comment, assigned, answered) VALUES "
                f"({', '.join('?' * (9 + len(scores)))})",
                (assignment, rater, row[0], row[1], row[2], answer, *scores.values(), (comment or "").strip(),
                 row[3], time.time()))
            return done.rowcount == 1

    def judgments(self) -> list[dict]:
        """Every judgment with its rater's name, dialogue and systems (the systems in canonical order too)."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute(
                "SELECT j.*, r.name AS rater, t.dialogue_id, t.system_1, t.system_2 FROM judgments j "
                "JOIN raters r ON r.id = j.rater_id JOIN tasks t ON t.id = j.task_id ORDER BY j.id")]


def _checked_name(name) -> str:
    """A rater's name, whitespace folded; names are limited, never interpreted."""
    name = " ".join(str(name or "").split())
    if not name:
        raise UserError("give your name first: it keeps your place, so you can stop and come back.")
    if len(name) > MAX_NAME:
        raise UserError(f"a name has at most {MAX_NAME} characters (this one has {len(name):,}).")
    return _storable(name, "a name")


def _storable(text: str, what: str) -> str:
    """`text`, if it is Unicode SQLite can store: a lone surrogate (JSON's "\\ud800") is refused."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise UserError(f"{what} holds a lone surrogate ({text[err.start]!r} at {err.start}): send it as proper "
                        "Unicode.") from None
    return text


def _unused_number(db: sqlite3.Connection) -> int:
    """A random task number no assignment has, inside the caller's transaction."""
    while True:
        number = secrets.randbelow(MAX_TASK_NUMBER - 1) + 1
        if db.execute("SELECT 1 FROM assignments WHERE id = ?", (number,)).fetchone() is None:
            return number


def _unusable(path: Path, err: sqlite3.DatabaseError) -> StoreUnavailable:
    """SQLite's error as one line that says what to do: locked, not a review database, or gone or read-only."""
    said = str(err)
    if "locked" in said:
        return StoreUnavailable(f"{path} is locked by another program (waited {BUSY_SECONDS:g} s): close what holds "
                                "it (a database browser, a script in a transaction), then try again.")
    if "not a database" in said or "malformed" in said:
        return StoreUnavailable(f"{path} is not a review database ({said}). Pass another --db (a new file is "
                                "created).")
    return StoreUnavailable(f"cannot use {path} ({said}): was it deleted or made read-only, or is its disk full? "
                            "Restore it, or pass another --db.")


def _rater(db: sqlite3.Connection, name: str) -> int:
    """The rater called `name`, made on first use, inside the caller's transaction."""
    db.execute("INSERT OR IGNORE INTO raters (name, created) VALUES (?, ?)", (name, time.time()))
    return db.execute("SELECT id FROM raters WHERE name = ?", (name,)).fetchone()[0]


def _ratings(given: dict[str, int | None]) -> dict[str, int]:
    """Optional 1-5 ratings, by column: {a_coherence: 4, ...}; unknown dimensions or values are refused."""
    columns = {f"{s}_{d}" for s in "ab" for d in DIMENSIONS}
    if not isinstance(given, dict):
        raise UserError(f"ratings must map a dimension to a score, e.g. {{\"a_fluency\": 4}} (got {given!r:.60}).")
    scores = {k: v for k, v in given.items() if v not in (None, "")}
    unknown = set(scores) - columns
    if unknown:
        raise UserError(f"unknown rating {', '.join(sorted(unknown))}: rate {', '.join(DIMENSIONS)} of A and B.")
    for key, value in scores.items():
        if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5):
            raise UserError(f"{key} must be a whole number from 1 to 5 (got {value!r}).")
    return scores


class _write:
    """One write transaction, taken at once (BEGIN IMMEDIATE): concurrent writers queue instead of failing."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, traceback) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
