"""Bulk actions in the review panel act only on a selection they understand."""

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class CheckedSelectionMixin:
    """Refuse a bulk action whose selected ids are not ids of the list's model.

    Django's admin filters the list by the posted ids as they come, and an id
    that is not a number (a forged or garbled post) ended in a server error.
    """

    def response_action(self, request, queryset):
        pk = self.model._meta.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                pk.to_python(value)
            except ValidationError:
                self.message_user(
                    request,
                    _("Nothing was done: the selection was not understood. Select the rows again."),
                    messages.WARNING,
                )
                # None: the list is shown again, with the message (Django's "action failed").
                return None
        return super().response_action(request, queryset)
