"""Staff pages: home, new screening, wizard and screening page; who sees what; audit; wording."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from intake.models import AuditEvent, Role
from tests.factories import make_screening, quiet_answers
from tests.pdf_factories import build_screening
from tests.wizard_helpers import applicable_steps, post_data, start, step_url

VERDICT_WORDS = re.compile(
    r"\b(eligible|ineligible|not eligible|approved|cleared|safe to treat|ok to proceed|"
    r"do not treat|not a candidate)\b",
    re.IGNORECASE,
)


@pytest.fixture
def other_staff(make_user):
    return make_user("other-staff", Role.INTAKE_STAFF)


@pytest.fixture
def no_role(make_user):
    return make_user("no-role")


@pytest.fixture
def own_draft(staff_user):
    from intake.models import Draft

    return Draft.objects.create(created_by=staff_user, last_step="patient")


@pytest.fixture
def own_screening(staff_user):
    return make_screening(staff_user)


def draft_url(draft):
    return step_url(draft, "patient")


# ---------------------------------------------------------------------------
# Permission ladder


@pytest.mark.parametrize("name", ["home", "new_screening"])
def test_anonymous_is_sent_to_login(client, db, name):
    response = client.get(reverse(f"intake:{name}"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_anonymous_cannot_open_a_draft_or_screening(client, own_draft, own_screening):
    for url in (draft_url(own_draft), own_screening.get_absolute_url()):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_user_without_role_is_refused(client, no_role, own_draft, own_screening):
    client.force_login(no_role)
    assert client.get(reverse("intake:home")).status_code == 403
    assert client.get(reverse("intake:new_screening")).status_code == 403
    assert client.post(reverse("intake:new_screening")).status_code == 403
    assert client.get(draft_url(own_draft)).status_code == 403
    assert client.get(own_screening.get_absolute_url()).status_code == 403


def test_staff_opens_own_draft_and_screening(client, staff_user, own_draft, own_screening):
    client.force_login(staff_user)
    assert client.get(reverse("intake:home")).status_code == 200
    assert client.get(draft_url(own_draft)).status_code == 200
    assert client.get(own_screening.get_absolute_url()).status_code == 200


def test_staff_gets_404_for_another_staff_members_draft_and_screening(
    client, other_staff, own_draft, own_screening
):
    client.force_login(other_staff)
    assert client.get(draft_url(own_draft)).status_code == 404
    assert client.post(draft_url(own_draft), {"patient-first_name": "X"}).status_code == 404
    response = client.get(own_screening.get_absolute_url())
    assert response.status_code == 404
    assert own_screening.patient_last_name not in response.content.decode()


@pytest.mark.parametrize("role_fixture", ["clinician", "clinic_admin"])
def test_clinicians_and_admins_see_every_screening_but_not_others_drafts(
    request, client, role_fixture, own_draft, own_screening
):
    user = request.getfixturevalue(role_fixture)
    client.force_login(user)
    assert client.get(own_screening.get_absolute_url()).status_code == 200
    assert client.get(draft_url(own_draft)).status_code == 404
    assert client.get(reverse("intake:home")).status_code == 200


def test_missing_screening_is_404(client, staff_user, db):
    client.force_login(staff_user)
    assert client.get(reverse("intake:screening", args=[999999])).status_code == 404


def test_submitted_draft_urls_redirect_to_the_screening(client, staff_user, own_screening):
    client.force_login(staff_user)
    draft = own_screening.draft
    for slug in ("patient", "review"):
        response = client.get(step_url(draft, slug))
        assert response["Location"] == own_screening.get_absolute_url()


# ---------------------------------------------------------------------------
# Home


def test_home_lists_own_drafts_and_submissions_only(client, staff_user, other_staff):
    client.force_login(staff_user)
    draft = start(client)
    client.post(
        step_url(draft, "patient"),
        post_data("patient", quiet_answers(first_name="Dana", last_name="Mine")),
    )
    make_screening(staff_user, first_name="Sam", last_name="Submitted")
    make_screening(other_staff, first_name="Olga", last_name="Otherpatient")
    body = client.get(reverse("intake:home")).content.decode()
    assert "Dana Mine" in body
    assert "Vital signs" in body  # last step reached
    assert "Sam Submitted" in body
    assert "Awaiting clinician review" in body
    assert "Otherpatient" not in body


def test_home_audits_the_drafts_and_screenings_it_shows_by_id(client, staff_user, other_staff):
    client.force_login(staff_user)
    assert client.get(reverse("intake:home")).status_code == 200
    # Nothing listed, no patient shown: nothing to audit.
    assert not AuditEvent.objects.filter(action="intake.home.viewed").exists()
    draft = start(client)
    mine = make_screening(staff_user, last_name="Mine")
    make_screening(other_staff, last_name="Theirs")
    client.get(reverse("intake:home"))
    event = AuditEvent.objects.get(action="intake.home.viewed")
    assert event.actor == staff_user
    assert event.detail == {"drafts": [draft.pk], "screenings": [mine.pk]}
    assert "Mine" not in str(event.detail)


def test_home_counts_each_flag_once_and_says_when_there_are_none(client, staff_user):
    client.force_login(staff_user)
    make_screening(staff_user, last_name="Quiet")
    make_screening(
        staff_user,
        last_name="Urgent",
        cssrs_2="yes",
        cssrs_3="no",
        cssrs_4="yes",
        cssrs_5="no",
        vit_sbp=190,
        vit_dbp=104,
        vit_bp_repeat_sbp=186,
        vit_bp_repeat_dbp=102,
    )
    body = client.get(reverse("intake:home")).content.decode()
    # SUI-01 (urgent, review severity) is counted once, as urgent; BP-02 is the one review flag.
    assert "1 urgent</span>" in body
    assert "1 review</span>" in body
    assert "2 review" not in body
    assert "No flags" in body


def test_home_lists_stay_tables_for_screen_readers_with_a_label_in_every_cell(client, staff_user):
    client.force_login(staff_user)
    start(client)
    make_screening(staff_user, last_name="Labelled")
    body = client.get(reverse("intake:home")).content.decode()
    tables = re.findall(r"<table [^>]*home-list[^>]*>.*?</table>", body, re.S)
    assert len(tables) == 2
    for table in tables:
        # Explicit roles: a narrow screen shows rows as cards (CSS display), which drops a
        # table's semantics in some browsers.
        assert 'role="table"' in table.split(">", 1)[0]
        headers = re.findall(r'<th scope="col" role="columnheader">(.*?)</th>', table, re.S)
        assert len(headers) == 4 == table.count("<th ")
        rows = re.findall(r'<tr role="row">(.*?)</tr>', table.split("<tbody", 1)[1], re.S)
        assert len(rows) == 1
        cells = re.findall(r'<td role="cell"', rows[0])
        assert len(cells) == 4 == rows[0].count("<td")
        # A card's cells are labelled with their column's header (the action cell needs
        # none: its button says what it does); screen readers skip the copy.
        labels = re.findall(
            r'<span class="home-list-label" aria-hidden="true">(.*?)</span>', rows[0]
        )
        assert labels == [h for h in headers if "visually-hidden" not in h]
        assert rows[0].count("home-list-label") == len(labels)


def test_new_screening_post_creates_a_draft_and_enters_the_wizard(client, staff_user):
    client.force_login(staff_user)
    response = client.post(reverse("intake:new_screening"))
    draft = staff_user.drafts.get()
    assert response["Location"] == step_url(draft, "patient")


# ---------------------------------------------------------------------------
# Screening page


def test_screening_page_shows_status_flags_answers_and_pdf_link(client, staff_user):
    screening = make_screening(staff_user, cv_htn="unsure")
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert "Awaiting clinician review" in body
    assert "Flags are prompts for clinician review, not a treatment decision." in body
    assert "UNS-01" in body
    assert "Heart and blood pressure" in body
    assert "Unsure" in body
    assert "Download PDF summary" in body
    assert reverse("intake:screening_pdf", args=[screening.pk]) in body
    # The data download says what it is for before naming the standard.
    fhir = reverse("intake:screening_fhir", args=[screening.pk])
    assert f'href="{fhir}">Answers for the EHR (FHIR JSON)</a>' in body


def test_screening_page_urgent_flag_comes_first(client, staff_user):
    screening = make_screening(
        staff_user, cssrs_2="yes", cssrs_3="yes", cssrs_4="yes", cssrs_5="no", cv_htn="unsure"
    )
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert body.index("SUI-01") < body.index("UNS-01")
    assert "urgent-banner" in body


def test_screening_page_headings_run_h1_then_the_urgent_banner(client, staff_user):
    screening = make_screening(
        staff_user, cssrs_2="yes", cssrs_3="yes", cssrs_4="yes", cssrs_5="no"
    )
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    banner = body.index("urgent-banner")
    assert body.index('id="main"') < body.index("<h1") < banner < body.index("<h2")
    assert banner < body.index('id="flags-title"')


def test_flag_badges_use_the_same_severity_colours_as_the_home_page(client, staff_user):
    screening = build_screening(
        staff_user,
        flags=(
            ("SUI-01", "review", True, "Urgent one.", []),
            ("BP-02", "review", False, "Review one.", []),
            ("MED-05", "caution", False, "Caution one.", []),
            ("AGE-02", "info", False, "Info one.", []),
        ),
    )
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    badges = {
        rule_id: badge
        for badge, rule_id in re.findall(
            r'<span class="badge ([^"]+)">[^<]*</span>\s*<span class="flag-id[^"]*">([^<]+)<', body
        )
    }
    # One palette for staff screens: .badge.flag-* in app.css (review orange, caution yellow).
    assert badges == {
        "SUI-01": "flag-urgent",
        "BP-02": "flag-review",
        "MED-05": "flag-caution",
        "AGE-02": "flag-info",
    }


def test_every_screening_read_writes_one_audit_row(client, clinician, staff_user):
    screening = make_screening(staff_user)
    client.force_login(clinician)
    for _ in range(2):
        client.get(screening.get_absolute_url())
    events = AuditEvent.objects.filter(action="intake.screening.viewed")
    assert events.count() == 2
    assert {event.object_id for event in events} == {str(screening.pk)}
    assert {event.actor for event in events} == {clinician}


def test_refused_read_writes_no_viewed_row(client, other_staff, own_screening):
    client.force_login(other_staff)
    client.get(own_screening.get_absolute_url())
    assert not AuditEvent.objects.filter(action="intake.screening.viewed").exists()


def test_screening_page_shows_latest_signed_review(client, staff_user, clinician):
    from intake.models import Review

    screening = make_screening(staff_user)
    Review.objects.create(
        screening=screening,
        clinician=clinician,
        determination="More information needed",
        note="Call GP.",
    )
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert "More information needed" in body
    assert "Call GP." in body


def test_screening_page_shows_voided_reviews_marked_beside_the_current_one(
    client, staff_user, clinician, clinic_admin
):
    from intake.models import Review

    screening = make_screening(staff_user)
    Review.objects.create(
        screening=screening,
        clinician=clinician,
        determination="More information needed",
        note="Wrong patient's ECG read.",
        signed_at=dt.datetime(2024, 7, 1, 13, 0, tzinfo=dt.UTC),
        voided_at=dt.datetime(2024, 7, 1, 15, 45, tzinfo=dt.UTC),
        voided_by=clinic_admin,
        void_reason="Signed against the wrong ECG.\nRe-read tomorrow.",
    )
    Review.objects.create(
        screening=screening,
        clinician=clinician,
        determination="Proceed to consultation",
        note="ECG normal.",
        signed_at=dt.datetime(2024, 7, 2, 13, 0, tzinfo=dt.UTC),
    )
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    # Signing order, as on the PDF; only the voided one carries the mark.
    assert body.index("Wrong patient&#x27;s ECG read.") < body.index("ECG normal.")
    assert body.count('class="review-record review-void"') == 1
    assert body.count('class="review-record"') == 1
    assert (
        f"Voided by {clinic_admin.get_username()} at 2024-07-01 11:45 EDT: "
        "Signed against the wrong ECG.<br>Re-read tomorrow."
    ) in body


def test_screening_page_without_reviews_shows_no_review_section(client, staff_user):
    screening = make_screening(staff_user)
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert 'id="review-title"' not in body


def test_screening_page_shows_derived_values_and_local_submission_time(client, staff_user):
    screening = make_screening(staff_user)
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert 'id="derived-title"' in body
    derived = body[body.index('id="derived-title"') : body.index('id="answers-title"')]
    assert f"<dd>{screening.derived['age']}</dd>" in derived
    assert f"<dd>{screening.derived['bmi']}</dd>" in derived
    local = timezone.localtime(screening.submitted_at)
    assert f"Submitted {local:%Y-%m-%d %H:%M} {local.tzname()}" in body


def test_screening_page_keeps_line_breaks_of_free_text(client, staff_user):
    screening = make_screening(staff_user, alg_other="Penicillin: rash\nLatex <gloves>")
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert "Penicillin: rash<br>Latex &lt;gloves&gt;" in body


def test_screening_page_shows_the_flags_a_review_acknowledged(client, staff_user, clinician):
    from intake.models import Review

    screening = make_screening(staff_user, vit_hr=135)
    Review.objects.create(
        screening=screening,
        clinician=clinician,
        determination="More information needed",
        acknowledged_rule_ids=["HR-01"],
    )
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert re.search(r"Flags acknowledged</dt><dd[^>]*>HR-01</dd>", body)


def test_screening_page_lists_earlier_pdf_versions_not_the_latest(client, staff_user, clinician):
    from intake.models import Review

    screening = make_screening(staff_user)
    client.force_login(staff_user)
    assert "earlier-pdfs" not in client.get(screening.get_absolute_url()).content.decode()

    Review.objects.create(
        screening=screening,
        clinician=clinician,
        determination="More information needed",
        signed_at=dt.datetime(2024, 7, 1, 13, 0, tzinfo=dt.UTC),
    )
    add_addendum(
        screening, clinician, "ECG received.", dt.datetime(2024, 7, 2, 13, 0, tzinfo=dt.UTC)
    )
    body = client.get(screening.get_absolute_url()).content.decode()
    pdf = reverse("intake:screening_pdf", args=[screening.pk])
    assert "Earlier versions of the PDF summary (2)" in body
    assert f'href="{pdf}?version=1">Version 1</a> · Submitted' in body
    assert f'href="{pdf}?version=2">Version 2</a> · Review signed · 2024-07-01 09:00 EDT' in body
    assert f"{pdf}?version=3" not in body  # the latest is the main download button


def add_addendum(screening, author, text, signed_at):
    from intake.models import Addendum

    return Addendum.objects.create(
        screening=screening, author=author, text=text, signed_at=signed_at
    )


def test_screening_page_shows_each_addendum_with_author_and_local_time(
    client, staff_user, clinician
):
    screening = make_screening(staff_user)
    clinician.first_name, clinician.last_name = "Dana", "Reyes"
    clinician.save()
    # Added out of order: the page lists them by signing time, as the PDF does.
    add_addendum(
        screening,
        clinician,
        "Second: BP recheck 128/82.",
        dt.datetime(2024, 7, 2, 16, 5, tzinfo=dt.UTC),
    )
    add_addendum(
        screening,
        clinician,
        "First: GP letter received.",
        dt.datetime(2024, 7, 1, 13, 30, tzinfo=dt.UTC),
    )
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert "Addenda" in body
    # America/New_York (EDT in July): 13:30 UTC is 09:30 local.
    signer = f"Dana Reyes ({clinician.get_username()})"
    assert f"Signed by {signer} at 2024-07-01 09:30 EDT" in body
    assert f"Signed by {signer} at 2024-07-02 12:05 EDT" in body
    assert body.index("First: GP letter received.") < body.index("Second: BP recheck 128/82.")
    assert "style=" not in body


def test_screening_page_without_addenda_shows_no_addenda_section(client, staff_user):
    screening = make_screening(staff_user)
    client.force_login(staff_user)
    body = client.get(screening.get_absolute_url()).content.decode()
    assert 'id="addenda-title"' not in body
    assert "Signed by" not in body


def test_addenda_are_not_shown_to_staff_who_cannot_see_the_screening(
    client, other_staff, own_screening, clinician
):
    add_addendum(
        own_screening, clinician, "Private correction.", dt.datetime(2024, 7, 1, tzinfo=dt.UTC)
    )
    client.force_login(other_staff)
    response = client.get(own_screening.get_absolute_url())
    assert response.status_code == 404
    assert "Private correction." not in response.content.decode()


def test_screening_page_queries_do_not_grow_with_addenda(client, staff_user, clinician, make_user):
    screening = make_screening(staff_user)
    client.force_login(staff_user)
    add_addendum(screening, clinician, "One.", dt.datetime(2024, 7, 1, tzinfo=dt.UTC))
    with CaptureQueriesContext(connection) as one:
        assert client.get(screening.get_absolute_url()).status_code == 200
    for number in range(5):
        author = make_user(f"author-{number}", Role.CLINICIAN)
        add_addendum(
            screening, author, f"More {number}.", dt.datetime(2024, 7, 2, number, tzinfo=dt.UTC)
        )
    with CaptureQueriesContext(connection) as six:
        body = client.get(screening.get_absolute_url()).content.decode()
    assert body.count('class="addendum"') == 6
    assert len(six) == len(one), [query["sql"] for query in six.captured_queries]


# ---------------------------------------------------------------------------
# Wording


def test_no_page_implies_a_treatment_verdict(client, staff_user):
    client.force_login(staff_user)
    draft = start(client)
    answers = quiet_answers(
        cv_htn="unsure",
        cssrs_2="yes",
        cssrs_3="yes",
        cssrs_4="yes",
        cssrs_5="no",
        sex_at_birth="female",
        preg_potential="unsure",
        preg_status="unsure",
        preg_planning="no",
        preg_contraception="yes",
        preg_breastfeeding="no",
        lab_preg_test="not_done",
    )
    pages = [client.get(reverse("intake:home")), client.get(reverse("intake:new_screening"))]
    for slug in applicable_steps(answers):
        pages.append(client.get(step_url(draft, slug)))
        response = client.post(step_url(draft, slug), post_data(slug, answers))
    pages.append(client.get(response["Location"]))
    pages.append(client.get(reverse("intake:home")))
    for page in pages:
        assert page.status_code == 200
        text = page.content.decode()
        assert not VERDICT_WORDS.search(text), VERDICT_WORDS.search(text)


def test_pages_have_no_inline_script_or_style(client, staff_user):
    client.force_login(staff_user)
    draft = start(client)
    for response in (client.get(reverse("intake:home")), client.get(draft_url(draft))):
        body = response.content.decode()
        assert "style=" not in body
        assert "<style" not in body
        for match in re.finditer(r"<script([^>]*)>", body):
            attrs = match.group(1)
            assert "src=" in attrs or 'type="application/json"' in attrs
