"""Submitted screenings built directly from rows, for PDF, FHIR and document tests.

``tests.factories.make_screening`` goes through the real submission service
(rules included); these helpers pin exact flags instead, so a test can ask for
0 or 40 flags or a hostile answer without depending on which rules fire.
"""

import datetime as dt

from django.utils import timezone

from intake import instrument, lexicon, services
from intake.models import Flag, Screening
from intake.thresholds import DEFAULTS, encode
from tests.factories import quiet_answers

REALISTIC_FLAGS = (
    (
        "SUI-01",
        "review",
        True,
        "Suicidal intent or plan in the past month, or suicidal behavior in the past 3 months: "
        "Past month: has the patient had these thoughts with some intention of acting on them?: "
        "Yes. Start the clinic's suicide-safety protocol now.",
        ["S1", "S2", "S3"],
    ),
    (
        "BP-02",
        "review",
        False,
        "Rested blood pressure 186/104 (first reading 192/108) is above 180/100. A national "
        "ketamine label lists resting BP above 180/100 as a contraindication.",
        ["K12", "A10"],
    ),
    (
        "SUI-05",
        "review",
        False,
        "PHQ-9 item 9 (thoughts of death or self-harm) scored 2. Follow up whatever the total "
        "score.",
        ["S4"],
    ),
    (
        "ALC-02",
        "review",
        False,
        "Recent alcohol: Date and time of last alcoholic drink: 2026-11-21 22:30 EST. Alcohol "
        "adds to ketamine's sedation. Assess for intoxication or withdrawal first.",
        ["K13", "K9", "A9"],
    ),
    (
        "HR-02",
        "caution",
        False,
        "Heart rate 108/min is above 100. Ketamine raises heart rate.",
        ["K3"],
    ),
    (
        "URO-01",
        "caution",
        False,
        "Urinary symptoms in the past month: Passing urine more often than usual. Record them as "
        "a baseline and watch for ketamine-associated cystitis.",
        ["K3", "L6", "L7"],
    ),
    (
        "MED-10",
        "caution",
        False,
        "Not recognized by the medication lexicon: Zolpidemix. A clinician or pharmacist checks "
        "these by hand.",
        ["M1"],
    ),
    ("SCL-01", "info", False, "PHQ-9 total 21: severe depressive symptoms.", ["S4"]),
    (
        "AGE-02",
        "info",
        False,
        "Age 67 is above 65. Age over 65 is a risk factor for complicated alcohol withdrawal.",
        ["A5", "K4"],
    ),
)


def realistic_answers(**overrides):
    """Return answers of a screening with medications and several findings."""
    answers = quiet_answers(
        date_of_birth=dt.date(1959, 6, 2),
        vit_sbp=192,
        vit_dbp=108,
        vit_bp_repeat_sbp=186,
        vit_bp_repeat_dbp=104,
        vit_hr=108,
        med_none=False,
        medications=[
            {"name": "Sertraline", "dose": "100 mg", "frequency": "once daily"},
            {"name": "Lorazepam", "dose": "1 mg", "frequency": "at night as needed"},
            {"name": "Zolpidemix", "dose": "", "frequency": ""},
        ],
        alg_other="Penicillin (rash as a child). No known reaction to anesthesia.",
        cv_htn="unsure",
        phq9_9=2,
        cssrs_1="yes",
        cssrs_2="yes",
        cssrs_3="yes",
        cssrs_4="yes",
        cssrs_5="no",
        uro_symptoms=["frequency"],
    )
    answers.update(overrides)
    return {code: value for code, value in answers.items() if value is not None}


def age_on(answers, submitted_at):
    """Return the patient's age in years on the local date of ``submitted_at``."""
    day = timezone.localtime(submitted_at).date()
    dob = answers["date_of_birth"]
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def build_screening(
    user,
    answers=None,
    flags=(),
    *,
    submitted_at=None,
    derived=None,
    thresholds_version=3,
    evidence=(),
):
    """Return a submitted screening with exactly ``flags`` ((id, severity, urgent, msg, basis)).

    Every flag gets the same ``evidence``.
    """
    answers = quiet_answers() if answers is None else answers
    submitted_at = submitted_at or timezone.now()
    if derived is None:
        derived = {
            "age": age_on(answers, submitted_at),
            "bmi": "25.2",
            "phq9_total": 9,
            "gad7_total": 7,
            "audc_total": 0,
            "bp_rest_sbp": answers["vit_sbp"],
            "bp_rest_dbp": answers["vit_dbp"],
        }
        if "medications" in answers:
            derived["med_classes"] = [
                list(lexicon.classify(row["name"])) for row in answers["medications"]
            ]
    screening = Screening.objects.create(
        submitted_by=user,
        submitted_at=submitted_at,
        instrument_version=instrument.INSTRUMENT_VERSION,
        lexicon_version="1.0",
        thresholds_version=thresholds_version,
        thresholds=encode(dict(DEFAULTS)),
        answers=instrument.encode_answers(answers),
        derived=derived,
        snapshot_sha256="",
        patient_first_name=answers["first_name"],
        patient_last_name=answers["last_name"],
        patient_mrn=answers.get("mrn", ""),
        patient_date_of_birth=answers["date_of_birth"],
        urgent_count=sum(1 for flag in flags if flag[2]),
        review_count=sum(1 for flag in flags if flag[1] == "review"),
        caution_count=sum(1 for flag in flags if flag[1] == "caution"),
        info_count=sum(1 for flag in flags if flag[1] == "info"),
    )
    Flag.objects.bulk_create(
        Flag(
            screening=screening,
            position=position,
            rule_id=rule_id,
            severity=severity,
            urgent=urgent,
            message=message,
            basis=list(basis),
            evidence=list(evidence),
        )
        for position, (rule_id, severity, urgent, message, basis) in enumerate(flags)
    )
    digest = services.snapshot_sha256(services.snapshot_document(screening))
    Screening.objects.filter(pk=screening.pk).update(snapshot_sha256=digest)
    screening.snapshot_sha256 = digest
    return screening


def many_flags(count):
    """Return ``count`` distinct flags cycling through the severities."""
    severities = ("review", "caution", "info")
    return tuple(
        (
            f"TST-{index:02d}",
            severities[index % 3],
            index == 0,
            f"Test finding number {index} with enough words to wrap onto a second line in the "
            "flag table of the summary.",
            ["T1"],
        )
        for index in range(count)
    )
