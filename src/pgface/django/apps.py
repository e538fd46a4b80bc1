"""The app config: label `pgface`, so the admin lives at /admin/pgface/."""

from django.apps import AppConfig


class PgfaceConfig(AppConfig):
    name = "pgface.django"
    label = "pgface"
    verbose_name = "pgface"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.db.models.signals import post_migrate

        from pgface.django.conf import check_settings, create_schema_after_migrate

        checks.register(check_settings)
        post_migrate.connect(create_schema_after_migrate, sender=self,
                             dispatch_uid="pgface.create_schema")
