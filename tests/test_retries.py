"""Retries of failed scenarios: ``cua run --retries N`` and the pytest plugin's ``--cua-retries N``.

A page on loopback that shows "ready" only from its Nth load makes a scenario fail and then pass:
that pass is *flaky* in the JSON result, the terminal, the report and JUnit (``flakyFailure``),
never a plain pass; a scenario that never passes fails after its retries, each one on record.
"""

from __future__ import annotations

import http.server
import json
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cli_helpers import clean_env, finish, start_cua  # noqa: E402

pytest_plugins = ["pytester"]


class FlakyPage:
    """Serves /page.html, which says "ready" from load number ``ready_from`` on."""

    def __init__(self, ready_from: int) -> None:
        self.loads = 0
        page = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                if self.path != "/page.html":
                    self.send_error(404)
                    return
                page.loads += 1
                word = "ready" if page.loads >= ready_from else "not yet"
                body = f"<!doctype html><title>flaky</title><h1>{word}</h1>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/page.html"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[FlakyPage]:
    server = FlakyPage(getattr(request, "param", 2))
    yield server
    server.close()


def write_scenario(folder: Path, url: str) -> Path:
    path = folder / "flaky.cua.yaml"
    path.write_text(
        "name: flaky\n"
        "task: Look at the page.\n"
        f"start_url: {url}\n"
        "checks:\n"
        "  - text_visible: ready\n"
        "script:\n"
        "  - message: I looked at the page.\n", encoding="utf-8")
    return path


def junit_of(folder: Path) -> ET.Element:
    runs = sorted(str(p) for p in (folder / "runs").iterdir())
    done = finish(start_cua(["report", *runs, "--junit", "junit.xml"], clean_env(), folder), 60)
    assert done.code == 0, done.stderr
    return ET.parse(folder / "junit.xml").getroot()


def test_a_pass_after_a_failure_is_flaky_everywhere(page: FlakyPage, tmp_path: Path) -> None:
    write_scenario(tmp_path, page.url)
    done = finish(start_cua(["run", "flaky.cua.yaml", "--model", "scripted", "--retries", "2", "--json"],
                            clean_env(), tmp_path), 120)
    assert done.code == 0, done.stderr
    result = done.json()
    assert (result["status"], result["attempts"], result["flaky"]) == ("completed", 2, True)
    assert page.loads == 2, "one retry, no more"
    first = result["earlier_attempts"][0]
    assert (first["status"], first["why"]) == ("failed", "check failed: text visible 'ready'")
    assert "attempt 1 of 3: failed (check failed: text visible 'ready'); trying again" in done.stderr

    meta = json.loads((tmp_path / first["run_dir"] / "run.json").read_text())
    assert meta["superseded_by"] == result["run_dir"] and meta["attempt"] == 1
    report = (tmp_path / result["run_dir"] / "report.html").read_text(encoding="utf-8")
    assert "Flaky: passed on attempt 2" in report and "its report" in report

    suite = junit_of(tmp_path).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("1", "0")
    flaky = suite.findall("testcase/flakyFailure")
    assert len(flaky) == 1 and flaky[0].get("message") == "check failed: text visible 'ready'"


@pytest.mark.parametrize("page", [9], indirect=True)
def test_a_scenario_that_never_passes_fails_after_its_retries(page: FlakyPage, tmp_path: Path) -> None:
    write_scenario(tmp_path, page.url)
    done = finish(start_cua(["run", "flaky.cua.yaml", "--model", "scripted", "--retries", "1"],
                            clean_env(), tmp_path), 120)
    assert done.code == 1, done.stderr
    assert "failed: 0 steps" not in done.stdout and "; failed all 2 attempts" in done.stdout
    assert "  attempt 1: failed (check failed: text visible 'ready')" in done.stdout
    assert page.loads == 2
    suite = junit_of(tmp_path).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("1", "1")
    assert len(suite.findall("testcase/rerunFailure")) == 1 and not suite.findall("testcase/flakyFailure")


def test_retries_are_a_number_from_0_to_10(tmp_path: Path) -> None:
    done = finish(start_cua(["run", "x.cua.yaml", "--retries", "11"], clean_env(), tmp_path), 30)
    assert done.code == 2 and "takes 0 to 10 retries" in done.stderr


def test_the_plugin_reports_a_flaky_scenario_as_flaky_not_passed(page: FlakyPage, pytester: pytest.Pytester) -> None:
    write_scenario(pytester.path, page.url)
    # In a subprocess: a second in-process pytester run in one process would import numpy again.
    result = pytester.runpytest_subprocess("--cua-mode=scripted", "--cua-out=runs", "--cua-retries=1",
                                           "-p", "no:cacheprovider")
    assert result.ret == 0
    assert result.parseoutcomes() == {"flaky": 1}, result.stdout.str()
    result.stdout.fnmatch_lines(["*cua: flaky scenarios*", "*flaky.cua.yaml*attempt 1 failed: check failed*"])
    assert page.loads == 2


def test_the_plugin_works_with_pytest_rerunfailures(page: FlakyPage, pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_rerunfailures")
    write_scenario(pytester.path, page.url)
    result = pytester.runpytest_subprocess("--cua-mode=scripted", "--cua-out=runs", "--reruns=1",
                                           "-p", "no:cacheprovider")
    assert result.ret == 0
    assert result.parseoutcomes() == {"passed": 1, "rerun": 1}, result.stdout.str()
    assert page.loads == 2 and len(list((pytester.path / "runs").iterdir())) == 2, "each try has its run folder"
