"""Template tags of the wizard step page."""

from django import template
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

register = template.Library()


@register.simple_tag(takes_context=True)
def step_questions(context, form):
    """Render ``form``'s questions through its crispy layout (``StepForm.helper``).

    ``{% crispy %}`` renders the same layout, then wraps it in the pack's
    whole-form templates after copying and flattening the page's context: more
    than half a millisecond a step for a wrapper that adds nothing here (no form
    tag, no CSRF field, no media; step forms have no non-field errors, and the
    page's error summary lists any there were).
    """
    return form.helper.render_layout(form, context)


@register.simple_tag
def progress_items(sections, on_review):
    """Return the progress list's items (``ScreeningWizard.sections``) as ``<li>`` elements.

    Written in Python like the question options: a template loop over the 14
    sections, with a branch and five lookups each, cost half a millisecond of
    every step page. Every value from outside is escaped here.
    """
    suffix = "?return=review" if on_review else ""
    complete = escape(_("(complete)"))
    items = []
    for section in sections:
        label = (
            f'<span class="wizard-progress-number">{int(section["number"])}</span> '
            f'<span class="wizard-progress-title">{escape(section["title"])}</span>'
        )
        if section["current"]:
            items.append(
                '<li class="wizard-progress-item is-current">'
                f'<span aria-current="step">{label}</span></li>'
            )
            continue
        state = " is-complete" if section["complete"] else ""
        if section["visited"]:
            body = f'<a href="{escape(section["url"])}{suffix}">{label}</a>'
            if section["complete"]:
                body += f'<span class="visually-hidden">{complete}</span>'
        else:
            body = f'<span class="text-body-secondary">{label}</span>'
        items.append(f'<li class="wizard-progress-item{state}">{body}</li>')
    return mark_safe("\n".join(items))  # noqa: S308 - built from escaped values only
