"""`manage.py help` with the refinery's own commands first, under one heading,
each with the first line of its help; Django's and other apps' commands follow
as Django lists them."""

from __future__ import annotations

from collections import defaultdict

from django.core.management import ManagementUtility, get_commands, load_command_class
from django.core.management.color import color_style

# The apps whose commands are the refinery's.
OWN_APPS = {"common", "runner", "surveyor", "downloaders", "processors", "foreman", "api", "demo"}


def first_line(text: str, width: int = 70) -> str:
    """A command's help, cut to its first clause and at most `width` characters."""
    line = (text or "").strip().split("\n")[0]
    for stop in (". ", ": ", "; "):
        line = line.split(stop)[0]
    line = line.rstrip(".")
    if len(line) <= width:
        return line
    return line[: width - 1].rsplit(" ", 1)[0] + " …"


class RefineryUtility(ManagementUtility):
    def main_help_text(self, commands_only: bool = False) -> str:
        if commands_only:
            return super().main_help_text(commands_only=True)
        style = color_style()
        ours, others = {}, defaultdict(list)
        for name, app in get_commands().items():
            if app in OWN_APPS:
                ours[name] = app
            else:
                others["django" if app == "django.core" else app.rpartition(".")[-1]].append(name)
        width = max(map(len, ours), default=0) + 2
        lines = [
            "",
            f"Type '{self.prog_name} help <subcommand>' for help on a specific subcommand "
            "(each has examples).",
            "",
            style.NOTICE("[refinery]") + "  the Data Refinery's own commands",
        ]
        for name in sorted(ours):
            summary = first_line(load_command_class(ours[name], name).help)
            lines.append(f"    {name:<{width}}{summary}")
        lines += ["", "Django's and other apps' commands:"]
        for app in sorted(others):
            lines += ["", style.NOTICE(f"[{app}]")]
            lines += [f"    {name}" for name in sorted(others[app])]
        return "\n".join(lines)


def execute_from_command_line(argv: list[str] | None = None) -> None:
    RefineryUtility(argv).execute()
