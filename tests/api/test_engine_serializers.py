"""The engine requests' serializers build their fields once and share them
(api/engines/serializers.FieldsBuiltOnce): each request is still validated on
its own, also when many are validated at once in a server's threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from django.http import QueryDict
from django.test import override_settings

from api.engines.serializers import AssignRequestSerializer, CompletionSerializer


def test_fields_are_built_once_and_each_request_keeps_its_own_answer():
    good = CompletionSerializer(data=QueryDict("success=false&reason=no+GPU"))
    bad = CompletionSerializer(data={"success": "maybe", "filtered": "-1"})
    assert good.fields is bad.fields
    assert good.is_valid() and not bad.is_valid()
    assert good.validated_data["reason"] == "no GPU" and good.validated_data["outputs"] == []
    assert set(bad.errors) == {"success", "filtered"}
    assert good.errors == {}


@override_settings(REFINERY_ENGINE_MAX_BATCH=4)
def test_field_and_serializer_checks_still_run():
    assert AssignRequestSerializer(data={}).is_valid()
    too_many = AssignRequestSerializer(data={"batch_size": 5})
    assert not too_many.is_valid() and too_many.errors["batch_size"] == ["at most 4"]
    # The serializer's own validate(): a failure sends no outputs, a success sends some.
    success = CompletionSerializer(data={"success": "true"})
    assert not success.is_valid() and "outputs" in success.errors


def test_requests_validated_in_many_threads_at_once_get_their_own_data():
    def check(i: int) -> tuple[int, bool, str, int]:
        data = {"success": "false", "reason": f"engine {i}", "filtered": str(i)}
        if i % 3 == 0:
            data["success"] = "perhaps"
        serializer = CompletionSerializer(data=data)
        ok = serializer.is_valid()
        return i, ok, serializer.validated_data.get("reason", ""), len(serializer.errors)

    with ThreadPoolExecutor(16) as pool:
        for i, ok, reason, errors in pool.map(check, range(2000)):
            assert ok == (i % 3 != 0), i
            assert reason == ("" if i % 3 == 0 else f"engine {i}")
            assert errors == (1 if i % 3 == 0 else 0)
