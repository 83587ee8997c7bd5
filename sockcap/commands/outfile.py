"""Writing a picture or a report to a file: never over an existing file without
``--force``; under sudo, a file this creates belongs to the user who ran sudo."""

from __future__ import annotations

from collections.abc import Callable

from sockcap.i18n import _


def write_text_file(path: str, text: str, *, force: bool, note: Callable[[str], None]) -> None:
    """Write ``text`` (UTF-8) to ``path``; OutputExistsError when it exists and not ``force``."""
    import os

    from sockcap.errors import OutputExistsError, WriteError
    from sockcap.owner import Owner, check_output_path, create_file

    check_output_path(path)
    owner = Owner(lambda line: note(_("sockcap: {line}").format(line=line)))
    try:
        fd, created = create_file(path, 0o644, replace=force)
    except FileExistsError:
        raise OutputExistsError(_("{path} exists; use --force to overwrite").format(
            path=path)) from None
    except OSError as e:
        raise WriteError(_("cannot write {path}: {reason}").format(
            path=path, reason=e.strerror or e)) from e
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        if created:
            owner.give(f.fileno(), path)
        try:
            f.write(text)
        except OSError as e:
            raise WriteError(_("cannot write {path}: {reason}").format(
                path=path, reason=e.strerror or e)) from e
