"""The one exception for mistakes a user can fix (the CLI prints it as one line and exits 2), and the one for an
interrupt that left nothing to keep (exit 130 for SIGINT, 143 for SIGTERM)."""


class UsageError(Exception):
    """Bad input from the user: the message names the bad value and the fix."""


class Interrupted(Exception):
    """A signal stopped the work before anything was kept: the CLI says so and exits 128 + the signal's number."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
