"""``python -m bench --quick`` runs end to end, so the benchmark never rots.

Only that it runs and reports: targets live in the benchmark, never in timed tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {"job", "page", "worker", "scaling", "subscriptions", "growth"}


@pytest.mark.slow(seconds=120)
def test_the_quick_benchmark_reports_every_scenario_with_a_ratio(tmp_path: Path) -> None:
    # given
    output = tmp_path / "bench.json"

    # when
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240,
                          check=False)

    # then
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert set(report["scenarios"]) == SCENARIOS
    for name, scenario in report["scenarios"].items():
        assert isinstance(scenario["ratio"], float | int), name
        assert scenario["ratio_of"] and scenario["target"], name
    assert report["scenarios"]["page"]["round_trips_constant"]
    assert report["server"]["peak_rss_kb"] > 0
    for label in ("job by id", "page of 100 jobs", "worker lifecycle", "subscription fan-out",
                  "growth"):
        assert label in done.stdout


@pytest.mark.slow
def test_the_big_logs_measurement_runs_and_reports_the_api_memory() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.big_logs", "--subscriptions", "2",
                           "--seconds", "3", "--every", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"big_logs: API start \d+ MB, peak \d+ MB, .* [1-9]\d* appends",
                     done.stdout), done.stdout


@pytest.mark.slow
def test_the_embedded_scale_measurement_runs_and_reports_each_size() -> None:
    done = subprocess.run([sys.executable, "-m", "bench.embedded_scale", "--sizes", "0", "20",
                           "--times", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(r"^\s+(\d+)\s+(\d+\.\d)\s+(\d+\.\d)\s+(\d+\.\d)$", done.stdout, re.M)
    assert [row[0] for row in rows] == ["0", "20"], done.stdout
    assert all(float(value) > 0 for row in rows for value in row[1:]), done.stdout
