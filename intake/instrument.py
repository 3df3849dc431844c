"""Instrument v1 as data: every step and question of INSTRUMENT.md, and the answer codec.

This is the one definition the wizard forms, review page, PDF, FHIR export and
rules read. Pure: no ORM, request or settings.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

INSTRUMENT_VERSION = "1.0"
QUESTIONNAIRE_URL = "https://intake.example.org/fhir/Questionnaire/ketamine-intake"

# Question types (INSTRUMENT.md 2.1).
YNU = "ynu"
YN = "yn"
SINGLE = "single"
MULTI = "multi"
SCALE = "scale"
INT = "int"
DECIMAL = "decimal"
DATE = "date"
DATETIME = "datetime"
TEXT = "text"
BOOL = "bool"
MED_LIST = "med_list"

EXCLUSIVE_KEYS = frozenset({"none", "unsure", "not_done", "negative"})


# ---------------------------------------------------------------------------
# Conditions ("shown when", INSTRUMENT.md 2.6). Each is callable with
# (answers, thresholds) and serialises to JSON for the browser and FHIR, with
# threshold names resolved to the values in force.


def _resolve(value, thresholds):
    if isinstance(value, str):
        return thresholds[value]
    return value


class Condition:
    """Base class of the small condition language used by "shown when"."""

    def __call__(self, answers, thresholds):
        raise NotImplementedError

    def codes(self):
        """Return the question codes this condition reads."""
        raise NotImplementedError

    def to_json(self, thresholds):
        raise NotImplementedError


@dataclass(frozen=True)
class Eq(Condition):
    code: str
    value: Any

    def __call__(self, answers, thresholds):
        return self.code in answers and answers[self.code] == self.value

    def codes(self):
        return {self.code}

    def to_json(self, thresholds):
        return {"op": "in", "code": self.code, "values": [self.value]}


@dataclass(frozen=True)
class In(Condition):
    code: str
    values: tuple

    def __call__(self, answers, thresholds):
        return self.code in answers and answers[self.code] in self.values

    def codes(self):
        return {self.code}

    def to_json(self, thresholds):
        return {"op": "in", "code": self.code, "values": list(self.values)}


@dataclass(frozen=True)
class IncludesAny(Condition):
    """``x includes k`` / ``x includes any of (a, b)`` for multi questions."""

    code: str
    keys: tuple

    def __call__(self, answers, thresholds):
        selected = answers.get(self.code)
        return bool(selected) and any(key in selected for key in self.keys)

    def codes(self):
        return {self.code}

    def to_json(self, thresholds):
        return {"op": "includes_any", "code": self.code, "values": list(self.keys)}


def Includes(code, key):  # noqa: N802 - reads like the spec's notation
    """Return the condition ``code includes key``."""
    return IncludesAny(code, (key,))


_OPS = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True)
class Compare(Condition):
    """``x > n`` where n is a number or a threshold name."""

    code: str
    op: str
    value: Any

    def __call__(self, answers, thresholds):
        value = answers.get(self.code)
        if value is None or isinstance(value, bool | str):
            return False
        try:
            return _OPS[self.op](value, _resolve(self.value, thresholds))
        except (TypeError, ArithmeticError):  # not a number, or Decimal("NaN"): false (2.6)
            return False

    def codes(self):
        return {self.code}

    def to_json(self, thresholds):
        return {
            "op": "compare",
            "code": self.code,
            "cmp": self.op,
            "value": float(_resolve(self.value, thresholds)),
        }


@dataclass(frozen=True)
class Not(Condition):
    condition: Condition

    def __call__(self, answers, thresholds):
        return not self.condition(answers, thresholds)

    def codes(self):
        return self.condition.codes()

    def to_json(self, thresholds):
        return {"op": "not", "arg": self.condition.to_json(thresholds)}


@dataclass(frozen=True)
class AnyOf(Condition):
    conditions: tuple

    def __call__(self, answers, thresholds):
        return any(condition(answers, thresholds) for condition in self.conditions)

    def codes(self):
        return set().union(*(condition.codes() for condition in self.conditions))

    def to_json(self, thresholds):
        return {"op": "any", "args": [c.to_json(thresholds) for c in self.conditions]}


@dataclass(frozen=True)
class AllOf(Condition):
    conditions: tuple

    def __call__(self, answers, thresholds):
        return all(condition(answers, thresholds) for condition in self.conditions)

    def codes(self):
        return set().union(*(condition.codes() for condition in self.conditions))

    def to_json(self, thresholds):
        return {"op": "all", "args": [c.to_json(thresholds) for c in self.conditions]}


# Named conditions (INSTRUMENT.md 2.6).
PREGNANCY_STEP_APPLIES = Not(Eq("sex_at_birth", "male"))
BP_REPEAT_NEEDED = AnyOf(
    (Compare("vit_sbp", ">", "bp_caution_sbp"), Compare("vit_dbp", ">", "bp_caution_dbp"))
)
ALCOHOL_QUESTIONS_APPLY = AnyOf((Compare("audc_1", ">", 0), Includes("indication", "aud")))
STOPBANG_ASKED = In("resp_osa", ("no", "unsure"))


# ---------------------------------------------------------------------------
# Questions and steps


@dataclass(frozen=True)
class Choice:
    key: Any  # str for single/multi, int for scale
    label: str


@dataclass(frozen=True)
class Question:
    """One question of the instrument.

    ``required`` means "must be answered when shown" (INSTRUMENT.md 2.5), except
    for ``bool`` questions: a checkbox is stored as True or False whenever its
    step is saved, so it is always present once saved; ``required`` on a bool
    means it must be True (``staff_attestation``), and ``required=False`` means
    either value is a valid answer (``med_none``).
    """

    code: str
    label: str
    type: str
    required: bool = True
    choices: tuple = ()
    shown_when: Condition | None = None
    basis: str = ""
    help_text: str = ""
    # Hard range (int, decimal) and plausibility band (vitals only).
    min_value: Any = None
    max_value: Any = None
    plausible_min: Any = None
    plausible_max: Any = None
    decimal_places: int | None = None
    # Text length limits.
    min_length: int | None = None
    max_length: int | None = None
    # Must be strictly lower than the answer to this code (diastolic < systolic).
    less_than: str | None = None
    # Dates of past events: not after the screening date, not before date_of_birth.
    past_event: bool = False
    # Not later than the screening date / now (date of birth, last drink).
    not_future: bool = False

    def choice_label(self, key):
        """Return the label of choice ``key`` (the key itself if unknown)."""
        for choice in self.choices:
            if choice.key == key:
                return choice.label
        return str(key)


@dataclass(frozen=True)
class Step:
    slug: str
    title: str
    questions: tuple
    applies_when: Condition | None = None
    intro: str = ""
    codes: tuple = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "codes", tuple(q.code for q in self.questions))


def _choices(*pairs):
    return tuple(Choice(key, label) for key, label in pairs)


# "(clinician)" in a label (INSTRUMENT.md 3): measured or entered by a clinician.
CLINICIAN_HELP = "Measured or entered by a clinician; the patient does not self-report this item."

YNU_CHOICES = _choices(("yes", "Yes"), ("no", "No"), ("unsure", "Unsure"))
YN_CHOICES = _choices(("yes", "Yes"), ("no", "No"))


def ynu(code, label, shown_when=None, basis="", **kwargs):
    """Return a Yes / No / Unsure question."""
    return Question(
        code, label, YNU, choices=YNU_CHOICES, shown_when=shown_when, basis=basis, **kwargs
    )


def yn(code, label, shown_when=None, basis="", **kwargs):
    """Return a Yes / No question."""
    return Question(
        code, label, YN, choices=YN_CHOICES, shown_when=shown_when, basis=basis, **kwargs
    )


PATIENT = Step(
    "patient",
    "Patient",
    (
        Question(
            "first_name", "First name", TEXT, min_length=1, max_length=100, basis="administrative"
        ),
        Question(
            "last_name", "Last name", TEXT, min_length=1, max_length=100, basis="administrative"
        ),
        Question("date_of_birth", "Date of birth", DATE, not_future=True, basis="E12, A5, L8"),
        Question(
            "mrn",
            "Clinic chart number (MRN)",
            TEXT,
            required=False,
            max_length=50,
            basis="administrative",
        ),
        Question(
            "sex_at_birth",
            "Sex assigned at birth (used for scoring cut-offs and to decide whether "
            "pregnancy questions apply)",
            SINGLE,
            choices=_choices(
                ("female", "Female"),
                ("male", "Male"),
                ("intersex", "Intersex"),
                ("not_stated", "Not stated"),
            ),
            basis="A1, L8, E7",
        ),
        Question(
            "indication",
            "Reason(s) for referral",
            MULTI,
            choices=_choices(
                ("aud", "Alcohol use disorder"),
                ("other_sud", "Other substance use disorder"),
                ("depression", "Depression (including treatment-resistant)"),
                ("bipolar_depression", "Bipolar depression"),
                ("ptsd", "PTSD"),
                ("ocd", "OCD"),
                ("anxiety", "Anxiety disorder"),
                ("other", "Other"),
            ),
            basis="C1, C6",
        ),
        Question(
            "indication_other",
            "Other reason for referral",
            TEXT,
            max_length=200,
            shown_when=Includes("indication", "other"),
            basis="C1",
        ),
    ),
)

VITALS = Step(
    "vitals",
    "Vital signs",
    (
        Question(
            "vit_sbp",
            "Seated systolic blood pressure, mmHg (clinician)",
            INT,
            min_value=50,
            max_value=300,
            plausible_min=70,
            plausible_max=250,
            basis="K1, E3, K12",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_dbp",
            "Seated diastolic blood pressure, mmHg (clinician)",
            INT,
            min_value=20,
            max_value=200,
            plausible_min=40,
            plausible_max=150,
            less_than="vit_sbp",
            basis="K1, E3, K12",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_bp_repeat_sbp",
            "Repeat systolic BP after at least 5 minutes' seated rest, mmHg (clinician)",
            INT,
            min_value=50,
            max_value=300,
            plausible_min=70,
            plausible_max=250,
            shown_when=BP_REPEAT_NEEDED,
            basis="E3, A10. The 5-minute rest is usual practice (unverified default).",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_bp_repeat_dbp",
            "Repeat diastolic BP after at least 5 minutes' seated rest, mmHg (clinician)",
            INT,
            min_value=20,
            max_value=200,
            plausible_min=40,
            plausible_max=150,
            less_than="vit_bp_repeat_sbp",
            shown_when=BP_REPEAT_NEEDED,
            basis="E3, K12",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_hr",
            "Heart rate, beats per minute (clinician)",
            INT,
            min_value=30,
            max_value=220,
            basis="A10, K3",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_spo2",
            "Oxygen saturation (SpO2) on room air, % (clinician)",
            INT,
            min_value=50,
            max_value=100,
            basis="E10, K5",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_weight_kg",
            "Weight, kg (clinician)",
            DECIMAL,
            decimal_places=1,
            min_value=Decimal("20.0"),
            max_value=Decimal("350.0"),
            basis="C1, A9 (mg/kg dosing), L8",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_height_cm",
            "Height, cm (clinician)",
            DECIMAL,
            decimal_places=1,
            min_value=Decimal("100.0"),
            max_value=Decimal("250.0"),
            basis="L8",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_neck_cm",
            "Neck circumference, cm (clinician; for STOP-Bang)",
            DECIMAL,
            required=False,
            decimal_places=1,
            min_value=Decimal("20.0"),
            max_value=Decimal("80.0"),
            basis="L8",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "vit_bac",
            "Breath alcohol today, g/dL (clinician)",
            DECIMAL,
            required=False,
            decimal_places=3,
            min_value=Decimal("0.000"),
            max_value=Decimal("0.500"),
            basis="A6, K13",
            help_text=CLINICIAN_HELP,
        ),
    ),
    intro="All vital signs are entered by a clinician.",
)

# INSTRUMENT-DATA: the remaining steps (pregnancy .. review), in wizard order.

PREGNANCY_FOLLOW_UP = In("preg_potential", ("yes", "unsure"))

PREGNANCY = Step(
    "pregnancy",
    "Pregnancy and breastfeeding",
    (
        ynu("preg_potential", "Could the patient become pregnant?", basis="E7, L5"),
        ynu(
            "preg_status",
            "Is the patient currently pregnant?",
            shown_when=PREGNANCY_FOLLOW_UP,
            basis="E7, K10, C3",
        ),
        ynu(
            "preg_planning",
            "Planning a pregnancy during the treatment period?",
            shown_when=PREGNANCY_FOLLOW_UP,
            basis="E7",
        ),
        ynu(
            "preg_contraception",
            "Using effective contraception?",
            shown_when=PREGNANCY_FOLLOW_UP,
            basis="L5, E7",
        ),
        ynu("preg_breastfeeding", "Currently breastfeeding or chestfeeding?", basis="E7, A11"),
        Question(
            "lab_preg_test",
            "Pregnancy test result today (clinician)",
            SINGLE,
            choices=_choices(
                ("not_done", "Not done"),
                ("negative", "Negative"),
                ("positive", "Positive"),
            ),
            shown_when=PREGNANCY_FOLLOW_UP,
            basis="E7, A11",
            help_text=CLINICIAN_HELP,
        ),
    ),
    applies_when=PREGNANCY_STEP_APPLIES,
)

CARDIOVASCULAR = Step(
    "cardiovascular",
    "Heart and blood pressure",
    (
        ynu("cv_htn", "Ever told they have high blood pressure?", basis="K1, E3"),
        ynu(
            "cv_htn_controlled",
            "Is the high blood pressure controlled on current treatment?",
            shown_when=Eq("cv_htn", "yes"),
            basis="C3, L1, A11",
        ),
        ynu(
            "cv_htn_enceph",
            "Ever had a hypertensive emergency or hypertensive encephalopathy (dangerously "
            "high BP with severe headache, confusion or vision change)?",
            basis="E3",
        ),
        ynu(
            "cv_aneurysm",
            "Aneurysm anywhere: the aorta (chest or abdomen), the brain, or arteries of the "
            "arms or legs?",
            basis="E1, C5",
        ),
        ynu(
            "cv_avm",
            "Arteriovenous malformation (an abnormal tangle of arteries and veins), for "
            "example in the brain?",
            basis="E1",
        ),
        ynu("cv_mi", "Ever had a heart attack?", basis="E9, L1, K11"),
        Question(
            "cv_mi_date",
            "Date of most recent heart attack (best estimate; leave blank if unknown)",
            DATE,
            required=False,
            past_event=True,
            shown_when=Eq("cv_mi", "yes"),
            basis="L1, A10",
        ),
        ynu(
            "cv_chest_pain",
            "Chest pain or angina that is new, getting worse, or comes on at rest?",
            basis="L1, K11",
        ),
        ynu("cv_hf", "Heart failure?", basis="E9, K3, K11"),
        ynu("cv_valve", "Heart valve disease?", basis="E9, E3"),
        ynu(
            "cv_arrhythmia",
            "Irregular, very fast or very slow heartbeat (including atrial fibrillation), "
            "especially with fainting, dizziness, chest pain or breathlessness?",
            basis="E9, L1, A11, K3",
        ),
        Question(
            "ecg_qtc_ms",
            "QTc from a recent ECG, ms (clinician; if available)",
            INT,
            required=False,
            min_value=300,
            max_value=700,
            basis="L1, C7",
            help_text=CLINICIAN_HELP,
        ),
    ),
)

NEUROLOGICAL = Step(
    "neurological",
    "Brain and nervous system",
    (
        ynu("neuro_ich", "Ever had bleeding in or around the brain?", basis="E1"),
        ynu("neuro_stroke_tia", "Ever had a stroke or a mini-stroke (TIA)?", basis="K11, K12, E9"),
        Question(
            "neuro_stroke_date",
            "Date of most recent stroke or TIA (best estimate; leave blank if unknown)",
            DATE,
            required=False,
            past_event=True,
            shown_when=Eq("neuro_stroke_tia", "yes"),
            basis="L1, A10",
        ),
        ynu(
            "neuro_icp",
            "Brain swelling or raised pressure inside the head, a brain tumor or other mass, "
            "hydrocephalus, or a brain shunt?",
            basis="E3, K6, C3, C4, C5",
        ),
        ynu(
            "neuro_tbi",
            "Ever had a head injury or concussion that caused loss of consciousness or needed "
            "medical care?",
            basis="E9, K11, A10, L2",
        ),
        Question(
            "neuro_tbi_date",
            "Date of most recent such head injury (best estimate; leave blank if unknown)",
            DATE,
            required=False,
            past_event=True,
            shown_when=Eq("neuro_tbi", "yes"),
            basis="A10",
        ),
        ynu(
            "neuro_tbi_symptoms",
            "Still having symptoms from it (headaches, memory or concentration problems, "
            "dizziness)?",
            shown_when=Eq("neuro_tbi", "yes"),
            basis="L2",
        ),
        ynu(
            "neuro_seizure",
            "Seizure disorder or epilepsy (other than seizures only during alcohol withdrawal)?",
            basis="L1, A10, C4",
        ),
        ynu("neuro_cog", "Dementia or another memory or neurocognitive disorder?", basis="L2"),
    ),
)

ALLERGIES = Step(
    "allergies",
    "Allergies and previous ketamine or anesthesia",
    (
        ynu(
            "alg_ketamine",
            "Allergy or hypersensitivity to ketamine or esketamine (Ketalar, Spravato)?",
            basis="K1, E1",
        ),
        Question(
            "alg_other",
            'Other drug allergies (type "none known" if there are none)',
            TEXT,
            min_length=1,
            max_length=500,
            basis="C6",
        ),
        ynu(
            "ket_prior_med",
            "Ever been given ketamine or esketamine by a clinician (anesthesia, pain, depression)?",
            basis="L10",
        ),
        Question(
            "ket_prior_adverse",
            "Problems with that ketamine or esketamine",
            MULTI,
            choices=_choices(
                ("none", "None"),
                ("emergence_or_hallucinations", "Distressing emergence reaction or hallucinations"),
                ("lasting_psychiatric_symptoms", "Psychiatric symptoms lasting days or longer"),
                ("severe_bp_rise", "Severe rise in blood pressure"),
                ("allergic_reaction", "Allergic reaction"),
                ("other", "Other"),
            ),
            shown_when=Eq("ket_prior_med", "yes"),
            basis="C5, A10, K4",
        ),
        ynu(
            "ket_recent_course",
            "Ketamine or esketamine treatment in the past 3 months?",
            shown_when=Eq("ket_prior_med", "yes"),
            basis="A10",
        ),
        ynu(
            "anes_complications", "Ever had complications with anesthesia or sedation?", basis="L10"
        ),
        Question(
            "anes_complications_detail",
            "What happened?",
            TEXT,
            min_length=1,
            max_length=500,
            shown_when=Eq("anes_complications", "yes"),
            basis="L10",
        ),
    ),
)

# Medication list limits (INSTRUMENT.md 2.4).
MED_MAX_ROWS = 50
MED_NAME_MAX = 200
MED_FIELD_MAX = 100
MED_ROW_KEYS = ("name", "dose", "frequency")

MEDICATIONS_LISTED = Not(Eq("med_none", True))

MEDICATIONS = Step(
    "medications",
    "Current medications",
    (
        # BOOL semantics: a checkbox, stored as True or False whenever the step is
        # saved, so "present" means the step was saved. required=False because an
        # unticked box is a valid answer; required on a BOOL means "must be True".
        Question(
            "med_none",
            "Patient takes no medications (prescription, over-the-counter, herbal or supplements)",
            BOOL,
            required=False,
            basis="C6",
        ),
        Question(
            "medications",
            "Current medications, one row per medicine: name, dose, how often. Include "
            "over-the-counter, herbal and supplements.",
            MED_LIST,
            shown_when=MEDICATIONS_LISTED,
            basis="C6, L10",
        ),
        Question(
            "med_benzo_dzeq",
            "If a benzodiazepine is taken: total daily dose as diazepam-equivalent, "
            "mg/day (clinician)",
            DECIMAL,
            required=False,
            decimal_places=1,
            min_value=Decimal("0.0"),
            max_value=Decimal("500.0"),
            shown_when=MEDICATIONS_LISTED,
            basis="M1",
            help_text="Always typed by a clinician; the app does not compute it, because "
            "dose and frequency are free text.",
        ),
        yn(
            "med_reviewed_with_patient",
            'Medication list (or "no medications") confirmed with the patient, not only copied '
            "from records?",
            basis="C6",
        ),
    ),
    intro="A clinician or pharmacist verifies the list. The review page shows, for each row, "
    'the medication classes it matched, or "not recognized".',
)

PSYCHIATRIC = Step(
    "psychiatric",
    "Psychiatric history",
    (
        Question(
            "psy_dx",
            "Psychiatric diagnoses ever made",
            MULTI,
            choices=_choices(
                ("mdd", "Major depressive disorder"),
                ("bipolar_1", "Bipolar I disorder"),
                ("bipolar_2", "Bipolar II disorder"),
                ("ptsd", "PTSD"),
                ("ocd", "OCD"),
                ("gad_anxiety", "Generalized anxiety or other anxiety disorder"),
                ("schizophrenia", "Schizophrenia"),
                ("schizoaffective", "Schizoaffective disorder"),
                ("other_psychotic", "Other psychotic disorder"),
                ("severe_personality_disorder", "Severe personality disorder"),
                ("neurocognitive", "Neurocognitive disorder (for example dementia)"),
                ("other", "Other"),
                ("none", "None"),
            ),
            basis="C1, L1, L2, L3",
        ),
        ynu(
            "psy_psychosis_ever",
            "Ever seen or heard things others did not, or held beliefs others said were "
            "untrue, while not intoxicated or withdrawing?",
            basis="E4, C1, C5",
        ),
        ynu(
            "psy_psychosis_now",
            "Any such experiences in the past month?",
            shown_when=In("psy_psychosis_ever", ("yes", "unsure")),
            basis="E4, A11",
        ),
        ynu(
            "psy_fam_psychosis",
            "Parent, brother or sister, or child with schizophrenia or another psychotic disorder?",
            basis="L3",
        ),
        ynu(
            "psy_mania_recent",
            "Symptoms of mania or hypomania in the past month (for example, days of unusually "
            "high or irritable mood with little need for sleep)?",
            basis="L1, A11, L9",
        ),
        ynu(
            "psy_mood_stabilizer",
            "Currently taking a mood stabilizer?",
            shown_when=AnyOf(
                (
                    IncludesAny("psy_dx", ("bipolar_1", "bipolar_2")),
                    Includes("indication", "bipolar_depression"),
                )
            ),
            basis="C8",
        ),
        Question(
            "psy_ad_trials",
            "Number of adequate antidepressant trials in the current episode (best estimate)",
            INT,
            min_value=0,
            max_value=20,
            shown_when=IncludesAny("indication", ("depression", "bipolar_depression")),
            basis="C1, L2",
        ),
        Question(
            "psy_neuromod",
            "Previous ECT or TMS",
            MULTI,
            choices=_choices(
                ("none", "None"),
                ("ect", "Electroconvulsive therapy (ECT)"),
                ("tms", "Transcranial magnetic stimulation (TMS)"),
            ),
            shown_when=IncludesAny("indication", ("depression", "bipolar_depression")),
            basis="C1",
        ),
    ),
)


def scale(code, label, anchors, shown_when=None, basis="", **kwargs):
    """Return a scored scale question with int anchors."""
    return Question(
        code, label, SCALE, choices=anchors, shown_when=shown_when, basis=basis, **kwargs
    )


# PHQ-9 and GAD-7 anchors (INSTRUMENT.md 3.9).
FREQUENCY_ANCHORS = _choices(
    (0, "Not at all"),
    (1, "Several days"),
    (2, "More than half the days"),
    (3, "Nearly every day"),
)

PHQ9_ITEMS = (
    ("phq9_1", "Little interest or enjoyment in doing things"),
    ("phq9_2", "Feeling low, depressed or hopeless"),
    ("phq9_3", "Trouble getting to sleep or staying asleep, or sleeping too much"),
    ("phq9_4", "Feeling tired or low on energy"),
    ("phq9_5", "Poor appetite or overeating"),
    (
        "phq9_6",
        "Feeling bad about oneself: like a failure, or like having let oneself or "
        "one's family down",
    ),
    ("phq9_7", "Trouble concentrating, for example on reading or television"),
    (
        "phq9_8",
        "Moving or speaking so slowly that others could notice, or the opposite: so "
        "fidgety or restless that moving around much more than usual",
    ),
    ("phq9_9", "Thoughts of being better off dead, or of hurting oneself in some way"),
)

GAD7_ITEMS = (
    ("gad7_1", "Feeling nervous, anxious or on edge"),
    ("gad7_2", "Being unable to stop or control worrying"),
    ("gad7_3", "Worrying too much about many different things"),
    ("gad7_4", "Difficulty relaxing"),
    ("gad7_5", "So restless that sitting still is hard"),
    ("gad7_6", "Becoming easily annoyed or irritable"),
    ("gad7_7", "Feeling afraid that something awful might happen"),
)

SUICIDAL_THOUGHTS = Eq("cssrs_2", "yes")

MOOD = Step(
    "mood",
    "Depression, anxiety and suicide-risk screen",
    (
        *(scale(code, label, FREQUENCY_ANCHORS, basis="S4") for code, label in PHQ9_ITEMS),
        *(scale(code, label, FREQUENCY_ANCHORS, basis="S5") for code, label in GAD7_ITEMS),
        yn(
            "cssrs_1",
            "Past month: has the patient wished they were dead, or wished they could go to "
            "sleep and not wake up?",
            basis="S1",
        ),
        yn(
            "cssrs_2",
            "Past month: has the patient actually had thoughts of killing themself?",
            basis="S1",
        ),
        yn(
            "cssrs_3",
            "Past month: has the patient thought about how they might do it?",
            shown_when=SUICIDAL_THOUGHTS,
            basis="S1",
        ),
        yn(
            "cssrs_4",
            "Past month: has the patient had these thoughts with some intention of acting on them?",
            shown_when=SUICIDAL_THOUGHTS,
            basis="S1, S2",
        ),
        yn(
            "cssrs_5",
            "Past month: has the patient started to work out, or worked out, the details of "
            "how to do it, and do they intend to carry out that plan?",
            shown_when=SUICIDAL_THOUGHTS,
            basis="S1, S2",
        ),
        yn(
            "cssrs_6",
            "Has the patient ever done anything, started to do anything, or prepared to do "
            "anything to end their life?",
            basis="S1",
        ),
        yn(
            "cssrs_6_3mo",
            "Was any of that in the past 3 months?",
            shown_when=Eq("cssrs_6", "yes"),
            basis="S1, S2",
        ),
    ),
    intro="Three screeners, one after another: depression (PHQ-9) and anxiety (GAD-7) over "
    "the past 2 weeks, then the suicide-risk screener (past month, then lifetime behavior).",
)

DRINKS = Compare("audc_1", ">", 0)

ALCOHOL = Step(
    "alcohol",
    "Alcohol use and withdrawal",
    (
        scale(
            "audc_1",
            "How often does the patient have a drink containing alcohol?",
            _choices(
                (0, "Never"),
                (1, "Monthly or less"),
                (2, "2-4 times a month"),
                (3, "2-3 times a week"),
                (4, "4 or more times a week"),
            ),
            basis="A1",
        ),
        scale(
            "audc_2",
            "How many standard drinks on a typical drinking day?",
            _choices((0, "1-2"), (1, "3-4"), (2, "5-6"), (3, "7-9"), (4, "10 or more")),
            shown_when=DRINKS,
            basis="A1",
        ),
        scale(
            "audc_3",
            "How often 6 or more drinks on one occasion?",
            _choices(
                (0, "Never"),
                (1, "Less than monthly"),
                (2, "Monthly"),
                (3, "Weekly"),
                (4, "Daily or almost daily"),
            ),
            shown_when=DRINKS,
            basis="A1",
        ),
        yn(
            "alc_last_drink_unknown",
            "Time of last alcoholic drink unknown (patient cannot say)?",
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A5, A6",
        ),
        Question(
            "alc_last_drink",
            "Date and time of last alcoholic drink",
            DATETIME,
            past_event=True,
            not_future=True,
            shown_when=AllOf((ALCOHOL_QUESTIONS_APPLY, Eq("alc_last_drink_unknown", "no"))),
            basis="A5, A6, A9",
        ),
        yn(
            "alc_daily",
            "Currently drinking daily or almost daily?",
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A5",
        ),
        yn(
            "alc_morning",
            "Drinks in the morning to steady nerves or stop the shakes?",
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A7",
        ),
        Question(
            "aw_sx_now",
            "Withdrawal signs or symptoms now (observed or reported)",
            MULTI,
            choices=_choices(
                ("none", "None"),
                ("tremor", "Tremor"),
                ("sweating", "Sweating"),
                ("nausea_vomiting", "Nausea or vomiting"),
                ("anxiety_agitation", "Anxiety or agitation"),
                ("hallucinations", "Hallucinations (seeing, hearing or feeling things)"),
                ("confusion", "Confusion or disorientation"),
            ),
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A3, A4",
        ),
        ynu(
            "aw_hx_seizure",
            "Ever had a seizure when stopping or cutting down drinking?",
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A5, A10",
        ),
        ynu(
            "aw_hx_dt",
            "Ever had delirium tremens, or confusion or hallucinations when stopping drinking?",
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A5, C5",
        ),
        Question(
            "aw_prior_episodes",
            "Number of previous alcohol withdrawal episodes or detox admissions (best estimate)",
            INT,
            min_value=0,
            max_value=100,
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A5",
        ),
        Question(
            "aw_pawss",
            "PAWSS total, if scored (clinician)",
            INT,
            required=False,
            min_value=0,
            max_value=10,
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A8",
            help_text="PAWSS was validated in hospitalized medical patients and is not "
            "meant for patients with an active seizure disorder.",
        ),
        Question(
            "ciwa_ar",
            "CIWA-Ar total, if assessed today (clinician)",
            INT,
            required=False,
            min_value=0,
            max_value=67,
            shown_when=ALCOHOL_QUESTIONS_APPLY,
            basis="A3, A4",
            help_text="CIWA-Ar is meant for patients who have been drinking recently and "
            "can communicate.",
        ),
    ),
    intro="AUDIT-C: a standard drink means the US standard drink.",
)

RECENCY_CHOICES = _choices(
    ("never", "Never"),
    ("gt_12m", "More than 12 months ago"),
    ("past_12m", "In the past 12 months, but not in the past 30 days"),
    ("past_30d", "In the past 30 days"),
)


def recency(code, label, basis):
    """Return a "most recent non-medical use" question."""
    return Question(code, label, SINGLE, choices=RECENCY_CHOICES, basis=basis)


SUBSTANCES = Step(
    "substances",
    "Other substances",
    (
        recency(
            "sub_ketamine_nonmed",
            'Ketamine not given by a clinician ("K", "special K")',
            "E5, L6, A10, A11",
        ),
        recency(
            "sub_pcp_dissoc",
            "PCP or other dissociatives (for example high-dose dextromethorphan, methoxetamine)",
            "A11, C5",
        ),
        recency("sub_stimulant", "Cocaine, methamphetamine or non-prescribed stimulants", "M4, L1"),
        recency("sub_opioid_nonrx", "Heroin, fentanyl or other non-prescribed opioids", "E8, A11"),
        recency("sub_benzo_nonrx", "Non-prescribed benzodiazepines or other sedatives", "E8, A5"),
        recency(
            "sub_hallucinogen",
            "Psychedelics or other hallucinogens (for example LSD, psilocybin)",
            "A10",
        ),
        recency("sub_cannabis", "Cannabis", "context only (unverified default)"),
        yn(
            "sub_tx_active",
            "Currently in treatment for a substance use problem, including alcohol?",
            basis="L3, E5",
        ),
        Question(
            "sub_tx_detail",
            "Treatment program or provider",
            TEXT,
            required=False,
            max_length=200,
            shown_when=Eq("sub_tx_active", "yes"),
            basis="L3",
        ),
        Question(
            "lab_uds",
            "Urine drug screen today (clinician; if done)",
            MULTI,
            required=False,
            choices=_choices(
                ("not_done", "Not done"),
                ("negative", "Negative for all"),
                ("ketamine", "Ketamine"),
                ("pcp", "PCP"),
                ("cocaine", "Cocaine"),
                ("amphetamine", "Amphetamine or methamphetamine"),
                ("opioid", "Opioid"),
                ("benzodiazepine", "Benzodiazepine"),
                ("cannabis", "Cannabis"),
                ("other", "Other positive"),
            ),
            basis="L6 (unverified default)",
            help_text=CLINICIAN_HELP,
        ),
    ),
    intro="Most recent non-medical use of:",
)

OTHER_CONDITIONS = Step(
    "other_conditions",
    "Liver, kidney, breathing, bladder, eyes, thyroid",
    (
        Question(
            "liver_dx",
            "Liver conditions",
            MULTI,
            choices=_choices(
                ("none", "None"),
                ("fatty_liver", "Fatty liver"),
                ("hepatitis", "Hepatitis"),
                ("cirrhosis", "Cirrhosis"),
                ("other", "Other liver disease"),
                ("unsure", "Unsure"),
            ),
            basis="K8, E6, C3, A10",
        ),
        Question(
            "lab_lft",
            "Liver tests, including ALP and GGT (clinician)",
            SINGLE,
            choices=_choices(
                ("not_done", "Not done or not available"),
                ("normal", "Normal"),
                ("elevated_lt3x", "Raised, below 3 times the upper limit of normal"),
                ("elevated_ge3x", "Raised, 3 times the upper limit of normal or more"),
            ),
            basis="K8, A6, A10",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "renal_dx",
            "Kidney disease",
            SINGLE,
            choices=_choices(
                ("none", "None"),
                ("ckd", "Chronic kidney disease"),
                ("dialysis", "On dialysis"),
                ("unsure", "Unsure"),
            ),
            basis="C7, A10",
        ),
        Question(
            "resp_osa",
            "Diagnosed sleep apnea?",
            SINGLE,
            choices=_choices(
                ("no", "No"),
                ("yes_treated_cpap", "Yes, and uses treatment such as CPAP regularly"),
                ("yes_untreated", "Yes, not treated or not using treatment"),
                ("unsure", "Unsure"),
            ),
            basis="C7, A10",
        ),
        yn(
            "sb_snore",
            "Snores loudly (heard through a closed door, or a bed partner complains)?",
            shown_when=STOPBANG_ASKED,
            basis="L8",
        ),
        yn(
            "sb_tired",
            "Often tired, fatigued or sleepy during the day?",
            shown_when=STOPBANG_ASKED,
            basis="L8",
        ),
        yn(
            "sb_observed",
            "Has anyone seen the patient stop breathing, choke or gasp during sleep?",
            shown_when=STOPBANG_ASKED,
            basis="L8",
        ),
        Question(
            "resp_lung",
            "Lung conditions",
            MULTI,
            choices=_choices(
                ("none", "None"),
                ("copd", "COPD or emphysema"),
                ("severe_asthma", "Severe asthma"),
                ("current_respiratory_infection", "Current chest infection"),
                ("other", "Other lung disease"),
            ),
            basis="K5, A10",
        ),
        Question(
            "uro_symptoms",
            "Urinary symptoms in the past month",
            MULTI,
            choices=_choices(
                ("none", "None"),
                ("dysuria", "Pain or burning when passing urine"),
                ("urgency", "Sudden urgent need to pass urine"),
                ("frequency", "Passing urine more often than usual"),
                ("nocturia", "Waking at night to pass urine more than usual"),
                ("hematuria", "Blood in the urine"),
                ("incontinence", "Leakage"),
                ("bladder_pain", "Bladder or pelvic pain"),
            ),
            basis="K3, L6, L7",
        ),
        ynu(
            "uro_ket_cystitis",
            "Ever diagnosed with ketamine-related bladder damage, or with interstitial or "
            "ulcerative cystitis?",
            basis="L6, L7",
        ),
        Question(
            "eye_status",
            "Eye conditions",
            MULTI,
            choices=_choices(
                ("none", "None"),
                ("glaucoma_controlled", "Glaucoma, controlled"),
                (
                    "glaucoma_uncontrolled_or_angle_closure",
                    "Glaucoma not controlled, or angle-closure glaucoma",
                ),
                ("recent_eye_injury_or_surgery", "Recent eye injury or eye surgery"),
                ("unsure", "Unsure"),
            ),
            basis="K3, K7, C3, C4",
        ),
        Question(
            "endo_thyroid",
            "Thyroid conditions",
            MULTI,
            choices=_choices(
                ("none", "None"),
                (
                    "hyperthyroid_untreated_or_uncontrolled",
                    "Overactive thyroid, untreated or not controlled",
                ),
                ("hyperthyroid_treated", "Overactive thyroid, treated and controlled"),
                ("hypothyroid_on_replacement", "Underactive thyroid, taking thyroid hormone"),
                ("other", "Other thyroid condition"),
                ("unsure", "Unsure"),
            ),
            basis="K12, K13, C4",
        ),
        ynu("med_porphyria", "Porphyria?", basis="C4, A10"),
    ),
)

LOGISTICS = Step(
    "logistics",
    "Logistics and consent",
    (
        yn(
            "log_escort",
            "Has a responsible adult to take them home, and agrees not to drive until the next "
            "day after a night's sleep?",
            basis="E11, K11, L4",
        ),
        Question(
            "log_last_solid_h",
            "Hours since last solid food (treatment-day screenings only)",
            DECIMAL,
            required=False,
            decimal_places=1,
            min_value=Decimal("0.0"),
            max_value=Decimal("168.0"),
            basis="E11, L1, L4",
        ),
        Question(
            "log_capacity",
            "Clinician: capacity to give informed consent",
            SINGLE,
            choices=_choices(
                ("yes", "Has capacity"),
                ("no", "Lacks capacity"),
                ("needs_assessment", "Needs formal assessment"),
            ),
            basis="C6, A10",
            help_text=CLINICIAN_HELP,
        ),
        Question(
            "insurance",
            "Payment for ketamine treatment",
            SINGLE,
            choices=_choices(
                ("insured_covers", "Insured, and the plan covers it"),
                ("insured_not_covered", "Insured, but the plan does not cover it"),
                ("insured_unknown", "Insured, coverage not yet known"),
                ("self_pay", "Self-pay"),
            ),
            basis="administrative. Insurance rarely covers ketamine infusions, so coverage "
            "should be checked early.",
            help_text="Insurance rarely covers ketamine infusions, so check coverage early.",
        ),
        yn(
            "consent_to_screening",
            "Did the patient agree to answer these screening questions?",
            basis="C6",
        ),
    ),
)

REVIEW = Step(
    "review",
    "Review and submit",
    (
        # Required BOOL: must be True to submit.
        Question(
            "staff_attestation",
            "I confirm these answers were recorded as given",
            BOOL,
            basis="administrative",
        ),
    ),
)

STEPS = (
    PATIENT,
    VITALS,
    PREGNANCY,
    CARDIOVASCULAR,
    NEUROLOGICAL,
    ALLERGIES,
    MEDICATIONS,
    PSYCHIATRIC,
    MOOD,
    ALCOHOL,
    SUBSTANCES,
    OTHER_CONDITIONS,
    LOGISTICS,
    REVIEW,
)

STEP_SLUGS = tuple(step.slug for step in STEPS)
STEPS_BY_SLUG = {step.slug: step for step in STEPS}
QUESTIONS = {q.code: q for step in STEPS for q in step.questions}
_STEP_OF = {q.code: step for step in STEPS for q in step.questions}


def question(code):
    """Return the question with ``code``."""
    return QUESTIONS[code]


def step_of(code):
    """Return the step that asks question ``code``."""
    return _STEP_OF[code]


def step_applies(step, answers, thresholds):
    """Return whether ``step`` is shown for these answers."""
    return step.applies_when is None or step.applies_when(answers, thresholds)


def is_shown(code, answers, thresholds):
    """Return whether question ``code`` is shown (its step applies and its condition holds)."""
    q = QUESTIONS[code]
    if not step_applies(_STEP_OF[code], answers, thresholds):
        return False
    return q.shown_when is None or q.shown_when(answers, thresholds)


def unanswered(code, answers, thresholds):
    """Return ``unanswered(code)`` of INSTRUMENT.md 2.6: shown but absent."""
    return code not in answers and is_shown(code, answers, thresholds)


def step_complete(step, answers, thresholds):
    """Return whether every shown required question of ``step`` is answered.

    A step that does not apply is complete. Bool questions are stored whenever
    their step is saved, so an absent bool means the step was never saved; a
    required bool must be True. Hence the medications step is complete when
    ``med_none`` is present, ``medications`` is present unless ``med_none`` is
    True, and ``med_reviewed_with_patient`` is present.
    """
    if not step_applies(step, answers, thresholds):
        return True
    for q in step.questions:
        if q.shown_when is not None and not q.shown_when(answers, thresholds):
            continue
        if q.type == BOOL:
            if q.code not in answers or (q.required and answers[q.code] is not True):
                return False
        elif q.required and q.code not in answers:
            return False
    return True


def visibility_json(thresholds):
    """Return the branching as JSON-safe data, thresholds resolved to numbers.

    ``{"steps": {slug: condition or None}, "questions": {code: condition}}``; only
    questions with a "shown when" condition are listed. Read by the wizard's
    show/hide script and the FHIR Questionnaire's enableWhen.
    """
    return {
        "steps": {
            step.slug: step.applies_when.to_json(thresholds) if step.applies_when else None
            for step in STEPS
        },
        "questions": {
            q.code: q.shown_when.to_json(thresholds)
            for q in QUESTIONS.values()
            if q.shown_when is not None
        },
    }


def prune_hidden(answers, thresholds):
    """Return a copy of ``answers`` without the answers of hidden questions (one pass, in order)."""
    kept = {}
    for step in STEPS:
        for q in step.questions:
            if q.code not in answers:
                continue
            if step_applies(step, kept, thresholds) and (
                q.shown_when is None or q.shown_when(kept, thresholds)
            ):
                kept[q.code] = answers[q.code]
    return kept


# ---------------------------------------------------------------------------
# Codec: typed answers <-> JSON-safe values.


def encode_value(q, value):
    """Return the JSON-safe form of one typed answer."""
    if q.type == DECIMAL:
        return str(value)
    if q.type == DATE:
        return value.isoformat()
    if q.type == DATETIME:
        return value.isoformat()
    if q.type == MULTI:
        return list(value)
    if q.type == MED_LIST:
        return [
            {"name": row["name"], "dose": row["dose"], "frequency": row["frequency"]}
            for row in value
        ]
    return value


def decode_value(q, raw):
    """Return the typed answer from its JSON-safe form."""
    if q.type == DECIMAL:
        return Decimal(raw).quantize(Decimal(1).scaleb(-q.decimal_places))
    if q.type == DATE:
        return dt.date.fromisoformat(raw)
    if q.type == DATETIME:
        return dt.datetime.fromisoformat(raw)
    if q.type == MULTI:
        return list(raw)
    if q.type == MED_LIST:
        return [dict(row) for row in raw]
    return raw


def encode_answers(answers):
    """Return the JSON-safe form of an answers dict, in instrument order."""
    return {
        code: encode_value(q, answers[code]) for code, q in QUESTIONS.items() if code in answers
    }


def decode_answers(data):
    """Return a typed answers dict from its JSON-safe form (unknown codes are dropped)."""
    return {code: decode_value(q, data[code]) for code, q in QUESTIONS.items() if code in data}


def display_value(code, value, tz=None):
    """Return an answer as staff read it: choice labels, local dates, lists joined.

    Aware datetimes are shown in ``tz`` (the clinic's time zone) when it is given.
    """
    q = QUESTIONS[code]
    if q.type in (YNU, YN, SINGLE, SCALE):
        return q.choice_label(value)
    if q.type == MULTI:
        return ", ".join(q.choice_label(key) for key in value)
    if q.type == BOOL:
        return "Yes" if value else "No"
    if q.type == DATE:
        return value.strftime("%Y-%m-%d")
    if q.type == DATETIME:
        if tz is not None and value.tzinfo is not None:
            value = value.astimezone(tz)
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    if q.type == MED_LIST:
        return "; ".join(
            " ".join(part for part in (row["name"], row["dose"], row["frequency"]) if part)
            for row in value
        )
    return str(value)
