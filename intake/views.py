"""Staff pages: home, starting a screening, and a submitted screening."""

from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from intake import audit, documents, instrument, pdf, presentation, services
from intake.models import Screening
from intake.wizard import URL_NAME

RECENT_SUBMISSIONS = 20


def patient_label(answers):
    """Return "First Last" from a draft's encoded answers (empty when not yet typed)."""
    return " ".join(part for part in (answers.get("first_name"), answers.get("last_name")) if part)


@permission_required("intake.conduct_screening", raise_exception=True)
def home(request):
    """Show the staff home: start a screening, the user's drafts and recent submissions."""
    drafts = [
        {
            "draft": draft,
            "patient": patient_label(draft.answers),
            "step": instrument.STEPS_BY_SLUG[draft.last_step].title
            if draft.last_step in instrument.STEPS_BY_SLUG
            else "",
            "url": reverse(URL_NAME, kwargs={"draft_id": draft.pk, "step": draft.last_step})
            if draft.last_step
            else reverse("intake:draft", kwargs={"draft_id": draft.pk}),
        }
        for draft in services.drafts_visible_to(request.user).order_by("-updated_at")
    ]
    submissions = Screening.objects.filter(submitted_by=request.user).order_by("-submitted_at")[
        :RECENT_SUBMISSIONS
    ]
    if drafts or submissions:
        # The lists name patients: one row naming what was shown, by id only.
        audit.record(
            action="intake.home.viewed",
            request=request,
            detail={
                "drafts": [row["draft"].pk for row in drafts],
                "screenings": [screening.pk for screening in submissions],
            },
        )
    return render(request, "intake/home.html", {"drafts": drafts, "submissions": submissions})


@require_http_methods(["GET", "POST"])
@permission_required("intake.conduct_screening", raise_exception=True)
def new_screening(request):
    """Show the start page (GET) or create a draft and enter the wizard (POST)."""
    if request.method == "POST":
        draft = services.start_draft(user=request.user, request=request)
        return redirect(URL_NAME, draft_id=draft.pk, step=instrument.STEP_SLUGS[0])
    return render(request, "intake/new_screening.html")


def optional_url(name, pk):
    """Return the URL ``name`` for screening ``pk``, or None while that route does not exist."""
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:
        return None


@permission_required("intake.conduct_screening", raise_exception=True)
def screening(request, pk):
    """Show a submitted screening (its frozen snapshot) and audit the read."""
    record = get_object_or_404(services.screenings_visible_to(request.user), pk=pk)
    flags = list(record.flags.all())
    flags.sort(key=lambda flag: (not flag.urgent, flag.position))
    # Every review, voided ones marked, in signing order: the same record as the PDF's.
    reviews = pdf.current_reviews(record)
    addenda = list(record.addenda.all())
    audit.record(action="intake.screening.viewed", request=request, obj=record)
    return render(
        request,
        "intake/screening.html",
        {
            "screening": record,
            "flags": flags,
            "urgent_flags": [flag for flag in flags if flag.urgent],
            "suicide_protocol": presentation.suicide_protocol(),
            "reviews": reviews,
            "addenda": addenda,
            "sections": presentation.snapshot_sections(record, tz=timezone.get_current_timezone()),
            "derived_rows": presentation.derived_rows(record.derived or {}),
            "pdf_url": optional_url("intake:screening_pdf", record.pk),
            "earlier_pdfs": [
                version for version in documents.versions(record) if not version.latest
            ],
            "fhir_url": optional_url("intake:screening_fhir", record.pk),
        },
    )


@login_not_required
@require_GET
def healthz(request):
    """Answer "ok" without reading the database: for load balancers and deploy checks."""
    return HttpResponse("ok", content_type="text/plain")
