"""Template tags of the wizard step page."""

from django import template

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
