from django.urls import path

from ml import views

urlpatterns = [path("staff/benchmarks/", views.benchmark_list, name="benchmark-list")]
