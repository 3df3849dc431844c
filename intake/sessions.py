"""Database sessions whose every-request refresh is one statement.

Every request saves the session (``SESSION_SAVE_EVERY_REQUEST``: the idle
timeout slides). Django's database backend wraps each save in
``transaction.atomic``, which on PostgreSQL costs three round trips, ``BEGIN``,
``UPDATE`` and ``COMMIT``, for a single statement that is atomic on its own.
Outside a transaction this backend sends the ``UPDATE`` alone. Creating a
session, and any save inside a transaction (where a failure must roll back to a
savepoint, not spoil the caller's transaction), stay Django's.
"""

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import DatabaseError, connections, router


class SessionStore(DatabaseSessionStore):
    def save(self, must_create=False):
        using = router.db_for_write(self.model)
        if must_create or self.session_key is None or connections[using].in_atomic_block:
            return super().save(must_create=must_create)
        data = self._get_session()
        try:
            updated = (
                self.model.objects.using(using)
                .filter(session_key=self.session_key)
                .update(session_data=self.encode(data), expire_date=self.get_expiry_date())
            )
        except DatabaseError as error:
            raise UpdateError from error
        if not updated:
            # Deleted meanwhile (signed out in another tab, purged): as Django's.
            raise UpdateError
