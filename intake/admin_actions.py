"""Bulk actions in the review panel act only on a selection they understand."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _

from intake.admin_forms import parse_id


def selected_id_understood(pk_field, value):
    """Return whether ``value`` is an id of a model whose primary key is ``pk_field``.

    A number key takes ASCII digits only, at most 18 of them (``parse_id``): the list
    posts nothing else, and ``to_python`` would take "١٢" as 12.
    """
    if isinstance(pk_field, models.IntegerField | models.AutoField):
        return parse_id(value) is not None
    try:
        pk_field.to_python(value)
    except ValidationError:
        return False
    return True


class CheckedSelectionMixin:
    """Refuse a bulk action whose selected ids are not ids of the list's model.

    Django's admin filters the list by the posted ids as they come, and an id
    that is not a number (a forged or garbled post) ended in a server error.
    """

    def response_action(self, request, queryset):
        pk = self.model._meta.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            if not selected_id_understood(pk, value):
                self.message_user(
                    request,
                    _("Nothing was done: the selection was not understood. Select the rows again."),
                    messages.WARNING,
                )
                # None: the list is shown again, with the message (Django's "action failed").
                return None
        return super().response_action(request, queryset)
