"""The admin: faces with their crops, people with their faces, photos. Read-only: pgface owns
these rows (name, merge or erase people with `manage.py pgface people ...`). It reads them on
pgface's database, the alias PGFACE["DATABASE"] (Django's multi-database admin: querysets and
related lookups .using() it); it read `default` whatever PGFACE named (a 500 where `default`
has no pgface tables, another library's rows where it has)."""

from __future__ import annotations

import base64
from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from pgface.django import conf
from pgface.django.models import Face, Person, Photo


def crop_tag(face: Face, size: int = 56) -> str:
    """The face's stored crop inline (a data: URL), so the admin needs no view of its own."""
    data = base64.b64encode(bytes(face.crop)).decode()
    return format_html('<img src="data:image/jpeg;base64,{}" width="{}" height="{}" alt="{}">',
                       data, size, size, f"face {face.pk}")


class ReadOnly:
    """Read-only, on pgface's database (autocomplete and list filters read get_queryset)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).using(conf.database_alias())  # type: ignore[misc]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest,
                                 **kwargs: Any) -> Any:
        return super().formfield_for_foreignkey(  # type: ignore[misc]
            db_field, request, using=conf.database_alias(), **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest,
                                 **kwargs: Any) -> Any:
        return super().formfield_for_manytomany(  # type: ignore[misc]
            db_field, request, using=conf.database_alias(), **kwargs)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class FaceInline(ReadOnly, admin.TabularInline):
    model = Face
    fields = readonly_fields = ("face_crop", "det_score", "assigned_by")
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Face]:
        return super().get_queryset(request).defer("embedding").select_related("photo")

    @admin.display(description="face")
    def face_crop(self, face: Face) -> str:
        return crop_tag(face)


class PersonFaceInline(FaceInline):
    fields = readonly_fields = ("face_crop", "photo", "det_score", "assigned_by")


@admin.register(Face)
class FaceAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "thumbnail", "person", "photo", "det_score", "model_pack")
    list_select_related = ("photo", "person")
    list_filter = ("model_pack", "assigned_by")
    search_fields = ("person__name", "photo__path")
    fields = readonly_fields = ("large_crop", "photo", "person", "assigned_by", "bbox",
                                "det_score", "model_pack", "clustered_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Face]:
        return super().get_queryset(request).defer("embedding")  # 2 KB a face, never shown

    @admin.display(description="face")
    def thumbnail(self, face: Face) -> str:
        return crop_tag(face)

    @admin.display(description="face")
    def large_crop(self, face: Face) -> str:
        return crop_tag(face, 112)


@admin.register(Person)
class PersonAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "name", "face_total", "hidden", "updated_at")
    list_filter = ("hidden",)
    search_fields = ("name",)
    fields = readonly_fields = ("name", "hidden", "created_at", "updated_at")
    inlines = [PersonFaceInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Person]:
        # ordered by id again: a GROUP BY drops Meta.ordering, and an autocomplete of people
        # (a project's autocomplete_fields = ["person"]) paged them unordered, some twice
        return (super().get_queryset(request).annotate(face_total=Count("faces"))
                .order_by("id"))

    @admin.display(description="faces", ordering="face_total")
    def face_total(self, person: Person) -> int:
        return person.face_total  # type: ignore[attr-defined]


@admin.register(Photo)
class PhotoAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("id", "path", "width", "height", "face_count", "indexed_at")
    search_fields = ("path",)
    fields = readonly_fields = ("path", "width", "height", "size_bytes", "taken_at",
                                "indexed_at", "face_count")
    inlines = [FaceInline]
