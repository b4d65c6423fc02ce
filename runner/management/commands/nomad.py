"""`manage.py nomad specs|register|status`: the refinery's jobs on Nomad."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError, CommandParser

from common.commands import RefineryCommand
from runner.dispatch.base import DispatchError
from runner.nomad.checks import specification_leaks, startup_problems
from runner.nomad.register import node_states, obsolete_jobs, parent_states, register_all
from runner.nomad.specs import SpecOptions, Specs, all_specs, masked
from runner.nomad.task_env import env_warnings
from runner.nomad.worker_classes import all_parent_ids


class Command(RefineryCommand):
    help = (
        "The refinery's Nomad jobs: `specs` writes them as JSON for review, `register` "
        "registers them and their secrets as Nomad Variables (only what changed) unless "
        "their tasks could not start, `status` shows each parameterized job's queue and the "
        "nodes' capacity. Nomad is NOMAD_ADDR (and NOMAD_TOKEN)."
    )
    examples = """
manage.py nomad specs --out nomad-jobs/     (review the job specifications)
NOMAD_ADDR=http://nomad.internal:4646 NOMAD_TOKEN=… manage.py nomad register
manage.py nomad status
"""

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="action")
        specs = actions.add_parser("specs", help="print or write the job specifications")
        specs.add_argument("--out", type=Path, help="write one <JOB_ID>.json per job here")
        register = actions.add_parser("register", help="register the jobs with Nomad")
        register.add_argument(
            "--dry-run", action="store_true", help="say what would change, change nothing"
        )
        for sub in (specs, register):
            sub.add_argument("--registry", help="image registry (REFINERY_NOMAD_REGISTRY)")
            sub.add_argument("--tag", help="image tag (REFINERY_NOMAD_IMAGE_TAG)")
        actions.add_parser("status", help="each parameterized job's queue, and the nodes")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"handle_{action}")(**options)
        except (DispatchError, ImproperlyConfigured) as error:
            raise CommandError(str(error)) from None

    def _specs(self, options: dict) -> Specs:
        return all_specs(SpecOptions(registry=options.get("registry"), tag=options.get("tag")))

    def _check(self, specs: Specs, refuse: bool) -> None:
        """Warn about what looks doubtful; say (and with `refuse`, stop at) what would
        keep the tasks from starting or show a secret in a specification."""
        values = specs.task_settings.all()
        for warning in env_warnings(values):
            self.stderr.write(f"warning: {warning}")
        cannot_start = startup_problems(values)
        problems = cannot_start + specification_leaks(specs)
        if not problems:
            return
        what = (
            "the tasks could not start" if cannot_start else "a specification would show a secret"
        )
        listed = "\n".join(f"  - {problem}" for problem in problems)
        if refuse:
            raise CommandError(
                f"{what}, so nothing was registered:\n{listed}\n"
                "Set what is missing where `register` runs, then run it again."
            )
        self.stderr.write(f"error: {what}:\n{listed}")

    # --- specs ------------------------------------------------------------------------------

    def handle_specs(self, out: Path | None, **options) -> None:
        specs = self._specs(options)
        self._check(specs, refuse=False)
        for path, items in sorted(specs.variables.items()):
            self.stderr.write(f"secrets in the Nomad Variable {path}: {', '.join(sorted(items))}")
        shown = [masked(job, specs.task_settings.secrets) for job in specs.jobs]
        if out is None:
            self.stdout.write(json.dumps([{"Job": job} for job in shown], indent=2))
            return
        out.mkdir(parents=True, exist_ok=True)
        for job in shown:
            (out / f"{job['ID']}.json").write_text(json.dumps({"Job": job}, indent=2) + "\n")
        self.stdout.write(f"wrote {len(shown)} job specifications to {out}")

    # --- register ---------------------------------------------------------------------------

    def handle_register(self, dry_run: bool, **options) -> None:
        specs = self._specs(options)
        self._check(specs, refuse=True)
        results = register_all(specs, dry_run=dry_run)
        for result in results:
            detail = f" ({', '.join(result.changed)})" if result.changed else ""
            what = "variable " if result.what == "variable" else ""
            self.stdout.write(f"{result.outcome:9} {what}{result.job_id}{detail}")
        suffix = " (dry run: nothing was registered)" if dry_run else ""
        for what, label in (("variable", "variables: "), ("job", "")):
            mine = [r for r in results if r.what == what]
            if what == "variable" and not mine:
                continue
            counts = {o: sum(r.outcome == o for r in mine) for o in ("created", "updated")}
            unchanged = len(mine) - counts["created"] - counts["updated"]
            self.stdout.write(
                f"{label}{counts['created']} created, {counts['updated']} updated, "
                f"{unchanged} unchanged{suffix}"
            )
        for job_id in obsolete_jobs(specs.jobs):
            self.stdout.write(
                f"not generated any more: {job_id} (left as it is; stop it with "
                f"`nomad job stop {job_id}` once nothing runs there)"
            )

    # --- status -----------------------------------------------------------------------------

    def handle_status(self, **options) -> None:
        states = parent_states(all_parent_ids())
        self.stdout.write(f"{'parameterized job':34} {'pending':>8} {'running':>8} {'dead':>8}")
        for s in states:
            if not s.registered:
                self.stdout.write(f"{s.job_id:34} not registered (`manage.py nomad register`)")
                continue
            self.stdout.write(f"{s.job_id:34} {s.pending:8} {s.running:8} {s.dead:8}")
        registered = [s for s in states if s.registered]
        self.stdout.write(
            f"{'queue':34} {sum(s.pending for s in registered):8} "
            f"{sum(s.running for s in registered):8} {sum(s.dead for s in registered):8}"
        )
        nodes = node_states()
        self.stdout.write("")
        self.stdout.write(
            f"{'node':28} {'status':8} {'eligible':9} {'drain':6} {'class':8} "
            f"{'CPU MHz':>8} {'RAM MB':>8} {'GPUs':>5}"
        )
        for n in nodes:
            self.stdout.write(
                f"{n.name:28} {n.status:8} {'yes' if n.eligible else 'no':9} "
                f"{'yes' if n.drain else 'no':6} {n.node_class or '-':8} "
                f"{n.cpu_mhz:8} {n.memory_mb:8} {n.gpus:5}"
            )
        usable = [n for n in nodes if n.status == "ready" and n.eligible and not n.drain]
        self.stdout.write(
            f"{len(usable)} of {len(nodes)} nodes take jobs: "
            f"{sum(n.cpu_mhz for n in usable)} MHz CPU, {sum(n.memory_mb for n in usable)} MB RAM, "
            f"{sum(n.gpus for n in usable)} GPUs"
        )
