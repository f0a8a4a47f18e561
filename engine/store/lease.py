"""The lock of a dataset in an object store: a lease with an expiry, renewed while its run holds it.

Object stores have no lock files and no process table, so the lock is an object (``.lock``) whose
body names its holder and the moment it was last renewed:

- **taken** with a create that succeeds only if the object is absent (S3 ``If-None-Match: *``);
- **renewed** every ``lease_seconds / 4`` by a heartbeat thread, with a replace that succeeds only
  if the object is still the one this run wrote (S3 ``If-Match`` with its ETag);
- **taken over** once it has expired (not renewed for ``lease_seconds``), or at once when its holder
  is a dead process of this host, with a replace conditional on the expired object's ETag: of two
  runs that see the same expired lease, exactly one wins;
- **released** with a delete conditional on the ETag.

A run whose renewal fails (its lease expired and was taken, or the store was unreachable past the
expiry) has lost the lock: :meth:`Lease.check` raises and the run publishes nothing. Expiry is judged
with the hosts' clocks, which must agree to well within ``lease_seconds`` (NTP). On stores without
conditional writes the same steps are check-then-act: a race window, so run one writer there.
"""

from __future__ import annotations

import threading
import time
import warnings

from engine.errors import OutputError
from engine.store.location import Location
from engine.store.output_lock import LockHolder, holder_is_gone, refusal, renewed

LEASE_SECONDS = 120.0


class Lease:
    """The lease on ``path`` for ``holder`` (whose ``lease_seconds`` is set)."""

    def __init__(self, path: Location, holder: LockHolder) -> None:
        if holder.lease_seconds is None:
            raise ValueError("a lease needs lease_seconds")
        self.path, self.holder = path, holder
        self.lease_seconds = holder.lease_seconds
        self.token: str | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._heartbeat: threading.Thread | None = None

    def acquire(self) -> None:
        for _ in range(5):
            self.holder = renewed(self.holder)
            token = self.path.create_with_token(self.holder.to_bytes())
            if token is None:
                token = self._take_over_if_stale()
            if token is not None:
                self.token = token
                self._start_heartbeat()
                return
        raise OutputError(f"{self.path.parent}: could not take the lock {self.path} (contended); try again")

    def _take_over_if_stale(self) -> str | None:
        """The token of the lease taken over from a stale holder; None to try again; raises if it is held."""
        found = self.path.read_with_token()
        if found is None:  # released since our create failed
            return None
        data, token = found
        try:
            current = LockHolder.from_bytes(data)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise OutputError(f"{self.path}: lock object is unreadable; delete it if no run is writing here") from None
        expired = current.expires_at is not None and current.expires_at < time.time()
        if not expired and not holder_is_gone(current):
            raise OutputError(refusal(self.path.parent, self.path, current))
        why = "an expired lease" if expired else "the lease of a dead process"
        self.holder = renewed(self.holder)
        taken = self.path.replace_with_token(self.holder.to_bytes(), token)
        if taken is not None:
            warnings.warn(f"{self.path}: taking over a stale lock, {why} ({current.describe()})", stacklevel=4)
        return taken

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="fld-engine-lease", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 4):
            self.renew()
            if self.lost:
                return

    def renew(self) -> None:
        """Extend the lease (the heartbeat calls this); a lease taken by another run is marked lost."""
        with self._guard:
            if self.lost or self.token is None:
                return
            holder = renewed(self.holder)
            try:
                token = self.path.replace_with_token(holder.to_bytes(), self.token)
            except Exception as error:  # the store is unreachable: lost only once the lease has expired
                expires = self.holder.expires_at or 0.0
                if time.time() > expires:
                    self.lost = f"the lease expired while the store was unreachable ({error})"
                return
            if token is None:
                self.lost = "another run took the lease over (this run did not renew it in time)"
                return
            self.holder, self.token = holder, token

    def check(self) -> None:
        """Raise if the lease is no longer this run's."""
        with self._guard:
            expires = self.holder.expires_at or 0.0
            if self.lost is None and time.time() > expires:
                self.lost = "the lease expired before it was renewed"
            if self.lost is not None:
                raise OutputError(f"{self.path.parent}: this run lost the lock: {self.lost}; nothing was published")

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        with self._guard:
            if self.token is not None and self.lost is None:
                self.path.delete_if(self.token)
            self.token = None
