from django.urls import path

from labeling import views

urlpatterns = [
    path("", views.home, name="home"),
    path("label/", views.annotate, name="annotate"),
    path("review/", views.screening, name="screening"),
    path("review/<int:clip_id>/", views.screening_decide, name="screening-decide"),
    path("staff/overview/", views.campaign_overview, name="campaign-overview"),
]
