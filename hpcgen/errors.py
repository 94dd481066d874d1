"""The one exception type for bad user input: the CLI prints its message as one line and exits with code 2."""


class UserError(Exception):
    """Bad input from the user (a flag, a field, a file). The message names it and what is allowed."""

    exit_code = 2
