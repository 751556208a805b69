"""The one exception for mistakes a user can fix; the CLI prints it as one line and exits 2."""


class UsageError(Exception):
    """Bad input from the user: the message names the bad value and the fix."""
