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


def encode(values):
    """Return a JSON-safe copy of a threshold mapping (decimals as strings)."""
    return {
        name: str(value) if isinstance(value, Decimal) else value for name, value in values.items()
    }


def decode(data):
    """Return a threshold mapping from its JSON form."""
    return {name: to_number(value) for name, value in data.items()}
