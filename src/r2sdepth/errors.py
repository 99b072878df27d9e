"""The project's user-facing error type (standard library only)."""


class R2SDepthError(Exception):
    """An error the user can cause and fix (bad path, truncated file, wrong size, ...).

    The message names the file and what is wrong; the CLI prints it on one line and exits
    non-zero without a traceback.
    """


class R2SDepthWarning(UserWarning):
    """A result may suffer but the command can go on (printed as ``r2sdepth: warning: ...``)."""
