"""Logging filters (loaded while logging is configured, before the apps: no model imports)."""

import logging


class NoTracebackForClientErrors(logging.Filter):
    """Drop the traceback Django attaches to a 4xx it logs (a refused page is not a fault).

    Django logs every ``PermissionDenied`` with its whole traceback, some forty
    lines per refused admin page; the one line saying what was refused is kept.
    """

    def filter(self, record):
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
