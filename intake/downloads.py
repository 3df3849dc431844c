"""Downloads of a screening: the stored PDF summary and the FHIR resources.

Each download needs the permission of the page it is offered on (the staff
screening page: ``intake.conduct_screening``), as well as sight of the
screening: an account whose role was taken away keeps no way in to the
screenings it submitted.
"""

import json

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from intake import audit, documents, fhir
from intake.services import current_thresholds, screenings_visible_to

FHIR_JSON = "application/fhir+json; charset=utf-8"

# The rung of the staff screening page (``views.screening``), which links to these downloads.
SCREENING_PERMISSION = "intake.conduct_screening"


def _visible_screening(request, pk):
    return get_object_or_404(screenings_visible_to(request.user), pk=pk)


def _requested_version(request):
    raw = request.GET.get("version")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6:
        raise Http404
    return int(raw)


def _file_name(screening, suffix, *, version=None):
    # Screening id, summary version and date only: no patient data in file names.
    day = timezone.localtime(screening.submitted_at).date().isoformat()
    tag = f"-v{version}" if version is not None else ""
    return f"screening-{screening.pk}{tag}-{day}.{suffix}"


@require_GET
@never_cache
@permission_required(SCREENING_PERMISSION, raise_exception=True)
def screening_pdf(request, pk):
    """Serve the stored PDF summary (latest, or ``?version=N``) as an attachment."""
    screening = _visible_screening(request, pk)
    try:
        document = documents.summary_for(screening, _requested_version(request))
    except documents.DocumentError as exc:
        raise Http404 from exc
    audit.record(
        action="intake.screening.pdf_downloaded",
        request=request,
        obj=screening,
        detail={"version": document.version, "sha256": document.sha256},
    )
    response = HttpResponse(documents.pdf_bytes(document), content_type="application/pdf")
    name = _file_name(screening, "pdf", version=document.version)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@never_cache
@permission_required(SCREENING_PERMISSION, raise_exception=True)
def screening_fhir(request, pk):
    """Serve the screening's FHIR R4 QuestionnaireResponse as JSON."""
    screening = _visible_screening(request, pk)
    body = fhir.response_json(screening)
    audit.record(action="intake.screening.fhir_downloaded", request=request, obj=screening)
    response = HttpResponse(body, content_type=FHIR_JSON)
    response["Content-Disposition"] = (
        f'attachment; filename="{_file_name(screening, "questionnaire-response.json")}"'
    )
    return response


@require_GET
@permission_required(SCREENING_PERMISSION, raise_exception=True)
def questionnaire(request):
    """Serve the instrument as a FHIR R4 Questionnaire, branching on the thresholds in force."""
    _version, values = current_thresholds()
    body = json.dumps(fhir.questionnaire(values), ensure_ascii=False, indent=2)
    return HttpResponse(body, content_type=FHIR_JSON)
