"""Idle timeout in headless Chromium with a 12-second session: warning, keep-alive, sign-out."""

import pytest
from django.contrib.auth import logout
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template import engines
from django.test import Client
from django.urls import include, path, reverse

ARTIFACTS = "artifacts"

# A stand-in for a wizard step: the contract idle.js relies on is a
# form[data-autosave] with an "autosave" input and a "wizard_save_exit" button.
AUTOSAVE_PAGE = """{% extends "base.html" %}
{% block content %}
<form method="post" data-autosave>{% csrf_token %}
  <label for="answer">Answer</label><input id="answer" name="answer" required>
  <input type="hidden" name="autosave" value="0">
  <button type="submit" name="wizard_save_exit" value="1">Save and exit</button>
</form>
{% endblock content %}"""
DIGEST_PAGE = """{% extends "base.html" %}
{% block content %}
<form method="post" data-autosave>{% csrf_token %}
  <label for="answer">Answer</label><input id="answer" name="answer">
  <input type="hidden" name="autosave" value="">
  <input type="hidden" name="step_digest" value="shown">
  <button type="submit" name="wizard_save_exit" value="1">Save and exit</button>
</form>
{% endblock content %}"""
PLAIN_PAGE = """{% extends "base.html" %}
{% block content %}<p>A signed-in page.</p>{% endblock content %}"""
RECEIVED = []


def render_string(request, source):
    return HttpResponse(engines["django"].from_string(source).render({}, request))


def plain_page(request):
    return render_string(request, PLAIN_PAGE)


def autosave_step(request):
    if request.method == "POST":
        RECEIVED.append(dict(request.POST.items()))
        if request.POST.get("autosave") == "background":
            return HttpResponse(status=204)
        logout(request)
        return redirect(f"{reverse('login')}?next={request.path}")
    return render_string(request, AUTOSAVE_PAGE)


def digest_step(request):
    """Refuse a save whose answer is "stale" (409); answer others with a new digest."""
    if request.method == "POST":
        RECEIVED.append(dict(request.POST.items()))
        if request.POST.get("answer") == "stale":
            return HttpResponse(status=409)
        response = HttpResponse(status=204)
        response["X-Step-Digest"] = f"saved-{len(RECEIVED)}"
        return response
    return render_string(request, DIGEST_PAGE)


urlpatterns = [
    path("e2e/page/", plain_page),
    path("e2e/digest/", digest_step),
    path("e2e/autosave/", autosave_step),
    path("", include("intake.urls")),
]

# Like the other live-server tests: start from the migrated rows (roles), not a flushed DB.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def idle_app(settings, live_server, django_user_model):
    """Serve the app with a 12-second idle timeout and return a signed-in session cookie."""
    settings.ROOT_URLCONF = __name__
    settings.SESSION_COOKIE_AGE = 12
    settings.IDLE_WARNING_SECONDS = 6
    user = django_user_model.objects.create_user(username="idle-nurse", password="x" * 16)
    client = Client()
    client.force_login(user)
    RECEIVED.clear()
    return live_server.url, client.cookies[settings.SESSION_COOKIE_NAME].value


def browser_page(chromium, base_url, session_key):
    context = chromium.new_context()
    context.add_cookies([{"name": "sessionid", "value": session_key, "url": base_url}])
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    return context, page, problems


def test_warning_dialog_keeps_the_session_then_signs_out_when_idle(idle_app, chromium):
    base_url, session_key = idle_app
    context, page, problems = browser_page(chromium, base_url, session_key)
    page.goto(base_url + "/e2e/page/")
    dialog = page.locator("#idle-dialog")
    assert not dialog.is_visible()

    page.wait_for_selector("#idle-dialog[open]", timeout=10_000)
    assert dialog.get_attribute("role") == "alertdialog"
    assert page.evaluate("document.activeElement.hasAttribute('data-idle-stay')")
    assert page.locator("[data-idle-countdown]").inner_text().startswith("0:0")
    page.screenshot(path=f"{ARTIFACTS}/idle_warning.png")

    with page.expect_response(lambda r: r.url.endswith("/session/keepalive/")) as info:
        page.get_by_role("button", name="Stay signed in").click()
    assert info.value.status == 204
    page.wait_for_selector("#idle-dialog:not([open])", state="attached", timeout=2_000)

    page.wait_for_url(f"{base_url}/accounts/login/?next=%2Fe2e%2Fpage%2F", timeout=20_000)
    assert "You were signed out after 1 minute without activity." in page.content()
    page.goto(base_url + "/e2e/page/")
    assert page.url.startswith(base_url + "/accounts/login/")
    assert problems == []
    context.close()


def test_idle_wizard_step_is_saved_before_sign_out(idle_app, chromium):
    base_url, session_key = idle_app
    context, page, problems = browser_page(chromium, base_url, session_key)
    page.goto(base_url + "/e2e/autosave/")
    page.fill("#answer", "")

    page.wait_for_url(f"{base_url}/accounts/login/?next=/e2e/autosave/", timeout=20_000)
    assert problems == []
    context.close()

    assert len(RECEIVED) == 1
    assert RECEIVED[0]["autosave"] == "1"
    assert RECEIVED[0]["wizard_save_exit"] == "1"


HIDE_PAGE = """
Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
document.dispatchEvent(new Event("visibilitychange"));
"""


def test_typed_answers_are_saved_when_the_page_goes_out_of_sight(idle_app, chromium):
    base_url, session_key = idle_app
    context, page, problems = browser_page(chromium, base_url, session_key)
    page.goto(base_url + "/e2e/autosave/")
    page.evaluate(HIDE_PAGE)  # nothing typed yet: nothing to save
    page.fill("#answer", "typed before the tablet slept")
    with page.expect_response(lambda r: r.url.endswith("/e2e/autosave/")) as info:
        page.evaluate(HIDE_PAGE)
    assert info.value.status == 204
    assert page.url == base_url + "/e2e/autosave/"  # still on the page, still signed in
    page.evaluate(HIDE_PAGE)  # unchanged since: no second save
    page.wait_for_timeout(300)
    assert problems == []
    context.close()
    assert [(r["answer"], r["autosave"], r["wizard_save_exit"]) for r in RECEIVED] == [
        ("typed before the tablet slept", "background", "1")
    ]


def test_a_page_woken_after_the_session_ended_goes_to_sign_in_and_says_why(idle_app, chromium):
    base_url, session_key = idle_app
    context, page, problems = browser_page(chromium, base_url, session_key)
    page.clock.install()
    page.goto(base_url + "/e2e/autosave/")
    page.fill("#answer", "typed before sleeping")
    # The tablet sleeps past the 12-second session: no timer ran, no save was sent.
    page.clock.fast_forward("00:30")
    page.wait_for_url(f"{base_url}/accounts/login/?next=%2Fe2e%2Fautosave%2F&timeout=1")
    assert "You were signed out after 1 minute without activity." in page.content()
    assert problems == []
    context.close()
    assert RECEIVED == []  # a save to an ended session could not have been kept


def test_a_background_save_keeps_the_digest_of_what_it_stored(idle_app, chromium):
    """The page's digest follows its own saves, so its next Next is not taken for another tab's."""
    base_url, session_key = idle_app
    context, page, problems = browser_page(chromium, base_url, session_key)
    page.goto(base_url + "/e2e/digest/")
    page.fill("#answer", "stale")
    with page.expect_response(lambda r: r.url.endswith("/e2e/digest/")) as info:
        page.evaluate(HIDE_PAGE)
    assert info.value.status == 409
    assert page.input_value('[name="step_digest"]') == "shown"  # refused: nothing changed
    # Still unsaved: the next time the page is hidden it tries again.
    page.fill("#answer", "kept")
    with page.expect_response(lambda r: r.url.endswith("/e2e/digest/")) as info:
        page.evaluate(HIDE_PAGE)
    assert info.value.status == 204
    page.wait_for_function("document.querySelector('[name=step_digest]').value === 'saved-2'")
    # Chromium logs every 4xx response to the console; the refusal is expected here.
    assert [p for p in problems if "409 (Conflict)" not in p] == []
    context.close()
    assert [(r["answer"], r["step_digest"]) for r in RECEIVED] == [
        ("stale", "shown"),
        ("kept", "shown"),
    ]


def test_the_review_panel_warns_keeps_alive_while_typing_and_signs_out_when_idle(
    settings, live_server, chromium, make_user
):
    from intake.models import Role

    settings.SESSION_COOKIE_AGE = 12
    settings.IDLE_WARNING_SECONDS = 6
    clinician = make_user("idle-clinician", Role.CLINICIAN)
    client = Client()
    client.force_login(clinician)
    base_url = live_server.url
    context, page, problems = browser_page(
        chromium, base_url, client.cookies[settings.SESSION_COOKIE_NAME].value
    )
    queue = reverse("admin:intake_screening_changelist")
    page.goto(base_url + queue)
    # Typing (here in the queue's search box) keeps the session alive: no warning for 14 s,
    # longer than the session would last untouched.
    for _ in range(7):
        page.locator("#searchbar").press_sequentially("ab", delay=50)
        page.wait_for_timeout(2_000)
        assert not page.locator("#idle-dialog").is_visible()
    assert page.url == base_url + queue
    page.wait_for_selector("#idle-dialog[open]", timeout=10_000)
    assert page.evaluate("document.activeElement.hasAttribute('data-idle-stay')")
    page.screenshot(path=f"{ARTIFACTS}/idle_warning_review_panel.png")
    page.wait_for_url(f"{base_url}/accounts/login/?next=**", timeout=20_000)
    assert "You were signed out after 1 minute without activity." in page.content()
    assert problems == []
    context.close()
