"""One error tree for everything sockcap reports to a user.

Every error a user can cause (a damaged file, no capture permission, nothing listening)
is a :class:`SockcapError`. The CLI turns one into a single line ``sockcap: <message>``
and the error's :attr:`exit_code`; only ``--debug`` shows a traceback.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes, stable for scripts."""

    OK = 0
    ERROR = 1  # an endpoint problem (refused, port in use, no reply), a failed command
    USAGE = 2  # bad usage or input: an option value, no such file, packet, stream or interface
    NO_PERMISSION = 2  # capture needs privileges (same code as usage, as the issue asks)
    NOT_A_CAPTURE = 3  # the file is not a pcap/pcapng file at all
    DAMAGED_FILE = 4  # a capture file that is cut short or has a bad record/block
    INTERRUPTED = 130  # SIGINT (128 + 2)
    TERMINATED = 143  # SIGTERM (128 + 15)


class SockcapError(Exception):
    """Root of sockcap's errors; ``str(err)`` is the one line the user sees."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(SockcapError):
    """Bad usage or input the user can correct: no such file, packet, stream or interface,
    a capture filter libpcap refuses, an output file that exists (exit code 2, as click's
    own usage errors)."""

    exit_code = ExitCode.USAGE


class DecodeError(SockcapError):
    """Bytes that cannot be decoded; ``layer`` and ``offset`` say where."""

    exit_code = ExitCode.DAMAGED_FILE

    def __init__(self, message: str, layer: str = "", offset: int = 0) -> None:
        super().__init__(message)
        self.layer = layer
        self.offset = offset


class TruncatedError(DecodeError):
    """The bytes end before a header or record does."""


class NotACaptureError(DecodeError):
    """The input is not a pcap or pcapng file (bad magic, empty file, unknown version)."""

    exit_code = ExitCode.NOT_A_CAPTURE


class CaptureFileError(DecodeError):
    """File-level damage after some good packets: ``packets_read`` were read before it."""

    def __init__(self, message: str, packets_read: int = 0, offset: int = 0) -> None:
        super().__init__(message, layer="file", offset=offset)
        self.packets_read = packets_read


class CaptureError(SockcapError):
    """A live capture could not be started or went wrong."""


class CapturePermissionError(CaptureError):
    """The user may not open a capture socket on this interface."""

    exit_code = ExitCode.NO_PERMISSION


class NoSuchInterfaceError(InputError, CaptureError):
    """The interface to capture on does not exist."""


class CommandFailedError(SockcapError):
    """The command run under ``sockcap capture`` exited on its own with a failure status."""


class EndpointError(SockcapError):
    """A socket endpoint problem: refused, port in use, bad address, early close."""


class WriteError(SockcapError):
    """A capture file could not be written (exists, disk full, no permission)."""


class OutputExistsError(InputError, WriteError):
    """The output file exists and ``--force`` was not given."""


class MissingExtensionError(SockcapError):
    """``SOCKCAP_REQUIRE_EXTENSIONS`` is set and the compiled path cannot be loaded."""


class NamespaceError(SockcapError):
    """A private network namespace could not be made (the kernel forbids unprivileged
    user namespaces): the same exit code as a missing capture permission."""

    exit_code = ExitCode.NO_PERMISSION


class SpillError(SockcapError):
    """The compiled engine could not keep the rows past its memory budget (``stats``'
    conversations, ``show --explain``'s connections) in its temporary file: no temporary
    directory, the disk full (sockcap/_speedups_spill.h raises it with the errno and the
    directory)."""

    def __init__(self, errno: int, directory: str) -> None:
        import os

        from sockcap.i18n import _

        super().__init__(
            _("cannot keep the conversations' rows in a temporary file in {directory}: "
              "{reason}").format(directory=directory, reason=os.strerror(errno)),
            _("set TMPDIR to a directory with free space"))
        self.errno = errno
        self.directory = directory
