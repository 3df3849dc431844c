"""The review panel in the admin: the permission ladder for every URL and action, the queue."""

import re
from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse, reverse_lazy
from django.utils.html import escape

from intake import reviews, thresholds
from intake.accounts import LAST_CLINIC_ADMIN
from intake.admin import SEARCHES_KEY
from intake.admin_forms import error_summary
from intake.models import (
    AuditEvent,
    Determination,
    Review,
    Role,
    Screening,
    ThresholdSet,
)
from tests.conftest import PASSWORD
from tests.review_data import days_ago, flagged_screening

pytestmark = pytest.mark.django_db

LADDER = ("anonymous", "staff", "clinician", "clinic_admin")


@pytest.fixture
def ladder(make_user):
    """Return the users of the permission ladder by name (None for anonymous)."""
    return {
        "anonymous": None,
        "staff": make_user("staff", Role.INTAKE_STAFF),
        "clinician": make_user("clin", Role.CLINICIAN),
        "clinic_admin": make_user("boss", Role.CLINIC_ADMIN),
    }


def signed(screening, user):
    reviews.record_review(
        screening_id=screening.pk,
        user=user,
        determination_id=Determination.objects.first().pk,
        note="Reviewed.",
        acknowledged_rule_ids=[f.rule_id for f in reviews.flags_to_acknowledge(screening)],
        password=PASSWORD,
    )
    return screening


def admin_url(name, *args):
    return reverse(f"admin:{name}", args=args)


def screening_for(users):
    return flagged_screening(users["staff"], ["SUI-01", "BP-01"])


def review_post(screening):
    return {
        "reviews_seen": screening.reviews.count(),
        "ack_SUI-01": "on",
        "determination": Determination.objects.first().pk,
        "note": "Called the patient; plan in chart.",
        "password": PASSWORD,
    }


def threshold_post(based_on_version=0, **values):
    """Return the threshold form's POST data: the defaults, updated by ``values``."""
    data = {name: str(value) for name, value in thresholds.DEFAULTS.items()}
    return {**data, "based_on_version": str(based_on_version), **values}


# Each case: (setup(users) -> (method, url, data), {role: expected}, check(users, response)).
# Expected: "login" (redirect to the admin login), an HTTP status, or "ok" (status checked by
# the case's own check).


def case_index(users):
    return "get", admin_url("index"), None


def case_changelist(users):
    screening_for(users)
    return "get", admin_url("intake_screening_changelist"), None


def case_change(users):
    return "get", admin_url("intake_screening_change", screening_for(users).pk), None


def case_change_post(users):
    return "post", admin_url("intake_screening_change", screening_for(users).pk), {"x": "1"}


def case_add(users):
    return "get", admin_url("intake_screening_add"), None


def case_delete(users):
    return "post", admin_url("intake_screening_delete", screening_for(users).pk), {"post": "yes"}


def case_history(users):
    return "get", admin_url("intake_screening_history", screening_for(users).pk), None


def case_claim(users):
    return "post", admin_url("intake_screening_claim", screening_for(users).pk), {}


def case_review_get(users):
    return "get", admin_url("intake_screening_review", screening_for(users).pk), None


def case_review_post(users):
    screening = screening_for(users)
    return "post", admin_url("intake_screening_review", screening.pk), review_post(screening)


def case_addendum_get(users):
    screening = signed(screening_for(users), users["clinician"])
    return "get", admin_url("intake_screening_addendum", screening.pk), None


def case_addendum_post(users):
    screening = signed(screening_for(users), users["clinician"])
    review = reviews.current_review(screening)
    data = {"text": "Spoke to the GP.", "password": PASSWORD, "review": review.pk}
    return "post", admin_url("intake_screening_addendum", screening.pk), data


def case_unlock_get(users):
    screening = signed(screening_for(users), users["clinician"])
    return "get", admin_url("intake_screening_unlock", screening.pk), None


def case_unlock_post(users):
    screening = signed(screening_for(users), users["clinician"])
    data = {"reason": "Wrong chart", "review": reviews.current_review(screening).pk}
    return "post", admin_url("intake_screening_unlock", screening.pk), data


def case_export(users):
    screening = screening_for(users)
    data = {"action": "export_csv", "_selected_action": [screening.pk], "index": "0"}
    return "post", admin_url("intake_screening_changelist"), data


def case_thresholds_changelist(users):
    return "get", admin_url("intake_thresholdset_changelist"), None


def case_thresholds_add_get(users):
    return "get", admin_url("intake_thresholdset_add"), None


def case_thresholds_add_post(users):
    data = threshold_post(hr_review="125", note="Protocol update")
    return "post", admin_url("intake_thresholdset_add"), data


def case_thresholds_change_get(users):
    version = ThresholdSet.objects.create(version=1, values=dict(thresholds.DEFAULTS))
    return "get", admin_url("intake_thresholdset_change", version.pk), None


def case_thresholds_change_post(users):
    version = ThresholdSet.objects.create(version=1, values=dict(thresholds.DEFAULTS))
    return "post", admin_url("intake_thresholdset_change", version.pk), {"note": "edited"}


def case_determination_add_get(users):
    return "get", admin_url("intake_determination_add"), None


def case_determination_add_post(users):
    data = {"label": "Needs cardiology opinion", "position": "9", "active": "on"}
    return "post", admin_url("intake_determination_add"), data


def case_determination_change_get(users):
    return "get", admin_url("intake_determination_change", Determination.objects.first().pk), None


def case_determination_change_post(users):
    determination = Determination.objects.get(label="Referred elsewhere")
    data = {"label": determination.label, "position": "3"}  # "active" unticked: deactivate
    return "post", admin_url("intake_determination_change", determination.pk), data


def case_determination_delete(users):
    determination = Determination.objects.first()
    return "post", admin_url("intake_determination_delete", determination.pk), {"post": "yes"}


def case_audit_changelist(users):
    return "get", admin_url("intake_auditevent_changelist"), None


def case_audit_change(users):
    event = AuditEvent.objects.create(action="intake.test.event")
    return "get", admin_url("intake_auditevent_change", event.pk), None


def case_audit_delete(users):
    event = AuditEvent.objects.create(action="intake.test.event")
    return "post", admin_url("intake_auditevent_delete", event.pk), {"post": "yes"}


def case_user_changelist(users):
    return "get", admin_url("auth_user_changelist"), None


def case_user_add_post(users):
    data = {
        "username": "newnurse",
        "usable_password": "true",
        "password1": "a-long-enough-password-42",
        "password2": "a-long-enough-password-42",
        "role": "clinician",
    }
    return "post", admin_url("auth_user_add"), data


def case_user_change_get(users):
    return "get", admin_url("auth_user_change", users["staff"].pk), None


def case_group_changelist(users):
    return "get", admin_url("auth_group_changelist"), None


def check_claimed(users, response):
    screening = Screening.objects.get()
    assert screening.status == Screening.Status.IN_REVIEW


def check_signed(users, response):
    assert response.status_code == 302
    assert Screening.objects.get().status == Screening.Status.REVIEWED


def check_amended(users, response):
    assert response.status_code == 302
    assert Screening.objects.get().status == Screening.Status.AMENDED


def check_unlocked(users, response):
    assert response.status_code == 302
    assert Review.objects.get().is_void


def check_csv(users, response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]


def check_no_csv(users, response):
    assert response.status_code in (200, 302)
    assert not response["Content-Type"].startswith("text/csv")
    assert not AuditEvent.objects.filter(action="intake.screening.exported").exists()


def check_new_version(users, response):
    assert response.status_code == 302
    assert ThresholdSet.objects.get().values["hr_review"] == 125


def check_added_determination(users, response):
    assert response.status_code == 302
    assert Determination.objects.filter(label="Needs cardiology opinion").exists()


def check_deactivated(users, response):
    assert response.status_code == 302
    assert not Determination.objects.get(label="Referred elsewhere").active


def check_user_created(users, response):
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newnurse")
    assert user.is_staff and not user.is_superuser
    assert list(user.groups.values_list("name", flat=True)) == ["clinician"]


def check_nothing_deleted(users, response):
    assert response.status_code == 403


# Anonymous users meet the sign-in page; intake staff, signed in, the app's "Not allowed".
LOGIN = {"anonymous": "login", "staff": 403}
BOTH_200 = {**LOGIN, "clinician": 200, "clinic_admin": 200}
ADMIN_ONLY_200 = {**LOGIN, "clinician": 403, "clinic_admin": 200}
NOBODY = {**LOGIN, "clinician": 403, "clinic_admin": 403}
BOTH_OK = {**LOGIN, "clinician": "ok", "clinic_admin": "ok"}
ADMIN_OK = {**LOGIN, "clinician": 403, "clinic_admin": "ok"}
BOTH_405 = {**LOGIN, "clinician": 405, "clinic_admin": 405}
BOTH_302 = {**LOGIN, "clinician": 302, "clinic_admin": 302}

CASES = {
    "index": (case_index, BOTH_200, None),
    "screening changelist": (case_changelist, BOTH_200, None),
    "screening change view": (case_change, BOTH_200, None),
    "screening change POST": (case_change_post, BOTH_405, None),
    "screening add": (case_add, NOBODY, None),
    "screening delete": (case_delete, NOBODY, None),
    "screening history": (case_history, BOTH_302, None),
    "claim": (case_claim, BOTH_302, check_claimed),
    "record review GET": (case_review_get, BOTH_200, None),
    "record review POST": (case_review_post, BOTH_OK, check_signed),
    "addendum GET": (case_addendum_get, BOTH_200, None),
    "addendum POST": (case_addendum_post, BOTH_OK, check_amended),
    "unlock GET": (case_unlock_get, ADMIN_ONLY_200, None),
    "unlock POST": (case_unlock_post, ADMIN_OK, check_unlocked),
    "export action": (case_export, {**LOGIN, "clinician": "no", "clinic_admin": "ok"}, check_csv),
    "thresholds changelist": (case_thresholds_changelist, BOTH_200, None),
    "thresholds add GET": (case_thresholds_add_get, ADMIN_ONLY_200, None),
    "thresholds add POST": (case_thresholds_add_post, ADMIN_OK, check_new_version),
    "thresholds change GET": (case_thresholds_change_get, BOTH_200, None),
    "thresholds change POST": (case_thresholds_change_post, NOBODY, None),
    "determination add GET": (case_determination_add_get, ADMIN_ONLY_200, None),
    "determination add POST": (case_determination_add_post, ADMIN_OK, check_added_determination),
    "determination change GET": (case_determination_change_get, BOTH_200, None),
    "determination change POST": (case_determination_change_post, ADMIN_OK, check_deactivated),
    "determination delete": (case_determination_delete, NOBODY, None),
    "audit changelist": (case_audit_changelist, ADMIN_ONLY_200, None),
    "audit change view": (case_audit_change, ADMIN_ONLY_200, None),
    "audit delete": (case_audit_delete, NOBODY, None),
    "user changelist": (case_user_changelist, ADMIN_ONLY_200, None),
    "user change GET": (case_user_change_get, ADMIN_ONLY_200, None),
    "user add POST": (case_user_add_post, ADMIN_OK, check_user_created),
    "group changelist": (case_group_changelist, ADMIN_ONLY_200, None),
}


@pytest.mark.parametrize("role", LADDER)
@pytest.mark.parametrize("case", list(CASES))
def test_permission_ladder(client, ladder, case, role):
    setup, expected, check = CASES[case]
    method, url, data = setup(ladder)
    if ladder[role] is not None:
        client.force_login(ladder[role])
    response = getattr(client, method)(url, data or {})
    want = expected[role]
    if want == "login":
        assert response.status_code == 302
        # The site login (LoginRequiredMiddleware) or the admin's.
        assert response.url.startswith((reverse("login"), reverse("admin:login")))
    elif want == "ok":
        check(ladder, response)
    elif want == "no":
        check_no_csv(ladder, response)
    else:
        assert response.status_code == want, response.content[:500]
        if check is not None and want in (200, 302):
            check(ladder, response)


# -- the queue -----------------------------------------------------------------------


def test_queue_lists_the_most_urgent_first_then_most_review_flags_then_oldest(
    client, clinician, staff_user
):
    quiet_old = flagged_screening(staff_user, [], submitted_at=days_ago(9), last_name="Old")
    two_review = flagged_screening(staff_user, ["BP-02", "HR-01"], last_name="Tworeview")
    urgent = flagged_screening(staff_user, ["SUI-01"], submitted_at=days_ago(0), last_name="Urg")
    one_review_old = flagged_screening(
        staff_user, ["HR-01"], submitted_at=days_ago(5), last_name="Onerevold"
    )
    one_review_new = flagged_screening(
        staff_user, ["BP-02"], submitted_at=days_ago(1), last_name="Onerevnew"
    )
    quiet_new = flagged_screening(staff_user, ["AGE-02"], submitted_at=days_ago(1), last_name="N")
    client.force_login(clinician)
    response = client.get(reverse("admin:intake_screening_changelist"))
    shown = [row.pk for row in response.context["cl"].result_list]
    expected = [urgent, two_review, one_review_old, one_review_new, quiet_old, quiet_new]
    assert shown == [s.pk for s in expected]


def test_queue_headers_show_its_default_order_most_urgent_first(client, clinician, staff_user):
    flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    response = client.get(reverse("admin:intake_screening_changelist"))
    cl = response.context["cl"]
    columns = {name: index for index, name in enumerate(cl.list_display)}
    assert list(cl.get_ordering_field_columns().items()) == [
        (columns["flag_summary"], "desc"),
        (columns["submitted"], "asc"),
    ]
    page = response.content.decode()
    assert 'class="sortable column-flag_summary sorted descending"' in page
    assert 'class="sortable column-submitted sorted ascending"' in page


def test_queue_offers_show_all_only_when_filtered_or_searched(client, clinician, staff_user):
    flagged_screening(staff_user, ["SUI-01"], last_name="Urgent")
    flagged_screening(staff_user, [], last_name="Quiet")
    client.force_login(clinician)
    url = reverse("admin:intake_screening_changelist")
    unfiltered = client.get(url)
    assert unfiltered.context["cl"].full_result_count == 2
    assert "Show all" not in unfiltered.content.decode()
    for query in ({"urgent": "yes"}, {"q": "Quiet"}):
        filtered = client.get(url, query, follow=True)
        cl = filtered.context["cl"]
        assert cl.result_count == 1 and cl.full_result_count is None
        assert "1 result (" in filtered.content.decode()
        assert "Show all" in filtered.content.decode()


def test_queue_shows_flag_counts_as_text_badges_and_who_is_reviewing(client, clinician, staff_user):
    screening = flagged_screening(staff_user, ["SUI-01", "BP-02", "BP-01", "AGE-02"])
    clinician.first_name, clinician.last_name = "Sam", "Okafor"
    clinician.save()
    reviews.claim_screening(screening_id=screening.pk, user=clinician)
    client.force_login(clinician)
    html = client.get(reverse("admin:intake_screening_changelist")).content.decode()
    # SUI-01 is urgent (with review severity) and is counted once, as urgent.
    for text in (
        "1 urgent",
        "1 review",
        "1 caution",
        "1 info",
        'In review</span><span class="queue-reviewer">by Sam Okafor</span>',
    ):
        assert text in html
    assert "2 review" not in html
    assert 'class="flag-badge flag-urgent"' in html
    assert "style=" not in html.split('id="result_list"')[1]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("urgent=yes", {"Urgent"}),
        ("urgent=no", {"Caution", "Quiet"}),
        ("severity=caution", {"Caution"}),
        ("severity=none", {"Quiet"}),
        ("state=submitted", {"Urgent", "Caution", "Quiet"}),
        ("state=reviewed", set()),
        ("state=all", {"Urgent", "Caution", "Quiet"}),
        ("q=Caution", {"Caution"}),
        ("q=MRN-9", {"Quiet"}),
    ],
)
def test_queue_filters_and_search(client, clinician, staff_user, query, expected):
    flagged_screening(staff_user, ["SUI-01"], last_name="Urgent")
    flagged_screening(staff_user, ["BP-01"], last_name="Caution")
    flagged_screening(staff_user, [], last_name="Quiet", mrn="MRN-9")
    client.force_login(clinician)
    url = reverse("admin:intake_screening_changelist") + "?" + query
    response = client.get(url, follow=True)
    assert {s.patient_last_name for s in response.context["cl"].result_list} == expected


def test_queue_shows_what_is_still_to_review_unless_asked_for_more(client, clinician, staff_user):
    signed = flagged_screening(staff_user, ["SUI-01"], last_name="Signed", submitted_at=days_ago(3))
    Screening.objects.filter(pk=signed.pk).update(status=Screening.Status.REVIEWED)
    flagged_screening(staff_user, ["BP-02"], last_name="Awaiting", submitted_at=days_ago(2))
    claimed = flagged_screening(staff_user, [], last_name="Claimed", submitted_at=days_ago(1))
    reviews.claim_screening(screening_id=claimed.pk, user=clinician)
    client.force_login(clinician)
    url = reverse("admin:intake_screening_changelist")

    def names(query=""):
        response = client.get(url + query)
        return [s.patient_last_name for s in response.context["cl"].result_list], response

    shown, response = names()
    assert "<title>Screenings to review |" in response.content.decode()
    assert shown == ["Awaiting", "Claimed"]  # the signed urgent one no longer heads the queue
    state = next(f for f in response.context["cl"].filter_specs if f.title == "review state")
    selected = [c["display"] for c in state.choices(response.context["cl"]) if c["selected"]]
    assert [str(label) for label in selected] == ["To review (awaiting or in review)"]
    assert names("?state=all")[0] == ["Signed", "Awaiting", "Claimed"]
    assert names("?state=reviewed")[0] == ["Signed"]
    assert names("?state=in_review")[0] == ["Claimed"]
    assert names("?state=bogus")[0] == ["Awaiting", "Claimed"]
    # The heading says which screenings are listed.
    headings = {
        "": "Screenings to review",
        "?state=all": "All screenings",
        "?state=reviewed": "Screenings: Signed",
        "?state=bogus": "Screenings to review",
    }
    for query, heading in headings.items():
        body = names(query)[1].content.decode()
        assert f"<h1>{heading}</h1>" in body and f"<title>{heading} |" in body


def test_is_open_is_computed_by_the_database_from_the_status(staff_user):
    screening = flagged_screening(staff_user, [])
    for status in Screening.Status:
        Screening.objects.filter(pk=screening.pk).update(status=status)
        expected = status in (Screening.Status.SUBMITTED, Screening.Status.IN_REVIEW)
        assert Screening.objects.get(pk=screening.pk).is_open is expected, status


def test_the_default_queue_is_one_indexed_equality(client, clinician, staff_user):
    flagged_screening(staff_user, ["BP-01"])
    client.force_login(clinician)
    response = client.get(reverse("admin:intake_screening_changelist"))
    sql = str(response.context["cl"].queryset.query)
    assert '"is_open" IN (' in sql and "status" not in sql.split("WHERE")[1]
    if connection.vendor == "sqlite":  # a bare "WHERE is_open" would scan the table
        plan = response.context["cl"].queryset.explain()
        assert "USING INDEX queue_open_order" in plan, plan


def test_queue_submitter_filter_lists_only_submitters_without_scanning_screenings(
    client, clinician, staff_user, make_user
):
    other = make_user("staff2", Role.INTAKE_STAFF)
    make_user("idle", Role.INTAKE_STAFF)
    flagged_screening(staff_user, [], last_name="Mine")
    flagged_screening(other, [], last_name="Theirs")
    client.force_login(clinician)
    url = reverse("admin:intake_screening_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    submitter = next(f for f in response.context["cl"].filter_specs if f.title == "submitted by")
    assert {label for _pk, label in submitter.lookup_choices} == {"staff", "staff2"}
    assert not any("DISTINCT" in q["sql"] for q in queries.captured_queries)  # skip scan
    assert sum("COUNT(" in q["sql"] for q in queries.captured_queries) == 1
    response = client.get(url + f"?submitted_by__id__exact={other.pk}")
    assert [s.patient_last_name for s in response.context["cl"].result_list] == ["Theirs"]


def test_queue_searches_by_screening_number(client, clinician, staff_user):
    flagged_screening(staff_user, [])
    target = flagged_screening(staff_user, [], last_name="Target")
    client.force_login(clinician)
    response = search_queue(client, str(target.pk))
    assert [s.pk for s in response.context["cl"].result_list] == [target.pk]


def search_queue(client, term, **params):
    """Search the queue the way its search form does (a POST); return the page shown."""
    url = reverse("admin:intake_screening_search")
    return client.post(url, {"q": term, **params}, follow=True)


def test_queue_search_terms_never_appear_in_a_url(client, clinician, staff_user):
    flagged_screening(staff_user, ["SUI-01"], last_name="Urgent")
    flagged_screening(staff_user, [], last_name="O'Brien", mrn="MRN-2040")
    client.force_login(clinician)
    for term in ("O'Brien", "MRN-2040"):
        response = search_queue(client, term, urgent="no")
        ((url, status),) = response.redirect_chain
        assert status == 302
        assert term not in unquote(url) and "q=" not in url
        assert "urgent=no" in url and "search=" in url
        cl = response.context["cl"]
        assert [s.patient_last_name for s in cl.result_list] == ["O'Brien"]
        html = response.content.decode()
        assert f'value="{escape(term)}"' in html  # the box still shows the term
        hrefs = [unquote(unescape(h)) for h in re.findall(r'href="([^"]*)"', html)]
        assert hrefs and not [h for h in hrefs if term in h]
        change_link = next(h for h in hrefs if "/change/" in h)
        assert "search" in change_link  # results keep the search, by token
    assert 'method="post"' in html and 'autocomplete="off"' in html


def test_a_search_typed_into_the_url_moves_to_the_session(client, clinician, staff_user):
    flagged_screening(staff_user, [], last_name="Quiet")
    client.force_login(clinician)
    url = reverse("admin:intake_screening_changelist")
    response = client.get(url, {"q": "Quiet", "urgent": "no"})
    assert response.status_code == 302
    assert "Quiet" not in response.url and "urgent=no" in response.url
    followed = client.get(response.url)
    assert [s.patient_last_name for s in followed.context["cl"].result_list] == ["Quiet"]
    # A typed term wins over a stale token beside it.
    response = client.get(url, {"q": "Quiet", "search": "stale"}, follow=True)
    assert [s.patient_last_name for s in response.context["cl"].result_list] == ["Quiet"]
    assert "stale" not in response.redirect_chain[-1][0]


def test_an_unknown_search_token_says_the_search_expired(client, clinician, staff_user):
    flagged_screening(staff_user, [], last_name="Quiet")
    client.force_login(clinician)
    url = reverse("admin:intake_screening_changelist")
    response = client.get(url, {"search": "forged", "urgent": "no"}, follow=True)
    ((target, _status),) = response.redirect_chain
    assert "search=" not in target and "urgent=no" in target
    assert "That search has expired" in response.content.decode()


def test_an_empty_search_clears_the_search_and_keeps_the_filters(client, clinician, staff_user):
    flagged_screening(staff_user, [], last_name="Quiet")
    flagged_screening(staff_user, [], last_name="Other")
    client.force_login(clinician)
    search_queue(client, "Quiet")
    response = search_queue(client, "  ", urgent="no")
    ((target, _status),) = response.redirect_chain
    assert "search=" not in target and "urgent=no" in target
    assert len(response.context["cl"].result_list) == 2


def test_only_review_panel_users_can_search_the_queue(client, staff_user):
    client.force_login(staff_user)
    response = client.post(reverse("admin:intake_screening_search"), {"q": "x"})
    assert response.status_code == 403
    assert SEARCHES_KEY not in client.session


@pytest.mark.parametrize(
    "url", [reverse_lazy("admin:index"), reverse_lazy("admin:password_change")]
)
def test_intake_staff_opening_the_review_panel_get_the_apps_not_allowed_page(
    client, staff_user, url
):
    client.force_login(staff_user)
    response = client.get(url)
    assert response.status_code == 403
    html = response.content.decode()
    assert '<h1 class="h3">Not allowed</h1>' in html
    assert f'href="{reverse("intake:home")}"' in html
    assert "not authorized" not in html and "different account" not in html
    client.logout()
    response = client.get(url)  # anonymous: the sign-in page, as before
    assert response.status_code == 302
    assert response.url.startswith((reverse("login"), reverse("admin:login")))


def login_target(response):
    """Return the ``next`` of a redirect to the app's sign-in page (failing on any other)."""
    assert response.status_code == 302
    url = urlsplit(response.url)
    assert url.path == reverse("login") and not url.netloc
    (target,) = parse_qs(url.query)["next"]
    return target


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("", "/admin/"),
        ("?next=/admin/intake/screening/%3Fstate%3Dall", "/admin/intake/screening/?state=all"),
        ("?next=https://evil.example/admin/", "/admin/"),
        ("?next=//evil.example/", "/admin/"),
        ("?next=javascript:alert(1)", "/admin/"),
    ],
)
def test_the_panels_sign_in_address_sends_a_signed_out_user_to_the_apps_sign_in(
    client, query, target
):
    response = client.get(reverse("admin:login") + query)
    assert login_target(response) == target


def test_a_panel_page_opened_signed_out_ends_on_the_apps_sign_in_and_back(client, clinician):
    page = reverse("admin:intake_screening_changelist") + "?state=all"
    response = client.get(page, follow=True)
    assert response.redirect_chain[-1][0].startswith(reverse("login") + "?")
    assert "Sign in" in response.content.decode() and "Log in" not in response.content.decode()
    signed_in = client.post(
        response.redirect_chain[-1][0], {"username": clinician.username, "password": PASSWORD}
    )
    assert signed_in.status_code == 302 and signed_in.url == page


def test_the_panels_sign_in_address_sends_a_signed_in_user_home_or_to_not_allowed(
    client, staff_user, clinician
):
    client.force_login(clinician)
    response = client.get(reverse("admin:login") + "?next=/admin/auth/user/")
    assert response.status_code == 302 and response.url == reverse("admin:index")
    client.force_login(staff_user)
    response = client.get(reverse("admin:login"))
    assert response.status_code == 403
    html = response.content.decode()
    assert '<h1 class="h3">Not allowed</h1>' in html
    assert "authenticated as" not in html and "different account" not in html


def test_a_sign_in_posted_to_the_panels_address_is_the_apps_sign_in(client, clinician):
    url = reverse("admin:login")
    refused = client.post(url, {"username": clinician.username, "password": "wrong"})
    assert refused.status_code == 200
    html = refused.content.decode()
    assert "Please enter a correct username and password" in html
    assert 'id="login-errors"' in html  # the app's page, not Django's admin sign-in
    assert "_auth_user_id" not in client.session
    data = {"username": clinician.username, "password": PASSWORD}
    signed_in = client.post(url, data)
    assert signed_in.status_code == 302 and signed_in.url == reverse("admin:index")
    assert client.session["_auth_user_id"] == str(clinician.pk)
    client.logout()
    away = client.post(url, {**data, "next": "https://evil.example/"})
    assert away.status_code == 302 and away.url == reverse("admin:index")


@pytest.mark.parametrize("action", ["claim", "release", "search"])
def test_a_button_action_reached_by_address_changes_nothing_and_shows_its_page(
    client, clinician, staff_user, action
):
    """As after signing in again with ``next`` pointing at a button's action: never a 405."""
    screening = flagged_screening(staff_user, ["BP-01"])
    if action == "release":
        reviews.claim_screening(screening_id=screening.pk, user=clinician)
    client.force_login(clinician)
    args = [] if action == "search" else [screening.pk]
    response = client.get(reverse(f"admin:intake_screening_{action}", args=args), follow=True)
    assert response.status_code == 200
    screening.refresh_from_db()
    if action == "search":
        assert response.redirect_chain[-1][0] == reverse("admin:intake_screening_changelist")
        assert SEARCHES_KEY not in client.session
        return
    assert response.redirect_chain[-1][0] == reverse(
        "admin:intake_screening_change", args=[screening.pk]
    )
    assert "Nothing was changed: that action is done with its button on this page." in (
        response.content.decode()
    )
    expected = clinician if action == "release" else None
    assert screening.claimed_by == expected


def _queue_queries(client, user):
    client.force_login(user)
    url = reverse("admin:intake_screening_changelist")
    client.get(url)  # warm caches (content types, session)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_queue_query_count_is_the_same_for_1_and_200_screenings(
    client, clinician, staff_user, make_user
):
    flagged_screening(staff_user, ["SUI-01"])
    reviews.claim_screening(screening_id=Screening.objects.get().pk, user=clinician)
    one = _queue_queries(client, clinician)
    other_staff = make_user("staff2", Role.INTAKE_STAFF)
    for index in range(199):
        screening = flagged_screening(
            other_staff if index % 2 else staff_user,
            ["BP-02", "BP-01"] if index % 3 else [],
            last_name=f"Patient{index}",
        )
        if index % 5 == 0:
            reviews.claim_screening(screening_id=screening.pk, user=clinician)
    assert Screening.objects.count() == 200
    assert _queue_queries(client, clinician) == one


def test_queue_has_no_add_or_delete(client, clinic_admin, staff_user):
    flagged_screening(staff_user, [])
    client.force_login(clinic_admin)
    response = client.get(reverse("admin:intake_screening_changelist"))
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert "delete_selected" not in actions
    assert "export_csv" in actions
    assert reverse("admin:intake_screening_add") not in response.content.decode()


def test_clinicians_do_not_see_the_export_action(client, clinician, staff_user):
    flagged_screening(staff_user, [])
    client.force_login(clinician)
    response = client.get(reverse("admin:intake_screening_changelist"))
    form = response.context["action_form"]
    assert form is None or "export_csv" not in dict(form.fields["action"].choices)


# -- the screening page and the review form -----------------------------------------------


def test_screening_page_shows_the_frozen_snapshot_read_only(client, clinician, staff_user):
    screening = flagged_screening(staff_user, ["SUI-01", "BP-01"])
    client.force_login(clinician)
    response = client.get(reverse("admin:intake_screening_change", args=[screening.pk]))
    html = response.content.decode()
    for text in (
        "Rivera, Alex",
        "MRN-1001",
        "SUI-01",
        "Suicidal thoughts with a plan or intent were reported.",
        "K12",
        "Seated systolic",  # evidence shown as "label: value"
        "Major depressive disorder",  # a choice label, not the key
        "Record review",
        "Claim for review",
        "intake.screening.viewed",
    ):
        assert text in html, text
    assert "<input" not in html.split('id="answers-title"')[1].split('id="history"')[0]
    assert "Unlock" not in html


@override_settings(SUICIDE_SAFETY_PROTOCOL="Call the on-call psychiatrist at 555-0100.")
def test_review_page_of_an_urgent_screening_opens_with_the_urgent_banner(
    client, clinician, staff_user
):
    urgent = flagged_screening(staff_user, ["SUI-01", "BP-01"])
    quiet = flagged_screening(staff_user, ["BP-01"])
    client.force_login(clinician)
    html = client.get(reverse("admin:intake_screening_change", args=[urgent.pk])).content.decode()
    banner = html.split('class="rp-urgent" role="alert"')[1].split("</div>")[0]
    assert "Urgent: suicide-risk answers need action now" in banner
    assert "Suicidal thoughts with a plan or intent were reported." in banner
    assert "Call the on-call psychiatrist at 555-0100." in banner
    assert html.index("rp-urgent") < html.index('id="flags-title"')  # above everything else
    html = client.get(reverse("admin:intake_screening_change", args=[quiet.pk])).content.decode()
    assert "rp-urgent" not in html and "need action now" not in html


@override_settings(SUICIDE_SAFETY_PROTOCOL="")
def test_review_page_says_when_the_clinic_protocol_is_not_entered(client, clinician, staff_user):
    urgent = flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    html = client.get(reverse("admin:intake_screening_change", args=[urgent.pk])).content.decode()
    banner = html.split('class="rp-urgent" role="alert"')[1].split("</div>")[0]
    assert "Clinic protocol:</strong> Not entered in this app." in banner
    staff = Client()
    staff.force_login(staff_user)
    page = staff.get(urgent.get_absolute_url()).content.decode()
    assert "Clinic protocol:</strong> Not entered in this app." in page


def test_review_form_needs_each_flag_acknowledged_and_keeps_the_note(client, clinician, staff_user):
    screening = flagged_screening(staff_user, ["SUI-01", "BP-02"])
    client.force_login(clinician)
    url = reverse("admin:intake_screening_review", args=[screening.pk])
    data = review_post(screening)  # BP-02 not ticked
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acknowledge this flag." in html
    assert "Called the patient; plan in chart." in html
    assert PASSWORD not in html
    assert not Review.objects.exists()


def test_review_form_preselects_no_determination(client, clinician, staff_user):
    screening = flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    html = client.get(reverse("admin:intake_screening_review", args=[screening.pk])).content
    assert b"checked" not in html
    for determination in Determination.objects.filter(active=True):
        assert determination.label.encode() in html


def test_an_option_withdrawn_after_the_form_opened_says_so_and_keeps_the_note(
    client, clinician, staff_user
):
    screening = flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    url = reverse("admin:intake_screening_review", args=[screening.pk])
    assert client.get(url).status_code == 200
    data = review_post(screening)
    Determination.objects.filter(pk=data["determination"]).update(active=False)  # meanwhile
    response = client.post(url, data)
    assert response.status_code == 200
    assert response.context["form"].errors["determination"] == [
        "This option was withdrawn by a clinic admin after the form was opened; choose another."
    ]
    html = response.content.decode()
    assert "Called the patient; plan in chart." in html
    assert PASSWORD not in html
    assert not Review.objects.exists()
    # Any other unknown option is still Django's own refusal.
    response = client.post(url, {**data, "determination": "99999"})
    assert "Select a valid choice." in response.context["form"].errors["determination"][0]


def two_clinicians_on_a_review_form(client, make_user, staff_user):
    """Return (Sam First, second, screening, review URL), ``client`` signed in as second."""
    first = make_user("first", Role.CLINICIAN)
    first.first_name, first.last_name = "Sam", "First"
    first.save()
    second = make_user("second", Role.CLINICIAN)
    screening = flagged_screening(staff_user, ["SUI-01"])
    url = reverse("admin:intake_screening_review", args=[screening.pk])
    client.force_login(second)
    return first, second, screening, url


def test_a_stale_second_signature_gets_a_clear_message_and_keeps_its_note(
    client, make_user, staff_user
):
    first, second, screening, url = two_clinicians_on_a_review_form(client, make_user, staff_user)
    assert client.get(url).status_code == 200  # second opens the form...
    signed(screening, first)  # ...first signs meanwhile
    data = review_post(screening)
    data["note"] = "Second clinician's careful note."
    response = client.post(url, data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "already signed by Sam First" in html
    assert "Second clinician&#x27;s careful note." in html
    assert Review.objects.get().clinician == first


def void_current_review(screening, clinic_admin, reason="Wrong chart"):
    """Unlock ``screening`` as ``clinic_admin``, voiding the review in force."""
    reviews.unlock_screening(
        screening_id=screening.pk,
        user=clinic_admin,
        review_id=reviews.current_review(screening).pk,
        reason=reason,
    )


def test_a_review_form_opened_before_a_review_came_and_went_is_refused_once(
    client, make_user, clinic_admin, staff_user
):
    first, second, screening, url = two_clinicians_on_a_review_form(client, make_user, staff_user)
    page = client.get(url)
    assert 'name="reviews_seen" value="0"' in page.content.decode()
    # Meanwhile: first signs, a clinic admin voids it and puts the screening back.
    signed(screening, first)
    void_current_review(screening, clinic_admin)
    reviews.release_claim(screening_id=screening.pk, user=clinic_admin, claimed_by_id=first.pk)
    data = review_post(screening) | {"reviews_seen": 0, "note": "Second's careful note."}
    response = client.post(url, data)
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "Since you opened this form, Sam First (first) signed a review at " in html
    assert "voided by " in html and "(Wrong chart)" in html
    assert "Your entry was not saved" in html
    assert "Second's careful note." in html  # kept
    form = response.context["form"]
    assert form["reviews_seen"].value() == "1"  # the page now knows the voided review
    assert Review.objects.filter(clinician=second).count() == 0
    # Sent again from that page, knowing: it signs.
    response = client.post(url, data | {"reviews_seen": form["reviews_seen"].value()})
    assert response.status_code == 302
    assert Review.objects.get(clinician=second).note == "Second's careful note."


def test_a_review_post_without_what_its_page_showed_is_refused_as_out_of_date(
    client, clinician, staff_user
):
    screening = flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    data = review_post(screening)
    del data["reviews_seen"]
    response = client.post(reverse("admin:intake_screening_review", args=[screening.pk]), data)
    assert response.status_code == 200
    assert "This form is out of date; nothing was saved." in response.content.decode()
    assert not Review.objects.exists()


def test_signing_with_a_wrong_password_keeps_the_form(client, clinician, staff_user):
    screening = flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    data = review_post(screening) | {"password": "not-my-password"}
    response = client.post(reverse("admin:intake_screening_review", args=[screening.pk]), data)
    assert "The password is not correct" in response.content.decode()
    assert Screening.objects.get().status == Screening.Status.SUBMITTED


def test_a_signed_screening_shows_locked_with_review_addendum_and_void_history(
    client, clinician, clinic_admin, staff_user
):
    screening = signed(flagged_screening(staff_user, ["SUI-01"]), clinician)
    void_current_review(screening, clinic_admin)
    signed(screening, clinician)
    reviews.add_addendum(
        screening_id=screening.pk,
        user=clinician,
        review_id=reviews.current_review(screening).pk,
        text="GP letter received.",
        password=PASSWORD,
    )
    client.force_login(clinic_admin)
    html = client.get(reverse("admin:intake_screening_change", args=[screening.pk])).content
    html = html.decode()
    assert "Signed and locked" in html
    assert "VOID" in html and "Wrong chart" in html
    assert "GP letter received." in html
    assert "Record review" not in html
    assert "Add addendum" in html and "Unlock" in html


def test_the_addendum_page_posted_twice_signs_one_addendum(client, clinician, staff_user):
    screening = signed(flagged_screening(staff_user, ["SUI-01"]), clinician)
    client.force_login(clinician)
    url = reverse("admin:intake_screening_addendum", args=[screening.pk])
    token = client.get(url).context["form"]["form_token"].value()
    assert len(token) >= 20
    assert client.get(url).context["form"]["form_token"].value() != token  # one per form
    review = client.get(url).context["form"]["review"].value()
    assert review == reviews.current_review(screening).pk
    data = {"text": "GP letter received.", "password": PASSWORD, "form_token": token}
    data["review"] = review
    for _ in range(2):
        response = client.post(url, data)
        assert response.status_code == 302
    assert [a.text for a in screening.addenda.all()] == ["GP letter received."]
    # "Back" reloads the page: a new token, the typed text restored by the browser.
    reloaded = client.get(url).context["form"]["form_token"].value()
    response = client.post(url, {**data, "form_token": reloaded})
    assert response.status_code == 200
    assert "You already signed this addendum at" in response.content.decode()
    assert screening.addenda.count() == 1


def test_an_unlock_page_left_open_never_voids_a_review_signed_since(
    client, make_user, clinic_admin, staff_user
):
    first = make_user("dr-a", Role.CLINICIAN)
    second = make_user("dr-b", Role.CLINICIAN)
    second.first_name, second.last_name = "Bea", "Second"
    second.save()
    screening = signed(flagged_screening(staff_user, ["SUI-01"]), first)
    shown = reviews.current_review(screening)
    url = reverse("admin:intake_screening_unlock", args=[screening.pk])
    client.force_login(clinic_admin)
    page = client.get(url)
    assert page.context["form"]["review"].value() == shown.pk
    assert f'name="review" value="{shown.pk}"' in page.content.decode()
    # Meanwhile another admin unlocks, and another clinician signs a new review.
    reviews.unlock_screening(
        screening_id=screening.pk, user=clinic_admin, review_id=shown.pk, reason="Typo"
    )
    reviews.claim_screening(screening_id=screening.pk, user=second, take_over_from=first.pk)
    new = reviews.current_review(signed(screening, second))
    data = {"reason": "The first review was on the wrong chart.", "review": shown.pk}
    response = client.post(url, data)
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "The signed review now is by Bea Second (dr-b) at " in html
    assert "Nothing was changed." in html
    assert "Signed review by Bea Second" in html
    form = response.context["form"]
    assert form["reason"].value() == data["reason"]  # kept
    assert form["review"].value() == str(new.pk)  # the page now shows and acts on the new one
    new.refresh_from_db()
    assert not new.is_void
    # Sent again from that page, deliberately: the review it now shows is voided.
    response = client.post(url, {**data, "review": form["review"].value()})
    assert response.status_code == 302
    new.refresh_from_db()
    assert new.void_reason == data["reason"]


def test_a_stale_unlock_page_with_no_review_left_in_force_says_so_once_and_offers_no_form(
    client, clinician, clinic_admin, staff_user
):
    screening = signed(flagged_screening(staff_user, ["SUI-01"]), clinician)
    shown = reviews.current_review(screening)
    url = reverse("admin:intake_screening_unlock", args=[screening.pk])
    client.force_login(clinic_admin)
    assert client.get(url).status_code == 200
    reviews.unlock_screening(
        screening_id=screening.pk,
        user=clinic_admin,
        review_id=shown.pk,
        reason="Wrong patient chart.\nSecond line.",
    )
    response = client.post(url, {"reason": "Same again", "review": shown.pk})
    html = unescape(response.content.decode())
    assert "was voided by" in html and "Nothing was changed." in html
    assert "This form is out of date" not in html  # one message, not two
    assert "Void signature and unlock" not in html
    assert "there is nothing to unlock" in html
    page = client.get(reverse("admin:intake_screening_change", args=[screening.pk]))
    assert "Wrong patient chart.<br>Second line." in page.content.decode()


def test_an_unlock_post_without_its_review_is_refused_as_out_of_date(
    client, clinician, clinic_admin, staff_user
):
    screening = signed(flagged_screening(staff_user, ["SUI-01"]), clinician)
    client.force_login(clinic_admin)
    response = client.post(
        reverse("admin:intake_screening_unlock", args=[screening.pk]), {"reason": "Wrong chart"}
    )
    assert response.status_code == 200
    assert "This form is out of date; nothing was saved." in response.content.decode()
    assert not Review.objects.get().is_void


def test_an_addendum_page_left_open_is_refused_once_its_review_is_voided(
    client, clinician, clinic_admin, staff_user
):
    screening = signed(flagged_screening(staff_user, ["SUI-01"]), clinician)
    url = reverse("admin:intake_screening_addendum", args=[screening.pk])
    client.force_login(clinician)
    form = client.get(url).context["form"]
    shown = reviews.current_review(screening)
    assert form["review"].value() == shown.pk
    reviews.unlock_screening(
        screening_id=screening.pk, user=clinic_admin, review_id=shown.pk, reason="Wrong chart"
    )
    signed(screening, clinician)
    data = {
        "text": "About the first review.",
        "password": PASSWORD,
        "form_token": form["form_token"].value(),
        "review": shown.pk,
    }
    response = client.post(url, data)
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert f"was voided by {clinic_admin.username} at " in html
    assert "The signed review now is by" in html and "Nothing was changed." in html
    refreshed = response.context["form"]
    assert refreshed["text"].value() == "About the first review."
    assert refreshed["review"].value() == str(reviews.current_review(screening).pk)
    assert not screening.addenda.exists()


def claim_buttons(client, screening):
    """Return the hidden fields of the take-over and release forms on the screening page."""
    html = client.get(reverse("admin:intake_screening_change", args=[screening.pk])).content
    return re.findall(r'name="claimed_by" value="(\d*)"', html.decode())


def test_take_over_and_release_buttons_act_only_on_the_reviewer_they_show(
    client, make_user, clinic_admin, staff_user
):
    first = make_user("dr-a", Role.CLINICIAN)
    third = make_user("dr-c", Role.CLINICIAN)
    third.first_name, third.last_name = "Jo", "Third"
    third.save()
    screening = flagged_screening(staff_user, ["SUI-01"])
    reviews.claim_screening(screening_id=screening.pk, user=first)
    client.force_login(clinic_admin)
    # The admin's page offers "Take over from dr-a" and "Release to queue", both naming dr-a.
    assert claim_buttons(client, screening) == [str(first.pk), str(first.pk)]
    reviews.release_claim(screening_id=screening.pk, user=first, claimed_by_id=first.pk)
    reviews.claim_screening(screening_id=screening.pk, user=third)
    change = reverse("admin:intake_screening_change", args=[screening.pk])
    for name, data in [
        ("release", {"claimed_by": first.pk}),
        ("claim", {"take_over": "1", "claimed_by": first.pk}),
    ]:
        response = client.post(
            reverse(f"admin:intake_screening_{name}", args=[screening.pk]), data, follow=True
        )
        assert response.redirect_chain[-1][0] == change
        html = unescape(response.content.decode())
        assert "This screening is now in review by Jo Third (since " in html
        assert "not by dr-a as your page showed. Nothing was changed." in html
        assert Screening.objects.get(pk=screening.pk).claimed_by == third
    # A release form without the reviewer it showed is out of date.
    response = client.post(
        reverse("admin:intake_screening_release", args=[screening.pk]), {}, follow=True
    )
    assert "This form is out of date" in response.content.decode()
    assert Screening.objects.get(pk=screening.pk).claimed_by == third


def test_recording_a_review_of_a_signed_screening_redirects_with_the_signer(
    client, clinician, staff_user
):
    screening = signed(flagged_screening(staff_user, ["SUI-01"]), clinician)
    client.force_login(clinician)
    response = client.get(reverse("admin:intake_screening_review", args=[screening.pk]))
    assert response.status_code == 302
    assert response.url == reverse("admin:intake_screening_change", args=[screening.pk])


# -- thresholds and users ---------------------------------------------------------------------


def test_threshold_form_has_one_field_per_threshold_with_values_in_force(client, clinic_admin):
    ThresholdSet.objects.create(version=3, values=dict(thresholds.DEFAULTS, hr_review=125))
    client.force_login(clinic_admin)
    response = client.get(reverse("admin:intake_thresholdset_add"))
    form = response.context["form"]
    assert set(thresholds.SPEC) <= set(form.fields)
    assert form.fields["hr_review"].initial == 125
    assert "beats/min" in form.fields["hr_review"].help_text
    assert "HR-01" in form.fields["hr_review"].help_text
    assert "HR-02" in form.fields["hr_review"].help_text


def test_threshold_form_rejects_impossible_combinations(client, clinic_admin):
    client.force_login(clinic_admin)
    data = threshold_post(stopbang_high="3", note="x")
    response = client.post(reverse("admin:intake_thresholdset_add"), data)
    assert response.status_code == 200
    assert "stopbang_high must be greater than stopbang_intermediate" in response.content.decode()
    assert not ThresholdSet.objects.exists()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("recent_event_months", "6.5", "Enter a whole number of months."),
        ("stopbang_high", "5.5", "Enter a whole number of points."),
        ("age_min", "17.5", "Enter a whole number of years."),
        ("withdrawal_episodes", "1.5", "Enter a whole number of episodes."),
    ],
)
def test_threshold_form_refuses_a_fraction_of_a_whole_count(
    client, clinic_admin, name, value, message
):
    # within_months() counts calendar months: 6.5 would silently act as 6.
    client.force_login(clinic_admin)
    data = threshold_post(**{name: value, "note": "x"})
    response = client.post(reverse("admin:intake_thresholdset_add"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ThresholdSet.objects.exists()
    data.update({name: value.split(".")[0] + ".0", "last_drink_hours": "12.5"})
    response = client.post(reverse("admin:intake_thresholdset_add"), data)
    assert response.status_code == 302
    values = ThresholdSet.objects.get().values
    assert values[name] == int(value.split(".")[0])
    assert values["last_drink_hours"] == "12.5"  # hours may be fractional


def test_a_threshold_form_opened_before_another_save_keeps_both_changes_only_when_resaved(
    client, clinic_admin, make_user
):
    other = make_user("other-admin", Role.CLINIC_ADMIN)
    other.first_name, other.last_name = "Kim", "Other"
    other.save()
    url = reverse("admin:intake_thresholdset_add")
    client.force_login(clinic_admin)
    form = client.get(url).context["form"]
    assert form["based_on_version"].value() == 0
    assert 'name="based_on_version"' in str(form["based_on_version"])
    # Another admin saves version 1 while this form is open on version 0.
    reviews.save_thresholds(
        values=dict(thresholds.DEFAULTS, spo2_caution=92, hr_review=125),
        user=other,
        based_on_version=0,
    )
    data = threshold_post(phq9_severe="19", hr_review="128", note="PHQ-9 cut-off")
    response = client.post(url, data)
    assert response.status_code == 200
    assert ThresholdSet.objects.count() == 1
    html = unescape(response.content.decode())
    assert "Version 1 was saved by Kim Other at " in html
    assert "Nothing was saved." in html
    assert "Taken from version 1: spo2_caution 94 → 92." in html
    form = response.context["form"]
    # Version 1's change is shown, this admin's own changes and reason are kept...
    assert form["based_on_version"].value() == "1"
    assert form["spo2_caution"].value() == "92"
    assert form["phq9_severe"].value() == "19"
    assert form["note"].value() == "PHQ-9 cut-off"
    # ...and a threshold both changed shows this admin's value, marked.
    assert form["hr_review"].value() == "128"
    assert form.errors["hr_review"] == [
        "Version 1 set this to 125 after you opened the form; the value shown is yours."
    ]
    # Saving again, deliberately, keeps both admins' changes.
    response = client.post(url, {**data, "based_on_version": "1", "spo2_caution": "92"})
    assert response.status_code == 302
    values = ThresholdSet.objects.get(version=2).values
    assert (values["spo2_caution"], values["phq9_severe"], values["hr_review"]) == (92, 19, 128)


def test_saving_thresholds_says_what_changed_old_to_new(client, clinic_admin):
    client.force_login(clinic_admin)
    url = reverse("admin:intake_thresholdset_add")
    data = threshold_post(hr_review="120", last_drink_hours="12.5", note="Protocol update")
    response = client.post(url, data, follow=True)
    assert [str(message) for message in response.context["messages"]] == [
        "Thresholds version 1 is now in force for new screenings: hr_review 130 → 120; "
        "last_drink_hours 24 → 12.5. Submitted screenings keep the values they were "
        "evaluated with."
    ]
    # The next version is compared with version 1, not with the shipped defaults.
    data = threshold_post(1, hr_review="120", last_drink_hours="12.5", spo2_caution="92", note="x")
    response = client.post(url, data, follow=True)
    (message,) = response.context["messages"]
    assert "Thresholds version 2 is now in force for new screenings: spo2_caution 94 → 92." in (
        str(message)
    )


def test_a_threshold_form_without_its_version_is_refused(client, clinic_admin):
    client.force_login(clinic_admin)
    data = threshold_post(phq9_severe="19", note="x")
    del data["based_on_version"]
    response = client.post(reverse("admin:intake_thresholdset_add"), data)
    assert response.status_code == 200
    assert "This form is out of date; nothing was saved." in response.content.decode()
    assert not ThresholdSet.objects.exists()


def test_deactivating_and_reactivating_an_account_are_told_apart_in_the_audit(
    client, clinic_admin, ladder
):
    client.force_login(clinic_admin)
    target = ladder["staff"]
    url = reverse("admin:auth_user_change", args=[target.pk])
    data = {"username": target.username, "first_name": "", "last_name": "", "email": ""}
    client.post(url, {**data, "role": "intake_staff"})  # is_active unticked
    client.post(url, {**data, "role": "clinician", "is_active": "on"})
    off, on = AuditEvent.objects.filter(action="intake.user.changed").order_by("id")
    assert off.detail["changes"] == {"is_active": [True, False]}
    assert on.detail["changes"] == {
        "is_active": [False, True],
        "is_staff": [False, True],
        "role": ["intake_staff", "clinician"],
    }
    for event in (off, on):
        assert "pbkdf2" not in repr(event.detail) and "password" not in repr(event.detail)


def test_clinic_admins_cannot_grant_superuser_or_edit_a_superuser(client, clinic_admin, ladder):
    client.force_login(clinic_admin)
    target = ladder["staff"]
    url = reverse("admin:auth_user_change", args=[target.pk])
    response = client.get(url)
    assert "is_superuser" not in response.context["adminform"].form.fields
    data = {
        "username": target.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "role": "clinician",
        "is_superuser": "on",
        "is_staff": "on",
    }
    response = client.post(url, data)
    assert response.status_code == 302
    target.refresh_from_db()
    assert not target.is_superuser
    assert target.is_staff  # from the clinician role
    assert list(target.groups.values_list("name", flat=True)) == ["clinician"]
    (changed,) = AuditEvent.objects.filter(action="intake.user.changed")
    assert changed.detail["previous_role"] == "intake_staff"
    assert changed.detail["role"] == "clinician"
    root = get_user_model().objects.create_superuser("root", password=PASSWORD)
    response = client.post(
        reverse("admin:auth_user_change", args=[root.pk]), {"username": "root", "role": ""}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("label", ["referred elsewhere", "  Referred   ELSEWHERE "])
def test_a_determination_option_differing_only_in_case_or_spaces_is_refused(
    client, clinic_admin, label
):
    client.force_login(clinic_admin)
    count = Determination.objects.count()
    data = {"label": label, "position": "9", "active": "on"}
    response = client.post(reverse("admin:intake_determination_add"), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["label"] == [
        "There is already an option “Referred elsewhere”: labels that differ only in capitals "
        "or spaces read as the same option. Use that one, or choose another label."
    ]
    # Renaming another option to it is refused too; a withdrawn option is named as such.
    withdrawn = Determination.objects.get(label="Referred elsewhere")
    withdrawn.active = False
    withdrawn.save()
    other = Determination.objects.exclude(pk=withdrawn.pk).first()
    url = reverse("admin:intake_determination_change", args=[other.pk])
    response = client.post(url, data)
    assert response.status_code == 200
    assert "There is already a withdrawn option “Referred elsewhere”" in unescape(
        response.content.decode()
    )
    assert "Make that one active again" in unescape(response.content.decode())
    assert Determination.objects.count() == count
    assert not Determination.objects.filter(label__iexact="referred elsewhere", active=True)
    assert not AuditEvent.objects.filter(action__startswith="intake.determination.").exists()


def test_an_option_may_change_its_own_capitals_and_spaces_are_tidied(client, clinic_admin):
    client.force_login(clinic_admin)
    option = Determination.objects.get(label="Referred elsewhere")
    url = reverse("admin:intake_determination_change", args=[option.pk])
    data = {"label": " Referred  Elsewhere ", "position": option.position, "active": "on"}
    assert client.post(url, data).status_code == 302
    option.refresh_from_db()
    assert option.label == "Referred Elsewhere"


def account_post(user, **changes):
    """Return a clinic admin's change form data for ``user`` as stored, updated by ``changes``."""
    role = user.groups.values_list("name", flat=True).first() or ""
    data = {"username": user.username, "first_name": "", "last_name": "", "email": ""}
    data.update(role=role, is_active="on" if user.is_active else "")
    data.update(changes)
    return {name: value for name, value in data.items() if value != ""}


def superuser_account_post(user, **changes):
    """Return a superuser's change form data for ``user`` (its fields are Django's full set)."""
    data = account_post(user, **changes)
    data.update(date_joined_0="2026-01-05", date_joined_1="09:00:00")
    return data


LAST_ADMIN = "is the only active clinic admin"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"is_active": ""}, "is_active"), ({"role": "clinician"}, "role"), ({"role": ""}, "role")],
    ids=["deactivate", "to clinician", "no role"],
)
def test_the_only_clinic_admin_cannot_deactivate_or_demote_themselves(
    client, clinic_admin, changes, field
):
    client.force_login(clinic_admin)
    url = reverse("admin:auth_user_change", args=[clinic_admin.pk])
    response = client.post(url, account_post(clinic_admin, **changes))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert errors[field] == [
        "clinicadmin is the only active clinic admin: without one, nobody could manage "
        "accounts, thresholds or sign-in lockouts. Make another account an active clinic "
        "admin first."
    ]
    clinic_admin.refresh_from_db()
    assert clinic_admin.is_active and clinic_admin.is_staff
    assert list(clinic_admin.groups.values_list("name", flat=True)) == ["clinic_admin"]
    assert not AuditEvent.objects.filter(action="intake.user.changed").exists()
    # Saving the account unchanged, or changing only its name, is still fine.
    response = client.post(url, account_post(clinic_admin, first_name="Robin"))
    assert response.status_code == 302


def test_a_clinic_admin_can_step_down_once_another_active_one_exists(
    client, clinic_admin, make_user
):
    other = make_user("other-admin", Role.CLINIC_ADMIN)
    other.is_active = False
    other.save()
    client.force_login(clinic_admin)
    url = reverse("admin:auth_user_change", args=[clinic_admin.pk])
    # An inactive clinic admin is no clinic admin.
    assert LAST_ADMIN in client.post(url, account_post(clinic_admin, is_active="")).content.decode()
    other_url = reverse("admin:auth_user_change", args=[other.pk])
    assert client.post(other_url, account_post(other, is_active="on")).status_code == 302
    response = client.post(url, account_post(clinic_admin, role="clinician"))
    assert response.status_code == 302
    clinic_admin.refresh_from_db()
    assert list(clinic_admin.groups.values_list("name", flat=True)) == ["clinician"]


def test_a_superuser_without_the_role_does_not_count_as_a_clinic_admin(client, clinic_admin):
    root = get_user_model().objects.create_superuser("root", password=PASSWORD)
    client.force_login(root)
    url = reverse("admin:auth_user_change", args=[clinic_admin.pk])
    response = client.post(url, superuser_account_post(clinic_admin, is_active=""))
    assert response.status_code == 200
    assert LAST_ADMIN in response.context["adminform"].form.errors["is_active"][0]
    clinic_admin.refresh_from_db()
    assert clinic_admin.is_active
    # Given the role, the superuser is one: the other account may step down.
    root_url = reverse("admin:auth_user_change", args=[root.pk])
    data = superuser_account_post(root, role="clinic_admin", is_staff="on", is_superuser="on")
    assert client.post(root_url, data).status_code == 302
    response = client.post(url, superuser_account_post(clinic_admin, is_active=""))
    assert response.status_code == 302
    clinic_admin.refresh_from_db()
    assert not clinic_admin.is_active


def test_a_superuser_cannot_delete_the_only_clinic_admin(
    client, clinic_admin, clinician, staff_user, make_user
):
    users = get_user_model().objects
    root = users.create_superuser("root", password=PASSWORD)
    client.force_login(root)
    url = reverse("admin:auth_user_delete", args=[clinic_admin.pk])
    response = client.post(url, {"post": "yes"}, follow=True)
    assert response.redirect_chain == [
        (reverse("admin:auth_user_change", args=[clinic_admin.pk]), 302)
    ]
    assert LAST_ADMIN in response.content.decode()
    changelist = reverse("admin:auth_user_changelist")
    selected = [clinic_admin.pk, clinician.pk]
    data = {"action": "delete_selected", "_selected_action": selected, "post": "yes"}
    response = client.post(changelist, data, follow=True)
    assert LAST_ADMIN in response.content.decode()
    assert users.filter(pk__in=selected).count() == 2
    # Any other account's deletion, or one that leaves a clinic admin, goes ahead.
    data["_selected_action"] = [staff_user.pk]
    assert client.post(changelist, data).status_code == 302
    assert not users.filter(pk=staff_user.pk).exists()
    make_user("other-admin", Role.CLINIC_ADMIN)
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not users.filter(pk=clinic_admin.pk).exists()


def test_review_page_lists_earlier_pdf_versions_and_keeps_line_breaks(
    client, clinician, staff_user
):
    screening = flagged_screening(staff_user, ["BP-01"], alg_other="Penicillin: rash\nLatex")
    client.force_login(clinician)
    url = reverse("admin:intake_screening_change", args=[screening.pk])
    html = client.get(url).content.decode()
    assert "rp-versions" not in html  # one version: the PDF link is it
    fhir = reverse("intake:screening_fhir", args=[screening.pk])
    assert f'href="{fhir}">Answers for the EHR (FHIR JSON)</a>' in html
    assert "Penicillin: rash<br>Latex" in html
    signed(screening, clinician)
    html = client.get(url).content.decode()
    pdf = reverse("intake:screening_pdf", args=[screening.pk])
    assert "Earlier version of the PDF summary" in html
    assert "<dt>Clinician's determination</dt>" in html  # the PDF's wording too
    assert f'href="{pdf}?version=1">Version 1</a> · Submitted' in html
    assert f"{pdf}?version=2" not in html


# -- accessibility of the panel's forms and messages -------------------------------------------


class Page(HTMLParser):
    """An HTML page's elements in document order: tag, attributes and all the text inside."""

    VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.elements, self.open = [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": [], "inside": list(self.open)}
        self.elements.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_endtag(self, tag):
        while self.open and self.open.pop()["tag"] != tag:
            pass

    def handle_data(self, data):
        for element in self.open:
            element["text"].append(data)

    def by_id(self, id_):
        (element,) = [e for e in self.elements if e["attrs"].get("id") == id_]
        return element

    def text(self, element):
        return " ".join("".join(element["text"]).split())

    def within(self, container, tag):
        return [e for e in self.elements if e["tag"] == tag and container in e["inside"]]

    def summary_links(self):
        """Return the error summary's (href, text) links, checking it is a focusable alert."""
        summary = self.by_id("error-summary")
        assert summary["attrs"]["tabindex"] == "-1"
        assert summary["attrs"]["role"] == "alert"
        title = self.by_id(summary["attrs"]["aria-labelledby"])
        assert title["tag"] == "h2" and self.text(title) == "Please correct these items"
        return [(a["attrs"]["href"], self.text(a)) for a in self.within(summary, "a")]

    def descriptions(self, id_):
        """Return the texts an element's aria-describedby points at (each must exist)."""
        ids = self.by_id(id_)["attrs"].get("aria-describedby", "").split()
        return [self.text(self.by_id(ref)) for ref in ids]


def test_a_refused_review_links_each_error_to_its_field_in_page_order(
    client, clinician, staff_user
):
    screening = flagged_screening(staff_user, ["SUI-01", "BP-02"])
    client.force_login(clinician)
    url = reverse("admin:intake_screening_review", args=[screening.pk])
    page = Page(client.post(url, {"reviews_seen": "0"}).content.decode())
    assert page.summary_links() == [
        ("#id_ack_SUI-01", "Flag SUI-01: Acknowledge this flag."),
        ("#id_ack_BP-02", "Flag BP-02: Acknowledge this flag."),
        ("#id_determination_0", "Your determination: Choose your determination."),
        ("#id_note", "Review note: Write a review note."),
        ("#id_password", "Your password (signature): Re-enter your password to sign."),
    ]
    # Each link lands on a real input; a group's on its first.
    assert page.by_id("id_ack_SUI-01")["attrs"]["type"] == "checkbox"
    assert page.by_id("id_determination_0")["attrs"]["type"] == "radio"
    assert page.by_id("id_note")["tag"] == "textarea"


def test_every_invalid_review_field_is_marked_and_described_by_its_error(
    client, clinician, staff_user
):
    screening = flagged_screening(staff_user, ["SUI-01", "BP-02"])
    client.force_login(clinician)
    url = reverse("admin:intake_screening_review", args=[screening.pk])
    data = {"reviews_seen": "0", "ack_SUI-01": "on"}
    page = Page(client.post(url, data).content.decode())
    help_text = "Your own decision, recorded as you choose it. The app suggests none."
    expected = {
        "id_ack_BP-02": ["Acknowledge this flag."],
        "id_note": [
            "What you considered, including your plan for each flag. At most 10,000 characters.",
            "Write a review note.",
        ],
        "id_password": [
            "Re-enter your own password. It signs the entry with your name and the time.",
            "Re-enter your password to sign.",
        ],
        **{f"id_determination_{i}": [help_text, "Choose your determination."] for i in range(4)},
    }
    for id_, descriptions in expected.items():
        assert page.by_id(id_)["attrs"].get("aria-invalid") == "true", id_
        assert page.descriptions(id_) == descriptions, id_
    # The ticked flag is neither marked nor listed.
    assert "aria-invalid" not in page.by_id("id_ack_SUI-01")["attrs"]
    assert "checked" in page.by_id("id_ack_SUI-01")["attrs"]
    assert "#id_ack_SUI-01" not in dict(page.summary_links())


def test_a_form_error_without_a_field_is_listed_without_a_link(client, clinician, staff_user):
    screening = flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    url = reverse("admin:intake_screening_review", args=[screening.pk])
    data = {key: value for key, value in review_post(screening).items() if key != "reviews_seen"}
    page = Page(client.post(url, data).content.decode())
    assert page.summary_links() == []
    summary = page.by_id("error-summary")
    assert "This form is out of date; nothing was saved." in page.text(summary)


def unlock_errors(users):
    screening = signed(screening_for(users), users["clinician"])
    review = reviews.current_review(screening).pk
    data = {"reason": "", "review": review}
    return users["clinic_admin"], admin_url("intake_screening_unlock", screening.pk), data


def addendum_errors(users):
    screening = signed(screening_for(users), users["clinician"])
    data = {"text": "", "password": "", "review": reviews.current_review(screening).pk}
    return users["clinician"], admin_url("intake_screening_addendum", screening.pk), data


def threshold_errors(users):
    data = threshold_post(hr_review="fast", note="")
    return users["clinic_admin"], admin_url("intake_thresholdset_add"), data


def user_change_errors(users):
    data = {
        "username": "bad name!",
        "email": "not-an-email",
        "is_active": "on",
        "role": Role.INTAKE_STAFF,
    }
    return users["clinic_admin"], admin_url("auth_user_change", users["staff"].pk), data


def last_clinic_admin_errors(users):
    admin = users["clinic_admin"]
    data = {"username": admin.username, "is_active": "on", "role": Role.CLINICIAN}
    return admin, admin_url("auth_user_change", admin.pk), data


def user_add_errors(users):
    data = {
        "username": "newnurse",
        "usable_password": "true",
        "password1": "a-long-enough-password-42",
        "password2": "another-long-password-42",
        "role": Role.CLINICIAN,
    }
    return users["clinic_admin"], admin_url("auth_user_add"), data


def determination_errors(users):
    data = {"label": "", "position": "1", "active": "on"}
    return users["clinic_admin"], admin_url("intake_determination_add"), data


def account_password_errors(users):
    data = {
        "usable_password": "true",
        "password1": "a-long-enough-password-42",
        "password2": "another-long-password-42",
        "set-password": "Change password",
    }
    url = admin_url("auth_user_password_change", users["staff"].pk)
    return users["clinic_admin"], url, data


def own_password_errors(users):
    data = {"old_password": "wrong", "new_password1": "a-long-enough-password-42"}
    return users["clinician"], admin_url("password_change"), data


@pytest.mark.parametrize(
    ("setup", "links"),
    [
        (unlock_errors, [("#id_reason", "Reason for unlocking: Give the reason for unlocking.")]),
        (
            addendum_errors,
            [
                ("#id_text", "Addendum: Write the addendum text."),
                ("#id_password", "Your password (signature): Re-enter your password to sign."),
            ],
        ),
        (
            threshold_errors,
            [
                ("#id_hr_review", "hr_review: Enter a number."),
                ("#id_note", "Reason for the change: Give the reason for the change."),
            ],
        ),
        (
            user_change_errors,
            [
                (
                    "#id_username",
                    "Username: Enter a valid username. This value may contain only letters, "
                    "numbers, and @/./+/-/_ characters.",
                ),
                ("#id_email", "Email address: Enter a valid email address."),
            ],
        ),
        (
            last_clinic_admin_errors,
            [("#id_role", "Role: " + str(LAST_CLINIC_ADMIN) % {"username": "boss"})],
        ),
        (
            user_add_errors,
            [("#id_password2", "Password confirmation: The two password fields didn’t match.")],
        ),
        (determination_errors, [("#id_label", "Label: This field is required.")]),
        (
            account_password_errors,
            [("#id_password2", "Password confirmation: The two password fields didn’t match.")],
        ),
        (
            own_password_errors,
            [
                (
                    "#id_old_password",
                    "Old password: Your old password was entered incorrectly. "
                    "Please enter it again.",
                ),
                ("#id_new_password2", "New password confirmation: This field is required."),
            ],
        ),
    ],
    ids=[
        "unlock",
        "addendum",
        "thresholds",
        "user change",
        "last clinic admin",
        "user add",
        "determination",
        "account password",
        "own password",
    ],
)
def test_every_panel_form_links_each_error_to_its_field(client, ladder, setup, links):
    user, url, data = setup(ladder)
    client.force_login(user)
    html = client.post(url, data).content.decode()
    page = Page(html)
    assert page.summary_links() == links
    for href, text in links:
        assert page.by_id(href[1:])["attrs"]["aria-invalid"] == "true"
        assert page.descriptions(href[1:])[-1] == text.split(": ", 1)[1]
    # The summary, not Django's note as well.
    assert "errornote" not in html and "Please correct the error" not in html


def test_a_refused_django_form_is_titled_as_an_error_once(client, clinic_admin):
    client.force_login(clinic_admin)
    data = {"label": "", "position": "1", "active": "on"}
    html = client.post(admin_url("intake_determination_add"), data).content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()
    assert title.startswith("Error: Add determination")
    assert title.count("Error:") == 1
    assert "error-summary" not in client.get(admin_url("intake_determination_add")).content.decode()


def test_an_error_summary_lists_the_forms_own_errors_then_fields_in_the_pages_order():
    class Form(forms.Form):
        first = forms.CharField(label="First")
        second = forms.CharField(label="Second")
        choice = forms.ChoiceField(label="Choice", choices=[("a", "A")], widget=forms.RadioSelect)
        state = forms.CharField(widget=forms.HiddenInput)

        def clean(self):
            raise forms.ValidationError("Whole form.")

    required = "This field is required."
    assert error_summary(Form({}), order=["choice", "second"]) == [
        ("", "", "Whole form."),
        ("", "", required),
        ("id_choice_0", "Choice", required),  # a radio group: its first input
        ("id_second", "Second", required),
        ("id_first", "First", required),  # not in the page's order: after those that are
    ]


def test_messages_are_live_regions_alert_for_errors_and_status_otherwise(
    client, clinician, staff_user
):
    screening = flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    claim = client.post(admin_url("intake_screening_claim", screening.pk), follow=True)
    page = Page(claim.content.decode())
    assert page.by_id("messages")["attrs"]["tabindex"] == "-1"  # focused on arrival
    (region,) = page.within(page.by_id("messages"), "div")
    assert region["attrs"]["role"] == "status"
    assert page.text(region) == (
        "You are now reviewing this screening; other clinicians see your name."
    )
    # A stale release form: refused, said as an alert.
    release = client.post(admin_url("intake_screening_release", screening.pk), {}, follow=True)
    page = Page(release.content.decode())
    (region,) = page.within(page.by_id("messages"), "div")
    assert region["attrs"]["role"] == "alert"
    assert "This form is out of date" in page.text(region)


def test_the_review_form_headings_never_skip_a_level(client, clinician, staff_user):
    # BP-01 is a caution: the page lists it under "Other flags".
    screening = flagged_screening(staff_user, ["SUI-01", "BP-01"])
    client.force_login(clinician)
    page = Page(client.get(admin_url("intake_screening_review", screening.pk)).content.decode())
    headings = [e for e in page.elements if re.fullmatch(r"h[1-6]", e["tag"])]
    assert "Other flags (caution and info)" in [page.text(h) for h in headings]
    levels = [int(h["tag"][1]) for h in headings]
    assert levels[0] == 1
    assert all(b <= a + 1 for a, b in zip(levels, levels[1:], strict=False)), levels


def page_title(response):
    """Return the text of the page's <title>."""
    (title,) = re.findall(r"<title>(.*?)</title>", response.content.decode(), re.DOTALL)
    return unescape(title).strip()


@pytest.mark.parametrize(
    ("view", "locked", "expected"),
    [
        ("intake_screening_change", False, "Screening #{pk} |"),
        ("intake_screening_review", False, "Record review of screening #{pk} |"),
        ("intake_screening_addendum", True, "Add an addendum to screening #{pk} |"),
        ("intake_screening_unlock", True, "Unlock screening #{pk} |"),
    ],
)
def test_screening_pages_keep_the_patient_name_out_of_the_title(
    client, clinician, clinic_admin, staff_user, view, locked, expected
):
    # The title goes into browser history and tab lists on shared workstations.
    screening = flagged_screening(
        staff_user, ["SUI-01"], first_name="Bao", last_name="Nguyen", mrn="MRN-100233"
    )
    if locked:
        signed(screening, clinician)
    client.force_login(clinic_admin)
    response = client.get(admin_url(view, screening.pk))
    assert response.status_code == 200
    title = page_title(response)
    assert title.startswith(expected.format(pk=screening.pk))
    for private in ("Nguyen", "Bao", "MRN-100233"):
        assert private not in title
    assert "Nguyen, Bao" in response.content.decode()  # still on the page itself


def test_the_change_user_page_says_whether_a_password_is_set_never_its_hash(
    client, clinic_admin, staff_user
):
    client.force_login(clinic_admin)
    url = admin_url("auth_user_change", staff_user.pk)
    reset_url = admin_url("auth_user_password_change", staff_user.pk)
    html = client.get(url).content.decode()
    for detail in ("algorithm", "pbkdf2", "iterations", "salt", "hash", "*****", "Raw passwords"):
        assert detail not in html, detail
    page = Page(html)
    status = page.by_id("id_password")
    assert page.text(status) == "Set Reset password"
    assert [a["attrs"]["href"] for a in page.within(status, "a")] == [reset_url]

    staff_user.set_unusable_password()
    staff_user.save()
    page = Page(client.get(url).content.decode())
    assert page.text(page.by_id("id_password")) == "Not set Set password"

    # Django's page behind the link still sets the password, audited.
    new_password = "A-new-password-2026"
    assert client.get(reset_url).status_code == 200
    data = {"password1": new_password, "password2": new_password, "set-password": "Set"}
    assert client.post(reset_url, data).status_code == 302
    staff_user.refresh_from_db()
    assert staff_user.check_password(new_password)
    assert AuditEvent.objects.filter(action="intake.user.password_changed").count() == 1


def test_a_clinic_admin_viewing_a_superuser_sees_no_password_hash(client, clinic_admin):
    root = get_user_model().objects.create_superuser("root", password=PASSWORD)
    client.force_login(clinic_admin)
    response = client.get(admin_url("auth_user_change", root.pk))
    assert response.status_code == 200  # shown read-only
    html = response.content.decode()
    assert "pbkdf2" not in html and "algorithm" not in html
    # No link to the password page, which would refuse this clinic admin.
    page = Page(html)
    (status,) = [e for e in page.elements if e["attrs"].get("class") == "rp-password-status"]
    assert page.text(status) == "Set" and page.within(status, "a") == []


def test_a_password_changed_in_the_review_panel_is_audited_like_the_apps(client, clinician):
    # That password is also the review signature.
    client.force_login(clinician)
    url = reverse("admin:password_change")
    new_password = "A-new-signature-2026"
    refused = client.post(
        url, {"old_password": "wrong", "new_password1": new_password, "new_password2": new_password}
    )
    assert refused.status_code == 200
    assert not AuditEvent.objects.filter(action="intake.user.password_changed").exists()
    response = client.post(
        url,
        {"old_password": PASSWORD, "new_password1": new_password, "new_password2": new_password},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse("admin:password_change_done")
    assert 'id="site-name"' in response.content.decode()  # still the review panel's pages
    clinician.refresh_from_db()
    assert clinician.check_password(new_password)
    (row,) = AuditEvent.objects.filter(action="intake.user.password_changed")
    assert (row.actor_id, row.object_type, row.object_id) == (
        clinician.pk,
        "user",
        str(clinician.pk),
    )
    assert row.detail == {"by": "self"}
    assert new_password not in str(row.detail) and PASSWORD not in str(row.detail)
    assert 'id="site-name"' in client.get(url).content.decode()


# Digits to ``str.isdigit`` but not ASCII ("²" is one, int() refuses it; "١٢" is 12 to
# int()), more digits than any key has, and other near-numbers: none names anything.
FORGED_IDS = ["²", "١٢", "٣", "9" * 5000, "9" * 19, "+1", " 1", "1.0", "-1", "0x1", "1\u200b"]


@pytest.mark.parametrize("garbled", ["abc", "1.5", "", *FORGED_IDS])
def test_exporting_a_selection_that_is_not_screening_ids_does_nothing(
    client, clinic_admin, staff_user, garbled
):
    screening = flagged_screening(staff_user, [])
    client.force_login(clinic_admin)
    response = client.post(
        admin_url("intake_screening_changelist") + "?state=all",
        {"action": "export_csv", "_selected_action": [screening.pk, garbled], "index": "0"},
        follow=True,
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "Nothing was done: the selection was not understood." in response.content.decode()
    assert not AuditEvent.objects.filter(action="intake.screening.exported").exists()


def listed_rows():
    return list(AuditEvent.objects.filter(action="intake.screening.listed").order_by("id"))


@pytest.mark.parametrize("data", [{}, {"action": "no_such_action"}, {"action": "export_csv"}])
def test_every_rendering_of_the_queue_is_audited_whatever_the_method(
    client, clinician, staff_user, monkeypatch, data
):
    from intake.admin import ScreeningAdmin

    monkeypatch.setattr(ScreeningAdmin, "list_per_page", 2)
    for last_name in ("Nguyen", "Okafor", "Rivera"):
        flagged_screening(staff_user, [], last_name=last_name, mrn=f"MRN-{last_name}")
    client.force_login(clinician)
    url = admin_url("intake_screening_changelist") + "?state=all"
    response = client.post(url, data)
    assert response.status_code == 200
    shown = [s.pk for s in response.context["cl"].result_list]
    assert len(shown) == 2
    (row,) = listed_rows()
    # Ids only, at most a page: never a name, an MRN or a search term.
    assert row.detail == {"results": 3, "shown": shown}
    assert row.actor_id == clinician.pk
    client.get(url)
    assert [row.detail for row in listed_rows()][1:] == [{"results": 3, "shown": shown}]


@pytest.mark.parametrize(
    "query",
    [
        "state=all&patient_last_name__istartswith=ngu",
        "patient_mrn=MRN-100233",
        "answers__icontains=Nguyen",
        "state=all&patient_first_name=Bao",
        "submitted_by__username__startswith=staff",
        "id__in=1,2",
    ],
)
def test_a_lookup_typed_into_the_queue_address_is_refused(client, clinician, staff_user, query):
    # Names go into the queue by the posted search only, never into a URL.
    flagged_screening(staff_user, [], first_name="Bao", last_name="Nguyen", mrn="MRN-100233")
    client.force_login(clinician)
    response = client.get(admin_url("intake_screening_changelist") + "?" + query)
    assert response.status_code == 400
    assert "Nguyen" not in response.content.decode()
    assert not AuditEvent.objects.filter(action="intake.screening.listed").exists()


@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("intake_auditevent_changelist", "detail__icontains=screening"),
        ("intake_auditevent_changelist", "object_id=1"),
        ("intake_auditevent_changelist", "actor_username__startswith=clin"),
        ("auth_user_changelist", "last_name__istartswith=o"),
        ("auth_user_changelist", "password__startswith=pbkdf2"),
        ("intake_determination_changelist", "label__icontains=a"),
        ("intake_thresholdset_changelist", "note__icontains=a"),
        ("axes_accessattempt_changelist", "username__startswith=clin"),
    ],
)
def test_the_other_lists_refuse_a_lookup_typed_into_the_address(client, clinic_admin, name, query):
    client.force_login(clinic_admin)
    assert client.get(admin_url(name)).status_code == 200
    assert client.get(admin_url(name) + "?" + query).status_code == 400


def test_every_admin_filters_by_its_own_filters_only():
    from django.apps import apps
    from django.contrib import admin

    from intake.admin_lookups import OwnFiltersOnlyMixin

    registered = [m for m in apps.get_models() if admin.site.is_registered(m)]
    assert len(registered) >= 8
    for model in registered:
        assert isinstance(admin.site.get_model_admin(model), OwnFiltersOnlyMixin), model


def list_links(html):
    """Return the list's own links (filters, sorting, pages, date hierarchy): "?..." hrefs."""
    return {unescape(href) for href in re.findall(r'href="(\?[^"]*)"', html)}


def test_every_filter_sort_page_and_date_link_of_every_list_still_works(
    client, clinician, staff_user, make_user, monkeypatch
):
    from axes.models import AccessAttempt
    from django.apps import apps
    from django.contrib import admin

    from intake.admin import ScreeningAdmin

    monkeypatch.setattr(ScreeningAdmin, "list_per_page", 2)
    for last_name, rule_ids in (("Urgent", ["SUI-01"]), ("Caution", ["BP-01"]), ("Quiet", [])):
        screening = flagged_screening(staff_user, rule_ids, last_name=last_name)
    signed(screening, clinician)
    other = make_user("other-staff", Role.INTAKE_STAFF)
    flagged_screening(other, [], last_name="Other")
    AccessAttempt.objects.create(
        username="someone",
        ip_address="192.0.2.1",
        user_agent="ua",
        path_info="/admin/login/",
        failures_since_start=1,
    )
    root = get_user_model().objects.create_superuser("root", password=PASSWORD)
    client.force_login(root)
    client.get(admin_url("intake_screening_change", screening.pk))  # an audit row to list
    visited = {}
    for model in [m for m in apps.get_models() if admin.site.is_registered(m)]:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        seen, frontier = set(), {"?state=all"} if model is Screening else {"?"}
        for _depth in range(2):
            found = set()
            for query in sorted(frontier - seen):
                seen.add(query)
                response = client.get(url + query)
                assert response.status_code == 200, (url, query, response.status_code)
                found |= list_links(response.content.decode())
            frontier = found
        visited[model._meta.model_name] = seen
    screening_links = visited["screening"]
    assert {
        "?p=2&state=all",
        "?state=all&urgent=yes",
        "?severity=none&state=all",
    } <= screening_links
    assert f"?state=all&submitted_by__id__exact={other.pk}" in screening_links
    assert any("submitted_at__gte" in query for query in screening_links)
    assert any(query.startswith("?o=") for query in screening_links)
    audit_links = visited["auditevent"]
    assert any("at__year" in query for query in audit_links)
    assert any("actor__id__exact" in query for query in audit_links)
    assert "?is_active__exact=1" in visited["user"]


DATE_LISTS = (
    ("intake_auditevent_changelist", "at"),
    ("axes_accessattempt_changelist", "attempt_time"),
)


@pytest.mark.parametrize(("name", "field"), DATE_LISTS)
@pytest.mark.parametrize(
    "query",
    [
        "{f}__year=999999999999999999999999",
        "{f}__year=" + "9" * 5000,
        "{f}__year=9999",
        "{f}__year=9999&{f}__month=12",
        "{f}__year=9999&{f}__month=12&{f}__day=31",
        "{f}__year=0",
        "{f}__year=-2026",
        "{f}__year=+2026",
        "{f}__year=%D9%A2%D9%A0%D9%A2%D9%A6",  # 2026 in Arabic-Indic digits
        "{f}__year=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96",  # 2026 in full-width digits
        "{f}__year=2026&{f}__month=99999999999999999999",
        "{f}__year=2026&{f}__month=13",
        "{f}__year=2026&{f}__month=2&{f}__day=31",
        "{f}__year=2026&{f}__month=2&{f}__day=-1",
        "{f}__year=abc",
        "{f}__year=",
        "{f}__year=2026&{f}__year=99999999999999999999",
        "{f}__month=99999999999999999999",
        "{f}__gte=99999999999999999999-01-01",
        "{f}__lt=2026-99-99",
    ],
)
def test_an_invalid_date_in_a_list_address_is_refused_never_a_server_error(
    client, clinic_admin, name, field, query
):
    client.force_login(clinic_admin)
    url = admin_url(name)
    response = client.get(url + "?" + query.format(f=field))
    # Django's handling of an invalid lookup (back to the whole list) or a 400 page.
    assert (response.status_code, response.get("Location")) in {(302, url + "?e=1"), (400, None)}


@pytest.mark.parametrize(("name", "field"), DATE_LISTS)
def test_a_valid_date_hierarchy_address_still_filters(client, clinic_admin, name, field):
    client.force_login(clinic_admin)
    for query in ("{f}__year=2026", "{f}__year=2026&{f}__month=02&{f}__day=28", "{f}__year=9998"):
        response = client.get(admin_url(name) + "?" + query.format(f=field))
        assert response.status_code == 200, query


def test_a_reviews_acknowledged_flags_read_in_the_same_order_as_on_the_pdf(
    client, clinician, staff_user
):
    from intake import pdf

    # Stored sorted by id (BP-02, SUI-01); shown urgent first, as the flags are listed.
    screening = signed(flagged_screening(staff_user, ["BP-02", "SUI-01"]), clinician)
    review = screening.reviews.get()
    assert list(review.acknowledged_rule_ids) == ["BP-02", "SUI-01"]
    client.force_login(clinician)
    html = client.get(admin_url("intake_screening_change", screening.pk)).content.decode()
    assert "<dt>Flags acknowledged</dt><dd>SUI-01, BP-02</dd>" in html
    (printed,) = pdf.summary_context(screening)["reviews"]
    assert printed.acknowledged_rule_ids == ("SUI-01", "BP-02")


@pytest.mark.parametrize("forged", FORGED_IDS)
def test_a_forged_reviewer_id_in_a_claim_or_release_changes_nothing(
    client, clinician, make_user, staff_user, forged
):
    screening = flagged_screening(staff_user, ["SUI-01"])
    first = make_user("first-reviewer", Role.CLINICIAN)
    reviews.claim_screening(screening_id=screening.pk, user=first)
    client.force_login(clinician)
    change = admin_url("intake_screening_change", screening.pk)
    for name, data in [
        ("claim", {"take_over": "1", "claimed_by": forged}),
        ("release", {"claimed_by": forged}),
    ]:
        response = client.post(admin_url(f"intake_screening_{name}", screening.pk), data)
        assert response.status_code == 302, name
        assert response.url == change
        assert Screening.objects.get(pk=screening.pk).claimed_by == first
    assert not AuditEvent.objects.filter(
        action__in=["intake.screening.claimed", "intake.screening.released"], actor=clinician
    ).exists()


@pytest.mark.parametrize("forged", FORGED_IDS)
@pytest.mark.parametrize("field", ["determination", "reviews_seen"])
def test_a_forged_id_in_the_review_form_is_an_error_not_a_crash(
    client, clinician, staff_user, forged, field
):
    screening = flagged_screening(staff_user, ["SUI-01"])
    client.force_login(clinician)
    data = {**review_post(screening), field: forged}
    response = client.post(admin_url("intake_screening_review", screening.pk), data)
    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert not Review.objects.exists()


@pytest.mark.parametrize("forged", FORGED_IDS)
def test_a_forged_review_id_in_an_addendum_or_unlock_form_is_stale(
    client, clinic_admin, staff_user, forged
):
    screening = signed(flagged_screening(staff_user, ["SUI-01"]), clinic_admin)
    client.force_login(clinic_admin)
    for name, data in [
        ("addendum", {"text": "ECG received.", "password": PASSWORD, "review": forged}),
        ("unlock", {"reason": "Wrong chart.", "review": forged}),
    ]:
        response = client.post(admin_url(f"intake_screening_{name}", screening.pk), data)
        assert response.status_code == 200, name
        assert "This form is out of date; nothing was saved." in response.content.decode()
    assert not screening.addenda.exists()
    assert not Review.objects.filter(voided_at__isnull=False).exists()


# Each free-text form of the panel: (form page, posted data, its text field, the limit, stored).
def long_text_forms(screening, admin):
    signed_one = signed(flagged_screening(screening.submitted_by, ["SUI-01"]), admin)
    review = reviews.current_review(signed_one)
    return {
        "note": (
            admin_url("intake_screening_review", screening.pk),
            review_post(screening),
            reviews.NOTE_MAX_LENGTH,
            lambda: Review.objects.filter(screening=screening).exists(),
        ),
        "text": (
            admin_url("intake_screening_addendum", signed_one.pk),
            {"password": PASSWORD, "review": review.pk},
            reviews.NOTE_MAX_LENGTH,
            lambda: signed_one.addenda.exists(),
        ),
        "reason": (
            admin_url("intake_screening_unlock", signed_one.pk),
            {"review": review.pk},
            reviews.REASON_MAX_LENGTH,
            lambda: Review.objects.filter(voided_at__isnull=False).exists(),
        ),
        "thresholds note": (
            admin_url("intake_thresholdset_add"),
            threshold_post(hr_review="125"),
            reviews.REASON_MAX_LENGTH,
            lambda: ThresholdSet.objects.exists(),
        ),
    }


@pytest.mark.parametrize("name", ["note", "text", "reason", "thresholds note"])
def test_free_text_over_its_maximum_is_refused_with_the_count_and_nothing_stored(
    client, clinic_admin, staff_user, name
):
    screening = flagged_screening(staff_user, ["SUI-01"])
    url, data, limit, stored = long_text_forms(screening, clinic_admin)[name]
    field = name.split()[-1]
    client.force_login(clinic_admin)
    page = client.get(url).content.decode()
    assert re.search(rf'<textarea name="{field}"[^>]* maxlength="{limit}"', page)
    assert f"At most {limit:,} characters." in page

    response = client.post(url, {**data, field: "z" * (limit + 1)})
    assert response.status_code == 200
    message = f"Shorten this to at most {limit:,} characters; it has {limit + 1:,}."
    assert response.context["form"].errors[field] == [message]
    assert message in response.content.decode()
    assert not stored()

    # The browser counts a typed line break as one character, and posts it as two.
    text = "line\r\n" * (limit // 5 - 1) + "z" * 5
    assert len(text.replace("\r\n", "\n")) == limit
    response = client.post(url, {**data, field: text})
    assert response.status_code == 302, response.context["form"].errors
    assert stored()
