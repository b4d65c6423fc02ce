"""What the engine API reads and answers (its OpenAPI schema, and the checks of
what an engine sends)."""

from __future__ import annotations

from threading import Lock

from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from api.models import Engine


class FieldsBuiltOnce:
    """For the serializers of an engine's requests, which come every few seconds:
    their fields are built and bound once, to a template instance of the class,
    and shared by every instance, where DRF deep-copies the declared fields for
    each one (a third of a millisecond for ten fields, more than the request's
    statements). Only for fields that keep no state of a request and read
    nothing of their serializer's data or context: plain values, files, lists."""

    _template_fields: dict[type, serializers.BindingDict] = {}
    _building = Lock()

    @property
    def fields(self) -> serializers.BindingDict:
        cls = type(self)
        fields = FieldsBuiltOnce._template_fields.get(cls)
        if fields is None:
            with FieldsBuiltOnce._building:
                fields = FieldsBuiltOnce._template_fields.get(cls)
                if fields is None:
                    template = cls()
                    fields = serializers.Serializer.fields.func(template)
                    FieldsBuiltOnce._template_fields[cls] = fields
        return fields


class AssignRequestSerializer(FieldsBuiltOnce, serializers.Serializer):
    batch_size = serializers.IntegerField(
        min_value=1,
        required=False,
        default=1,
        help_text="how many jobs (each one batch of pod5 files) to take at most "
        "(REFINERY_ENGINE_MAX_BATCH caps it)",
    )
    version = serializers.CharField(
        max_length=64, required=False, default="", help_text="the engine's software version"
    )

    def validate_batch_size(self, value: int) -> int:
        if value > settings.REFINERY_ENGINE_MAX_BATCH:
            raise ValidationError(f"at most {settings.REFINERY_ENGINE_MAX_BATCH}")
        return value


class AssignedFileSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="its name in the folder, and in Dorado's fn:Z: tag")
    size = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField()
    url = serializers.CharField(
        allow_null=True, help_text="a presigned URL (S3 storage); null: read it in `folder`"
    )


class AssignmentSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    pipeline = serializers.CharField()
    model = serializers.CharField(help_text="the Dorado model to run")
    output = serializers.ChoiceField(choices=["fastq", "bam"])
    folder = serializers.CharField(
        allow_null=True,
        help_text="ASSIGNED_<job>_<engine>/: links to the pod5 files (local storage)",
    )
    files = AssignedFileSerializer(many=True)
    outputs = serializers.ListField(
        child=serializers.CharField(), help_text="the output to send for each pod5 file"
    )
    keepalive = serializers.URLField()
    completed = serializers.URLField(
        help_text="POST the outputs here, multipart/form-data, each as a file in `outputs`"
    )


class AssignResponseSerializer(serializers.Serializer):
    jobs = AssignmentSerializer(many=True)
    report_every_s = serializers.FloatField(help_text="send a keepalive this often")
    lease_s = serializers.IntegerField(help_text="a job without keepalives this long is taken back")


class JobStateSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    state = serializers.CharField()
    failure_reason = serializers.CharField(allow_blank=True)
    results = serializers.ListField(child=serializers.CharField(), required=False)


class CompletionSerializer(FieldsBuiltOnce, serializers.Serializer):
    success = serializers.BooleanField(help_text="whether the engine basecalled the batch")
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="why it failed"
    )
    interrupted = serializers.BooleanField(
        required=False,
        default=False,
        help_text="the engine was stopped (SIGTERM): the retry does not spend one",
    )
    no_retry = serializers.BooleanField(
        required=False, default=False, help_text="another attempt cannot help (a missing model)"
    )
    outputs = serializers.ListField(
        child=serializers.FileField(), required=False, default=list, help_text="one per pod5 file"
    )
    dorado_version = serializers.CharField(max_length=64, required=False, default="")
    model = serializers.CharField(max_length=200, required=False, default="")
    basecalled = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    filtered = serializers.IntegerField(
        min_value=0, required=False, default=0, help_text="reads Dorado reports it filtered"
    )
    command = serializers.ListField(
        child=serializers.CharField(max_length=1000), required=False, default=list
    )

    def validate(self, data: dict) -> dict:
        if data["success"] and not data["outputs"]:
            raise ValidationError({"outputs": "a successful completion sends its outputs"})
        if not data["success"] and data["outputs"]:
            raise ValidationError({"outputs": "a failed completion sends no outputs"})
        return data


class EngineSerializer(serializers.ModelSerializer):
    running = serializers.SerializerMethodField()
    jobs = serializers.SerializerMethodField()

    class Meta:
        model = Engine
        fields = ["name", "created_at", "last_contact_at", "running", "jobs"]

    def get_running(self, engine: Engine) -> list[int]:
        return self.context["running"].get(engine.name, [])

    def get_jobs(self, engine: Engine) -> dict[str, int]:
        """Its jobs by state."""
        return self.context["counts"].get(engine.name, {})
