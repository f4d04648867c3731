"""The review app in a real browser: Debian's headless Chromium, driven by Selenium (`make test` installs both).

Two raters rate ten pairs each; the server is killed with SIGKILL in the middle and started again; every
judgment must be in the database, the raters must continue where they were, and no page may show a system's
name (not in its HTML, not in its URL). Screenshots of the three tabs are saved (DIALOGSUM_LAB_SCREENSHOTS,
else the test's own folder).
"""

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dialogsum_lab.review import REFERENCE

pytestmark = pytest.mark.slow

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`dialogsum-lab review` in its own process, as a user starts it."""

    def __init__(self, runs: list[Path], db: Path, port: int) -> None:
        self.command = [sys.executable, "-m", "dialogsum_lab.cli", "review", *map(str, runs), "--db", str(db),
                        "--port", str(port), "--dialogues", "12"]
        self.url, self.process = f"http://127.0.0.1:{port}/", None

    def start(self) -> "Server":
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(240):
            try:
                urllib.request.urlopen(self.url, timeout=1)
                return self
            except OSError:
                assert self.process.poll() is None, self.process.stdout.read().decode()
                time.sleep(0.25)
        raise AssertionError("the review app did not start within a minute")

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert shutil.which(CHROMIUM) and shutil.which(DRIVER), "install Debian's chromium and chromium-driver " \
        "(make test does: apt-get install chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1500"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def value(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f"#{element_id} textarea, #{element_id} input").get_attribute("value")


def wait(driver, condition, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def start_rating(driver, url: str, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    field = wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "#rater-name textarea, #rater-name input"))
    field.clear()
    field.send_keys(name)
    driver.find_element(By.ID, "start").click()
    wait(driver, lambda d: value(d, "summary-a"))


def rate(driver, answer: str, db: Path, expected: int) -> None:
    """Answer the pair on screen; the judgment is in the database by the time the next pair shows."""
    from selenium.webdriver.common.by import By

    before = value(driver, "progress")
    driver.find_element(By.ID, f"answer-{answer}").click()
    wait(driver, lambda d: value(d, "progress") != before)
    assert count(db) == expected


def count(db: Path) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT COUNT(*) FROM judgments").fetchone()[0]


def assert_blind(driver, names: list[str]) -> None:
    page = driver.page_source + driver.current_url
    assert not [n for n in names if n in page], "the page shows a system's name"


def test_two_raters_rate_ten_pairs_each_across_a_kill_9(rated_runs, tmp_path, browser):
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("DIALOGSUM_LAB_SCREENSHOTS") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    names = [r.name for r in rated_runs] + [REFERENCE]
    db, server = tmp_path / "review.sqlite", Server(rated_runs, tmp_path / "review.sqlite", free_port()).start()
    browser.get(server.url)
    wait(browser, lambda d: d.find_element(By.ID, "start")).click()  # no name yet: one line says what to do
    wait(browser, lambda d: "give your name first" in d.page_source)
    assert_blind(browser, names)

    start_rating(browser, server.url, "Ann <b>bold</b>")
    assert value(browser, "progress").startswith("Rating as Ann <b>bold</b>")  # shown as text, never as HTML
    browser.find_element(By.CSS_SELECTOR, "#ratings button.label-wrap").click()  # open the optional ratings
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#rate-a-coherence").is_displayed())
    browser.find_element(By.XPATH, "//*[@id='rate-a-coherence']//label[normalize-space()='4']").click()
    browser.find_element(By.CSS_SELECTOR, "#comment textarea, #comment input").send_keys("A names the wrong day")
    for i, answer in enumerate(("A", "B", "tie", "A", "B"), start=1):
        assert_blind(browser, names)
        rate(browser, answer, db, i)
    browser.save_screenshot(str(shots / "rate.png"))
    left_on = value(browser, "summary-a"), value(browser, "dialogue")
    server.kill()  # SIGKILL: no chance to flush or say goodbye
    server.start()
    start_rating(browser, server.url, "Ann <b>bold</b>")
    assert (value(browser, "summary-a"), value(browser, "dialogue")) == left_on  # where she left off
    for i, answer in enumerate(("A", "A", "B", "tie", "B"), start=6):
        rate(browser, answer, db, i)
        assert_blind(browser, names)

    start_rating(browser, server.url, "Bob")
    for i in range(11, 21):
        rate(browser, "AB"[i % 2], db, i)
        assert_blind(browser, names)

    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT r.name, COUNT(*), COUNT(DISTINCT j.assignment_id), "
                                  "COUNT(DISTINCT j.task_id) FROM judgments j JOIN raters r ON r.id = j.rater_id "
                                  "GROUP BY r.name ORDER BY r.name").fetchall()
        overlap = connection.execute("SELECT COUNT(*) FROM (SELECT task_id FROM judgments GROUP BY task_id "
                                     "HAVING COUNT(*) > 1)").fetchone()[0]
        rated = connection.execute("SELECT a_coherence, comment FROM judgments ORDER BY id LIMIT 2").fetchall()
    assert rows == [("Ann <b>bold</b>", 10, 10, 10), ("Bob", 10, 10, 10)] and overlap > 0
    assert rated == [(4, "A names the wrong day"), (None, "")]  # the ratings and comment went with the first answer

    browser.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Try']").click()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#try-dialogue textarea")).send_keys(
        "#Person1#: Can we meet at noon?\n#Person2#: Yes, at the cafe by the station.")
    browser.find_element(By.ID, "try-go").click()
    wait(browser, lambda d: rated_runs[0].name in d.find_element(By.ID, "try-out").text, 120)
    browser.save_screenshot(str(shots / "try.png"))
    browser.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Results']").click()
    wait(browser, lambda d: d.find_element(By.ID, "results-show")).click()
    wait(browser, lambda d: "20 judgments by 2 rater(s)" in d.find_element(By.ID, "results-headline").text, 120)
    browser.save_screenshot(str(shots / "results.png"))
    server.kill()
    assert all((shots / f"{tab}.png").stat().st_size > 10_000 for tab in ("rate", "try", "results"))
