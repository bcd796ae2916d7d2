"""The exception every failing tiercache call raises.

A C status code becomes an ``Error`` (or the subclass for its code) whose
message is the library's ``tiercache_last_error()`` for that call, prefixed
with the function's name. Subclasses let callers catch what they can handle
(``OutOfSpace`` when the GPU cache is full of held blocks, ``Busy``).
"""

__all__ = ["Error", "InvalidArgument", "NotFound", "OutOfSpace", "OutOfMemory", "IoError",
           "Corruption", "Unavailable", "Busy", "AlreadyExists", "Unsupported", "check"]


class Error(RuntimeError):
    """A tiercache call failed. ``status`` is the C status code (negative)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class InvalidArgument(Error, ValueError):
    pass


class NotFound(Error, KeyError):
    def __str__(self):  # KeyError would quote the message
        return self.args[0]


class OutOfSpace(Error):
    pass


class OutOfMemory(Error, MemoryError):
    pass


class IoError(Error, OSError):
    pass


class Corruption(Error):
    pass


class Unavailable(Error):
    pass


class Busy(Error):
    pass


class AlreadyExists(Error):
    pass


class Unsupported(Error):
    pass


_BY_STATUS = {-1: InvalidArgument, -2: NotFound, -3: OutOfSpace, -4: OutOfMemory, -5: IoError,
              -6: Corruption, -7: Unavailable, -9: Busy, -10: AlreadyExists, -11: Unsupported}


def error_for(status, message):
    return _BY_STATUS.get(status, Error)(status, message)


def check(lib, status, function):
    """Raises the Error for `status` (nothing when 0)."""
    if status == 0:
        return
    detail = lib.tiercache_last_error().decode(errors="replace")
    name = lib.tiercache_status_name(status).decode()
    raise error_for(status, f"{function}: {detail or name}")
