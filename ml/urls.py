from django.urls import path

from ml import views

urlpatterns = [
    path("staff/benchmarks/", views.benchmark_list, name="benchmark-list"),
    path(
        "staff/benchmarks/<int:run_id>/files/<str:name>",
        views.benchmark_file,
        name="benchmark-file",
    ),
]
