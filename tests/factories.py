"""Test data: a complete screening's answers that raise no flag, and submitted screenings."""

import datetime as dt
from decimal import Decimal

from intake import instrument, services
from intake.models import Draft

QUIET = {
    "first_name": "Alex",
    "last_name": "Rivera",
    "date_of_birth": dt.date(1985, 3, 14),
    "mrn": "MRN-1001",
    "sex_at_birth": "male",
    "indication": ["depression"],
    "vit_sbp": 120,
    "vit_dbp": 78,
    "vit_hr": 72,
    "vit_spo2": 98,
    "vit_weight_kg": Decimal("80.0"),
    "vit_height_cm": Decimal("178.0"),
    "vit_neck_cm": Decimal("38.0"),
    "cv_htn": "no",
    "cv_htn_enceph": "no",
    "cv_aneurysm": "no",
    "cv_avm": "no",
    "cv_mi": "no",
    "cv_chest_pain": "no",
    "cv_hf": "no",
    "cv_valve": "no",
    "cv_arrhythmia": "no",
    "neuro_ich": "no",
    "neuro_stroke_tia": "no",
    "neuro_icp": "no",
    "neuro_tbi": "no",
    "neuro_seizure": "no",
    "neuro_cog": "no",
    "alg_ketamine": "no",
    "alg_other": "None known",
    "ket_prior_med": "no",
    "anes_complications": "no",
    "med_none": True,
    "med_reviewed_with_patient": "yes",
    "psy_dx": ["mdd"],
    "psy_psychosis_ever": "no",
    "psy_fam_psychosis": "no",
    "psy_mania_recent": "no",
    "psy_ad_trials": 2,
    "psy_neuromod": ["none"],
    **{f"phq9_{i}": score for i, score in enumerate([2, 2, 1, 1, 1, 1, 1, 0, 0], start=1)},
    **{f"gad7_{i}": 1 for i in range(1, 8)},
    "cssrs_1": "no",
    "cssrs_2": "no",
    "cssrs_6": "no",
    "audc_1": 0,
    "sub_ketamine_nonmed": "never",
    "sub_pcp_dissoc": "never",
    "sub_stimulant": "never",
    "sub_opioid_nonrx": "never",
    "sub_benzo_nonrx": "never",
    "sub_hallucinogen": "never",
    "sub_cannabis": "never",
    "sub_tx_active": "no",
    "liver_dx": ["none"],
    "lab_lft": "normal",
    "renal_dx": "none",
    "resp_osa": "yes_treated_cpap",
    "resp_lung": ["none"],
    "uro_symptoms": ["none"],
    "uro_ket_cystitis": "no",
    "eye_status": ["none"],
    "endo_thyroid": ["none"],
    "med_porphyria": "no",
    "log_escort": "yes",
    "log_capacity": "yes",
    "insurance": "self_pay",
    "consent_to_screening": "yes",
    "staff_attestation": True,
}


def quiet_answers(**overrides):
    """Return typed answers of a complete screening that raises no flag, with overrides.

    An override of ``None`` removes that answer.
    """
    answers = {**QUIET, **overrides}
    return {code: value for code, value in answers.items() if value is not None}


def make_draft(user, answers=None, **overrides):
    """Return a saved draft of ``user`` holding ``answers`` (default: quiet answers)."""
    answers = quiet_answers(**overrides) if answers is None else answers
    return Draft.objects.create(
        created_by=user, answers=instrument.encode_answers(answers), last_step="review"
    )


def make_screening(user, answers=None, **overrides):
    """Return a screening submitted through the real service."""
    draft = make_draft(user, answers, **overrides)
    return services.submit_screening(draft_id=draft.pk, user=user)
