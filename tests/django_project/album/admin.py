"""The admin of the application's Tag, as docs/django.md step 5 writes it: its people chosen on
pgface's alias."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from django_project.album.models import Tag
from pgface.django import conf


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest,
                                 **kwargs: Any) -> Any:
        if db_field.name == "person":
            kwargs["using"] = conf.database_alias()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
