"""Review panel lists filter only by their own filters, never by a lookup typed into the URL.

Django's admin filters a list by any lookup on the model's own fields given in
the query string, so ``?patient_last_name__istartswith=ngu`` searched the queue
by name in the address bar, past the posted search that keeps names out of
URLs (and so out of access logs, history and each row's link). Here a list
accepts only the parameters its own filters and date hierarchy read; any other
gets Django's refusal (``DisallowedModelAdminLookup``, a 400 page), and so
does a date hierarchy value that is not a plain number of the right size.
"""

import datetime as dt

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.db import models

# The values a date hierarchy part may take. The list is bounded by the start of
# the next year, month or day, and its local times are converted to UTC, so the
# years stop one short of what ``datetime`` holds at either end.
DATE_PARTS = {
    "year": (dt.MINYEAR + 1, dt.MAXYEAR - 1),
    "month": (1, 12),
    "day": (1, 31),
}


def is_number_between(value, low, high):
    """Return whether ``value`` is written in ASCII digits alone and lies in [low, high]."""
    return (
        value.isascii()
        and value.isdigit()
        and len(value) <= len(str(high)) + 2
        and low <= int(value) <= high
    )


def filter_parameters(model_admin, request):
    """Return the query parameters that the list filters of ``model_admin`` read.

    The names are those of the list filter Django picks for each kind of field:
    ``<path>__<target>__exact`` for a relation, ``__gte`` and ``__lt`` for a
    date, ``__exact`` for a yes/no or choices field, the bare path for any
    other, and ``__isnull`` where the filter offers "empty".
    """
    names = set()
    for item in model_admin.get_list_filter(request):
        if isinstance(item, type) and issubclass(item, admin.SimpleListFilter):
            names.add(item.parameter_name)
            continue
        field_path = item[0] if isinstance(item, (list, tuple)) else item
        field = get_fields_from_path(model_admin.model, field_path)[-1]
        if field.is_relation:
            names.update(
                {f"{field_path}__{field.target_field.name}__exact", f"{field_path}__isnull"}
            )
        elif isinstance(field, models.DateField):
            names.update({f"{field_path}__gte", f"{field_path}__lt"})
            if field.null:
                names.add(f"{field_path}__isnull")
        elif isinstance(field, models.BooleanField) or field.choices:
            names.update({f"{field_path}__exact", f"{field_path}__isnull"})
        else:  # Django's filter by each value the field holds
            names.update({field_path, f"{field_path}__isnull"})
    return names


class OwnFiltersOnlyMixin:
    """Let a list be filtered only by its own list filters and date hierarchy."""

    def lookup_allowed(self, lookup, value, request=None):
        if self.date_hierarchy:
            for part, (low, high) in DATE_PARTS.items():
                if lookup == f"{self.date_hierarchy}__{part}":
                    # Django turns the parts into a date with int(), which takes
                    # other scripts' digits, and a year past 9998 or a huge number
                    # ended in a server error (OverflowError) instead of a refusal.
                    return is_number_between(value, low, high)
        return lookup in filter_parameters(self, request)


def restrict_lookups(site):
    """Register again every admin of ``site`` without the mixin, with it.

    For the admins that other modules register (Django's groups, axes' logs,
    the sign-in lockouts), whose classes are not this app's.
    """
    for model in apps.get_models():
        if not site.is_registered(model):
            continue
        admin_class = type(site.get_model_admin(model))
        if issubclass(admin_class, OwnFiltersOnlyMixin):
            continue
        site.unregister(model)
        restricted = type(
            admin_class.__name__,
            (OwnFiltersOnlyMixin, admin_class),
            {"__module__": admin_class.__module__},
        )
        site.register(model, restricted)
