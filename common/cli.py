"""Command-line conventions: a bad input is one clear line naming the file and the problem, exit status 1."""
from __future__ import annotations

import errno
import sys
from typing import Callable


class InputError(Exception):
    """Bad user input (a file, a name, a value). str(e) must name the file or the option, and the problem."""


# a filesystem refusing a write is the environment's fault, never a bug: one line, as for bad input
_ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run ``main`` and turn InputError (registry and output errors included), FileNotFoundError and a
    full or read-only disk into one line on stderr and exit status 1. Other exceptions are bugs and keep
    their traceback."""
    try:
        rc = main(argv)
    except (InputError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except OSError as e:
        if e.errno not in _ENVIRONMENT_ERRNOS:
            raise
        print(f"error: {e.filename or 'output'}: {e.strerror}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(rc or 0)
