"""Filters the API's lists share (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms
from django_filters.fields import IsoDateTimeField

from common.errors import Code
from common.moments import MOMENT_RANGE, utc_moment


class MomentField(IsoDateTimeField):
    """An ISO 8601 datetime, normalised to UTC and within the range every instant keeps
    (common.moments): PostgreSQL refuses offsets Python accepts (-19:42)."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        normal = utc_moment(moment)
        if normal is None:
            raise forms.ValidationError(f"Times must be {MOMENT_RANGE}, with an offset within ±15:59.",
                                        code=Code.OUT_OF_RANGE)
        return normal


class Moment(django_filters.IsoDateTimeFilter):
    field_class = MomentField
