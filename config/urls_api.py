"""REST API v1 on a tenant host: /api/v1/… (session + CSRF for the UI, Bearer keys for scripts)."""

from django.urls import path

urlpatterns: list = []
