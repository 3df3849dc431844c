"""Test data for the review panel: submitted screenings with chosen flags, stored directly.

The review panel only reads frozen snapshots, so its tests build them row by
row with exactly the flags they need instead of going through the rules.
"""

import datetime as dt

from django.utils import timezone

from intake import reviews
from intake.models import Determination
from tests.conftest import PASSWORD
from tests.factories import quiet_answers
from tests.pdf_factories import age_on, build_screening

FLAG_TEXT = {
    "SUI-01": ("review", True, "Suicidal thoughts with a plan or intent were reported."),
    "BP-02": ("review", False, "Rested blood pressure 186/104 is above 180/100."),
    "HR-01": ("review", False, "Heart rate 134/min is above 130."),
    "BP-01": ("caution", False, "Rested blood pressure 150/92 is above 140/90."),
    "SPO2-01": ("caution", False, "SpO2 92% on room air is below 94%."),
    "AGE-02": ("info", False, "Age 70 is at or above 65."),
}


def flagged_screening(user, rule_ids=(), *, submitted_at=None, **answer_overrides):
    """Return a submitted screening of ``user`` with one flag per rule id (see FLAG_TEXT)."""
    answers = quiet_answers(**answer_overrides)
    submitted_at = submitted_at or timezone.now()
    flags = [(rule_id, *FLAG_TEXT[rule_id], ["K12"]) for rule_id in rule_ids]
    flags.sort(key=lambda f: (not f[2], ("review", "caution", "info").index(f[1])))
    return build_screening(
        user,
        answers,
        flags,
        submitted_at=submitted_at,
        derived={
            "age": age_on(answers, submitted_at),
            "bmi": "25.2",
            "phq9_total": 9,
            "gad7_total": 7,
        },
        thresholds_version=0,
        evidence=[{"code": "vit_sbp", "value": 186}],
    )


def days_ago(days):
    """Return an aware datetime ``days`` days before now."""
    return timezone.now() - dt.timedelta(days=days)


def sign_review(screening, user):
    """Sign ``user``'s review of ``screening`` (its only flag needing it: SUI-01) and return it."""
    return reviews.record_review(
        screening_id=screening.pk,
        user=user,
        determination_id=Determination.objects.first().pk,
        note="Reviewed.",
        acknowledged_rule_ids=["SUI-01"],
        password=PASSWORD,
    )
