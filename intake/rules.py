"""Flag rules (INSTRUMENT.md sections 4 and 6): answers in, derived values and flags out.

Pure: no ORM, request or settings; thresholds are passed in. Flags are prompts for
clinician review, not a treatment decision.

Callers pass ``now`` already converted to the clinic's time zone: the screening
date is ``now.date()``, and datetimes in messages are shown in ``now``'s zone.
"""

import calendar
import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from intake import instrument, lexicon
from intake.thresholds import DEFAULTS, to_number


def _(message):
    """Mark ``message`` for makemessages and return it unchanged.

    Django's own gettext_noop reads settings; the rules stay settings-free, and a
    snapshot stores the rendered English text.
    """
    return message


REVIEW, CAUTION, INFO = "review", "caution", "info"
URGENT = "urgent"  # In the table only: a review rule that also raises the urgent banner.
SEVERITY_ORDER = {"review": 0, "caution": 1, "info": 2}

YES_UNSURE = ("yes", "unsure")
STOPBANG_LETTERS = ("S", "T", "O", "P", "B", "A", "N", "G")

DERIVED_LABELS = {
    "age": _("Age"),
    "bmi": _("BMI"),
    "bp_rest_sbp": _("Rested systolic BP"),
    "bp_rest_dbp": _("Rested diastolic BP"),
    "audc_total": _("AUDIT-C total"),
    "phq9_total": _("PHQ-9 total"),
    "gad7_total": _("GAD-7 total"),
    "stopbang_score": _("STOP-Bang score"),
    "stopbang_unknown": _("STOP-Bang items not scored"),
    "med_classes": _("Medication classes"),
    "med_unrecognized": _("Medications not recognized"),
}


@dataclass(frozen=True)
class Flag:
    rule_id: str
    severity: str
    urgent: bool
    message: str
    basis: tuple = ()
    evidence: tuple = field(default=())


# ---------------------------------------------------------------------------
# Derived values (INSTRUMENT.md section 4)


@lru_cache(maxsize=4096)
def _classify(name):
    # The lexicon is shipped data, fixed for the life of the process.
    return tuple(lexicon.classify(name))


def _screening_date(now):
    if not isinstance(now, dt.datetime) or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now.date()


def _age(dob, today):
    if not isinstance(dob, dt.date):
        return None
    if isinstance(dob, dt.datetime):
        dob = dob.date()
    before_birthday = (today.month, today.day) < (dob.month, dob.day)
    return today.year - dob.year - (1 if before_birthday else 0)


def _decimal(value):
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidOperation
    return Decimal(str(value))


def _bmi(weight, height):
    try:
        metres = _decimal(height) / 100
        return (_decimal(weight) / (metres * metres)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    except (InvalidOperation, ArithmeticError):
        return None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _sum_items(answers, codes):
    values = [answers.get(code) for code in codes]
    if all(_is_int(value) for value in values):
        return sum(values)
    return None


PHQ9_CODES = tuple(f"phq9_{i}" for i in range(1, 10))
GAD7_CODES = tuple(f"gad7_{i}" for i in range(1, 8))


def _audc_total(answers):
    first = answers.get("audc_1")
    if not _is_int(first):
        return None
    if first == 0:
        return 0
    return _sum_items(answers, ("audc_1", "audc_2", "audc_3"))


def _scored(condition_one, condition_zero):
    if condition_one:
        return 1
    if condition_zero:
        return 0
    return None


def _gt_or_unknown(value, limit):
    if value is None:
        return None
    try:
        return 1 if value > limit else 0
    except (TypeError, ArithmeticError):
        return None


def _stopbang(answers, derived, t):
    sex = answers.get("sex_at_birth")
    htn = answers.get("cv_htn")
    items = (
        _scored(answers.get("sb_snore") == "yes", answers.get("sb_snore") == "no"),
        _scored(answers.get("sb_tired") == "yes", answers.get("sb_tired") == "no"),
        _scored(answers.get("sb_observed") == "yes", answers.get("sb_observed") == "no"),
        _scored(htn == "yes", htn == "no"),
        _gt_or_unknown(derived.get("bmi"), t["stopbang_bmi"]),
        _gt_or_unknown(derived.get("age"), t["stopbang_age"]),
        _gt_or_unknown(answers.get("vit_neck_cm"), t["stopbang_neck_cm"]),
        _scored(sex == "male", sex == "female"),
    )
    score = sum(item for item in items if item)
    unknown = [letter for letter, item in zip(STOPBANG_LETTERS, items, strict=True) if item is None]
    return score, unknown


def _med_rows(answers):
    rows = answers.get("medications")
    if not isinstance(rows, list | tuple):
        return None
    result = []
    for row in rows:
        name = row.get("name") if isinstance(row, dict) else None
        name = name.strip() if isinstance(name, str) else ""
        result.append((name, _classify(name) if name else ()))
    return result


def _thresholds(thresholds):
    if not thresholds:
        return DEFAULTS
    values = dict(DEFAULTS)
    for name, value in thresholds.items():
        values[name] = to_number(value) if isinstance(value, str) else value
    return values


def _derive(answers, today, t):
    derived = {}
    age = _age(answers.get("date_of_birth"), today)
    if age is not None:
        derived["age"] = age
    if "vit_weight_kg" in answers and "vit_height_cm" in answers:
        bmi = _bmi(answers["vit_weight_kg"], answers["vit_height_cm"])
        if bmi is not None:
            derived["bmi"] = bmi
    if "vit_bp_repeat_sbp" in answers and "vit_bp_repeat_dbp" in answers:
        derived["bp_rest_sbp"] = answers["vit_bp_repeat_sbp"]
        derived["bp_rest_dbp"] = answers["vit_bp_repeat_dbp"]
    else:
        for code, name in (("vit_sbp", "bp_rest_sbp"), ("vit_dbp", "bp_rest_dbp")):
            if code in answers:
                derived[name] = answers[code]
    for name, total in (
        ("audc_total", _audc_total(answers)),
        ("phq9_total", _sum_items(answers, PHQ9_CODES)),
        ("gad7_total", _sum_items(answers, GAD7_CODES)),
    ):
        if total is not None:
            derived[name] = total
    if answers.get("resp_osa") in ("no", "unsure"):
        derived["stopbang_score"], derived["stopbang_unknown"] = _stopbang(answers, derived, t)
    rows = _med_rows(answers)
    if rows is not None:
        derived["med_classes"] = [list(classes) for _name, classes in rows]
        derived["med_unrecognized"] = [name for name, classes in rows if name and not classes]
    return derived, rows or []


def derive(answers, *, now, thresholds=None):
    """Return the derived values of section 4; a value whose inputs are missing is absent."""
    derived, _rows = _derive(answers, _screening_date(now), _thresholds(thresholds))
    return derived


# ---------------------------------------------------------------------------
# Condition notation (INSTRUMENT.md 2.6). A condition takes the evaluation
# context and returns a list of evidence items when true (possibly empty, for
# ``not (...)``) or None when false. Missing inputs make a comparison false.


class _Context:
    __slots__ = ("answers", "values", "t", "now", "today", "rows", "by_class", "memo")

    def __init__(self, answers, derived, rows, t, now, today):
        self.answers = answers
        self.values = {**answers, **derived}
        self.rows = rows
        self.by_class = {}
        for index, (_name, classes) in enumerate(rows):
            for key in classes:
                self.by_class.setdefault(key, []).append(index)
        self.t = t
        self.now = now
        self.today = today
        self.memo = {}

    def fires(self, rule_id):
        if rule_id not in self.memo:
            self.memo[rule_id] = RULES_BY_ID[rule_id].condition(self)
        return self.memo[rule_id]


def _item(code, value):
    return {"code": code, "value": value}


def eq(code, value):
    """``code = value``."""

    def condition(c):
        x = c.values.get(code)
        return [_item(code, x)] if x is not None and x == value else None

    return condition


def is_in(code, *values):
    """``code in (values)``."""

    def condition(c):
        x = c.values.get(code)
        return [_item(code, x)] if isinstance(x, str) and x in values else None

    return condition


def yu(code):
    """``code in (yes, unsure)``."""
    return is_in(code, *YES_UNSURE)


def includes(code, *keys):
    """``code includes any of (keys)``; the evidence is the matching keys."""

    def condition(c):
        x = c.values.get(code)
        if not isinstance(x, list | tuple):
            return None
        hits = [key for key in x if key in keys]
        return [_item(code, hits)] if hits else None

    return condition


def includes_except(code, *excluded):
    """``code includes any except (excluded)``; the evidence is the other keys."""

    def condition(c):
        x = c.values.get(code)
        if not isinstance(x, list | tuple):
            return None
        hits = [key for key in x if key not in excluded]
        return [_item(code, hits)] if hits else None

    return condition


def _compare(code, limit, test):
    def condition(c):
        x = c.values.get(code)
        if x is None or isinstance(x, bool | str):
            return None
        try:
            ok = test(x, c.t[limit] if isinstance(limit, str) else limit)
        except (TypeError, ArithmeticError):  # not a number, or Decimal("NaN"): false
            return None
        return [_item(code, x)] if ok else None

    return condition


def gt(code, limit):
    """``code > limit`` (a threshold name or a number)."""
    return _compare(code, limit, lambda a, b: a > b)


def ge(code, limit):
    """``code >= limit``."""
    return _compare(code, limit, lambda a, b: a >= b)


def lt(code, limit):
    """``code < limit``."""
    return _compare(code, limit, lambda a, b: a < b)


def le(code, limit):
    """``code <= limit``."""
    return _compare(code, limit, lambda a, b: a <= b)


def present(code):
    """``present(code)``."""

    def condition(c):
        return [_item(code, c.values[code])] if code in c.values else None

    return condition


def absent(code):
    """``absent(code)``."""

    def condition(c):
        return None if code in c.values else [{"code": code, "value": None, "absent": True}]

    return condition


def unanswered(*codes):
    """``unanswered(x)`` for any of ``codes``: shown, but absent."""

    def condition(c):
        missing = [
            {"code": code, "value": None, "absent": True}
            for code in codes
            if code not in c.answers and instrument.is_shown(code, c.answers, c.t)
        ]
        return missing or None

    return condition


def any_(*conditions):
    """``a or b ...``; the evidence of every true branch."""

    def condition(c):
        found = None
        for cond in conditions:
            evidence = cond(c)
            if evidence is not None:
                found = (found or []) + evidence
        return found

    return condition


def all_(*conditions):
    """``a and b ...``."""

    def condition(c):
        found = []
        for cond in conditions:
            evidence = cond(c)
            if evidence is None:
                return None
            found += evidence
        return found

    return condition


def not_(cond):
    """``not (...)``: true (with no evidence) when ``cond`` is false, so absent answers count."""

    def condition(c):
        return [] if cond(c) is None else None

    return condition


def fires(rule_id):
    """``RULE fires``: the named rule's condition on the same input."""

    def condition(c):
        return c.fires(rule_id)

    return condition


def _months_before(day, months):
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def within_months(code, months):
    """``within_months(code, months)``: on or after the screening date minus n calendar months."""

    def condition(c):
        x = c.values.get(code)
        if not isinstance(x, dt.date):
            return None
        day = x.date() if isinstance(x, dt.datetime) else x
        return [_item(code, x)] if day >= _months_before(c.today, int(c.t[months])) else None

    return condition


def _hours_since(moment, now):
    if moment.utcoffset() is None:
        # A naive time was entered in the clinic's zone, which is now's zone.
        moment = moment.replace(tzinfo=now.tzinfo)
    return Decimal((now - moment) // dt.timedelta(microseconds=1)) / Decimal(3_600_000_000)


def hours_since_below(code, limit):
    """``present(code) and hours_since(code) < limit``."""

    def condition(c):
        x = c.values.get(code)
        if not isinstance(x, dt.datetime):
            return None
        hours = _hours_since(x, c.now)
        if hours < c.t[limit]:
            return [{"code": code, "value": x, "hours_since": hours.quantize(Decimal("0.1"))}]
        return None

    return condition


def med_class(*keys):
    """``class(k)`` for any of ``keys``; the evidence is each matching row."""

    def condition(c):
        matched = {i for key in keys for i in c.by_class.get(key, ())}
        if not matched:
            return None
        return [
            {"medication": c.rows[i][0], "classes": list(c.rows[i][1])} for i in sorted(matched)
        ]

    return condition


def med_unrecognized():
    """``med_unrecognized`` is not empty."""

    def condition(c):
        rows = [
            {"medication": name, "classes": []} for name, classes in c.rows if name and not classes
        ]
        return rows or None

    return condition


def no_medication_rows():
    """``absent(medications) or medications is empty``."""

    def condition(c):
        if c.answers.get("medications"):
            return None
        return [{"code": "medications", "value": None, "absent": True}]

    return condition


def stopbang_incomplete():
    """RES-04: unknown items could lift the score from below high to intermediate or more."""

    def condition(c):
        score = c.values.get("stopbang_score")
        unknown = c.values.get("stopbang_unknown")
        if score is None or not unknown:
            return None
        if score < c.t["stopbang_high"] and score + len(unknown) >= c.t["stopbang_intermediate"]:
            return [_item("stopbang_score", score), _item("stopbang_unknown", list(unknown))]
        return None

    return condition


# ---------------------------------------------------------------------------
# The rule table (INSTRUMENT.md 6.3), in table order. Messages and bracket
# variants follow below it.

_SUB_CODES = (
    "sub_ketamine_nonmed",
    "sub_pcp_dissoc",
    "sub_stimulant",
    "sub_opioid_nonrx",
    "sub_benzo_nonrx",
    "sub_hallucinogen",
    "sub_cannabis",
)

_TABLE = (
    # Vital signs, age and body size
    (
        "BP-01",
        CAUTION,
        "E3",
        all_(
            any_(gt("bp_rest_sbp", "bp_caution_sbp"), gt("bp_rest_dbp", "bp_caution_dbp")),
            not_(fires("BP-02")),
        ),
    ),
    (
        "BP-02",
        REVIEW,
        "K12 A10",
        any_(gt("bp_rest_sbp", "bp_review_sbp"), gt("bp_rest_dbp", "bp_review_dbp")),
    ),
    (
        "BP-03",
        REVIEW,
        "K1 C3 A11",
        all_(eq("cv_htn", "yes"), is_in("cv_htn_controlled", "no", "unsure")),
    ),
    ("HR-01", REVIEW, "A10", gt("vit_hr", "hr_review")),
    ("HR-02", CAUTION, "K3", all_(gt("vit_hr", "hr_caution"), le("vit_hr", "hr_review"))),
    ("SPO2-01", CAUTION, "E10 K5", lt("vit_spo2", "spo2_caution")),
    ("AGE-01", REVIEW, "E12 L2", lt("age", "age_min")),
    ("AGE-02", INFO, "A5 K4", gt("age", "age_info")),
    ("WT-01", INFO, "C1 A9", absent("vit_weight_kg")),
    ("BMI-01", INFO, "L8", gt("bmi", "bmi_info")),
    # Pregnancy
    ("PRG-01", REVIEW, "K10 E7 C3 A11", any_(yu("preg_status"), eq("lab_preg_test", "positive"))),
    ("PRG-02", REVIEW, "E7 A11", eq("preg_breastfeeding", "yes")),
    (
        "PRG-03",
        CAUTION,
        "E7 L5",
        any_(yu("preg_planning"), is_in("preg_contraception", "no", "unsure")),
    ),
    ("PRG-04", INFO, "A11", all_(yu("preg_potential"), eq("lab_preg_test", "not_done"))),
    # Cardiovascular and cerebrovascular
    ("CV-01", REVIEW, "E1 K1 C5", yu("cv_aneurysm")),
    ("CV-02", REVIEW, "E1", yu("cv_avm")),
    ("CV-03", REVIEW, "E1", yu("neuro_ich")),
    ("CV-04", REVIEW, "K11 K12 L1 A10", yu("neuro_stroke_tia")),
    ("CV-05", REVIEW, "L1 A10 K11", yu("cv_mi")),
    ("CV-06", REVIEW, "L1 K11", yu("cv_chest_pain")),
    ("CV-07", REVIEW, "K3 K11 E9", yu("cv_hf")),
    ("CV-08", CAUTION, "E3 E9", yu("cv_valve")),
    ("CV-09", CAUTION, "K3 L1 A11", yu("cv_arrhythmia")),
    ("CV-10", REVIEW, "E3", eq("cv_htn_enceph", "yes")),
    (
        "ECG-01",
        CAUTION,
        "L1",
        any_(
            all_(eq("sex_at_birth", "female"), gt("ecg_qtc_ms", "qtc_caution_female")),
            all_(not_(eq("sex_at_birth", "female")), gt("ecg_qtc_ms", "qtc_caution_male")),
        ),
    ),
    # Neurological
    ("NEU-01", REVIEW, "E3 K6 C3 C4", yu("neuro_icp")),
    (
        "NEU-02",
        REVIEW,
        "A10 L2",
        all_(
            eq("neuro_tbi", "yes"),
            any_(
                absent("neuro_tbi_date"),
                within_months("neuro_tbi_date", "recent_event_months"),
                yu("neuro_tbi_symptoms"),
            ),
        ),
    ),
    (
        "NEU-03",
        CAUTION,
        "E9 K11 C4",
        any_(eq("neuro_tbi", "unsure"), all_(eq("neuro_tbi", "yes"), not_(fires("NEU-02")))),
    ),
    ("NEU-04", CAUTION, "L1 A10 C4 K13", yu("neuro_seizure")),
    ("NEU-05", CAUTION, "L2", any_(yu("neuro_cog"), includes("psy_dx", "neurocognitive"))),
    # Allergy, previous ketamine and anesthesia
    ("ALG-01", REVIEW, "K1 E1", yu("alg_ketamine")),
    ("KET-01", REVIEW, "C5 A10", includes_except("ket_prior_adverse", "none")),
    ("KET-02", INFO, "A10", any_(yu("ket_recent_course"), med_class("ketamine"))),
    ("ANE-01", CAUTION, "L10", yu("anes_complications")),
    # Medications (classes: the lexicon, medications.md)
    ("MED-01", CAUTION, "M1 E8 A5", med_class("benzodiazepine")),
    (
        "MED-02",
        CAUTION,
        "E8 K13",
        med_class("z_drug", "barbiturate", "other_sedative", "antipsychotic"),
    ),
    ("MED-03", CAUTION, "E8 M5 M6", med_class("opioid")),
    ("MED-04", CAUTION, "E8 K13", med_class("stimulant")),
    ("MED-05", CAUTION, "E8 M5", med_class("maoi")),
    ("MED-06", INFO, "M2", med_class("lamotrigine")),
    ("MED-07", CAUTION, "K13", med_class("theophylline")),
    ("MED-08", INFO, "K13 M2 M6", med_class("cyp3a4_strong_inducer", "cyp3a4_strong_inhibitor")),
    ("MED-09", INFO, "K13", med_class("antihypertensive")),
    ("MED-10", INFO, "C6", med_unrecognized()),
    ("MED-11", REVIEW, "C6 E8 K13", all_(not_(eq("med_none", True)), no_medication_rows())),
    ("MED-12", INFO, "C6", med_class("aud_other")),
    ("MED-13", CAUTION, "C6", eq("med_reviewed_with_patient", "no")),
    # Psychiatric
    ("PSY-01", REVIEW, "E4 C3 A11 L6", yu("psy_psychosis_now")),
    (
        "PSY-02",
        REVIEW,
        "E4 C1 C5 L2 L3",
        any_(
            eq("psy_psychosis_ever", "yes"),
            includes("psy_dx", "schizophrenia", "schizoaffective", "other_psychotic"),
        ),
    ),
    ("PSY-03", CAUTION, "L3", yu("psy_fam_psychosis")),
    ("PSY-04", REVIEW, "L1 A11 L9", yu("psy_mania_recent")),
    (
        "PSY-05",
        CAUTION,
        "C8",
        all_(
            any_(
                includes("psy_dx", "bipolar_1", "bipolar_2"),
                includes("indication", "bipolar_depression"),
            ),
            is_in("psy_mood_stabilizer", "no", "unsure"),
        ),
    ),
    ("PSY-06", INFO, "C8", any_(includes("psy_dx", "ptsd"), includes("indication", "ptsd"))),
    ("PSY-07", INFO, "L3", includes("psy_dx", "severe_personality_disorder")),
    # Suicide risk and symptom scales
    (
        "SUI-01",
        URGENT,
        "S2 S3",
        any_(
            eq("cssrs_4", "yes"),
            eq("cssrs_5", "yes"),
            eq("cssrs_6_3mo", "yes"),
            all_(eq("cssrs_6", "yes"), absent("cssrs_6_3mo")),
        ),
    ),
    ("SUI-02", REVIEW, "S1 S2 S3", all_(eq("cssrs_3", "yes"), not_(fires("SUI-01")))),
    (
        "SUI-03",
        CAUTION,
        "S2 S3",
        all_(
            any_(eq("cssrs_1", "yes"), eq("cssrs_2", "yes")),
            not_(fires("SUI-01")),
            not_(fires("SUI-02")),
        ),
    ),
    ("SUI-04", CAUTION, "S3", all_(eq("cssrs_6", "yes"), eq("cssrs_6_3mo", "no"))),
    ("SUI-05", REVIEW, "S4", ge("phq9_9", 1)),
    ("SCL-01", INFO, "S4", ge("phq9_total", "phq9_severe")),
    ("SCL-02", INFO, "S5", ge("gad7_total", "gad7_significant")),
    # Alcohol
    (
        "ALC-01",
        INFO,
        "A1",
        any_(
            all_(eq("sex_at_birth", "male"), ge("audc_total", "audc_positive_male")),
            all_(not_(eq("sex_at_birth", "male")), ge("audc_total", "audc_positive_other")),
        ),
    ),
    (
        "ALC-02",
        REVIEW,
        "K13 K9 A9 A6 E8",
        any_(
            hours_since_below("alc_last_drink", "last_drink_hours"),
            eq("alc_last_drink_unknown", "yes"),
            gt("vit_bac", 0),
        ),
    ),
    ("ALC-03", REVIEW, "A5 A10 C5", any_(yu("aw_hx_seizure"), yu("aw_hx_dt"))),
    (
        "ALC-04",
        REVIEW,
        "A4 C5 A10",
        any_(ge("ciwa_ar", "ciwa_review"), includes("aw_sx_now", "hallucinations", "confusion")),
    ),
    (
        "ALC-05",
        CAUTION,
        "A3 A4",
        all_(
            any_(
                all_(ge("ciwa_ar", 1), lt("ciwa_ar", "ciwa_review")),
                includes_except("aw_sx_now", "none"),
            ),
            not_(fires("ALC-04")),
        ),
    ),
    (
        "ALC-06",
        CAUTION,
        "A5 A7",
        any_(
            ge("aw_prior_episodes", "withdrawal_episodes"),
            eq("alc_morning", "yes"),
            all_(gt("age", "age_info"), eq("alc_daily", "yes")),
            all_(med_class("benzodiazepine", "barbiturate"), eq("alc_daily", "yes")),
        ),
    ),
    ("ALC-07", REVIEW, "A8", ge("aw_pawss", "pawss_review")),
    ("ALC-08", INFO, "M3", med_class("naltrexone")),
    # Other substances
    (
        "SUB-01",
        REVIEW,
        "E5 L6 A10 A11",
        any_(
            is_in("sub_ketamine_nonmed", "past_12m", "past_30d"),
            is_in("sub_pcp_dissoc", "past_12m", "past_30d"),
            includes("lab_uds", "ketamine", "pcp"),
        ),
    ),
    (
        "SUB-02",
        CAUTION,
        "E5 L6",
        all_(
            any_(eq("sub_ketamine_nonmed", "gt_12m"), eq("sub_pcp_dissoc", "gt_12m")),
            not_(fires("SUB-01")),
        ),
    ),
    (
        "SUB-03",
        REVIEW,
        "M4 E8 L1",
        any_(eq("sub_stimulant", "past_30d"), includes("lab_uds", "cocaine", "amphetamine")),
    ),
    ("SUB-04", CAUTION, "M4", all_(eq("sub_stimulant", "past_12m"), not_(fires("SUB-03")))),
    (
        "SUB-05",
        REVIEW,
        "E8 A5 A11",
        any_(eq("sub_opioid_nonrx", "past_30d"), eq("sub_benzo_nonrx", "past_30d")),
    ),
    ("SUB-06", CAUTION, "A10", is_in("sub_hallucinogen", "past_12m", "past_30d")),
    (
        "SUB-07",
        INFO,
        "E5",
        any_(*(eq(code, "past_30d") for code in _SUB_CODES), eq("sub_tx_active", "yes")),
    ),
    # Other conditions
    (
        "LIV-01",
        REVIEW,
        "C3 E6 A10",
        any_(includes("liver_dx", "cirrhosis"), eq("lab_lft", "elevated_ge3x")),
    ),
    (
        "LIV-02",
        CAUTION,
        "K8 E6",
        all_(
            any_(
                includes("liver_dx", "fatty_liver", "hepatitis", "other", "unsure"),
                eq("lab_lft", "elevated_lt3x"),
            ),
            not_(fires("LIV-01")),
        ),
    ),
    ("LIV-03", INFO, "K8 A6", eq("lab_lft", "not_done")),
    ("REN-01", CAUTION, "C7 A10", is_in("renal_dx", "ckd", "dialysis", "unsure")),
    (
        "RES-01",
        CAUTION,
        "C7 A10 L8",
        any_(eq("resp_osa", "yes_untreated"), ge("stopbang_score", "stopbang_high")),
    ),
    (
        "RES-02",
        INFO,
        "L8",
        all_(ge("stopbang_score", "stopbang_intermediate"), lt("stopbang_score", "stopbang_high")),
    ),
    (
        "RES-03",
        CAUTION,
        "K5 A10",
        includes("resp_lung", "copd", "severe_asthma", "current_respiratory_infection"),
    ),
    ("RES-04", INFO, "L8", stopbang_incomplete()),
    ("URO-01", CAUTION, "K3 L6 L7", includes_except("uro_symptoms", "none")),
    ("URO-02", REVIEW, "L6 L7", yu("uro_ket_cystitis")),
    (
        "EYE-01",
        REVIEW,
        "K3 K7 C3 C4",
        includes(
            "eye_status",
            "glaucoma_uncontrolled_or_angle_closure",
            "recent_eye_injury_or_surgery",
            "unsure",
        ),
    ),
    ("EYE-02", CAUTION, "K7 C4", includes("eye_status", "glaucoma_controlled")),
    (
        "END-01",
        REVIEW,
        "K12 A10",
        includes("endo_thyroid", "hyperthyroid_untreated_or_uncontrolled", "unsure"),
    ),
    (
        "END-02",
        CAUTION,
        "K13 C4",
        any_(
            includes("endo_thyroid", "hyperthyroid_treated", "hypothyroid_on_replacement"),
            med_class("thyroid_hormone"),
        ),
    ),
    ("POR-01", CAUTION, "C4 A10", yu("med_porphyria")),
    # Logistics and consent
    ("LOG-01", CAUTION, "E11 K11 L4", eq("log_escort", "no")),
    ("LOG-02", INFO, "L1 L4 E11", lt("log_last_solid_h", "npo_solid_hours")),
    ("CAP-01", REVIEW, "A10 C6", is_in("log_capacity", "no", "needs_assessment")),
    ("CON-01", REVIEW, "C6", eq("consent_to_screening", "no")),
    # "Unsure" on core safety questions: exactly these four codes
    (
        "UNS-01",
        REVIEW,
        "K1 E3 E7 E4",
        any_(
            *(
                eq(code, "unsure")
                for code in ("cv_htn", "cv_htn_enceph", "preg_breastfeeding", "psy_psychosis_ever")
            )
        ),
    ),
    # Missing core answers (unanswered = shown but absent)
    (
        "MIS-01",
        REVIEW,
        "K10 E7",
        all_(
            not_(eq("sex_at_birth", "male")),
            unanswered("preg_potential", "preg_status", "preg_breastfeeding", "lab_preg_test"),
        ),
    ),
    (
        "MIS-02",
        REVIEW,
        "K1 E3",
        unanswered(
            "cv_htn",
            "cv_htn_controlled",
            "vit_sbp",
            "vit_dbp",
            "vit_bp_repeat_sbp",
            "vit_bp_repeat_dbp",
        ),
    ),
    (
        "MIS-03",
        REVIEW,
        "E1 E9 K11",
        unanswered(
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
        ),
    ),
    ("MIS-04", REVIEW, "K1 E1", unanswered("alg_ketamine")),
    ("MIS-05", REVIEW, "E3 K6", unanswered("neuro_icp")),
    (
        "MIS-06",
        REVIEW,
        "S1 S3",
        unanswered(
            "cssrs_1",
            "cssrs_2",
            "cssrs_3",
            "cssrs_4",
            "cssrs_5",
            "cssrs_6",
            "cssrs_6_3mo",
            "phq9_9",
        ),
    ),
)

# Bracket variants: "[name|text]" in a message is included only when its condition holds.
_VARIANTS = {
    "CV-04": {
        "recent": within_months("neuro_stroke_date", "recent_event_months"),
        "undated": all_(eq("neuro_stroke_tia", "yes"), absent("neuro_stroke_date")),
    },
    "CV-05": {
        "recent": within_months("cv_mi_date", "recent_event_months"),
        "undated": all_(eq("cv_mi", "yes"), absent("cv_mi_date")),
    },
    "ECG-01": {
        "female": eq("sex_at_birth", "female"),
        "other": not_(eq("sex_at_birth", "female")),
    },
    "ANE-01": {"detail": present("anes_complications_detail")},
    "MED-01": {"dose": present("med_benzo_dzeq")},
}

MESSAGES = {
    "BP-01": _(
        "Rested blood pressure {bp_rest_sbp}/{bp_rest_dbp} (first reading "
        "{vit_sbp}/{vit_dbp}) is above {bp_caution_sbp}/{bp_caution_dbp}. Esketamine labeling"
        " uses this level as a guide for weighing whether to delay dosing."
    ),
    "BP-02": _(
        "Rested blood pressure {bp_rest_sbp}/{bp_rest_dbp} (first reading "
        "{vit_sbp}/{vit_dbp}) is above {bp_review_sbp}/{bp_review_dbp}. A national ketamine "
        "label lists resting BP above 180/100 as a contraindication, and an alcohol-use "
        "ketamine trial did not enroll patients with systolic BP persistently above 180."
    ),
    "BP-03": _(
        "High blood pressure reported as not controlled (or unsure). Ketamine labeling warns "
        "against use where a significant rise in blood pressure would be a serious hazard."
    ),
    "HR-01": _(
        "Heart rate {vit_hr}/min is above {hr_review}. An alcohol-use ketamine trial used a "
        "heart rate above 130 as an exclusion."
    ),
    "HR-02": _("Heart rate {vit_hr}/min is above {hr_caution}. Ketamine raises heart rate."),
    "SPO2-01": _(
        "SpO2 {vit_spo2}% on room air is below {spo2_caution}%. Ketamine can depress "
        "breathing, and sessions require respiratory monitoring including pulse oximetry."
    ),
    "AGE-01": _(
        "Age {age} is below {age_min}. Esketamine is not labeled for patients under 18, and "
        "clinic programs are adult-only."
    ),
    "AGE-02": _(
        "Age {age} is above {age_info}. Age over 65 is a risk factor for complicated alcohol "
        "withdrawal; emergence reactions are less common in older patients."
    ),
    "WT-01": _("Weight not recorded; it is needed for mg/kg dosing."),
    "BMI-01": _(
        "BMI {bmi} is above {bmi_info}: relevant to sleep apnea (STOP-Bang) and airway management."
    ),
    "PRG-01": _(
        "Pregnancy reported, possible, or positive test ({found}). Ketamine and esketamine "
        "labeling does not recommend use in pregnancy."
    ),
    "PRG-02": _(
        "Currently breastfeeding. Esketamine labeling does not recommend breastfeeding during"
        " treatment, and trials excluded lactation."
    ),
    "PRG-03": _("{found}. Discuss pregnancy plans and contraception."),
    "PRG-04": _("No pregnancy test recorded for a patient who could become pregnant."),
    "CV-01": _(
        "Aneurysm reported (or unsure). Aneurysmal vascular disease is an esketamine "
        "contraindication, and a rise in blood pressure is a hazard."
    ),
    "CV-02": _(
        "Arteriovenous malformation reported (or unsure). It is an esketamine contraindication."
    ),
    "CV-03": _(
        "Bleeding in the brain reported (or unsure). A history of intracerebral hemorrhage is"
        " an esketamine contraindication."
    ),
    "CV-04": _(
        "Stroke or TIA reported (or unsure)[recent| within the last {recent_event_months} "
        "months][undated|, date not given]. Ketamine labels treat a prior cerebrovascular event as"
        " a hazard if blood pressure rises, and clinic and trial lists exclude a stroke "
        "within 6 months."
    ),
    "CV-05": _(
        "Heart attack reported (or unsure)[recent| within the last {recent_event_months} "
        "months][undated|, date not given]. Clinic and trial lists exclude a heart attack within 6"
        " months, and severe coronary disease is a UK label contraindication."
    ),
    "CV-06": _(
        "New, worsening or at-rest chest pain reported (or unsure): possible unstable angina."
    ),
    "CV-07": _(
        "Heart failure reported (or unsure). Ketamine can cause cardiac decompensation, and "
        "severe myocardial disease is a UK label contraindication."
    ),
    "CV-08": _(
        "Heart valve disease reported (or unsure). Esketamine labeling asks for a "
        "benefit-risk assessment in cardiovascular disease."
    ),
    "CV-09": _(
        "Heart rhythm problem reported (or unsure). Ketamine can cause arrhythmias, and some "
        "clinics exclude atrial fibrillation that is not rate-controlled."
    ),
    "CV-10": _(
        "History of hypertensive emergency or encephalopathy. Esketamine labeling calls for "
        "more intensive blood-pressure monitoring."
    ),
    "ECG-01": _(
        "QTc {ecg_qtc_ms} ms is above [female|{qtc_caution_female} ms]"
        "[other|{qtc_caution_male} ms]. Some ketamine clinics exclude prolonged QT."
    ),
    "NEU-01": _(
        "Brain swelling, raised pressure inside the head, brain mass, hydrocephalus or shunt "
        "reported (or unsure). Ketamine can raise intracranial pressure, and labeling advises"
        " against use where that rise is a serious risk."
    ),
    "NEU-02": _(
        "Head injury that is recent, of unknown date, or still causing symptoms ({found}). A "
        "trial excluded head trauma within 6 months, and a clinic excludes symptomatic brain "
        "injury."
    ),
    "NEU-03": _(
        "Past head injury reported (or unsure). Esketamine labeling asks patients to disclose"
        " brain injury; assess its relevance."
    ),
    "NEU-04": _(
        "Seizure disorder reported (or unsure). Some clinics and trials exclude it, though "
        "emergency-medicine guidance found no clear added risk. Check for theophylline or "
        "aminophylline."
    ),
    "NEU-05": _(
        "Dementia or other neurocognitive disorder reported (or unsure). Some clinics exclude it."
    ),
    "ALG-01": _(
        "Allergy or hypersensitivity to ketamine or esketamine reported (or unsure). Both "
        "products' labels list this as a contraindication."
    ),
    "KET-01": _(
        "Problem with previous ketamine or esketamine: {found}. Prior adverse or emergence "
        "reactions are listed as contraindications or trial exclusions."
    ),
    "KET-02": _(
        "Recent or current ketamine or esketamine treatment: {found}. Obtain treatment records."
    ),
    "ANE-01": _(
        "Previous complication with anesthesia or sedation reported (or unsure)[detail|: "
        "{anes_complications_detail}]."
    ),
    "MED-01": _(
        "Benzodiazepine listed: {meds}[dose|; recorded dose {med_benzo_dzeq} mg/day "
        "diazepam-equivalent]. Adds to sedation and may blunt the antidepressant response, "
        "more so above {benzo_dzeq_high} mg/day diazepam-equivalent. In a patient at risk of "
        "alcohol withdrawal it should not be stopped abruptly."
    ),
    "MED-02": _(
        "Other sedating medicine listed: {meds}. Adds to sedation and respiratory depression."
    ),
    "MED-03": _(
        "Opioid listed: {meds}. Adds to sedation and respiratory depression; some programs "
        "require a washout first."
    ),
    "MED-04": _(
        "Stimulant or sympathomimetic listed: {meds}. May raise blood pressure with ketamine;"
        " monitor BP closely."
    ),
    "MED-05": _("MAOI listed: {meds}. May raise blood pressure with ketamine; monitor BP closely."),
    "MED-06": _(
        "Lamotrigine listed: {meds}. May reduce ketamine's side effects; its effect on "
        "response is unknown."
    ),
    "MED-07": _(
        "Theophylline or aminophylline listed: {meds}. Together with ketamine it lowers the "
        "seizure threshold."
    ),
    "MED-08": _(
        "Strong CYP3A4 inducer or inhibitor listed: {meds}. May change ketamine exposure; "
        "pharmacist to check."
    ),
    "MED-09": _(
        "Blood-pressure-lowering medicine listed: {meds}. Interpret BP readings with this in "
        "mind; higher risk of low blood pressure."
    ),
    "MED-10": _(
        "Not recognized by the medication lexicon: {meds}. Pharmacist to verify these for "
        "interactions."
    ),
    "MED-11": _(
        'Not answered: medication history (no medicines listed and "takes no medications" not'
        " ticked)."
    ),
    "MED-12": _("Alcohol-use-disorder medicine listed: {meds}. Note for the treatment plan."),
    "MED-13": _("Medication list not confirmed with the patient. Confirm it before any dosing."),
    "PSY-01": _(
        "Psychotic experiences in the past month (or unsure). Ketamine causes dissociative "
        "and perceptual effects; labeling and guidance ask for careful assessment."
    ),
    "PSY-02": _(
        "History of psychosis or a psychotic-disorder diagnosis ({found}). Many programs and "
        "trials exclude it; assess carefully."
    ),
    "PSY-03": _(
        "Parent, sibling or child with a psychotic disorder (or unsure). One program excludes"
        " a first-degree family history of psychosis."
    ),
    "PSY-04": _(
        "Mania or hypomania symptoms in the past month (or unsure). Current mania is a clinic"
        " and trial exclusion, and manic symptoms have followed ketamine in a "
        "bipolar-depression trial."
    ),
    "PSY-05": _(
        "Bipolar disorder without a mood stabilizer (or unsure). Intake guidance expects "
        "bipolar patients to be on one."
    ),
    "PSY-06": _("PTSD: plan ahead for distress during sessions."),
    "PSY-07": _(
        "Severe personality disorder. One program lists it as an exclusion; consider its "
        "effect on sessions."
    ),
    "SUI-01": _(
        "Imminent-risk answer on the suicide screen: {found}. Start the clinic's "
        "suicide-safety protocol now and keep the patient under safety precautions until a "
        "mental-health professional has evaluated them."
    ),
    "SUI-02": _(
        "Suicidal thoughts with a method in mind. A clinician suicide-risk assessment is "
        "needed before continuing."
    ),
    "SUI-03": _(
        "Wish to be dead or non-specific suicidal thoughts in the past month. Clinician "
        "assessment, safety planning and crisis resources (US: call or text 988)."
    ),
    "SUI-04": _("Suicidal behavior more than 3 months ago. Include it in the risk assessment."),
    "SUI-05": _(
        "PHQ-9 item 9 (thoughts of death or self-harm) scored {phq9_9}. Follow up whatever "
        "the total score."
    ),
    "SCL-01": _("PHQ-9 total {phq9_total}: severe depressive symptoms."),
    "SCL-02": _(
        "GAD-7 total {gad7_total}: clinically significant anxiety that warrants further evaluation."
    ),
    "ALC-01": _(
        "AUDIT-C {audc_total}: positive screen. Expected in an alcohol program; document it."
    ),
    "ALC-02": _(
        "Recent alcohol: {found}. Alcohol adds to ketamine's sedation, and a "
        "ketamine-for-alcohol trial dosed at least 24 hours after the last drink. Assess for "
        "intoxication or withdrawal first."
    ),
    "ALC-03": _(
        "History of withdrawal seizure or delirium tremens (or unsure): {found}. High risk of"
        " complicated withdrawal; an alcohol-use ketamine trial excluded withdrawal seizures."
    ),
    "ALC-04": _(
        "Moderate or complicated withdrawal: {found}. Withdrawal needs managing first, and "
        "ketamine can cloud the assessment of delirium."
    ),
    "ALC-05": _("Mild withdrawal signs: {found}. Reassess before any dosing."),
    "ALC-06": _("Risk factors for complicated withdrawal: {found}."),
    "ALC-07": _("PAWSS {aw_pawss}: high risk of complicated withdrawal."),
    "ALC-08": _(
        "Naltrexone listed: {meds}. One small depression study found it blunted ketamine's "
        "antidepressant effect; a later trial in depression with alcohol use disorder found "
        "no difference."
    ),
    "SUB-01": _(
        "Non-medical ketamine or dissociative use in the past 12 months, or positive drug "
        "screen: {found}. Misuse risk; trials excluded this."
    ),
    "SUB-02": _("Non-medical ketamine or dissociative use more than 12 months ago."),
    "SUB-03": _(
        "Stimulant use in the past 30 days or positive drug screen: {found}. Adds to "
        "blood-pressure and heart-rate effects, and a clinic excludes active cocaine use. "
        "Check a positive screen against prescribed stimulants."
    ),
    "SUB-04": _("Stimulant use in the past 12 months."),
    "SUB-05": _(
        "Non-prescribed opioids or sedatives in the past 30 days: {found}. Sedation and "
        "breathing risk, and possible withdrawal from them."
    ),
    "SUB-06": _(
        "Hallucinogen use in the past 12 months. An alcohol-use ketamine trial excluded "
        "hallucinogen use disorder."
    ),
    "SUB-07": _(
        "Active substance use or current treatment: {found}. Esketamine labeling advises "
        "careful consideration and monitoring for misuse."
    ),
    "LIV-01": _(
        "Cirrhosis, or liver tests at 3 times the upper limit of normal or more. Severe liver"
        " disease appears in consensus contraindication lists, and esketamine is not "
        "recommended in severe hepatic impairment."
    ),
    "LIV-02": _(
        "Liver condition or mildly raised liver tests: {found}. Repeated ketamine can cause "
        "cholestatic liver injury, and moderate impairment may need longer monitoring."
    ),
    "LIV-03": _(
        "Liver tests not done. Ketamine labeling advises baseline and periodic liver tests, "
        "including ALP and GGT, with repeated dosing."
    ),
    "REN-01": _(
        "Kidney disease reported (or unsure): {found}. Renal tests are part of pre-treatment "
        "standards, and an alcohol-use trial excluded renal failure."
    ),
    "RES-01": _(
        "Untreated sleep apnea, or STOP-Bang score {stopbang_score} (high risk): {found}. "
        "Sleep-apnea screening is recommended before ketamine, and one alcohol-use trial "
        "excluded sleep apnea."
    ),
    "RES-02": _("STOP-Bang score {stopbang_score}: intermediate risk of sleep apnea."),
    "RES-03": _(
        "Lung condition: {found}. Ketamine carries respiratory-depression and airway risks."
    ),
    "RES-04": _(
        "STOP-Bang is incomplete: the score is at least {stopbang_score}; not scored: "
        "{stopbang_unknown}. Complete these items (for example, measure the neck) for a full "
        "score."
    ),
    "URO-01": _(
        "Urinary symptoms in the past month: {found}. Record them as a baseline and watch for"
        " ketamine-associated cystitis."
    ),
    "URO-02": _(
        "Previous ketamine-related or interstitial/ulcerative cystitis reported (or unsure)."
    ),
    "EYE-01": _("Eye condition: {found}. Ketamine can raise the pressure inside the eye."),
    "EYE-02": _("Controlled glaucoma. Ketamine can raise the pressure inside the eye."),
    "END-01": _(
        "Untreated or uncontrolled overactive thyroid (or unsure). A national ketamine label "
        "lists it as a contraindication, and an alcohol-use trial excluded thyrotoxicosis."
    ),
    "END-02": _(
        "Thyroid condition or thyroid hormone: {found}. Thyroid hormones raise the risk of "
        "high blood pressure and fast heart rate with ketamine."
    ),
    "POR-01": _(
        "Porphyria reported (or unsure). Emergency-medicine guidance advises caution with ketamine."
    ),
    "LOG-01": _(
        "No responsible adult escort, or will not avoid driving until the next day. Patients "
        "must leave with a responsible adult and must not drive until the next day."
    ),
    "LOG-02": _(
        "{log_last_solid_h} hours since solid food; the clinic's fasting setting is "
        "{npo_solid_hours} hours."
    ),
    "CAP-01": _("Capacity to consent not established ({log_capacity})."),
    "CON-01": _(
        "The patient did not agree to answer the screening questions, so the answers may be "
        "incomplete."
    ),
    "UNS-01": _('Answered "unsure" on a core safety question: {labels}. Clinician to clarify.'),
    "MIS-01": _("Not answered: {labels}."),
    "MIS-02": _("Not answered: {labels}."),
    "MIS-03": _("Not answered: {labels}."),
    "MIS-04": _("Not answered: {labels}."),
    "MIS-05": _("Not answered: {labels}."),
    "MIS-06": _("Not answered: {labels}."),
}

# ---------------------------------------------------------------------------
# The table as objects


_VARIANT = re.compile(r"\[(\w+)\|([^\]]*)\]")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    urgent: bool
    basis: tuple
    message: str
    condition: object = field(repr=False, compare=False)
    variants: dict = field(default_factory=dict, repr=False, compare=False)
    # The message with each "[name|text]" replaced by a "{_v_name}" placeholder.
    template: str = field(init=False, repr=False, compare=False)
    variant_texts: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        texts = dict(_VARIANT.findall(self.message))
        if set(texts) != set(self.variants):
            raise ValueError(f"{self.id}: message variants and conditions differ")
        object.__setattr__(self, "template", _VARIANT.sub(r"{_v_\1}", self.message))
        object.__setattr__(self, "variant_texts", texts)


def _build():
    rules = []
    for rule_id, severity, basis, condition in _TABLE:
        rules.append(
            Rule(
                id=rule_id,
                severity=REVIEW if severity == URGENT else severity,
                urgent=severity == URGENT,
                basis=tuple(basis.split()),
                message=MESSAGES[rule_id],
                condition=condition,
                variants=_VARIANTS.get(rule_id, {}),
            )
        )
    return tuple(rules)


RULES = _build()
RULES_BY_ID = {r.id: r for r in RULES}
# Urgent first, then review, caution, info; table order within each.
_OUTPUT_ORDER = tuple(
    sorted(RULES, key=lambda r: (not r.urgent, SEVERITY_ORDER[r.severity], RULES.index(r)))
)
assert len(RULES) == len(RULES_BY_ID) == len(MESSAGES) == 102


def rule(rule_id):
    """Return the rule with ``rule_id``."""
    return RULES_BY_ID[rule_id]


# ---------------------------------------------------------------------------
# Messages (INSTRUMENT.md 6.2)


def _label(code):
    if code in DERIVED_LABELS:
        return DERIVED_LABELS[code]
    q = instrument.QUESTIONS.get(code)
    return q.label if q is not None else code


def _question_type(code):
    q = instrument.QUESTIONS.get(code)
    return q.type if q is not None else None


def _display(code, value, now):
    if value is None:
        return _("not calculated") if code in DERIVED_LABELS else _("not recorded")
    if isinstance(value, list | tuple) and code not in instrument.QUESTIONS:
        return ", ".join(str(v) for v in value)
    q = instrument.QUESTIONS.get(code)
    if q is None:
        return str(value)
    try:
        if q.type == instrument.SCALE:
            return f"{value} ({q.choice_label(value)})"
        return instrument.display_value(code, value, tz=now.tzinfo)
    except (AttributeError, KeyError, TypeError, ValueError):
        return str(value)


def _found(evidence, now):
    several_codes = len({item.get("code") for item in evidence}) > 1
    parts = []
    for item in evidence:
        if "medication" in item:
            parts.append(item["medication"])
            continue
        code = item["code"]
        label = _label(code)
        if item.get("absent"):
            text = _("not given")
        else:
            text = _display(code, item["value"], now)
            if "hours_since" in item:
                text = _("{when} ({hours} hours before screening)").format(
                    when=text, hours=item["hours_since"]
                )
            if _question_type(code) == instrument.MULTI and not several_codes:
                parts.append(text)
                continue
        parts.append(f"{label} {text}" if label.endswith("?") else f"{label}: {text}")
    return "; ".join(parts)


class _Fields(dict):
    """Placeholder values, computed only when a template asks for them."""

    def __init__(self, rule, context, evidence):
        super().__init__()
        self.rule = rule
        self.context = context
        self.evidence = evidence

    def __missing__(self, key):
        c = self.context
        if key == "found":
            return _found(self.evidence, c.now)
        if key == "meds":
            return ", ".join(i["medication"] for i in self.evidence if "medication" in i)
        if key == "labels":
            return "; ".join(_label(i["code"]) for i in self.evidence if "code" in i)
        if key.startswith("_v_"):
            name = key[3:]
            if self.rule.variants[name](c) is None:
                return ""
            return self.rule.variant_texts[name].format_map(self)
        if key in c.t:
            return str(c.t[key])
        return _display(key, c.values.get(key), c.now)


def _tidy(message):
    # A question label ending in "?" needs no full stop after it.
    return message.replace("?.", "?")


_PLAIN = frozenset({type(None), bool, int, float, str})


def _jsonable(value):
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _unique(evidence):
    if len(evidence) < 2:
        return evidence
    seen = set()
    result = []
    for item in evidence:
        key = repr(item)
        if key not in seen:
            seen.add(key)
            result.append(item)
    return result


# ---------------------------------------------------------------------------
# Evaluation (INSTRUMENT.md 6.1)


def evaluate(answers, *, now, thresholds=None, urgent_only=False):
    """Return the flags raised by ``answers`` at ``now``, urgent first, then by severity.

    With ``urgent_only``, return only the urgent flags (what the wizard's banner
    shows on every step), without evaluating the other rules.
    """
    today = _screening_date(now)
    t = _thresholds(thresholds)
    derived, rows = _derive(answers, today, t)
    context = _Context(answers, derived, rows, t, now, today)
    flags = []
    for r in _OUTPUT_ORDER:
        if urgent_only and not r.urgent:
            break  # urgent rules come first
        evidence = context.fires(r.id)
        if evidence is None:
            continue
        evidence = _unique(evidence)
        flags.append(
            Flag(
                rule_id=r.id,
                severity=r.severity,
                urgent=r.urgent,
                message=_tidy(r.template.format_map(_Fields(r, context, evidence))),
                basis=r.basis,
                evidence=tuple(
                    {key: _jsonable(value) for key, value in item.items()} for item in evidence
                ),
            )
        )
    return flags
