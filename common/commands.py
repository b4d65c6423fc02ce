"""What every refinery management command's `--help` has: its examples, laid out
as written (the refinery's commands derive from `RefineryCommand`)."""

from __future__ import annotations

import argparse

from django.core.management.base import BaseCommand


class RefineryCommand(BaseCommand):
    """A command whose `examples` (lines of shell) end its `--help`."""

    examples: str = ""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        if self.examples:
            parser.epilog = "examples:\n" + "\n".join(
                f"  {line}" for line in self.examples.strip("\n").splitlines()
            )
        return parser
