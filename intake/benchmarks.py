"""Benchmarks run by ``python manage.py bench``.

A section is one function registered with ``@section("name")`` that returns a
dict of figures; adding a section is adding one such function.
"""

import contextlib
import datetime as dt
import http.client
import math
import os
import random
import re
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from decimal import Decimal

import weasyprint
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.contrib.staticfiles.storage import staticfiles_storage
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from intake import instrument, pdf, rules, services
from intake.formdata import step_post_data
from intake.models import Draft, Flag, Role, Screening

SECTIONS = {}
QUICK = {}

TYPICAL_ANSWERS = {
    "first_name": "Jordan",
    "last_name": "Example",
    "date_of_birth": dt.date(1961, 4, 9),
    "mrn": "MRN-2040",
    "sex_at_birth": "male",
    "indication": ["aud", "depression"],
    "vit_sbp": 150,
    "vit_dbp": 92,
    "vit_bp_repeat_sbp": 146,
    "vit_bp_repeat_dbp": 90,
    "vit_hr": 104,
    "vit_spo2": 97,
    "vit_weight_kg": Decimal("92.0"),
    "vit_height_cm": Decimal("180.0"),
    "vit_neck_cm": Decimal("41.0"),
    **{
        code: "no"
        for code in (
            "cv_htn_enceph",
            "cv_aneurysm",
            "cv_avm",
            "cv_mi",
            "cv_chest_pain",
            "cv_hf",
            "cv_valve",
            "cv_arrhythmia",
            "neuro_ich",
            "neuro_stroke_tia",
            "neuro_icp",
            "neuro_tbi",
            "neuro_seizure",
            "neuro_cog",
            "alg_ketamine",
            "ket_prior_med",
            "anes_complications",
            "psy_psychosis_ever",
            "psy_fam_psychosis",
            "psy_mania_recent",
            "cssrs_1",
            "cssrs_2",
            "cssrs_6",
            "alc_last_drink_unknown",
            "alc_daily",
            "aw_hx_seizure",
            "aw_hx_dt",
            "sub_tx_active",
            "uro_ket_cystitis",
            "med_porphyria",
        )
    },
    "cv_htn": "yes",
    "cv_htn_controlled": "yes",
    "alg_other": "None known",
    "med_none": False,
    "medications": [
        {"name": "Lisinopril", "dose": "10 mg", "frequency": "once daily"},
        {"name": "Sertraline", "dose": "100 mg", "frequency": "once daily"},
        {"name": "Naltrexone", "dose": "50 mg", "frequency": "once daily"},
    ],
    "med_reviewed_with_patient": "yes",
    "psy_dx": ["mdd"],
    "psy_ad_trials": 3,
    "psy_neuromod": ["none"],
    **{f"phq9_{i}": score for i, score in enumerate([2, 3, 2, 2, 1, 2, 2, 1, 1], start=1)},
    **{f"gad7_{i}": 1 for i in range(1, 8)},
    "audc_1": 3,
    "audc_2": 2,
    "audc_3": 2,
    "alc_last_drink": dt.datetime(2026, 1, 1, 20, 0, tzinfo=dt.UTC),
    "alc_morning": "no",
    "aw_sx_now": ["none"],
    "aw_prior_episodes": 1,
    **{
        code: "never"
        for code in (
            "sub_ketamine_nonmed",
            "sub_pcp_dissoc",
            "sub_stimulant",
            "sub_opioid_nonrx",
            "sub_benzo_nonrx",
            "sub_hallucinogen",
        )
    },
    "sub_cannabis": "past_12m",
    "liver_dx": ["fatty_liver"],
    "lab_lft": "elevated_lt3x",
    "renal_dx": "none",
    "resp_osa": "no",
    "sb_snore": "yes",
    "sb_tired": "yes",
    "sb_observed": "no",
    "resp_lung": ["none"],
    "uro_symptoms": ["nocturia"],
    "eye_status": ["none"],
    "endo_thyroid": ["none"],
    "log_escort": "yes",
    "log_capacity": "yes",
    "insurance": "self_pay",
    "consent_to_screening": "yes",
    "staff_attestation": True,
}
FLOOR_HTML = "<p>One line.</p>"
# The queue section bulk-inserts 100,000 screenings, and the database server
# goes on writing them out for a while after; a full run does it last so that
# no other section is timed during that write-out.
RUN_LAST = ("queue",)


def section(name, *, quick=None):
    """Register the decorated function as benchmark section ``name``.

    ``quick`` holds the keyword arguments of a tiny run (``bench --quick``, smoke tests).
    """

    def register(function):
        SECTIONS[name] = function
        QUICK[name] = dict(quick or {})
        return function

    return register


def default_order():
    """Return the sections of a full run in the order they run."""
    return sorted(SECTIONS, key=lambda name: name in RUN_LAST)


def run(names=None, *, quick=False):
    """Run the named sections (default: all) in a throwaway database; return their figures."""
    try:
        staticfiles_storage.url("intake/app.css")
    except ValueError:
        raise RuntimeError(
            "Static files are not collected: run `python manage.py collectstatic --noinput` first."
        ) from None
    results = {}
    with throwaway_database():
        results["database"] = describe_database()
        for name in names or default_order():
            results.update(SECTIONS[name](**(QUICK[name] if quick else {})))
    return results


def describe_database():
    """Return the database the figures were measured on, with how its commits reach the disk."""
    connection = connections[DEFAULT_DB_ALIAS]
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA journal_mode")
            journal = cursor.fetchone()[0]
            cursor.execute("PRAGMA synchronous")
            level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[cursor.fetchone()[0]]
            return f"SQLite {sqlite3.sqlite_version}, journal_mode={journal}, synchronous={level}"
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        return f"PostgreSQL {version}, synchronous_commit={cursor.fetchone()[0]}"


@contextlib.contextmanager
def throwaway_database():
    """Switch the default connection to a new, migrated database for the run, then drop it.

    A temporary SQLite file, or a PostgreSQL database named for this process: a
    benchmark never reads or writes the configured (development) database.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    directory = None
    if connection.vendor == "sqlite":
        directory = tempfile.mkdtemp(prefix="intake-bench-")
        name = os.path.join(directory, "bench.sqlite3")
    else:
        name = f"intake_bench_{os.getpid()}"
    connection.settings_dict["TEST"] = {**connection.settings_dict.get("TEST", {}), "NAME": name}
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield connection.settings_dict
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        if directory:
            shutil.rmtree(directory, ignore_errors=True)


def _ms(function):
    """Return ``(wall, cpu)`` milliseconds of one call of ``function``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


@section("pdf", quick={"repeat": 1})
def bench_pdf(*, repeat=7):
    """Return the median render time of a typical summary and of a one-line page.

    The two are measured alternately in the same run, so machine load affects
    both alike. The screening is submitted through the real service inside a
    transaction that is rolled back.
    """
    with transaction.atomic():
        user = get_user_model().objects.create_user(username="bench-pdf-user")
        answers = instrument.encode_answers(
            {**TYPICAL_ANSWERS, "alc_last_drink": dt.datetime.now(dt.UTC) - dt.timedelta(days=3)}
        )
        draft = Draft.objects.create(created_by=user, answers=answers, last_step="review")
        screening = services.submit_screening(draft_id=draft.pk, user=user)
        font_config = pdf.font_config()

        def floor():
            weasyprint.HTML(string=FLOOR_HTML).write_pdf(font_config=font_config)

        def summary():
            pdf.render_summary(screening)

        floor()
        summary()  # warm caches (fonts, templates, stylesheet) before measuring
        floors, summaries = [], []
        for _ in range(repeat):
            floors.append(_ms(floor))
            summaries.append(_ms(summary))
        transaction.set_rollback(True)
    floor_ms = statistics.median(wall for wall, _cpu in floors)
    summary_ms = statistics.median(wall for wall, _cpu in summaries)
    # CPU time too: on a loaded machine wall time mostly measures the load.
    floor_cpu = statistics.median(cpu for _wall, cpu in floors)
    summary_cpu = statistics.median(cpu for _wall, cpu in summaries)
    return {
        "pdf_median_ms": round(summary_ms, 1),
        "pdf_floor_ms": round(floor_ms, 1),
        "pdf_to_floor_ratio": round(summary_ms / floor_ms, 2),
        "pdf_median_cpu_ms": round(summary_cpu, 1),
        "pdf_floor_cpu_ms": round(floor_cpu, 1),
        "pdf_cpu_ratio": round(summary_cpu / floor_cpu, 2),
        # Which library subsets the fonts changes both times, the floor's tenfold.
        "pdf_font_subsetter": "HarfBuzz" if pdf.harfbuzz_subset_available() else "fontTools",
    }


# ---------------------------------------------------------------------------
# Shared helpers of the rules, wizard, queue and HTTP sections


def typical_answers(now):
    """Return the typical screening's answers with its last drink three days before ``now``."""
    return {**TYPICAL_ANSWERS, "alc_last_drink": now - dt.timedelta(days=3)}


def percentile(values, fraction):
    """Return the ``fraction`` percentile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def make_bench_user(username, role, *, password_hash=None):
    """Create a user with ``role`` (unusable password unless a hash is given)."""
    user = get_user_model().objects.create_user(
        username=username, is_staff=role in (Role.CLINICIAN, Role.CLINIC_ADMIN)
    )
    if password_hash:
        user.password = password_hash
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=role))
    return user


@contextlib.contextmanager
def in_process_client(user):
    """Yield a test client signed in as ``user`` that talks HTTPS to the app in-process."""
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        client = Client()
        client.force_login(user)
        yield client


# ---------------------------------------------------------------------------
# Rules


@section("evaluate", quick={"iterations": 40})
def bench_evaluate(*, iterations=4000, batch=20):
    """Return the median time of ``rules.evaluate`` on a typical full screening."""
    now = timezone.localtime()
    answers = typical_answers(now)
    _version, values = services.current_thresholds()
    flags = rules.evaluate(answers, now=now, thresholds=values)
    derive_times, times, cpu_times = [], [], []
    for _ in range(max(1, iterations // batch)):
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(batch):
            rules.evaluate(answers, now=now, thresholds=values)
        times.append((time.perf_counter() - start) * 1000 / batch)
        cpu_times.append((time.process_time() - cpu) * 1000 / batch)
        start = time.perf_counter()
        rules.derive(answers, now=now, thresholds=values)
        derive_times.append((time.perf_counter() - start) * 1000)
    return {
        "evaluate_ms": round(statistics.median(times), 3),
        "evaluate_p95_ms": round(percentile(times, 0.95), 3),
        # CPU time too: on a shared machine wall time also measures the other jobs.
        "evaluate_cpu_ms": round(statistics.median(cpu_times), 3),
        "evaluate_flags": len(flags),
        "derive_ms": round(statistics.median(derive_times), 3),
    }


# ---------------------------------------------------------------------------
# The wizard, in-process


@section("wizard", quick={"runs": 1})
def bench_wizard(*, runs=8):
    """Return the time of a full wizard completion and each step's server time.

    A step's time is what staff wait for after "Next": the POST of the step and
    the GET of the page it redirects to, through Django's test client (no network).
    """
    user = make_bench_user("bench-wizard", Role.INTAKE_STAFF)
    now = timezone.localtime()
    answers = typical_answers(now)
    _version, values = services.current_thresholds()
    slugs = [s.slug for s in instrument.STEPS if instrument.step_applies(s, answers, values)]
    per_step = {slug: [] for slug in slugs}
    cpu_by_step = {slug: [] for slug in slugs}
    cpu_per_step = []
    totals = []
    with in_process_client(user) as client:
        for _ in range(runs):
            started = time.perf_counter()
            response = client.post(reverse("intake:new_screening"), secure=True)
            client.get(response["Location"], secure=True)
            for slug in slugs:
                step_started, step_cpu = time.perf_counter(), time.process_time()
                url = reverse(
                    "intake:wizard_step",
                    kwargs={
                        "draft_id": Draft.objects.filter(created_by=user).latest("pk").pk,
                        "step": slug,
                    },
                )
                response = client.post(url, step_post_data(slug, answers), secure=True)
                if response.status_code != 302:
                    raise RuntimeError(f"wizard step {slug} did not accept the typical answers")
                client.get(response["Location"], secure=True)
                per_step[slug].append((time.perf_counter() - step_started) * 1000)
                cpu_per_step.append((time.process_time() - step_cpu) * 1000)
                cpu_by_step[slug].append(cpu_per_step[-1])
            totals.append((time.perf_counter() - started) * 1000)
    everything = [value for values_ in per_step.values() for value in values_]
    # In-process figures: one client, no network, no concurrency. The goal's
    # figure (``wizard_step_p95_ms``, 20 users working at once) is the http section's.
    return {
        "wizard_total_ms": round(statistics.median(totals), 1),
        "wizard_inprocess_step_median_ms": round(statistics.median(everything), 1),
        "wizard_inprocess_step_p95_ms": round(percentile(everything, 0.95), 1),
        "wizard_inprocess_step_median_cpu_ms": round(statistics.median(cpu_per_step), 1),
        "wizard_inprocess_step_p95_cpu_ms": round(percentile(cpu_per_step, 0.95), 1),
        "wizard_steps": {
            slug: {
                "median_ms": round(statistics.median(times), 1),
                "p95_ms": round(percentile(times, 0.95), 1),
                "median_cpu_ms": round(statistics.median(cpu_by_step[slug]), 1),
            }
            for slug, times in per_step.items()
        },
    }


# ---------------------------------------------------------------------------
# The review queue (admin changelist) at two sizes


# The newest screenings are the backlog still to review; older ones are signed,
# but for a few stragglers. So both queues fill their first page with open rows.
QUEUE_BACKLOG = 60
QUEUE_STRAGGLERS = 0.01


def _queue_rows(template, flags, start, count, submitter, rng):
    """Return ``count`` unsaved screenings like ``template`` and two flags for each."""
    screenings = []
    base = template.submitted_at
    for index in range(start, start + count):
        urgent = 1 if rng.random() < 0.03 else 0
        screenings.append(
            Screening(
                submitted_by=submitter,
                submitted_at=base - dt.timedelta(minutes=7 * index + rng.randrange(7)),
                instrument_version=template.instrument_version,
                lexicon_version=template.lexicon_version,
                thresholds_version=template.thresholds_version,
                thresholds=template.thresholds,
                answers=template.answers,
                derived=template.derived,
                snapshot_sha256=template.snapshot_sha256,
                patient_first_name=f"Patient{index}",
                patient_last_name=f"Example{index % 9973}",
                patient_mrn=f"MRN-{index:07d}",
                patient_date_of_birth=template.patient_date_of_birth,
                urgent_count=urgent,
                review_count=urgent + rng.randrange(3),
                caution_count=rng.randrange(4),
                info_count=rng.randrange(2),
                status=Screening.Status.SUBMITTED
                if index < QUEUE_BACKLOG or rng.random() < QUEUE_STRAGGLERS
                else Screening.Status.REVIEWED,
            )
        )
    return screenings


def _add_queue_rows(template, flags, start, count, submitter, rng, batch=2000):
    for offset in range(0, count, batch):
        size = min(batch, count - offset)
        with transaction.atomic():
            created = Screening.objects.bulk_create(
                _queue_rows(template, flags, start + offset, size, submitter, rng)
            )
            Flag.objects.bulk_create(
                Flag(
                    screening=screening,
                    position=position,
                    rule_id=flag.rule_id,
                    severity=flag.severity,
                    urgent=flag.urgent,
                    message=flag.message,
                    basis=flag.basis,
                    evidence=flag.evidence,
                )
                for screening in created
                for position, flag in enumerate(flags)
            )


def _time_changelist(client, repeat, query=""):
    url = reverse("admin:intake_screening_changelist") + query
    client.get(url, secure=True)  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, secure=True)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"queue page answered {response.status_code}")
    with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as queries:
        client.get(url, secure=True)
    return statistics.median(times), len(queries)


@section("queue", quick={"sizes": (20, 300), "repeat": 2})
def bench_queue(*, sizes=(100, 100_000), repeat=25):
    """Return the queue page's median time and query count at two numbers of screenings.

    The goal's figures are the queue as clinicians open it (what is still to
    review); ``queue_all_*`` is the same page listing every screening (state=all).
    """
    small, large = sizes
    rng = random.Random(20260101)
    staff = make_bench_user("bench-queue-staff", Role.INTAKE_STAFF)
    clinician = make_bench_user("bench-queue-clinician", Role.CLINICIAN)
    now = timezone.now()
    draft = Draft.objects.create(
        created_by=staff,
        answers=instrument.encode_answers(typical_answers(now)),
        last_step="review",
    )
    template = services.submit_screening(draft_id=draft.pk, user=staff)
    flags = list(template.flags.all()[:2])
    results = {}
    with in_process_client(clinician) as client:
        _add_queue_rows(template, flags, 1, small - 1, staff, rng)
        results["queue_100_ms"], results["queue_100_queries"] = _time_changelist(client, repeat)
        results["queue_all_100_ms"], _queries = _time_changelist(client, repeat, "?state=all")
        started = time.perf_counter()
        _add_queue_rows(template, flags, small, large - small, staff, rng)
        results["queue_build_s"] = round(time.perf_counter() - started, 1)
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh planner statistics, as a live database has
        results["queue_100k_ms"], results["queue_100k_queries"] = _time_changelist(client, repeat)
        results["queue_all_100k_ms"], _queries = _time_changelist(client, repeat, "?state=all")
    results["queue_rows_small"] = small
    results["queue_rows_large"] = Screening.objects.count()
    results["queue_open_rows_large"] = Screening.objects.filter(is_open=True).count()
    for key in ("queue_100_ms", "queue_100k_ms", "queue_all_100_ms", "queue_all_100k_ms"):
        results[key] = round(results[key], 1)
    results["queue_ratio"] = round(results["queue_100k_ms"] / results["queue_100_ms"], 2)
    results["queue_all_ratio"] = round(
        results["queue_all_100k_ms"] / results["queue_all_100_ms"], 2
    )
    return results


# ---------------------------------------------------------------------------
# HTTP under gunicorn, with concurrent clients on the loopback interface

HTTP_PORTS = range(8105, 8110)
HTTP_STEP = "mood"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def _free_port(ports):
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def _database_url(settings_dict):
    """Return a DATABASE_URL naming the database the default connection uses now."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = urllib.parse.quote(settings_dict.get("USER") or "", safe="")
    password = urllib.parse.quote(settings_dict.get("PASSWORD") or "", safe="")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{settings_dict['NAME']}"


class _Browser:
    """A minimal HTTP client for one user: a cookie jar and one request per connection."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}

    def request(self, method, path, body=None, *, cookies=True, location=False):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{self.port}"}
        if cookies and self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
            for header in response.headers.get_all("Set-Cookie") or ():
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            if location:
                return response.status, content, response.getheader("Location") or ""
            return response.status, content
        finally:
            connection.close()

    def sign_in(self, username, password):
        status, page = self.request("GET", reverse("login"))
        token = CSRF_INPUT.search(page.decode()).group(1)
        status, _page = self.request(
            "POST",
            reverse("login"),
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": token,
            },
        )
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"bench user could not sign in (HTTP {status})")


def _hammer(browsers, path, per_user, *, cookies, think=0.0, seed=0):
    """Let every browser GET ``path`` ``per_user`` times at once; return (latencies, seconds)."""
    barrier = threading.Barrier(len(browsers) + 1)
    latencies, failures = [], []
    lock = threading.Lock()

    def user(browser, index):
        rng = random.Random(seed + index)
        mine = []
        barrier.wait()
        for _ in range(per_user):
            started = time.perf_counter()
            status, _content = browser.request(
                "GET", path.format(**browser.context), cookies=cookies
            )
            mine.append((time.perf_counter() - started) * 1000)
            if status != 200:
                failures.append(status)
            if think:
                time.sleep(rng.expovariate(1 / think))
        with lock:
            latencies.extend(mine)

    threads = [
        threading.Thread(target=user, args=(browser, index))
        for index, browser in enumerate(browsers)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed under load: {sorted(set(failures))}")
    return latencies, elapsed


def _staff_walk(browser, answers, *, until, think, rng, first_step):
    """Work through the wizard like a staff member until ``until``; return timed requests.

    Each round: the step's page is open (its GET was timed), the user reads and
    answers for ``think`` seconds (uniform), then presses "Next": the POST is
    timed, then the GET of the page it redirects to. After the last step
    before review the user starts the draft again (the review page and the
    submission are the wizard section's, the PDF the pdf section's). Returns
    ``[(kind, slug, ms)]`` with kind ``"get"``, ``"post"`` or ``"next"`` (POST plus
    the following GET: what the user waits for after "Next").
    """
    timed = []

    def get(slug):
        started = time.perf_counter()
        status, page = browser.request("GET", browser.step_path(slug))
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            raise RuntimeError(f"GET of step {slug} answered {status}")
        timed.append(("get", slug, elapsed))
        return elapsed, CSRF_INPUT.search(page.decode()).group(1)

    slug = first_step
    _elapsed, token = get(slug)
    while time.perf_counter() < until:
        time.sleep(rng.uniform(*think))
        started = time.perf_counter()
        status, _page, location = browser.request(
            "POST",
            browser.step_path(slug),
            {**step_post_data(slug, answers), "csrfmiddlewaretoken": token},
            location=True,
        )
        posted = (time.perf_counter() - started) * 1000
        if status != 302:
            raise RuntimeError(f"POST of step {slug} answered {status}")
        timed.append(("post", slug, posted))
        posted_slug = slug
        slug = location.rstrip("/").rsplit("/", 1)[-1]
        if slug == "review":
            slug = first_step
        elapsed, token = get(slug)
        timed.append(("next", posted_slug, posted + elapsed))
    return timed


def _paced(browsers, answers, *, duration, think, first_step, seed=2):
    """Let every browser walk the wizard at once for ``duration`` seconds (staggered starts)."""
    results, failures = [], []
    lock = threading.Lock()
    started = time.perf_counter()
    until = started + duration

    def user(browser, index):
        rng = random.Random(seed + index)
        time.sleep(rng.uniform(0, think[1]))  # people do not all press a key at once
        try:
            timed = _staff_walk(
                browser, answers, until=until, think=think, rng=rng, first_step=first_step
            )
        except Exception as error:  # noqa: BLE001 - reported below, with the others
            with lock:
                failures.append(repr(error))
            return
        with lock:
            results.extend(timed)

    threads = [
        threading.Thread(target=user, args=(browser, index))
        for index, browser in enumerate(browsers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} paced users failed: {failures[:3]}")
    return results, time.perf_counter() - started


@section("http", quick={"users": 2, "per_user": 3, "paced_s": 3.0, "think_s": (0.1, 0.3)})
def bench_http(*, users=20, per_user=40, paced_s=60.0, think_s=(1.0, 3.0), workers=2):
    """Return wizard step latency at 20 staff working at once, and saturation figures.

    Under gunicorn (``workers`` sync workers) on the loopback, ``users`` staff sign in:

    1. Paced (the goal's figure, ``wizard_step_p95_ms``): for ``paced_s`` seconds
       every user works through their own draft: GET a step, think 1-3 s, POST
       it, GET the next step, and so on. Every GET and POST is one step request.
    2. Closed loop (a stress figure, not the goal's): every user GETs the
       "Mood" step ``per_user`` times without pause, then /healthz the same way.
    """
    password = secrets.token_urlsafe(16)
    password_hash = make_password(password)
    now = timezone.localtime()
    answers = typical_answers(now)
    before_mood = {
        code: value
        for code, value in answers.items()
        if instrument.step_of(code).slug not in (HTTP_STEP, "review")
    }
    accounts = []
    for index in range(users):
        user = make_bench_user(
            f"bench-http-{index}", Role.INTAKE_STAFF, password_hash=password_hash
        )
        walk = Draft.objects.create(created_by=user, last_step=instrument.STEP_SLUGS[0])
        mood = Draft.objects.create(
            created_by=user, answers=instrument.encode_answers(before_mood), last_step=HTTP_STEP
        )
        accounts.append((user.username, walk.pk, mood.pk))
    port = _free_port(HTTP_PORTS)
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(connections[DEFAULT_DB_ALIAS].settings_dict),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        # Plain http on the loopback: TLS is the proxy's job in production.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "intake.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=settings.BASE_DIR,
        env=env,
    )
    step_path = reverse("intake:wizard_step", kwargs={"draft_id": 0, "step": "STEP"})
    try:
        _wait_until_up(port, server)
        browsers = []
        for username, walk_id, mood_id in accounts:
            browser = _Browser(port)
            browser.sign_in(username, password)
            browser.context = {"draft_id": mood_id}
            browser.step_path = lambda slug, draft_id=walk_id: step_path.replace(
                "/0/", f"/{draft_id}/"
            ).replace("STEP", slug)
            browsers.append(browser)
        mood_path = step_path.replace("/0/", "/{draft_id}/").replace("STEP", HTTP_STEP)
        hello_path = reverse("healthz")
        _hammer(browsers, mood_path, 1, cookies=True)  # warm both workers

        cpu = _server_cpu_ms(server.pid)
        paced, paced_elapsed = _paced(
            browsers, answers, duration=paced_s, think=think_s, first_step=instrument.STEP_SLUGS[0]
        )
        requests_ = [ms for kind, _slug, ms in paced if kind in ("get", "post")]
        paced_cpu = (_server_cpu_ms(server.pid) - cpu) / len(requests_)

        cpu = _server_cpu_ms(server.pid)
        step, step_s = _hammer(browsers, mood_path, per_user, cookies=True)
        step_cpu = (_server_cpu_ms(server.pid) - cpu) / len(step)
        cpu = _server_cpu_ms(server.pid)
        hello, hello_s = _hammer(browsers, hello_path, per_user, cookies=False)
        hello_cpu = (_server_cpu_ms(server.pid) - cpu) / len(hello)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    gets = [ms for kind, _slug, ms in paced if kind == "get"]
    posts = [ms for kind, _slug, ms in paced if kind == "post"]
    nexts = [ms for kind, _slug, ms in paced if kind == "next"]
    by_step = {}
    for kind, slug, ms in paced:
        if kind in ("get", "post"):
            by_step.setdefault(slug, []).append(ms)
    step_rps = len(step) / step_s
    hello_rps = len(hello) / hello_s
    return {
        "http_users": users,
        "http_workers": workers,
        # Paced model: 20 staff, think 1-3 s between a page and its "Next".
        "wizard_step_p95_ms": round(percentile(requests_, 0.95), 1),
        "wizard_step_median_ms": round(statistics.median(requests_), 1),
        "http_paced_requests": len(requests_),
        "http_paced_rps": round(len(requests_) / paced_elapsed, 1),
        "http_paced_get_p95_ms": round(percentile(gets, 0.95), 1),
        "http_paced_post_p95_ms": round(percentile(posts, 0.95), 1),
        "http_paced_next_p95_ms": round(percentile(nexts, 0.95), 1),
        "http_paced_server_cpu_ms": round(paced_cpu, 1),
        # Per step (its GETs and POSTs): which steps make the tail.
        "http_paced_step_median_ms": {
            slug: round(statistics.median(times), 1) for slug, times in by_step.items()
        },
        # Closed loop, no think time: a stress figure (saturation), not the goal's.
        "http_step_rps": round(step_rps, 1),
        "http_hello_rps": round(hello_rps, 1),
        "http_step_to_hello_ratio": round(step_rps / hello_rps, 3),
        "http_step_server_cpu_ms": round(step_cpu, 1),
        "http_hello_server_cpu_ms": round(hello_cpu, 1),
        "http_step_median_ms": round(statistics.median(step), 1),
        "http_step_p95_ms": round(percentile(step, 0.95), 1),
        "http_hello_p95_ms": round(percentile(hello, 0.95), 1),
    }


def _server_cpu_ms(master_pid):
    """Return the CPU time used so far by gunicorn's workers (Linux /proc), in ms."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total * 1000 / os.sysconf("SC_CLK_TCK")


def _wait_until_up(port, server, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("gunicorn exited before serving")
        try:
            status, _content = _Browser(port).request("GET", reverse("healthz"))
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer /healthz in time")
