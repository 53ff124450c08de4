"""The one exception type users see: a message naming the input and the fix."""


class SteikError(Exception):
    """A user-facing failure (bad input, missing file, failed download, ...).

    The command line prints the message alone, without a traceback, and exits with status 2.
    Library code raises it wherever the cause is something the user can correct.
    """
