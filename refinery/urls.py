"""URLs: the admin at /admin/ and the REST API at /api/."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from foreman.admin.overview import overview_view

admin.site.site_header = "Data Refinery"
admin.site.site_title = "Data Refinery"
admin.site.index_title = "Jobs, batches and results"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/overview/", admin.site.admin_view(overview_view), name="overview"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
]
