"""Where the engine reads and writes: one :class:`Location` type over local folders and object stores.

Every byte the engine touches (inputs, shards, manifests, journals, the lock, exports, the audit
report) goes through a ``Location``: a URI plus the ``pyarrow.fs`` filesystem that serves it.
pyarrow serves local paths, S3 (``s3://``), GCS (``gs://``) and HDFS (``hdfs://``); fsspec serves
the other schemes it knows (Azure ``az://`` / ``abfs://``, ``http(s)://``, ...) wrapped in
``pyarrow.fs.PyFileSystem``. Credentials and endpoints come the way those libraries take them: for
S3 ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``
or ``AWS_PROFILE``; for GCS ``GOOGLE_APPLICATION_CREDENTIALS``; for Azure fsspec's ``adlfs``
variables (``AZURE_STORAGE_ACCOUNT_NAME``, ...).

Object stores have no rename, so the engine writes every data file under a unique name and
commits with a conditional create (:meth:`Location.create_exclusive`): a local hard link, or an
S3 ``PUT`` with ``If-None-Match: *``. Stores without conditional writes get a check-then-write
whose race window is documented in the README: run one writer per dataset there.

Local paths whose bytes are not UTF-8 are kept losslessly as percent-encoded ``file://`` URIs
(Arrow strings must be UTF-8); every other local path stays a plain absolute path.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import quote_from_bytes, unquote_to_bytes, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

PYARROW_SCHEMES = {"s3": "s3", "gs": "gs", "gcs": "gs", "hdfs": "hdfs", "viewfs": "viewfs"}
BUCKET_SCHEMES = {"s3", "gs"}
READ_CHUNK = 1 << 20
# Ranges of one file closer than this are fetched in one read (an object store request costs more
# than reading a few hundred KB more).
RANGE_GAP = 256 * 1024
S3_SINGLE_PUT_BYTES = 1 << 30
UPLOAD_THREADS = 8


class StorageError(RuntimeError):
    """A location cannot be used: unknown scheme, missing bucket, unreachable, not writable."""


class ConditionalWriteUnsupported(StorageError):
    """The store behind a location has no conditional write (compare-and-swap) the engine can use."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A listed file: its URI, size, and what tells a later run whether it changed.

    ``mtime_ns`` for local files; ``etag`` (or the object version) for objects in a store.
    ``special`` says why a listed name cannot be read as a file (a FIFO, a device, a dangling or
    looping link); such entries are listed only on request (``iter_files(special=True)``).
    """

    uri: str
    size: int
    mtime_ns: int | None = None
    etag: str | None = None
    special: str | None = None


@dataclass(frozen=True, eq=False)
class Location:
    """A file or folder (prefix) in some store. Pickles as its URI, so Ray workers resolve it themselves."""

    uri: str
    filesystem: pafs.FileSystem = field(repr=False)
    path: str

    # -- identity ---------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "file" if self.is_local else urlsplit(self.uri).scheme

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    @property
    def os_path(self) -> str:
        """The local path as the OS takes it (non-UTF-8 bytes as surrogate escapes)."""
        if not self.is_local:
            raise StorageError(f"{self.uri} is not a local path")
        return self.path

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        return name[name.rfind(".") :].lower() if "." in name.lstrip(".") else ""

    def joinpath(self, *parts: str) -> Location:
        """A location below this one (``parts`` are ``/``-separated relative paths)."""
        relative = "/".join(p.strip("/") for p in parts if p.strip("/"))
        if not relative:
            return self
        path = f"{self.path.rstrip('/')}/{relative}"
        if self.is_local:
            return _local(path)
        return Location(f"{self.uri.rstrip('/')}/{relative}", self.filesystem, path)

    __truediv__ = joinpath

    @property
    def parent(self) -> Location:
        head = self.path.rstrip("/").rsplit("/", 1)[0] or "/"
        if self.is_local:
            return _local(head)
        return Location(self.uri.rstrip("/").rsplit("/", 1)[0], self.filesystem, head)

    def relative_to(self, base: Location) -> str:
        """This location's path below ``base`` (``/``-separated)."""
        prefix = base.path.rstrip("/") + "/"
        if not self.path.startswith(prefix):
            raise ValueError(f"{self.uri} is not below {base.uri}")
        return self.path[len(prefix) :]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.uri == self.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __str__(self) -> str:
        return self.uri

    def __fspath__(self) -> str:
        return self.os_path

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return location, (self.uri,)

    # -- reading ----------------------------------------------------------------------------
    def info(self) -> pafs.FileInfo:
        if self.is_local:
            return _local_info(self.path)
        return self.filesystem.get_file_info(self.path)

    def exists(self) -> bool:
        return self.info().type != pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self.info().type == pafs.FileType.File

    def is_dir(self) -> bool:
        return self.info().type == pafs.FileType.Directory

    def read_bytes(self, max_bytes: int | None = None) -> bytes:
        """The file's bytes. Only regular files are read (a FIFO or device is refused, never opened for
        a blocking read), and reading stops past ``max_bytes``: callers compare the length to it."""
        limit = None if max_bytes is None else max_bytes + 1
        if self.is_local:
            return _read_regular_file(self.path, limit)
        if self.scheme == "s3":  # one GET (pyarrow's stream asks the size with a HEAD first)
            return _s3_get(self, 0, limit)
        with self.filesystem.open_input_stream(self.path) as stream:
            return _read_stream(stream, limit)

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def stat(self) -> Entry | None:
        """This file's size and change key (local: mtime; S3: the ETag), or None if it is not a file."""
        if self.scheme == "s3":
            client, bucket, key = _s3_target(self)
            try:
                head = client.head_object(Bucket=bucket, Key=key)
            except client.exceptions.ClientError as error:
                code = _s3_code(error)
                if code in {"404", "NoSuchKey", "NotFound"}:
                    return None
                raise (PermissionError if code in {"403", "AccessDenied"} else OSError)(f"{self.uri}: {code}") from None
            return Entry(self.uri, int(head["ContentLength"]), etag=str(head["ETag"]).strip('"') or None)
        info = self.info()
        if info.type != pafs.FileType.File:
            return None
        return Entry(self.uri, int(info.size or 0), mtime_ns=info.mtime_ns)

    def sha256(self) -> str:
        """The SHA-256 of the file's bytes, read in chunks (never whole in memory)."""
        digest = hashlib.sha256()
        if self.is_local:
            with open(self.path, "rb") as handle:
                while chunk := handle.read(READ_CHUNK):
                    digest.update(chunk)
            return digest.hexdigest()
        with self.filesystem.open_input_stream(self.path) as stream:
            while chunk := stream.read(READ_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    @contextmanager
    def open_input(self) -> Iterator[Any]:
        """A seekable input file (pyarrow ``NativeFile``). Locally only a regular file is opened (a FIFO
        is refused without blocking)."""
        if self.is_local:
            with _open_local(self.path) as handle:
                yield handle
            return
        with self.filesystem.open_input_file(self.path) as handle:
            yield handle

    @contextmanager
    def open_input_stream(self) -> Iterator[Any]:
        """A sequential input stream (for one pass, e.g. ``tarfile`` stream mode); locally only a regular
        file is opened (a FIFO or device is refused without blocking)."""
        if self.is_local:
            with _open_local(self.path) as handle:
                yield handle
            return
        with self.filesystem.open_input_stream(self.path) as handle:
            yield handle

    def read_ranges(self, ranges: Sequence[tuple[int, int]], max_gap: int = RANGE_GAP) -> list[bytes]:
        """The bytes of each ``(offset, length)`` range, in the order given. Ranges closer than ``max_gap``
        are read together, so neighbouring members of a container cost one request, not one each."""
        spans = _coalesce(ranges, max_gap)
        chunks: dict[tuple[int, int], bytes] = {}

        def keep(start: int, end: int, data: bytes, members: list[tuple[int, int]]) -> None:
            if len(data) != end - start:
                raise OSError(f"{self.uri}: short read at offset {start} (file truncated?)")
            for offset, length in members:
                chunks[(offset, length)] = data[offset - start : offset - start + length]

        if self.scheme == "s3":  # one ranged GET per span, no HEAD
            for start, end, members in spans:
                keep(start, end, _s3_get(self, start, end - start), members)
        else:
            with self.open_input() as handle:
                for start, end, members in spans:
                    keep(start, end, _read_at(handle, start, end - start), members)
        return [chunks[(offset, length)] for offset, length in ranges]

    # -- writing ----------------------------------------------------------------------------
    @contextmanager
    def open_output(self) -> Iterator[BinaryIO]:
        """Write a file so that it is whole or absent: locally a temp file, fsynced and renamed on success;
        in an object store one upload that is only completed when the block exits without error."""
        if self.is_local:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            partial = f"{self.path}.{uuid.uuid4().hex[:8]}.partial"
            try:
                with open(partial, "wb") as handle:
                    yield handle
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(partial, self.path)
            finally:
                with suppress(FileNotFoundError):
                    os.unlink(partial)
            return
        buffer = pa.BufferOutputStream()
        yield buffer  # type: ignore[misc]
        # An S3 stream closed after an error would still complete the upload: buffer, then one put.
        data = buffer.getvalue()
        if self.scheme == "s3" and data.size < S3_SINGLE_PUT_BYTES:
            # One PUT request; pyarrow's stream would take three (a multipart upload) even for a few bytes.
            client, bucket, key = _s3_target(self)
            client.put_object(Bucket=bucket, Key=key, Body=data.to_pybytes())
            return
        with self.filesystem.open_output_stream(self.path) as stream:
            stream.write(data)

    def write_bytes(self, data: bytes) -> None:
        with self.open_output() as handle:
            handle.write(data)

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode())

    def append_line(self, line: str) -> None:
        """Append one line durably (local: one O_APPEND write, fsynced). Object stores cannot append:
        callers there write one object per record instead."""
        if not self.is_local:
            raise StorageError(f"{self.uri}: object stores cannot append; write one object per record")
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def create_exclusive(self, data: bytes) -> bool:
        """Create the file with ``data`` only if it does not exist; False if it already did.

        Local: a private temp file hard-linked into place (atomic, never half-written). S3:
        ``If-None-Match: *``. Other stores: check, then write (a race window: one writer there).
        """
        if self.is_local:
            return _link_exclusively(self.path, data)
        if self.scheme == "s3":
            return _s3_conditional_put(self, data, {"IfNoneMatch": "*"}) is not None
        if self.exists():
            return False
        self.write_bytes(data)
        return True

    def create_with_token(self, data: bytes) -> str | None:
        """:meth:`create_exclusive` that returns the new file's change token (None if it already existed)."""
        if self.scheme == "s3":
            return _s3_conditional_put(self, data, {"IfNoneMatch": "*"})
        if not self.create_exclusive(data):
            return None
        return _content_token(data)

    def read_with_token(self) -> tuple[bytes, str] | None:
        """The bytes and a change token of a file, or None if absent.

        S3: the ETag. Elsewhere the token is a hash of the bytes, and the conditional operations
        below are check-then-act (a race window: one writer per dataset on such stores).
        """
        if self.scheme == "s3":
            client, bucket, key = _s3_target(self)
            try:
                response = client.get_object(Bucket=bucket, Key=key)
            except client.exceptions.NoSuchKey:
                return None
            return response["Body"].read(), response["ETag"]
        try:
            data = self.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            if self.exists():
                raise
            return None
        return data, _content_token(data)

    def replace_if(self, data: bytes, token: str) -> bool:
        """Overwrite the file only if it still has change token ``token`` (S3 ``If-Match``)."""
        return self.replace_with_token(data, token) is not None

    def replace_with_token(self, data: bytes, token: str) -> str | None:
        """:meth:`replace_if` that returns the new change token (None if the token no longer matched)."""
        if self.scheme == "s3":
            return _s3_conditional_put(self, data, {"IfMatch": token})
        current = self.read_with_token()
        if current is None or current[1] != token:
            return None
        self.write_bytes(data)
        return _content_token(data)

    def delete_if(self, token: str) -> bool:
        """Delete the file only if it still has change token ``token`` (S3 ``If-Match``)."""
        if self.scheme != "s3":
            current = self.read_with_token()
            if current is None or current[1] != token:
                return False
            self.delete()
            return True
        client, bucket, key = _s3_target(self)
        try:
            client.delete_object(Bucket=bucket, Key=key, IfMatch=token)
        except client.exceptions.ClientError as error:
            if _s3_code(error) in {"PreconditionFailed", "NoSuchKey", "404"}:
                return False
            raise
        return True

    @property
    def has_conditional_writes(self) -> bool:
        """Whether create/replace/delete-if are atomic compare-and-swaps here (S3). Local files have an
        atomic create (a hard link) only; other stores check, then act."""
        return self.scheme == "s3"

    def delete(self) -> None:
        """Delete a file; a missing one is fine."""
        if self.is_local:
            with suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        if self.scheme == "s3":  # one request; pyarrow would also recreate a folder marker for the parent
            client, bucket, key = _s3_target(self)
            client.delete_object(Bucket=bucket, Key=key)
            return
        with suppress(FileNotFoundError):
            self.filesystem.delete_file(self.path)

    def delete_tree(self) -> None:
        """Delete a folder (prefix) and everything below it; a missing one is fine."""
        if self.scheme == "s3":
            client, bucket, key = _s3_target(self)
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{key.rstrip('/')}/"):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            return
        with suppress(FileNotFoundError):
            self.filesystem.delete_dir(self.path)

    def make_dirs(self) -> None:
        """Create the folder (object stores have none: nothing to do there)."""
        if self.is_local:
            os.makedirs(self.path, exist_ok=True)

    def upload_tree(self, local_folder: str) -> None:
        """Copy every file below the local folder ``local_folder`` to the same relative paths below this one
        (each file one write, several at a time)."""
        base = _local(local_folder)

        def upload(entry: Entry) -> None:
            source = location(entry.uri)
            self.joinpath(source.relative_to(base)).write_bytes(source.read_bytes())

        with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
            for _ in pool.map(upload, base.iter_files()):
                pass

    def is_empty_folder(self) -> bool:
        """True when no file lies below this folder (prefix); a missing folder is empty."""
        return next(iter(self.iter_files()), None) is None

    # -- listing ----------------------------------------------------------------------------
    def iter_files(self, recursive: bool = True, special: bool = False) -> Iterator[Entry]:
        """Files below this folder, lazily, in a stable order per folder.

        Locally, symlinks are followed but no real directory is visited twice (a link loop ends),
        and only regular files are listed; with ``special`` the names that cannot be read as files
        (FIFOs, devices, dangling or looping links) are listed too, with ``Entry.special`` saying
        why. In S3 the listing is paged, never held whole.
        """
        if self.is_local:
            yield from _walk_local(self.path, recursive, special)
        elif self.scheme == "s3":
            yield from _walk_s3(self, recursive)
        else:
            selector = pafs.FileSelector(self.path, recursive=recursive, allow_not_found=True)
            for info in sorted(self.filesystem.get_file_info(selector), key=lambda i: i.path):
                if info.type == pafs.FileType.File:
                    yield Entry(self._uri_of(info.path), int(info.size or 0), info.mtime_ns)

    def _uri_of(self, path: str) -> str:
        base = self.path.rstrip("/")
        if path == base:
            return self.uri
        return f"{self.uri.rstrip('/')}/{path[len(base) + 1 :]}"

    # -- checks -----------------------------------------------------------------------------
    def check_writable_folder(self, what: str = "output") -> None:
        """Refuse, in one line, a folder the engine cannot write to: a file, under a file, read-only,
        or (object stores) a missing bucket or an unreachable store. Creates nothing that stays."""
        if self.is_local:
            _check_local_folder(self.path, what)
            return
        try:
            kind = self.info().type
            above = next((a for a in self._ancestors() if a.info().type == pafs.FileType.File), None)
        except (OSError, pa.ArrowException) as error:
            raise StorageError(f"{what} {self.uri}: cannot reach the store ({_first_line(error)})") from None
        if kind == pafs.FileType.File:
            raise StorageError(f"{what} {self.uri} is a file, not a folder (prefix)")
        if above is not None:
            raise StorageError(f"{what} {self.uri} is under a file ({above.uri}), not a folder (prefix)")
        probe = self.joinpath(f".fld-engine-write-check-{uuid.uuid4().hex[:12]}")
        try:
            probe.write_bytes(b"")
            probe.delete()
        except Exception as error:  # pyarrow and boto3 raise their own types for a refused write
            if self._bucket_missing():
                bucket = self.path.split("/", 1)[0]
                raise StorageError(f"{what} {self.uri}: bucket {bucket!r} does not exist") from None
            raise StorageError(f"{what} {self.uri} is not writable: {_first_line(error)}") from None

    def _ancestors(self) -> list[Location]:
        """The folders between this one and its bucket (or the store's root), nearest first."""
        below_root = len(self.path.strip("/").split("/")) - 1 - (1 if self.scheme in BUCKET_SCHEMES else 0)
        ancestors, current = [], self
        for _ in range(max(0, below_root)):
            current = current.parent
            ancestors.append(current)
        return ancestors

    def _bucket_missing(self) -> bool:
        if self.scheme not in BUCKET_SCHEMES:
            return False
        bucket = self.path.split("/", 1)[0]
        try:
            return self.filesystem.get_file_info(bucket).type == pafs.FileType.NotFound
        except (OSError, pa.ArrowException):
            return False


# A place as callers may give it: a local path (str or PathLike), a URI, or a Location.
Where = str | os.PathLike[str] | Location

# -- resolving URIs -------------------------------------------------------------------------
_FILESYSTEMS: dict[tuple[str, str, str | None], pafs.FileSystem] = {}
_FILESYSTEMS_LOCK = threading.Lock()
_LOCAL = pafs.LocalFileSystem()


def location(uri: Where) -> Location:
    """Parse and check a URI or local path (one clear :class:`StorageError` if it cannot be used).

    Local paths become absolute (``~`` expanded, symlinks kept). ``s3://bucket/prefix`` and the other
    schemes keep their URI. The scheme must be known and a bucket present; the store is not contacted
    for local paths, and for others only to build the filesystem (pyarrow resolves the S3 region).
    """
    if isinstance(uri, Location):
        return uri
    text = os.fspath(uri)
    if "://" not in text:
        return _local(os.path.abspath(os.path.expanduser(text)))
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StorageError(f"{text}: file URIs name a local path (file:///path), not host {parts.netloc!r}")
        return _local(os.fsdecode(unquote_to_bytes(parts.path)))
    if scheme in BUCKET_SCHEMES and not parts.netloc:
        raise StorageError(f"{text}: missing bucket name (expected {scheme}://BUCKET/prefix)")
    if scheme in PYARROW_SCHEMES:
        return _pyarrow_location(text, scheme, parts.netloc)
    return _fsspec_location(text, scheme)


def _local(path: str) -> Location:
    path = os.path.normpath(path) if path not in ("", "/") else "/"
    try:
        path.encode()
        uri = path
    except UnicodeEncodeError:  # undecodable bytes (surrogate escapes): a percent-encoded file URI
        uri = "file://" + quote_from_bytes(os.fsencode(path), safe="/")
    return Location(uri, _LOCAL, path)


def _pyarrow_location(text: str, scheme: str, netloc: str) -> Location:
    parts = urlsplit(text)
    path = (f"{netloc}{parts.path}" if scheme in BUCKET_SCHEMES else parts.path).rstrip("/") or "/"
    uri = f"{scheme}://{netloc}{parts.path}".rstrip("/")
    return Location(uri, _pyarrow_filesystem(text, scheme, netloc), path)


def _pyarrow_filesystem(text: str, scheme: str, netloc: str) -> pafs.FileSystem:
    """One filesystem per (scheme, bucket or host, S3 endpoint), built once: pyarrow looks the S3 region up on
    the network."""
    key = (scheme, netloc, os.environ.get("AWS_ENDPOINT_URL") if scheme == "s3" else None)
    with _FILESYSTEMS_LOCK:
        if key in _FILESYSTEMS:
            return _FILESYSTEMS[key]
    try:
        filesystem = pafs.FileSystem.from_uri(text)[0]
    except (OSError, pa.ArrowException) as error:
        raise StorageError(f"{text}: cannot reach the store ({_first_line(error)})") from None
    with _FILESYSTEMS_LOCK:
        return _FILESYSTEMS.setdefault(key, filesystem)


def _fsspec_location(text: str, scheme: str) -> Location:
    import fsspec
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    if scheme not in fsspec.available_protocols():
        known = sorted({"file", *PYARROW_SCHEMES, *fsspec.available_protocols()} - {"", "abstract"})
        raise StorageError(f"{text}: unknown scheme {scheme!r} (known: {', '.join(known)})")
    try:
        filesystem, path = fsspec.core.url_to_fs(text)
    except ImportError as error:
        raise StorageError(f"{text}: the {scheme!r} scheme needs a package: {error}") from None
    except (OSError, ValueError) as error:
        raise StorageError(f"{text}: cannot reach the store ({_first_line(error)})") from None
    return Location(text.rstrip("/"), PyFileSystem(FSSpecHandler(filesystem)), path.rstrip("/"))


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# -- local files ----------------------------------------------------------------------------
def _local_info(path: str) -> pafs.FileInfo:
    try:
        status = os.stat(path)
    except OSError:  # missing, or a path through a file
        return pafs.FileInfo(_arrow_safe(path), pafs.FileType.NotFound)
    kind = pafs.FileType.Directory if stat.S_ISDIR(status.st_mode) else pafs.FileType.File
    if not (stat.S_ISDIR(status.st_mode) or stat.S_ISREG(status.st_mode)):
        kind = pafs.FileType.Unknown
    return pafs.FileInfo(_arrow_safe(path), kind, mtime_ns=status.st_mtime_ns, size=status.st_size)


def _arrow_safe(path: str) -> str:
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _read_regular_file(path: str, limit: int | None) -> bytes:
    """Open without blocking (a FIFO would block in open()), refuse anything but a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise IsADirectoryError(path) if stat.S_ISDIR(mode) else OSError(f"{path}: {_special_kind(mode)}")
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while limit is None or total < limit:
            chunk = os.read(fd, READ_CHUNK if limit is None else min(READ_CHUNK, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _special_kind(mode: int) -> str | None:
    """Why a file of this mode cannot be read as a file, or None for regular files and folders."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a FIFO, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    return "not a regular file"


@contextmanager
def _open_local(path: str) -> Iterator[Any]:
    """A pyarrow input file over a local regular file, opened without blocking (a FIFO would block in
    open()) and refused unless regular. The checked descriptor itself is read (no second open by
    name), through a Python file object, which also serves names that are not UTF-8."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise IsADirectoryError(path) if stat.S_ISDIR(mode) else OSError(f"{path}: {_special_kind(mode)}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with pa.PythonFile(os.fdopen(fd, "rb"), mode="r") as handle:
        yield handle


def _coalesce(ranges: Sequence[tuple[int, int]], max_gap: int) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Spans ``(start, end, ranges in it)`` covering ``ranges``, merged where the gap is under ``max_gap``."""
    spans: list[tuple[int, int, list[tuple[int, int]]]] = []
    for offset, length in sorted(set(ranges)):
        if spans and offset - spans[-1][1] <= max_gap:
            start, end, members = spans[-1]
            spans[-1] = (start, max(end, offset + length), [*members, (offset, length)])
        else:
            spans.append((offset, offset + length, [(offset, length)]))
    return spans


def _read_at(handle: Any, offset: int, length: int) -> bytes:
    data = handle.read_at(length, offset)
    return data.to_pybytes() if isinstance(data, pa.Buffer) else bytes(data)


def _read_stream(stream: Any, limit: int | None) -> bytes:
    if limit is None:
        return stream.read()
    return stream.read(limit)


def _link_exclusively(path: str, data: bytes) -> bool:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    private = f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    with open(private, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(private, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(private)
    return True


def _walk_local(root: str, recursive: bool, special: bool = False) -> Iterator[Entry]:
    try:
        top = os.stat(root)
    except OSError:
        return
    seen = {(top.st_dev, top.st_ino)}
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as scan:
                items = sorted(scan, key=lambda e: e.name)
        except OSError:
            continue
        folders = []
        for item in items:
            try:
                status = item.stat(follow_symlinks=True)
            except OSError as error:  # a dangling or looping link: not a file we can list
                if special:
                    why = "a symlink loop" if error.errno == errno.ELOOP else "a dangling symlink"
                    yield Entry(_local(item.path).uri, 0, special=why)
                continue
            if stat.S_ISDIR(status.st_mode):
                if recursive and (status.st_dev, status.st_ino) not in seen:
                    seen.add((status.st_dev, status.st_ino))
                    folders.append(item.path)
            elif stat.S_ISREG(status.st_mode):
                yield Entry(_local(item.path).uri, status.st_size, mtime_ns=status.st_mtime_ns)
            elif special:
                yield Entry(_local(item.path).uri, 0, special=_special_kind(status.st_mode))
        stack.extend(reversed(folders))


def _check_local_folder(path: str, what: str) -> None:
    probe = path
    while not os.path.lexists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.isfile(probe):
        where = "is a file" if probe == path else f"is under a file ({probe})"
        raise StorageError(f"{what} {_local(path).uri} {where}, not a folder")
    if not os.path.isdir(probe):
        raise StorageError(f"{what} {_local(path).uri}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise StorageError(f"{what} {_local(path).uri} is not writable ({probe} is read-only)")


# -- S3 specifics (conditional writes, paged listing) ---------------------------------------
def _s3_target(target: Location) -> tuple[Any, str, str]:
    if target.scheme != "s3":
        raise ConditionalWriteUnsupported(f"{target.uri}: conditional writes are implemented for local and s3:// only")
    bucket, _, key = target.path.partition("/")
    return _s3_client(), bucket, key


_S3_CLIENTS: dict[tuple[int, str | None], Any] = {}


def _s3_client() -> Any:
    """One boto3 client per process and endpoint (boto3 reads AWS_ENDPOINT_URL and the credentials from the
    environment once, when the client is made: a process that points the variable elsewhere gets a new one)."""
    key = (os.getpid(), os.environ.get("AWS_ENDPOINT_URL"))
    client = _S3_CLIENTS.get(key)
    if client is None:
        import boto3

        client = boto3.session.Session().client("s3")
        _S3_CLIENTS.clear()
        _S3_CLIENTS[key] = client
    return client


def _s3_code(error: Any) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def _s3_get(target: Location, start: int, length: int | None) -> bytes:
    """``length`` bytes from ``start`` (None: to the end) in one GET; a missing object is FileNotFoundError."""
    client, bucket, key = _s3_target(target)
    arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if start or length is not None:
        arguments["Range"] = f"bytes={start}-" + ("" if length is None else str(start + length - 1))
    try:
        return client.get_object(**arguments)["Body"].read()
    except client.exceptions.ClientError as error:
        code = _s3_code(error)
        if code in {"NoSuchKey", "404", "NotFound"}:
            raise FileNotFoundError(f"{target.uri}: no such object") from None
        if code == "InvalidRange":  # a range past the end of an empty or short object
            return b""
        raise OSError(f"{target.uri}: {code or _first_line(error)}") from None


def _s3_conditional_put(target: Location, data: bytes, condition: dict[str, str]) -> str | None:
    """PUT under ``condition``; the new ETag, or None when the condition failed."""
    client, bucket, key = _s3_target(target)
    try:
        response = client.put_object(Bucket=bucket, Key=key, Body=data, **condition)
    except client.exceptions.ClientError as error:
        # 412: the condition failed; 409: a concurrent conditional write won the race.
        if _s3_code(error) in {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}:
            return None
        raise
    return str(response["ETag"])


def _content_token(data: bytes) -> str:
    """The change token of stores without ETags: a hash of the bytes."""
    return hashlib.sha256(data).hexdigest()


def _walk_s3(folder: Location, recursive: bool) -> Iterator[Entry]:
    client, bucket, key = _s3_target(folder)
    prefix = f"{key.rstrip('/')}/" if key else ""
    arguments: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if not recursive:
        arguments["Delimiter"] = "/"
    pages = iter(client.get_paginator("list_objects_v2").paginate(**arguments))
    while True:
        try:
            page = next(pages, None)
        except client.exceptions.ClientError as error:  # no such bucket, access denied: an OSError like local ones
            raise OSError(f"{folder.uri}: {_s3_code(error) or _first_line(error)}") from None
        if page is None:
            return
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue
            uri = f"s3://{bucket}/{item['Key']}"
            yield Entry(uri, int(item["Size"]), etag=str(item.get("ETag", "")).strip('"') or None)
