"""WSGI entry point."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "intake.settings")

application = get_wsgi_application()

# Import the views, forms and rules now rather than in the first request, then
# move everything loaded so far out of the garbage collector's sight: a full
# collection otherwise rescans those ~100,000 long-lived objects (tens of ms,
# a request's worth of pause) although none of them will ever be garbage.
get_resolver().url_patterns  # noqa: B018 - evaluated for its import side effect
gc.freeze()
