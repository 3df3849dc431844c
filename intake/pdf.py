"""Render a submitted screening's frozen snapshot to a PDF/A-3b summary.

The PDF shows the snapshot (answers, derived values, flags, versions, hash)
plus the review and addendum rows, and embeds the FHIR QuestionnaireResponse.
It knows nothing of HTTP. Every resource WeasyPrint asks for goes through
``StaticOnlyFetcher``, which serves only our own static files and ``data:``
URLs and refuses everything else.
"""

import datetime as dt
import functools
import io
import mimetypes
import re
import zoneinfo
from dataclasses import dataclass, replace
from importlib import resources
from urllib.parse import unquote

import weasyprint
from django.conf import settings
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from weasyprint.css import ColorProfile
from weasyprint.text import ffi as weasyprint_ffi
from weasyprint.text.fonts import FontConfiguration

from intake import fhir, presentation, rules

# A virtual origin for our static files: no real file lives under it, so a
# ``file://`` URL can only reach a static file through the finders.
STATIC_BASE_URL = "file:///__intake_static__/"
STYLESHEET = "intake/pdf/summary.css"
TEMPLATE = "intake/pdf/summary.html"
ATTACHMENT_NAME = "questionnaire-response.json"
OUTPUT_INTENT = "intake-srgb"
SEVERITY_ORDER = ("urgent", "review", "caution", "info")
# Free text longer than this (or with more lines) may break across pages.
FLOW_CHARS = 600
FLOW_LINES = 8
_PAGE_SIZE = re.compile(r"^[A-Za-z0-9. ]{1,40}$")


class FetchRefused(ValueError):
    """Raised for a URL the PDF renderer may not fetch."""


class StaticOnlyFetcher(weasyprint.URLFetcher):
    """Serve our static files and ``data:`` URLs; refuse every other URL.

    ``requested``, ``served`` and ``refused`` record every URL WeasyPrint asked
    for, so tests can prove nothing left our static files.
    """

    def __init__(self):
        super().__init__(
            timeout=1, allowed_protocols=("data",), allow_redirects=False, fail_on_errors=False
        )
        self.requested = []
        self.served = []
        self.refused = []

    def fetch(self, url, headers=None):
        """Return the static file or data behind ``url``, or raise ``FetchRefused``."""
        self.requested.append(url)
        if url[:5].lower() == "data:":
            self.served.append(url)
            return super().fetch(url, headers)
        path = static_path(url)
        if path is None:
            self.refused.append(url)
            raise FetchRefused("The PDF renderer only loads the app's own static files.")
        self.served.append(url)
        content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
        with open(path, "rb") as handle:
            body = handle.read()
        return weasyprint.urls.URLFetcherResponse(url, body, headers={"Content-Type": content_type})


def static_path(url):
    """Return the file system path of a static-file URL, or None if it is not one."""
    if not url.startswith(STATIC_BASE_URL):
        return None
    relative = unquote(url[len(STATIC_BASE_URL) :].split("?", 1)[0].split("#", 1)[0])
    parts = relative.split("/")
    if (
        not relative
        or "\\" in relative
        or "\x00" in relative
        or any(part in ("", ".", "..") for part in parts)
    ):
        return None
    found = finders.find(relative)
    return found if isinstance(found, str) else None


_CSS_SAFE = re.compile(r"[A-Za-z0-9 .,:#()-]")


def css_string(text):
    """Return ``text`` as a quoted CSS string, escaping every character outside a safe set."""
    escaped = "".join(
        # The space ends the escape; CSS consumes it.
        char if _CSS_SAFE.fullmatch(char) else f"\\{ord(char):06x} "
        for char in str(text)
    )
    return f'"{escaped}"'


def version_line(screening, version):
    """Return the footer line naming the summary version, why it exists and when it was made."""
    return _("Summary version %(number)s of screening %(id)s · %(reason)s · generated %(at)s") % {
        "number": version.number,
        "id": screening.pk,
        "reason": version.reason_label,
        "at": version.generated_at.astimezone(clinic_tz()).strftime("%Y-%m-%d %H:%M %Z"),
    }


def footer_css(screening, version=None):
    """Return the CSS ``content`` value of the running footer (ids, versions and hash only)."""
    lines = [version_line(screening, version)] if version is not None else []
    lines.append(
        _("Screening #%(id)s · Instrument %(instrument)s · Thresholds v%(thresholds)s")
        % {
            "id": screening.pk,
            "instrument": screening.instrument_version,
            "thresholds": screening.thresholds_version,
        }
    )
    lines.append(_("Snapshot SHA-256 %(sha)s") % {"sha": screening.snapshot_sha256 or "-"})
    return ' "\\a " '.join(css_string(line) for line in lines)


def running_head_css():
    """Return the CSS ``content`` value of the running head of pages after the first."""
    return " ".join(
        (
            "string(patient)",
            css_string("  ·  " + _("DOB") + " "),
            "string(dob)",
            css_string("  ·  " + _("MRN") + " "),
            "string(mrn)",
            css_string("  ·  " + _("Screening") + " "),
            "string(screening)",
        )
    )


def page_css():
    """Return the CSS ``content`` value of "Page X of Y"."""
    before, _sep, rest = (
        _("Page %(page)s of %(pages)s") % {"page": "\x00", "pages": "\x01"}
    ).partition("\x00")
    middle, _sep, after = rest.partition("\x01")
    return (
        f"{css_string(before)} counter(page) {css_string(middle)} counter(pages) "
        f"{css_string(after)}"
    )


# ---------------------------------------------------------------------------
# Context


@dataclass(frozen=True)
class Version:
    """Which version of the summary a rendering is, why it exists, and when it was made."""

    number: int
    reason_label: str
    generated_at: dt.datetime


def flows(text):
    """Return whether free text is long enough that it may break across pages."""
    text = str(text or "")
    return len(text) > FLOW_CHARS or text.count("\n") >= FLOW_LINES


@dataclass(frozen=True)
class ReviewRecord:
    """A review as printed on one version of the summary."""

    clinician: str
    signed_at: dt.datetime
    determination: str
    note: str
    acknowledged_rule_ids: tuple
    void: bool = False
    voided_at: dt.datetime | None = None
    voided_by: str = ""
    void_reason: str = ""

    @property
    def note_flows(self):
        """Return whether the note may break across pages."""
        return flows(self.note)

    @property
    def record_flows(self):
        """Return whether the record may break across pages (its note or void reason is long)."""
        return self.note_flows or flows(self.void_reason)


@dataclass(frozen=True)
class AddendumRecord:
    """An addendum as printed on one version of the summary."""

    author: str
    signed_at: dt.datetime
    text: str

    @property
    def text_flows(self):
        """Return whether the text may break across pages."""
        return flows(self.text)


def review_record(review, *, as_void=None):
    """Return the printable record of ``review`` (``as_void=False`` prints it as not voided)."""
    void = review.is_void if as_void is None else as_void
    return ReviewRecord(
        clinician=review.clinician_name,
        signed_at=review.signed_at,
        determination=review.determination,
        note=review.note,
        acknowledged_rule_ids=tuple(review.acknowledged_rule_ids or ()),
        void=void,
        voided_at=review.voided_at if void else None,
        voided_by=review.voided_by_name if void else "",
        void_reason=review.void_reason if void else "",
    )


def addendum_record(addendum):
    """Return the printable record of ``addendum``."""
    return AddendumRecord(
        author=addendum.author_name, signed_at=addendum.signed_at, text=addendum.text
    )


def current_reviews(screening):
    """Return the review records of ``screening`` as they stand now."""
    return [review_record(review) for review in screening.reviews.all()]


def current_addenda(screening):
    """Return the addendum records of ``screening`` as they stand now."""
    return [addendum_record(addendum) for addendum in screening.addenda.all()]


def clinic_tz():
    """Return the clinic's time zone."""
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _severity_key(flag):
    return "urgent" if flag.urgent else flag.severity


# Messages built with these placeholders already name what was found.
_STATED = ("{found}", "{meds}", "{labels}")


def flag_evidence(flag, *, tz):
    """Return the readable evidence of ``flag`` that its message does not already state.

    Messages without a finding placeholder read the same for "Yes" and "Unsure";
    the evidence tells them apart, as on the admin review page.
    """
    template = str(rules.MESSAGES.get(flag.rule_id, ""))
    if any(placeholder in template for placeholder in _STATED):
        return []
    shown = []
    for item in flag.evidence or ():
        text = presentation.evidence_text(item, tz=tz)
        said = item.get("medication") if isinstance(item, dict) and "medication" in item else text
        if said and str(said) in flag.message:
            continue
        shown.append(text)
    return shown


def in_severity_order(flags):
    """Return ``flags`` urgent first, then by severity, each in the rules' order."""
    return sorted(
        flags, key=lambda flag: (SEVERITY_ORDER.index(_severity_key(flag)), flag.position)
    )


def in_flag_order(rule_ids, order):
    """Return ``rule_ids`` in the order of the flag table; ids not in it keep their order, last."""
    rank = {rule_id: index for index, rule_id in enumerate(order)}
    return tuple(sorted(rule_ids, key=lambda rule_id: rank.get(rule_id, len(rank))))


def _ordered_acknowledgements(review, order):
    return replace(review, acknowledged_rule_ids=in_flag_order(review.acknowledged_rule_ids, order))


def summary_context(screening, *, reviews=None, addenda=None, version=None):
    """Return the template context of the summary: the snapshot and the review rows.

    ``version`` (a ``Version``) is printed in the footer of every page.
    """
    tz = clinic_tz()
    derived = screening.derived or {}
    flags = in_severity_order(screening.flags.all())
    counts = {key: 0 for key in SEVERITY_ORDER}
    for flag in flags:
        counts[_severity_key(flag)] += 1
    order = [flag.rule_id for flag in flags]
    reviews = current_reviews(screening) if reviews is None else list(reviews)
    reviews = [_ordered_acknowledgements(review, order) for review in reviews]
    addenda = current_addenda(screening) if addenda is None else list(addenda)
    page_size = settings.PDF_PAGE_SIZE
    if not _PAGE_SIZE.match(page_size or ""):
        page_size = "Letter"
    dob = screening.patient_date_of_birth
    sections = presentation.snapshot_sections(screening, tz=tz)
    return {
        "clinic_name": settings.CLINIC_NAME,
        "protocol_text": presentation.suicide_protocol(),
        "page_size": page_size,
        "stylesheet": STYLESHEET,
        "screening": screening,
        "patient_name": screening.patient_name,
        "date_of_birth": dob.isoformat() if dob else "",
        "age": derived.get("age"),
        "mrn": screening.patient_mrn,
        "submitted_at": screening.submitted_at.astimezone(tz),
        "submitted_by": screening.submitted_by_name,
        "flags": [
            {
                "rule_id": flag.rule_id,
                "key": _severity_key(flag),
                "severity": flag.get_severity_display(),
                "urgent": flag.urgent,
                "message": flag.message,
                "basis": ", ".join(flag.basis or ()),
                "evidence": flag_evidence(flag, tz=tz),
            }
            for flag in flags
        ],
        "urgent_flags": [flag for flag in flags if flag.urgent],
        "counts": counts,
        "derived_rows": presentation.derived_rows(derived),
        "sections": sections,
        "flowing_codes": {
            row.code
            for section in sections
            for row in section["rows"]
            if row.long and flows(row.display)
        },
        "reviews": reviews,
        "active_reviews": [review for review in reviews if not review.void],
        "addenda": addenda,
        "sha256": screening.snapshot_sha256,
        # CSS-escaped by css_string(): safe inside the template's <style> block.
        "version": version,
        "footer_css": mark_safe(footer_css(screening, version)),  # noqa: S308
        "page_css": mark_safe(page_css()),  # noqa: S308
        "running_head_css": mark_safe(running_head_css()),  # noqa: S308
        "tz_name": settings.TIME_ZONE,
    }


# ---------------------------------------------------------------------------
# Rendering

_font_config = None


def harfbuzz_subset_available():
    """Return whether WeasyPrint subsets fonts with HarfBuzz rather than its fontTools fallback.

    The fallback makes every PDF several times slower to write (each embedded
    font is subset in Python) and future WeasyPrint versions drop it.
    """
    return weasyprint_ffi.harfbuzz_subset is not None and bool(
        weasyprint_ffi.harfbuzz.hb_version_atleast(4, 1, 0)
    )


def font_config():
    """Return the process-wide WeasyPrint font configuration (built once: it is slow)."""
    global _font_config
    if _font_config is None:
        _font_config = FontConfiguration()
    return _font_config


@functools.cache
def _srgb_profile_bytes():
    with (resources.files("weasyprint.pdf") / "sRGB2014.icc").open("rb") as handle:
        return handle.read()


def _output_intent_profiles():
    # WeasyPrint's own "srgb" output intent leaves its ICC file open (a
    # ResourceWarning); the same profile is passed in from memory instead.
    return {
        OUTPUT_INTENT: ColorProfile(
            io.BytesIO(_srgb_profile_bytes()),
            "sRGB2014.icc",
            "relative-colorimetric",
            (["r"], ["g"], ["b"]),
        )
    }


def render_html(html, *, url_fetcher=None, attachments=(), pdf_variant="pdf/a-3b"):
    """Return PDF bytes of an HTML string rendered with the locked-down fetcher."""
    fetcher = StaticOnlyFetcher() if url_fetcher is None else url_fetcher
    document = weasyprint.HTML(string=html, base_url=STATIC_BASE_URL, url_fetcher=fetcher)
    return document.write_pdf(
        font_config=font_config(),
        color_profiles=_output_intent_profiles(),
        output_intent=OUTPUT_INTENT,
        pdf_variant=pdf_variant,
        # Tagged (structure tree: headings, tables, reading order) for screen readers;
        # measured at no cost beyond the noise of a render.
        pdf_tags=True,
        attachments=list(attachments),
    )


def render_summary(
    screening, *, reviews=None, addenda=None, version=None, url_fetcher=None
) -> bytes:
    """Return the PDF/A-3b summary of ``screening`` with its QuestionnaireResponse attached.

    ``reviews`` and ``addenda`` default to the rows as they stand now; a stored
    older version passes the rows as they stood then. ``version`` (a
    ``Version``) is printed in every page's footer.
    """
    context = summary_context(screening, reviews=reviews, addenda=addenda, version=version)
    html = render_to_string(TEMPLATE, context)
    fetcher = StaticOnlyFetcher() if url_fetcher is None else url_fetcher
    amended = bool(context["addenda"])
    attachment = weasyprint.Attachment(
        string=fhir.response_json(screening, amended=amended),
        base_url=STATIC_BASE_URL,
        url_fetcher=fetcher,
        name=ATTACHMENT_NAME,
        description=_("FHIR R4 QuestionnaireResponse of this screening"),
        created=screening.submitted_at.astimezone(dt.UTC),
        modified=screening.submitted_at.astimezone(dt.UTC),
        relationship="Data",
    )
    return render_html(html, url_fetcher=fetcher, attachments=[attachment])
