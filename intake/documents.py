"""Stored PDF versions of a screening's summary.

Version 1 is the submitted screening; each later event (a review signed, a
review voided, an addendum) starts a new version. The version history is
derived from the review and addendum rows, so the services that create those
rows need not call this module. The first render of each version is stored
with its SHA-256, and every later download serves those stored bytes.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from intake import pdf
from intake.models import Screening, SummaryDocument


class DocumentError(Exception):
    """Raised for a summary version that does not exist."""


@dataclass(frozen=True)
class Event:
    """One change to what the summary shows."""

    at: object
    order: int
    kind: str  # "review", "void", "addendum"
    pk: int
    reason: str


_KIND_ORDER = {"review": 0, "void": 1, "addendum": 2}
_REASONS = {
    "review": SummaryDocument.Reason.REVIEWED,
    "void": SummaryDocument.Reason.UNLOCKED,
    "addendum": SummaryDocument.Reason.ADDENDUM,
}


def _event(at, kind, pk):
    return Event(at=at, order=_KIND_ORDER[kind], kind=kind, pk=pk, reason=_REASONS[kind])


def events(screening):
    """Return the events after submission that changed the summary, oldest first."""
    found = []
    for review in screening.reviews.all():
        found.append(_event(review.signed_at, "review", review.pk))
        if review.voided_at is not None:
            found.append(_event(review.voided_at, "void", review.pk))
    for addendum in screening.addenda.all():
        found.append(_event(addendum.signed_at, "addendum", addendum.pk))
    found.sort(key=lambda event: (event.at, event.order, event.pk))
    return found


def current_version(screening):
    """Return the number of the latest version of the summary of ``screening``."""
    return 1 + len(events(screening))


@dataclass(frozen=True)
class VersionInfo:
    """One version of a screening's summary, as listed on the staff and admin pages."""

    number: int
    reason: str
    at: dt.datetime
    url: str
    latest: bool

    @property
    def reason_label(self):
        """Return the readable reason this version exists."""
        return SummaryDocument.Reason(self.reason).label


def versions(screening: Screening) -> list[VersionInfo]:
    """Return every version of the summary of ``screening``, newest first.

    ``at`` is when the version came to be (submission, or the review, void or
    addendum that started it); ``url`` downloads exactly that version.
    """
    base = reverse("intake:screening_pdf", args=[screening.pk])
    found = [(SummaryDocument.Reason.SUBMITTED, screening.submitted_at)]
    found += [(event.reason, event.at) for event in events(screening)]
    return [
        VersionInfo(
            number=number,
            reason=str(reason),
            at=at,
            url=f"{base}?version={number}",
            latest=number == len(found),
        )
        for number, (reason, at) in reversed(list(enumerate(found, start=1)))
    ]


def rows_at(screening, version):
    """Return ``(reviews, addenda)`` records as they stood at ``version``."""
    included = {(event.kind, event.pk) for event in events(screening)[: version - 1]}
    reviews = [
        pdf.review_record(review, as_void=("void", review.pk) in included)
        for review in screening.reviews.all()
        if ("review", review.pk) in included
    ]
    addenda = [
        pdf.addendum_record(addendum)
        for addendum in screening.addenda.all()
        if ("addendum", addendum.pk) in included
    ]
    return reviews, addenda


def summary_for(screening: Screening, version: int | None = None) -> SummaryDocument:
    """Return the stored summary of ``screening`` at ``version`` (default: latest).

    Renders and stores it on first request. Two concurrent first requests both
    render, the unique constraint keeps one row, and both return that row.
    """
    history = events(screening)
    latest = 1 + len(history)
    version = latest if version is None else version
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= latest:
        raise DocumentError("This version of the summary does not exist.")
    stored = SummaryDocument.objects.filter(screening=screening, version=version).first()
    if stored is not None:
        return stored
    reviews, addenda = rows_at(screening, version)
    reason = SummaryDocument.Reason.SUBMITTED if version == 1 else history[version - 2].reason
    generated_at = timezone.now()
    stamp = pdf.Version(
        number=version,
        reason_label=SummaryDocument.Reason(reason).label,
        generated_at=generated_at,
    )
    data = pdf.render_summary(screening, reviews=reviews, addenda=addenda, version=stamp)
    try:
        with transaction.atomic():
            return SummaryDocument.objects.create(
                screening=screening,
                version=version,
                reason=reason,
                pdf=data,
                sha256=hashlib.sha256(data).hexdigest(),
                created_at=generated_at,
            )
    except IntegrityError:
        return SummaryDocument.objects.get(screening=screening, version=version)


def pdf_bytes(document: SummaryDocument) -> bytes:
    """Return the stored PDF bytes of ``document``."""
    data = document.pdf
    return bytes(data) if not isinstance(data, bytes) else data
