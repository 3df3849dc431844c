"""Stored PDF versions and the download views (PDF, QuestionnaireResponse, Questionnaire)."""

import hashlib
import io
import json

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pypdf import PdfReader

from intake import documents, pdf
from intake.models import Addendum, AuditEvent, Review, Role, SummaryDocument
from tests.pdf_factories import REALISTIC_FLAGS, build_screening, realistic_answers


@pytest.fixture
def screening(staff_user):
    return build_screening(staff_user, realistic_answers(), REALISTIC_FLAGS)


@pytest.fixture
def render_count(monkeypatch):
    calls = []
    real = pdf.render_summary

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pdf, "render_summary", counting)
    return calls


def attached_status(data):
    attachment = PdfReader(io.BytesIO(data)).attachments[pdf.ATTACHMENT_NAME][0]
    return json.loads(attachment)["status"]


def sign(screening, clinician, **fields):
    return Review.objects.create(
        screening=screening,
        clinician=clinician,
        determination="Proceed to consult",
        note="Reviewed.",
        acknowledged_rule_ids=["SUI-01"],
        **fields,
    )


def test_first_render_is_stored_with_its_hash_and_served_again(screening, render_count):
    first = documents.summary_for(screening)
    again = documents.summary_for(screening)
    assert first.pk == again.pk
    assert first.version == 1
    assert first.reason == SummaryDocument.Reason.SUBMITTED
    assert first.sha256 == hashlib.sha256(documents.pdf_bytes(first)).hexdigest()
    assert len(render_count) == 1


def test_each_review_void_and_addendum_starts_a_new_version(screening, clinician):
    v1 = documents.summary_for(screening)
    review = sign(screening, clinician)
    v2 = documents.summary_for(screening)
    review.voided_at = timezone.now()
    review.voided_by = clinician
    review.void_reason = "Wrong chart."
    review.save()
    v3 = documents.summary_for(screening)
    Addendum.objects.create(screening=screening, author=clinician, text="Corrected.")
    v4 = documents.summary_for(screening)
    assert [d.version for d in (v1, v2, v3, v4)] == [1, 2, 3, 4]
    assert [d.reason for d in (v1, v2, v3, v4)] == ["submitted", "reviewed", "unlocked", "addendum"]
    assert documents.current_version(screening) == 4
    assert attached_status(documents.pdf_bytes(v3)) == "completed"
    assert attached_status(documents.pdf_bytes(v4)) == "amended"
    # Older versions stay retrievable, byte for byte.
    assert documents.summary_for(screening, 1).sha256 == v1.sha256
    assert documents.summary_for(screening, 2).sha256 == v2.sha256


def test_an_older_version_rendered_late_shows_the_rows_as_they_stood(screening, clinician):
    now = timezone.now()
    sign(
        screening,
        clinician,
        signed_at=now,
        voided_at=now + timezone.timedelta(minutes=5),
        voided_by=clinician,
        void_reason="Wrong chart.",
    )
    reviews, addenda = documents.rows_at(screening, 2)
    assert len(reviews) == 1 and not reviews[0].void and addenda == []
    reviews, _addenda = documents.rows_at(screening, 3)
    assert reviews[0].void and reviews[0].void_reason == "Wrong chart."
    assert documents.rows_at(screening, 1) == ([], [])
    text = " ".join(
        page.extract_text()
        for page in PdfReader(
            io.BytesIO(documents.pdf_bytes(documents.summary_for(screening, 2)))
        ).pages
    )
    assert "Proceed to consult" in text
    assert "Wrong chart." not in text


def test_each_stored_version_prints_its_number_reason_and_generation_time(screening, clinician):
    sign(screening, clinician)
    Addendum.objects.create(screening=screening, author=clinician, text="Corrected.")
    for number, reason in ((1, "Submitted"), (2, "Review signed"), (3, "Addendum added")):
        document = documents.summary_for(screening, number)
        generated = timezone.localtime(document.created_at).strftime("%Y-%m-%d %H:%M")
        expected = (
            f"Summary version {number} of screening {screening.pk} · {reason} · "
            f"generated {generated}"
        )
        pages = PdfReader(io.BytesIO(documents.pdf_bytes(document))).pages
        for page in pages:
            assert expected in " ".join(page.extract_text().split())


def test_versions_lists_every_version_newest_first(screening, clinician):
    assert [(v.number, v.reason, v.latest) for v in documents.versions(screening)] == [
        (1, "submitted", True)
    ]
    review = sign(screening, clinician)
    review.voided_at = review.signed_at + timezone.timedelta(minutes=5)
    review.voided_by = clinician
    review.void_reason = "Wrong chart."
    review.save()
    listed = documents.versions(screening)
    assert [(v.number, v.reason, v.latest) for v in listed] == [
        (3, "unlocked", True),
        (2, "reviewed", False),
        (1, "submitted", False),
    ]
    assert [v.at for v in listed] == [review.voided_at, review.signed_at, screening.submitted_at]
    assert [str(v.reason_label) for v in listed] == ["Review voided", "Review signed", "Submitted"]
    assert listed[1].url == urls(screening)["pdf"] + "?version=2"
    # Listing renders nothing.
    assert not SummaryDocument.objects.filter(screening=screening).exists()


@pytest.mark.parametrize("version", [0, 2, 99, "1", True])
def test_a_version_that_does_not_exist_is_refused(screening, version):
    with pytest.raises(documents.DocumentError):
        documents.summary_for(screening, version)


def test_concurrent_first_renders_keep_one_row(screening, monkeypatch):
    real = pdf.render_summary

    def render_while_another_request_stores(target, **kwargs):
        data = real(target, **kwargs)
        # Another request finished first and stored its copy.
        SummaryDocument.objects.create(
            screening=target, version=1, reason="submitted", pdf=b"%PDF-other", sha256="0" * 64
        )
        return data

    monkeypatch.setattr(pdf, "render_summary", render_while_another_request_stores)
    document = documents.summary_for(screening)
    assert document.sha256 == "0" * 64
    assert SummaryDocument.objects.filter(screening=screening).count() == 1


# ---------------------------------------------------------------------------
# Views


def urls(screening):
    return {
        "pdf": reverse("intake:screening_pdf", args=[screening.pk]),
        "fhir": reverse("intake:screening_fhir", args=[screening.pk]),
    }


@pytest.mark.parametrize("kind", ["pdf", "fhir"])
def test_anonymous_is_sent_to_login(client, screening, kind):
    response = client.get(urls(screening)[kind])
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_anonymous_cannot_read_the_questionnaire(client, db):
    response = client.get(reverse("intake:questionnaire"))
    assert response.status_code == 302


DOWNLOADS = {
    "pdf": lambda screening: urls(screening)["pdf"],
    "pdf version 1": lambda screening: urls(screening)["pdf"] + "?version=1",
    "fhir": lambda screening: urls(screening)["fhir"],
    "questionnaire": lambda screening: reverse("intake:questionnaire"),
}


@pytest.mark.parametrize("kind", DOWNLOADS)
def test_each_download_walks_the_permission_ladder_of_its_page(
    client, screening, staff_user, clinician, clinic_admin, kind
):
    url = DOWNLOADS[kind](screening)
    page = screening.get_absolute_url()

    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")

    # The screening's own submitter, whose role was taken away: the page and
    # every download refuse them alike, and nothing is read.
    staff_user.groups.clear()
    client.force_login(staff_user)
    assert client.get(page).status_code == 403
    assert client.get(url).status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="intake.screening.").exists()

    staff_user.groups.add(Group.objects.get(name=Role.INTAKE_STAFF))
    for user in (staff_user, clinician, clinic_admin):
        client.force_login(user)
        assert client.get(page).status_code == 200
        assert client.get(url).status_code == 200, user


@pytest.mark.parametrize("kind", ["pdf", "fhir"])
def test_other_staff_get_404(client, screening, make_user, kind):
    client.force_login(make_user("other", Role.INTAKE_STAFF))
    assert client.get(urls(screening)[kind]).status_code == 404
    assert not AuditEvent.objects.filter(action__startswith="intake.screening.pdf").exists()


@pytest.mark.parametrize("who", ["staff", "clinician", "clinicadmin"])
def test_owner_clinician_and_admin_download_the_pdf(
    client, screening, clinician, clinic_admin, staff_user, who
):
    user = {"staff": staff_user, "clinician": clinician, "clinicadmin": clinic_admin}[who]
    client.force_login(user)
    response = client.get(urls(screening)["pdf"])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    day = timezone.localtime(screening.submitted_at).date().isoformat()
    assert response["Content-Disposition"] == (
        f'attachment; filename="screening-{screening.pk}-v1-{day}.pdf"'
    )
    assert "Rivera" not in response["Content-Disposition"]
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    stored = SummaryDocument.objects.get(screening=screening, version=1)
    assert response.content == documents.pdf_bytes(stored)
    events = AuditEvent.objects.filter(action="intake.screening.pdf_downloaded")
    assert events.count() == 1
    event = events.get()
    assert event.actor == user
    assert event.object_id == str(screening.pk)
    assert event.detail == {"version": 1, "sha256": stored.sha256}


def test_every_download_writes_one_audit_row(client, screening, staff_user):
    client.force_login(staff_user)
    for _ in range(3):
        client.get(urls(screening)["pdf"])
    assert AuditEvent.objects.filter(action="intake.screening.pdf_downloaded").count() == 3
    assert SummaryDocument.objects.filter(screening=screening).count() == 1


def test_older_version_by_query_and_missing_versions_404(client, screening, clinician):
    client.force_login(clinician)
    first = client.get(urls(screening)["pdf"]).content
    sign(screening, clinician)
    latest = client.get(urls(screening)["pdf"])
    old = client.get(urls(screening)["pdf"] + "?version=1")
    assert old.content == first
    assert latest.content != first
    day = timezone.localtime(screening.submitted_at).date().isoformat()
    assert f"screening-{screening.pk}-v1-{day}.pdf" in old["Content-Disposition"]
    assert f"screening-{screening.pk}-v2-{day}.pdf" in latest["Content-Disposition"]
    assert (
        AuditEvent.objects.filter(action="intake.screening.pdf_downloaded")
        .first()
        .detail["version"]
        == 1
    )
    # "²" and "١" are digits to str.isdigit(), not to int().
    for bad in ("3", "0", "abc", "-1", "1.0", "%C2%B2", "%D9%A1", "9" * 7):
        assert client.get(urls(screening)["pdf"] + f"?version={bad}").status_code == 404


@pytest.mark.parametrize("who", ["staff", "clinician", "clinicadmin"])
def test_owner_clinician_and_admin_download_the_response(
    client, screening, clinician, clinic_admin, staff_user, who
):
    user = {"staff": staff_user, "clinician": clinician, "clinicadmin": clinic_admin}[who]
    client.force_login(user)
    response = client.get(urls(screening)["fhir"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    assert "Rivera" not in response["Content-Disposition"]
    QuestionnaireResponse.model_validate(json.loads(response.content))
    event = AuditEvent.objects.get(action="intake.screening.fhir_downloaded")
    assert event.actor == user and event.object_id == str(screening.pk)


@pytest.mark.parametrize("who", ["staff", "clinician", "clinicadmin"])
def test_signed_in_users_read_the_questionnaire(client, staff_user, clinician, clinic_admin, who):
    user = {"staff": staff_user, "clinician": clinician, "clinicadmin": clinic_admin}[who]
    client.force_login(user)
    response = client.get(reverse("intake:questionnaire"))
    assert response.status_code == 200
    Questionnaire.model_validate(json.loads(response.content))
