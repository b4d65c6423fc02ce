"""What staff may do to jobs from the admin: retry, cancel, pause and resume a
kind. Each asks for confirmation first, goes through foreman.actions (the code
`manage.py jobs` runs) and is recorded there with the admin user's name."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from common.models import PausedKind
from foreman import actions

CONFIRM_TEMPLATE = "admin/foreman/confirm_action.html"


def web_operator(request: HttpRequest) -> str:
    return f"{request.user.get_username()} (admin)"


class OperatorActionsMixin:
    """For a job kind's ModelAdmin: admin actions on the list, buttons on a job's
    page and on the list (pause, resume), and the views behind them."""

    actions = ["retry_selected", "cancel_selected"]
    change_list_template = "admin/foreman/job_change_list.html"

    def _require_staff(self, request: HttpRequest) -> None:
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied

    def _url(self, name: str, *args) -> str:
        info = self.model._meta.app_label, self.model._meta.model_name
        return reverse("admin:{}_{}_{}".format(*info, name), args=args)

    def _confirm(self, request, *, title, items, hidden, action_url, verb, reason=False):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "items": items,
            "hidden": hidden,
            "action_url": action_url,
            "verb": verb,
            "ask_reason": reason,
            "opts": self.model._meta,
            "back": self._url("changelist"),
        }
        return TemplateResponse(request, CONFIRM_TEMPLATE, context)

    # --- admin actions on the list --------------------------------------------------------------

    def _bulk(self, request, queryset, verb: str, act, refusal=None):
        self._require_staff(request)
        jobs = list(queryset)
        if request.POST.get("confirmed") != "yes":
            items = [(str(job), refusal(job) if refusal else None) for job in jobs]
            hidden = [("action", request.POST.get("action", "")), ("confirmed", "yes")]
            hidden += [(admin.helpers.ACTION_CHECKBOX_NAME, str(job.pk)) for job in jobs]
            return self._confirm(
                request, title=f"{verb.capitalize()} {len(jobs)} job(s)?", items=items,
                hidden=hidden, action_url="", verb=verb, reason=verb == "cancel",
            )  # fmt: skip
        for job in jobs:
            try:
                self.message_user(request, act(job, request), messages.SUCCESS)
            except actions.OperatorError as error:
                self.message_user(request, f"not done: {error}", messages.ERROR)
        return None

    @admin.action(description="Retry the selected failed jobs")
    def retry_selected(self, request, queryset):
        def act(job, request):
            new = actions.retry_job(job, by=web_operator(request))
            return f"retried {job}: new attempt {actions.job_target(new)} ({new.state})"

        return self._bulk(request, queryset, "retry", act, actions.retry_refusal)

    @admin.action(description="Cancel the selected jobs")
    def cancel_selected(self, request, queryset):
        def act(job, request):
            reason = request.POST.get("reason", "").strip()
            return actions.cancel_job(job, reason, by=web_operator(request))

        return self._bulk(request, queryset, "cancel", act)

    # --- buttons on a job's page and on the list ------------------------------------------------

    @admin.display(description="operator actions")
    def operator_buttons(self, job) -> str:
        retry = self._url("retry", job.pk)
        cancel = self._url("cancel", job.pk)
        return format_html(
            '<a class="button" href="{}">Retry…</a> <a class="button" href="{}">Cancel…</a>',
            retry,
            cancel,
        )

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        view = self.admin_site.admin_view
        return [
            path("<int:job_id>/retry/", view(self.retry_view), name="{}_{}_retry".format(*info)),
            path("<int:job_id>/cancel/", view(self.cancel_view), name="{}_{}_cancel".format(*info)),
            path("pause/", view(self.pause_view), name="{}_{}_pause".format(*info)),
            path("resume/", view(self.resume_view), name="{}_{}_resume".format(*info)),
            *super().get_urls(),
        ]

    def _one(self, request, job_id: int, verb: str, act, refusal=None) -> HttpResponse:
        self._require_staff(request)
        job = self.model.objects.filter(pk=job_id).first()
        if job is None or not self.has_view_permission(request, job):
            return HttpResponseNotFound("no such job")
        page = self._url("change", job.pk)
        if request.method != "POST" or request.POST.get("confirmed") != "yes":
            return self._confirm(
                request, title=f"{verb.capitalize()} {job}?",
                items=[(str(job), refusal(job) if refusal else None)],
                hidden=[("confirmed", "yes")], action_url=request.path, verb=verb,
                reason=verb == "cancel",
            )  # fmt: skip
        try:
            self.message_user(request, act(job, request), messages.SUCCESS)
        except actions.OperatorError as error:
            self.message_user(request, f"not done: {error}", messages.ERROR)
        return HttpResponseRedirect(page)

    def retry_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        def act(job, request):
            new = actions.retry_job(job, by=web_operator(request))
            return f"retried {job}: new attempt {actions.job_target(new)} ({new.state})"

        return self._one(request, job_id, "retry", act, actions.retry_refusal)

    def cancel_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        def act(job, request):
            reason = request.POST.get("reason", "").strip()
            return actions.cancel_job(job, reason, by=web_operator(request))

        return self._one(request, job_id, "cancel", act)

    def _kind_view(self, request: HttpRequest, verb: str) -> HttpResponse:
        self._require_staff(request)
        if not self.has_view_permission(request):
            raise PermissionDenied
        kind = self.model.kind
        if request.method != "POST" or request.POST.get("confirmed") != "yes":
            return self._confirm(
                request, title=f"{verb.capitalize()} {kind} jobs?", items=[(f"{kind} jobs", None)],
                hidden=[("confirmed", "yes")], action_url=request.path, verb=verb,
                reason=verb == "pause",
            )  # fmt: skip
        by = web_operator(request)
        if verb == "pause":
            reason = request.POST.get("reason", "").strip()
            done = actions.pause(kind, reason, by=by)
            text = f"paused {kind} jobs" if done else f"{kind} jobs were already paused"
        else:
            done = actions.resume(kind, by=by)
            text = f"resumed {kind} jobs" if done else f"{kind} jobs were not paused"
        self.message_user(request, text, messages.SUCCESS if done else messages.WARNING)
        return HttpResponseRedirect(self._url("changelist"))

    def pause_view(self, request: HttpRequest) -> HttpResponse:
        return self._kind_view(request, "pause")

    def resume_view(self, request: HttpRequest) -> HttpResponse:
        return self._kind_view(request, "resume")

    def changelist_view(self, request, extra_context=None):
        extra = {
            "kind": self.model.kind,
            "kind_paused": PausedKind.objects.filter(kind=self.model.kind).exists(),
            "pause_url": self._url("pause"),
            "resume_url": self._url("resume"),
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})
