"""`manage.py engines`: the basecalling engines allowed to pull work over the API."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token
from tabulate import tabulate

from api.models import Engine
from common.commands import RefineryCommand
from common.models import JobState, ProcessorJob
from runner.engines import engine_name_problem, engine_worker_id

USER_PREFIX = "engine-"


class Command(RefineryCommand):
    help = (
        "Basecalling engines (GPU servers that pull work through /api/engines/): add one "
        "(prints its token, once), list them, remove one (its token stops working; jobs it "
        "runs are taken back by the Foreman when their keepalives stop)."
    )
    examples = """
manage.py engines add gpu004          (prints the token for `manage.py basecall_engine`)
manage.py engines add gpu004 --new-token   (a new token; the old one stops working)
manage.py engines list
manage.py engines remove gpu004
"""

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        p = sub.add_parser("add", help="add an engine and print its token")
        p.add_argument("name", help="letters, digits, '.', '_', '-'; starts with a letter")
        p.add_argument(
            "--new-token",
            action="store_true",
            help="the engine exists: give it a new token (the old one stops working)",
        )
        sub.add_parser("list", help="the engines, their last contact and running jobs")
        p = sub.add_parser("remove", help="remove an engine and its token")
        p.add_argument("name")

    def handle(self, *args, action: str, **options):
        getattr(self, f"handle_{action}")(**options)

    @transaction.atomic
    def handle_add(self, name: str, new_token: bool, **options) -> None:
        problem = engine_name_problem(name)
        if problem:
            raise CommandError(problem)
        engine = Engine.objects.filter(name=name).first()
        if engine is not None and not new_token:
            raise CommandError(
                f"engine {name} exists already: `manage.py engines add {name} --new-token` "
                "gives it a new token"
            )
        if engine is None:
            users = get_user_model()
            username = USER_PREFIX + name
            if users.objects.filter(username=username).exists():
                raise CommandError(
                    f"a user {username!r} exists and is not engine {name}'s: pick another name"
                )
            user = users.objects.create_user(username=username)
            user.set_unusable_password()
            user.save()
            engine = Engine.objects.create(name=name, user=user)
        Token.objects.filter(user=engine.user).delete()
        token = Token.objects.create(user=engine.user)
        self.stderr.write(f"engine {name}: its token (shown once; keep it secret):")
        self.stdout.write(token.key)

    def handle_list(self, **options) -> None:
        rows = []
        for engine in Engine.objects.all():
            running = list(
                ProcessorJob.objects.filter(
                    worker_id=engine_worker_id(engine.name), state=JobState.RUNNING
                ).values_list("pk", flat=True)
            )
            last = engine.last_contact_at
            rows.append(
                [
                    engine.name,
                    f"{last:%Y-%m-%d %H:%M:%S} UTC" if last else "never",
                    ", ".join(map(str, running)) or "-",
                ]
            )
        if not rows:
            self.stdout.write("no engines: add one with `manage.py engines add NAME`")
            return
        self.stdout.write(tabulate(rows, headers=["engine", "last contact", "running jobs"]))

    @transaction.atomic
    def handle_remove(self, name: str, **options) -> None:
        engine = Engine.objects.filter(name=name).first()
        if engine is None:
            raise CommandError(f"no engine is named {name!r} (`manage.py engines list`)")
        engine.user.delete()  # its token and the engine row go with it
        self.stdout.write(
            f"engine {name} removed; jobs it was running are taken back once their keepalives stop"
        )
