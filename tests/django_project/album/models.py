"""An application's own model that points at pgface's people."""

from django.db import models


class Tag(models.Model):
    label = models.CharField(max_length=100)
    # pgface's tables are not Django's to constrain: no foreign key constraint in the database
    person = models.ForeignKey("pgface.Person", models.DO_NOTHING, db_constraint=False,
                               related_name="tags")

    class Meta:
        app_label = "album"
