"""Helpers that drive the wizard through Django's test client with typed answers."""

import datetime as dt
import re

from django.urls import reverse
from django.utils import timezone

from intake import instrument
from intake.formdata import step_post_data
from intake.models import Draft


def step_url(draft, slug):
    return reverse("intake:wizard_step", kwargs={"draft_id": draft.pk, "step": slug})


def post_data(slug, answers, **extra):
    """Return the POST body of step ``slug`` with the typed ``answers``, plus ``extra``."""
    return {**step_post_data(slug, answers), **extra}


def start(client):
    """Start a draft through the home page's POST and return it."""
    response = client.post(reverse("intake:new_screening"))
    assert response.status_code == 302
    return Draft.objects.latest("pk")


def applicable_steps(answers, thresholds=None):
    from intake import thresholds as threshold_defaults

    values = thresholds or dict(threshold_defaults.DEFAULTS)
    return [
        step.slug for step in instrument.STEPS if instrument.step_applies(step, answers, values)
    ]


def complete(client, draft, answers):
    """Post every applicable step with ``answers`` (review last) and return the last response."""
    response = None
    for slug in applicable_steps(answers):
        response = client.post(step_url(draft, slug), post_data(slug, answers))
        assert response.status_code == 302, (slug, errors_of(response))
    return response


def errors_of(response):
    context = getattr(response, "context", None)
    if not context or "form" not in context:
        return None
    return context["form"].errors


def naive_now():
    return timezone.localtime().replace(tzinfo=None, second=0, microsecond=0)


def hours_ago(hours):
    return timezone.now() - dt.timedelta(hours=hours)


def hidden_value(response, name):
    """Return the value of the hidden input ``name`` on the page of ``response``, or None."""
    match = re.search(rf'name="{name}" value="([^"]*)"', response.content.decode())
    return match.group(1) if match else None
