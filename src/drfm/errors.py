"""The exception types the command line turns into a one-line message and a non-zero exit."""

from __future__ import annotations

import re
from collections.abc import Callable

_OPTION = re.compile(r"\{@([a-z_]+)\}")


class DrfmError(Exception):
    """A problem with the user's input (file, folder, option) that the user can fix.

    The message must name the file or option and say what is wrong, on one line.
    """


def option(name: str) -> str:
    """The marker of parameter `name` inside an OptionError message."""
    return f"{{@{name}}}"


class OptionError(DrfmError):
    """A value passed to a library function does not fit. The message names the function's
    parameters through `option(name)` markers: str() shows the parameter names (what a Python
    caller passed), `render(flag_of)` the command's flags (what a shell user typed)."""

    def __init__(self, template: str) -> None:
        self.template = template
        super().__init__(self.render(lambda name: name))

    def render(self, spell: Callable[[str], str]) -> str:
        """The message with every parameter marker spelled by `spell(name)`."""
        return _OPTION.sub(lambda match: spell(match.group(1)), self.template)
