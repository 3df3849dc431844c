"""Services that change screening state: start a draft, submit it, and read access rules.

Each service is a plain function with keyword-only arguments, runs in one
transaction, writes its audit row, and raises ``IntakeError`` for anything a
view should show as a message.
"""

import datetime as dt
import hashlib
import json
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from intake import audit, instrument, lexicon, rules, thresholds
from intake.models import Draft, Flag, Screening, ThresholdSet, signer_name


class IntakeError(Exception):
    """A service refused an action; the message is safe to show to staff."""


# ---------------------------------------------------------------------------
# Thresholds in force


def current_thresholds():
    """Return ``(version, values)`` of the thresholds in force (version 0: shipped defaults)."""
    latest = ThresholdSet.objects.order_by("-version").first()
    if latest is None:
        return 0, dict(thresholds.DEFAULTS)
    return latest.version, thresholds.with_defaults(thresholds.decode(latest.values))


# ---------------------------------------------------------------------------
# Access


def screenings_visible_to(user):
    """Return the screenings ``user`` may read: all for clinicians and admins, else their own."""
    queryset = Screening.objects.all()
    if user.has_perm("intake.view_screening"):
        return queryset
    return queryset.filter(submitted_by=user)


def drafts_visible_to(user):
    """Return the unsubmitted drafts ``user`` may continue: only their own."""
    return Draft.objects.filter(created_by=user, screening__isnull=True)


# ---------------------------------------------------------------------------
# Snapshot


def jsonable(value):
    """Return ``value`` with decimals, dates and tuples turned into JSON-safe types."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def snapshot_document(screening):
    """Return the frozen snapshot of ``screening`` as one canonical, JSON-safe dict."""
    return {
        "screening_id": screening.pk,
        "instrument_version": screening.instrument_version,
        "lexicon_version": screening.lexicon_version,
        "thresholds_version": screening.thresholds_version,
        "thresholds": screening.thresholds,
        "submitted_at": screening.submitted_at.astimezone(dt.UTC).isoformat(),
        "submitted_by": screening.submitted_by_id,
        "answers": screening.answers,
        "derived": screening.derived,
        "flags": [
            {
                "id": flag.rule_id,
                "severity": flag.severity,
                "urgent": flag.urgent,
                "message": flag.message,
                "basis": flag.basis,
                "evidence": flag.evidence,
            }
            for flag in screening.flags.all()
        ],
    }


def snapshot_sha256(document):
    """Return the SHA-256 hex digest of a snapshot document in canonical JSON."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# Drafts and submission


@transaction.atomic
def start_draft(*, user, request=None) -> Draft:
    """Create an empty draft owned by ``user``."""
    draft = Draft.objects.create(created_by=user)
    audit.record(action="intake.draft.created", actor=user, obj=draft, request=request)
    return draft


def incomplete_steps(answers, thresholds_in_force):
    """Return the steps that apply to ``answers`` but are not complete (review step excluded)."""
    return [
        step
        for step in instrument.STEPS
        if step.slug != "review"
        and instrument.step_applies(step, answers, thresholds_in_force)
        and not instrument.step_complete(step, answers, thresholds_in_force)
    ]


@transaction.atomic
def submit_screening(*, draft_id: int, user, request=None) -> Screening:
    """Freeze a draft into a submitted screening with its flags; idempotent per draft.

    A second call for the same draft (double click, refresh, back and resubmit)
    returns the screening the first call created.
    """
    draft = Draft.objects.select_for_update().filter(pk=draft_id, created_by=user).first()
    if draft is None:
        raise IntakeError("This draft does not exist or is not yours.")
    if draft.screening_id is not None:
        return draft.screening

    version, values = current_thresholds()
    answers = instrument.prune_hidden(instrument.decode_answers(draft.answers), values)
    missing = incomplete_steps(answers, values)
    if missing:
        raise IntakeError(
            "These sections are incomplete: " + ", ".join(step.title for step in missing) + "."
        )
    if answers.get("staff_attestation") is not True:
        raise IntakeError("Confirm that these answers were recorded as given before submitting.")

    submitted_at = timezone.now()
    local_now = timezone.localtime(submitted_at)
    derived = rules.derive(answers, now=local_now, thresholds=values)
    flags = rules.evaluate(answers, now=local_now, thresholds=values)
    counts = {severity: 0 for severity in ("review", "caution", "info")}
    for flag in flags:
        counts[flag.severity] += 1

    screening = Screening(
        submitted_by=user,
        submitted_by_name=signer_name(user),
        submitted_at=submitted_at,
        instrument_version=instrument.INSTRUMENT_VERSION,
        lexicon_version=lexicon.LEXICON_VERSION,
        thresholds_version=version,
        thresholds=thresholds.encode(values),
        answers=instrument.encode_answers(answers),
        derived=jsonable(derived),
        snapshot_sha256="",
        patient_first_name=answers["first_name"],
        patient_last_name=answers["last_name"],
        patient_mrn=answers.get("mrn", ""),
        patient_date_of_birth=answers["date_of_birth"],
        urgent_count=sum(1 for flag in flags if flag.urgent),
        review_count=counts["review"],
        caution_count=counts["caution"],
        info_count=counts["info"],
    )
    screening.full_clean(exclude=["snapshot_sha256"])
    screening.save()
    Flag.objects.bulk_create(
        Flag(
            screening=screening,
            position=position,
            rule_id=flag.rule_id,
            severity=flag.severity,
            urgent=flag.urgent,
            message=flag.message,
            basis=list(flag.basis),
            evidence=jsonable(list(flag.evidence)),
        )
        for position, flag in enumerate(flags)
    )
    digest = snapshot_sha256(snapshot_document(screening))
    # The digest is written once, in the creating transaction, with a plain update.
    Screening.objects.filter(pk=screening.pk).update(snapshot_sha256=digest)
    screening.snapshot_sha256 = digest

    draft.screening = screening
    draft.answers = {}
    draft.wizard_state = {}
    draft.updated_at = submitted_at
    draft.save(update_fields=["screening", "answers", "wizard_state", "updated_at"])
    audit.record(
        action="intake.screening.submitted",
        actor=user,
        obj=screening,
        request=request,
        detail={"draft": draft.pk, "flags": len(flags), "sha256": digest},
    )
    return screening
