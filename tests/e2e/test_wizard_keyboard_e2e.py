"""The wizard by keyboard at tablet and laptop widths: Tab order, skip link, medication rows."""

import datetime as dt

import pytest
from django.utils import timezone

from intake.models import Draft
from tests.e2e.pages import sign_in, wait_for_scroll_to_settle, wheel_over_focused
from tests.e2e.test_wizard_e2e import NEXT, ready_draft, realistic_answers, step_path

pytestmark = pytest.mark.e2e

FOCUSED = """() => { const e = document.activeElement; return {
    tag: e.tagName, id: e.id, name: e.name || "", text: (e.innerText || "").trim(),
    section: !!e.closest(".wizard-progress"), header: !!e.closest("header") }; }"""


def tab_stops(page, limit):
    """Return what Tab focuses, from the top of the page until it leaves the page."""
    page.locator("body").focus()
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUSED)
        if stop["tag"] == "BODY":
            return stops
        stops.append(stop)
    raise AssertionError(f"Tab never left the page in {limit} presses")


@pytest.mark.parametrize("width, height", [(1280, 900), (768, 1024)])
def test_tab_reaches_the_step_before_the_section_list(
    signed_in_page, live_server, e2e_staff, screenshots, width, height
):
    page = signed_in_page
    page.set_viewport_size({"width": width, "height": height})
    draft = ready_draft(e2e_staff, realistic_answers())
    page.goto(live_server.url + step_path(draft.pk, "alcohol"))
    stops = tab_stops(page, 120)
    assert stops[0]["text"] == "Skip to main content"
    first_question = next(i for i, stop in enumerate(stops) if stop["name"].startswith("alcohol-"))
    assert all(stop["header"] for stop in stops[1:first_question])  # brand, Sign out
    assert stops[first_question]["name"] == "alcohol-audc_1"
    sections = [i for i, stop in enumerate(stops) if stop["section"]]
    next_button = next(i for i, stop in enumerate(stops) if stop["text"] == "Next")
    assert len(sections) == 12  # 13 reached sections but the current one, which is no link
    assert next_button < sections[0]
    if width < 992:
        # Below lg the section list is shown under the step: Tab goes down the page.
        tops = [
            page.locator(".wizard-progress a").first.bounding_box()["y"],
            page.locator(NEXT).bounding_box()["y"],
        ]
        assert tops[0] > tops[1]

    page.goto(live_server.url + step_path(draft.pk, "alcohol"))
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate(FOCUSED)["id"] == "step-content"
    # Bootstrap scrolls smoothly: wait until the step's heading is in view.
    page.wait_for_function(
        """() => { const box = document.querySelector("#step-content h1").getBoundingClientRect();
                   return box.top >= 0 && box.bottom <= window.innerHeight; }"""
    )
    page.screenshot(path=str(screenshots / f"keyboard-skip-{width}.png"))
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["name"] == "alcohol-audc_1"


def test_medicine_rows_are_renumbered_after_add_and_remove(
    signed_in_page, live_server, e2e_staff, screenshots
):
    page = signed_in_page
    page.set_viewport_size({"width": 768, "height": 1024})
    draft = ready_draft(e2e_staff, realistic_answers(), last_step="medications")
    page.goto(live_server.url + step_path(draft.pk, "medications"))
    rows = page.locator("[data-med-row]")
    assert rows.count() == 4  # Sertraline, Lorazepam and two blank rows
    add = page.get_by_role("button", name="Add another medicine")
    add.focus()
    page.keyboard.press("Enter")
    add.focus()
    page.keyboard.press("Enter")
    assert rows.count() == 6
    rows.nth(4).get_by_label("Medicine 5: name").fill("Zolpidem")
    rows.nth(5).get_by_label("Medicine 6: name").fill("Melatonin")
    page.get_by_role("button", name="Remove medicine 2", exact=True).focus()
    page.keyboard.press("Enter")

    assert rows.count() == 5
    for number in range(1, 6):
        row = rows.nth(number - 1)
        assert row.get_by_role("button", name=f"Remove medicine {number}", exact=True).count() == 1
        for part, label in (("name", "name"), ("dose", "dose"), ("frequency", "how often")):
            field = row.get_by_label(f"Medicine {number}: {label}", exact=True)
            assert field.get_attribute("name") == f"medications-medications-{number - 1}-{part}"
    assert page.get_by_role("button", name="Remove medicine 6").count() == 0
    assert page.get_by_label("Medicine 4: name").input_value() == "Zolpidem"
    page.screenshot(path=str(screenshots / "keyboard-medicine-rows.png"), full_page=True)

    page.click(NEXT)
    page.wait_for_url(f"**{step_path(draft.pk, 'psychiatric')}")
    saved = Draft.objects.get(pk=draft.pk).answers["medications"]
    assert [row["name"] for row in saved] == ["Sertraline", "Zolpidem", "Melatonin"]


def test_a_date_and_time_typed_quickly_keeps_a_four_digit_year(
    signed_in_page, live_server, e2e_staff, screenshots
):
    page = signed_in_page
    draft = ready_draft(e2e_staff, realistic_answers(), last_step="alcohol")
    page.goto(live_server.url + step_path(draft.pk, "alcohol"))
    field = page.locator('[name="alcohol-alc_last_drink"]')
    field.fill("")
    field.focus()
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    page.keyboard.type(yesterday.strftime("%m%d%Y"))
    page.keyboard.type("0830P")
    assert field.input_value() == f"{yesterday.isoformat()}T20:30"
    field.screenshot(path=str(screenshots / "keyboard-last-drink.png"))
    page.click(NEXT)
    page.wait_for_url(f"**{step_path(draft.pk, 'substances')}")
    saved = Draft.objects.get(pk=draft.pk).answers["alc_last_drink"]
    assert saved.startswith(f"{yesterday.isoformat()}T")


def test_each_resume_link_has_its_own_accessible_name(signed_in_page, live_server, e2e_staff):
    page = signed_in_page
    named = ready_draft(e2e_staff, realistic_answers(), last_step="vitals")
    started = timezone.localtime().replace(second=0, microsecond=0)
    unnamed = [Draft.objects.create(created_by=e2e_staff, created_at=started) for _ in range(2)]
    page.goto(live_server.url + "/")
    links = page.locator("#drafts-title ~ * a", has_text="Resume")
    assert links.count() == 3
    when = started.strftime("%Y-%m-%d %H:%M")
    expected = ["Resume Maria Lopez"] + [f"Resume draft {d.pk}, started {when}" for d in unnamed]
    for name in expected:
        assert page.get_by_role("link", name=name, exact=True).count() == 1, name
    assert page.get_by_role("link", name="Resume", exact=True).count() == 0
    hrefs = links.evaluate_all("links => links.map(link => link.getAttribute('href'))")
    assert f"/drafts/{named.pk}/vitals/" in hrefs
    assert not any("Maria" in href or "Lopez" in href for href in hrefs)


def test_a_mouse_wheel_over_a_focused_number_box_scrolls_the_page_not_the_value(
    signed_in_page, live_server, e2e_staff
):
    page = signed_in_page
    page.set_viewport_size({"width": 1280, "height": 600})
    draft = ready_draft(e2e_staff, realistic_answers(), last_step="vitals")
    page.goto(live_server.url + step_path(draft.pk, "vitals"))
    field = page.locator('[name="vitals-vit_sbp"]')
    assert wheel_over_focused(page, field, "152") == ("152", True)


def test_an_error_link_shows_the_whole_question_and_leaves_no_fragment_behind(
    signed_in_page, live_server, e2e_staff
):
    page = signed_in_page
    page.set_viewport_size({"width": 1280, "height": 800})
    draft = ready_draft(e2e_staff, {}, last_step="patient")
    page.goto(live_server.url + step_path(draft.pk, "patient"))
    page.click(NEXT)
    summary = page.locator("#error-summary")
    link = summary.locator('a[href="#id_patient-sex_at_birth_0"]')
    link.focus()
    page.keyboard.press("Enter")
    focused = page.evaluate("document.activeElement.id")
    assert focused == "id_patient-sex_at_birth_0"
    # The question's legend is on screen with the focused option, not scrolled off above it.
    legend = page.locator('[data-question="sex_at_birth"] legend')
    assert legend.bounding_box()["y"] >= 0
    assert "#" not in page.url
    # The skip link adds a fragment; the next step's address does not keep it.
    page.goto(live_server.url + step_path(draft.pk, "patient") + "#main")
    page.fill('[name="patient-first_name"]', "Ada")
    page.click(NEXT)
    page.wait_for_load_state()
    assert "#" not in page.url


CONTRAST = """(element) => {
    const parse = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
    const lum = (rgb) => {
        const [r, g, b] = rgb.map((v) => { v /= 255;
            return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
    // The ring is drawn outside the element: measure it against what is around it.
    let node = element.parentElement, background = "rgba(0, 0, 0, 0)";
    while (node && node.nodeType === 1) {
        const bg = getComputedStyle(node).backgroundColor;
        if (bg !== "rgba(0, 0, 0, 0)" && bg !== "transparent") { background = bg; break; }
        node = node.parentElement;
    }
    if (background === "rgba(0, 0, 0, 0)") background = "rgb(255, 255, 255)";
    const style = getComputedStyle(element);
    const [a, b] = [lum(parse(style.outlineColor)), lum(parse(background))];
    return { width: parseFloat(style.outlineWidth), style: style.outlineStyle,
             ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
}"""


def test_the_keyboard_focus_ring_stands_out_from_its_background(
    signed_in_page, live_server, e2e_staff
):
    page = signed_in_page
    draft = ready_draft(e2e_staff, realistic_answers(), last_step="vitals")
    page.goto(live_server.url + step_path(draft.pk, "vitals"))
    targets = [
        '[name="vitals-vit_sbp"]',
        NEXT,
        ".wizard-progress a",
        "header a.navbar-brand",
    ]
    checked = 0
    for selector in targets:
        element = page.locator(selector).first
        element.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focus by keyboard, so :focus-visible applies
        ring = element.evaluate(CONTRAST)
        assert ring["style"] == "solid" and ring["width"] >= 2, (selector, ring)
        assert ring["ratio"] >= 3, (selector, ring)
        checked += 1
    assert checked == len(targets)


def test_a_tick_box_unticked_by_an_exclusive_answer_is_announced(
    signed_in_page, live_server, e2e_staff
):
    page = signed_in_page
    draft = ready_draft(e2e_staff, realistic_answers(), last_step="other_conditions")
    page.goto(live_server.url + step_path(draft.pk, "other_conditions"))
    none = page.locator('[name="other_conditions-endo_thyroid"][value="none"]')
    unsure = page.locator('[name="other_conditions-endo_thyroid"][value="unsure"]')
    none.check()
    announce = page.locator("#wizard-announce")
    assert announce.get_attribute("aria-live") == "polite"
    unsure.focus()
    page.keyboard.press("Space")
    assert unsure.is_checked() and not none.is_checked()
    assert announce.text_content() == "Unticked: None."


FOCUS_BESIDE_BAR = """() => {
    const e = document.activeElement, box = e.getBoundingClientRect();
    const bar = document.querySelector(".wizard-actions").getBoundingClientRect();
    return { name: e.name || (e.innerText || "").trim(), top: box.top, bottom: box.bottom,
             barTop: bar.top, inBar: !!e.closest(".wizard-actions"),
             inForm: !!e.closest(".wizard-form"), section: !!e.closest(".wizard-progress") };
}"""


def focus_hidden_by_the_bar(page):
    """Return the focused control if the button bar covers it or its ring, or it is off screen."""
    wait_for_scroll_to_settle(page)
    stop = page.evaluate(FOCUS_BESIDE_BAR)
    if stop["inBar"] or not stop["inForm"]:
        return None
    ring = 5  # the focus ring: a 3 px outline 2 px out
    return stop if stop["top"] < ring or stop["bottom"] + ring > stop["barTop"] else None


def in_view(page, selector):
    box = page.locator(selector).bounding_box()
    return box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"]


def test_on_a_portrait_tablet_the_buttons_stay_in_view_and_never_cover_the_focus(
    chromium, live_server, e2e_staff, screenshots
):
    context = chromium.new_context(
        viewport={"width": 768, "height": 1024}, has_touch=True, locale="en-US"
    )
    page = sign_in(context.new_page(), live_server, e2e_staff)
    draft = ready_draft(e2e_staff, realistic_answers(), last_step="other_conditions")
    hidden = []
    for slug in ("medications", "mood", "other_conditions"):
        page.goto(live_server.url + step_path(draft.pk, slug))
        assert in_view(page, NEXT), slug  # at the top of a long step
        page.locator("body").focus()
        stops = 0
        for _ in range(200):
            page.keyboard.press("Tab")
            if page.evaluate(FOCUS_BESIDE_BAR)["section"]:
                break
            stops += 1
            if found := focus_hidden_by_the_bar(page):
                hidden.append((slug, found))
        assert stops > 15, slug
    page.screenshot(path=str(screenshots / "tablet-touch-button-bar.png"))

    # Every error link of a step left blank lands on a control clear of the bar.
    page.goto(live_server.url + step_path(draft.pk, "mood"))
    page.evaluate(
        """() => document.querySelectorAll(".wizard-form input:checked")
            .forEach((input) => { input.checked = false; })"""
    )
    page.click(NEXT)
    links = page.locator("#error-summary a")
    assert links.count() > 15
    for index in range(links.count()):
        page.locator("#error-summary").scroll_into_view_if_needed()
        links.nth(index).focus()
        page.keyboard.press("Enter")
        if found := focus_hidden_by_the_bar(page):
            hidden.append(("error link", found))
    context.close()
    assert not hidden, hidden


@pytest.mark.parametrize("touch", [False, True], ids=["mouse", "touch"])
def test_the_button_bar_stays_in_its_place_with_a_mouse_or_on_a_phone(
    chromium, live_server, e2e_staff, touch
):
    size = {"width": 390, "height": 844} if touch else {"width": 768, "height": 1024}
    context = chromium.new_context(viewport=size, has_touch=touch, locale="en-US")
    page = sign_in(context.new_page(), live_server, e2e_staff)
    draft = ready_draft(e2e_staff, realistic_answers(), last_step="mood")
    page.goto(live_server.url + step_path(draft.pk, "mood"))
    assert page.locator(".wizard-actions").evaluate("(bar) => getComputedStyle(bar).position") == (
        "static"
    )
    assert not in_view(page, NEXT)
    context.close()
