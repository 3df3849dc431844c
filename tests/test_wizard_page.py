"""The wizard step page's template tags: the questions and the progress list."""

import pytest
from django.template import Context, Template

from intake import instrument
from intake.forms import step_form_class
from intake.templatetags.wizard_page import progress_items
from tests.test_forms import form_for, make_form
from tests.wizard_helpers import start, step_url


@pytest.mark.parametrize("slug", [s.slug for s in instrument.STEPS])
def test_step_questions_tag_renders_what_the_crispy_tag_renders(slug):
    """The page's ``{% step_questions %}`` skips crispy's wrapper templates, not any markup."""
    crispy = Template("{% load crispy_forms_tags %}{% crispy form %}")
    ours = Template("{% load wizard_page %}{% step_questions form %}")
    codes = step_form_class(slug).base_fields
    forms_ = [make_form(slug, {}), make_form(slug, {f"{slug}-{code}": "<b>" for code in codes})]
    if slug != "pregnancy":
        forms_.append(form_for(slug))
    for form in forms_:
        form.is_valid()
        expected = " ".join(crispy.render(Context({"form": form})).split())
        assert " ".join(ours.render(Context({"form": form})).split()) == expected
        assert expected.count("data-question=") == len(codes)


def section(number, *, current=False, visited=False, complete=False, title=None):
    return {
        "slug": f"s{number}",
        "number": number,
        "title": title or f"Section {number}",
        "url": f"/drafts/7/s{number}/",
        "current": current,
        "visited": visited,
        "complete": complete,
    }


def items(sections, on_review=False):
    return progress_items(sections, on_review).split("\n")


def test_current_section_is_marked_for_screen_readers_and_not_a_link():
    (item,) = items([section(2, current=True, visited=True, complete=True)])
    assert item == (
        '<li class="wizard-progress-item is-current"><span aria-current="step">'
        '<span class="wizard-progress-number">2</span> '
        '<span class="wizard-progress-title">Section 2</span></span></li>'
    )


def test_visited_sections_link_to_their_step_and_say_when_complete():
    done, started = items([section(1, visited=True, complete=True), section(3, visited=True)])
    assert done == (
        '<li class="wizard-progress-item is-complete"><a href="/drafts/7/s1/">'
        '<span class="wizard-progress-number">1</span> '
        '<span class="wizard-progress-title">Section 1</span></a>'
        '<span class="visually-hidden">(complete)</span></li>'
    )
    assert started == (
        '<li class="wizard-progress-item"><a href="/drafts/7/s3/">'
        '<span class="wizard-progress-number">3</span> '
        '<span class="wizard-progress-title">Section 3</span></a></li>'
    )


def test_links_from_the_review_step_come_back_to_it():
    (item,) = items([section(1, visited=True)], on_review=True)
    assert 'href="/drafts/7/s1/?return=review"' in item


def test_sections_not_yet_reached_are_plain_text():
    (item,) = items([section(5)])
    assert item == (
        '<li class="wizard-progress-item"><span class="text-body-secondary">'
        '<span class="wizard-progress-number">5</span> '
        '<span class="wizard-progress-title">Section 5</span></span></li>'
    )
    assert "<a" not in item


def test_titles_and_links_are_escaped():
    (item,) = items([section(1, visited=True, title='<b>"A&B"</b>')])
    assert "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;" in item
    assert "<b>" not in item


def test_step_page_lists_every_section_once(client, staff_user):
    client.force_login(staff_user)
    draft = start(client)
    response = client.get(step_url(draft, "patient"))
    page, sections = response.content.decode(), response.context["sections"]
    assert page.count('class="wizard-progress-item') == len(sections)
    assert page.count('aria-current="step"') == 1


def test_skip_link_lands_on_the_step_and_the_step_comes_before_the_sections(client, staff_user):
    """Keyboard order follows what is seen at every width: the section list is after the step."""
    client.force_login(staff_user)
    draft = start(client)
    page = client.get(step_url(draft, "patient")).content.decode()
    assert page.count('href="#step-content"') == 1
    assert page.count('id="step-content"') == 1
    step = page.index('id="step-content"')
    assert step < page.index("<h1") < page.index("data-wizard") < page.index('wizard-progress"')
    assert 'aria-labelledby="progress-title"' in page


def test_other_pages_skip_to_main(client, staff_user):
    client.force_login(staff_user)
    page = client.get("/").content.decode()
    assert 'href="#main"' in page
    assert 'id="main"' in page


@pytest.mark.parametrize("slug", ["patient", "review"])
def test_sign_out_on_a_step_submits_the_step_and_enter_still_means_next(client, staff_user, slug):
    """The header's sign-out saves the step (no JavaScript needed); Enter is not a sign-out."""
    from html.parser import HTMLParser

    class Buttons(HTMLParser):
        def __init__(self):
            super().__init__()
            self.buttons, self.form_depth = [], 0

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "form":
                self.form_depth += attrs.get("id") == "wizard-form"
            owned = self.form_depth or attrs.get("form") == "wizard-form"
            if tag == "button" and attrs.get("type") == "submit" and owned:
                self.buttons.append(attrs)

        def handle_endtag(self, tag):
            if tag == "form":
                self.form_depth = 0

    client.force_login(staff_user)
    draft = start(client)
    page = client.get(step_url(draft, slug)).content.decode()
    assert 'action="/accounts/logout/"' not in page
    parser = Buttons()
    parser.feed(page)
    # A form's default button (Enter in a field) is its first submit button in the page.
    default = parser.buttons[0]
    assert "name" not in default and "visually-hidden" in default["class"]
    sign_out = [b for b in parser.buttons if b.get("name") == "wizard_sign_out"]
    assert len(sign_out) == 1 and "formnovalidate" in sign_out[0]
    assert parser.buttons.index(sign_out[0]) == 1


def test_other_pages_sign_out_through_the_logout_form(client, staff_user):
    client.force_login(staff_user)
    page = client.get("/").content.decode()
    assert 'action="/accounts/logout/"' in page
    assert "wizard_sign_out" not in page
