"""Smoke test of ``manage.py bench``: every section runs at tiny sizes and reports numbers.

Runs the command in a subprocess: the bench makes (and drops) its own throwaway
database and starts gunicorn, which must not meet the test run's database.
No timing is asserted here; the figures are in the README.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from intake import benchmarks, pdf

ROOT = Path(__file__).resolve().parent.parent
REQUIRED_KEYS = (
    "evaluate_ms",
    "wizard_step_p95_ms",
    "queue_100_ms",
    "queue_100k_ms",
    "queue_100k_queries",
    "pdf_median_ms",
    "pdf_to_floor_ratio",
    "http_step_rps",
    "http_hello_rps",
)


def test_every_section_is_registered_with_quick_sizes():
    assert set(benchmarks.SECTIONS) >= {"evaluate", "wizard", "queue", "pdf", "http"}
    assert set(benchmarks.QUICK) == set(benchmarks.SECTIONS)


def test_a_full_run_opens_the_queue_last():
    order = benchmarks.default_order()
    assert sorted(order) == sorted(benchmarks.SECTIONS)
    assert order[-1] == "queue"
    assert order.index("http") < order.index("queue")


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert benchmarks.percentile(values, 0.95) == 95
    assert benchmarks.percentile(values, 0.5) == 50
    assert benchmarks.percentile([7], 0.95) == 7


def test_bench_quick_prints_one_json_object_with_every_figure():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    completed = subprocess.run(
        [sys.executable, "manage.py", "bench", "--json", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout)
    for key in REQUIRED_KEYS:
        assert key in results, key
        assert isinstance(results[key], int | float) and not isinstance(results[key], bool), key
    assert results["database"].startswith(("SQLite ", "PostgreSQL "))
    assert "synchronous" in results["database"]
    assert results["evaluate_flags"] > 0
    assert set(results["wizard_steps"]) >= {"patient", "review"}
    assert results["pdf_font_subsetter"] == (
        "HarfBuzz" if pdf.harfbuzz_subset_available() else "fontTools"
    )
