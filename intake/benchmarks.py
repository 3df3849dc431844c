"""Benchmarks run by ``python manage.py bench``.

A section is one function registered with ``@section("name")`` that returns a
dict of figures; adding a section is adding one such function.
"""

import datetime as dt
import statistics
import time
from decimal import Decimal

import weasyprint
from django.contrib.auth import get_user_model
from django.db import transaction

from intake import instrument, pdf, services
from intake.models import Draft

SECTIONS = {}

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
    **{code: "no" for code in (
        "cv_htn_enceph", "cv_aneurysm", "cv_avm", "cv_mi", "cv_chest_pain", "cv_hf",
        "cv_valve", "cv_arrhythmia", "neuro_ich", "neuro_stroke_tia", "neuro_icp",
        "neuro_tbi", "neuro_seizure", "neuro_cog", "alg_ketamine", "ket_prior_med",
        "anes_complications", "psy_psychosis_ever", "psy_fam_psychosis", "psy_mania_recent",
        "cssrs_1", "cssrs_2", "cssrs_6", "alc_last_drink_unknown", "alc_daily",
        "aw_hx_seizure", "aw_hx_dt", "sub_tx_active", "uro_ket_cystitis", "med_porphyria",
    )},
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
    **{code: "never" for code in (
        "sub_ketamine_nonmed", "sub_pcp_dissoc", "sub_stimulant", "sub_opioid_nonrx",
        "sub_benzo_nonrx", "sub_hallucinogen",
    )},
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


def section(name):
    """Register the decorated function as benchmark section ``name``."""

    def register(function):
        SECTIONS[name] = function
        return function

    return register


def run(names=None):
    """Run the named sections (default: all) and return their figures merged in one dict."""
    results = {}
    for name in names or SECTIONS:
        results.update(SECTIONS[name]())
    return results


def _ms(function):
    """Return ``(wall, cpu)`` milliseconds of one call of ``function``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


@section("pdf")
def bench_pdf(*, repeat=7):
    """Return the median render time of a typical summary and of a one-line page.

    The two are measured alternately in the same run, so machine load affects
    both alike. The screening is submitted through the real service inside a
    transaction that is rolled back.
    """
    with transaction.atomic():
        user = get_user_model().objects.create_user(username="bench-pdf-user")
        answers = instrument.encode_answers(
            {**TYPICAL_ANSWERS, "alc_last_drink": dt.datetime.now(dt.UTC)
             - dt.timedelta(days=3)}
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
    }
