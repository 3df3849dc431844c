"""A clinician, as a new user would: finds the most urgent screening, signs, sees it locked."""

import io
from pathlib import Path

import pytest
from django.urls import reverse

from intake.models import Review, Role, Screening
from tests.conftest import PASSWORD
from tests.e2e.pages import wheel_over_focused
from tests.e2e.test_wizard_e2e import run_axe
from tests.review_data import days_ago, flagged_screening

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "admin"
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue(make_user):
    """Return (clinician, urgent screening) with a small realistic queue around it."""
    staff = make_user("frontdesk", Role.INTAKE_STAFF)
    staff.first_name, staff.last_name = "Dana", "Front"
    staff.save()
    clinician = make_user("dr.okafor", Role.CLINICIAN)
    clinician.first_name, clinician.last_name = "Sam", "Okafor"
    clinician.save()
    flagged_screening(staff, [], submitted_at=days_ago(4), first_name="Pat", last_name="Smith")
    flagged_screening(
        staff, ["BP-02", "HR-01", "SPO2-01"], submitted_at=days_ago(3), last_name="Nguyen"
    )
    flagged_screening(staff, ["BP-01"], submitted_at=days_ago(2), last_name="Lee")
    urgent = flagged_screening(
        staff,
        ["SUI-01", "BP-02", "AGE-02"],
        submitted_at=days_ago(0),
        first_name="Maria",
        last_name="Gonzalez",
        mrn="MRN-2002",
    )
    return clinician, urgent


def focused_id(page):
    return page.evaluate("document.activeElement.id")


# ``chromium`` (tests/e2e/conftest.py) launches /usr/bin/chromium once per session; it fails
# in CI and skips elsewhere when Chromium is missing.
def test_clinician_signs_the_most_urgent_screening_and_sees_it_locked(live_server, chromium, queue):
    clinician, urgent = queue
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = chromium.new_page(viewport={"width": 1400, "height": 900})
    problems = []
    page.on("console", lambda msg: msg.type == "error" and problems.append(msg.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.url}"))

    page.goto(live_server.url + "/")
    page.fill("#id_username", clinician.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Review panel").click()
    page.get_by_role("link", name="Screenings", exact=True).first.click()

    first_row = page.locator("#result_list tbody tr").first
    assert "Gonzalez, Maria" in first_row.inner_text()
    assert "1 URGENT" in first_row.inner_text().upper()
    page.screenshot(path=str(ARTIFACTS / "e2e-queue.png"), full_page=True)

    first_row.get_by_role("link").first.click()
    page.wait_for_selector("#flags-title")
    body = page.inner_text("#content-main")
    assert "SUI-01" in body and "BP-02" in body
    assert "Answers as submitted" in body
    page.screenshot(path=str(ARTIFACTS / "e2e-change.png"), full_page=True)

    page.get_by_role("link", name="Record review").click()
    page.wait_for_selector("#sign-review")
    # Signing with a flag left unacknowledged is refused and keeps the note.
    page.get_by_label("I have read SUI-01 and considered it.").check()
    page.get_by_label("More information needed").check()
    page.fill("#id_note", "Safety plan discussed; crisis line given. BP to be repeated.")
    page.fill("#id_password", PASSWORD)
    page.click("#sign-review")
    page.wait_for_selector("#error-summary")
    assert page.input_value("#id_note").startswith("Safety plan discussed")
    assert Screening.objects.get(pk=urgent.pk).status == Screening.Status.SUBMITTED
    # The summary has focus; its link takes the keyboard to the flag left unticked.
    assert focused_id(page) == "error-summary"
    assert run_axe(page) == []
    page.get_by_role("link", name="Flag BP-02: Acknowledge this flag.").click()
    assert focused_id(page) == "id_ack_BP-02"
    page.keyboard.press("Space")
    assert page.is_checked("#id_ack_BP-02")

    page.fill("#id_password", PASSWORD)
    page.screenshot(path=str(ARTIFACTS / "e2e-record-review.png"), full_page=True)
    page.click("#sign-review")
    page.wait_for_selector(".rp-locked")
    # Focus moves to the message, so that it is read out.
    assert focused_id(page) == "messages"
    message = page.locator("#messages").get_by_role("status")
    assert message.inner_text() == "Review signed. The screening is locked."
    body = page.inner_text("#content-main")
    assert "Signed and locked" in body
    assert "More information needed" in body
    assert "Record review" not in body
    page.screenshot(path=str(ARTIFACTS / "e2e-locked.png"), full_page=True)

    review = Review.objects.get(screening=urgent)
    assert review.clinician == clinician
    assert review.acknowledged_rule_ids == ["BP-02", "SUI-01"]
    assert Screening.objects.get(pk=urgent.pk).status == Screening.Status.REVIEWED

    # The PDF downloaded afterwards shows the signed review.
    pdf = page.request.get(live_server.url + reverse("intake:screening_pdf", args=[urgent.pk]))
    assert pdf.ok
    from pypdf import PdfReader

    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.body())).pages)
    assert "More information needed" in text
    assert "Okafor" in text
    assert problems == []


def sign_in_to_the_panel(page, live_server, user):
    """Open the panel's sign-in address: the app's sign-in page, then the panel's home."""
    page.goto(live_server.url + "/admin/login/")
    page.wait_for_url(f"{live_server.url}/accounts/login/?next=/admin/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/admin/")


def tablet_page_signed_in(chromium, live_server, clinician):
    """Return (context, page): a 1024x768 touch screen signed in to the review panel."""
    context = chromium.new_context(viewport={"width": 1024, "height": 768}, has_touch=True)
    page = context.new_page()
    sign_in_to_the_panel(page, live_server, clinician)
    return context, page


def test_the_review_form_is_tappable_on_a_tablet(live_server, chromium, queue):
    clinician, urgent = queue
    context, page = tablet_page_signed_in(chromium, live_server, clinician)
    page.goto(live_server.url + reverse("admin:intake_screening_review", args=[urgent.pk]))
    page.click("#sign-review")
    page.wait_for_selector("#error-summary")
    targets = [
        "#user-tools a",
        ".breadcrumbs a",
        "#error-summary a",
        ".rp-ack label",
        ".rp-radios label",
        "#id_password",
        "#sign-review",
    ]
    for selector in targets:
        for box in page.eval_on_selector_all(
            selector, "els => els.map(e => e.getBoundingClientRect().toJSON())"
        ):
            assert box["height"] >= 44 and box["width"] >= 44, (selector, box)
    # Tapping anywhere on a flag's row ticks it.
    page.locator(".rp-ack").first.locator(".rp-ack-message").tap()
    assert page.locator(".rp-ack input").first.is_checked()
    page.screenshot(path=str(ARTIFACTS / "e2e-record-review-tablet.png"))
    context.close()


def test_the_queue_sort_icons_are_tappable_on_a_tablet(live_server, chromium, queue):
    clinician, _urgent = queue
    context, page = tablet_page_signed_in(chromium, live_server, clinician)
    # Sorted by two columns: each shows "remove from sorting" and "toggle", a priority between.
    page.goto(live_server.url + reverse("admin:intake_screening_changelist") + "?o=2.-3")
    # Every point of the 44 px square around each icon's centre reaches that icon's link,
    # with no hover first ("remove" shows only on hover with a mouse).
    missed = page.evaluate(
        """() => Array.from(document.querySelectorAll('#result_list thead .sortoptions a'))
            .flatMap((a) => {
              const box = a.getBoundingClientRect();
              const x = box.left + box.width / 2, y = box.top + box.height / 2;
              const misses = [];
              for (const dx of [-21, -10, 0, 10, 21]) for (const dy of [-21, -10, 0, 10, 21]) {
                const hit = document.elementFromPoint(x + dx, y + dy);
                if (!hit || hit.closest('a') !== a) misses.push([a.className, dx, dy]);
              }
              return misses;
            })"""
    )
    assert page.locator("#result_list thead .sortoptions a").count() == 4
    assert missed == []
    remove = page.locator("#result_list thead .sortoptions a.sortremove").first
    remove.tap()
    page.wait_for_url("**?o=-3")
    page.locator("#result_list").screenshot(path=str(ARTIFACTS / "e2e-queue-sort-tablet.png"))
    context.close()


def test_a_mouse_wheel_over_a_focused_threshold_scrolls_the_page_not_the_value(
    live_server, chromium, make_user
):
    admin = make_user("clinic-admin", Role.CLINIC_ADMIN)
    context = chromium.new_context(viewport={"width": 1280, "height": 600})
    page = context.new_page()
    sign_in_to_the_panel(page, live_server, admin)
    page.goto(live_server.url + reverse("admin:intake_thresholdset_add"))
    field = page.locator('[name="hr_review"]')
    assert wheel_over_focused(page, field, "130") == ("130", True)
    context.close()


def test_the_panels_home_links_are_tappable_on_a_tablet(live_server, chromium, make_user):
    admin = make_user("clinic-admin", Role.CLINIC_ADMIN)
    context, page = tablet_page_signed_in(chromium, live_server, admin)
    page.goto(live_server.url + reverse("admin:index"))
    links = page.locator("#content-main .module a")
    assert links.count() >= 5
    small = [
        (links.nth(index).inner_text(), box["height"])
        for index in range(links.count())
        if (box := links.nth(index).bounding_box())["height"] < 44
    ]
    assert small == []
    context.close()


def test_a_refused_add_user_form_opens_on_its_error_summary(live_server, chromium, make_user):
    admin = make_user("clinic-admin", Role.CLINIC_ADMIN)
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    sign_in_to_the_panel(page, live_server, admin)
    page.goto(live_server.url + reverse("admin:auth_user_add"))
    page.fill("#id_username", "new-nurse")
    page.fill("#id_password1", "a-long-enough-password-42")
    page.fill("#id_password2", "another-long-password-42")
    page.get_by_role("button", name="Save", exact=True).click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    page.wait_for_load_state("load")
    # Focused over Django's own first-field focus of an add page.
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.locator(".errornote").count() == 0
    summary.get_by_role("link").click()
    assert page.evaluate("document.activeElement.id") == "id_password2"
    page.screenshot(path=str(ARTIFACTS / "e2e-add-user-error-summary.png"))
    context.close()
