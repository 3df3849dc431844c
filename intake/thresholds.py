"""Named, configurable thresholds (INSTRUMENT.md section 5) and their consistency checks.

Pure: no ORM or settings. The clinic's values in force live in ``ThresholdSet``
rows; this module only knows the shipped defaults and how to check a mapping.
"""

from decimal import Decimal

# name: (default, unit, used by)
SPEC = {
    "age_min": (18, "years", "AGE-01"),
    "age_info": (65, "years", "AGE-02, ALC-06"),
    "bp_caution_sbp": (140, "mmHg", "repeat BP branching, BP-01"),
    "bp_caution_dbp": (90, "mmHg", "repeat BP branching, BP-01"),
    "bp_review_sbp": (180, "mmHg", "BP-02"),
    "bp_review_dbp": (100, "mmHg", "BP-02"),
    "hr_review": (130, "beats/min", "HR-01, HR-02"),
    "hr_caution": (100, "beats/min", "HR-02"),
    "spo2_caution": (94, "%", "SPO2-01"),
    "qtc_caution_male": (470, "ms", "ECG-01 (male, intersex, not stated)"),
    "qtc_caution_female": (480, "ms", "ECG-01 (female)"),
    "recent_event_months": (6, "months", "CV-04, CV-05, NEU-02"),
    "last_drink_hours": (24, "hours", "ALC-02"),
    "ciwa_review": (10, "points", "ALC-04, ALC-05"),
    "audc_positive_male": (4, "points", "ALC-01"),
    "audc_positive_other": (3, "points", "ALC-01 (female, intersex, not stated)"),
    "phq9_severe": (20, "points", "SCL-01"),
    "gad7_significant": (10, "points", "SCL-02"),
    "stopbang_high": (5, "points", "RES-01, RES-02, RES-04"),
    "stopbang_intermediate": (3, "points", "RES-02, RES-04"),
    "stopbang_bmi": (35, "kg/m²", "STOP-Bang item B"),
    "stopbang_age": (50, "years", "STOP-Bang item A"),
    "stopbang_neck_cm": (40, "cm", "STOP-Bang item N"),
    "bmi_info": (35, "kg/m²", "BMI-01"),
    "withdrawal_episodes": (2, "episodes", "ALC-06"),
    "pawss_review": (4, "points", "ALC-07"),
    "npo_solid_hours": (6, "hours", "LOG-02"),
    "benzo_dzeq_high": (8, "mg/day diazepam-equivalent", "MED-01 (message)"),
}

DEFAULTS = {name: default for name, (default, _unit, _used) in SPEC.items()}

# What each threshold does, in the words of the rule's comparison (INSTRUMENT.md
# section 6: "above" is >, "at or above" is >=, "below" and "fewer than" are <),
# for the clinic admin who edits it. The notes in brackets are section 5's.
VALIDATED_TOOL = " Part of the validated STOP-Bang tool: change only with it."
UNVERIFIED = " Unverified default: a clinician signs it off before go-live."
DESCRIPTIONS = {
    "age_min": "AGE-01 flags a patient younger than this.",
    "age_info": "AGE-02 flags a patient older than this; ALC-06 too, with daily drinking.",
    "bp_caution_sbp": "Systolic above this: the repeat reading is asked, and BP-01 flags it.",
    "bp_caution_dbp": "Diastolic above this: the repeat reading is asked, and BP-01 flags it.",
    "bp_review_sbp": "BP-02 flags a rested systolic above this.",
    "bp_review_dbp": "BP-02 flags a rested diastolic above this.",
    "hr_review": "HR-01 flags a heart rate above this; HR-02 covers those up to it.",
    "hr_caution": "HR-02 flags a heart rate above this, up to the HR-01 value." + UNVERIFIED,
    "spo2_caution": "SPO2-01 flags a saturation below this." + UNVERIFIED,
    "qtc_caution_male": "ECG-01 flags a QTc above this (sex at birth male, intersex, not stated)."
    + UNVERIFIED,
    "qtc_caution_female": "ECG-01 flags a QTc above this (sex at birth female)." + UNVERIFIED,
    "recent_event_months": "A stroke, heart attack or head injury this many months ago or less "
    "counts as recent (CV-04, CV-05, NEU-02).",
    "last_drink_hours": "ALC-02 flags a last drink fewer than this many hours ago.",
    "ciwa_review": "ALC-04 flags a CIWA-Ar at or above this; ALC-05 one from 1 to below it.",
    "audc_positive_male": "ALC-01 flags an AUDIT-C at or above this (sex at birth male).",
    "audc_positive_other": "ALC-01 flags an AUDIT-C at or above this (sex at birth female, "
    "intersex, not stated).",
    "phq9_severe": "SCL-01 flags a PHQ-9 total at or above this.",
    "gad7_significant": "SCL-02 flags a GAD-7 total at or above this.",
    "stopbang_high": "RES-01 flags a STOP-Bang score at or above this (high risk); RES-02 "
    "(intermediate) and RES-04 (incomplete) only scores below it.",
    "stopbang_intermediate": "RES-02 flags a STOP-Bang score at or above this and below high; "
    "RES-04 an incomplete score that could reach it.",
    "stopbang_bmi": "STOP-Bang item B scores a BMI above this." + VALIDATED_TOOL,
    "stopbang_age": "STOP-Bang item A scores an age above this." + VALIDATED_TOOL,
    "stopbang_neck_cm": "STOP-Bang item N scores a neck above this." + VALIDATED_TOOL,
    "bmi_info": "BMI-01 flags a BMI above this.",
    "withdrawal_episodes": "ALC-06 flags this many previous withdrawal episodes or more."
    + UNVERIFIED,
    "pawss_review": "ALC-07 flags a PAWSS total at or above this." + UNVERIFIED,
    "npo_solid_hours": "LOG-02 flags solid food fewer than this many hours ago." + UNVERIFIED,
    "benzo_dzeq_high": "Named in MED-01's message: benzodiazepine doses above this weigh more.",
}

# Units of whole counts: calendar months (``within_months``), years of age, score
# points and episodes. A fraction of one has no meaning, so the editor refuses it.
WHOLE_UNITS = frozenset({"months", "years", "points", "episodes"})

# (greater, lesser): the first must be strictly greater than the second.
CONSISTENCY = (
    ("bp_review_sbp", "bp_caution_sbp"),
    ("bp_review_dbp", "bp_caution_dbp"),
    ("hr_review", "hr_caution"),
    ("stopbang_high", "stopbang_intermediate"),
)

# (lowest, highest) value each threshold may take, inclusive: the range of the
# answer or score it is compared with (INSTRUMENT.md section 3's hard ranges and
# the instruments' maximum scores), so a typo cannot set a cut-off no answer can
# reach (a flag switched off for everyone) or one every answer passes. Times with
# no answer range (months, hours) keep to a plausible clinical span.
BOUNDS = {
    "age_min": (0, 120),  # date of birth: age 0-120
    "age_info": (0, 120),
    "bp_caution_sbp": (50, 300),  # vit_sbp
    "bp_caution_dbp": (20, 200),  # vit_dbp
    "bp_review_sbp": (50, 300),
    "bp_review_dbp": (20, 200),
    "hr_review": (30, 220),  # vit_hr
    "hr_caution": (30, 220),
    "spo2_caution": (50, 100),  # vit_spo2
    "qtc_caution_male": (300, 700),  # ecg_qtc_ms
    "qtc_caution_female": (300, 700),
    "recent_event_months": (1, 120),
    "last_drink_hours": (1, 168),
    "ciwa_review": (1, 67),  # CIWA-Ar total
    "audc_positive_male": (1, 12),  # AUDIT-C total
    "audc_positive_other": (1, 12),
    "phq9_severe": (1, 27),  # PHQ-9 total
    "gad7_significant": (1, 21),  # GAD-7 total
    "stopbang_high": (1, 8),  # STOP-Bang score
    "stopbang_intermediate": (1, 8),
    "stopbang_bmi": (10, 100),
    "stopbang_age": (0, 120),
    "stopbang_neck_cm": (20, 80),  # vit_neck_cm
    "bmi_info": (10, 100),
    "withdrawal_episodes": (1, 100),  # aw_prior_episodes
    "pawss_review": (1, 10),  # PAWSS total
    "npo_solid_hours": (1, 168),  # log_last_solid_h
    "benzo_dzeq_high": (1, 500),
}


def with_defaults(overrides=None):
    """Return the full threshold mapping: the defaults updated by ``overrides``."""
    values = dict(DEFAULTS)
    if overrides:
        unknown = set(overrides) - set(DEFAULTS)
        if unknown:
            raise KeyError(f"Unknown threshold(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
    return values


def to_number(value):
    """Return ``value`` as an int when whole, else as a Decimal."""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return int(number)
    return number


def consistency_errors(values):
    """Return ``{name: message}`` for every value out of its bounds or impossible combination."""
    errors = {}
    for name, (lowest, highest) in BOUNDS.items():
        if not lowest <= to_number(values[name]) <= highest:
            unit = SPEC[name][1]
            errors[name] = (
                f"{name} must be from {lowest} to {highest} {unit}, the range of what it is "
                "compared with: outside it, its flag would never fire, or fire for everyone."
            )
    for greater, lesser in CONSISTENCY:
        if greater in errors or lesser in errors:
            continue
        if to_number(values[greater]) <= to_number(values[lesser]):
            errors[greater] = f"{greater} must be greater than {lesser} ({values[lesser]})."
    return errors


def changes(old, new):
    """Return ``{name: (old value, new value)}`` of every threshold that differs, in order."""
    return {
        name: (old[name], new[name])
        for name in SPEC
        if to_number(old[name]) != to_number(new[name])
    }


def encode(values):
    """Return a JSON-safe copy of a threshold mapping (decimals as strings)."""
    return {
        name: str(value) if isinstance(value, Decimal) else value for name, value in values.items()
    }


def decode(data):
    """Return a threshold mapping from its JSON form."""
    return {name: to_number(value) for name, value in data.items()}
