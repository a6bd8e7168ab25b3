"""The one exception type the command line turns into a one-line message and a non-zero exit."""


class DrfmError(Exception):
    """A problem with the user's input (file, folder, option) that the user can fix.

    The message must name the file or option and say what is wrong, on one line.
    """
