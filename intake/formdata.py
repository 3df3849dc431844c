"""Typed answers back to the POST body a wizard step form accepts (the inverse of its cleaning)."""

from django.utils import timezone

from intake import instrument


def step_post_data(slug, answers):
    """Return the POST body of wizard step ``slug`` answering with typed ``answers``.

    Questions of the step without an answer are left out; a false yes/no box is
    left out as a browser leaves out an unticked checkbox.
    """
    data = {}
    for q in instrument.STEPS_BY_SLUG[slug].questions:
        if q.code not in answers:
            continue
        name, value = f"{slug}-{q.code}", answers[q.code]
        if q.type == instrument.MULTI:
            data[name] = list(value)
        elif q.type == instrument.BOOL:
            if value:
                data[name] = "on"
        elif q.type == instrument.DATE:
            data[name] = value.isoformat()
        elif q.type == instrument.DATETIME:
            data[name] = timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")
        elif q.type == instrument.MED_LIST:
            for index, row in enumerate(value):
                for key in instrument.MED_ROW_KEYS:
                    data[f"{name}-{index}-{key}"] = row[key]
        else:
            data[name] = str(value)
    return data
