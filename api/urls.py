"""The REST API's URLs, under /api/."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from api import datasets, engines, views

router = SimpleRouter()
router.register("organisms", views.OrganismViewSet)
router.register("transcriptome-indices", views.TranscriptomeIndexViewSet)
router.register("results", views.ComputedFileViewSet)
router.register("batches", views.BatchViewSet)
router.register("samples", views.SampleViewSet)
router.register("experiments", views.ExperimentViewSet)
router.register("datasets", datasets.DatasetViewSet, basename="dataset")
router.register("jobs/survey", views.SurveyJobViewSet)
router.register("jobs/downloader", views.DownloaderJobViewSet)
router.register("jobs/processor", views.ProcessorJobViewSet)
router.register("runs", views.SequencingRunViewSet)

app_name = "api"
urlpatterns = [
    path("", views.api_root, name="root"),
    path("stats/", views.stats, name="stats"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("engines/", engines.engine_list, name="engine-list"),
    path("engines/heartbeat", engines.heartbeat, name="engine-heartbeat"),
    path("engines/<str:engine>/assign", engines.assign, name="engine-assign"),
    path(
        "engines/<str:engine>/jobs/<int:job_id>/keepalive",
        engines.keepalive,
        name="engine-keepalive",
    ),
    path(
        "engines/<str:engine>/jobs/<int:job_id>/completed",
        engines.completed,
        name="engine-completed",
    ),
    path("", include(router.urls)),
]
