"""The activation plan pages (HTML), included at /plays/ by config/urls_tenant.py: plays,
the plan of one segment (its plays across departments) and of one department (its plays,
KPIs against targets, trend). Fixed routes come before `<int:pk>/`."""

from django.urls import path

from campaigns.plays import views

urlpatterns = [
    path("", views.plays_list, name="plays_list"),
    path("new/", views.plays_new, name="plays_new"),
    path("segment/<slug:key>/", views.plays_segment, name="plays_segment"),
    path("department/<int:pk>/", views.plays_department, name="plays_department"),
    path("<int:pk>/", views.plays_detail, name="plays_detail"),
    path("<int:pk>/edit/", views.plays_edit, name="plays_edit"),
]
