"""/customers/imports/… (included by config.urls_tenant before the customer pages, whose
`customers/<external_id>/` would otherwise swallow `imports`)."""

from django.urls import path

from customers.imports import views

urlpatterns = [
    path("", views.imports_list_view, name="imports_list"),
    path("upload/", views.imports_upload, name="imports_upload"),
    path("<int:pk>/", views.imports_detail, name="imports_detail"),
    path("<int:pk>/map/", views.imports_map, name="imports_map"),
    path("<int:pk>/summary/", views.imports_summary, name="imports_summary"),
    path("<int:pk>/retry/", views.imports_retry, name="imports_retry"),
    path("<int:pk>/errors.csv", views.imports_errors, name="imports_errors"),
]
