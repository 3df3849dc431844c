"""Review services: claim, sign, amend, unlock, thresholds and export.

Each service is a plain function with keyword-only arguments, runs in one
transaction, writes exactly one audit row, and raises ``IntakeError`` for
anything the admin shows as a message. The screening row is locked with
``select_for_update`` so two clinicians acting at once are serialised: the
second one sees what the first one did.
"""

import csv
import io

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from intake import audit, security, thresholds
from intake.models import (
    Addendum,
    Determination,
    Review,
    Screening,
    ThresholdSet,
    signer_name,
)
from intake.services import IntakeError

# The export's columns; the two times are the clinic's, named in their heading (export_columns).
EXPORT_COLUMNS = (
    "screening_id",
    "submitted_at",
    "submitted_by",
    "status",
    "flags",
    "determination",
    "reviewer",
    "signed_at",
)
EXPORT_TIMES = ("submitted_at", "signed_at")

# The longest free text a clinician signs (a review note, an addendum) or gives as a
# reason (unlocking, changing thresholds). Signed text can never be removed and every
# version of the PDF prints it whole: at these lengths the worst case, one character a
# line, renders in about 3 s (2,000,000 characters never finished).
NOTE_MAX_LENGTH = 10_000
REASON_MAX_LENGTH = 2_000


def export_columns(tz):
    """Return the export's column headings: each time column names the zone ``tz``.

    Every screen shows the clinic's time; the export does too, each value with its
    own UTC offset (ISO 8601), and its heading says whose time it is.
    """
    return [
        f"{name} (clinic time: {tz.key}; ISO 8601 with UTC offset)"
        if name in EXPORT_TIMES
        else name
        for name in EXPORT_COLUMNS
    ]


def export_time(value, tz):
    """Return ``value`` as ISO 8601 in ``tz``, to the second, with that moment's UTC offset.

    Converted one value at a time by its zone's rules, so a summer and a winter
    time each carry their own offset (daylight saving), never one offset for all.
    """
    return value.astimezone(tz).isoformat(timespec="seconds") if value else ""


def display_name(user):
    """Return how a staff member is named on screens: full name, else username."""
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()


def flags_to_acknowledge(screening):
    """Return the flags a signer must acknowledge one by one: every review and urgent flag."""
    return [flag for flag in screening.flags.all() if flag.urgent or flag.severity == "review"]


def current_review(screening):
    """Return the screening's signed review that is not void, or None."""
    return screening.reviews.filter(voided_at__isnull=True).last()


def _require(user, *perms):
    if not user.has_perms(perms):
        raise IntakeError(_("You do not have permission to do this."))


def _check_signature(user, password, request):
    """Refuse a wrong signature password; each one counts toward the sign-in lockout.

    Called outside the service's transaction: a refusal rolls that back, and the
    failed attempt and its audit rows must stay.
    """
    if not password:
        raise IntakeError(_("Re-enter your password to sign; nothing was signed."))
    if security.recheck_password(request, user, password, purpose=security.SIGNATURE):
        return
    if security.locked_out(request):
        raise IntakeError(security.retyped_lockout_message())
    message = _("The password is not correct; nothing was signed.")
    warning = security.sign_out_warning(request)
    raise IntakeError(f"{message} {warning}" if warning else message)


def too_long_message(*, limit: int, length: int) -> str:
    """Return the message for free text of ``length`` characters where ``limit`` is the most."""
    return _("Shorten this to at most %(limit)s characters; it has %(length)s.") % {
        "limit": number_format(limit, force_grouping=True),
        "length": number_format(length, force_grouping=True),
    }


def _check_length(text, *, limit, what):
    if len(text) > limit:
        raise IntakeError(
            _("%(what)s is too long: %(detail)s Nothing was saved.")
            % {"what": what, "detail": too_long_message(limit=limit, length=len(text))}
        )


def _locked_screening(screening_id):
    screening = (
        Screening.objects.select_for_update(of=("self",))
        .select_related("claimed_by")
        .filter(pk=screening_id)
        .first()
    )
    if screening is None:
        raise IntakeError(_("This screening does not exist."))
    return screening


def signed_message(screening):
    """Return "already signed by NAME at TIME" for a locked screening."""
    review = current_review(screening)
    if review is None:
        return _("This screening is already signed.")
    return _("This screening was already signed by %(name)s at %(time)s.") % {
        "name": review.clinician_name,
        "time": timezone.localtime(review.signed_at).strftime("%Y-%m-%d %H:%M"),
    }


def _already_signed_error(screening):
    return IntakeError(signed_message(screening) + " " + _("Your entry was not saved."))


def _when(moment):
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _review_changed_message(shown, current):
    """Return why a form about review ``shown`` no longer applies, naming ``current``."""
    parts = []
    if shown is not None and shown.voided_at is not None:
        parts.append(
            _(
                "The review you opened, by %(signer)s at %(signed)s, was voided by "
                "%(voider)s at %(voided)s."
            )
            % {
                "signer": shown.clinician_name,
                "signed": _when(shown.signed_at),
                "voider": shown.voided_by_name,
                "voided": _when(shown.voided_at),
            }
        )
    elif shown is None:
        parts.append(_("The review this form was opened on is not on this screening."))
    if current is not None:
        parts.append(
            _("The signed review now is by %(name)s at %(time)s; read it first.")
            % {"name": current.clinician_name, "time": _when(current.signed_at)}
        )
    parts.append(_("Nothing was changed."))
    return " ".join(str(part) for part in parts)


def _shown_review(screening, review_id):
    """Return (the review a form showed, the current review) of a locked screening row.

    Raises ``IntakeError`` naming what changed when the form's review is not the current one.
    """
    shown = screening.reviews.filter(pk=review_id).first()
    current = current_review(screening)
    if shown is None or current is None or shown.pk != current.pk:
        raise IntakeError(_review_changed_message(shown, current))
    return shown


def _set_workflow(screening, **fields):
    for name, value in fields.items():
        setattr(screening, name, value)
    screening.updated_at = timezone.now()
    screening.save(update_fields=[*fields, "updated_at"])


# ---------------------------------------------------------------------------
# Claim


def _claim_changed_error(screening, shown_claimer_id):
    """Return the error for a page that showed another reviewer than the one now."""
    shown = get_user_model().objects.filter(pk=shown_claimer_id).first()
    if screening.claimed_by is None:
        message = _("This screening is no longer in review by %(shown)s; it is back in the queue.")
    else:
        message = _(
            "This screening is now in review by %(name)s (since %(time)s), "
            "not by %(shown)s as your page showed."
        )
    return IntakeError(
        message
        % {
            "name": display_name(screening.claimed_by),
            "time": _when(screening.claimed_at) if screening.claimed_at else "",
            "shown": display_name(shown) or _("nobody"),
        }
        + " "
        + _("Nothing was changed.")
    )


@transaction.atomic
def claim_screening(
    *, screening_id: int, user, take_over_from: int | None = None, request=None
) -> Screening:
    """Mark a screening as in review by ``user`` so other clinicians see who has it.

    A screening in review by someone else is taken over only from the reviewer
    named by ``take_over_from`` (the one the clinician's page showed).
    """
    _require(user, "intake.review_screening")
    screening = _locked_screening(screening_id)
    if screening.is_locked:
        raise _already_signed_error(screening)
    previous = screening.claimed_by
    if screening.status == Screening.Status.IN_REVIEW and previous is not None:
        if previous.pk == user.pk:
            raise IntakeError(_("You are already reviewing this screening."))
        if take_over_from is None:
            raise IntakeError(
                _("This screening is in review by %(name)s.") % {"name": display_name(previous)}
            )
        if previous.pk != take_over_from:
            raise _claim_changed_error(screening, take_over_from)
    _set_workflow(
        screening, status=Screening.Status.IN_REVIEW, claimed_by=user, claimed_at=timezone.now()
    )
    audit.record(
        action="intake.screening.claimed",
        actor=user,
        obj=screening,
        request=request,
        detail={"taken_over_from": previous.pk} if previous is not None else {},
    )
    return screening


@transaction.atomic
def release_claim(*, screening_id: int, user, claimed_by_id: int, request=None) -> Screening:
    """Put a claimed screening back in the queue (by its reviewer or a clinic admin).

    ``claimed_by_id`` is the reviewer the page showed: a claim taken since by
    someone else is not released.
    """
    _require(user, "intake.review_screening")
    screening = _locked_screening(screening_id)
    if screening.status != Screening.Status.IN_REVIEW:
        raise IntakeError(_("This screening is not in review."))
    if screening.claimed_by_id != claimed_by_id:
        raise _claim_changed_error(screening, claimed_by_id)
    if screening.claimed_by_id != user.pk and not user.has_perm("intake.unlock_screening"):
        raise IntakeError(_("Only the reviewer or a clinic admin can release this screening."))
    _set_workflow(screening, status=Screening.Status.SUBMITTED, claimed_by=None, claimed_at=None)
    audit.record(action="intake.screening.released", actor=user, obj=screening, request=request)
    return screening


# ---------------------------------------------------------------------------
# Sign, amend, unlock


def _reviewed_since_error(screening):
    """Return the error for a review form opened before the newest review was signed."""
    latest = screening.reviews.order_by("-signed_at")[0]
    message = _("Since you opened this form, %(signer)s signed a review at %(signed)s") % {
        "signer": latest.clinician_name,
        "signed": _when(latest.signed_at),
    }
    if latest.voided_at is not None:
        message += _(", voided by %(voider)s at %(voided)s (%(reason)s)") % {
            "voider": latest.voided_by_name,
            "voided": _when(latest.voided_at),
            "reason": latest.void_reason,
        }
    return IntakeError(
        message
        + ". "
        + _(
            "Read it on the screening page first. Your entry was not saved; sign again to "
            "record your review."
        )
    )


def record_review(
    *,
    screening_id: int,
    user,
    determination_id: int,
    note: str,
    acknowledged_rule_ids,
    password: str,
    reviews_seen: int | None = None,
    request=None,
) -> Review:
    """Sign the clinician's review of a screening and lock it.

    The determination is the clinician's own decision, chosen from the list the
    clinic configures; it is recorded as given. Every review and urgent flag
    must be acknowledged individually. A second signer gets an error naming the
    first one, and nothing of theirs is stored. ``reviews_seen`` is how many
    reviews the clinician's form showed: if one was signed (and voided) since,
    nothing is stored and the error names it, so it is read before signing.
    The password is checked first, as a sign-in attempt (``_check_signature``).
    """
    _require(user, "intake.review_screening", "intake.add_review")
    _check_signature(user, password, request)
    return _record_review(
        screening_id=screening_id,
        user=user,
        determination_id=determination_id,
        note=note,
        acknowledged_rule_ids=acknowledged_rule_ids,
        reviews_seen=reviews_seen,
        request=request,
    )


@transaction.atomic
def _record_review(
    *, screening_id, user, determination_id, note, acknowledged_rule_ids, reviews_seen, request
):
    screening = _locked_screening(screening_id)
    if screening.is_locked:
        raise _already_signed_error(screening)
    if reviews_seen is not None:
        count = screening.reviews.count()
        if reviews_seen > count:
            # Reviews are never deleted: no page of this screening showed more than exist.
            raise IntakeError(
                _(
                    "This form does not match the screening as it stands. Open the screening "
                    "again and sign from its page; nothing was saved."
                )
            )
        if count != reviews_seen:
            raise _reviewed_since_error(screening)
    if screening.status == Screening.Status.IN_REVIEW and screening.claimed_by_id not in (
        None,
        user.pk,
    ):
        raise IntakeError(
            _("This screening is in review by %(name)s. Take it over before signing.")
            % {"name": display_name(screening.claimed_by)}
        )
    required = {flag.rule_id for flag in flags_to_acknowledge(screening)}
    acknowledged = set(acknowledged_rule_ids)
    if not required <= acknowledged:
        raise IntakeError(
            _("Acknowledge each review flag before signing: %(ids)s.")
            % {"ids": ", ".join(sorted(required - acknowledged))}
        )
    determination = Determination.objects.filter(pk=determination_id, active=True).first()
    if determination is None:
        raise IntakeError(_("Choose a determination from the list."))
    note = (note or "").strip()
    if not note:
        raise IntakeError(_("Write a review note before signing."))
    _check_length(note, limit=NOTE_MAX_LENGTH, what=_("The review note"))

    review = Review(
        screening=screening,
        clinician=user,
        clinician_name=signer_name(user),
        determination=determination.label,
        note=note,
        acknowledged_rule_ids=sorted(required & acknowledged),
        signed_at=timezone.now(),
    )
    # An empty acknowledgement list is valid (no review flags), so skip its blank check.
    review.full_clean(exclude=["acknowledged_rule_ids"])
    review.save()
    _set_workflow(
        screening,
        status=Screening.Status.REVIEWED,
        claimed_by=user,
        claimed_at=screening.claimed_at or review.signed_at,
    )
    audit.record(
        action="intake.review.signed",
        actor=user,
        obj=screening,
        request=request,
        detail={
            "review": review.pk,
            "determination": determination.pk,
            "acknowledged": review.acknowledged_rule_ids,
        },
    )
    return review


def add_addendum(
    *,
    screening_id: int,
    user,
    review_id: int,
    text: str,
    password: str,
    form_token: str = "",
    request=None,
) -> Addendum:
    """Append a signed addendum to a reviewed screening; nothing earlier changes.

    ``review_id`` is the signed review the form showed: if it was voided since,
    or another review signed, the addendum is refused, since it was written
    about a review no longer in force. ``form_token`` identifies the form it
    comes from: sent again, by its author, it returns the addendum already
    signed instead of signing a second one. An addendum its author already
    signed word for word on this screening, from another form (the page
    reloaded by "Back"), is refused: it adds nothing. The password is checked
    first, as a sign-in attempt (``_check_signature``).
    """
    _require(user, "intake.review_screening", "intake.add_addendum")
    _check_signature(user, password, request)
    return _add_addendum(
        screening_id=screening_id,
        user=user,
        review_id=review_id,
        text=text,
        form_token=form_token,
        request=request,
    )


@transaction.atomic
def _add_addendum(*, screening_id, user, review_id, text, form_token, request):
    screening = _locked_screening(screening_id)
    text = (text or "").strip()
    if form_token:
        # Under the screening's row lock: a second copy waits here for the first.
        signed = screening.addenda.filter(form_token=form_token).first()
        if signed is not None:
            if signed.author_id == user.pk and signed.text == text:
                return signed
            # Sent again with other text (say, after "Back"): never drop it silently.
            raise IntakeError(
                _("This form was already signed. Open a new addendum form to add another.")
            )
    if not screening.is_locked and not screening.reviews.filter(pk=review_id).exists():
        raise IntakeError(_("Addenda are added after a review is signed."))
    _shown_review(screening, review_id)
    if not text:
        raise IntakeError(_("Write the addendum text."))
    _check_length(text, limit=NOTE_MAX_LENGTH, what=_("The addendum"))
    same = screening.addenda.filter(author=user, text=text).first()
    if same is not None:
        raise IntakeError(
            _("You already signed this addendum at %(when)s.")
            % {"when": timezone.localtime(same.signed_at).strftime("%Y-%m-%d %H:%M")}
        )
    addendum = Addendum(
        screening=screening,
        author=user,
        author_name=signer_name(user),
        text=text,
        signed_at=timezone.now(),
        form_token=form_token,
    )
    addendum.full_clean()
    addendum.save()
    _set_workflow(screening, status=Screening.Status.AMENDED)
    audit.record(
        action="intake.addendum.signed",
        actor=user,
        obj=screening,
        request=request,
        detail={"addendum": addendum.pk},
    )
    return addendum


@transaction.atomic
def unlock_screening(
    *, screening_id: int, user, review_id: int, reason: str, request=None
) -> Screening:
    """Void review ``review_id`` of a screening so it can be reviewed again (clinic admin).

    ``review_id`` is the signed review the admin's form showed: if it was voided,
    or another review was signed since, nothing changes and the error says who
    signed the review now in force.
    """
    _require(user, "intake.unlock_screening")
    reason = (reason or "").strip()
    if not reason:
        raise IntakeError(_("Give the reason for unlocking."))
    _check_length(reason, limit=REASON_MAX_LENGTH, what=_("The reason for unlocking"))
    screening = _locked_screening(screening_id)
    if not screening.is_locked and not screening.reviews.filter(pk=review_id).exists():
        raise IntakeError(_("This screening is not signed, so there is nothing to unlock."))
    review = _shown_review(screening, review_id)
    review.voided_at = timezone.now()
    review.voided_by = user
    review.voided_by_name = signer_name(user)
    review.void_reason = reason
    review.save(update_fields=["voided_at", "voided_by", "voided_by_name", "void_reason"])
    if screening.claimed_by_id is not None:
        _set_workflow(screening, status=Screening.Status.IN_REVIEW)
    else:
        _set_workflow(screening, status=Screening.Status.SUBMITTED)
    audit.record(
        action="intake.screening.unlocked",
        actor=user,
        obj=screening,
        request=request,
        detail={"voided_reviews": [review.pk]},
    )
    return screening


# ---------------------------------------------------------------------------
# Thresholds


class ThresholdsChangedError(IntakeError):
    """Raised when a newer thresholds version was saved after the form was opened.

    Carries that version and its values so the form can show them beside the
    admin's own changes.
    """

    def __init__(self, message, *, version: int, values: dict, base_values: dict):
        super().__init__(message)
        self.version = version
        self.values = values
        self.base_values = base_values


def _no_such_version(version):
    return IntakeError(_("Thresholds version %(version)s does not exist.") % {"version": version})


def thresholds_of_version(version: int) -> dict:
    """Return the values of thresholds ``version`` (0: the shipped defaults)."""
    if version == 0:
        return dict(thresholds.DEFAULTS)
    threshold_set = ThresholdSet.objects.filter(version=version).first()
    if threshold_set is None:
        raise _no_such_version(version)
    return thresholds.with_defaults(thresholds.decode(threshold_set.values))


def _newer_thresholds_error(latest, based_on_version):
    return ThresholdsChangedError(
        _(
            "Version %(version)s was saved by %(name)s at %(time)s, after you opened this "
            "form on version %(base)s. Nothing was saved. The form now shows version "
            "%(version)s's values with your own changes kept; check them and save again."
        )
        % {
            "version": latest.version,
            "name": display_name(latest.created_by) or _("an unknown user"),
            "time": timezone.localtime(latest.created_at).strftime("%Y-%m-%d %H:%M"),
            "base": based_on_version,
        },
        version=latest.version,
        values=thresholds.with_defaults(thresholds.decode(latest.values)),
        base_values=thresholds_of_version(based_on_version),
    )


@transaction.atomic
def save_thresholds(
    *, values: dict, user, based_on_version: int, note: str = "", request=None
) -> ThresholdSet:
    """Store a new version of the thresholds; earlier versions and screenings never change.

    ``based_on_version`` is the version the admin's form showed. If another
    version was saved since, nothing is stored: saving would silently undo
    that version's changes.
    """
    _require(user, "intake.add_thresholdset")
    note = (note or "").strip()
    _check_length(note, limit=REASON_MAX_LENGTH, what=_("The reason for the change"))
    unknown = set(values) - set(thresholds.SPEC)
    if unknown:
        raise IntakeError(_("Unknown threshold(s): %(names)s.") % {"names": ", ".join(unknown)})
    # Lock the newest version so a second editor waits here for the first to commit,
    # then read again: the locking read still returns the row it waited for, and only
    # a new read sees the version the first editor added.
    ThresholdSet.objects.select_for_update(of=("self",)).order_by("-version").first()
    latest = ThresholdSet.objects.select_related("created_by").order_by("-version").first()
    version = latest.version if latest else 0
    if based_on_version != version:
        if not 0 <= based_on_version < version:
            raise _no_such_version(based_on_version)
        raise _newer_thresholds_error(latest, based_on_version)
    old = thresholds_of_version(version)
    new = thresholds.with_defaults({name: thresholds.to_number(v) for name, v in values.items()})
    errors = thresholds.consistency_errors(new)
    if errors:
        raise IntakeError(" ".join(errors[name] for name in sorted(errors)))
    changes = {
        name: [str(before), str(after)]
        for name, (before, after) in thresholds.changes(old, new).items()
    }
    if not changes:
        raise IntakeError(_("No threshold was changed."))
    threshold_set = ThresholdSet(
        version=version + 1,
        values=thresholds.encode(new),
        created_by=user,
        created_at=timezone.now(),
        note=note,
    )
    threshold_set.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            threshold_set.save()
    except IntegrityError:
        # Two first versions at once (no row to lock yet): the unique version refuses one.
        latest = ThresholdSet.objects.select_related("created_by").order_by("-version").first()
        raise _newer_thresholds_error(latest, based_on_version) from None
    audit.record(
        action="intake.thresholds.changed",
        actor=user,
        obj=threshold_set,
        request=request,
        detail={"version": threshold_set.version, "from_version": version, "changes": changes},
    )
    return threshold_set


# ---------------------------------------------------------------------------
# Export


def _flag_summary(screening):
    return " ".join(
        f"{flag.rule_id}:{flag.severity}{'+urgent' if flag.urgent else ''}"
        for flag in screening.flags.all()
    )


@transaction.atomic
def export_screenings_csv(*, screening_ids, user, request=None) -> str:
    """Return CSV of the given screenings: ids, dates, staff, flags, determination; no answers.

    Staff appear as usernames; patients appear only as the screening id. Times are
    the clinic's (``TIME_ZONE``), as on every screen, each with its UTC offset.
    """
    _require(user, "intake.export_screening")
    screenings = list(
        Screening.objects.filter(pk__in=list(screening_ids))
        .select_related("submitted_by")
        .prefetch_related("flags", "reviews__clinician")
        .order_by("pk")
    )
    if not screenings:
        raise IntakeError(_("Select at least one screening to export."))
    tz = timezone.get_default_timezone()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(export_columns(tz))
    for screening in screenings:
        signed = [review for review in screening.reviews.all() if review.voided_at is None]
        review = signed[-1] if signed else None
        writer.writerow(
            [
                screening.pk,
                export_time(screening.submitted_at, tz),
                screening.submitted_by.get_username(),
                screening.status,
                _flag_summary(screening),
                review.determination if review else "",
                review.clinician.get_username() if review else "",
                export_time(review.signed_at, tz) if review else "",
            ]
        )
    ids = [screening.pk for screening in screenings]
    audit.record(
        action="intake.screening.exported",
        actor=user,
        request=request,
        detail={"count": len(ids), "ids": ids},
    )
    return out.getvalue()
