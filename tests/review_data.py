"""Test data for the review panel: submitted screenings with chosen flags, stored directly.

The review panel only reads frozen snapshots, so its tests build them row by
row with exactly the flags they need instead of going through the rules.
"""

import datetime as dt
import importlib

from django.utils import timezone

from intake import instrument, services, thresholds
from intake.models import Flag, Screening
from tests.factories import quiet_answers

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
    flags = [(rule_id, *FLAG_TEXT[rule_id]) for rule_id in rule_ids]
    flags.sort(key=lambda f: (not f[2], ("review", "caution", "info").index(f[1])))
    dob = answers["date_of_birth"]
    today = timezone.localtime(submitted_at).date()
    age = today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))
    screening = Screening.objects.create(
        submitted_by=user,
        submitted_at=submitted_at,
        instrument_version=instrument.INSTRUMENT_VERSION,
        lexicon_version="1.0",
        thresholds_version=0,
        thresholds=thresholds.encode(thresholds.DEFAULTS),
        answers=instrument.encode_answers(answers),
        derived={"age": age, "bmi": "25.2", "phq9_total": 9, "gad7_total": 7},
        snapshot_sha256="",
        patient_first_name=answers["first_name"],
        patient_last_name=answers["last_name"],
        patient_mrn=answers.get("mrn", ""),
        patient_date_of_birth=dob,
        urgent_count=sum(1 for f in flags if f[2]),
        review_count=sum(1 for f in flags if f[1] == "review"),
        caution_count=sum(1 for f in flags if f[1] == "caution"),
        info_count=sum(1 for f in flags if f[1] == "info"),
    )
    Flag.objects.bulk_create(
        Flag(
            screening=screening,
            position=position,
            rule_id=rule_id,
            severity=severity,
            urgent=urgent,
            message=message,
            basis=["K12"],
            evidence=[{"code": "vit_sbp", "value": 186}],
        )
        for position, (rule_id, severity, urgent, message) in enumerate(flags)
    )
    digest = services.snapshot_sha256(services.snapshot_document(screening))
    Screening.objects.filter(pk=screening.pk).update(snapshot_sha256=digest)
    screening.snapshot_sha256 = digest
    return screening


def ensure_roles():
    """Recreate the role groups and default determinations if a transactional test flushed them."""
    from django.apps import apps
    from django.contrib.auth.models import Group

    if not Group.objects.filter(name="clinician").exists():
        migration = importlib.import_module("intake.migrations.0002_roles_and_determinations")
        migration.create_roles(apps, None)


def days_ago(days):
    """Return an aware datetime ``days`` days before now."""
    return timezone.now() - dt.timedelta(days=days)
